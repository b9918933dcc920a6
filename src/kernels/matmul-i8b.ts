// The q4_0 ... q6_k layouts times i8b activations: typed wrappers around assembly/matmul-i8b.ts and their
// scalar TypeScript twins. Operand layouts: LayoutTag (the weights) and Int8BlockActivations in layout.ts.
//
// What every build computes, for token t and output row r (a[t][g] the activations' scale of group g):
//
//   y[t][r] = Σ_g a[t][g] · ( s[r][g] · P[t][r][g]  +  m[r][g] · X[t][g] )
//   P[t][r][g] = Σ_{i in g} q_w[r][i] · q_x[t][i]        exact integer, |P| <= 32 · 128 · 127
//   X[t][g]    = Σ_{i in g} q_x[t][i]                    exact integer (the min term: layouts with a min)
//
// q6_k has two scales per group, one per 16 values: s · P is then s0 · P0 + s1 · P1 over the two halves.
// The float part is evaluated in f32, one rounding per operation and no fused multiply-add:
//   acc = 0; for g in order: f = f32(f32(P) · s)  [q6_k: f32(f32(f32(P0) · s0) + f32(f32(P1) · s1))]
//                            f = f32(f + f32(m · X))   (layouts with a min)
//                            acc = f32(acc + f32(f · a))
// so the twin and both builds agree bit for bit (the tests check it), and against the exact value the f32
// evaluation is within (3G + 1)·2^-24 · M, M = Σ_g |a| (|s| |P| + |m| |X|) (gemmI8bMagnitudeRef; each of f's
// two or three roundings is relative to a term of M, each of acc's G adds to a partial sum of M).
import { requireRegion, requireTokens } from "./checks.js";
import { requireShape, type BlockWeights, type Int8BlockActivations, type LayoutTag, type WeightMatrix } from "./layout.js";
import { GROUP, roundHalfEven } from "./numerics.js";
import type { WasmKernels } from "./wasm.js";

/** Activations in logical form: x[t][i] ≈ q[t·cols + i] · scale[t·G + i/32]. */
export interface Int8BlockTokens {
  tokens: number;
  cols: number;
  q: Int8Array;
  scale: Float32Array;
}

// ---- typed wrappers ----------------------------------------------------------------------------------

function tokenPtrs(act: Int8BlockActivations, t: number): { q: number; wide: number; corr: number; scale: number; sum: number } {
  const g = t * (act.cols / GROUP);
  return { q: act.qPtr + t * act.cols, wide: act.widePtr + 2 * t * act.cols, corr: act.corrPtr + 4 * g, scale: act.scalePtr + 4 * g, sum: act.sumPtr + 4 * g };
}

function requireMatch(fn: string, m: WeightMatrix, act: Int8BlockActivations): void {
  if (m.layout.activations !== "i8b") throw new RangeError(`${fn}: a ${m.layout.tag} matrix takes ${m.layout.activations} activations, not i8b`);
  if (m.cols !== act.cols) throw new RangeError(`${fn}: matrix has ${m.cols} columns, activations have ${act.cols}`);
}

/** Quantizes f32 activations at xPtr ([count][act.cols]) into act's tokens [first, first + count). */
export function quantizeActivationsI8b(k: WasmKernels, xPtr: number, act: Int8BlockActivations, count = act.tokens, first = 0): void {
  requireTokens("quantizeActivationsI8b", act.tokens, first, count);
  requireRegion(k, "quantizeActivationsI8b", "x", xPtr, count * act.cols * 4, 16);
  const t = tokenPtrs(act, first);
  k.exports.quantize_activations_i8b(xPtr, count, act.cols, t.q, t.wide, t.corr, t.scale, t.sum);
}

