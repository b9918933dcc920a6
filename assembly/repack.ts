// Load-time repack of a llama.cpp file's rows into the layouts that hold them exactly (src/kernels/layout.ts):
// ggml's quantized blocks (formats: src/kernels/ggml-blocks.ts) into q4_1, q4_k, q8_0, q5_0, q5_1, q5_k and
// q6_k, and f32/f16/bf16 elements into the float layouts. Nothing is rounded: values, scales and mins
// move (d·sc and dmin·m are exact in f32). Q4_0 has its own kernel, repack_q4_0 (quantize.ts). Typed wrappers
// and the scalar twins (the block formats read value by value): src/kernels/repack.ts.
//
// Each writes rows [row0, row0 + rows) of a matrix one row at a time: a row owns 4 bytes of every 16-byte
// vector of its block and its own scale and min slots, so two threads writing different rows never touch the
// same bytes. Each returns -1, or the index (within the call) of the first row holding a NaN or infinite d, m,
// dmin or element (written up to that block; the rows after it are not).
import { F32_CELL_BYTES, FLOAT_CELL_BYTES, HALF_CELL_BYTES } from "../src/kernels/strides";
import { f16ToF32, storeNibbles } from "./matmul-core";
import { f32Scales, hasMin, minBytes, Q4_1, Q4_K, Q5_0, Q5_1, Q5_K, Q6_K, Q8_0, scaleBytes, valueBytes } from "./layouts";

// Stored types: compile-time constants only (each has an export of its own), each held in the layout of the
// same name and id.

// @ts-ignore: decorator
@inline function blockValues(T: i32): i32 {
  return T == Q4_K || T == Q5_K || T == Q6_K ? 256 : 32;
}

// @ts-ignore: decorator
@inline function blockBytes(T: i32): usize {
  if (T == Q4_1) return 20;
  if (T == Q5_0) return 22;
  if (T == Q5_1) return 24;
  if (T == Q8_0) return 34;
  if (T == Q4_K) return 144;
  if (T == Q5_K) return 176;
  return 210;
}

// @ts-ignore: decorator
@inline function finiteHalf(h: i32): bool {
  return (h & 0x7c00) != 0x7c00;
}

/**
 * Stores one row's 32 int8 values into its slot of an int8 cell at q (the cell plus 4 · slot): lo holds
 * elements 0..15, hi 16..31. Vector v = 2k + h gets elements 8k + h + {0, 2, 4, 6}.
 */
// @ts-ignore: decorator
@inline function storeInt8(q: usize, lo: v128, hi: v128): void {
  const a = i8x16.shuffle(lo, lo, 0, 2, 4, 6, 1, 3, 5, 7, 8, 10, 12, 14, 9, 11, 13, 15);
  const b = i8x16.shuffle(hi, hi, 0, 2, 4, 6, 1, 3, 5, 7, 8, 10, 12, 14, 9, 11, 13, 15);
  v128.store32_lane(q, a, 0);
  v128.store32_lane(q, a, 1, 16);
  v128.store32_lane(q, a, 2, 32);
  v128.store32_lane(q, a, 3, 48);
  v128.store32_lane(q, b, 0, 64);
  v128.store32_lane(q, b, 1, 80);
  v128.store32_lane(q, b, 2, 96);
  v128.store32_lane(q, b, 3, 112);
}

const NIBBLE = 0x0f;

