// The library face: load a checkpoint folder, then ask for logits, perplexity or text.
import type { Backend, BackendName } from "./model/backend.js";
import type { SimdMode } from "./kernels/wasm.js";
import type { ModelConfig } from "./model/config.js";
import { bundledModelDir, loadBackend, loadConfig, loadText } from "./model/load.js";
import { perplexity, type PerplexityResult } from "./model/perplexity.js";
import type { TextTokenizer } from "./text/tokenizer.js";
import type { ChatTemplate } from "./text/chat-template.js";
import { generateTokens, type StopReason } from "./generate/generate.js";
import { greedy } from "./generate/sampler.js";

export type { BackendName, ModelConfig, PerplexityResult, SimdMode, StopReason };
export { parseConfig, mobilellmPro, parameterCount } from "./model/config.js";
export { bundledModelDir } from "./model/load.js";

export interface LoadOptions {
  /** "wasm" (default): the int4 x int8 engine; "reference": the float32 oracle. */
  backend?: BackendName;
  /** Wasm build for the "wasm" backend: "auto" (default) picks relaxed SIMD where proven correct. */
  simd?: SimdMode;
  /** Positions the KV cache holds; defaults to min(max_position_embeddings, 4096). */
  contextLength?: number;
}

export interface GenerateOptions {
  maxNewTokens?: number;
}

export interface GenerateResult {
  tokens: number[];
  text: string;
  stopReason: StopReason;
}

export class Model {
  constructor(
    readonly dir: string,
    readonly config: ModelConfig,
    readonly tokenizer: TextTokenizer,
    readonly chatTemplate: ChatTemplate | null,
    readonly backend: Backend,
  ) {}

  /** Next-token logits of the last position, or of every position with `all`. */
  logits(tokens: readonly number[], all = false): Float32Array[] {
    return this.backend.forward(tokens, 0, all);
  }

  perplexity(text: string, ctx: number): PerplexityResult {
    return perplexity(this.backend, this.encode(text), ctx);
  }

  encode(text: string): number[] {
    if (text.length === 0) throw new RangeError("the prompt is empty");
    return this.tokenizer.encode(text);
  }

  /** Greedy continuation of `prompt` (padding rows excluded), decoded to text. */
  generate(prompt: string, opts: GenerateOptions = {}): GenerateResult {
    const ids = this.encode(prompt);
    const tokens: number[] = [];
    const loop = generateTokens(this.backend, ids, {
      maxNewTokens: opts.maxNewTokens ?? 64,
      eosTokenIds: this.config.eosTokenIds,
      pick: (logits) => greedy(logits, (id) => !this.tokenizer.isPadding(id)),
    });
    let step = loop.next();
    while (!step.done) {
      tokens.push(step.value.token);
      step = loop.next();
    }
    return { tokens, text: this.tokenizer.decode(tokens, true), stopReason: step.value };
  }

  dispose(): void {
    this.backend.dispose();
  }
}

export async function loadModel(dir: string = bundledModelDir(), opts: LoadOptions = {}): Promise<Model> {
  const config = loadConfig(dir);
  const { tokenizer, chatTemplate } = loadText(dir);
  const backend = await loadBackend(dir, config, {
    backend: opts.backend ?? "wasm",
    simd: opts.simd,
    contextLength: opts.contextLength ?? Math.min(config.maxPositions, 4096),
  });
  return new Model(dir, config, tokenizer, chatTemplate, backend);
}
