// Matrix products: gemv and gemm, the wrappers every caller uses (the engine, the thread pool's chunks, the
// tests), which pick the kernel pair of the matrix's layout (layout.ts) and check that the activations are in
// the format it takes; and the il4 x i8t kernels' own wrappers and scalar TypeScript twins (assembly/matmul.ts).
// The other layouts' wrappers and twins: matmul-i8b.ts and matmul-float.ts.
//
// What every build computes for il4 x i8t, for token t and output row r (q_w in [-8, 7], q_x and z in [-128, 127]):
//
//   y[t][r] = s_x[t] · Σ_g s_w[r][g] · Σ_{i in group g} q_w[r][i] · (q_x[t][i] - z[t])
//
// split so that the zero point costs one step per output instead of one per group:
//
//   y[t][r] = s_x[t] · (Σ_g s_w[r][g] · P[t][r][g] - z[t] · wsum[r]),   P[t][r][g] = Σ_{i in g} q_w[r][i] · q_x[t][i]
//
// with wsum[r] = Σ_g s_w[r][g] · Σ_{i in g} q_w[r][i] computed once at load (il4's row sums, layout.ts). P is an exact
// integer (|P| <= 32·8·128). The float part is evaluated in f32 as
//   acc = 0; for g in order: acc = f32(acc + f32(f32(P) · s_w)); y = f32(f32(acc - f32(z · wsum)) · s_x)
// (no fused multiply-add in either build), so the twin, the baseline build and the relaxed build agree bit for
// bit. The tests still accept |kernel - twin| <= 1e-5 · M (TOLERANCE, M = gemmIl4MagnitudeRef) so that a future
// fused or reordered kernel only has to stay within that, not be rewritten; against the exact value, the f32
// evaluation is within (2G + 4)·2^-24 · M.
import { requireCount, requireRegion, requireTokens as requireHeld } from "./checks.js";
import {
  FloatActivations, Int8Activations, Int8BlockActivations, requireShape, type ActivationFormat, type Activations, type Int4Weights,
  type WeightMatrix,
} from "./layout.js";
import { gemmFloat, gemvFloat } from "./matmul-float.js";
import { gemmI8b, gemvI8b, quantizeActivationsI8b } from "./matmul-i8b.js";
import { GROUP, roundHalfEven, SCALE_MIN } from "./numerics.js";
import { TILE_TOKENS } from "./strides.js";
import type { WasmKernels } from "./wasm.js";

/** Relative tolerance of float outputs, against s_x · Σ_g |s_w · D| (see the top of this file). */
export const TOLERANCE = 1e-5;

/** Activations in logical form: x[t][i] ≈ (q[t·cols + i] - zero[t]) · scale[t]. */
export interface Int8Tokens {
  tokens: number;
  cols: number;
  q: Int8Array;
  scale: Float32Array;
  zero: Int32Array;
}

// ---- typed wrappers ----------------------------------------------------------------------------------

function requireTokens(fn: string, act: Int8Activations, first: number, count: number): void {
  requireHeld(fn, act.tokens, first, count);
}

/**
 * Quantizes f32 activations at xPtr ([count][act.cols]) into act's tokens [first, first + count). `first` is
 * a multiple of 4, so the tiles the kernel writes for the relaxed build's GEMM start where gemm expects them.
 */
export function quantizeActivations(k: WasmKernels, xPtr: number, act: Int8Activations, count = act.tokens, first = 0): void {
  requireTokens("quantizeActivations", act, first, count);
  if (first % TILE_TOKENS !== 0) throw new RangeError(`quantizeActivations: first token ${first} is not a multiple of ${TILE_TOKENS}`);
  requireRegion(k, "quantizeActivations", "x", xPtr, count * act.cols * 4, 16);
  const t = tokenPtrs(act, first);
  k.exports.quantize_activations(xPtr, count, act.cols, t.q, t.wide, t.corr, t.scale, t.zero);
}

