// The reference's RoPE: each head's dimension pairs rotated in place by the frequencies of
// src/model/rope.ts.
import type { RopeStyle } from "../model/config.js";

/**
 * Rotates pair i of each head by the angle pos * omega_i. Which two dimensions form pair i depends on how
 * the checkpoint's q and k rows are laid out: (2i, 2i+1) in Llama-4 checkpoints ("interleaved", the
 * complex-pair form of Meta's code), (i, i + headDim/2) in Hugging Face Llama ones ("rotate_half").
 */
export function applyRope(vec: Float32Array, numHeads: number, headDim: number, pos: number, omega: Float64Array, style: RopeStyle): void {
  const half = headDim / 2;
  for (let i = 0; i < half; i++) {
    const angle = pos * omega[i];
    const cos = Math.cos(angle);
    const sin = Math.sin(angle);
    for (let h = 0; h < numHeads; h++) {
      const j = style === "interleaved" ? h * headDim + 2 * i : h * headDim + i;
      const k = style === "interleaved" ? j + 1 : j + half;
      const a = vec[j];
      const b = vec[k];
      vec[j] = a * cos - b * sin;
      vec[k] = a * sin + b * cos;
    }
  }
}
