// Small random models for property tests: a config in the real config.json vocabulary and seeded weights.
import { parseConfig, type ModelConfig } from "../../src/model/config.js";
import type { LayerWeights, Weights } from "../../src/reference/model.js";
import { rng } from "./rng.js";

export { rng };

export interface SmallModelSpec {
  layers: number;
  hidden: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  ffn: number;
  vocab: number;
  window?: number;
  /** "G" global or "S" sliding per layer; defaults to all global. */
  pattern?: string;
  extra?: Record<string, unknown>;
}

export function smallConfig(s: SmallModelSpec): ModelConfig {
  const pattern = s.pattern ?? "G".repeat(s.layers);
  return parseConfig({
    hidden_size: s.hidden,
    num_hidden_layers: s.layers,
    num_attention_heads: s.heads,
    num_key_value_heads: s.kvHeads,
    head_dim: s.headDim,
    intermediate_size: s.ffn,
    vocab_size: s.vocab,
    max_position_embeddings: 4096,
    rope_theta: 10000,
    layer_types: [...pattern].map((c) => (c === "S" ? "sliding_attention" : "full_attention")),
    sliding_window: s.window ?? 8,
    ...s.extra,
  });
}

export function randomArray(n: number, scale: number, next: () => number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (next() * 2 - 1) * scale;
  return a;
}

export function randomWeights(c: ModelConfig, seed: number): Weights {
  const next = rng(seed);
  const d = c.hiddenSize;
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  const f = c.intermediateSize;
  const norm = () => Float32Array.from({ length: d }, () => 0.5 + next());
  const layers: LayerWeights[] = [];
  for (let l = 0; l < c.numLayers; l++) {
    layers.push({
      attnNorm: norm(),
      wq: randomArray(q * d, 1 / Math.sqrt(d), next),
      wk: randomArray(kv * d, 1 / Math.sqrt(d), next),
      wv: randomArray(kv * d, 1 / Math.sqrt(d), next),
      wo: randomArray(d * q, 1 / Math.sqrt(q), next),
      ffnNorm: norm(),
      wGate: randomArray(f * d, 1 / Math.sqrt(d), next),
      wUp: randomArray(f * d, 1 / Math.sqrt(d), next),
      wDown: randomArray(d * f, 1 / Math.sqrt(f), next),
    });
  }
  const embed = randomArray(c.vocabSize * d, 1, next);
  return { embed, layers, finalNorm: norm(), lmHead: embed };
}
