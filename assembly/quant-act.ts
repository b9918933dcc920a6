// Dynamic asymmetric per-token int8 quantization of activations (torchao 8da4w), plus the per-group
// values the int4 kernels need. Twin: quantizeActivationsRef in src/kernels/matmul.ts.
import { ROUND_MAGIC } from "./simd-util";
import { TILE_GROUP_BYTES, TILE_TOKENS } from "../src/kernels/strides";
import { SCALE_MIN as SCALE_MIN_F64 } from "../src/kernels/numerics";

/** torch.finfo(float32).eps: the recipe's lower clamp on the scale, so an all-zero row gets s = eps, q = z. */
const SCALE_MIN: f32 = <f32>SCALE_MIN_F64;
/** The bit pattern of ROUND_MAGIC (1.5·2^23): see quantize_activations. */
const ROUND_MAGIC_BITS: i32 = 0x4b400000;

/**
 * Quantizes x (f32 [tokens][cols]) into xq (int8 [tokens][cols]), xs (f32 scale per token) and xz
 * (i32 zero point per token), then runs prepare_activations. All scalar steps are f32, rounding half to even.
 * A row holding NaN or infinity gets scale NaN, zero point 0 and q = 0, so every product with it is NaN
 * (pmin/pmax below would otherwise drop a NaN and quantize the rest into a finite, wrong row).
 */
export function quantize_activations(
  x: usize, tokens: i32, cols: i32, xq: usize, xw: usize, xcorr: usize, xs: usize, xz: usize,
): void {
  const rowBytes = <usize>cols << 2;
  for (let t = 0; t < tokens; t++) {
    const row = x + <usize>t * rowBytes;
    const end = row + rowBytes;
    // Starting from 0 folds in the recipe's min(min x, 0) and max(max x, 0). pmin/pmax are one minps/maxps
    // each (min/max add NaN and -0 fix-ups, ~7 instructions in V8); inputs are finite, and a -0 minimum
    // gives the same s, z and q as +0.
    let mnv = f32x4.splat(0);
    let mxv = f32x4.splat(0);
    // The sum is a cheap screen for NaN and infinity (they reach it, while pmin/pmax may drop a NaN);
    // a row it flags is checked element by element, so huge finite values are not mistaken for them.
    let sum = f32x4.splat(0);
    for (let p = row; p < end; p += 16) {
      const v = v128.load(p);
      mnv = f32x4.pmin(mnv, v);
      mxv = f32x4.pmax(mxv, v);
      sum = f32x4.add(sum, v);
    }
    if (!finite4(sum) && !rowFinite(row, end)) {
      store<f32>(xs + (<usize>t << 2), NaN);
      store<i32>(xz + (<usize>t << 2), 0);
      memory.fill(xq + <usize>t * cols, 0, <usize>cols);
      continue;
    }
    const mn = min<f32>(
      min<f32>(f32x4.extract_lane(mnv, 0), f32x4.extract_lane(mnv, 1)),
      min<f32>(f32x4.extract_lane(mnv, 2), f32x4.extract_lane(mnv, 3)),
    );
    const mx = max<f32>(
      max<f32>(f32x4.extract_lane(mxv, 0), f32x4.extract_lane(mxv, 1)),
      max<f32>(f32x4.extract_lane(mxv, 2), f32x4.extract_lane(mxv, 3)),
    );
    let s: f32 = (mx - mn) / <f32>255;
    if (!(s >= SCALE_MIN)) s = SCALE_MIN;
    const dmin: f32 = mn / s;
    const dmax: f32 = mx / s;
    const fromMin: f32 = <f32>-128 + dmin;
    const fromMax: f32 = <f32>127 + dmax;
    const zf: f32 = fromMin + fromMax > 0 ? <f32>-128 - dmin : <f32>127 - dmax;
    const z = <i32>nearest<f32>(max<f32>(<f32>-128, min<f32>(<f32>127, zf)));
    store<f32>(xs + (<usize>t << 2), s);
    store<i32>(xz + (<usize>t << 2), z);

    const sv = f32x4.splat(s);
    // |x / s| <= 255 (s spans the row's range), so adding 1.5·2^23 rounds it to an integer, half to even,
    // in the low mantissa bits, and subtracting the constant's bits (less z) reads it out as an i32: the
    // same values as nearest + trunc_sat, which V8 lowers to about ten instructions.
    const magic = f32x4.splat(ROUND_MAGIC);
    const bias = i32x4.splat(ROUND_MAGIC_BITS - z);
    let q = xq + <usize>t * cols;
    for (let p = row; p < end; p += 64) {
      const q0 = i32x4.sub(f32x4.add(f32x4.div(v128.load(p), sv), magic), bias);
      const q1 = i32x4.sub(f32x4.add(f32x4.div(v128.load(p, 16), sv), magic), bias);
      const q2 = i32x4.sub(f32x4.add(f32x4.div(v128.load(p, 32), sv), magic), bias);
      const q3 = i32x4.sub(f32x4.add(f32x4.div(v128.load(p, 48), sv), magic), bias);
      // The saturating narrows are the clamp to [-128, 127].
      v128.store(q, i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(q0, q1), i16x8.narrow_i32x4_s(q2, q3)));
      q += 16;
    }
  }
  prepare_activations(tokens, cols, xq, xw, xcorr);
}

/** True if all four lanes are finite (x - x is 0 exactly for finite x, NaN for NaN and infinity). */
// @ts-ignore: decorator
@inline function finite4(v: v128): bool {
  const d = f32x4.sub(v, v);
  return i32x4.all_true(f32x4.eq(d, d));
}

