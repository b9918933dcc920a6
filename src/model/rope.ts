// Rotary position embedding frequencies and Llama-4's attention temperature tuning: facts of the model
// that the float32 reference (src/reference/) and the int4 engine (engine.ts, which tabulates cos/sin for
// its RoPE kernel) both take from here.
//
// RoPE rotates pair i of each query and key head by the angle pos * omega_i. Temperature tuning scales the
// queries of NoPE layers (the ones that skip RoPE) by tau(pos), which grows with the log of the position so
// attention stays sharp over long contexts.
import type { LayerType, ModelConfig, Rope } from "./config.js";

/**
 * omega_i = theta^(-2i / headDim) for i < headDim / 2, scaled as the RoPE says: "linear" divides every
 * frequency by its factor (positions / factor); Llama-3 "llama3" slows long wavelengths by `factor`, keeps
 * short ones, and blends the band between smoothly; a llama.cpp file states the llama3 scaling as one
 * divisor per frequency ("factors"), applied as given.
 */
export function ropeInverseFrequencies(headDim: number, rope: Rope): Float64Array {
  const half = headDim / 2;
  const omega = new Float64Array(half);
  for (let i = 0; i < half; i++) omega[i] = Math.pow(rope.theta, (-2 * i) / headDim);
  const s = rope.scaling;
  if (s === null) return omega;
  if (s.type === "linear") {
    for (let i = 0; i < half; i++) omega[i] /= s.factor;
    return omega;
  }
  if (s.type === "factors") {
    if (s.factors.length !== half) throw new RangeError(`${s.factors.length} RoPE frequency factors for ${half} frequencies`);
    for (let i = 0; i < half; i++) omega[i] /= s.factors[i];
    return omega;
  }
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
 * The layer kinds whose RoPE some layer rotates with, one per distinct RoPE (Llama's two kinds share one;
 * Gemma's local and global layers differ): the tables the engine builds.
 */
export function distinctRopes(c: ModelConfig): LayerType[] {
  const kinds: LayerType[] = [];
  for (const l of c.layers) {
    if (!l.rope || kinds.includes(l.kind)) continue;
    if (kinds.some((k) => sameRope(c.rope[k], c.rope[l.kind]))) continue;
    kinds.push(l.kind);
  }
  return kinds;
}

/** The kind among `distinctRopes(c)` whose table layer kind `kind` uses. */
export function ropeTableKind(c: ModelConfig, kind: LayerType): LayerType {
  return distinctRopes(c).find((k) => sameRope(c.rope[k], c.rope[kind])) ?? kind;
}

function sameRope(a: Rope, b: Rope): boolean {
  return a === b || JSON.stringify(a) === JSON.stringify(b);
}

/** tau(p) = ln(floor((p + 1) / floor_scale) + 1) * attn_scale + 1; equals 1 below floor_scale - 1. */
export function attentionTemperature(pos: number, floorScale: number, attnScale: number): number {
  return Math.log(Math.floor((pos + 1) / floorScale) + 1) * attnScale + 1;
}

/**
 * The rows of a q or k projection ([heads * headDim, cols], whole heads, `rowBytes` bytes per row in any
 * element type) reordered from the rotate_half layout to the interleaved one: row i of each head moves to
 * 2i and row i + headDim/2 to 2i + 1. The int4 engine's RoPE kernel rotates adjacent pairs only, so a
 * Hugging Face Llama checkpoint's q and k are reordered this way once, at load (llama.cpp's converter does
 * the same to its GGUF files). Scores are unchanged: q and k move alike and a dot product does not depend
 * on the order of its terms.
 */
export function interleaveRopeRows(rows: Uint8Array, count: number, rowBytes: number, headDim: number): Uint8Array {
  if (count % headDim !== 0) throw new RangeError(`${count} rows are not whole heads of ${headDim}`);
  const out = new Uint8Array(count * rowBytes);
  const half = headDim / 2;
  const row = (r: number) => rows.subarray(r * rowBytes, (r + 1) * rowBytes);
  for (let h = 0; h < count; h += headDim) {
    for (let i = 0; i < half; i++) {
      out.set(row(h + i), (h + 2 * i) * rowBytes);
      out.set(row(h + half + i), (h + 2 * i + 1) * rowBytes);
    }
  }
  return out;
}