/** 16 bytes each 16 where bit `first + i` of bits is set (i < 16), else 0: a 5th bit moved into place. */
// @ts-ignore: decorator
@inline function fifthBits(bits: u32, first: i32): v128 {
  const two = <i32>((bits >>> first) & 0xffff);
  const spread = i8x16.shuffle(i16x8.splat(<i16>two), i16x8.splat(<i16>two), 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
  const mask = v128.load(BIT_MASKS);
  return v128.and(i8x16.eq(v128.and(spread, mask), mask), i8x16.splat(<i8>16));
}

const BIT_MASKS: usize = memory.data<u8>([1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128], 16);

/** Sub-block j's 6-bit scale (second: false) or min (true) from a K-type block's 12 packed bytes at s. */
// @ts-ignore: decorator
@inline function scaleMinK4(s: usize, j: i32, second: bool): i32 {
  const jj = <usize>j;
  if (j < 4) return second ? load<u8>(s + jj + 4) & 63 : load<u8>(s + jj) & 63;
  if (second) return (load<u8>(s + jj + 4) >> 4) | ((load<u8>(s + jj) >> 6) << 4);
  return (load<u8>(s + jj + 4) & 0xf) | ((load<u8>(s + jj - 4) >> 6) << 4);
}

/** Stores a scale or min for the row's slot: its f16 bits as they are, or an f32. */
// @ts-ignore: decorator
@inline function storeFloat(T: i32, p: usize, bits: i32, value: f32): void {
  if (f32Scales(T)) store<f32>(p, value);
  else store<u16>(p, <u16>bits);
}

// @ts-ignore: decorator
@inline function repackGeneric(T: i32, src: usize, rows: i32, cols: i32, row0: i32, values: usize, scales: usize, mins: usize): i32 {
  const groups = cols >>> 5;
  const per = blockValues(T);
  const bb = blockBytes(T);
  const blocks = cols / per;
  const rowBytes = <usize>blocks * bb;
  const L = T; // each stored type is held in the layout of the same id
  const stride: usize = f32Scales(L) ? 4 : 2;
  for (let i = 0; i < rows; i++) {
    const r = row0 + i;
    const cell0 = <usize>(r >>> 2) * <usize>groups;
    const slot = <usize>(r & 3);
    let q = values + cell0 * valueBytes(L) + (slot << 2);
    let sc = scales + cell0 * scaleBytes(L) + slot * stride;
    let mn = mins + cell0 * minBytes(L) + slot * stride;
    let p = src + <usize>i * rowBytes;
    for (let b = 0; b < blocks; b++) {
      if (T == Q4_1 || T == Q5_0 || T == Q5_1 || T == Q8_0) {
        const d = <i32>load<u16>(p);
        if (!finiteHalf(d)) return i;
        store<u16>(sc, <u16>d);
        if (hasMin(L)) {
          const m = <i32>load<u16>(p, 2);
          if (!finiteHalf(m)) return i;
          store<u16>(mn, <u16>m);
        }
        if (T == Q8_0) {
          storeInt8(q, v128.load(p, 2), v128.load(p, 18));
        } else {
          const qs = p + (T == Q4_1 ? 4 : T == Q5_0 ? 6 : 8);
          const raw = v128.load(qs);
          let lo = v128.and(raw, i8x16.splat(<i8>NIBBLE));
          let hi = v128.and(i16x8.shr_u(raw, 4), i8x16.splat(<i8>NIBBLE));
          if (T == Q4_1) {
            storeNibbles(q, lo, hi);
          } else {
            const qh = load<u32>(qs - 4);
            // Q5_0's values stay q + 16 as the block stores them (q5_0 takes the 16 back out in its dots).
            lo = v128.or(lo, fifthBits(qh, 0));
            hi = v128.or(hi, fifthBits(qh, 16));
            storeInt8(q, lo, hi);
          }
        }
        p += bb;
        q += valueBytes(L);
        sc += scaleBytes(L);
        mn += minBytes(L);
      } else if (T == Q4_K || T == Q5_K) {
        const dh = <i32>load<u16>(p);
        const mh = <i32>load<u16>(p, 2);
        if (!finiteHalf(dh) || !finiteHalf(mh)) return i;
        const d = f16ToF32(dh);
        const dmin = f16ToF32(mh);
        const qs = p + (T == Q5_K ? 48 : 16);
        for (let s = 0; s < 8; s++) {
          store<f32>(sc, d * <f32>scaleMinK4(p + 4, s, false));
          store<f32>(mn, -(dmin * <f32>scaleMinK4(p + 4, s, true)));
          const run = qs + (<usize>(s >> 1) << 5);
          const shift = (s & 1) << 2;
          let lo = v128.and(i8x16.shr_u(v128.load(run), shift), i8x16.splat(<i8>NIBBLE));
          let hi = v128.and(i8x16.shr_u(v128.load(run, 16), shift), i8x16.splat(<i8>NIBBLE));
          if (T == Q4_K) {
            storeNibbles(q, lo, hi);
          } else {
            const one = i8x16.splat(<i8>1);
            lo = v128.or(lo, i8x16.shl(v128.and(i8x16.shr_u(v128.load(p, 16), s), one), 4));
            hi = v128.or(hi, i8x16.shl(v128.and(i8x16.shr_u(v128.load(p, 32), s), one), 4));
            storeInt8(q, lo, hi);
          }
          q += valueBytes(L);
          sc += scaleBytes(L);
          mn += minBytes(L);
        }
        p += bb;
      } else {
        // Q6_K: group gs = 4·n + k (n the 128-value half) takes nibble k >> 1 of ql[64n + 32(k & 1) + l] and bits
        // 2k..2k+1 of qh[32n + l], l < 32; its two scales are sc[2·gs] and sc[2·gs + 1].
        const dh = <i32>load<u16>(p, 208);
        if (!finiteHalf(dh)) return i;
        const d = f16ToF32(dh);
        for (let gs = 0; gs < 8; gs++) {
          const n = <usize>(gs >> 2);
          const k = gs & 3;
          const ql = p + (n << 6) + (<usize>(k & 1) << 5);
          const qh = p + 128 + (n << 5);
          const shift = (k >> 1) << 2;
          const two = k << 1;
          const three = i8x16.splat(<i8>3);
          let lo = v128.and(i8x16.shr_u(v128.load(ql), shift), i8x16.splat(<i8>NIBBLE));
          let hi = v128.and(i8x16.shr_u(v128.load(ql, 16), shift), i8x16.splat(<i8>NIBBLE));
          lo = v128.or(lo, i8x16.shl(v128.and(i8x16.shr_u(v128.load(qh), two), three), 4));
          hi = v128.or(hi, i8x16.shl(v128.and(i8x16.shr_u(v128.load(qh, 16), two), three), 4));
          storeInt8(q, i8x16.sub(lo, i8x16.splat(<i8>32)), i8x16.sub(hi, i8x16.splat(<i8>32)));
          store<f32>(sc, d * <f32>load<i8>(p + 192 + (<usize>gs << 1)));
          store<f32>(sc, d * <f32>load<i8>(p + 193 + (<usize>gs << 1)), F32_CELL_BYTES);
          q += valueBytes(L);
          sc += scaleBytes(L);
        }
        p += bb;
      }
    }
  }
  return -1;
}

// ---- the exports: one per stored type ------------------------------------------------------------------
//
// src: `rows` rows of blocks, end to end; values/scales/mins: the matrix's regions (mins unused without a min).

export function repack_q4_1(src: usize, rows: i32, cols: i32, row0: i32, values: usize, scales: usize, mins: usize): i32 {
  return repackGeneric(Q4_1, src, rows, cols, row0, values, scales, mins);
}
export function repack_q5_0(src: usize, rows: i32, cols: i32, row0: i32, values: usize, scales: usize, mins: usize): i32 {
  return repackGeneric(Q5_0, src, rows, cols, row0, values, scales, mins);
}
export function repack_q5_1(src: usize, rows: i32, cols: i32, row0: i32, values: usize, scales: usize, mins: usize): i32 {
  return repackGeneric(Q5_1, src, rows, cols, row0, values, scales, mins);
}
export function repack_q8_0(src: usize, rows: i32, cols: i32, row0: i32, values: usize, scales: usize, mins: usize): i32 {
  return repackGeneric(Q8_0, src, rows, cols, row0, values, scales, mins);
}
export function repack_q4_k(src: usize, rows: i32, cols: i32, row0: i32, values: usize, scales: usize, mins: usize): i32 {
  return repackGeneric(Q4_K, src, rows, cols, row0, values, scales, mins);
}
export function repack_q5_k(src: usize, rows: i32, cols: i32, row0: i32, values: usize, scales: usize, mins: usize): i32 {
  return repackGeneric(Q5_K, src, rows, cols, row0, values, scales, mins);
}
export function repack_q6_k(src: usize, rows: i32, cols: i32, row0: i32, values: usize, scales: usize, mins: usize): i32 {
  return repackGeneric(Q6_K, src, rows, cols, row0, values, scales, mins);
}

// ---- float elements into the float layouts ---------------------------------------------------------------

const F32: i32 = 0;
const F16: i32 = 1;
const BF16: i32 = 2;

/**
 * Rows of elements (f32, f16 or bf16) into a float layout: each row's element c goes to column c of its block,
 * at the row's slot. Returns the first row holding NaN or infinity, as the quantized repacks do.
 */
// @ts-ignore: decorator
@inline function repackFloat(E: i32, src: usize, rows: i32, cols: i32, row0: i32, values: usize): i32 {
  const size: usize = E == F32 ? 4 : 2;
  const column: usize = E == F32 ? <usize>FLOAT_CELL_BYTES >>> 5 : <usize>HALF_CELL_BYTES >>> 5;
  const n = <usize>cols;
  for (let i = 0; i < rows; i++) {
    const r = row0 + i;
    let p = src + <usize>i * n * size;
    let q = values + <usize>(r >>> 2) * n * column + <usize>(r & 3) * size;
    for (let c: usize = 0; c < n; c++) {
      if (E == F32) {
        const bits = load<u32>(p);
        if ((bits & 0x7f800000) == 0x7f800000) return i;
        store<u32>(q, bits);
      } else {
        const bits = <u32>load<u16>(p);
        if (E == F16 ? (bits & 0x7c00) == 0x7c00 : (bits & 0x7f80) == 0x7f80) return i;
        store<u16>(q, <u16>bits);
      }
      p += size;
      q += column;
    }
  }
  return -1;
}

export function repack_f32(src: usize, rows: i32, cols: i32, row0: i32, values: usize): i32 {
  return repackFloat(F32, src, rows, cols, row0, values);
}
export function repack_f16(src: usize, rows: i32, cols: i32, row0: i32, values: usize): i32 {
  return repackFloat(F16, src, rows, cols, row0, values);
}
export function repack_bf16(src: usize, rows: i32, cols: i32, row0: i32, values: usize): i32 {
  return repackFloat(BF16, src, rows, cols, row0, values);
}
