// ggml's quantized blocks decoded to float32, for the float32 reference and WeightSource.readF32: each block
// read into the logical form of the layout that holds it (src/kernels/ggml-blocks.ts, the one place that knows
// the block formats) and each value computed by that layout's formula (formulaValue, src/kernels/layout.ts):
// q · s, or f32(q · s) + m for a type with a min, in f32 and in ggml's order. So a decoded value is what
// llama.cpp's dequantize_row_* (and the gguf Python package's dequantize) gives, bit for bit, and what the
// engine's kernels compute with (test/checkpoint/ggml-dequantize.test.ts checks both against the gguf package).
import { GGML_BLOCKS, unpackGgmlRows, type GgmlQuantType } from "../../kernels/ggml-blocks.js";
import { formulaValue } from "../../kernels/layout.js";
import { GROUP } from "../../kernels/numerics.js";

/**
 * Decodes `src` (whole blocks of `type`, rows laid end to end) into `out` from `outOffset`: every value the
 * blocks hold. A length that is not whole blocks, an output too small, or a NaN or infinite d, m or dmin is a
 * RangeError.
 */
export function dequantizeGgml(type: GgmlQuantType, src: Uint8Array, out: Float32Array, outOffset = 0): void {
  const { values, bytes } = GGML_BLOCKS[type];
  if (src.length % bytes !== 0) throw new RangeError(`${type}: ${src.length} bytes is not a whole number of ${bytes}-byte blocks`);
  const blocks = src.length / bytes;
  if (outOffset < 0 || outOffset + blocks * values > out.length) throw new RangeError(`${type}: ${blocks * values} values do not fit the output at ${outOffset}`);
  if (blocks === 0) return;
  const w = unpackGgmlRows(type, src, 1, blocks * values);
  const n = w.layout.scalesPerGroup;
  for (let i = 0; i < w.q.length; i++) {
    const g = Math.floor(i / GROUP);
    const s = w.scales[g * n + (n === 2 && i % GROUP >= GROUP / 2 ? 1 : 0)];
    out[outOffset + i] = formulaValue(w.q[i], s, w.mins === null ? null : w.mins[g]);
  }
}
