// Reading a model's weights into the engine's Wasm memory, every norm copied as float32 and every matrix
// written in its layout (src/kernels/layout.ts), decided per tensor here (layoutOf): with the engine's int4
// recipe (WeightSource.quantization "recipe": a folder's float rows quantized, this project's GGUF's Q4_0
// blocks repacked, all into il4), or with the values a llama.cpp file holds ("file": each tensor in the layout
// its type maps to, Q4_1 into q4_1, Q8_0 into q8_0, F16 into f16 and so on, never fewer bits than the file).
//
// Everything is allocated before the first matrix row is read, so the memory never grows while a read is
// writing into it (growing a non-shared memory detaches the view the read writes through). The stored rows
// then come a staging region at a time, two regions taking turns: the next read runs on the platform's I/O
// threads while the main thread quantizes the current one. Each staged read is quantized by the engine's
// thread pool, its whole 4-row blocks split across the threads (ThreadPool.quantize); rows of a block that a
// read shares with its neighbour (at most 3 at either end) are quantized by the main thread alone, and so
// are the first reads, while the workers are still starting. Every row is quantized by the same kernel on
// the same bytes whichever thread runs it, so the weights are bit-identical for any thread count.
//
// q and k rows of a rotate_half checkpoint are reordered for the interleaved RoPE kernel on the way, whole
// heads per read (and the per-head q and k norm weights of Gemma with them); a GGUF written by convert, or
// a llama.cpp Gemma file, stores the rows as the folder does, so the same reordering applies to it. Norm
// weights are stored as the multipliers the kernels take: a Hugging Face Gemma checkpoint's get their 1 + w.
import type { ModelConfig } from "./config.js";
import { rowBytes, type WeightInfo, type WeightSource } from "./weights.js";
import type { LayerRole, TensorNames } from "./tensor-names.js";
import { interleaveRopeRows } from "./rope.js";
import type { WasmKernels } from "../kernels/wasm.js";
import { allocMatrix, LAYOUTS, type WeightLayout, type WeightMatrix } from "../kernels/layout.js";
import { isGgmlQuantType, storedLayout } from "../kernels/ggml-blocks.js";
import { writeStoredRows } from "../kernels/repack.js";
import type { ThreadPool } from "../threads/pool.js";

/**
 * Bytes of checkpoint rows staged in Wasm memory per read (as many whole rows as fit; more only if the
 * rows a read must hold together need it). Two such regions stay allocated (the arena never frees): keep
 * them small.
 */
export const STAGING_BYTES = 4 << 20;

/**
 * One product's weights: tensors stacked along the output rows (q|k|v, gate|up) so that one hand-off computes
 * them all. Consecutive tensors of one layout share a matrix; where a file stores them in types of different
 * layouts (a Q4_K_M file's Q4_K q beside a Q6_K v), each run is a part of its own, whose outputs start at
 * row `row0` of the stacked product.
 */
export interface MatrixStack {
  rows: number;
  cols: number;
  parts: Array<{ row0: number; matrix: WeightMatrix }>;
}

export interface LayerMatrices {
  /** The layer's norm weights by role (f32 pointers), each the multiplier the RMSNorm kernel takes. */
  norms: Partial<Record<LayerRole, number>>;
  /** q, k and v stacked: one GEMM instead of three. */
  qkv: MatrixStack;
  o: MatrixStack;
  /** gate and up stacked: one GEMM, then SwiGLU pairs row halves. */
  gateUp: MatrixStack;
  down: MatrixStack;
}

export interface EngineWeights {
  layers: LayerMatrices[];
  embed: WeightMatrix;
  /** The output head: the embedding table itself when the model ties them. */
  head: MatrixStack;
  finalNorm: number;
  /**
   * Arena bytes the weights took: every matrix's regions and every norm, with the alignment between them
   * (memory.ts's engineWeightBytes counts the same regions without it).
   */
  bytes: number;
}

/**
 * The layout a matrix stored as info.encoding is computed in: il4 under the recipe (which quantizes float rows
 * and reads Q4_0 blocks as its own; no other block type can be the recipe's), else the layout of its type.
 */
