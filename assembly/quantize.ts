// Load-time weight kernels: float rows (bf16, f16 or f32, the raw little-endian bytes of a checkpoint)
// quantized to the model's int4 recipe, and ggml Q4_0 blocks (a GGUF file's weights) repacked, both
// straight into the il4 layout the matmul kernels read (Int4Matrix in src/kernels/layout.ts), with the
// group scales and the per-row dequantized weight sums. Twins, wrappers and the recipe's exact wording:
// src/kernels/quantize.ts.
//
// Both write rows [row0, row0 + rows) of a matrix one row at a time: each row owns 4 bytes of every 16-byte
// packed vector of its 4-row block, so any row range can be written (a stacked q|k|v matrix starts its
// k part wherever q ends) and two threads writing different rows never touch the same bytes.
//
// Both store each group's scale as f16 bits, as the matmul kernels read it; a Q4_0 block's d moves as it is.
//
// A third kernel, quantize_rows_q4_0, runs quantize_rows' recipe but writes ggml Q4_0 blocks instead of il4: what `mobilellm convert` stores in a GGUF file, so that repacking the file gives
// the matrix quantizing the folder gives.

import { BLOCK_GROUP_BYTES, BLOCK_GROUP_SCALE_BYTES, F16_REBIAS, f16ToF32, storeNibbles } from "./matmul-core";

/** Element types of quantize_rows' input (the wrapper's codes, DTYPE_CODE in src/kernels/quantize.ts). */
const F32: i32 = 0;
const F16: i32 = 1;
const BF16: i32 = 2;

/** torch.finfo(float32).eps: the recipe's lower clamp on a weight group's scale. */
const SCALE_MIN: f32 = 1.1920928955078125e-7;
/** 1.5·2^23 + 8: adding it to x in [-8, 7] rounds x half to even and leaves x + 8 in the low 4 bits. */
const ROUND_NIBBLE: f32 = 12582920.0;

/**
 * Quantizes `rows` rows of `cols` weights at src (dtype 0 = f32, 1 = f16, 2 = bf16; row-major) into
 * rows row0.. of the il4 matrix at qs/scales/wsum, each group of 32: s = max(f32(max|w| / 7.5), eps),
 * q = clamp(round_half_even(f32(w / s)), -8, 7), and the scale stored as f16(s)'s bits (round to nearest even).
 * Returns -1, or the index (from 0, within this call) of the first row holding NaN or infinity, or a group
 * whose scale overflows f16; the groups of that row before the bad one are written, the rows after it are not.
 */
export function quantize_rows(
  src: usize, dtype: i32, rows: i32, cols: i32, row0: i32, qs: usize, scales: usize, wsum: usize,
): i32 {
  const groups = cols >>> 5;
  const rowBytes = <usize>cols << (dtype == F32 ? 2 : 1);
  for (let i = 0; i < rows; i++) {
    const p = src + <usize>i * rowBytes;
    const r = row0 + i;
    let ok: bool;
    // One call per element type with a constant dtype, so each inlined copy has its loads fixed.
    if (dtype == F32) ok = quantizeRow(p, F32, groups, r, qs, scales, wsum);
    else if (dtype == F16) ok = quantizeRow(p, F16, groups, r, qs, scales, wsum);
    else ok = quantizeRow(p, BF16, groups, r, qs, scales, wsum);
    if (!ok) return i;
  }
  return -1;
}

/** Elements 4k..4k+3 of the group at p as f32 lanes, exactly (every f16 and bf16 is an f32). */
// @ts-ignore: decorator
@inline function load4(p: usize, dtype: i32, k: usize): v128 {
  if (dtype == F32) return v128.load(p + (k << 4));
  const h = v128.load16x4_u(p + (k << 3));
  if (dtype == BF16) return i32x4.shl(h, 16);
  return f16x4ToF32(h);
}

/**
 * Four f16 (zero-extended in i32 lanes) to f32. The magnitude bits shifted by 13 are an f32 2^112 times
 * too small, normal or subnormal, so one multiply scales them exactly; infinity and NaN (exponent 31) get
 * the f32 exponent 255 instead, so they stay what they are.
 */
