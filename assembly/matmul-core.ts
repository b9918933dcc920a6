// Inner loops of the 4-bit x int8 kernels: il4 x i8t (assembly/matmul.ts) and the 4-bit layouts of
// assembly/matmul-i8b.ts. Only ever imported, never re-exported from index.ts: these helpers take v128
// parameters, which cannot be wasm exports (asc refuses an exported function with v128 parameters: error AS112).
//
// The byte layouts are documented once, in src/kernels/layout.ts; their sizes are in src/kernels/strides.ts.
import { GROUP } from "../src/kernels/numerics";
import { F16_CELL_BYTES, NIBBLE_CELL_BYTES, TILE_GROUP_BYTES } from "../src/kernels/strides";

// One (4-row block, group) of a 4-bit layout is 64 bytes: 4 packed vectors, vector p holding bytes e < 4 of
// row i at +4·i+e, with element 8p+e in the low nibble and 8p+4+e in the high one, each a value in 0..15
// (q+8 in il4 and q4_0).

/** Bytes of packed nibbles per (4-row block, group of 32). */
export const BLOCK_GROUP_BYTES: usize = NIBBLE_CELL_BYTES;

// Masks live in memory rather than as v128 constants: Binaryen folds a constant splat into v128.const and
// V8 then re-materialises it inside the loop (three instructions per use, seen with --print-wasm-code). A
// load at function entry stays in a register.
const MASKS: usize = memory.data<u8>([
  0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f,
  0x0f, 0x00, 0x0f, 0x00, 0x0f, 0x00, 0x0f, 0x00, 0x0f, 0x00, 0x0f, 0x00, 0x0f, 0x00, 0x0f, 0x00,
  0x01, 0x00, 0x01, 0x00, 0x01, 0x00, 0x01, 0x00, 0x01, 0x00, 0x01, 0x00, 0x01, 0x00, 0x01, 0x00,
], 16);

/** 0x0F in every byte (relaxed build) or 0x000F in every i16 lane (baseline build). */
// @ts-ignore: decorator
@inline export function nibbleMask(): v128 {
  // Every matmul kernel calls this, so the check below is always compiled. The loops here and in quant-act.ts
  // hard-wire groups of 32 (two 16-byte loads of int8 activations, 64 bytes of nibbles per block), so a
  // different GROUP must fail the build rather than compute garbage. A constant-false branch emits no code.
  if (GROUP != 32) ERROR("the int4 x int8 kernels are written for GROUP = 32 (src/kernels/numerics.ts)");
  if (ASC_FEATURE_RELAXED_SIMD) return v128.load(MASKS);
  return v128.load(MASKS, 16);
}

/** 1 in every i16 lane: pmaddwd against it widens and adds lane pairs. */
// @ts-ignore: decorator
@inline export function ones16(): v128 {
  return v128.load(MASKS, 32);
}

/** Bytes of f16 scales per (4-row block, group of 32): one per row. */
export const BLOCK_GROUP_SCALE_BYTES: usize = F16_CELL_BYTES;

/** 2^112: an f16's exponent and mantissa shifted into an f32's place, times this, is the f16's value. */
export const F16_REBIAS: f32 = 5.192296858534828e33;

/** loadScales' two constants in every lane, in memory for the reason the masks are (a load per group, not three instructions). */
const F16_SIGN_MASK: usize = memory.data<u32>([0x8fffffff, 0x8fffffff, 0x8fffffff, 0x8fffffff], 16);
const F16_REBIAS_LANES: usize = memory.data<f32>([F16_REBIAS, F16_REBIAS, F16_REBIAS, F16_REBIAS], 16);

/**
 * Stores one row's 32 nibbles into its slot of a nibble cell at q (the row's first byte: the cell plus 4 ·
 * slot): lo holds elements 0..15 and hi elements 16..31, each in 0..15, one per byte. Packed vector p's bytes e
 * get element 8p+e in the low nibble and 8p+4+e in the high one.
 */
