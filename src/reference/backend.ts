// The float32 reference behind the Backend interface: weights read from the checkpoint as float32 (a GGUF's
// Q4_0 matrices dequantized).
import type { Backend, BatchToken } from "../model/backend.js";
import { checkBatch, checkForwardRequest } from "../model/backend.js";
import type { ModelConfig } from "../model/config.js";
import type { WeightSource } from "../model/weights.js";
import type { TensorNames } from "../model/tensor-names.js";
import { ReferenceModel, type Weights } from "./model.js";

export async function loadReferenceWeights(ckpt: WeightSource, names: TensorNames): Promise<Weights> {
  const embed = await ckpt.readF32(names.embed);
  const layers = [];
  for (const l of names.layers) {
    layers.push({
      attnNorm: await ckpt.readF32(l.attnNorm),
      wq: await ckpt.readF32(l.wq),
      wk: await ckpt.readF32(l.wk),
      wv: await ckpt.readF32(l.wv),
      wo: await ckpt.readF32(l.wo),
      ffnNorm: await ckpt.readF32(l.ffnNorm),
      wGate: await ckpt.readF32(l.wGate),
      wUp: await ckpt.readF32(l.wUp),
      wDown: await ckpt.readF32(l.wDown),
    });
  }
  const finalNorm = await ckpt.readF32(names.finalNorm);
  const lmHead = names.lmHead === null ? embed : await ckpt.readF32(names.lmHead);
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
