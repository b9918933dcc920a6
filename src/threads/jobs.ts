// What one region of the pool computes, as typed jobs, and the codec that carries a job to the workers
// through the control block (protocol.ts: JOB_WORDS Int32 words). The main thread encodes, every worker
// decodes once per region; both then run the same chunks of the same job (chunks.ts). Every field is a
// non-negative integer below 2^32 (a count or a Wasm byte address) except the attention scale, an f32
// carried by its bits.
//
// Chunks: a matmul chunk is a run of whole 4-row blocks of the matrix, an attention chunk one (token, KV
// head) pair, a quantize chunk a run of whole 4-row blocks of the matrix written, a read chunk a run of
// bytes. The kernels compute every 4-row block and every head on its own, so each output's bits do not
// depend on how the job was cut or which thread ran a chunk.
import {
  FloatActivations, Int8Activations, Int8BlockActivations, layoutById, packedBlockBytes, WeightMatrix, type Activations,
} from "../kernels/layout.js";
import type { KvCacheLayer } from "../kernels/attention.js";
import { WEIGHT_ENCODINGS, type WeightEncoding } from "../kernels/ggml-blocks.js";
import { JOB_WORDS } from "./protocol.js";

/**
 * Y = matrix times act's tokens [first, first + tokens), token t's outputs at y + 4·t·ldy (ldy >= matrix.rows:
 * larger when the matrix is a part of a wider product). act is in the format the matrix's layout takes.
 */
export interface MatmulJob {
  kind: "matmul";
  matrix: WeightMatrix;
  act: Activations;
  first: number;
  tokens: number;
  y: number;
  ldy: number;
  /** Rows per chunk: a multiple of 4 (the last chunk may be shorter). */
  chunkRows: number;
}

/** Rows of f32 in Wasm memory: row i starts at ptr + i·stride (bytes). */
export interface Rows {
  ptr: number;
  stride: number;
}

/**
 * Attention of `tokens` consecutive tokens of one layer, whose keys and values are already in `cache`:
 * token i is at position `position + i`, reads the last `window` positions (itself included) and writes
 * the heads of its query row to its out row. One chunk per (tile of `tileRows` tokens, KV head): the
 * tokens of a tile share the passes over the keys and values (attention_rows).
 */
export interface AttentionJob {
  kind: "attention";
  cache: KvCacheLayer;
  /** Positions a query sees, itself included: the sliding window, or the context length (KvCache.windowOf). */
  window: number;
  position: number;
  tokens: number;
  /** Token i's query heads, f32 [kvHeads · group][headDim] (RoPE applied). */
  queries: Rows;
  /** Query heads per KV head. */
  group: number;
  /** The score scale, 1/sqrt(headDim). */
  scale: number;
  /** Token i's output heads, same layout as its queries. */
  out: Rows;
  /** Tokens per chunk (the last tile may be shorter). */
  tileRows: number;
}

/** Reads [ptr, ptr + bytes) (the memory-read roofline), chunkBytes (a multiple of 64) per chunk. */
export interface ReadJob {
  kind: "read";
  ptr: number;
  bytes: number;
  chunkBytes: number;
}

/**
 * Rows [row0, row0 + rows) of `matrix` from `rows` stored rows at src, row-major as `encoding` stores them,
 * written by writeStoredRows (src/kernels/repack.ts: the recipe's quantizer for an il4 matrix, else the
 * file's values repacked). The load of one staged read. row0, rows and chunkRows are multiples of 4 (whole
 * blocks: a worker commits its chunk's blocks whole).
 */
export interface QuantizeJob {
  kind: "quantize";
  matrix: WeightMatrix;
  row0: number;
  rows: number;
  src: number;
  encoding: WeightEncoding;
  chunkRows: number;
}

export type Job = MatmulJob | AttentionJob | ReadJob | QuantizeJob;

export function chunkCount(job: Job): number {
  switch (job.kind) {
    case "matmul":
      return Math.ceil(job.matrix.rows / job.chunkRows);
    case "attention":
      return Math.ceil(job.tokens / job.tileRows) * job.cache.kvHeads;
    case "read":
      return Math.ceil(job.bytes / job.chunkBytes);
    case "quantize":
      return Math.ceil(job.rows / job.chunkRows);
  }
}

/** Output bytes of the largest chunk of `job`: what a worker's scratch must hold. */
export function chunkOutputBytes(job: Job): number {
  switch (job.kind) {
    case "matmul":
      return 4 * Math.min(job.chunkRows, job.matrix.rows) * job.tokens;
    case "attention":
      return 4 * Math.min(job.tileRows, job.tokens) * job.group * job.cache.headDim;
    case "read":
      return 0;
    case "quantize":
      return packedBlockBytes(job.matrix.layout, job.matrix.cols) * Math.ceil(Math.min(job.chunkRows, job.rows) / 4);
  }
}

// ---- codec ---------------------------------------------------------------------------------------------

const KIND = { matmul: 1, attention: 2, read: 3, quantize: 4 } as const;
const FORMATS = { i8t: 0, i8b: 1, f32: 2 } as const;

