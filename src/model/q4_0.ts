// ggml Q4_0 blocks, as the GGUF file holds the engine's int4 recipe (src/model/quantize.ts) with f16
// scales, read back into the engine's int4 form. The writing side is the SIMD kernel quantizeRowsQ4_0
// (src/kernels/quantize.ts, twin quantizeRowsQ4_0Ref).
//
// A Q4_0 block holds 32 consecutive weights of a row in 18 bytes: the scale d as an IEEE half, then 16
// bytes where byte j holds element j in its low nibble and element j + 16 in its high nibble; a weight is
// (nibble - 8) * d. The recipe with f16 scales (docs/quantization.md, "f16 scales"; the folder path
// computes the same numbers):
//   s = max(f32(max|w| / 7.5), 2^-23),   d = s rounded to the nearest half,
//   q = clamp(round_half_even(f32(w / d)), -8, 7),   nibble = q + 8.
// q is computed against the stored d, so what the file holds is exactly what the engine multiplies.
// (ggml's own Q4_0 quantizer picks d = max / -8 instead; these files do not use it.)
import { Q4_0_BLOCK, Q4_0_BLOCK_BYTES } from "./checkpoint/gguf-format.js";
import { f16BitsToF32 } from "../kernels/dtype.js";
import type { Int4Weights } from "../kernels/layout.js";

/** Bytes of one row of `cols` weights as Q4_0 blocks. */
export function q4_0RowBytes(cols: number): number {
  return (cols / Q4_0_BLOCK) * Q4_0_BLOCK_BYTES;
}

/**
 * Q4_0 blocks of a [rows, cols] matrix back into the engine's int4 form: q = nibble - 8 and one f32 scale
 * per (row, group of 32) (the half widened exactly). The scalar statement of what loading a GGUF matrix
 * means, for tests of faster repacks and for paths that want f32 weights (dequantizeInt4).
 */
export function decodeQ4_0(bytes: Uint8Array, rows: number, cols: number): Int4Weights {
  if (cols % Q4_0_BLOCK !== 0) throw new RangeError(`Q4_0 needs a multiple of ${Q4_0_BLOCK} columns, got ${cols}`);
  const blocks = (rows * cols) / Q4_0_BLOCK;
  if (bytes.length !== blocks * Q4_0_BLOCK_BYTES) throw new RangeError(`decodeQ4_0: ${bytes.length} bytes for ${rows} x ${cols} (${blocks * Q4_0_BLOCK_BYTES} expected)`);
  const q = new Int8Array(rows * cols);
  const scales = new Float32Array(blocks);
  for (let b = 0; b < blocks; b++) {
    const o = b * Q4_0_BLOCK_BYTES;
    scales[b] = f16BitsToF32(bytes[o] | (bytes[o + 1] << 8));
    const base = b * Q4_0_BLOCK;
    for (let j = 0; j < 16; j++) {
      const v = bytes[o + 2 + j];
      q[base + j] = (v & 15) - 8;
      q[base + j + 16] = (v >> 4) - 8;
    }
  }
  return { rows, cols, q, scales };
}
