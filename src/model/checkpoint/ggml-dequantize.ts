// ggml's Q8_0, Q4_K and Q6_K blocks decoded to float32: the types llama.cpp's `llama-quantize` writes for
// token_embd.weight and output.weight beside Q4_0 matrices (and Q8_0 for whole files). The engine computes
// with its own int4 recipe, so a tensor of one of these types is decoded here, row by row, and quantized at
// load like a float tensor (docs/gguf.md, "llama.cpp files").
//
// The block layouts, as ggml defines them (ggml-common.h; every multi-byte field little-endian):
//   Q8_0  32 values in 34 bytes: f16 d, then 32 int8 q.                          value = d * q
//   Q4_K  256 values in 144 bytes: f16 d, f16 dmin, 12 bytes of eight 6-bit scales and eight 6-bit mins,
//         128 bytes of 4-bit q. Sub-block s (values 32s..32s+31) takes scale sc[s] and min m[s]:
//         for s < 4, sc = byte[s] & 63 and m = byte[s+4] & 63; for s >= 4, the low nibble (sc) or high
//         nibble (m) of byte[s+4] carries the low 4 bits and the top two bits of byte[s-4] (sc) or
//         byte[s] (m) the high 2. Values 64j..64j+31 are the low nibbles of q bytes 32j..32j+31, values
//         64j+32..64j+63 their high nibbles.                                     value = d*sc * q - dmin*m
//   Q6_K  256 values in 210 bytes: 128 bytes ql (low 4 bits), 64 bytes qh (high 2 bits), 16 int8 scales
//         (one per 16 values), f16 d. In each half of 128 values (ql 64 bytes, qh 32 bytes), value l + 32k
//         (l < 32, k < 4) takes the low (k = 0, 1) or high (k = 2, 3) nibble of ql[l + 32 (k & 1)] and bits
//         2k..2k+1 of qh[l].                                                    value = d*scale * (q - 32)
// The arithmetic is ggml's own, in float32 and in its order, so a row decodes to the floats llama.cpp's
// dequantize_row_* gives.
import { f16BitsToF32 } from "../../kernels/dtype.js";

/** The ggml types decoded here, with their block sizes (values, bytes). */
export const DEQUANTIZED_TYPES = {
  Q8_0: { values: 32, bytes: 34 },
  Q4_K: { values: 256, bytes: 144 },
  Q6_K: { values: 256, bytes: 210 },
} as const;

export type DequantizedType = keyof typeof DEQUANTIZED_TYPES;

export function isDequantizedType(type: string): type is DequantizedType {
  return Object.prototype.hasOwnProperty.call(DEQUANTIZED_TYPES, type);
}

/** Bytes `values` values (a whole number of blocks) take in `type`. */
export function dequantizedTypeBytes(type: DequantizedType, values: number): number {
  const b = DEQUANTIZED_TYPES[type];
  return (values / b.values) * b.bytes;
}

const F = Math.fround;
const half = (b: Uint8Array, o: number) => f16BitsToF32(b[o] | (b[o + 1] << 8));
const int8 = (x: number) => (x << 24) >> 24;

function q8_0(src: Uint8Array, o: number, out: Float32Array, y: number): void {
  const d = half(src, o);
  for (let j = 0; j < 32; j++) out[y + j] = F(d * int8(src[o + 2 + j]));
}

/** Scale and min of sub-block j of a Q4_K block's 12 packed bytes at `s` (ggml's get_scale_min_k4). */
function scaleMinK4(src: Uint8Array, s: number, j: number): [number, number] {
  if (j < 4) return [src[s + j] & 63, src[s + j + 4] & 63];
  return [(src[s + j + 4] & 0xf) | ((src[s + j - 4] >> 6) << 4), (src[s + j + 4] >> 4) | ((src[s + j] >> 6) << 4)];
}

function q4_K(src: Uint8Array, o: number, out: Float32Array, y: number): void {
  const d = half(src, o);
  const dmin = half(src, o + 2);
  const scales = o + 4;
  let q = o + 16;
  for (let j = 0; j < 4; j++) {
    const [sc1, m1] = scaleMinK4(src, scales, 2 * j);
    const [sc2, m2] = scaleMinK4(src, scales, 2 * j + 1);
    const d1 = F(d * sc1);
    const min1 = F(dmin * m1);
    const d2 = F(d * sc2);
    const min2 = F(dmin * m2);
    for (let l = 0; l < 32; l++) out[y + l] = F(F(d1 * (src[q + l] & 0xf)) - min1);
    for (let l = 0; l < 32; l++) out[y + 32 + l] = F(F(d2 * (src[q + l] >> 4)) - min2);
    q += 32;
    y += 64;
  }
}

function q6_K(src: Uint8Array, o: number, out: Float32Array, y: number): void {
  const d = half(src, o + 208);
  let ql = o;
  let qh = o + 128;
  let sc = o + 192;
  for (let n = 0; n < 256; n += 128) {
    for (let l = 0; l < 32; l++) {
      const is = l >> 4;
      const h = src[qh + l];
      const q1 = ((src[ql + l] & 0xf) | ((h & 3) << 4)) - 32;
      const q2 = ((src[ql + l + 32] & 0xf) | (((h >> 2) & 3) << 4)) - 32;
      const q3 = ((src[ql + l] >> 4) | (((h >> 4) & 3) << 4)) - 32;
      const q4 = ((src[ql + l + 32] >> 4) | (((h >> 6) & 3) << 4)) - 32;
      out[y + l] = F(F(d * int8(src[sc + is])) * q1);
      out[y + l + 32] = F(F(d * int8(src[sc + is + 2])) * q2);
      out[y + l + 64] = F(F(d * int8(src[sc + is + 4])) * q3);
      out[y + l + 96] = F(F(d * int8(src[sc + is + 6])) * q4);
    }
    y += 128;
    ql += 64;
    qh += 32;
    sc += 8;
  }
}

const DECODERS: Record<DequantizedType, (src: Uint8Array, o: number, out: Float32Array, y: number) => void> = { Q8_0: q8_0, Q4_K: q4_K, Q6_K: q6_K };

/**
 * Decodes `src` (whole blocks of `type`, rows laid end to end) into `out` from `outOffset`: every value
 * the blocks hold. A length that is not whole blocks, or an output too small, is a RangeError.
 */
export function dequantizeGgml(type: DequantizedType, src: Uint8Array, out: Float32Array, outOffset = 0): void {
  const { values, bytes } = DEQUANTIZED_TYPES[type];
  if (src.length % bytes !== 0) throw new RangeError(`${type}: ${src.length} bytes is not a whole number of ${bytes}-byte blocks`);
  const blocks = src.length / bytes;
  if (outOffset < 0 || outOffset + blocks * values > out.length) throw new RangeError(`${type}: ${blocks * values} values do not fit the output at ${outOffset}`);
  const decode = DECODERS[type];
  for (let b = 0; b < blocks; b++) decode(src, b * bytes, out, outOffset + b * values);
}