// @ts-ignore: decorator
@inline function f16x4ToF32(h: v128): v128 {
  const a = v128.and(h, i32x4.splat(0x7fff));
  const o = i32x4.shl(a, 13);
  const scaled = f32x4.mul(o, f32x4.splat(F16_REBIAS));
  const special = i32x4.gt_s(a, i32x4.splat(0x7bff));
  const mag = v128.bitselect(v128.or(o, i32x4.splat(0x70000000)), scaled, special);
  return v128.or(mag, i32x4.shl(v128.and(h, i32x4.splat(0x8000)), 16));
}

/** The largest of the lanes' |x| bit patterns (as i32 they order like the magnitudes; NaN above infinity). */
// @ts-ignore: decorator
@inline function absBits(v: v128): v128 {
  return v128.and(v, i32x4.splat(0x7fffffff));
}

// @ts-ignore: decorator
@inline function quantizeRow(
  src: usize, dtype: i32, groups: i32, r: i32, qs: usize, scales: usize, wsum: usize,
): bool {
  const block = <usize>(r >>> 2) * <usize>groups;
  const lane = <usize>(r & 3);
  let q = qs + block * BLOCK_GROUP_BYTES + (lane << 2);
  let sc = scales + block * BLOCK_GROUP_SCALE_BYTES + (lane << 1);
  const groupBytes: usize = dtype == F32 ? 128 : 64;
  let acc: f32 = 0;
  for (let g = 0; g < groups; g++) {
    const v0 = load4(src, dtype, 0);
    const v1 = load4(src, dtype, 1);
    const v2 = load4(src, dtype, 2);
    const v3 = load4(src, dtype, 3);
    const v4 = load4(src, dtype, 4);
    const v5 = load4(src, dtype, 5);
    const v6 = load4(src, dtype, 6);
    const v7 = load4(src, dtype, 7);
    const s32 = groupScale(maxAbsBits(v0, v1, v2, v3, v4, v5, v6, v7));
    if (s32 < 0) return false;
    const h = f32ToF16Bits(s32);
    if (h >= 0x7c00) return false; // s >= 65520 rounds to infinity
    const s = f16ToF32(h);
    // The group is quantized with the f32 scale, as the recipe says; only the stored scale is rounded.
    const sv = f32x4.splat(s32);
    const n0 = nibbles(v0, sv);
    const n1 = nibbles(v1, sv);
    const n2 = nibbles(v2, sv);
    const n3 = nibbles(v3, sv);
    const n4 = nibbles(v4, sv);
    const n5 = nibbles(v5, sv);
    const n6 = nibbles(v6, sv);
    const n7 = nibbles(v7, sv);
    // Packed vector p holds elements 8p+e (low nibble, in n_{2p}) and 8p+4+e (high nibble, in n_{2p+1}).
    const packed = i8x16.narrow_i16x8_u(
      i16x8.narrow_i32x4_u(v128.or(n0, i32x4.shl(n1, 4)), v128.or(n2, i32x4.shl(n3, 4))),
      i16x8.narrow_i32x4_u(v128.or(n4, i32x4.shl(n5, 4)), v128.or(n6, i32x4.shl(n7, 4))),
    );
    v128.store32_lane(q, packed, 0);
    v128.store32_lane(q, packed, 1, 16);
    v128.store32_lane(q, packed, 2, 32);
    v128.store32_lane(q, packed, 3, 48);
    store<u16>(sc, <u16>h);
    const t = i32x4.add(i32x4.add(i32x4.add(n0, n1), i32x4.add(n2, n3)), i32x4.add(i32x4.add(n4, n5), i32x4.add(n6, n7)));
    const qsum = i32x4.extract_lane(t, 0) + i32x4.extract_lane(t, 1) + i32x4.extract_lane(t, 2) + i32x4.extract_lane(t, 3) - 256;
    acc = acc + <f32>qsum * s;
    src += groupBytes;
    q += BLOCK_GROUP_BYTES;
    sc += BLOCK_GROUP_SCALE_BYTES;
  }
  store<f32>(wsum + (<usize>r << 2), acc);
  return true;
}

