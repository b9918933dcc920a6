// Random rows of ggml's quantized blocks for tests, every f16 field (d, m, dmin) a finite value of any kind:
// normal, subnormal, ±0 or the extremes (±65504), the rest of each block random bytes (any nibble, int8,
// 6-bit scale and min, high bit), so a test reaches every value a file can hold.
import { f32ToF16Bits } from "../../src/kernels/dtype.js";
import { GGML_BLOCKS, type GgmlQuantType } from "../../src/kernels/ggml-blocks.js";

/** Byte offsets of each type's f16 fields within a block (ggml-common.h). */
export const F16_FIELDS: Record<GgmlQuantType, readonly number[]> = {
  Q4_0: [0],
  Q4_1: [0, 2],
  Q5_0: [0],
  Q5_1: [0, 2],
  Q8_0: [0],
  Q4_K: [0, 2],
  Q5_K: [0, 2],
  Q6_K: [208],
};

/** A finite f16 bit pattern: mostly moderate normals, sometimes ±0, subnormals, ±65504 or tiny normals. */
export function randomF16Bits(r: () => number): number {
  const sign = r() < 0.3 ? 0x8000 : 0;
  const kind = r();
  if (kind < 0.06) return sign;
  if (kind < 0.14) return sign | (1 + Math.floor(r() * 0x3ff)); // subnormal
  if (kind < 0.18) return sign | 0x7bff; // 65504
  if (kind < 0.22) return sign | 0x0400 | Math.floor(r() * 0x400); // smallest normals
  return sign | f32ToF16Bits(2 ** (-12 + r() * 10)) ;
}

/** `rows` rows of `cols` values of `type`, rows end to end. */
export function randomGgmlRows(type: GgmlQuantType, rows: number, cols: number, r: () => number): Uint8Array {
  const { values, bytes } = GGML_BLOCKS[type];
  const blocks = (rows * cols) / values;
  const out = new Uint8Array(blocks * bytes);
  for (let i = 0; i < out.length; i++) out[i] = Math.floor(r() * 256);
  for (let b = 0; b < blocks; b++) {
    for (const o of F16_FIELDS[type]) {
      const h = randomF16Bits(r);
      out[b * bytes + o] = h & 0xff;
      out[b * bytes + o + 1] = h >>> 8;
    }
  }
  return out;
}
