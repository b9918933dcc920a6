// The int4 recipe with f16 scales, as a GGUF Q4_0 block holds it, written from its description and
// independently of src/model/q4_0.ts and src/kernels/quantize.ts:
//   s = max(f32(max|w| / 7.5), 2^-23)   q = clamp(round_half_even(f32(w / s)), -8, 7)
//   stored: s16 = the nearest half to s (ties to even)
// (docs/quantization.md, "f16 scales").

/** The nearest IEEE half to a positive finite x (ties to even), as a number; Infinity past the range. */
export function nearestHalf(x: number): number {
  let e = Math.floor(Math.log2(x));
  if (2 ** e > x) e--;
  if (2 ** (e + 1) <= x) e++;
  const quantum = 2 ** (Math.max(e, -14) - 10); // subnormal halves are multiples of 2^-24
  const r = x / quantum;
  const f = Math.floor(r);
  const m = r - f > 0.5 ? f + 1 : r - f < 0.5 ? f : f % 2 === 0 ? f : f + 1;
  const v = m * quantum;
  return v > 65504 ? Infinity : v;
}

export function halfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  return d > 0.5 ? f + 1 : d < 0.5 ? f : f % 2 === 0 ? f : f + 1;
}

/** Expected q (row-major) and one half scale per (row, group of 32) of a [rows, cols] matrix. */
export function expectedQ4_0(w: Float32Array, rows: number, cols: number): { q: Int8Array; d: Float64Array } {
  const f = new Float32Array(1);
  const q = new Int8Array(rows * cols);
  const d = new Float64Array((rows * cols) / 32);
  for (let b = 0; b < d.length; b++) {
    let amax = 0;
    for (let i = 0; i < 32; i++) amax = Math.max(amax, Math.abs(w[b * 32 + i]));
    f[0] = amax / 7.5; // one rounding of the exact quotient to f32, as an f32 division gives
    const s = Math.max(f[0], 2 ** -23);
    d[b] = nearestHalf(s);
    for (let i = 0; i < 32; i++) {
      f[0] = w[b * 32 + i] / s;
      q[b * 32 + i] = Math.min(7, Math.max(-8, halfEven(f[0])));
    }
  }
  return { q, d };
}
