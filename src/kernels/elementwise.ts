// RMSNorm, interleaved RoPE, SwiGLU and GeGLU: the scalar TypeScript twins and the typed wrappers around
// the Wasm kernels of assembly/elementwise.ts. The twins compute in float64 and round each result to f32
// once; the kernels compute in f32. Agreement (checked by test/kernels/elementwise.test.ts):
//   rmsnorm  |kernel - twin| <= 1e-5 · |twin|                   (f32 sum of squares, dim <= 4096)
//   rope     |kernel - twin| <= 2^-22 · (|x[2i]| + |x[2i+1]|)   (bit-exact in the 'simd' build)
//   swiglu   |kernel - twin| <= 1e-6 · |twin| + 1e-30           (vector e^x, ~1 ulp)
//   geglu    |kernel - twin| <= (1e-6 + 4e-7 · |2z|) · |twin| + 1e-30 + 1e-37 · |gate|
//            (z = sqrt(2/pi)(g + 0.044715 g^3) is computed in f32, and e^-2z carries its rounding times |2z|;
//            e^x saturates at e^88, so a large negative gate gives about gate · 6e-39 instead of -0)
import { requireCount, requireRegion } from "./checks.js";
import type { WasmKernels } from "./wasm.js";

// ---------------------------------------------------------------------------------------------------
// RMSNorm

/** out[t] = x[t] · (mean(x[t]²) + eps)^(-1/2) · w over `rows` rows of `dim`; out may be x. */
export function rmsnormRef(x: Float32Array, w: Float32Array, out: Float32Array, rows: number, dim: number, eps: number): void {
  checkRmsnorm("rmsnormRef", rows, dim, eps);
  if (x.length < rows * dim || out.length < rows * dim || w.length < dim) {
    throw new RangeError(`rmsnormRef: arrays shorter than rows·dim = ${rows * dim} (w: ${dim})`);
  }
  for (let t = 0; t < rows; t++) {
    const o = t * dim;
    let ss = 0;
    for (let i = 0; i < dim; i++) ss += x[o + i] * x[o + i];
    const r = 1 / Math.sqrt(ss / dim + eps);
    for (let i = 0; i < dim; i++) out[o + i] = x[o + i] * r * w[i];
  }
}

/** Wasm RMSNorm; pointers address f32 arrays x, out: [rows][dim] and w: [dim]. */
export function rmsnorm(wasm: WasmKernels, x: number, w: number, out: number, rows: number, dim: number, eps: number): void {
  const fn = "rmsnorm";
  checkRmsnorm(fn, rows, dim, eps);
  requireRegion(wasm, fn, "x", x, rows * dim * 4);
  requireRegion(wasm, fn, "w", w, dim * 4);
  requireRegion(wasm, fn, "out", out, rows * dim * 4);
  wasm.exports.rmsnorm(x, w, out, rows, dim, eps);
}

function checkRmsnorm(fn: string, rows: number, dim: number, eps: number): void {
  requireCount(fn, "rows", rows);
  requireCount(fn, "dim", dim, 1);
  // eps = 0 would turn an all-zero row into 0 · inf = NaN.
  if (!(eps > 0) || !Number.isFinite(eps)) throw new RangeError(`${fn}: eps must be a finite number > 0, got ${eps}`);
}

// ---------------------------------------------------------------------------------------------------
// RoPE

/**
 * Precomputed rotation table for interleaved RoPE.
 * Layout: `data` is f32 [positions][headDim / 2][2]; entry (p, i) holds cos(p·ω_i) at p·headDim + 2i and
 * sin(p·ω_i) at p·headDim + 2i + 1. Pairing cos and sin per frequency lets the kernel fetch both for two
 * rotation pairs with one 16-byte load.
 */
export interface RopeTable {
  headDim: number;
  positions: number;
  data: Float32Array;
}

/** A RopeTable copied into Wasm memory (`ptr` is the byte address of `data`). */
export interface RopeTablePtr {
  headDim: number;
  positions: number;
  ptr: number;
}

