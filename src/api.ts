// The library face: load a checkpoint folder, then stream text, chat, or ask for logits and perplexity.
//
//   const model = await loadModel();                        // the bundled Shakespeare model
//   for await (const piece of model.generate("ROMEO:", { maxNewTokens: 40, seed: 1 })) write(piece.text);
//   await model.dispose();
//
// This is the Node entry (it reads folders from disk). The Model class and everything it runs are
// environment-neutral (src/model/model.ts); the browser entry is src/browser/index.ts.
import { existsSync } from "node:fs";
import type { BackendName } from "./model/backend.js";
import type { SimdMode } from "./kernels/wasm.js";
import { PRESETS, type ModelConfig } from "./model/config.js";
import { bundledModelDir } from "./model/load.js";
import type { Model, ChatOptions, LoadOptions, ModelInfo } from "./model/model.js";
import { openModel } from "./env/folder.js";
import { nodeFolder, nodePlatform } from "./env/node.js";
import type { PerplexityResult } from "./model/perplexity.js";
import type { ChatMessage } from "./text/chat-template.js";
import type { GenerateOptions, GenerationResult, GenerationStats, Piece, StopReason } from "./generate/generate.js";
import type { SamplingOptions } from "./generate/sampler.js";

export type { BackendName, ChatMessage, ChatOptions, GenerateOptions, GenerationResult, GenerationStats, LoadOptions, ModelConfig, ModelInfo, PerplexityResult, Piece, SamplingOptions, SimdMode, StopReason };
export { Model } from "./model/model.js";
export { Generation } from "./generate/generate.js";
export { parseConfig, mobilellmPro, parameterCount } from "./model/config.js";
export { bundledModelDir } from "./model/load.js";

/** The model that ships in the package, usable by name. */
export const BUNDLED_MODEL = "shakespeare-tiny";

/**
 * Loads a Hugging Face checkpoint folder, or the bundled model by name (default). Checks config,
 * tokenizer and weights against each other, then reads and quantizes the weights.
 */
export async function loadModel(dirOrName: string = BUNDLED_MODEL, opts: LoadOptions = {}): Promise<Model> {
  const dir = resolveModel(dirOrName);
  if (!existsSync(dir)) throw new Error(`model folder ${dir} does not exist`);
  // The same loading code as the browser's, over files on disk.
  return openModel(nodeFolder(dir), nodePlatform, opts);
}

function resolveModel(dirOrName: string): string {
  if (dirOrName === BUNDLED_MODEL && !existsSync(dirOrName)) return bundledModelDir();
  if (!existsSync(dirOrName) && dirOrName in PRESETS) {
    throw new Error(
      `"${dirOrName}" is a configuration preset without weights: download the checkpoint (e.g. huggingface-cli download facebook/MobileLLM-Pro --local-dir DIR) and pass its folder, or write random weights with "mobilellm synth --preset ${dirOrName} --out DIR"`,
    );
  }
  return dirOrName;
}
