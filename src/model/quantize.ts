// The weight recipe MobileLLM-Pro was quantization-aware trained for (its CPU deployment; the accelerator
// variant uses one scale per row instead):
// symmetric int4, one scale per group of 32 consecutive input weights of a row,
//   s = max|w| / 7.5,  q = clamp(round(w / s), -8, 7),  w ~ s * q.
// Every linear layer and the tied embedding/output table use it. Rounding is half-to-even and the
// division is done in f32, as torch does it, so a value exactly between two steps lands where QAT put it.
// The loader runs the same recipe as a Wasm SIMD kernel (quantizeRows in src/kernels/quantize.ts), whose
// twin test/kernels/quantize.test.ts holds to this function bit for bit.
import type { Int4Weights } from "../kernels/layout.js";
import { GROUP, roundHalfEven, SCALE_MIN } from "../kernels/numerics.js";

const F = Math.fround;

/** Quantizes `rows` rows of `cols` f32 weights (row-major) to int4 values and per-group scales. */
export function quantizeInt4(w: Float32Array, rows: number, cols: number): Int4Weights {
  if (cols % GROUP !== 0) throw new RangeError(`int4 quantization needs a multiple of ${GROUP} columns, got ${cols}`);
  if (w.length !== rows * cols) throw new RangeError(`quantizeInt4: ${w.length} values for ${rows} x ${cols}`);
  const groups = cols / GROUP;
  const q = new Int8Array(rows * cols);
  const scales = new Float32Array(rows * groups);
  for (let r = 0; r < rows; r++) {
    for (let g = 0; g < groups; g++) {
      const base = r * cols + g * GROUP;
      let max = 0;
      for (let i = 0; i < GROUP; i++) max = Math.max(max, Math.abs(w[base + i]));
      // torchao clamps the scale at float32 eps, so an all-zero group gets q = 0 rather than 0/0.
      const s = Math.max(F(max / 7.5), SCALE_MIN);
      scales[r * groups + g] = s;
      for (let i = 0; i < GROUP; i++) {
        q[base + i] = Math.max(-8, Math.min(7, roundHalfEven(F(w[base + i] / s))));
      }
    }
  }
  return { rows, cols, q, scales };
}

/** The f32 weights the int4 form stands for (row-major), for tests and for the embedding lookup. */
export function dequantizeInt4(m: Int4Weights): Float32Array {
  const out = new Float32Array(m.rows * m.cols);
  const groups = m.cols / GROUP;
  for (let i = 0; i < out.length; i++) {
    out[i] = m.q[i] * m.scales[Math.floor(i / m.cols) * groups + Math.floor((i % m.cols) / GROUP)];
  }
  return out;
}
