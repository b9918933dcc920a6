// Load-time weight quantization into the kernels' il4 layout (WeightMatrix in layout.ts): typed wrappers
// around assembly/quantize.ts and their scalar TypeScript twins.
//
// quantizeRows: float rows (bf16, f16 or f32 bytes as a safetensors file stores them) -> int4, the model's
// recipe (src/model/quantize.ts), per row and group of 32 consecutive inputs, every step in f32; the group
// is quantized with the recipe's f32 scale and only the stored scale is rounded to f16 (as il4 and a GGUF
// Q4_0 block store it), the way llama.cpp's Q4_0 quantizer rounds d:
//
//   s   = max(f32(max|w| / 7.5), SCALE_MIN)          SCALE_MIN = 2^-23 (float32 eps, torchao's clamp)
//   q   = clamp(round_half_even(f32(w / s)), -8, 7)  the recipe's int4 values, exactly
//   s16 = f16(s)   (rounded to the nearest f16, ties to even), stored; w ≈ q · s16
//
// So the int4 values are the recipe's and only each group's scale moves, by at most 2^-11 of itself for a
// normal f16. Rounding the scale first and quantizing with s16 instead moved a q by a whole step wherever
// w / s sat within about 2^-11 of a rounding boundary, and moved the bundled model's held-out perplexity by
// 0.10-0.16 (0.4%); this rule moves it by 0.0001-0.001 (docs/quantization.md). Quantizing a checkpoint
// and repacking the Q4_0 file written from it give the same bits either way, as both paths run this rule.
//
// Edges: where s16 is subnormal (max|w| < 7.5 · 2^-14, a group of weights below 4.6e-4) it is s to within
// 2^-24 rather than 2^-11 of itself. s >= SCALE_MIN = 2^-23, itself an f16 (subnormal), so s16 is never 0. s >= 65520 (max|w| >= 491,400)
// rounds to infinity: no Q4_0 block can hold it, and the wrapper refuses the row rather than saturate to
// 65504 (weights that large are not a trained model's; a clamped scale would silently change them).
//
// quantizeRowsQ4_0: the same rows, the same rule, written as ggml Q4_0 blocks (what `mobilellm convert`
// stores in a GGUF file) instead of il4: d = s16, byte j = (q[j] + 8) | (q[j + 16] + 8) << 4.
// Repacking its output gives exactly quantizeRows' matrix.
//
// repackQ4_0: ggml Q4_0 blocks (18 bytes per 32 weights: f16 d, then byte j = (q[j] + 8) | (q[j + 16] + 8) << 4,
// w = q · d) -> il4 with d's bits as the scale (any sign); a NaN or infinite d is refused. Both compute the row sums wsum as
// writeInt4Rows does (layout.ts), so a kernel's output equals writeInt4Rows of its twin's, byte for byte.
import { decodeToF32, f16BitsToF32, f32ToF16Bits, type DType } from "./dtype.js";
import { regionBytes, requireShape, type WeightMatrix, type Int4Weights } from "./layout.js";
import { GROUP, roundHalfEven, SCALE_MIN } from "./numerics.js";
import { requireRegion } from "./checks.js";
import { GGML_BLOCKS } from "./ggml-blocks.js";
import type { WasmKernels } from "./wasm.js";

/** quantize_rows' element type codes. */
const DTYPE_CODE: Record<DType, number> = { F32: 0, F16: 1, BF16: 2 };
const ELEMENT_BYTES: Record<DType, number> = { F32: 4, F16: 2, BF16: 2 };

/** Bytes per ggml Q4_0 block (32 weights): an f16 scale and 16 bytes of nibbles. */
export const Q4_0_BLOCK_BYTES = GGML_BLOCKS.Q4_0.bytes;

/** s = max|w| / 7.5 reaches this (and max|w| this · 7.5) where f16(s) becomes infinity. */
const F16_SCALE_OVERFLOW = 65520;

export interface QuantizeOptions {
  /** What the rows are and the number of the first, for error messages (default: the matrix rows written). */
  source?: { name: string; row0: number };
}

// ---- typed wrappers ----------------------------------------------------------------------------------

