// The float32 reference behind the Backend interface: weights read from the checkpoint as float32 (a GGUF's
// Q4_0 matrices dequantized).
import type { Backend, BatchToken } from "../model/backend.js";
import { checkBatch, checkForwardRequest } from "../model/backend.js";
import type { ModelConfig } from "../model/config.js";
import type { WeightSource } from "../model/weights.js";
import type { TensorNames } from "../model/tensor-names.js";
import { ReferenceModel, type LayerWeights, type Weights } from "./model.js";

/**
 * Every tensor `names` lists, as float32: a GGUF's quantized matrices dequantized, each norm weight plus the
 * file's norm offset (1 for a Hugging Face Gemma checkpoint, whose norms store w of x · (1 + w)).
 */
export async function loadReferenceWeights(ckpt: WeightSource, names: TensorNames): Promise<Weights> {
  const read = async (name: string): Promise<Float32Array> => {
    const v = await ckpt.readF32(name);
    if (names.normOffset !== 0 && ckpt.weight(name).shape.length === 1) for (let i = 0; i < v.length; i++) v[i] += names.normOffset;
    return v;
  };
  const embed = await read(names.embed);
  const layers: LayerWeights[] = [];
  for (const l of names.layers) {
    const layer: Partial<Record<string, Float32Array>> = {};
    for (const [role, name] of Object.entries(l)) layer[role] = await read(name as string);
    layers.push(layer as LayerWeights);
  }
  const finalNorm = await read(names.finalNorm);
  const lmHead = names.lmHead === null ? embed : await read(names.lmHead);
  return { embed, layers, finalNorm, lmHead };
}

export class ReferenceBackend implements Backend {
  readonly name = "reference" as const;
  readonly threads = 1;
  readonly simd = null;
  readonly loadTimes = null;
  /** One model (its own float32 KV cache) per sequence, all over the same weights. */
  private readonly models: ReferenceModel[];

  constructor(
    readonly config: ModelConfig,
    weights: Weights,
    readonly contextLength: number,
    readonly sequences = 1,
  ) {
    this.models = Array.from({ length: sequences }, () => new ReferenceModel(config, weights, contextLength));
  }

  forward(tokens: readonly number[], startPos: number, all: boolean, sequence = 0): Float32Array[] {
    checkForwardRequest(this, tokens, startPos, sequence);
    const out: Float32Array[] = [];
    tokens.forEach((t, i) => {
      const logits = this.models[sequence].forward(t, startPos + i);
      if (all || i === tokens.length - 1) out.push(logits.slice());
    });
    return out;
  }

  forwardBatch(batch: readonly BatchToken[]): Float32Array[] {
    checkBatch(this, batch);
    const out: Float32Array[] = [];
    for (const r of batch) {
      const logits = this.models[r.sequence].forward(r.token, r.position);
      if (r.logits) out.push(logits.slice());
    }
    return out;
  }

  dispose(): void {}
}