// @ts-ignore: decorator
@inline export function storeNibbles(q: usize, lo: v128, hi: v128): void {
  const a = i8x16.shuffle(lo, hi, 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27);
  const b = i8x16.shuffle(lo, hi, 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31);
  // b's bytes are below 16, so an i16 shift by 4 moves no bit across a byte.
  const packed = v128.or(a, i16x8.shl(b, 4));
  v128.store32_lane(q, packed, 0);
  v128.store32_lane(q, packed, 1, 16);
  v128.store32_lane(q, packed, 2, 32);
  v128.store32_lane(q, packed, 3, 48);
}

/** A finite f16's bits (sign included) to its f32 value, exactly: normal, subnormal, ±0. */
// @ts-ignore: decorator
@inline export function f16ToF32(h: i32): f32 {
  const mag = reinterpret<f32>((h & 0x7fff) << 13) * F16_REBIAS;
  return (h & 0x8000) != 0 ? -mag : mag;
}

/**
 * The 4 rows' f16 scales at `scales` (finite: the loaders refuse infinity and NaN) as f32 lanes, exactly.
 * Sign-extended to i32 and shifted left by 13, each lane holds the f16's exponent and mantissa in an f32's
 * bits 13-27 and copies of its sign in bits 28-31; the mask keeps bit 31 of those. That f32 is the f16's
 * value times 2^-112, normal or subnormal (a subnormal f16 becomes a subnormal f32), so one multiply by 2^112
 * makes it the f16's value, exactly (zero stays a signed zero). A Q4_0 file may hold negative scales.
 */
// @ts-ignore: decorator
@inline export function loadScales(scales: usize): v128 {
  const bits = v128.and(i32x4.shl(v128.load16x4_s(scales), 13), v128.load(F16_SIGN_MASK));
  return f32x4.mul(bits, v128.load(F16_REBIAS_LANES));
}

/** acc + f32(isum) · scales (loadScales' lanes); one rounding for the product and one for the sum, in every build. */
// @ts-ignore: decorator
@inline export function accumulate(acc: v128, isum: v128, scales: v128): v128 {
  return f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(isum), scales));
}

// ---- the dots ------------------------------------------------------------------------------------------
//
// A (block, group) is 4 packed vectors, each holding 4 bytes (8 elements) of each of the 4 rows, so a dot
// against activations splat to all rows leaves every row's partial in its own lanes: no shuffles.
// Relaxed build: the vector's low and high nibbles (7-bit operands) meet x[8p..8p+4) and x[8p+4..8p+8) in
// i16x8.relaxed_dot_i8x16_i7x16_s on raw int8 activations; two i16 lanes per row, widened once per group.
// Baseline build: read as i16x8, lane l of packed vector p holds 4 nibbles of row l/2 (elements 8p+e, 8p+4+e,
// 8p+e+1, 8p+5+e in bits 0-3, 4-7, 8-11, 12-15; e = 0 for even l, 2 for odd); each nibble position, cut
// into i16 lanes, meets one i16 pair of x (xw: per 8 elements x[0,2,4,6,1,3,5,7], see prepare_activations) in
// pmaddwd, which leaves one i32 lane per row.
// One or two packed vectors per step, in a loop: with a whole group's dots in one block V8 issued every load
// and cut first and spilled them (the reason blockDot also handles one group per iteration).

/** s + packed vector `v`'s dots with one token, relaxed: x = x[8p..8p+8) of the group. The i16 adds wrap, and
 * a lane ends at Σ q_w · q_x over its 16 elements (it starts at -8 · Σ q_x over them), |·| <= 16·8·128 =
 * 16384, so the wrapped sum is exact; no dot saturates (2 products <= 15·128 each). */
// @ts-ignore: decorator
@inline export function quadStepRelaxed(s: v128, lo: v128, hi: v128, x: usize): v128 {
  return i16x8.add(s, i16x8.add(
    i16x8.relaxed_dot_i8x16_i7x16_s(v128.load32_splat(x), lo),
    i16x8.relaxed_dot_i8x16_i7x16_s(v128.load32_splat(x, 4), hi),
  ));
}

