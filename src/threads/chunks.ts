// Computing one chunk of a job (jobs.ts), on any thread, through the same checked kernel wrappers the
// kernel tests call (src/kernels/*.ts): they own the operand layouts and refuse any region outside the
// Wasm memory. The main thread computes its chunks in place; a worker computes into its private scratch
// and, once the protocol lets it commit (protocol.ts), copies the result into place. The same kernel call
// on the same inputs either way, so the bits do not depend on which thread ran the chunk.
import type { WasmKernels } from "../kernels/wasm.js";
import { regionBytes, WeightMatrix } from "../kernels/layout.js";
import { copyRows, gemm, gemv, readBandwidth } from "../kernels/matmul.js";
import { storedRowBytes } from "../kernels/ggml-blocks.js";
import { writeStoredRows } from "../kernels/repack.js";
import { attentionFinalize, attentionRecordFloats, attentionReset, attentionRows } from "../kernels/attention.js";
import type { AttentionJob, Job, MatmulJob, QuantizeJob } from "./jobs.js";

/** Where a chunk's output goes: in place (the main thread), or a worker's scratch address. */
export type ChunkTarget = "in place" | number;

/**
 * Runs chunk c of `job` into `target`. `state` is the calling thread's own attention state
 * (attentionStateBytes(group, headDim) bytes).
 */
export function runChunk(k: WasmKernels, job: Job, c: number, target: ChunkTarget, state: number): void {
  switch (job.kind) {
    case "matmul":
      return matmulChunk(k, job, c, target);
    case "attention":
      return attentionChunk(k, job, c, target, state);
    case "read":
      readBandwidth(k, job.ptr + c * job.chunkBytes, Math.min(job.chunkBytes, job.bytes - c * job.chunkBytes));
      return;
    case "quantize":
      return quantizeChunk(k, job, c, target);
  }
}

/** Copies chunk c, which a worker computed into `scratch`, into place. */
export function commitChunk(k: WasmKernels, job: Job, c: number, scratch: number): void {
  switch (job.kind) {
    case "matmul": {
      const { row0, rows } = matmulRows(job, c);
      copyRows(k, job.y + 4 * row0, 4 * job.ldy, scratch, 4 * rows, 4 * rows, job.tokens);
      return;
    }
    case "attention": {
      const { t0, rows, kvHead } = attentionTile(job, c);
      const width = 4 * job.group * job.cache.headDim;
      copyRows(k, job.out.ptr + t0 * job.out.stride + kvHead * width, job.out.stride, scratch, width, width, rows);
      return;
    }
    case "read":
      return; // nothing to copy
    case "quantize": {
      const { row0, rows } = quantizeChunkRows(job, c);
      const from = WeightMatrix.packedAt(job.matrix.layout, scratch, rows, job.matrix.cols);
      const to = job.matrix.rowBlock(row0, rows);
      const bytes = regionBytes(to.layout, rows, to.cols);
      copyRows(k, to.valuesPtr, 0, from.valuesPtr, 0, bytes.values, 1);
      if (bytes.scales > 0) copyRows(k, to.scalesPtr, 0, from.scalesPtr, 0, bytes.scales, 1);
      if (bytes.aux > 0) copyRows(k, to.auxPtr, 0, from.auxPtr, 0, bytes.aux, 1);
      return;
    }
  }
}

/** Rows [row0, row0 + rows) of the product: chunk c. */
function matmulRows(job: MatmulJob, c: number): { row0: number; rows: number } {
  const row0 = c * job.chunkRows;
  return { row0, rows: Math.min(job.chunkRows, job.matrix.rows - row0) };
}

function matmulChunk(k: WasmKernels, job: MatmulJob, c: number, target: ChunkTarget): void {
  const { row0, rows } = matmulRows(job, c);
  const block = job.matrix.rowBlock(row0, rows);
  // In place, token t's rows sit in the full product's row t; in scratch, the block's rows are packed.
  const y = target === "in place" ? job.y + 4 * row0 : target;
  const ldy = target === "in place" ? job.ldy : rows;
  if (job.tokens === 1) gemv(k, block, job.act, y, job.first);
  else gemm(k, block, job.act, y, job.tokens, job.first, ldy);
}

/** Chunk c of an attention job: (tile of tokens [t0, t0 + rows), KV head), tile-major. */
function attentionTile(job: AttentionJob, c: number): { t0: number; rows: number; kvHead: number } {
  const kvHeads = job.cache.kvHeads;
  const t0 = Math.floor(c / kvHeads) * job.tileRows;
  return { t0, rows: Math.min(job.tileRows, job.tokens - t0), kvHead: c % kvHeads };
}

/**
 * In place, each token's heads go to its out row; in scratch, the tile's rows are packed (group·headDim
 * floats each), which commitChunk copies into place.
 */
function attentionChunk(k: WasmKernels, job: AttentionJob, c: number, target: ChunkTarget, state: number): void {
  const { t0, rows, kvHead } = attentionTile(job, c);
  const { cache, group } = job;
  const width = 4 * group * cache.headDim;
  const headOffset = kvHead * width;
  attentionReset(k, state, rows * group, cache.headDim);
  attentionRows(k, cache, kvHead, job.queries.ptr + t0 * job.queries.stride + headOffset, job.queries.stride, rows, group, job.position + t0, job.window, job.scale, state);
  const recordBytes = 4 * group * attentionRecordFloats(cache.headDim);
  for (let i = 0; i < rows; i++) {
    const out = target === "in place" ? job.out.ptr + (t0 + i) * job.out.stride + headOffset : target + i * width;
    attentionFinalize(k, state + i * recordBytes, group, cache.headDim, out);
  }
}

/** Matrix rows [row0, row0 + rows) of a quantize job: chunk c, whole 4-row blocks. */
function quantizeChunkRows(job: QuantizeJob, c: number): { row0: number; rows: number } {
  const first = c * job.chunkRows;
  return { row0: job.row0 + first, rows: Math.min(job.chunkRows, job.rows - first) };
}

/**
 * In place, the chunk's rows go straight into the matrix; in scratch, into a matrix of the chunk's blocks
 * alone (WeightMatrix.packedAt), which commitChunk copies into place block by block.
 */
function quantizeChunk(k: WasmKernels, job: QuantizeJob, c: number, target: ChunkTarget): void {
  const { row0, rows } = quantizeChunkRows(job, c);
  const inPlace = target === "in place";
  const m = inPlace ? job.matrix : WeightMatrix.packedAt(job.matrix.layout, target, rows, job.matrix.cols);
  const at = inPlace ? row0 : 0;
  const src = job.src + (row0 - job.row0) * storedRowBytes(job.encoding, job.matrix.cols);
  writeStoredRows(k, m, at, src, rows, job.encoding);
}