/** Stores already-quantized activations (for callers holding int8 values, and for tests). */
export function setActivations(k: WasmKernels, act: Int8Activations, x: Int8Tokens): void {
  if (x.tokens !== act.tokens || x.cols !== act.cols) {
    throw new RangeError(`setActivations: got ${x.tokens}x${x.cols}, the buffer holds ${act.tokens}x${act.cols}`);
  }
  if (x.q.length !== x.tokens * x.cols || x.scale.length !== x.tokens || x.zero.length !== x.tokens) {
    throw new RangeError("setActivations: q, scale or zero has the wrong length");
  }
  for (const z of x.zero) if (!Number.isInteger(z) || z < -128 || z > 127) throw new RangeError(`setActivations: zero point ${z} outside [-128, 127]`);
  k.i8.set(x.q, act.qPtr);
  k.f32.set(x.scale, act.scalePtr >> 2);
  k.i32.set(x.zero, act.zeroPtr >> 2);
  k.exports.prepare_activations(act.tokens, act.cols, act.qPtr, act.widePtr, act.corrPtr);
}

/** Reads act's quantized values back into logical form. */
export function readActivations(k: WasmKernels, act: Int8Activations): Int8Tokens {
  const n = act.tokens * act.cols;
  return {
    tokens: act.tokens,
    cols: act.cols,
    q: k.i8.slice(act.qPtr, act.qPtr + n),
    scale: k.f32.slice(act.scalePtr >> 2, (act.scalePtr >> 2) + act.tokens),
    zero: k.i32.slice(act.zeroPtr >> 2, (act.zeroPtr >> 2) + act.tokens),
  };
}

function tokenPtrs(act: Int8Activations, t: number): { q: number; wide: number; corr: number; scale: number; zero: number } {
  return {
    q: act.qPtr + t * act.cols,
    wide: act.widePtr + 2 * t * act.cols,
    corr: act.corrPtr + 4 * t * (act.cols / GROUP),
    scale: act.scalePtr + 4 * t,
    zero: act.zeroPtr + 4 * t,
  };
}

function requireMatch(fn: string, m: WeightMatrix, act: Int8Activations): void {
  if (m.layout.activations !== "i8t") throw new RangeError(`${fn}: a ${m.layout.tag} matrix takes ${m.layout.activations} activations, not i8t`);
  if (m.cols !== act.cols) throw new RangeError(`${fn}: matrix has ${m.cols} columns, activations have ${act.cols}`);
}

/**
 * y[r] (f32 [m.rows] at yPtr) = row r of m times token `token` of act, by the kernel of m's layout; act must be
 * in the format the layout takes (m.layout.activations).
 */
export function gemv(k: WasmKernels, m: WeightMatrix, act: Activations, yPtr: number, token = 0): void {
  switch (act.format) {
    case "i8t":
      return gemvIl4I8t(k, m, act, yPtr, token);
    case "i8b":
      return gemvI8b(k, m, act, yPtr, token);
    case "f32":
      return gemvFloat(k, m, act, yPtr, token);
  }
}

/**
 * Y (f32 [count][m.rows] at yPtr) for act's tokens [first, first + count), by the kernel of m's layout. Token
 * t's row starts at yPtr + 4·t·ldy: ldy > m.rows writes a block of rows (WeightMatrix.rowBlock) in place in a
 * wider product.
 */
export function gemm(k: WasmKernels, m: WeightMatrix, act: Activations, yPtr: number, count = act.tokens, first = 0, ldy = m.rows): void {
  switch (act.format) {
    case "i8t":
      return gemmIl4I8t(k, m, act, yPtr, count, first, ldy);
    case "i8b":
      return gemmI8b(k, m, act, yPtr, count, first, ldy);
    case "f32":
      return gemmFloat(k, m, act, yPtr, count, first, ldy);
  }
}

/**
 * Buffers for `tokens` rows of `cols` activations in each quantized format, so one f32 input can be prepared
 * for whichever layout a matrix has: the engine keeps one set per input width.
 */
export class ActivationBuffers {
  readonly i8t: Int8Activations;
  readonly i8b: Int8BlockActivations;