function requireRows(fn: string, m: WeightMatrix, row0: number, rows: number): void {
  requireShape(fn, rows, m.cols, "rows");
  if (!Number.isInteger(row0) || row0 < 0 || row0 + rows > m.rows) {
    throw new RangeError(`${fn}: rows [${row0}, ${row0 + rows}) outside the matrix's ${m.rows}`);
  }
}

/** m must be an il4 matrix (or q4_0's, the same bytes, for the Q4_0 repack) whose regions lie in the memory. */
function requireMatrix(k: WasmKernels, fn: string, m: WeightMatrix, tags: readonly string[]): void {
  if (!tags.includes(m.layout.tag)) throw new RangeError(`${fn}: the matrix is ${m.layout.tag}, not ${tags.join(" or ")}`);
  const r = regionBytes(m.layout, m.rows, m.cols);
  requireRegion(k, fn, "matrix qs", m.valuesPtr, r.values, 16);
  requireRegion(k, fn, "matrix scales", m.scalesPtr, r.scales, 8);
  requireRegion(k, fn, "matrix wsum", m.auxPtr, r.aux, 16);
}

/**
 * Quantizes `rows` rows of m.cols weights (`dtype`, little-endian, row-major at srcPtr in Wasm memory) into
 * rows [row0, row0 + rows) of m. Throws, naming the row and column, on NaN or infinity, and on a group whose
 * scale overflows f16; rows before the bad one are written by then.
 */
export function quantizeRows(
  k: WasmKernels, m: WeightMatrix, row0: number, srcPtr: number, rows: number, dtype: DType, opts: QuantizeOptions = {},
): void {
  const fn = "quantizeRows";
  if (!Object.hasOwn(DTYPE_CODE, dtype)) throw new RangeError(`${fn}: unsupported element type ${String(dtype)}`);
  requireRows(fn, m, row0, rows);
  const size = ELEMENT_BYTES[dtype];
  requireRegion(k, fn, "src", srcPtr, rows * m.cols * size, size);
  requireMatrix(k, fn, m, ["il4"]);
  const bad = k.exports.quantize_rows(srcPtr, DTYPE_CODE[dtype], rows, m.cols, row0, m.valuesPtr, m.scalesPtr, m.auxPtr);
  if (bad >= 0) {
    const rowBytes = m.cols * size;
    const row = k.u8.slice(srcPtr + bad * rowBytes, srcPtr + (bad + 1) * rowBytes);
    const where = opts.source ?? { name: fn, row0 };
    throw new RangeError(rowError(where.name, where.row0 + bad, decodeRow(row, dtype, m.cols)) ?? `${where.name}: row ${where.row0 + bad} refused`);
  }
}

/**
 * Quantizes `rows` rows of `cols` weights (`dtype`, little-endian, row-major at srcPtr in Wasm memory) into
 * rows of Q4_0 blocks at outPtr (cols / 32 blocks of 18 bytes per row, rows end to end), quantizeRows' recipe.
 * Throws what quantizeRows throws for the same rows (NaN, infinity, a scale past the
 * largest f16); rows before the bad one are written by then.
 */
export function quantizeRowsQ4_0(
  k: WasmKernels, srcPtr: number, rows: number, cols: number, dtype: DType, outPtr: number, opts: Pick<QuantizeOptions, "source"> = {},
): void {
  const fn = "quantizeRowsQ4_0";
  if (!Object.hasOwn(DTYPE_CODE, dtype)) throw new RangeError(`${fn}: unsupported element type ${String(dtype)}`);
  requireShape(fn, rows, cols, "rows");
  const size = ELEMENT_BYTES[dtype];
  requireRegion(k, fn, "src", srcPtr, rows * cols * size, size);
  requireRegion(k, fn, "out", outPtr, rows * (cols / GROUP) * Q4_0_BLOCK_BYTES, 1);
  const bad = k.exports.quantize_rows_q4_0(srcPtr, DTYPE_CODE[dtype], rows, cols, outPtr);
  if (bad >= 0) {
    const rowBytes = cols * size;
    const row = k.u8.slice(srcPtr + bad * rowBytes, srcPtr + (bad + 1) * rowBytes);
    const where = opts.source ?? { name: fn, row0: 0 };
    throw new RangeError(rowError(where.name, where.row0 + bad, decodeRow(row, dtype, cols)) ?? `${where.name}: row ${where.row0 + bad} refused`);
  }
}

