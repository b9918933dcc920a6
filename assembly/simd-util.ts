// Vector helpers shared by attention.ts and elementwise.ts. This module is only ever imported, never
// re-exported from index.ts: a function with v128 parameters that became a wasm export would fail with
// AS112 (asc refuses v128 parameters on an export).

/**
 * a * b + c. The relaxed build lets V8 fuse it into one vfmadd (one rounding instead of two); the
 * baseline build keeps two roundings. Both stay within the kernels' stated tolerances.
 */
// @ts-ignore: decorator
@inline export function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

/** Sum of the four lanes. */
// @ts-ignore: decorator
@inline export function hsum(v: v128): f32 {
  const s = f32x4.add(v, v128.shuffle<f32>(v, v, 2, 3, 0, 1));
  return f32x4.extract_lane(s, 0) + f32x4.extract_lane(s, 1);
}

/** Largest of the four lanes. */
// @ts-ignore: decorator
@inline export function hmax(v: v128): f32 {
  const s = f32x4.pmax(v, v128.shuffle<f32>(v, v, 2, 3, 0, 1));
  return max<f32>(f32x4.extract_lane(s, 0), f32x4.extract_lane(s, 1));
}

// Cephes expf: x = n·ln2 + r with |r| <= ln2/2, e^r by a degree-7 polynomial, 2^n built in the exponent
// bits. About 1 ulp in [-87, 88]; inputs are clamped to that range, so exp(x < -87) is ~1.6e-38 instead
// of a denormal or 0 (callers that need an exact 0, e.g. a running max of -inf, special-case it).
const EXP_LO: f32 = -87.0;
const EXP_HI: f32 = 88.0;
const LOG2E: f32 = 1.44269504088896341;
/** 1.5·2^23: adding it rounds an f32 of magnitude below 2^22 to an integer (half to even) in the low mantissa bits. */
export const ROUND_MAGIC: f32 = 12582912.0;
const LN2_HI: f32 = 0.693359375;
const LN2_LO: f32 = -2.12194440e-4;
const P0: f32 = 1.9875691500e-4;
const P1: f32 = 1.3981999507e-3;
const P2: f32 = 8.3334519073e-3;
const P3: f32 = 4.1665795894e-2;
const P4: f32 = 1.6666665459e-1;
const P5: f32 = 5.0000001201e-1;

/** e^x on four lanes (see the accuracy note above). */
// @ts-ignore: decorator
@inline export function exp4(x: v128): v128 {
  // pmin/pmax are one minps/maxps each; min/max carry NaN and -0 fix-ups (about 7 instructions in V8).
  x = f32x4.pmin(f32x4.pmax(x, f32x4.splat(EXP_LO)), f32x4.splat(EXP_HI));
  // Adding 1.5·2^23 rounds x·log2e to an integer n (ties to even) in the low mantissa bits, so 2^n is
  // one shift of those bits: cheaper in V8 than f32x4.nearest + i32x4.trunc_sat (the latter is ~8 x64
  // instructions).
  const t = madd(x, f32x4.splat(LOG2E), f32x4.splat(ROUND_MAGIC));
  const n = f32x4.sub(t, f32x4.splat(ROUND_MAGIC));
  let r = f32x4.sub(x, f32x4.mul(n, f32x4.splat(LN2_HI)));
  r = f32x4.sub(r, f32x4.mul(n, f32x4.splat(LN2_LO)));
  let p = madd(f32x4.splat(P0), r, f32x4.splat(P1));
  p = madd(p, r, f32x4.splat(P2));
  p = madd(p, r, f32x4.splat(P3));
  p = madd(p, r, f32x4.splat(P4));
  p = madd(p, r, f32x4.splat(P5));
  const r2 = f32x4.mul(r, r);
  const y = f32x4.add(madd(p, r2, r), f32x4.splat(1.0));
  const pow2n = i32x4.add(i32x4.shl(t, 23), i32x4.splat(127 << 23));
  return f32x4.mul(y, pow2n);
}