/** Stores already-quantized activations (for tests and for callers holding int8 values). */
export function setActivationsI8b(k: WasmKernels, act: Int8BlockActivations, x: Int8BlockTokens): void {
  if (x.tokens !== act.tokens || x.cols !== act.cols) {
    throw new RangeError(`setActivationsI8b: got ${x.tokens}x${x.cols}, the buffer holds ${act.tokens}x${act.cols}`);
  }
  if (x.q.length !== x.tokens * x.cols || x.scale.length !== (x.tokens * x.cols) / GROUP) {
    throw new RangeError("setActivationsI8b: q or scale has the wrong length");
  }
  for (const q of x.q) if (q === -128) throw new RangeError("setActivationsI8b: q = -128 is outside the symmetric range [-127, 127]");
  k.i8.set(x.q, act.qPtr);
  k.f32.set(x.scale, act.scalePtr >> 2);
  k.exports.prepare_activations_i8b(act.tokens, act.cols, act.qPtr, act.widePtr, act.corrPtr, act.sumPtr);
}

/** Reads act's quantized values back into logical form. */
export function readActivationsI8b(k: WasmKernels, act: Int8BlockActivations): Int8BlockTokens {
  const n = act.tokens * act.cols;
  return {
    tokens: act.tokens,
    cols: act.cols,
    q: k.i8.slice(act.qPtr, act.qPtr + n),
    scale: k.f32.slice(act.scalePtr >> 2, (act.scalePtr >> 2) + n / GROUP),
  };
}

/** y[r] (f32 [m.rows] at yPtr) = row r of m times token `token` of act. */
export function gemvI8b(k: WasmKernels, m: WeightMatrix, act: Int8BlockActivations, yPtr: number, token = 0): void {
  requireMatch("gemvI8b", m, act);
  requireTokens("gemvI8b", act.tokens, token, 1);
  requireRegion(k, "gemvI8b", "y", yPtr, 4 * m.rows, 4);
  const t = tokenPtrs(act, token);
  k.exports[m.layout.gemv as "gemv_q4_0_i8b"](m.valuesPtr, m.scalesPtr, m.auxPtr, m.rows, m.cols, t.q, t.wide, t.corr, t.scale, t.sum, yPtr);
}

/** Y (f32 [count] rows of ldy at yPtr) for act's tokens [first, first + count); see gemm in matmul.ts. */
export function gemmI8b(
  k: WasmKernels, m: WeightMatrix, act: Int8BlockActivations, yPtr: number, count = act.tokens, first = 0, ldy = m.rows,
): void {
  requireMatch("gemmI8b", m, act);
  requireTokens("gemmI8b", act.tokens, first, count);
  if (!Number.isInteger(ldy) || ldy < m.rows) throw new RangeError(`gemmI8b: output stride ${ldy} is less than the ${m.rows} rows`);
  requireRegion(k, "gemmI8b", "y", yPtr, 4 * (ldy * (count - 1) + m.rows), 4);
  const t = tokenPtrs(act, first);
  k.exports[m.layout.gemm as "gemm_q4_0_i8b"](m.valuesPtr, m.scalesPtr, m.auxPtr, m.rows, m.cols, count, t.q, t.wide, t.corr, t.scale, t.sum, yPtr, ldy);
}

// One wrapper pair and one twin pair per layout, named after the kernels they call (gemv_q4_1_i8b: gemvQ4_1I8b,
// gemvQ4_1I8bRef): each checks the matrix is of its layout, then runs the shared code above and below.
type Gemv = (k: WasmKernels, m: WeightMatrix, act: Int8BlockActivations, yPtr: number, token?: number) => void;
type Gemm = (k: WasmKernels, m: WeightMatrix, act: Int8BlockActivations, yPtr: number, count?: number, first?: number, ldy?: number) => void;

function requireLayout(fn: string, tag: LayoutTag, got: LayoutTag): void {
  if (got !== tag) throw new RangeError(`${fn}: a ${got} matrix, not ${tag}`);
}

function wrappers(tag: LayoutTag, name: string): { gemv: Gemv; gemm: Gemm; gemvRef: typeof gemvI8bRef; gemmRef: typeof gemmI8bRef } {
  return {
    gemv: (k, m, act, yPtr, token) => (requireLayout(`gemv${name}`, tag, m.layout.tag), gemvI8b(k, m, act, yPtr, token)),
    gemm: (k, m, act, yPtr, count, first, ldy) => (requireLayout(`gemm${name}`, tag, m.layout.tag), gemmI8b(k, m, act, yPtr, count, first, ldy)),
    gemvRef: (w, x, token) => (requireLayout(`gemv${name}Ref`, tag, w.layout.tag), gemvI8bRef(w, x, token)),
    gemmRef: (w, x) => (requireLayout(`gemm${name}Ref`, tag, w.layout.tag), gemmI8bRef(w, x)),
  };
}