/**
 * Repacks `rows` rows of Q4_0 blocks (m.cols / 32 blocks per row, at srcPtr in Wasm memory) into rows
 * [row0, row0 + rows) of m. Throws, naming the row and block, on a NaN or infinite scale.
 */
export function repackQ4_0(
  k: WasmKernels, m: WeightMatrix, row0: number, srcPtr: number, rows: number, opts: Pick<QuantizeOptions, "source"> = {},
): void {
  const fn = "repackQ4_0";
  requireRows(fn, m, row0, rows);
  requireRegion(k, fn, "src", srcPtr, rows * m.groups * Q4_0_BLOCK_BYTES, 1);
  requireMatrix(k, fn, m, ["il4", "q4_0"]);
  const bad = k.exports.repack_q4_0(srcPtr, rows, m.cols, row0, m.valuesPtr, m.scalesPtr, m.auxPtr);
  if (bad >= 0) {
    const rowBytes = m.groups * Q4_0_BLOCK_BYTES;
    const row = k.u8.slice(srcPtr + bad * rowBytes, srcPtr + (bad + 1) * rowBytes);
    const where = opts.source ?? { name: fn, row0 };
    throw new RangeError(q4RowError(where.name, where.row0 + bad, row) ?? `${where.name}: row ${where.row0 + bad} refused`);
  }
}

// ---- scalar twins: the readable specification ---------------------------------------------------------

/**
 * The twin of quantizeRows: `rows` x `cols` weights given as `dtype` bytes -> int4 values and scales (the
 * rule at the top of this file): quantizeInt4 (src/model/quantize.ts) on the decoded values, the same q, each
 * scale rounded to f16. Throws the wrapper's message on a row it refuses.
 */
export function quantizeRowsRef(bytes: Uint8Array, dtype: DType, rows: number, cols: number, opts: QuantizeOptions = {}): Int4Weights {
  const fn = "quantizeRowsRef";
  requireShape(fn, rows, cols, "rows");
  if (bytes.length !== rows * cols * ELEMENT_BYTES[dtype]) {
    throw new RangeError(`${fn}: ${bytes.length} bytes for ${rows} x ${cols} ${dtype}`);
  }
  const where = opts.source ?? { name: fn, row0: 0 };
  const w = new Float32Array(rows * cols);
  decodeToF32(dtype, bytes, w, 0);
  const groups = cols / GROUP;
  const q = new Int8Array(rows * cols);
  const scales = new Float32Array(rows * groups);
  for (let r = 0; r < rows; r++) {
    const err = rowError(where.name, where.row0 + r, w.subarray(r * cols, (r + 1) * cols));
    if (err !== null) throw new RangeError(err);
    for (let g = 0; g < groups; g++) {
      const base = r * cols + g * GROUP;
      const s = groupScale(w.subarray(base, base + GROUP));
      scales[r * groups + g] = f16BitsToF32(f32ToF16Bits(s));
      for (let i = 0; i < GROUP; i++) q[base + i] = Math.max(-8, Math.min(7, roundHalfEven(Math.fround(w[base + i] / s))));
    }
  }
  return { rows, cols, q, scales };
}

/**
 * The twin of quantizeRowsQ4_0: `rows` x `cols` weights given as `dtype` bytes -> Q4_0 blocks, rows end to
 * end: quantizeRowsRef, each group stored as its scale's f16 bits and the nibbles q + 8.
 * Throws the wrapper's message on a row it refuses.
 */
export function quantizeRowsQ4_0Ref(bytes: Uint8Array, dtype: DType, rows: number, cols: number, opts: Pick<QuantizeOptions, "source"> = {}): Uint8Array {
  const m = quantizeRowsRef(bytes, dtype, rows, cols, { source: opts.source ?? { name: "quantizeRowsQ4_0Ref", row0: 0 } });
  const blocks = (rows * cols) / GROUP;
  const out = new Uint8Array(blocks * Q4_0_BLOCK_BYTES);
  for (let b = 0; b < blocks; b++) {
    // The scale is an f16 value already (and positive), so its bits are exact.
    const h = f32ToF16Bits(m.scales[b]);
    const o = b * Q4_0_BLOCK_BYTES;
    out[o] = h & 0xff;
    out[o + 1] = h >>> 8;
    for (let j = 0; j < 16; j++) out[o + 2 + j] = (m.q[b * GROUP + j] + 8) | ((m.q[b * GROUP + 16 + j] + 8) << 4);
  }
  return out;
}