export function layoutOf(weights: WeightSource, info: WeightInfo): WeightLayout {
  if (weights.quantization === "file") return LAYOUTS[storedLayout(info.encoding)];
  if (isGgmlQuantType(info.encoding) && info.encoding !== "Q4_0") {
    throw new RangeError(`${weights.where(info.name)} is ${info.encoding}; the int4 recipe reads float and Q4_0 matrices`);
  }
  return LAYOUTS.il4;
}

export interface LoadWeightsOptions {
  /** Bytes per staging region (default STAGING_BYTES); smaller ones make many reads (tests). */
  stagingBytes?: number;
  /** Called once per tensor read: the load's progress. */
  step: () => void;
  /** Runs `f`, counting its time as waiting for bytes ("read") or quantizing ("quantize"). */
  timed: <T>(part: "read" | "quantize", f: () => T | Promise<T>) => Promise<T>;
}

/** One read: rows [r, r + n) of a tensor, which become rows [row + r, row + r + n) of `matrix`. */
interface Read {
  info: WeightInfo;
  matrix: WeightMatrix;
  row: number;
  r: number;
  n: number;
  reordered: boolean;
  /** The tensor's last read. */
  last: boolean;
}

/** Norms over each q or k head (Gemma's q_norm, k_norm): one weight per head dimension. */
const PER_HEAD_NORMS: ReadonlySet<LayerRole> = new Set(["qNorm", "kNorm"]);

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
const lcm = (a: number, b: number): number => (a / gcd(a, b)) * b;

/**
 * Reads every weight of `names` into Wasm memory. `pool` gives the engine's thread pool once its workers are
 * ready; until then (null) the main thread quantizes alone.
 */
export async function loadWeights(
  k: WasmKernels, pool: () => ThreadPool | null, config: ModelConfig, weights: WeightSource, names: TensorNames, opts: LoadWeightsOptions,
): Promise<EngineWeights> {
  const { step, timed } = opts;
  const stagingBytes = opts.stagingBytes ?? STAGING_BYTES;
  if (!Number.isSafeInteger(stagingBytes) || stagingBytes < 1) throw new RangeError(`stagingBytes must be a positive integer, got ${stagingBytes}`);
  const reorder = new Set(config.ropeStyle === "rotate_half" ? names.layers.flatMap((l) => [l.wq, l.wk]) : []);
  // A read holds whole 4-row blocks (so the pool can split it), and whole heads where rows are reordered.
  const headRows = lcm(config.headDim, 4);
  const reads: Read[] = [];
  let largestRead = 0;

  /** Allocates the matrices of the stacked tensors `names` (one per run of one layout) and plans their reads. */
  const stack = (tensors: string[]): MatrixStack => {
    const infos = tensors.map((p) => weights.weight(p));
    const cols = infos[0].shape[1];
    for (const info of infos) {
      if (info.shape.length !== 2 || info.shape[1] !== cols) {
        throw new RangeError(`${weights.where(info.name)} has shape ${JSON.stringify(info.shape)}; the matrix it belongs to has ${cols} columns`);
      }
    }
    const parts: MatrixStack["parts"] = [];
    let stackRow = 0;
    for (let i = 0; i < infos.length; ) {
      const layout = layoutOf(weights, infos[i]);
      let end = i + 1;
      while (end < infos.length && layoutOf(weights, infos[end]) === layout) end++;
      const run = infos.slice(i, end);
      const m = allocMatrix(k, layout, run.reduce((n, info) => n + info.shape[0], 0), cols);
      parts.push({ row0: stackRow, matrix: m });
      let row = 0;
      for (const info of run) {
        const bytes = rowBytes(info);
        const reordered = reorder.has(info.name);
        const unit = reordered ? headRows : 4;
        const perRead = Math.max(1, Math.floor(stagingBytes / bytes / unit)) * unit;
        const tensorRows = info.shape[0];
        for (let r = 0; r < tensorRows; r += perRead) {
          const n = Math.min(perRead, tensorRows - r);
          reads.push({ info, matrix: m, row, r, n, reordered, last: r + n === tensorRows });
          largestRead = Math.max(largestRead, n * bytes);
        }
        row += tensorRows;
      }
      stackRow += m.rows;
      i = end;
    }
    return { rows: stackRow, cols, parts };
  };
  /**
   * A norm weight as the kernels take it: plus the file's norm offset (1 for a Hugging Face Gemma
   * checkpoint's w of x · (1 + w)); a per-head q or k norm reordered like the q and k rows it scales.
   */
  const vector = async (name: string, headReordered = false): Promise<number> => {
    let v = await timed("read", () => weights.readF32(name));
    if (names.normOffset !== 0) for (let i = 0; i < v.length; i++) v[i] += names.normOffset;
    if (headReordered) v = new Float32Array(interleaveRopeRows(new Uint8Array(v.buffer, v.byteOffset, v.byteLength), v.length, 4, config.headDim).buffer);
    const ptr = k.alloc(v.byteLength);
    k.f32.set(v, ptr >> 2);
    return ptr;
  };

  const first = k.used;
  const embedStack = stack([names.embed]);
  const embed = embedStack.parts[0].matrix;
  const layers: LayerMatrices[] = [];
  for (const l of names.layers) {
    const norms: LayerMatrices["norms"] = {};
    for (const [role, name] of Object.entries(l) as Array<[LayerRole, string]>) {
      if (weights.weight(name).shape.length === 1) norms[role] = await vector(name, config.ropeStyle === "rotate_half" && PER_HEAD_NORMS.has(role));
    }
    layers.push({
      norms,
      qkv: stack([l.wq, l.wk, l.wv]),
      o: stack([l.wo]),
      gateUp: stack([l.wGate, l.wUp]),
      down: stack([l.wDown]),
    });
  }
  const finalNorm = await vector(names.finalNorm);
  step();
  const head = names.lmHead ? stack([names.lmHead]) : embedStack;
  const bytes = k.used - first;
  const staging = [k.alloc(largestRead), k.alloc(largestRead)];

  const start = (i: number): Promise<void> => {
    const { info, r, n } = reads[i];
    const read = weights.readRowsInto(info.name, r, n, k.u8, staging[i % 2]);
    read.catch(() => undefined); // awaited below; until then a failure must not count as unhandled
    return read;
  };
  let next = reads.length > 0 ? start(0) : Promise.resolve();
  try {
    for (let i = 0; i < reads.length; i++) {
      await timed("read", () => next);
      if (i + 1 < reads.length) next = start(i + 1);
      await timed("quantize", () => fill(k, pool(), reads[i], staging[i % 2], config.headDim, weights.where(reads[i].info.name)));
      if (reads[i].last) step();
    }
  } finally {
    // Never leave a read writing into the memory after the load has given up on it.
    await next.catch(() => undefined);
  }
  return { layers, embed, head, finalNorm, bytes };
}