  constructor(k: WasmKernels, readonly tokens: number, readonly cols: number) {
    this.i8t = Int8Activations.alloc(k, tokens, cols);
    this.i8b = Int8BlockActivations.alloc(k, tokens, cols);
  }

  /**
   * The f32 activations at xPtr ([count][cols]) in `format`: quantized into this set's buffer of that format
   * (i8t, i8b), or taken as they are (f32, which reads xPtr itself: keep it unchanged until the product ran).
   */
  prepare(k: WasmKernels, format: ActivationFormat, xPtr: number, count: number): Activations {
    switch (format) {
      case "i8t":
        quantizeActivations(k, xPtr, this.i8t, count);
        return this.i8t;
      case "i8b":
        quantizeActivationsI8b(k, xPtr, this.i8b, count);
        return this.i8b;
      case "f32":
        return new FloatActivations(count, this.cols, xPtr);
    }
  }
}

/** gemv of an il4 matrix (assembly/matmul.ts). */
export function gemvIl4I8t(k: WasmKernels, m: WeightMatrix, act: Int8Activations, yPtr: number, token = 0): void {
  requireMatch("gemv", m, act);
  requireTokens("gemv", act, token, 1);
  requireRegion(k, "gemv", "y", yPtr, 4 * m.rows, 4);
  const t = tokenPtrs(act, token);
  k.exports.gemv_il4_i8t(m.valuesPtr, m.scalesPtr, m.auxPtr, m.rows, m.cols, t.q, t.wide, t.corr, t.scale, t.zero, yPtr);
}

/** gemm of an il4 matrix (assembly/matmul.ts). */
export function gemmIl4I8t(k: WasmKernels, m: WeightMatrix, act: Int8Activations, yPtr: number, count = act.tokens, first = 0, ldy = m.rows): void {
  requireMatch("gemm", m, act);
  requireTokens("gemm", act, first, count);
  if (!Number.isInteger(ldy) || ldy < m.rows) throw new RangeError(`gemm: output stride ${ldy} is less than the ${m.rows} rows`);
  requireRegion(k, "gemm", "y", yPtr, 4 * (ldy * (count - 1) + m.rows), 4);
  // The kernel's first token must start a tile: tokens before the next tile boundary go one by one (the
  // same sums in the same order as the GEMM's, so the result does not depend on where a call starts).
  const lead = Math.min(count, (TILE_TOKENS - (first % TILE_TOKENS)) % TILE_TOKENS);
  for (let i = 0; i < lead; i++) {
    const t = tokenPtrs(act, first + i);
    k.exports.gemv_il4_i8t(m.valuesPtr, m.scalesPtr, m.auxPtr, m.rows, m.cols, t.q, t.wide, t.corr, t.scale, t.zero, yPtr + 4 * i * ldy);
  }
  if (lead === count) return;
  const t = tokenPtrs(act, first + lead);
  k.exports.gemm_il4_i8t(m.valuesPtr, m.scalesPtr, m.auxPtr, m.rows, m.cols, count - lead, t.q, t.wide, t.corr, t.scale, t.zero, yPtr + 4 * lead * ldy, ldy);
}

/** Copies `count` rows of rowBytes bytes from src (row stride srcStride bytes) to dst (dstStride). */
export function copyRows(k: WasmKernels, dst: number, dstStride: number, src: number, srcStride: number, rowBytes: number, count: number): void {
  requireCount("copyRows", "rowBytes", rowBytes);
  requireCount("copyRows", "count", count, 1);
  requireCount("copyRows", "dstStride", dstStride);
  requireCount("copyRows", "srcStride", srcStride);
  requireRegion(k, "copyRows", "dst", dst, dstStride * (count - 1) + rowBytes, 1);
  requireRegion(k, "copyRows", "src", src, srcStride * (count - 1) + rowBytes, 1);
  k.exports.copy_rows(dst, dstStride, src, srcStride, rowBytes, count);
}

/**
 * Reads [ptr, ptr + bytes) with v128 loads (the memory roofline); returns a value derived from the data.
 * The kernel reads whole 64-byte lines, so the region checked is bytes rounded up to 64.
 */