/** s + packed vector p's dots with one token, baseline: cuts a..d, xw = the 16 widened bytes of the vector. */
// @ts-ignore: decorator
@inline export function quadStepBase(s: v128, a: v128, b: v128, c: v128, d: v128, xw: usize): v128 {
  return i32x4.add(s, i32x4.add(
    i32x4.add(i32x4.dot_i16x8_s(a, v128.load32_splat(xw)), i32x4.dot_i16x8_s(b, v128.load32_splat(xw, 4))),
    i32x4.add(i32x4.dot_i16x8_s(c, v128.load32_splat(xw, 8)), i32x4.dot_i16x8_s(d, v128.load32_splat(xw, 12))),
  ));
}

/** Low nibbles (relaxed: bytes; baseline: bits 0-3 of each i16 lane). */
// @ts-ignore: decorator
@inline export function cut0(v: v128, m: v128): v128 {
  return v128.and(v, m);
}

/** The nibbles `bits` up (i16x8.shr_u + and: V8 lowers i8x16.shr_u to five x64 instructions). */
// @ts-ignore: decorator
@inline export function cut(v: v128, bits: i32, m: v128): v128 {
  return v128.and(i16x8.shr_u(v, bits), m);
}

/** The group's i16x8 partials (relaxed) as one i32 per row; the baseline's are already. */
// @ts-ignore: decorator
@inline export function rowSums(s: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i32x4.dot_i16x8_s(s, ones16());
  return s;
}

/** Stores the 4 outputs of a block, or only the first `n` when the block holds padding rows. */
// @ts-ignore: decorator
@inline export function storeRows(y: usize, v: v128, n: i32): void {
  if (n >= 4) {
    v128.store(y, v);
  } else {
    store<f32>(y, f32x4.extract_lane(v, 0));
    if (n > 1) store<f32>(y, f32x4.extract_lane(v, 1), 4);
    if (n > 2) store<f32>(y, f32x4.extract_lane(v, 2), 8);
  }
}

/**
 * The 4 rows' integer dots with one token over one cell of nibbles at w: Σ_j n[row][j] · q_x[j] + the start
 * value, as i32 lanes. `start` is what every partial starts from: il4's and q4_0's correction word (xcorr,
 * -8 · Σ q_x, which takes their +8 nibble offset back out: two i16 halves in the relaxed build, one i32 in
 * the baseline one), or 0 for the unsigned nibbles of q4_1 and q4_k. xq: the token's 32 int8 activations;
 * xw: the baseline build's widened copy.
 */
// @ts-ignore: decorator
@inline export function nibbleDot(w: usize, xq: usize, xw: usize, start: v128, m: v128): v128 {
  let d = start;
  const end = w + BLOCK_GROUP_BYTES;
  if (ASC_FEATURE_RELAXED_SIMD) {
    // Two packed vectors a step, the pointers stepped rather than offsets computed from p: V8 11.3 then
    // addresses every load in one instruction and runs the loop's own increments and test once per two
    // vectors. One vector a step with x = xq + p/2 took 17 instructions a vector; a group written out
    // whole had its loads hoisted ahead of the dots and spilled (docs/performance.md, changelog: "The GEMV
    // loops step their pointers").
    for (let x = xq; w < end; w += 32, x += 16) {
      const a = v128.load(w);
      d = quadStepRelaxed(d, cut0(a, m), cut(a, 4, m), x);
      const b = v128.load(w, 16);
      d = quadStepRelaxed(d, cut0(b, m), cut(b, 4, m), x + 8);
    }
  } else {
    for (let x = xw; w < end; w += 16, x += 16) {
      const v = v128.load(w);
      d = quadStepBase(d, cut0(v, m), cut(v, 4, m), cut(v, 8, m), i16x8.shr_u(v, 12), x);
    }
  }
  return rowSums(d);
}

