// The reference's RoPE: each head's pairs rotated in place by the frequencies of src/model/rope.ts.
/**
 * Rotates each head's adjacent pairs (z[2i], z[2i+1]) by the angle pos * omega_i: the interleaved
 * (complex-pair) form Llama-4 checkpoints are trained with, so q/k weights load as stored.
 */
export function applyRope(vec: Float32Array, numHeads: number, headDim: number, pos: number, omega: Float64Array): void {
  for (let i = 0; i < headDim / 2; i++) {
    const angle = pos * omega[i];
    const cos = Math.cos(angle);
    const sin = Math.sin(angle);
    for (let h = 0; h < numHeads; h++) {
      const j = h * headDim + 2 * i;
      const a = vec[j];
      const b = vec[j + 1];
      vec[j] = a * cos - b * sin;
      vec[j + 1] = a * sin + b * cos;
    }
  }
}