export const { gemv: gemvQ4_0I8b, gemm: gemmQ4_0I8b, gemvRef: gemvQ4_0I8bRef, gemmRef: gemmQ4_0I8bRef } = wrappers("q4_0", "Q4_0I8b");
export const { gemv: gemvQ4_1I8b, gemm: gemmQ4_1I8b, gemvRef: gemvQ4_1I8bRef, gemmRef: gemmQ4_1I8bRef } = wrappers("q4_1", "Q4_1I8b");
export const { gemv: gemvQ4KI8b, gemm: gemmQ4KI8b, gemvRef: gemvQ4KI8bRef, gemmRef: gemmQ4KI8bRef } = wrappers("q4_k", "Q4KI8b");
export const { gemv: gemvQ8_0I8b, gemm: gemmQ8_0I8b, gemvRef: gemvQ8_0I8bRef, gemmRef: gemmQ8_0I8bRef } = wrappers("q8_0", "Q8_0I8b");
export const { gemv: gemvQ5_0I8b, gemm: gemmQ5_0I8b, gemvRef: gemvQ5_0I8bRef, gemmRef: gemmQ5_0I8bRef } = wrappers("q5_0", "Q5_0I8b");
export const { gemv: gemvQ5_1I8b, gemm: gemmQ5_1I8b, gemvRef: gemvQ5_1I8bRef, gemmRef: gemmQ5_1I8bRef } = wrappers("q5_1", "Q5_1I8b");
export const { gemv: gemvQ5KI8b, gemm: gemmQ5KI8b, gemvRef: gemvQ5KI8bRef, gemmRef: gemmQ5KI8bRef } = wrappers("q5_k", "Q5KI8b");
export const { gemv: gemvQ6KI8b, gemm: gemmQ6KI8b, gemvRef: gemvQ6KI8bRef, gemmRef: gemmQ6KI8bRef } = wrappers("q6_k", "Q6KI8b");

// ---- scalar twins: the readable specification ---------------------------------------------------------

const F = Math.fround;

/**
 * i8b quantization, per block of 32 consecutive values, in f32:
 *   a = f32(max|x| / 127),  q = round_half_even(f32(x / a))   (|q| <= 127)
 * A block of zeros gets a = 0 and q = 0; a block holding NaN or infinity gets a = NaN and q = 0, so every
 * output it reaches is NaN rather than a finite value computed from the rest of the block.
 */
export function quantizeActivationsI8bRef(x: Float32Array, tokens: number, cols: number): Int8BlockTokens {
  requireShape("quantizeActivationsI8bRef", tokens, cols, "tokens");
  if (x.length !== tokens * cols) throw new RangeError(`quantizeActivationsI8bRef: x has ${x.length} values, expected ${tokens * cols}`);
  const q = new Int8Array(tokens * cols);
  const scale = new Float32Array((tokens * cols) / GROUP);
  for (let b = 0; b < scale.length; b++) {
    let amax = 0;
    for (let i = 0; i < GROUP; i++) amax = Math.max(amax, Math.abs(x[b * GROUP + i]));
    if (!(amax < Infinity)) {
      scale[b] = NaN;
      continue;
    }
    if (amax === 0) continue;
    const a = F(amax / 127);
    scale[b] = a;
    for (let i = 0; i < GROUP; i++) q[b * GROUP + i] = roundHalfEven(F(x[b * GROUP + i] / a));
  }
  return { tokens, cols, q, scale };
}

function requireTwinShapes(fn: string, w: BlockWeights, x: Int8BlockTokens): void {
  if (w.cols !== x.cols) throw new RangeError(`${fn}: matrix has ${w.cols} columns, activations have ${x.cols}`);
  if (w.layout.activations !== "i8b") throw new RangeError(`${fn}: a ${w.layout.tag} matrix takes ${w.layout.activations} activations`);
}

/** The exact integer Σ q_w · q_x over columns [c0, c1) of row r and token t. */
function intDot(w: BlockWeights, x: Int8BlockTokens, t: number, r: number, c0: number, c1: number): number {
  let p = 0;
  for (let c = c0; c < c1; c++) p += w.q[r * w.cols + c] * x.q[t * x.cols + c];
  return p;
}