/** The twin of repackQ4_0: `rows` rows of Q4_0 blocks -> int4 values and the f32 value of each block's d. */
export function repackQ4_0Ref(bytes: Uint8Array, rows: number, cols: number, opts: Pick<QuantizeOptions, "source"> = {}): Int4Weights {
  const fn = "repackQ4_0Ref";
  requireShape(fn, rows, cols, "rows");
  const groups = cols / GROUP;
  const rowBytes = groups * Q4_0_BLOCK_BYTES;
  if (bytes.length !== rows * rowBytes) throw new RangeError(`${fn}: ${bytes.length} bytes for ${rows} x ${cols} in Q4_0 blocks`);
  const where = opts.source ?? { name: fn, row0: 0 };
  const q = new Int8Array(rows * cols);
  const scales = new Float32Array(rows * groups);
  for (let r = 0; r < rows; r++) {
    const err = q4RowError(where.name, where.row0 + r, bytes.subarray(r * rowBytes, (r + 1) * rowBytes));
    if (err !== null) throw new RangeError(err);
    for (let g = 0; g < groups; g++) {
      const b = r * rowBytes + g * Q4_0_BLOCK_BYTES;
      scales[r * groups + g] = f16BitsToF32(bytes[b] | (bytes[b + 1] << 8));
      for (let j = 0; j < 16; j++) {
        const byte = bytes[b + 2 + j];
        q[r * cols + g * GROUP + j] = (byte & 15) - 8;
        q[r * cols + g * GROUP + 16 + j] = (byte >> 4) - 8;
      }
    }
  }
  return { rows, cols, q, scales };
}

/** A group's f32 scale: max(f32(max|w| / 7.5), SCALE_MIN). */
function groupScale(w: Float32Array): number {
  return Math.max(Math.fround(maxAbs(w) / 7.5), SCALE_MIN);
}

function maxAbs(w: Float32Array): number {
  let max = 0;
  for (const v of w) max = Math.max(max, Math.abs(v));
  return max;
}

/** Why a row of weights is refused (the first NaN or infinity, or an f16 scale overflow), or null. */
function rowError(name: string, row: number, w: Float32Array): string | null {
  for (let c = 0; c < w.length; c++) {
    if (!Number.isFinite(w[c])) return `${name}: row ${row} contains NaN/Inf at column ${c} (value ${w[c]})`;
  }
  for (let g = 0; g < w.length / GROUP; g++) {
    const max = maxAbs(w.subarray(g * GROUP, (g + 1) * GROUP));
    const s = Math.fround(max / 7.5);
    if (s >= F16_SCALE_OVERFLOW) {
      return `${name}: row ${row}, columns ${g * GROUP}-${g * GROUP + GROUP - 1}: max|w| = ${max} needs a scale of ` +
        `${s}, beyond f16 (65504), where il4 and a Q4_0 block keep it; weights this large are not a trained model's`;
    }
  }
  return null;
}

/** Why a row of Q4_0 blocks is refused (the first NaN or infinite scale), or null. */
function q4RowError(name: string, row: number, blocks: Uint8Array): string | null {
  for (let g = 0; g * Q4_0_BLOCK_BYTES < blocks.length; g++) {
    const d = blocks[g * Q4_0_BLOCK_BYTES] | (blocks[g * Q4_0_BLOCK_BYTES + 1] << 8);
    if ((d & 0x7fff) >= 0x7c00) return `${name}: row ${row}, block ${g}: the Q4_0 scale is ${f16BitsToF32(d)} (f16 bits 0x${d.toString(16)})`;
  }
  return null;
}

function decodeRow(bytes: Uint8Array, dtype: DType, cols: number): Float32Array {
  const w = new Float32Array(cols);
  decodeToF32(dtype, bytes, w, 0);
  return w;
}
