// The float32 reference: the oracle the quantized engine is tested against, so it favours obviousness over
// speed (plain loops, sums in double precision). Each norm placement has its forward pass in a file of its
// own, read top to bottom: src/reference/llama.ts (pre-norm: MobileLLM-Pro, Llama) and gemma3.ts (sandwich
// norms), both built from the blocks of blocks.ts.
import type { ModelConfig, NormPlacement } from "../model/config.js";
import { Run, type Weights } from "./blocks.js";
import { gemma3Forward } from "./gemma3.js";
import { llamaForward } from "./llama.js";

export { rmsnorm, type LayerWeights, type Weights } from "./blocks.js";

const FORWARD: Record<NormPlacement, (m: Run, token: number, pos: number) => Float32Array> = {
  pre: llamaForward,
  sandwich: gemma3Forward,
};

export class ReferenceModel {
  private readonly run: Run;
  private readonly forwardPass: (m: Run, token: number, pos: number) => Float32Array;

  constructor(
    readonly config: ModelConfig,
    readonly weights: Weights,
    readonly contextLength: number,
  ) {
    this.run = new Run(config, weights, contextLength);
    this.forwardPass = FORWARD[config.norms];
  }

  /**
   * Runs one token at position `pos` and returns the logits for the next token. Positions must be fed
   * in order from 0: the cache keeps the keys and values of every earlier position (a new sequence simply
   * starts again at 0). The returned array is reused by the next call.
   */
  forward(token: number, pos: number): Float32Array {
    return this.forwardPass(this.run, token, pos);
  }
}
