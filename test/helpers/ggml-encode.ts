// Float32 rows quantized into ggml's block types for tests, written here from ggml-common.h's block layouts
// (not llama.cpp's rounding search, which these tests do not need: any valid block is a value a file can hold).
// The engine's decoding of every type is held to llama.cpp's own gguf package elsewhere
// (test/checkpoint/ggml-dequantize.test.ts); this only has to produce sensible blocks from sensible weights.
import { f16BitsToF32, f32ToF16Bits } from "../../src/kernels/dtype.js";
import { GGML_BLOCKS, type GgmlQuantType } from "../../src/kernels/ggml-blocks.js";

const f16 = (x: number) => f16BitsToF32(f32ToF16Bits(x));
const clamp = (x: number, lo: number, hi: number) => Math.max(lo, Math.min(hi, x));

function putHalf(out: Uint8Array, o: number, x: number): number {
  const h = f32ToF16Bits(x);
  out[o] = h & 0xff;
  out[o + 1] = h >>> 8;
  return f16BitsToF32(h);
}

/** The values of `x` (rows of a multiple of the type's block length, end to end) as blocks of `type`. */
export function encodeGgml(type: GgmlQuantType, x: Float32Array): Uint8Array {
  const { values, bytes } = GGML_BLOCKS[type];
  if (x.length % values !== 0) throw new RangeError(`encodeGgml: ${x.length} values are not whole ${type} blocks`);
  const out = new Uint8Array((x.length / values) * bytes);
  for (let b = 0; b < x.length / values; b++) ENCODERS[type](x.subarray(b * values, (b + 1) * values), out.subarray(b * bytes, (b + 1) * bytes));
  return out;
}

type Encoder = (x: Float32Array, out: Uint8Array) => void;

/** 32 values at offsets: q[i] in the low nibble of byte i, q[16 + i] in its high nibble (bits 4+ to qh). */
function nibbles32(q: number[], out: Uint8Array, at: number): void {
  for (let i = 0; i < 16; i++) out[at + i] = (q[i] & 15) | ((q[16 + i] & 15) << 4);
}

function qh32(q: number[], out: Uint8Array, at: number): void {
  let h = 0;
  for (let i = 0; i < 32; i++) h |= ((q[i] >> 4) & 1) << i;
  out[at] = h & 0xff;
  out[at + 1] = (h >>> 8) & 0xff;
  out[at + 2] = (h >>> 16) & 0xff;
  out[at + 3] = (h >>> 24) & 0xff;
}

function extremes(x: Float32Array): { min: number; max: number; signedMax: number } {
  let min = Infinity;
  let max = -Infinity;
  let signedMax = 0;
  for (const v of x) {
    min = Math.min(min, v);
    max = Math.max(max, v);
    if (Math.abs(v) > Math.abs(signedMax)) signedMax = v;
  }
  return { min, max, signedMax };
}

/** Symmetric: d = signedMax / -half, q = round(x / d) + half in 0..2·half-1. */
const symmetric = (levels: number, hasQh: boolean): Encoder => (x, out) => {
  const half = levels / 2;
  const d = putHalf(out, 0, extremes(x).signedMax / -half);
  const q = Array.from(x, (v) => clamp(Math.round(d === 0 ? 0 : v / d) + half, 0, levels - 1));
  if (hasQh) qh32(q, out, 2);
  nibbles32(q, out, hasQh ? 6 : 2);
};

/** With a min: d = (max - min) / (levels - 1), m = min, q = round((x - m) / d). */
const withMin = (levels: number, hasQh: boolean): Encoder => (x, out) => {
  const { min, max } = extremes(x);
  const d = putHalf(out, 0, (max - min) / (levels - 1));
  const m = putHalf(out, 2, min);
  const q = Array.from(x, (v) => clamp(Math.round(d === 0 ? 0 : (v - m) / d), 0, levels - 1));
  if (hasQh) qh32(q, out, 4);
  nibbles32(q, out, hasQh ? 8 : 4);
};

/** Q4_K / Q5_K: 8 sub-blocks of 32 with 6-bit scales and mins under an f16 d and dmin. */
const kQuant = (levels: number): Encoder => (x, out) => {
  const scale: number[] = [];
  const negMin: number[] = [];
  for (let s = 0; s < 8; s++) {
    const { min, max } = extremes(x.subarray(32 * s, 32 * s + 32));
    const lo = Math.min(0, min);
    scale.push((max - lo) / (levels - 1));
    negMin.push(-lo);
  }
  const d = putHalf(out, 0, Math.max(...scale) / 63);
  const dmin = putHalf(out, 2, Math.max(...negMin) / 63);
  const sc = scale.map((v) => (d === 0 ? 0 : clamp(Math.round(v / d), 0, 63)));
  const mn = negMin.map((v) => (dmin === 0 ? 0 : clamp(Math.round(v / dmin), 0, 63)));
  for (let j = 0; j < 4; j++) {
    out[4 + j] = sc[j] | ((sc[j + 4] >> 4) << 6);
    out[8 + j] = mn[j] | ((mn[j + 4] >> 4) << 6);
    out[12 + j] = (sc[j + 4] & 15) | ((mn[j + 4] & 15) << 4);
  }
  const qs = levels === 32 ? 48 : 16;
  for (let s = 0; s < 8; s++) {
    const step = f16(d) * sc[s];
    const m = f16(dmin) * mn[s];
    for (let l = 0; l < 32; l++) {
      const q = step === 0 ? 0 : clamp(Math.round((x[32 * s + l] + m) / step), 0, levels - 1);
      out[qs + 32 * (s >> 1) + l] |= (q & 15) << ((s & 1) * 4);
      if (levels === 32) out[16 + l] |= ((q >> 4) & 1) << s;
    }
  }
};

/** Q6_K: 16 int8 scales (one per 16 values) under an f16 d, q in -32..31 stored as q + 32 in 6 bits. */
const q6K: Encoder = (x, out) => {
  const scale: number[] = [];
  for (let i = 0; i < 16; i++) scale.push(extremes(x.subarray(16 * i, 16 * i + 16)).signedMax / -32);
  const amax = Math.max(...scale.map(Math.abs));
  const d = putHalf(out, 208, amax / 127);
  for (let i = 0; i < 16; i++) out[192 + i] = (d === 0 ? 0 : clamp(Math.round(scale[i] / d), -128, 127)) & 0xff;
  for (let e = 0; e < 256; e++) {
    const sc = (out[192 + (e >> 4)] << 24) >> 24;
    const step = f16(d) * sc;
    const q = (step === 0 ? 0 : clamp(Math.round(x[e] / step), -32, 31)) + 32;
    out[64 * (e >> 7) + (e & 63)] |= (q & 15) << (((e >> 6) & 1) * 4);
    out[128 + 32 * (e >> 7) + (e & 31)] |= (q >> 4) << (2 * ((e >> 5) & 3));
  }
};

const ENCODERS: Record<GgmlQuantType, Encoder> = {
  Q4_0: symmetric(16, false),
  Q4_1: withMin(16, false),
  Q5_0: symmetric(32, true),
  Q5_1: withMin(32, true),
  Q8_0: (x, out) => {
    const amax = Math.abs(extremes(x).signedMax);
    const d = putHalf(out, 0, amax / 127);
    for (let i = 0; i < 32; i++) out[2 + i] = (d === 0 ? 0 : clamp(Math.round(x[i] / d), -127, 127)) & 0xff;
  },
  Q4_K: kQuant(16),
  Q5_K: kQuant(32),
  Q6_K: q6K,
};
