// Rotary position embedding frequencies (spec 2.4) and Llama-4 attention temperature tuning (spec 2.5).
import type { ModelConfig } from "../model/config.js";

/**
 * omega_i = theta^(-2i / headDim) for i < headDim / 2, with Llama-3 "llama3" scaling when the config has it:
 * long wavelengths are slowed by `factor`, short ones kept, the band between blended smoothly.
 */
export function ropeInverseFrequencies(c: Pick<ModelConfig, "headDim" | "ropeTheta" | "ropeScaling">): Float64Array {
  const half = c.headDim / 2;
  const omega = new Float64Array(half);
  for (let i = 0; i < half; i++) omega[i] = Math.pow(c.ropeTheta, (-2 * i) / c.headDim);
  const s = c.ropeScaling;
  if (s === null) return omega;
  const lowWavelen = s.originalMaxPositions / s.lowFreqFactor;
  const highWavelen = s.originalMaxPositions / s.highFreqFactor;
  for (let i = 0; i < half; i++) {
    const wavelen = (2 * Math.PI) / omega[i];
    if (wavelen > lowWavelen) {
      omega[i] /= s.factor;
    } else if (wavelen >= highWavelen) {
      const t = (s.originalMaxPositions / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
      omega[i] = ((1 - t) * omega[i]) / s.factor + t * omega[i];
    }
  }
  return omega;
}

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

/** tau(p) = ln(floor((p + 1) / floor_scale) + 1) * attn_scale + 1; equals 1 below floor_scale - 1. */
export function attentionTemperature(pos: number, floorScale: number, attnScale: number): number {
  return Math.log(Math.floor((pos + 1) / floorScale) + 1) * attnScale + 1;
}
