// The start-up probe loadKernels runs on the relaxed-SIMD build before trusting it (relaxed ops may differ
// between engines, and one V8 tier miscompiled one): the matmul kernels on fixed inputs, compared with their
// scalar twins bit for bit: il4 x i8t, and the i8b layouts whose kernels differ between the builds (the 4-bit
// ones, q4_0 with its correction word and q4_1 with its min; q5_0, whose products take the byte dot and
// truncate its activation sums) beside an int8 one (q6_k), with the i8b quantizer. It lives apart from the
// loader (wasm.ts), which only calls the probe it is given.
import { allocMatrix, Int8Activations, Int8BlockActivations, LAYOUTS, qRange, repackInt4, type BlockWeights, type Int4Weights, type LayoutTag } from "./layout.js";
import { gemmI8bRef, gemvI8bRef, quantizeActivationsI8b, quantizeActivationsI8bRef, readActivationsI8b } from "./matmul-i8b.js";
import { writeBlockRows } from "./repack.js";
import { gemm, gemmIl4I8tRef, gemv, gemvIl4I8tRef, quantizeActivations, quantizeActivationsRef, readActivations, setActivations, type Int8Tokens } from "./matmul.js";
import { GROUP } from "./numerics.js";
import type { WasmKernels } from "./wasm.js";

/**
 * Runs every matmul kernel of `k` on fixed inputs that reach the extremes (weights -8 and 7, activations
 * -128 and 127, zero points -128 and 127, negative activations, 7 rows, 5 tokens so both the 4-token tile
 * and the single-token path run) and compares with the twins bit for bit. Returns null when all agree,
 * otherwise what differed. Allocates in k's arena: run it on a throwaway instance.
 */
export function probeMatmul(k: WasmKernels): string | null {
  const rows = 7;
  const cols = 64;
  const tokens = 5;
  const wq = new Int8Array(rows * cols);
  const ws = new Float32Array(rows * (cols / GROUP));
  for (let i = 0; i < wq.length; i++) wq[i] = ((i * 7 + (i >> 5)) % 16) - 8;
  wq.fill(-8, 0, 32);
  wq.fill(7, 32, 64);
  for (let i = 0; i < ws.length; i++) ws[i] = 1 + (i % 3) * 0.25;
  const w: Int4Weights = { rows, cols, q: wq, scales: ws };
  const xq = new Int8Array(tokens * cols);
  for (let i = 0; i < xq.length; i++) xq[i] = ((i * 37 + 11) % 256) - 128;
  xq.fill(-128, 0, 32);
  xq.fill(127, 32, 64);
  const x: Int8Tokens = {
    tokens, cols, q: xq,
    scale: Float32Array.from([1, 0.5, 2, 1, 0.25]),
    zero: Int32Array.from([-128, 127, 0, -3, 5]),
  };
  const m = repackInt4(k, w);
  const act = Int8Activations.alloc(k, tokens, cols);
  const y = k.alloc(4 * rows * tokens);
  const xf = k.alloc(4 * tokens * cols);
  setActivations(k, act, x);
  const want = gemmIl4I8tRef(w, x);
  gemm(k, m, act, y);
  const got = k.f32.slice(y >> 2, (y >> 2) + rows * tokens);
  const bad = firstBitDifference(got, want);
  if (bad >= 0) return `gemm: y[${bad}] = ${got[bad]}, expected ${want[bad]}`;
  for (let t = 0; t < tokens; t++) {
    k.f32.fill(0, y >> 2, (y >> 2) + rows);
    gemv(k, m, act, y, t);
    const g = k.f32.slice(y >> 2, (y >> 2) + rows);
    const wantRow = gemvIl4I8tRef(w, x, t);
    const b = firstBitDifference(g, wantRow);
    if (b >= 0) return `gemv: token ${t} y[${b}] = ${g[b]}, expected ${wantRow[b]}`;
  }
  const xs = new Float32Array(tokens * cols);
  for (let i = 0; i < xs.length; i++) xs[i] = Math.sin(i * 0.7) * (i % 5) - (i % 64 === 3 ? 9 : 0);
  k.f32.set(xs, xf >> 2);
  quantizeActivations(k, xf, act);
  const qr = quantizeActivationsRef(xs, tokens, cols);
  const qk = readActivations(k, act);
  const qb = qk.q.findIndex((v, i) => v !== qr.q[i]);
  if (qb >= 0 || firstBitDifference(qk.scale, qr.scale) >= 0 || qk.zero.some((v, i) => v !== qr.zero[i])) {
    return `quantize_activations: differs from the twin${qb >= 0 ? ` at q[${qb}] (${qk.q[qb]} vs ${qr.q[qb]})` : " in scale or zero point"}`;
  }
  return probeI8b(k, xs, tokens, cols, rows);
}

/** The i8b quantizer on xs, then gemm and gemv of q4_0, q4_1, q5_0 and q6_k matrices over its activations. */
function probeI8b(k: WasmKernels, xs: Float32Array, tokens: number, cols: number, rows: number): string | null {
  const act = Int8BlockActivations.alloc(k, tokens, cols);
  const xf = k.alloc(4 * xs.length, 16);
  k.f32.set(xs, xf >> 2);
  quantizeActivationsI8b(k, xf, act);
  const x = quantizeActivationsI8bRef(xs, tokens, cols);
  const got = readActivationsI8b(k, act);
  const qb = got.q.findIndex((v, i) => v !== x.q[i]);
  if (qb >= 0 || firstBitDifference(got.scale, x.scale) >= 0) return `quantize_activations_i8b: differs from the twin${qb >= 0 ? ` at q[${qb}]` : " in a scale"}`;
  const y = k.alloc(4 * rows * tokens);
  for (const tag of ["q4_0", "q4_1", "q5_0", "q6_k"] as LayoutTag[]) {
    const l = LAYOUTS[tag];
    const [lo, hi] = qRange(l);
    const q = Int8Array.from({ length: rows * cols }, (_, i) => (i < 32 ? lo : i < 64 ? hi : lo + ((i * 7 + (i >> 5)) % (hi - lo + 1))));
    const groups = (rows * cols) / GROUP;
    const scales = Float32Array.from({ length: groups * l.scalesPerGroup }, (_, i) => 1 + (i % 3) * 0.25);
    const mins = l.hasMin ? Float32Array.from({ length: groups }, (_, i) => (i % 2 ? -0.5 : 2)) : null;
    const w: BlockWeights = { layout: l, rows, cols, q, scales, mins };
    const m = allocMatrix(k, l, rows, cols);
    writeBlockRows(k, m, 0, w);
    gemm(k, m, act, y);
    const want = gemmI8bRef(w, x);
    const bad = firstBitDifference(k.f32.slice(y >> 2, (y >> 2) + rows * tokens), want);
    if (bad >= 0) return `gemm_${tag}_i8b: y[${bad}] = ${k.f32[(y >> 2) + bad]}, expected ${want[bad]}`;
    for (let t = 0; t < tokens; t++) {
      gemv(k, m, act, y, t);
      const b = firstBitDifference(k.f32.slice(y >> 2, (y >> 2) + rows), gemvI8bRef(w, x, t));
      if (b >= 0) return `gemv_${tag}_i8b: token ${t} y[${b}] differs from the twin`;
    }
  }
  return null;
}

/** Index of the first element whose f32 bit pattern differs, or -1. */
export function firstBitDifference(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return 0;
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return i;
  return -1;
}
