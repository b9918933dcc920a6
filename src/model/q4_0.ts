// The engine's int4 recipe (src/model/quantize.ts) with f16 scales, written as ggml Q4_0 blocks for the
// GGUF file.
//
// A Q4_0 block holds 32 consecutive weights of a row in 18 bytes: the scale d as an IEEE half, then 16
// bytes where byte j holds element j in its low nibble and element j + 16 in its high nibble; a weight is
// (nibble - 8) * d. The recipe with f16 scales (docs/quantization.md, "f16 scales"; the folder path's
// f16Scales option computes the same numbers):
//   s = max(f32(max|w| / 7.5), 2^-23),   d = s rounded to the nearest half,
//   q = clamp(round_half_even(f32(w / d)), -8, 7),   nibble = q + 8.
// q is computed against the stored d, so what the file holds is exactly what the engine multiplies.
// (ggml's own Q4_0 quantizer picks d = max / -8 instead; these files do not use it.)
import { Q4_0_BLOCK, Q4_0_BLOCK_BYTES } from "./checkpoint/gguf-format.js";
import { f16BitsToF32, f32ToF16Bits } from "../kernels/dtype.js";
import { roundHalfEven, SCALE_MIN } from "../kernels/numerics.js";
import type { Int4Weights } from "../kernels/layout.js";

const F = Math.fround;

/** The recipe's q of one weight, plus 8: clamp(round-half-even(w / d), -8, 7) + 8, the division in f32. */
function nibble(w: number, d: number): number {
  const x = F(w / d);
  let r = roundHalfEven(x);
  if (r < -8) r = -8;
  else if (r > 7) r = 7;
  return r + 8;
}

/** Bytes of one row of `cols` weights as Q4_0 blocks. */
export function q4_0RowBytes(cols: number): number {
  return (cols / Q4_0_BLOCK) * Q4_0_BLOCK_BYTES;
}

/**
 * Encodes `rows` rows of `cols` f32 weights (row-major, `cols` a multiple of 32) as Q4_0 blocks, rows laid
 * end to end. A non-finite weight, or a scale too large for a half (max|w| above about 491,000), is a
 * RangeError: the file could not hold what the folder path would compute.
 */
export function quantizeRowsQ4_0(w: Float32Array, rows: number, cols: number, out: Uint8Array = new Uint8Array(rows * q4_0RowBytes(cols))): Uint8Array {
  if (cols % Q4_0_BLOCK !== 0) throw new RangeError(`Q4_0 needs a multiple of ${Q4_0_BLOCK} columns, got ${cols}`);
  if (w.length !== rows * cols) throw new RangeError(`quantizeRowsQ4_0: ${w.length} values for ${rows} x ${cols}`);
  const blocks = (rows * cols) / Q4_0_BLOCK;
  if (out.length < blocks * Q4_0_BLOCK_BYTES) throw new RangeError(`quantizeRowsQ4_0: output of ${out.length} bytes is too small for ${blocks} blocks`);
  for (let b = 0; b < blocks; b++) {
    const base = b * Q4_0_BLOCK;
    let max = 0;
    for (let i = 0; i < Q4_0_BLOCK; i++) {
      const a = Math.abs(w[base + i]);
      if (!(a <= max)) {
        max = a;
        if (a !== a) break; // NaN: refused below
      }
    }
    if (!Number.isFinite(max)) throw new RangeError(`quantizeRowsQ4_0: non-finite weight in row ${Math.floor(base / cols)}`);
    const s = Math.max(F(max / 7.5), SCALE_MIN);
    const h = f32ToF16Bits(s);
    if ((h & 0x7c00) === 0x7c00) throw new RangeError(`quantizeRowsQ4_0: scale ${s} (row ${Math.floor(base / cols)}) overflows a half`);
    // s >= 2^-23, itself a (subnormal) half, so d is never 0; d may sit below s, and the clamp keeps q in range.
    const d = f16BitsToF32(h);
    const o = b * Q4_0_BLOCK_BYTES;
    out[o] = h & 0xff;
    out[o + 1] = h >>> 8;
    for (let j = 0; j < 16; j++) out[o + 2 + j] = nibble(w[base + j], d) | (nibble(w[base + j + 16], d) << 4);
  }
  return out;
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