export function readBandwidth(k: WasmKernels, ptr: number, bytes: number): number {
  requireCount("readBandwidth", "bytes", bytes);
  requireRegion(k, "readBandwidth", "data", ptr, Math.ceil(bytes / 64) * 64, 16);
  return k.exports.read_bandwidth(ptr, bytes);
}

// ---- scalar twins: the readable specification ---------------------------------------------------------

const F = Math.fround;

/**
 * Dynamic asymmetric per-token quantization (torchao 8da4w), every step in f32:
 *   mn = min(min x, 0), mx = max(max x, 0), s = max((mx - mn) / 255, eps)
 *   z = round(clamp(-128 - mn/s if (-128 + mn/s) + (127 + mx/s) > 0 else 127 - mx/s, -128, 127))
 *   q = clamp(round(x / s) + z, -128, 127)
 * The eps clamp stands in for torchao's guard against a zero range: an all-zero row gets s = eps, z = 127,
 * q = 127, so q - z = 0 and every output is 0. A row holding NaN or infinity gets s = NaN, z = 0 and q = 0,
 * so every product with it is NaN instead of a finite value computed from the rest of the row.
 */
export function quantizeActivationsRef(x: Float32Array, tokens: number, cols: number): Int8Tokens {
  requireShape("quantizeActivationsRef", tokens, cols, "tokens");
  if (x.length !== tokens * cols) throw new RangeError(`quantizeActivationsRef: x has ${x.length} values, expected ${tokens * cols}`);
  const q = new Int8Array(tokens * cols);
  const scale = new Float32Array(tokens);
  const zero = new Int32Array(tokens);
  for (let t = 0; t < tokens; t++) {
    let mn = 0;
    let mx = 0;
    for (let i = 0; i < cols; i++) {
      mn = Math.min(mn, x[t * cols + i]);
      mx = Math.max(mx, x[t * cols + i]);
    }
    if (!Number.isFinite(mn) || !Number.isFinite(mx)) {
      scale[t] = NaN; // zero[t] and q stay 0
      continue;
    }
    let s = F(F(mx - mn) / 255);
    if (!(s >= SCALE_MIN)) s = SCALE_MIN;
    const dmin = F(mn / s);
    const dmax = F(mx / s);
    const zf = F(F(-128 + dmin) + F(127 + dmax)) > 0 ? F(-128 - dmin) : F(127 - dmax);
    const z = roundHalfEven(Math.max(-128, Math.min(127, zf)));
    scale[t] = s;
    zero[t] = z;
    for (let i = 0; i < cols; i++) {
      q[t * cols + i] = Math.max(-128, Math.min(127, roundHalfEven(F(x[t * cols + i] / s)) + z));
    }
  }
  return { tokens, cols, q, scale, zero };
}

/** D[t][r][g] = Σ_{i in g} q_w[r][i] · (q_x[t][i] - z[t]), the exact integer group dot (the definition). */
export function groupDotRef(w: Int4Weights, x: Int8Tokens, t: number, r: number, g: number): number {
  return rawGroupDot(w, x, t, r, g) - x.zero[t] * groupWeightSum(w, r, g);
}

/** P[t][r][g] = Σ_{i in g} q_w[r][i] · q_x[t][i]: the group dot the kernels form, without the zero point. */
function rawGroupDot(w: Int4Weights, x: Int8Tokens, t: number, r: number, g: number): number {
  let d = 0;
  for (let i = g * GROUP; i < (g + 1) * GROUP; i++) d += w.q[r * w.cols + i] * x.q[t * x.cols + i];
  return d;
}

function groupWeightSum(w: Int4Weights, r: number, g: number): number {
  let s = 0;
  for (let i = g * GROUP; i < (g + 1) * GROUP; i++) s += w.q[r * w.cols + i];
  return s;
}

/** wsum[r] = Σ_g f32(s_w[r][g] · Σ_{i in g} q_w[r][i]), summed in f32 in group order (what il4's row sums hold). */
export function rowWeightSumRef(w: Int4Weights, r: number): number {
  const groups = w.cols / GROUP;
  let acc = 0;
  for (let g = 0; g < groups; g++) acc = F(acc + F(groupWeightSum(w, r, g) * w.scales[r * groups + g]));
  return acc;
}