/** True if every f32 in [p, end) is finite. */
function rowFinite(p: usize, end: usize): bool {
  for (; p < end; p += 16) if (!finite4(v128.load(p))) return false;
  return true;
}

/**
 * From xq (int8 [tokens][cols]) derives xcorr, one 32-bit word per (token, group): the value the kernels'
 * group partials start from, -8 · Σ q_x, which takes the weights' +8 nibble offset back out. Relaxed build:
 * two i16 halves, for the partial's two lanes per row (elements j of the group with j % 4 < 2 in the low
 * half, the rest in the high one; see quadStepRelaxed in matmul-core.ts), plus the GEMM's 4-token tiles in
 * xw (writeTiles). Baseline build: one i32, plus xw (i16 [tokens][cols], each run of 8 widened and reordered
 * to x[0,2,4,6,1,3,5,7], the nibble order of the packed weights read as i16 lanes).
 */
export function prepare_activations(tokens: i32, cols: i32, xq: usize, xw: usize, xcorr: usize): void {
  const groups = tokens * (cols >>> 5);
  let q = xq;
  let w = xw;
  let c = xcorr;
  for (let g = 0; g < groups; g++) {
    prepareGroup(q, w, c, false);
    q += 32;
    w += 64;
    c += 4;
  }
  if (ASC_FEATURE_RELAXED_SIMD) writeTiles(tokens, cols, xq, xcorr, xw);
}

/**
 * The relaxed build's GEMM operand: tokens 4τ..4τ+3 (whole tiles only; the rest stay in xq alone) copied,
 * interleaved, to the wide row of token 4τ: per group, the 4 correction words, then for each packed weight
 * vector p the 4 tokens' x[8p..8p+8), 8 bytes each (TILE_GROUP_BYTES per group, 4.5·cols bytes of the 8·cols
 * the 4 wide rows span). So the GEMM's inner loop reads one pointer, 32 bytes a step (blockTile4).
 */
function writeTiles(tokens: i32, cols: i32, xq: usize, xcorr: usize, xw: usize): void {
  const groups = cols >>> 5;
  const qs = <usize>cols;
  const cs = <usize>groups << 2;
  for (let t = 0; t + TILE_TOKENS <= tokens; t += TILE_TOKENS) {
    let q = xq + <usize>t * qs;
    let c = xcorr + <usize>t * cs;
    let out = xw + (<usize>t * qs << 1);
    for (let g = 0; g < groups; g++) {
      for (let j: usize = 0; j < <usize>TILE_TOKENS; j++) {
        store<i32>(out + (j << 2), load<i32>(c + j * cs));
        const src = q + j * qs;
        const dst = out + 16 + (j << 3);
        store<u64>(dst, load<u64>(src));
        store<u64>(dst, load<u64>(src, 8), 32);
        store<u64>(dst, load<u64>(src, 16), 64);
        store<u64>(dst, load<u64>(src, 24), 96);
      }
      out += TILE_GROUP_BYTES;
      q += 32;
      c += 4;
    }
  }
}

/**
 * One group of 32 int8 at xq: writes its correction word at xcorr (see prepare_activations) and, in the
 * baseline build or where `wide` asks for it, the widened copy at xw; returns Σ q (exact, |Σ q| <= 4096).
 */
// @ts-ignore: decorator
@inline export function prepareGroup(xq: usize, xw: usize, xcorr: usize, wide: bool): i32 {
  const x0 = v128.load(xq);
  const x1 = v128.load(xq, 16);
  // i16 lane l: the sum of elements 2l, 2l+1 and 16+2l, 16+2l+1; even lanes hold j % 4 < 2.
  const pairs = i16x8.add(i16x8.extadd_pairwise_i8x16_s(x0), i16x8.extadd_pairwise_i8x16_s(x1));
  const s = i32x4.extadd_pairwise_i16x8_s(pairs);
  const total = i32x4.extract_lane(s, 0) + i32x4.extract_lane(s, 1) + i32x4.extract_lane(s, 2) + i32x4.extract_lane(s, 3);
  if (ASC_FEATURE_RELAXED_SIMD) {
    // Fold lanes l and l+4, then l and l+2: lanes 0 and 1 end with the two halves' sums (|·| <= 2048).
    const h = i16x8.add(pairs, i64x2.shuffle(pairs, pairs, 1, 0));
    const q = i16x8.add(h, i32x4.shuffle(h, h, 1, 0, 3, 2));
    store<i32>(xcorr, i32x4.extract_lane(i16x8.mul(q, i16x8.splat(-8)), 0));
  } else {
    store<i32>(xcorr, -8 * total);
  }
  if (!ASC_FEATURE_RELAXED_SIMD || wide) {
    // Per 8 elements: the 4 even ones, then the 4 odd ones, as i16 (the order the nibbles sit in i16 lanes).
    const e0 = i16x8.shr_s(i16x8.shl(x0, 8), 8);
    const o0 = i16x8.shr_s(x0, 8);
    const e1 = i16x8.shr_s(i16x8.shl(x1, 8), 8);
    const o1 = i16x8.shr_s(x1, 8);
    v128.store(xw, i64x2.shuffle(e0, o0, 0, 2));
    v128.store(xw, i64x2.shuffle(e0, o0, 1, 3), 16);
    v128.store(xw, i64x2.shuffle(e1, o1, 0, 2), 32);
    v128.store(xw, i64x2.shuffle(e1, o1, 1, 3), 48);
  }
  return total;
}
