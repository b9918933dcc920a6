// Matrix kernels of the layouts that hold a llama.cpp file's quantized values (q4_0, q4_1, q4_k, q8_0, q5_0,
// q5_1, q5_k, q6_k; src/kernels/layout.ts documents each) times i8b activations (int8, symmetric, one f32 scale per
// block of 32: the granularity llama.cpp quantizes activations at): GEMV for decode, GEMM for prefill, and the
// i8b activation quantizer. Raw pointers in, nothing allocated. Typed wrappers and scalar twins:
// src/kernels/matmul-i8b.ts.
//
// Every layout runs the same loops, specialised at compile time by its constant id (each export below calls
// the generic @inline function with one): how a cell's values unpack (4-bit nibbles or int8), its scales'
// format (f16 or f32, one or two per row), and whether it has a min, a term of its own:
//
//   y[t][r] = Σ_g a[t][g] · ( s[r][g] · P[t][r][g]  +  m[r][g] · X[t][g] )
//   P[t][r][g] = Σ_{j<32} q[r][32g+j] · x[t][32g+j]   (exact i32; q6_k: two halves, each with its scale)
//   X[t][g]    = Σ_{j<32} x[t][32g+j]                  (exact, carried as f32)
//
// evaluated in f32, one rounding per operation and no fused multiply-add, in this order for every build:
//   f = f32(P) · s  (q6_k: f32(P0) · s0 + f32(P1) · s1);  f = f + m · X (layouts with a min);  acc = acc + f · a
// over the groups in order, so the twin, the baseline build and the relaxed build agree bit for bit.
import { F32_CELL_BYTES, INT8_CELL_BYTES, NIBBLE_CELL_BYTES } from "../src/kernels/strides";
import { f32Scales, fiveBit, halves, hasMin, minBytes, nibbles, offset16, offset8, Q4_0, Q4_1, Q4_K, Q5_0, Q5_1, Q5_K, Q6_K, Q8_0, scaleBytes, valueBytes } from "./layouts";
import { loadRows, loadScales, nibbleDot, nibbleMask, ones16, quadStepBase, quadStepRelaxed, cut, cut0, rowSums, storeRows } from "./matmul-core";
import { prepareGroup } from "./quant-act";
import { ROUND_MAGIC } from "./simd-util";

/** The 4 rows' scales (or mins) of a cell as f32 lanes, exactly: f32 as stored, f16 widened. */
// @ts-ignore: decorator
@inline function cellFloats(L: i32, p: usize): v128 {
  return f32Scales(L) ? v128.load(p) : loadScales(p);
}

/** What a group's partial sums start from: the correction word (q4_0) or 0. */
// @ts-ignore: decorator
@inline function start(L: i32, xcorr: usize): v128 {
  return offset8(L) ? v128.load32_splat(xcorr) : i32x4.splat(0);
}

/** [r0, r1, r2, r3] from the pair sums lo = [r0, r0, r1, r1] and hi = [r2, r2, r3, r3]. */
// @ts-ignore: decorator
@inline function pairSums(lo: v128, hi: v128): v128 {
  return i32x4.add(i32x4.shuffle(lo, hi, 0, 2, 4, 6), i32x4.shuffle(lo, hi, 1, 3, 5, 7));
}

/**
 * The 4 rows' int8 dots over vectors [v0, v1) of a cell at w with one token's widened activations xw (the
 * group's 32 values as i16, each run of 8 in the order 0,2,4,6,1,3,5,7). Vector v holds 4 values of each row
 * (bytes 4i..4i+3: row i), the run v/2's even (v even) or odd values, so one 8-byte splat of xw meets all 4
 * rows. |P| <= 32 · 128 · 127 fits an i32.
 */
