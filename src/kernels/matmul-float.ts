// The f32, f16 and bf16 layouts times f32 activations: typed wrappers around assembly/matmul-float.ts and
// their scalar TypeScript twins. Operand layouts: LayoutTag (the weights) and FloatActivations in layout.ts.
//
// What every build computes, for token t and output row r, in f32 with one rounding per operation and no
// fused multiply-add (the weights are the stored elements, widened to f32 exactly):
//
//   e = 0; o = 0
//   for j = 0, 2, 4, ...: e = f32(e + f32(w[r][j] · x[t][j])); o = f32(o + f32(w[r][j+1] · x[t][j+1]))
//   y[t][r] = f32(e + o)
//
// so the twin and both builds agree bit for bit; against the exact value, within (cols + 1)·2^-24 · Σ|w x|.
import { requireRegion, requireTokens } from "./checks.js";
import type { FloatActivations, FloatWeights, LayoutTag, WeightMatrix } from "./layout.js";
import type { WasmKernels } from "./wasm.js";

function requireMatch(fn: string, m: WeightMatrix, act: FloatActivations): void {
  if (m.layout.activations !== "f32") throw new RangeError(`${fn}: a ${m.layout.tag} matrix takes ${m.layout.activations} activations, not f32`);
  if (m.cols !== act.cols) throw new RangeError(`${fn}: matrix has ${m.cols} columns, activations have ${act.cols}`);
}

/** y[r] (f32 [m.rows] at yPtr) = row r of m times token `token` of act. */
export function gemvFloat(k: WasmKernels, m: WeightMatrix, act: FloatActivations, yPtr: number, token = 0): void {
  requireMatch("gemvFloat", m, act);
  requireTokens("gemvFloat", act.tokens, token, 1);
  requireRegion(k, "gemvFloat", "x", act.ptr, 4 * act.tokens * act.cols, 4);
  requireRegion(k, "gemvFloat", "y", yPtr, 4 * m.rows, 4);
  k.exports[m.layout.gemv as "gemv_f32_f32"](m.valuesPtr, m.rows, m.cols, act.ptr + 4 * token * act.cols, yPtr);
}

/** Y (f32 [count] rows of ldy at yPtr) for act's tokens [first, first + count); see gemm in matmul.ts. */
export function gemmFloat(k: WasmKernels, m: WeightMatrix, act: FloatActivations, yPtr: number, count = act.tokens, first = 0, ldy = m.rows): void {
  requireMatch("gemmFloat", m, act);
  requireTokens("gemmFloat", act.tokens, first, count);
  if (!Number.isInteger(ldy) || ldy < m.rows) throw new RangeError(`gemmFloat: output stride ${ldy} is less than the ${m.rows} rows`);
  requireRegion(k, "gemmFloat", "x", act.ptr, 4 * act.tokens * act.cols, 4);
  requireRegion(k, "gemmFloat", "y", yPtr, 4 * (ldy * (count - 1) + m.rows), 4);
  k.exports[m.layout.gemm as "gemm_f32_f32"](m.valuesPtr, m.rows, m.cols, count, act.ptr + 4 * first * act.cols, yPtr, ldy);
}

// One wrapper pair and one twin pair per layout, named after the kernels they call (gemv_f16_f32: gemvF16F32,
// gemvF16F32Ref): each checks the matrix is of its layout, then runs the shared code above and below.
type Gemv = (k: WasmKernels, m: WeightMatrix, act: FloatActivations, yPtr: number, token?: number) => void;
type Gemm = (k: WasmKernels, m: WeightMatrix, act: FloatActivations, yPtr: number, count?: number, first?: number, ldy?: number) => void;

function requireLayout(fn: string, tag: LayoutTag, got: LayoutTag): void {
  if (got !== tag) throw new RangeError(`${fn}: a ${got} matrix, not ${tag}`);
}

function wrappers(tag: LayoutTag, name: string): { gemv: Gemv; gemm: Gemm; gemvRef: typeof gemvFloatRef; gemmRef: typeof gemmFloatRef } {
  return {
    gemv: (k, m, act, yPtr, token) => (requireLayout(`gemv${name}`, tag, m.layout.tag), gemvFloat(k, m, act, yPtr, token)),
    gemm: (k, m, act, yPtr, count, first, ldy) => (requireLayout(`gemm${name}`, tag, m.layout.tag), gemmFloat(k, m, act, yPtr, count, first, ldy)),
    gemvRef: (w, x, tokens, token) => (requireLayout(`gemv${name}Ref`, tag, w.layout.tag), gemvFloatRef(w, x, tokens, token)),
    gemmRef: (w, x, tokens) => (requireLayout(`gemm${name}Ref`, tag, w.layout.tag), gemmFloatRef(w, x, tokens)),
  };
}

export const { gemv: gemvF32F32, gemm: gemmF32F32, gemvRef: gemvF32F32Ref, gemmRef: gemmF32F32Ref } = wrappers("f32", "F32F32");
export const { gemv: gemvF16F32, gemm: gemmF16F32, gemvRef: gemvF16F32Ref, gemmRef: gemmF16F32Ref } = wrappers("f16", "F16F32");
export const { gemv: gemvBf16F32, gemm: gemmBf16F32, gemvRef: gemvBf16F32Ref, gemmRef: gemmBf16F32Ref } = wrappers("bf16", "Bf16F32");

// ---- scalar twins: the readable specification ---------------------------------------------------------

const F = Math.fround;

/** Y[t][r] for every token of x (f32 [tokens][w.cols]): f32 [tokens][w.rows]. The twin of gemmFloat. */
export function gemmFloatRef(w: FloatWeights, x: Float32Array, tokens: number): Float32Array {
  if (x.length !== tokens * w.cols) throw new RangeError(`gemmFloatRef: x has ${x.length} values, expected ${tokens} x ${w.cols}`);
  const y = new Float32Array(tokens * w.rows);
  for (let t = 0; t < tokens; t++) {
    for (let r = 0; r < w.rows; r++) {
      let e = 0;
      let o = 0;
      for (let j = 0; j < w.cols; j += 2) {
        e = F(e + F(w.values[r * w.cols + j] * x[t * w.cols + j]));
        o = F(o + F(w.values[r * w.cols + j + 1] * x[t * w.cols + j + 1]));
      }
      y[t * w.rows + r] = F(e + o);
    }
  }
  return y;
}

/** y[r] for token `token` of x (f32 [tokens][w.cols]): the twin of gemvFloat. */
export function gemvFloatRef(w: FloatWeights, x: Float32Array, tokens: number, token: number): Float32Array {
  if (!Number.isInteger(token) || token < 0 || token >= tokens) throw new RangeError(`gemvFloatRef: token ${token} outside [0, ${tokens})`);
  return gemmFloatRef(w, x, tokens).slice(token * w.rows, (token + 1) * w.rows);
}

/** Σ_j |w[r][j] · x[t][j]| in f64: the scale of the f32 evaluation's error (top of this file). */
export function gemmFloatMagnitudeRef(w: FloatWeights, x: Float32Array, tokens: number): Float64Array {
  const m = new Float64Array(tokens * w.rows);
  for (let t = 0; t < tokens; t++) {
    for (let r = 0; r < w.rows; r++) {
      let a = 0;
      for (let j = 0; j < w.cols; j++) a += Math.abs(w.values[r * w.cols + j] * x[t * w.cols + j]);
      m[t * w.rows + r] = a;
    }
  }
  return m;
}