/** The largest |w| of a group's 32 lanes, as f32 bits (NaN above infinity, both at 0x7f800000 or more). */
// @ts-ignore: decorator
@inline function maxAbsBits(v0: v128, v1: v128, v2: v128, v3: v128, v4: v128, v5: v128, v6: v128, v7: v128): i32 {
  let m = i32x4.max_s(
    i32x4.max_s(i32x4.max_s(absBits(v0), absBits(v1)), i32x4.max_s(absBits(v2), absBits(v3))),
    i32x4.max_s(i32x4.max_s(absBits(v4), absBits(v5)), i32x4.max_s(absBits(v6), absBits(v7))),
  );
  m = i32x4.max_s(m, i32x4.shuffle(m, m, 2, 3, 0, 1));
  m = i32x4.max_s(m, i32x4.shuffle(m, m, 1, 0, 3, 2));
  return i32x4.extract_lane(m, 0);
}

/** The recipe's f32 scale max(f32(max|w| / 7.5), SCALE_MIN), or -1 for a group holding NaN or infinity. */
// @ts-ignore: decorator
@inline function groupScale(maxBits: i32): f32 {
  if (maxBits >= 0x7f800000) return -1;
  const s: f32 = reinterpret<f32>(maxBits) / <f32>7.5;
  return s < SCALE_MIN ? SCALE_MIN : s;
}

/**
 * Quantizes `rows` rows of `cols` weights at src (dtype as quantize_rows; row-major) into ggml Q4_0 blocks
 * at out ([rows][cols/32] blocks of 18 bytes: the f16 scale d, then 16 bytes, byte j holding q[j] + 8 in
 * its low nibble and q[j + 16] + 8 in its high one), by quantize_rows' rule:
 * s = max(f32(max|w| / 7.5), eps), q = clamp(round_half_even(f32(w / s)), -8, 7), d = f16(s). Returns -1, or the
 * index (from 0, within this call) of the first row quantize_rows refuses (NaN, infinity,
 * a scale past the largest f16); the rows before it are written.
 */
export function quantize_rows_q4_0(src: usize, dtype: i32, rows: i32, cols: i32, out: usize): i32 {
  const groups = cols >>> 5;
  const rowBytes = <usize>cols << (dtype == F32 ? 2 : 1);
  for (let i = 0; i < rows; i++) {
    const p = src + <usize>i * rowBytes;
    const o = out + <usize>i * <usize>groups * 18;
    let ok: bool;
    if (dtype == F32) ok = quantizeRowQ4_0(p, F32, groups, o);
    else if (dtype == F16) ok = quantizeRowQ4_0(p, F16, groups, o);
    else ok = quantizeRowQ4_0(p, BF16, groups, o);
    if (!ok) return i;
  }
  return -1;
}

// @ts-ignore: decorator
@inline function quantizeRowQ4_0(src: usize, dtype: i32, groups: i32, out: usize): bool {
  const groupBytes: usize = dtype == F32 ? 128 : 64;
  for (let g = 0; g < groups; g++) {
    const v0 = load4(src, dtype, 0);
    const v1 = load4(src, dtype, 1);
    const v2 = load4(src, dtype, 2);
    const v3 = load4(src, dtype, 3);
    const v4 = load4(src, dtype, 4);
    const v5 = load4(src, dtype, 5);
    const v6 = load4(src, dtype, 6);
    const v7 = load4(src, dtype, 7);
    const s = groupScale(maxAbsBits(v0, v1, v2, v3, v4, v5, v6, v7));
    if (s < 0) return false;
    const h = f32ToF16Bits(s);
    if (h >= 0x7c00) return false; // s >= 65520 rounds to infinity
    const sv = f32x4.splat(s);
    // n_k holds elements 4k..4k+3: byte j of the block is element j (n0..n3) | element j + 16 (n4..n7) << 4.
    const packed = i8x16.narrow_i16x8_u(
      i16x8.narrow_i32x4_u(v128.or(nibbles(v0, sv), i32x4.shl(nibbles(v4, sv), 4)), v128.or(nibbles(v1, sv), i32x4.shl(nibbles(v5, sv), 4))),
      i16x8.narrow_i32x4_u(v128.or(nibbles(v2, sv), i32x4.shl(nibbles(v6, sv), 4)), v128.or(nibbles(v3, sv), i32x4.shl(nibbles(v7, sv), 4))),
    );
    store<u16>(out, <u16>h);
    v128.store(out, packed, 2);
    src += groupBytes;
    out += 18;
  }
  return true;
}