/** Y[t][r] for every token of x: f32 [x.tokens][w.rows]. The twin of gemm on an il4 matrix (whose ldy only strides y). */
export function gemmIl4I8tRef(w: Int4Weights, x: Int8Tokens): Float32Array {
  if (w.cols !== x.cols) throw new RangeError(`gemmIl4I8tRef: matrix has ${w.cols} columns, activations have ${x.cols}`);
  const y = new Float32Array(x.tokens * w.rows);
  const wsum = Float32Array.from({ length: w.rows }, (_, r) => rowWeightSumRef(w, r));
  for (let t = 0; t < x.tokens; t++) tokenRowsRef(w, x, t, wsum, y.subarray(t * w.rows, (t + 1) * w.rows));
  return y;
}

/** y[r] for token `token` of x: f32 [w.rows]. The twin of gemv on an il4 matrix. */
export function gemvIl4I8tRef(w: Int4Weights, x: Int8Tokens, token: number): Float32Array {
  if (w.cols !== x.cols) throw new RangeError(`gemvIl4I8tRef: matrix has ${w.cols} columns, activations have ${x.cols}`);
  if (!Number.isInteger(token) || token < 0 || token >= x.tokens) throw new RangeError(`gemvIl4I8tRef: token ${token} outside [0, ${x.tokens})`);
  const y = new Float32Array(w.rows);
  tokenRowsRef(w, x, token, Float32Array.from({ length: w.rows }, (_, r) => rowWeightSumRef(w, r)), y);
  return y;
}

/** Writes y[r] = s_x · (Σ_g s_w · P - z · wsum[r]) for token t, in the kernels' f32 order (top of this file). */
function tokenRowsRef(w: Int4Weights, x: Int8Tokens, t: number, wsum: Float32Array, y: Float32Array): void {
  const groups = w.cols / GROUP;
  for (let r = 0; r < w.rows; r++) {
    let acc = 0;
    for (let g = 0; g < groups; g++) acc = F(acc + F(rawGroupDot(w, x, t, r, g) * w.scales[r * groups + g]));
    y[r] = F(F(acc - F(x.zero[t] * wsum[r])) * x.scale[t]);
  }
}

/**
 * s_x[t] · Σ_g |s_w| · (|P| + |z · Σ_{i in g} q_w|): the scale float errors are relative to (f64,
 * [x.tokens][w.rows]). It bounds every partial sum of both f32 sums (acc and wsum), so rounding moves y by
 * at most (2G + 4)·2^-24 of it.
 */
export function gemmIl4MagnitudeRef(w: Int4Weights, x: Int8Tokens): Float64Array {
  const groups = w.cols / GROUP;
  const m = new Float64Array(x.tokens * w.rows);
  for (let t = 0; t < x.tokens; t++) {
    for (let r = 0; r < w.rows; r++) {
      let a = 0;
      for (let g = 0; g < groups; g++) {
        const p = Math.abs(rawGroupDot(w, x, t, r, g)) + Math.abs(x.zero[t] * groupWeightSum(w, r, g));
        a += Math.abs(w.scales[r * groups + g]) * p;
      }
      m[t * w.rows + r] = a * Math.abs(x.scale[t]);
    }
  }
  return m;
}

/** The exact y[t][r] = s_x · Σ_g s_w · D in f64 (no f32 rounding anywhere): what the f32 evaluation approximates. */
export function gemmIl4ExactRef(w: Int4Weights, x: Int8Tokens): Float64Array {
  const groups = w.cols / GROUP;
  const y = new Float64Array(x.tokens * w.rows);
  for (let t = 0; t < x.tokens; t++) {
    for (let r = 0; r < w.rows; r++) {
      let a = 0;
      for (let g = 0; g < groups; g++) a += groupDotRef(w, x, t, r, g) * w.scales[r * groups + g];
      y[t * w.rows + r] = a * x.scale[t];
    }
  }
  return y;
}