/**
 * Builds the table for positions 0 .. positions-1 from the per-pair inverse frequencies ω_i
 * (headDim / 2 of them, llama3 scaling already applied by the caller). Angles are p·ω_i in float64, so
 * large positions keep full f32 accuracy in cos and sin.
 */
export function buildRopeTables(headDim: number, positions: number, inverseFrequencies: Float32Array): RopeTable {
  checkRopeHeadDim("buildRopeTables", headDim);
  requireCount("buildRopeTables", "positions", positions, 1);
  const half = headDim / 2;
  if (inverseFrequencies.length !== half) {
    throw new RangeError(`buildRopeTables: expected ${half} inverse frequencies for headDim ${headDim}, got ${inverseFrequencies.length}`);
  }
  const data = new Float32Array(positions * headDim);
  for (let p = 0; p < positions; p++) {
    for (let i = 0; i < half; i++) {
      const angle = p * inverseFrequencies[i];
      data[p * headDim + 2 * i] = Math.cos(angle);
      data[p * headDim + 2 * i + 1] = Math.sin(angle);
    }
  }
  return { headDim, positions, data };
}

/** Copies a table into a fresh arena block of Wasm memory. */
export function uploadRopeTable(wasm: WasmKernels, table: RopeTable): RopeTablePtr {
  const ptr = wasm.alloc(table.data.byteLength);
  wasm.f32.set(table.data, ptr >> 2);
  return { headDim: table.headDim, positions: table.positions, ptr };
}

/**
 * Rotates in place `rows` rows of x, each [nHeads][headDim], row t at position pos0 + t:
 * (z[2i], z[2i+1]) -> (z[2i]·c - z[2i+1]·s, z[2i]·s + z[2i+1]·c). Products are rounded to f32 before the
 * sum, exactly as the 'simd' kernel does.
 */
export function ropeRef(x: Float32Array, rows: number, nHeads: number, table: RopeTable, pos0: number): void {
  const { headDim } = table;
  checkRope("ropeRef", rows, nHeads, headDim, table.positions, pos0);
  if (x.length < rows * nHeads * headDim) throw new RangeError(`ropeRef: x is shorter than rows·nHeads·headDim`);
  const f = Math.fround;
  for (let t = 0; t < rows; t++) {
    const tab = (pos0 + t) * headDim;
    for (let h = 0; h < nHeads; h++) {
      const o = (t * nHeads + h) * headDim;
      for (let i = 0; i < headDim; i += 2) {
        const c = table.data[tab + i];
        const s = table.data[tab + i + 1];
        const a = x[o + i];
        const b = x[o + i + 1];
        x[o + i] = f(a * c) - f(b * s);
        x[o + i + 1] = f(a * s) + f(b * c);
      }
    }
  }
}

/** Wasm RoPE in place on f32 [rows][nHeads][headDim] at `x`; headDim % 4 == 0. */
export function rope(wasm: WasmKernels, x: number, rows: number, nHeads: number, table: RopeTablePtr, pos0: number): void {
  const fn = "rope";
  const { headDim } = table;
  checkRope(fn, rows, nHeads, headDim, table.positions, pos0);
  requireRegion(wasm, fn, "x", x, rows * nHeads * headDim * 4);
  requireRegion(wasm, fn, "table", table.ptr, table.positions * headDim * 4);
  wasm.exports.rope(x, rows, nHeads, headDim, table.ptr, pos0);
}

function checkRopeHeadDim(fn: string, headDim: number): void {
  if (!Number.isInteger(headDim) || headDim <= 0 || headDim % 4 !== 0) {
    throw new RangeError(`${fn}: headDim must be a positive multiple of 4 (two rotation pairs per vector), got ${headDim}`);
  }
}

