// Element-wise kernels of the forward pass: RMSNorm, interleaved RoPE, SwiGLU, GeGLU, the residual add. Raw pointers, no
// allocation; the layouts and tolerances are documented beside the TypeScript twins in
// src/kernels/elementwise.ts.
import { madd, hsum, exp4 } from "./simd-util";

/**
 * out[t] = x[t] · (mean(x[t]²) + eps)^(-1/2) · w for `rows` rows of `dim` f32. `out` may equal `x`.
 * The sum of squares runs in f32 over four lanes (two accumulators to hide the add latency).
 */
export function rmsnorm(x: usize, w: usize, out: usize, rows: i32, dim: i32, eps: f32): void {
  const rowBytes = <usize>dim << 2;
  const vecEnd = <usize>(dim & ~7) << 2;
  const quadEnd = <usize>(dim & ~3) << 2;
  for (let t = 0; t < rows; t++) {
    let a0 = f32x4.splat(0);
    let a1 = f32x4.splat(0);
    let i: usize = 0;
    for (; i < vecEnd; i += 32) {
      const v0 = v128.load(x + i);
      const v1 = v128.load(x + i, 16);
      a0 = madd(v0, v0, a0);
      a1 = madd(v1, v1, a1);
    }
    if (i < quadEnd) {
      const v0 = v128.load(x + i);
      a0 = madd(v0, v0, a0);
      i += 16;
    }
    let ss = hsum(f32x4.add(a0, a1));
    for (let j = i; j < rowBytes; j += 4) {
      const v = load<f32>(x + j);
      ss += v * v;
    }
    let r: f32 = 1.0 / Mathf.sqrt(ss / <f32>dim + eps);
    if (ss == Infinity) r = rsqrtLarge(x, rowBytes, dim, r);
    const rv = f32x4.splat(r);
    let j: usize = 0;
    for (; j < quadEnd; j += 16) {
      v128.store(out + j, f32x4.mul(f32x4.mul(v128.load(x + j), rv), v128.load(w + j)));
    }
    for (; j < rowBytes; j += 4) store<f32>(out + j, load<f32>(x + j) * r * load<f32>(w + j));
    x += rowBytes;
    out += rowBytes;
  }
}

/**
 * 1 / sqrt(mean(x²) + eps) for a finite row whose f32 sum of squares overflowed (|x| above ~1e17), the
 * way the twin gets it in f64: from the squares of x / max|x|. A row holding infinity keeps `r` (0).
 */
function rsqrtLarge(x: usize, rowBytes: usize, dim: i32, r: f32): f32 {
  let m: f32 = 0;
  for (let j: usize = 0; j < rowBytes; j += 4) m = max<f32>(m, abs<f32>(load<f32>(x + j)));
  if (!(m < Infinity)) return r;
  let ss: f32 = 0;
  for (let j: usize = 0; j < rowBytes; j += 4) {
    const v = load<f32>(x + j) / m;
    ss += v * v;
  }
  // eps is left out: m >= ~5e17 here, so eps / m² is below 1e-35, against a mean square of at least 1 / dim.
  return 1.0 / (m * Mathf.sqrt(ss / <f32>dim));
}

/**
 * Interleaved RoPE in place on `rows` rows of [nHeads][headDim] f32; row t is at position pos0 + t.
 * `table` is [positions][headDim/2] pairs (cos, sin), i.e. headDim f32 per position. headDim % 4 == 0.
 * One table load per 4 lanes is shared by every head, so the inner loop is load, shuffle, 2 mul, add.
 */
