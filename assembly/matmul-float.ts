// Matrix kernels of the float layouts (f32, f16, bf16: a llama.cpp file's unquantized matrices, computed with
// the values the file holds, never with fewer bits) times f32 activations: GEMV for decode, GEMM for prefill.
// Raw pointers in, nothing allocated. Layouts: src/kernels/layout.ts; typed wrappers and scalar twins:
// src/kernels/matmul-float.ts.
//
// A 4-row block stores its columns in order, each column as the 4 rows' values side by side (16 bytes of f32,
// or 8 of f16 or bf16), so a column times one activation splat leaves each row's product in its own lane.
// Every build computes, per row r and token t, in f32 with one rounding per operation and no fused
// multiply-add:
//   e = Σ_{j even} w[r][j] · x[t][j],  o = Σ_{j odd} w[r][j] · x[t][j]   (each summed in order of j)
//   y[t][r] = e + o
// Two chains, so consecutive columns' adds do not wait on each other; the twin sums in the same order.
import { FLOAT_CELL_BYTES, HALF_CELL_BYTES } from "../src/kernels/strides";
import { loadScales, storeRows } from "./matmul-core";

const F32: i32 = 0;
const F16: i32 = 1;
const BF16: i32 = 2;

/** Bytes of one column of a block: the 4 rows' values. */
// @ts-ignore: decorator
@inline function columnBytes(E: i32): usize {
  return E == F32 ? <usize>FLOAT_CELL_BYTES >>> 5 : <usize>HALF_CELL_BYTES >>> 5;
}

/**
 * The 4 rows' values of the column at w as f32 lanes, exactly: f32 as stored; f16 widened by loadScales
 * (exact for every finite f16, which is all a loader lets in); bf16 shifted into an f32's high half.
 */
// @ts-ignore: decorator
@inline function column(E: i32, w: usize): v128 {
  if (E == F32) return v128.load(w);
  if (E == F16) return loadScales(w);
  return i32x4.shl(v128.load16x4_u(w), 16);
}

/** acc + w · x[j] for the 4 rows. */
// @ts-ignore: decorator
@inline function step(acc: v128, w: v128, x: usize): v128 {
  return f32x4.add(acc, f32x4.mul(w, v128.load32_splat(x)));
}

/** One block's 4 outputs for one token: columns [0, cols) from w (the block's first column) and x. */
// @ts-ignore: decorator
@inline function blockRow(E: i32, w: usize, cols: i32, x: usize): v128 {
  let e = f32x4.splat(0);
  let o = f32x4.splat(0);
  const cb = columnBytes(E);
  for (let j = 0; j < cols; j += 2) {
    e = step(e, column(E, w), x);
    o = step(o, column(E, w + cb), x + 4);
    w += 2 * cb;
    x += 8;
  }
  return f32x4.add(e, o);
}

// @ts-ignore: decorator
@inline function gemvGeneric(E: i32, w: usize, rows: i32, cols: i32, x: usize, y: usize): void {
  const blocks = (rows + 3) >>> 2;
  const blockBytes = <usize>cols * columnBytes(E);
  for (let b = 0; b < blocks; b++) {
    storeRows(y + (<usize>b << 4), blockRow(E, w, cols, x), rows - (b << 2));
    w += blockBytes;
  }
}

/**
 * Y[t][r] at y + 4·(t·ldy + r) for tokens t < tokens, x holding the tokens' rows of cols f32 end to end: one
 * 4-row block at a time (its columns stay in L2 for every token), 4 tokens at a time, each column loaded once
 * for the 4, summed in the GEMV's order; leftover tokens one by one.
 */
// @ts-ignore: decorator
@inline function gemmGeneric(E: i32, w: usize, rows: i32, cols: i32, tokens: i32, x: usize, y: usize, ldy: i32): void {
  const blocks = (rows + 3) >>> 2;
  const cb = columnBytes(E);
  const blockBytes = <usize>cols * cb;
  const ys = <usize>ldy << 2;
  const xs = <usize>cols << 2;
  const tiled = tokens & ~3;
  for (let b = 0; b < blocks; b++) {
    const rowsInBlock = rows - (b << 2);
    const yb = y + (<usize>b << 4);
    for (let t = 0; t < tiled; t += 4) {
      let e0 = f32x4.splat(0), e1 = f32x4.splat(0), e2 = f32x4.splat(0), e3 = f32x4.splat(0);
      let o0 = f32x4.splat(0), o1 = f32x4.splat(0), o2 = f32x4.splat(0), o3 = f32x4.splat(0);
      let wp = w;
      let xp = x + <usize>t * xs;
      for (let j = 0; j < cols; j += 2) {
        const we = column(E, wp);
        const wo = column(E, wp + cb);
        e0 = step(e0, we, xp);
        o0 = step(o0, wo, xp + 4);
        e1 = step(e1, we, xp + xs);
        o1 = step(o1, wo, xp + xs + 4);
        e2 = step(e2, we, xp + 2 * xs);
        o2 = step(o2, wo, xp + 2 * xs + 4);
        e3 = step(e3, we, xp + 3 * xs);
        o3 = step(o3, wo, xp + 3 * xs + 4);
        wp += 2 * cb;
        xp += 8;
      }
      const yt = yb + <usize>t * ys;
      storeRows(yt, f32x4.add(e0, o0), rowsInBlock);
      storeRows(yt + ys, f32x4.add(e1, o1), rowsInBlock);
      storeRows(yt + 2 * ys, f32x4.add(e2, o2), rowsInBlock);
      storeRows(yt + 3 * ys, f32x4.add(e3, o3), rowsInBlock);
    }
    for (let t = tiled; t < tokens; t++) storeRows(yb + <usize>t * ys, blockRow(E, w, cols, x + <usize>t * xs), rowsInBlock);
    w += blockBytes;
  }
}

// ---- the exports: one GEMV and one GEMM per element type -----------------------------------------------
//
// w: the matrix's values; x: the first token's f32 activations (tokens' rows of cols end to end); y: the output.

export function gemv_f32_f32(w: usize, rows: i32, cols: i32, x: usize, y: usize): void {
  gemvGeneric(F32, w, rows, cols, x, y);
}
export function gemm_f32_f32(w: usize, rows: i32, cols: i32, tokens: i32, x: usize, y: usize, ldy: i32): void {
  gemmGeneric(F32, w, rows, cols, tokens, x, y, ldy);
}
export function gemv_f16_f32(w: usize, rows: i32, cols: i32, x: usize, y: usize): void {
  gemvGeneric(F16, w, rows, cols, x, y);
}
export function gemm_f16_f32(w: usize, rows: i32, cols: i32, tokens: i32, x: usize, y: usize, ldy: i32): void {
  gemmGeneric(F16, w, rows, cols, tokens, x, y, ldy);
}
export function gemv_bf16_f32(w: usize, rows: i32, cols: i32, x: usize, y: usize): void {
  gemvGeneric(BF16, w, rows, cols, x, y);
}
export function gemm_bf16_f32(w: usize, rows: i32, cols: i32, tokens: i32, x: usize, y: usize, ldy: i32): void {
  gemmGeneric(BF16, w, rows, cols, tokens, x, y, ldy);
}