function checkRope(fn: string, rows: number, nHeads: number, headDim: number, positions: number, pos0: number): void {
  checkRopeHeadDim(fn, headDim);
  requireCount(fn, "rows", rows);
  requireCount(fn, "nHeads", nHeads);
  requireCount(fn, "pos0", pos0);
  if (pos0 + rows > positions) {
    throw new RangeError(`${fn}: positions ${pos0}..${pos0 + rows - 1} exceed the table's ${positions} positions`);
  }
}

// ---------------------------------------------------------------------------------------------------
// SwiGLU

/** out[i] = silu(gate[i]) · up[i] with silu(g) = g / (1 + e^-g); out may alias gate or up. */
export function swigluRef(gate: Float32Array, up: Float32Array, out: Float32Array, n: number): void {
  requireCount("swigluRef", "n", n);
  if (gate.length < n || up.length < n || out.length < n) throw new RangeError(`swigluRef: arrays shorter than n = ${n}`);
  for (let i = 0; i < n; i++) {
    const g = gate[i];
    out[i] = (g / (1 + Math.exp(-g))) * up[i];
  }
}

/** Wasm SwiGLU over n f32 at gate, up -> out. */
export function swiglu(wasm: WasmKernels, gate: number, up: number, out: number, n: number): void {
  checkGated(wasm, "swiglu", gate, up, out, n);
  wasm.exports.swiglu(gate, up, out, n);
}

/** The arguments of a gated kernel (swiglu, geglu): n f32 each at gate, up and out. */
function checkGated(wasm: WasmKernels, fn: string, gate: number, up: number, out: number, n: number): void {
  requireCount(fn, "n", n);
  requireRegion(wasm, fn, "gate", gate, n * 4);
  requireRegion(wasm, fn, "up", up, n * 4);
  requireRegion(wasm, fn, "out", out, n * 4);
}

// ---------------------------------------------------------------------------------------------------
// GeGLU

/** GELU's tanh approximation: 0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3))). */
export const GELU_TANH = { c: Math.sqrt(2 / Math.PI), a: 0.044715 } as const;

/**
 * out[i] = gelu_tanh(gate[i]) · up[i]; out may alias gate or up. gelu_tanh(g) = 0.5 g (1 + tanh z) is
 * computed as g / (1 + e^-2z), the same function without 1 + tanh z's cancellation for negative g.
 */
export function gegluRef(gate: Float32Array, up: Float32Array, out: Float32Array, n: number): void {
  requireCount("gegluRef", "n", n);
  if (gate.length < n || up.length < n || out.length < n) throw new RangeError(`gegluRef: arrays shorter than n = ${n}`);
  for (let i = 0; i < n; i++) {
    const g = gate[i];
    const z = GELU_TANH.c * (g + GELU_TANH.a * g * g * g);
    out[i] = (g / (1 + Math.exp(-2 * z))) * up[i];
  }
}

/** Wasm GeGLU over n f32 at gate, up -> out. */
export function geglu(wasm: WasmKernels, gate: number, up: number, out: number, n: number): void {
  checkGated(wasm, "geglu", gate, up, out, n);
  wasm.exports.geglu(gate, up, out, n);
}

// ---------------------------------------------------------------------------------------------------
// Residual add

/** dst[i] += src[i] in f32 (one rounding per element, as the kernel). */
export function addIntoRef(dst: Float32Array, src: Float32Array, n: number): void {
  requireCount("addIntoRef", "n", n);
  if (dst.length < n || src.length < n) throw new RangeError(`addIntoRef: arrays shorter than n = ${n}`);
  for (let i = 0; i < n; i++) dst[i] = Math.fround(dst[i] + src[i]);
}

/** Wasm residual add: dst[i] += src[i] for n f32. */
export function addInto(wasm: WasmKernels, dst: number, src: number, n: number): void {
  const fn = "addInto";
  requireCount(fn, "n", n);
  requireRegion(wasm, fn, "dst", dst, n * 4);
  requireRegion(wasm, fn, "src", src, n * 4);
  wasm.exports.add_into(dst, src, n);
}