export function rope(x: usize, rows: i32, nHeads: i32, headDim: i32, table: usize, pos0: i32): void {
  const headBytes = <usize>headDim << 2;
  const rowBytes = headBytes * <usize>nHeads;
  // Sign pattern (-, +, -, +) turns (s0, s0, s1, s1) into the sin factors of the rotation.
  const sign = i32x4(0x80000000, 0, 0x80000000, 0);
  for (let t = 0; t < rows; t++) {
    const tab = table + <usize>(pos0 + t) * headBytes;
    for (let d: usize = 0; d < headBytes; d += 16) {
      const cs = v128.load(tab + d);
      const c = v128.shuffle<f32>(cs, cs, 0, 0, 2, 2);
      const s = v128.xor(v128.shuffle<f32>(cs, cs, 1, 1, 3, 3), sign);
      let p = x + d;
      for (let h = 0; h < nHeads; h++) {
        const v = v128.load(p);
        const swapped = v128.shuffle<f32>(v, v, 1, 0, 3, 2);
        v128.store(p, madd(v, c, f32x4.mul(swapped, s)));
        p += headBytes;
      }
    }
    x += rowBytes;
  }
}

/**
 * out[i] = silu(gate[i]) · up[i] = gate[i] / (1 + e^-gate[i]) · up[i] for n f32. `out` may alias
 * either input. e^x is the vector approximation of simd-util.ts (about 1 ulp).
 */
export function swiglu(gate: usize, up: usize, out: usize, n: i32): void {
  const end = <usize>n << 2;
  const quadEnd = <usize>(n & ~3) << 2;
  const one = f32x4.splat(1.0);
  let i: usize = 0;
  for (; i < quadEnd; i += 16) {
    const g = v128.load(gate + i);
    const e = exp4(f32x4.neg(g));
    v128.store(out + i, f32x4.mul(f32x4.div(g, f32x4.add(one, e)), v128.load(up + i)));
  }
  for (; i < end; i += 4) {
    const g = load<f32>(gate + i);
    const e = f32x4.extract_lane(exp4(f32x4.splat(-g)), 0);
    store<f32>(out + i, (g / (1.0 + e)) * load<f32>(up + i));
  }
}

/** sqrt(2/pi) and 0.044715: GELU's tanh approximation, tanh(sqrt(2/pi) (x + 0.044715 x^3)). */
const GELU_C: f32 = 0.7978845608028654;
const GELU_A: f32 = 0.044715;

/**
 * out[i] = gelu_tanh(gate[i]) · up[i] for n f32, with gelu_tanh(g) = 0.5 g (1 + tanh(z)), z = sqrt(2/pi)
 * (g + 0.044715 g^3), computed as g / (1 + e^(-2z)) (the same function: 0.5 (1 + tanh z) is the logistic
 * of 2z), so it is SwiGLU's loop with e^(-2z) for e^(-g). `out` may alias either input.
 */
export function geglu(gate: usize, up: usize, out: usize, n: i32): void {
  const end = <usize>n << 2;
  const quadEnd = <usize>(n & ~3) << 2;
  const one = f32x4.splat(1.0);
  const c2 = f32x4.splat(-2.0 * GELU_C);
  const a = f32x4.splat(GELU_A);
  let i: usize = 0;
  for (; i < quadEnd; i += 16) {
    const g = v128.load(gate + i);
    // -2z = -2 sqrt(2/pi) · g · (1 + 0.044715 g²)
    const m2z = f32x4.mul(f32x4.mul(c2, g), madd(a, f32x4.mul(g, g), one));
    const e = exp4(m2z);
    v128.store(out + i, f32x4.mul(f32x4.div(g, f32x4.add(one, e)), v128.load(up + i)));
  }
  for (; i < end; i += 4) {
    const g = f32x4.splat(load<f32>(gate + i));
    const m2z = f32x4.mul(f32x4.mul(c2, g), madd(a, f32x4.mul(g, g), one));
    const y = f32x4.div(g, f32x4.add(one, exp4(m2z)));
    store<f32>(out + i, f32x4.extract_lane(y, 0) * load<f32>(up + i));
  }
}

/** dst[i] += src[i] for n f32 (the residual add): IEEE f32 addition, so the same bits as any scalar loop. */
export function add_into(dst: usize, src: usize, n: i32): void {
  const end = <usize>n << 2;
  const quadEnd = <usize>(n & ~3) << 2;
  let i: usize = 0;
  for (; i < quadEnd; i += 16) v128.store(dst + i, f32x4.add(v128.load(dst + i), v128.load(src + i)));
  for (; i < end; i += 4) store<f32>(dst + i, load<f32>(dst + i) + load<f32>(src + i));
}