// @ts-ignore: decorator
@inline function int8Dot(w: usize, xw: usize, v0: usize, v1: usize): v128 {
  let lo = i32x4.splat(0);
  let hi = i32x4.splat(0);
  // Two vectors a step (v1 - v0 is 4 or 8), the pointers stepped, each vector's halves sign-extended as they
  // load (one pmovsxbw from memory each; extend_high of a loaded vector took V8 11.3 two instructions more).
  const end = w + (v1 << 4);
  for (let wp = w + (v0 << 4), x = xw + (v0 << 3); wp < end; wp += 32, x += 16) {
    const xa = v128.load64_splat(x);
    lo = i32x4.add(lo, i32x4.dot_i16x8_s(v128.load8x8_s(wp), xa));
    hi = i32x4.add(hi, i32x4.dot_i16x8_s(v128.load8x8_s(wp, 8), xa));
    const xb = v128.load64_splat(x, 8);
    lo = i32x4.add(lo, i32x4.dot_i16x8_s(v128.load8x8_s(wp, 16), xb));
    hi = i32x4.add(hi, i32x4.dot_i16x8_s(v128.load8x8_s(wp, 24), xb));
  }
  return pairSums(lo, hi);
}

// 5-bit int8 cells (values 0..31: fiveBit) in the relaxed build, by the byte dot: a run's two vectors (its
// even and its odd values, 4 of each row) interleaved bytewise give rows 0-1 and rows 2-3 with their 8 values
// in order (rows01, rows23), which meet the run's 8 activations splat twice in
// i16x8.relaxed_dot_i8x16_i7x16_s, the weights being the 7-bit operand. An i16 lane sums 2 products a run, 8
// a group: |8 · 31 · 127| < 2^15; rowSums5 widens the two halves' lanes to one i32 per row.