function intSum(x: Int8BlockTokens, t: number, g: number): number {
  let s = 0;
  for (let c = g * GROUP; c < (g + 1) * GROUP; c++) s += x.q[t * x.cols + c];
  return s;
}

/** f for row r, token t and group g, in the kernels' f32 order (top of this file). */
function groupValue(w: BlockWeights, x: Int8BlockTokens, t: number, r: number, g: number): number {
  const groups = w.cols / GROUP;
  const c = g * GROUP;
  let f: number;
  if (w.layout.scalesPerGroup === 2) {
    const s = (r * groups + g) * 2;
    f = F(F(intDot(w, x, t, r, c, c + 16) * w.scales[s]) + F(intDot(w, x, t, r, c + 16, c + GROUP) * w.scales[s + 1]));
  } else {
    f = F(intDot(w, x, t, r, c, c + GROUP) * w.scales[r * groups + g]);
  }
  if (w.mins !== null) f = F(f + F(w.mins[r * groups + g] * intSum(x, t, g)));
  return f;
}

/** Y[t][r] for every token of x: f32 [x.tokens][w.rows]. The twin of gemmI8b (whose ldy only strides y). */
export function gemmI8bRef(w: BlockWeights, x: Int8BlockTokens): Float32Array {
  requireTwinShapes("gemmI8bRef", w, x);
  const groups = w.cols / GROUP;
  const y = new Float32Array(x.tokens * w.rows);
  for (let t = 0; t < x.tokens; t++) {
    for (let r = 0; r < w.rows; r++) {
      let acc = 0;
      for (let g = 0; g < groups; g++) acc = F(acc + F(groupValue(w, x, t, r, g) * x.scale[t * groups + g]));
      y[t * w.rows + r] = acc;
    }
  }
  return y;
}

/** y[r] for token `token` of x: the twin of gemvI8b. */
export function gemvI8bRef(w: BlockWeights, x: Int8BlockTokens, token: number): Float32Array {
  if (!Number.isInteger(token) || token < 0 || token >= x.tokens) throw new RangeError(`gemvI8bRef: token ${token} outside [0, ${x.tokens})`);
  return gemmI8bRef(w, x).slice(token * w.rows, (token + 1) * w.rows);
}

/** The exact y[t][r] in f64 (no f32 rounding anywhere): what the f32 evaluation approximates. */
export function gemmI8bExactRef(w: BlockWeights, x: Int8BlockTokens): Float64Array {
  return sums(w, x, (p, s) => p * s, (m, X) => m * X, (f, a) => f * a);
}

/** M[t][r] = Σ_g |a| (|s| |P| + |m| |X|) in f64: the scale float errors are relative to (top of this file). */
export function gemmI8bMagnitudeRef(w: BlockWeights, x: Int8BlockTokens): Float64Array {
  return sums(w, x, (p, s) => Math.abs(p * s), (m, X) => Math.abs(m * X), (f, a) => Math.abs(f * a));
}

function sums(
  w: BlockWeights, x: Int8BlockTokens,
  scaled: (p: number, s: number) => number, min: (m: number, X: number) => number, act: (f: number, a: number) => number,
): Float64Array {
  requireTwinShapes("gemmI8bExactRef", w, x);
  const groups = w.cols / GROUP;
  const n = w.layout.scalesPerGroup;
  const y = new Float64Array(x.tokens * w.rows);
  for (let t = 0; t < x.tokens; t++) {
    for (let r = 0; r < w.rows; r++) {
      let acc = 0;
      for (let g = 0; g < groups; g++) {
        const c = g * GROUP;
        let f = 0;
        for (let h = 0; h < n; h++) {
          const span = GROUP / n;
          f += scaled(intDot(w, x, t, r, c + h * span, c + (h + 1) * span), w.scales[(r * groups + g) * n + h]);
        }
        if (w.mins !== null) f += min(w.mins[r * groups + g], intSum(x, t, g));
        acc += act(f, x.scale[t * groups + g]);
      }
      y[t * w.rows + r] = acc;
    }
  }
  return y;
}