/**
 * Σ_g s[row][g] · Σ q_w · q_x for the 4 rows of one block and one token, accumulated over the groups in order
 * (the twin adds in the same order). Each group's partial starts from the token's correction word (xcorr),
 * which takes the weights' +8 nibble offset back out, so the group sum is exact with no epilogue. One group
 * per iteration: unrolled by two, V8 issued both groups' loads and nibble cuts ahead of the dots and spilled
 * most of them to the stack (the baseline GEMV ran at 9.3 GB/s that way, 14.5 GB/s this way).
 */
// @ts-ignore: decorator
@inline export function blockDot(w: usize, s: usize, groups: i32, xq: usize, xw: usize, xcorr: usize, m: v128): v128 {
  let acc = f32x4.splat(0);
  for (let g = 0; g < groups; g++) {
    acc = accumulate(acc, nibbleDot(w, xq, xw, v128.load32_splat(xcorr), m), loadScales(s));
    w += BLOCK_GROUP_BYTES;
    s += BLOCK_GROUP_SCALE_BYTES;
    xq += 32;
    xw += 64;
    xcorr += 4;
  }
  return acc;
}

/**
 * The block's outputs for one token from its accumulated group sums: s_x · (acc - z · wsum), wsum being the
 * rows' dequantized weight sums (Σ_g s_w · Σ q_w), which carry the activation zero point in one step.
 */
// @ts-ignore: decorator
@inline export function finish(acc: v128, wsum: usize, xs: usize, xz: usize): v128 {
  const z = f32x4.convert_i32x4_s(v128.load32_splat(xz));
  return f32x4.mul(f32x4.sub(acc, f32x4.mul(z, v128.load(wsum))), v128.load32_splat(xs));
}

// ---- GEMM: 4 tokens per pass over a block's weights, each unpacked vector reused by all 4 -----------------
//
// One packed vector (8 elements of each of the block's 4 rows) at a time: its cuts meet the 4 tokens'
// activations before the next vector is cut, so the loop holds 2 (relaxed) or 4 (baseline) cuts, 4 partial
// sums and 4 accumulators, within the 16 xmm registers (unpacking a whole group at once spilled).
//
// The relaxed build reads the 4 tokens from their tile (writeTiles in quant-act.ts: one pointer, 32 bytes a
// step) and splats two of them from one 16-byte load with shuffles and two with load-splats. V8 11.3 gives
// each load-splat its own address instruction and a shuffle takes a vector port; half and half measured
// fastest (one thread, gate/up and down at 32 tokens, weights from DRAM, one-off A/B in one process: 85 GOPS
// from q with 4 load-splats, 91 from the tile with 4 load-splats or with 4 shuffles, 97 half and half; a
// step written out for the whole group spilled, 64).

/** Loads what storeRows stored (lanes past `n` are 0), never reading beyond the block's real rows. */
// @ts-ignore: decorator
@inline export function loadRows(y: usize, n: i32): v128 {
  if (n >= 4) return v128.load(y);
  let v = f32x4.splat(0);
  v = f32x4.replace_lane(v, 0, load<f32>(y));
  if (n > 1) v = f32x4.replace_lane(v, 1, load<f32>(y, 4));
  if (n > 2) v = f32x4.replace_lane(v, 2, load<f32>(y, 8));
  return v;
}

/**
 * One 4-row block times tokens t..t+3, over `groups` groups starting at the given pointers (a column chunk):
 * writes y[t+j][rows of the block] for j < 4. Chunks after the first continue from the unscaled sums left
 * in y, and only the last applies the zero point and s_x (finish), so chunking changes no rounding. The
 * relaxed build reads xw as the tokens' tile at the chunk's first group (TILE_GROUP_BYTES per group) and
 * ignores xcorr; the baseline build reads xw (2·cols bytes per token) and xcorr (4·(cols/32)). y's
 * stride is 4·ldy (ldy = the output's row stride in floats).
 */