const f32 = new Float32Array(1);
const f32Bits = new Int32Array(f32.buffer);

/** Reads or writes consecutive words; encode and decode below visit the fields in the same order. */
class Words {
  private i = 0;

  constructor(private readonly w: Int32Array) {}

  put(...values: number[]): void {
    if (this.i + values.length > JOB_WORDS) throw new RangeError(`a job needs more than ${JOB_WORDS} words`);
    for (const v of values) this.w[this.i++] = v; // ToInt32: addresses >= 2^31 wrap, u32() undoes it
  }

  u32(): number {
    return this.w[this.i++] >>> 0;
  }

  putF32(x: number): void {
    f32[0] = x;
    this.put(f32Bits[0]);
  }

  getF32(): number {
    f32Bits[0] = this.w[this.i++];
    return f32[0];
  }
}

/** Writes `job` into `words` (JOB_WORDS long). */
export function encodeJob(job: Job, words: Int32Array): void {
  const w = new Words(words);
  w.put(KIND[job.kind]);
  switch (job.kind) {
    case "matmul": {
      putMatrix(w, job.matrix);
      const a = job.act;
      w.put(FORMATS[a.format], a.tokens, a.cols);
      if (a.format === "f32") w.put(a.ptr, 0, 0, 0, 0);
      else w.put(a.qPtr, a.widePtr, a.corrPtr, a.scalePtr, a.format === "i8t" ? a.zeroPtr : a.sumPtr);
      w.put(job.first, job.tokens, job.y, job.ldy, job.chunkRows);
      return;
    }
    case "attention": {
      const c = job.cache;
      w.put(c.kvHeads, c.headDim, c.slots, c.kData, c.kScales, c.vData, c.vScales);
      w.put(job.window, job.position, job.tokens, job.queries.ptr, job.queries.stride, job.group);
      w.putF32(job.scale);
      w.put(job.out.ptr, job.out.stride, job.tileRows);
      return;
    }
    case "read":
      w.put(job.ptr, job.bytes, job.chunkBytes);
      return;
    case "quantize": {
      putMatrix(w, job.matrix);
      w.put(job.row0, job.rows, job.src, WEIGHT_ENCODINGS.indexOf(job.encoding), job.chunkRows);
      return;
    }
  }
}

/** The job encodeJob wrote into `words`. */
export function decodeJob(words: Int32Array): Job {
  const w = new Words(words);
  const kind = w.u32();
  switch (kind) {
    case KIND.matmul: {
      const matrix = getMatrix(w);
      const format = w.u32();
      const tokens = w.u32();
      const cols = w.u32();
      const p = [w.u32(), w.u32(), w.u32(), w.u32(), w.u32()] as const;
      let act: Activations;
      if (format === FORMATS.i8t) act = new Int8Activations(tokens, cols, ...p);
      else if (format === FORMATS.i8b) act = new Int8BlockActivations(tokens, cols, ...p);
      else if (format === FORMATS.f32) act = new FloatActivations(tokens, cols, p[0]);
      else throw new Error(`unknown activation format ${format} in the control block`);
      return { kind: "matmul", matrix, act, first: w.u32(), tokens: w.u32(), y: w.u32(), ldy: w.u32(), chunkRows: w.u32() };
    }
    case KIND.attention: {
      const cache: KvCacheLayer = {
        kvHeads: w.u32(), headDim: w.u32(), slots: w.u32(), kData: w.u32(), kScales: w.u32(), vData: w.u32(), vScales: w.u32(),
      };
      return {
        kind: "attention", cache, window: w.u32(), position: w.u32(), tokens: w.u32(),
        queries: { ptr: w.u32(), stride: w.u32() }, group: w.u32(), scale: w.getF32(), out: { ptr: w.u32(), stride: w.u32() }, tileRows: w.u32(),
      };
    }
    case KIND.read:
      return { kind: "read", ptr: w.u32(), bytes: w.u32(), chunkBytes: w.u32() };
    case KIND.quantize: {
      const matrix = getMatrix(w);
      const row0 = w.u32();
      const rows = w.u32();
      const src = w.u32();
      const encoding = WEIGHT_ENCODINGS[w.u32()];
      if (encoding === undefined) throw new Error("unknown row encoding in the control block");
      return { kind: "quantize", matrix, row0, rows, src, encoding, chunkRows: w.u32() };
    }
    default:
      throw new Error(`unknown job kind ${kind} in the control block`);
  }
}

function putMatrix(w: Words, m: WeightMatrix): void {
  w.put(m.layout.id, m.rows, m.cols, m.valuesPtr, m.scalesPtr, m.auxPtr);
}

function getMatrix(w: Words): WeightMatrix {
  const id = w.u32();
  const layout = layoutById(id);
  if (layout === undefined) throw new Error(`unknown weight layout ${id} in the control block`);
  return new WeightMatrix(layout, w.u32(), w.u32(), w.u32(), w.u32(), w.u32());
}