// @ts-ignore: decorator
@inline function rows01(ev: v128, od: v128): v128 {
  return i8x16.shuffle(ev, od, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
}
// @ts-ignore: decorator
@inline function rows23(ev: v128, od: v128): v128 {
  return i8x16.shuffle(ev, od, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
}
// @ts-ignore: decorator
@inline function rowSums5(p01: v128, p23: v128): v128 {
  const one = ones16();
  return pairSums(i32x4.dot_i16x8_s(p01, one), i32x4.dot_i16x8_s(p23, one));
}

/** The 4 rows' dots over a 5-bit int8 cell at w with one token's int8 activations xq (relaxed build). */
// @ts-ignore: decorator
@inline function fiveBitDot(w: usize, xq: usize): v128 {
  let p = i16x8.splat(0);
  let q = i16x8.splat(0);
  const end = w + <usize>INT8_CELL_BYTES;
  for (let x = xq; w < end; w += 32, x += 8) {
    const ev = v128.load(w);
    const od = v128.load(w, 16);
    const xv = v128.load64_splat(x);
    p = i16x8.add(p, i16x8.relaxed_dot_i8x16_i7x16_s(xv, rows01(ev, od)));
    q = i16x8.add(q, i16x8.relaxed_dot_i8x16_i7x16_s(xv, rows23(ev, od)));
  }
  return rowSums5(p, q);
}

/**
 * f = f32(P) · s (+ m · X) for the 4 rows of a cell, from the group's integer dots: p0 (the whole group, or
 * q6_k's first 16 values) and p1 (q6_k's last 16; ignored otherwise).
 */
// @ts-ignore: decorator
@inline function cellValue(L: i32, p0: v128, p1: v128, s: usize, mn: usize, xcorr: usize, xsum: usize): v128 {
  // q5_0's dot ran over q + 16: less 16 · X leaves P exactly. X is exact in xsum's f32 (|X| <= 32 · 127), so
  // the relaxed build's truncation (one cvttps2dq) is exact; the baseline's correction word is -8 · X.
  if (offset16(L)) {
    if (ASC_FEATURE_RELAXED_SIMD) p0 = i32x4.sub(p0, i32x4.shl(i32x4.relaxed_trunc_f32x4_s(v128.load32_splat(xsum)), 4));
    else p0 = i32x4.add(p0, i32x4.shl(v128.load32_splat(xcorr), 1));
  }
  let f: v128;
  if (halves(L)) {
    f = f32x4.add(f32x4.mul(f32x4.convert_i32x4_s(p0), v128.load(s)), f32x4.mul(f32x4.convert_i32x4_s(p1), v128.load(s, F32_CELL_BYTES)));
  } else {
    f = f32x4.mul(f32x4.convert_i32x4_s(p0), cellFloats(L, s));
  }
  if (hasMin(L)) f = f32x4.add(f, f32x4.mul(cellFloats(L, mn), v128.load32_splat(xsum)));
  return f;
}

/** acc + f · a: the group's share of the 4 outputs, a being the token's scale of the group. */
// @ts-ignore: decorator
@inline function addGroup(acc: v128, f: v128, xs: usize): v128 {
  return f32x4.add(acc, f32x4.mul(f, v128.load32_splat(xs)));
}

/**
 * The 4 outputs of one block for one token over `groups` groups from the given pointers (cells of the block,
 * the token's activations), accumulated in order onto acc.
 */
// @ts-ignore: decorator
@inline function blockRow(
  L: i32, acc: v128, w: usize, s: usize, mn: usize, groups: i32,
  xq: usize, xw: usize, xcorr: usize, xs: usize, xsum: usize, m: v128,
): v128 {
  for (let g = 0; g < groups; g++) {
    let f: v128;
    if (nibbles(L)) {
      const p = nibbleDot(w, xq, xw, start(L, xcorr), m);
      f = cellValue(L, p, p, s, mn, xcorr, xsum);
    } else if (ASC_FEATURE_RELAXED_SIMD && fiveBit(L)) {
      const p = fiveBitDot(w, xq);
      f = cellValue(L, p, p, s, mn, xcorr, xsum);
    } else if (halves(L)) {
      f = cellValue(L, int8Dot(w, xw, 0, 4), int8Dot(w, xw, 4, 8), s, mn, xcorr, xsum);
    } else {
      const p = int8Dot(w, xw, 0, 8);
      f = cellValue(L, p, p, s, mn, xcorr, xsum);
    }
    acc = addGroup(acc, f, xs);
    w += valueBytes(L);
    s += scaleBytes(L);
    mn += minBytes(L);
    xq += 32;
    xw += 64;
    xcorr += 4;
    xs += 4;
    xsum += 4;
  }
  return acc;
}

// @ts-ignore: decorator
@inline function gemvGeneric(
  L: i32, wq: usize, ws: usize, wm: usize, rows: i32, cols: i32,
  xq: usize, xw: usize, xcorr: usize, xs: usize, xsum: usize, y: usize,
): void {
  const m = nibbleMask();
  const groups = cols >>> 5;
  const blocks = (rows + 3) >>> 2;
  for (let b = 0; b < blocks; b++) {
    const acc = blockRow(L, f32x4.splat(0), wq, ws, wm, groups, xq, xw, xcorr, xs, xsum, m);
    storeRows(y + (<usize>b << 4), acc, rows - (b << 2));
    wq += <usize>groups * valueBytes(L);
    ws += <usize>groups * scaleBytes(L);
    wm += <usize>groups * minBytes(L);
  }
}

/**
 * One 4-row block times tokens t..t+3 over `groups` groups (a column chunk): each cell's values are unpacked
 * once for the 4 tokens. Continues from the sums a previous chunk left in y (first = false), and leaves its
 * own there; acc runs over the groups in order either way, so chunking changes no rounding. Token strides:
 * xq cols bytes, xw 2·cols, xcorr/xs/xsum 4·(cols/32), y 4·ldy.
 */
// @ts-ignore: decorator
@inline function tile4(
  L: i32, w: usize, s: usize, mn: usize, groups: i32, cols: i32, ldy: i32, rowsInBlock: i32,
  xq: usize, xw: usize, xcorr: usize, xs: usize, xsum: usize, y: usize, first: bool, m: v128,
): void {
  const qs = <usize>cols;
  const wst = <usize>cols << 1;
  const cs = <usize>(cols >>> 5) << 2;
  const ys = <usize>ldy << 2;
  let acc0 = f32x4.splat(0);
  let acc1 = f32x4.splat(0);
  let acc2 = f32x4.splat(0);
  let acc3 = f32x4.splat(0);
  if (!first) {
    acc0 = loadRows(y, rowsInBlock);
    acc1 = loadRows(y + ys, rowsInBlock);
    acc2 = loadRows(y + 2 * ys, rowsInBlock);
    acc3 = loadRows(y + 3 * ys, rowsInBlock);
  }
  for (let g = 0; g < groups; g++) {
    let a0: v128, a1: v128, a2: v128, a3: v128;
    let b0: v128, b1: v128, b2: v128, b3: v128;
    if (nibbles(L)) {
      let s0 = start(L, xcorr);
      let s1 = start(L, xcorr + cs);
      let s2 = start(L, xcorr + 2 * cs);
      let s3 = start(L, xcorr + 3 * cs);
      // Pointers stepped, not offsets computed from the vector's index (see int8Dot).
      const end = w + <usize>NIBBLE_CELL_BYTES;
      for (let wp = w, xp = ASC_FEATURE_RELAXED_SIMD ? xq : xw; wp < end; wp += 16) {
        const v = v128.load(wp);
        if (ASC_FEATURE_RELAXED_SIMD) {
          const lo = cut0(v, m);
          const hi = cut(v, 4, m);
          s0 = quadStepRelaxed(s0, lo, hi, xp);
          s1 = quadStepRelaxed(s1, lo, hi, xp + qs);
          s2 = quadStepRelaxed(s2, lo, hi, xp + 2 * qs);
          s3 = quadStepRelaxed(s3, lo, hi, xp + 3 * qs);
          xp += 8;
        } else {
          const a = cut0(v, m);
          const b = cut(v, 4, m);
          const c = cut(v, 8, m);
          const d = i16x8.shr_u(v, 12);
          s0 = quadStepBase(s0, a, b, c, d, xp);
          s1 = quadStepBase(s1, a, b, c, d, xp + wst);
          s2 = quadStepBase(s2, a, b, c, d, xp + 2 * wst);
          s3 = quadStepBase(s3, a, b, c, d, xp + 3 * wst);
          xp += 16;
        }
      }
      a0 = b0 = rowSums(s0);
      a1 = b1 = rowSums(s1);
      a2 = b2 = rowSums(s2);
      a3 = b3 = rowSums(s3);
    } else if (ASC_FEATURE_RELAXED_SIMD && fiveBit(L)) {
      // 5-bit int8 cells, relaxed build: the byte dot (16 products an instruction against the i16 path's 8),
      // each run's rows interleaved once for the 4 tokens (see fiveBitDot).
      let p0 = i16x8.splat(0), p1 = i16x8.splat(0), p2 = i16x8.splat(0), p3 = i16x8.splat(0);
      let q0 = i16x8.splat(0), q1 = i16x8.splat(0), q2 = i16x8.splat(0), q3 = i16x8.splat(0);
      for (let r: usize = 0; r < 4; r++) {
        const ev = v128.load(w + (r << 5));
        const od = v128.load(w + (r << 5), 16);
        const lo = rows01(ev, od);
        const hi = rows23(ev, od);
        const xp = xq + (r << 3);
        let x = v128.load64_splat(xp);
        p0 = i16x8.add(p0, i16x8.relaxed_dot_i8x16_i7x16_s(x, lo));
        q0 = i16x8.add(q0, i16x8.relaxed_dot_i8x16_i7x16_s(x, hi));
        x = v128.load64_splat(xp + qs);
        p1 = i16x8.add(p1, i16x8.relaxed_dot_i8x16_i7x16_s(x, lo));
        q1 = i16x8.add(q1, i16x8.relaxed_dot_i8x16_i7x16_s(x, hi));
        x = v128.load64_splat(xp + 2 * qs);
        p2 = i16x8.add(p2, i16x8.relaxed_dot_i8x16_i7x16_s(x, lo));
        q2 = i16x8.add(q2, i16x8.relaxed_dot_i8x16_i7x16_s(x, hi));
        x = v128.load64_splat(xp + 3 * qs);
        p3 = i16x8.add(p3, i16x8.relaxed_dot_i8x16_i7x16_s(x, lo));
        q3 = i16x8.add(q3, i16x8.relaxed_dot_i8x16_i7x16_s(x, hi));
      }
      a0 = b0 = rowSums5(p0, q0);
      a1 = b1 = rowSums5(p1, q1);
      a2 = b2 = rowSums5(p2, q2);
      a3 = b3 = rowSums5(p3, q3);
    } else {
      // int8 cells: vectors [0, 8) (or [0, 4) and [4, 8) for q6_k's two halves), each extended once for 4 tokens.
      let l0 = i32x4.splat(0), l1 = i32x4.splat(0), l2 = i32x4.splat(0), l3 = i32x4.splat(0);
      let h0 = i32x4.splat(0), h1 = i32x4.splat(0), h2 = i32x4.splat(0), h3 = i32x4.splat(0);
      a0 = a1 = a2 = a3 = i32x4.splat(0);
      for (let v: usize = 0; v < 8; v++) {
        const wv = v128.load(w + (v << 4));
        const wl = i16x8.extend_low_i8x16_s(wv);
        const wh = i16x8.extend_high_i8x16_s(wv);
        const xp = xw + (v << 3);
        let x = v128.load64_splat(xp);
        l0 = i32x4.add(l0, i32x4.dot_i16x8_s(wl, x));
        h0 = i32x4.add(h0, i32x4.dot_i16x8_s(wh, x));
        x = v128.load64_splat(xp + wst);
        l1 = i32x4.add(l1, i32x4.dot_i16x8_s(wl, x));
        h1 = i32x4.add(h1, i32x4.dot_i16x8_s(wh, x));
        x = v128.load64_splat(xp + 2 * wst);
        l2 = i32x4.add(l2, i32x4.dot_i16x8_s(wl, x));
        h2 = i32x4.add(h2, i32x4.dot_i16x8_s(wh, x));
        x = v128.load64_splat(xp + 3 * wst);
        l3 = i32x4.add(l3, i32x4.dot_i16x8_s(wl, x));
        h3 = i32x4.add(h3, i32x4.dot_i16x8_s(wh, x));
        if (halves(L) && v == 3) {
          a0 = pairSums(l0, h0);
          a1 = pairSums(l1, h1);
          a2 = pairSums(l2, h2);
          a3 = pairSums(l3, h3);
          l0 = l1 = l2 = l3 = h0 = h1 = h2 = h3 = i32x4.splat(0);
        }
      }
      if (halves(L)) {
        b0 = pairSums(l0, h0);
        b1 = pairSums(l1, h1);
        b2 = pairSums(l2, h2);
        b3 = pairSums(l3, h3);
      } else {
        a0 = b0 = pairSums(l0, h0);
        a1 = b1 = pairSums(l1, h1);
        a2 = b2 = pairSums(l2, h2);
        a3 = b3 = pairSums(l3, h3);
      }
    }
    acc0 = addGroup(acc0, cellValue(L, a0, b0, s, mn, xcorr, xsum), xs);
    acc1 = addGroup(acc1, cellValue(L, a1, b1, s, mn, xcorr + cs, xsum + cs), xs + cs);
    acc2 = addGroup(acc2, cellValue(L, a2, b2, s, mn, xcorr + 2 * cs, xsum + 2 * cs), xs + 2 * cs);
    acc3 = addGroup(acc3, cellValue(L, a3, b3, s, mn, xcorr + 3 * cs, xsum + 3 * cs), xs + 3 * cs);
    w += valueBytes(L);
    s += scaleBytes(L);
    mn += minBytes(L);
    xq += 32;
    xw += 64;
    xcorr += 4;
    xs += 4;
    xsum += 4;
  }
  storeRows(y, acc0, rowsInBlock);
  storeRows(y + ys, acc1, rowsInBlock);
  storeRows(y + 2 * ys, acc2, rowsInBlock);
  storeRows(y + 3 * ys, acc3, rowsInBlock);
}

/** Groups per column chunk of a GEMM: 4 tokens' activations of one chunk (24 KiB of q and widened q) stay in L1. */
const CHUNK_GROUPS = 64;

/**
 * Y[t][r] at y + 4·(t·ldy + r) for tokens t < tokens (ldy >= rows; see gemm_il4_i8t in matmul.ts): one 4-row
 * block at a time, one column chunk at a time, 4 tokens at a time; leftover tokens one by one over the row.
 */
// @ts-ignore: decorator
@inline function gemmGeneric(
  L: i32, wq: usize, ws: usize, wm: usize, rows: i32, cols: i32, tokens: i32,
  xq: usize, xw: usize, xcorr: usize, xs: usize, xsum: usize, y: usize, ldy: i32,
): void {
  const m = nibbleMask();
  const groups = cols >>> 5;
  const blocks = (rows + 3) >>> 2;
  const ys = <usize>ldy << 2;
  const tiled = tokens & ~3;
  for (let b = 0; b < blocks; b++) {
    const rowsInBlock = rows - (b << 2);
    const yb = y + (<usize>b << 4);
    for (let g0 = 0; g0 < groups; g0 += CHUNK_GROUPS) {
      const n = min(CHUNK_GROUPS, groups - g0);
      const g = <usize>g0;
      for (let t = 0; t < tiled; t += 4) {
        const tg = (<usize>t * <usize>groups + g) << 2;
        tile4(
          L, wq + g * valueBytes(L), ws + g * scaleBytes(L), wm + g * minBytes(L), n, cols, ldy, rowsInBlock,
          xq + <usize>t * cols + (g << 5), xw + (<usize>t * cols << 1) + (g << 6), xcorr + tg, xs + tg, xsum + tg,
          yb + <usize>t * ys, g0 == 0, m,
        );
      }
    }
    for (let t = tiled; t < tokens; t++) {
      const tg = <usize>t * <usize>groups << 2;
      const acc = blockRow(
        L, f32x4.splat(0), wq, ws, wm, groups, xq + <usize>t * cols, xw + (<usize>t * cols << 1), xcorr + tg, xs + tg, xsum + tg, m,
      );
      storeRows(yb + <usize>t * ys, acc, rowsInBlock);
    }
    wq += <usize>groups * valueBytes(L);
    ws += <usize>groups * scaleBytes(L);
    wm += <usize>groups * minBytes(L);
  }
}

// ---- the exports: one GEMV and one GEMM per layout ----------------------------------------------------
//
// wq/ws/wm: the matrix's value, scale and min regions (wm unused by a layout without a min); xq/xw/xcorr/
// xs/xsum: the first token's int8 values, widened values, correction words, block scales and block sums
// (Int8BlockActivations, src/kernels/layout.ts); y: the output.

export function gemv_q4_0_i8b(wq: usize, ws: usize, wm: usize, rows: i32, cols: i32, xq: usize, xw: usize, xcorr: usize, xs: usize, xsum: usize, y: usize): void {
  gemvGeneric(Q4_0, wq, ws, wm, rows, cols, xq, xw, xcorr, xs, xsum, y);
}
export function gemm_q4_0_i8b(wq: usize, ws: usize, wm: usize, rows: i32, cols: i32, tokens: i32, xq: usize, xw: usize, xcorr: usize, xs: usize, xsum: usize, y: usize, ldy: i32): void {
  gemmGeneric(Q4_0, wq, ws, wm, rows, cols, tokens, xq, xw, xcorr, xs, xsum, y, ldy);
}
export function gemv_q4_1_i8b(wq: usize, ws: usize, wm: usize, rows: i32, cols: i32, xq: usize, xw: usize, xcorr: usize, xs: usize, xsum: usize, y: usize): void {
  gemvGeneric(Q4_1, wq, ws, wm, rows, cols, xq, xw, xcorr, xs, xsum, y);
}
export function gemm_q4_1_i8b(wq: usize, ws: usize, wm: usize, rows: i32, cols: i32, tokens: i32, xq: usize, xw: usize, xcorr: usize, xs: usize, xsum: usize, y: usize, ldy: i32): void {
  gemmGeneric(Q4_1, wq, ws, wm, rows, cols, tokens, xq, xw, xcorr, xs, xsum, y, ldy);
}
export function gemv_q4_k_i8b(wq: usize, ws: usize, wm: usize, rows: i32, cols: i32, xq: usize, xw: usize, xcorr: usize, xs: usize, xsum: usize, y: usize): void {
  gemvGeneric(Q4_K, wq, ws, wm, rows, cols, xq, xw, xcorr, xs, xsum, y);
}
export function gemm_q4_k_i8b(wq: usize, ws: usize, wm: usize, rows: i32, cols: i32, tokens: i32, xq: usize, xw: usize, xcorr: usize, xs: usize, xsum: usize, y: usize, ldy: i32): void {
  gemmGeneric(Q4_K, wq, ws, wm, rows, cols, tokens, xq, xw, xcorr, xs, xsum, y, ldy);
}
export function gemv_q8_0_i8b(wq: usize, ws: usize, wm: usize, rows: i32, cols: i32, xq: usize, xw: usize, xcorr: usize, xs: usize, xsum: usize, y: usize): void {
  gemvGeneric(Q8_0, wq, ws, wm, rows, cols, xq, xw, xcorr, xs, xsum, y);
}
export function gemm_q8_0_i8b(wq: usize, ws: usize, wm: usize, rows: i32, cols: i32, tokens: i32, xq: usize, xw: usize, xcorr: usize, xs: usize, xsum: usize, y: usize, ldy: i32): void {
  gemmGeneric(Q8_0, wq, ws, wm, rows, cols, tokens, xq, xw, xcorr, xs, xsum, y, ldy);
}
export function gemv_q5_0_i8b(wq: usize, ws: usize, wm: usize, rows: i32, cols: i32, xq: usize, xw: usize, xcorr: usize, xs: usize, xsum: usize, y: usize): void {
  gemvGeneric(Q5_0, wq, ws, wm, rows, cols, xq, xw, xcorr, xs, xsum, y);
}
export function gemm_q5_0_i8b(wq: usize, ws: usize, wm: usize, rows: i32, cols: i32, tokens: i32, xq: usize, xw: usize, xcorr: usize, xs: usize, xsum: usize, y: usize, ldy: i32): void {
  gemmGeneric(Q5_0, wq, ws, wm, rows, cols, tokens, xq, xw, xcorr, xs, xsum, y, ldy);
}
export function gemv_q5_1_i8b(wq: usize, ws: usize, wm: usize, rows: i32, cols: i32, xq: usize, xw: usize, xcorr: usize, xs: usize, xsum: usize, y: usize): void {
  gemvGeneric(Q5_1, wq, ws, wm, rows, cols, xq, xw, xcorr, xs, xsum, y);
}
export function gemm_q5_1_i8b(wq: usize, ws: usize, wm: usize, rows: i32, cols: i32, tokens: i32, xq: usize, xw: usize, xcorr: usize, xs: usize, xsum: usize, y: usize, ldy: i32): void {
  gemmGeneric(Q5_1, wq, ws, wm, rows, cols, tokens, xq, xw, xcorr, xs, xsum, y, ldy);
}
export function gemv_q5_k_i8b(wq: usize, ws: usize, wm: usize, rows: i32, cols: i32, xq: usize, xw: usize, xcorr: usize, xs: usize, xsum: usize, y: usize): void {
  gemvGeneric(Q5_K, wq, ws, wm, rows, cols, xq, xw, xcorr, xs, xsum, y);
}
export function gemm_q5_k_i8b(wq: usize, ws: usize, wm: usize, rows: i32, cols: i32, tokens: i32, xq: usize, xw: usize, xcorr: usize, xs: usize, xsum: usize, y: usize, ldy: i32): void {
  gemmGeneric(Q5_K, wq, ws, wm, rows, cols, tokens, xq, xw, xcorr, xs, xsum, y, ldy);
}
export function gemv_q6_k_i8b(wq: usize, ws: usize, wm: usize, rows: i32, cols: i32, xq: usize, xw: usize, xcorr: usize, xs: usize, xsum: usize, y: usize): void {
  gemvGeneric(Q6_K, wq, ws, wm, rows, cols, xq, xw, xcorr, xs, xsum, y);
}
export function gemm_q6_k_i8b(wq: usize, ws: usize, wm: usize, rows: i32, cols: i32, tokens: i32, xq: usize, xw: usize, xcorr: usize, xs: usize, xsum: usize, y: usize, ldy: i32): void {
  gemmGeneric(Q6_K, wq, ws, wm, rows, cols, tokens, xq, xw, xcorr, xs, xsum, y, ldy);
}

// ---- i8b activations ----------------------------------------------------------------------------------

/** The bit pattern of ROUND_MAGIC (1.5·2^23). */
const ROUND_MAGIC_BITS: i32 = 0x4b400000;

/**
 * Quantizes x (f32 [tokens][cols]) per block of 32 consecutive values: a = f32(max|x| / 127), q =
 * round_half_even(f32(x / a)) (|x / a| <= 127 plus a rounding, so |q| <= 127); an all-zero block gets a = 0
 * and q = 0; a block holding NaN or infinity gets a = NaN and q = 0, so every output it reaches is NaN. Then
 * prepare_activations_i8b.
 */
export function quantize_activations_i8b(
  x: usize, tokens: i32, cols: i32, xq: usize, xw: usize, xcorr: usize, xs: usize, xsum: usize,
): void {
  const blocks = tokens * (cols >>> 5);
  const magic = f32x4.splat(ROUND_MAGIC);
  const bias = i32x4.splat(ROUND_MAGIC_BITS);
  let p = x;
  let q = xq;
  let s = xs;
  for (let g = 0; g < blocks; g++) {
    const v0 = v128.load(p);
    const v1 = v128.load(p, 16);
    const v2 = v128.load(p, 32);
    const v3 = v128.load(p, 48);
    const v4 = v128.load(p, 64);
    const v5 = v128.load(p, 80);
    const v6 = v128.load(p, 96);
    const v7 = v128.load(p, 112);
    // f32x4.max propagates NaN; infinity is its own maximum.
    const m4 = f32x4.max(
      f32x4.max(f32x4.max(f32x4.abs(v0), f32x4.abs(v1)), f32x4.max(f32x4.abs(v2), f32x4.abs(v3))),
      f32x4.max(f32x4.max(f32x4.abs(v4), f32x4.abs(v5)), f32x4.max(f32x4.abs(v6), f32x4.abs(v7))),
    );
    const amax = max<f32>(max<f32>(f32x4.extract_lane(m4, 0), f32x4.extract_lane(m4, 1)), max<f32>(f32x4.extract_lane(m4, 2), f32x4.extract_lane(m4, 3)));
    if (!(amax < Infinity) || amax == 0) {
      store<f32>(s, amax == 0 ? 0 : NaN);
      v128.store(q, i32x4.splat(0));
      v128.store(q, i32x4.splat(0), 16);
    } else {
      const a: f32 = amax / <f32>127;
      store<f32>(s, a);
      const av = f32x4.splat(a);
      // |x / a| < 2^22, so adding 1.5·2^23 rounds it half to even into the low mantissa bits.
      const q0 = i32x4.sub(f32x4.add(f32x4.div(v0, av), magic), bias);
      const q1 = i32x4.sub(f32x4.add(f32x4.div(v1, av), magic), bias);
      const q2 = i32x4.sub(f32x4.add(f32x4.div(v2, av), magic), bias);
      const q3 = i32x4.sub(f32x4.add(f32x4.div(v3, av), magic), bias);
      const q4 = i32x4.sub(f32x4.add(f32x4.div(v4, av), magic), bias);
      const q5 = i32x4.sub(f32x4.add(f32x4.div(v5, av), magic), bias);
      const q6 = i32x4.sub(f32x4.add(f32x4.div(v6, av), magic), bias);
      const q7 = i32x4.sub(f32x4.add(f32x4.div(v7, av), magic), bias);
      v128.store(q, i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(q0, q1), i16x8.narrow_i32x4_s(q2, q3)));
      v128.store(q, i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(q4, q5), i16x8.narrow_i32x4_s(q6, q7)), 16);
    }
    p += 128;
    q += 32;
    s += 4;
  }
  prepare_activations_i8b(tokens, cols, xq, xw, xcorr, xsum);
}

/**
 * From xq (int8 [tokens][cols]) derives, per (token, block of 32): the widened copy xw (both builds: the int8
 * kernels read it in either), the correction word xcorr (-8 · Σ q, in the build's format: q4_0's start value,
 * as il4's in quant-act.ts) and the sum xsum (Σ q as f32, exact: the min term's X).
 */
export function prepare_activations_i8b(tokens: i32, cols: i32, xq: usize, xw: usize, xcorr: usize, xsum: usize): void {
  const groups = tokens * (cols >>> 5);
  for (let g = 0; g < groups; g++) {
    store<f32>(xsum, <f32>prepareGroup(xq, xw, xcorr, true));
    xq += 32;
    xw += 64;
    xcorr += 4;
    xsum += 4;
  }
}