/**
 * Writes one read's rows, staged at `ptr`, into its matrix (on the pool's threads, if any yet); `where` names
 * the file and tensor in a refusal.
 */
function fill(k: WasmKernels, pool: ThreadPool | null, read: Read, ptr: number, headDim: number, where: string): void {
  const { info, matrix: m, n } = read;
  const bytes = rowBytes(info);
  if (read.reordered) {
    const region = k.u8.subarray(ptr, ptr + n * bytes);
    region.set(interleaveRopeRows(region, n, bytes, headDim));
  }
  // Matrix rows [lo, hi); [a, b) are its whole 4-row blocks.
  const lo = read.row + read.r;
  const hi = lo + n;
  const a = Math.min(hi, Math.ceil(lo / 4) * 4);
  const b = Math.max(a, Math.floor(hi / 4) * 4);
  /** Rows [from, to) on this thread, errors naming the tensor and row. */
  const here = (from: number, to: number) => {
    const src = ptr + (from - lo) * bytes;
    const source = { name: where, row0: read.r + (from - lo) };
    writeStoredRows(k, m, from, src, to - from, info.encoding, { source });
  };
  if (pool === null) return here(lo, hi);
  try {
    if (a > lo) here(lo, a);
    if (b > a) pool.quantize({ matrix: m, row0: a, rows: b - a, src: ptr + (a - lo) * bytes, encoding: info.encoding });
    if (hi > b) here(b, hi);
  } catch (err) {
    // The pool's errors name the kernel wrapper; the same rows once more on this thread name the tensor
    // and the row (the first refused one).
    here(lo, hi);
    throw err;
  }
}