/**
 * q + 8 in [0, 15] per i32 lane, q = clamp(round_half_even(w / s), -8, 7). Clamping before rounding gives
 * the same q (the bounds are integers) and keeps the sum below 2^22, where adding ROUND_NIBBLE rounds.
 */
// @ts-ignore: decorator
@inline function nibbles(w: v128, s: v128): v128 {
  const x = f32x4.pmax(f32x4.pmin(f32x4.div(w, s), f32x4.splat(7)), f32x4.splat(-8));
  return v128.and(f32x4.add(x, f32x4.splat(ROUND_NIBBLE)), i32x4.splat(15));
}

/** Positive finite f32 to f16 bits, round to nearest even; 0x7c00 (infinity) when it overflows. */
function f32ToF16Bits(x: f32): i32 {
  const b = reinterpret<i32>(x);
  const e = ((b >>> 23) & 0xff) - 112;
  const mant = b & 0x7fffff;
  if (e >= 31) return 0x7c00;
  if (e <= 0) {
    // subnormal half: units of 2^-24
    const shift = 14 - e;
    if (shift > 24) return 0;
    const m = mant | 0x800000;
    let q = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem == half && (q & 1) == 1)) q++;
    return q;
  }
  let q = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (q & 1) == 1)) q++; // a carry into the exponent is right, up to 0x7c00
  return q;
}

/**
 * Repacks `rows` rows of ggml Q4_0 blocks at src ([rows][cols/32] blocks of 18 bytes: the f16 scale d, then
 * 16 bytes, byte j holding q[j] + 8 in its low nibble and q[j + 16] + 8 in its high one; w = q · d) into
 * rows row0.. of the il4 matrix at qs/scales/wsum. Q4_0 and il4 both store q + 8, so the nibbles only move;
 * d's bits are stored as they are. Returns -1, or the index (within this call) of the first row with a NaN or
 * infinite d (written up to that block; the rows after it are not).
 */
export function repack_q4_0(src: usize, rows: i32, cols: i32, row0: i32, qs: usize, scales: usize, wsum: usize): i32 {
  const groups = cols >>> 5;
  const low = i8x16.splat(0x0f);
  for (let i = 0; i < rows; i++) {
    const r = row0 + i;
    const block = <usize>(r >>> 2) * <usize>groups;
    const lane = <usize>(r & 3);
    let q = qs + block * BLOCK_GROUP_BYTES + (lane << 2);
    let sc = scales + block * BLOCK_GROUP_SCALE_BYTES + (lane << 1);
    let p = src + <usize>i * <usize>groups * 18;
    let acc: f32 = 0;
    for (let g = 0; g < groups; g++) {
      const d = <i32>load<u16>(p);
      if ((d & 0x7fff) >= 0x7c00) return i;
      const s = f16ToF32(d);
      const raw = v128.load(p, 2);
      const lo = v128.and(raw, low); // elements 0..15
      const hi = v128.and(i16x8.shr_u(raw, 4), low); // elements 16..31
      storeNibbles(q, lo, hi);
      store<u16>(sc, <u16>d);
      const t = i32x4.extadd_pairwise_i16x8_u(i16x8.add(i16x8.extadd_pairwise_i8x16_u(lo), i16x8.extadd_pairwise_i8x16_u(hi)));
      const qsum = i32x4.extract_lane(t, 0) + i32x4.extract_lane(t, 1) + i32x4.extract_lane(t, 2) + i32x4.extract_lane(t, 3) - 256;
      acc = acc + <f32>qsum * s;
      p += 18;
      q += BLOCK_GROUP_BYTES;
      sc += BLOCK_GROUP_SCALE_BYTES;
    }
    store<f32>(wsum + (<usize>r << 2), acc);
  }
  return -1;
}