export function blockTile4(
  w: usize, s: usize, wsum: usize, groups: i32, cols: i32, ldy: i32, rowsInBlock: i32,
  xw: usize, xcorr: usize, xs: usize, xz: usize, y: usize, first: bool, last: bool,
): void {
  const m = nibbleMask();
  const ws = <usize>cols << 1;
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
    let s0: v128, s1: v128, s2: v128, s3: v128;
    if (ASC_FEATURE_RELAXED_SIMD) {
      s0 = v128.load32_splat(xw);
      s1 = v128.load32_splat(xw, 4);
      s2 = v128.load32_splat(xw, 8);
      s3 = v128.load32_splat(xw, 12);
      let x = xw + 16;
      const wEnd = w + BLOCK_GROUP_BYTES;
      for (let wp = w; wp < wEnd; wp += 16) {
        const v = v128.load(wp);
        const lo = cut0(v, m);
        const hi = cut(v, 4, m);
        const pair = v128.load(x);
        s0 = i16x8.add(s0, i16x8.add(
          i16x8.relaxed_dot_i8x16_i7x16_s(i32x4.shuffle(pair, pair, 0, 0, 0, 0), lo),
          i16x8.relaxed_dot_i8x16_i7x16_s(i32x4.shuffle(pair, pair, 1, 1, 1, 1), hi),
        ));
        s1 = i16x8.add(s1, i16x8.add(
          i16x8.relaxed_dot_i8x16_i7x16_s(i32x4.shuffle(pair, pair, 2, 2, 2, 2), lo),
          i16x8.relaxed_dot_i8x16_i7x16_s(i32x4.shuffle(pair, pair, 3, 3, 3, 3), hi),
        ));
        s2 = quadStepRelaxed(s2, lo, hi, x + 16);
        s3 = quadStepRelaxed(s3, lo, hi, x + 24);
        x += 32;
      }
    } else {
      s0 = v128.load32_splat(xcorr);
      s1 = v128.load32_splat(xcorr + cs);
      s2 = v128.load32_splat(xcorr + 2 * cs);
      s3 = v128.load32_splat(xcorr + 3 * cs);
      for (let p: usize = 0; p < BLOCK_GROUP_BYTES; p += 16) {
        const v = v128.load(w + p);
        const a = cut0(v, m);
        const b = cut(v, 4, m);
        const c = cut(v, 8, m);
        const d = i16x8.shr_u(v, 12);
        const xp = xw + p;
        s0 = quadStepBase(s0, a, b, c, d, xp);
        s1 = quadStepBase(s1, a, b, c, d, xp + ws);
        s2 = quadStepBase(s2, a, b, c, d, xp + 2 * ws);
        s3 = quadStepBase(s3, a, b, c, d, xp + 3 * ws);
      }
    }
    const sw = loadScales(s);
    acc0 = accumulate(acc0, rowSums(s0), sw);
    acc1 = accumulate(acc1, rowSums(s1), sw);
    acc2 = accumulate(acc2, rowSums(s2), sw);
    acc3 = accumulate(acc3, rowSums(s3), sw);
    w += BLOCK_GROUP_BYTES;
    s += BLOCK_GROUP_SCALE_BYTES;
    xw += ASC_FEATURE_RELAXED_SIMD ? TILE_GROUP_BYTES : 64;
    xcorr += 4;
  }
  if (!last) {
    storeRows(y, acc0, rowsInBlock);
    storeRows(y + ys, acc1, rowsInBlock);
    storeRows(y + 2 * ys, acc2, rowsInBlock);
    storeRows(y + 3 * ys, acc3, rowsInBlock);
    return;
  }
  storeRows(y, finish(acc0, wsum, xs, xz), rowsInBlock);
  storeRows(y + ys, finish(acc1, wsum, xs + 4, xz + 4), rowsInBlock);
  storeRows(y + 2 * ys, finish(acc2, wsum, xs + 8, xz + 8), rowsInBlock);
  storeRows(y + 3 * ys, finish(acc3, wsum, xs + 12, xz + 12), rowsInBlock);
}
