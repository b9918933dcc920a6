// The library's Node face: load a checkpoint folder or a GGUF file, then stream text, chat, or ask for
// logits and perplexity.
//
//   const model = await loadModel();                        // the bundled Shakespeare model
//   for await (const piece of model.generate("ROMEO:", { maxNewTokens: 40, seed: 1 })) write(piece.text);
//   await model.dispose();
//
// loadModel is the environment-neutral openModel / openGgufModel (src/session/open.ts) over a folder or
// file on disk and Node's platform (src/node/); the browser's face is src/browser/index.ts. The command-line tool (src/cli/) uses
// only what this module exports, so everything a command can do, a program can do too.
import { PRESETS } from "./model/config.js";
import { BUNDLED_MODEL, resolveModelPath } from "./node/bundled.js";
import { openFileSource } from "./node/file-source.js";
import { nodeFolder } from "./node/folder.js";
import { nodePlatform } from "./node/platform.js";
import type { Model } from "./session/model.js";
import { openGgufModel, openModel, type LoadOptions } from "./session/open.js";

export type { BackendName, LoadTimes } from "./model/backend.js";
export type { SimdMode } from "./kernels/wasm.js";
export type { ModelConfig } from "./model/config.js";
export type { ChatOptions, ModelInfo } from "./session/model.js";
export type { LoadOptions } from "./session/open.js";
export { describeLoadProgress, type LoadPhase, type LoadProgress, type LoadProgressCallback } from "./session/load-progress.js";
export type { PerplexityResult } from "./model/perplexity.js";
export type { ChatMessage } from "./text/chat-template.js";
export type { DecodeStepStats, GenerateOptions, GenerationResult, GenerationStats, Piece, StopReason } from "./generate/generate.js";
export type { SamplingOptions } from "./generate/sampler.js";
export { checkGrammarSpec, type GrammarSpec } from "./grammar/spec.js";
export { GrammarError } from "./grammar/ast.js";
export { jsonSchemaToGbnf } from "./grammar/json-schema.js";
export { responseFormatGrammar } from "./grammar/response-format.js";
export { Model } from "./session/model.js";
export { Generation } from "./generate/generate.js";
export { BACKENDS } from "./model/backend.js";
export { PRESETS, parseConfig, mobilellmPro, parameterCount } from "./model/config.js";
export { engineWeightBytes, int4WeightBytes, kvCacheBytes, mib, storedDtype, type EngineWeightBytes } from "./model/memory.js";
export { firstNonFinite } from "./kernels/dtype.js";
export { GROUP } from "./kernels/numerics.js";
export { INDEX_FILE, SINGLE_FILE } from "./model/checkpoint/checkpoint.js";
export { BUNDLED_MODEL, bundledGgufPath, bundledModelDir, bundledModelPath, loadConfig, readJsonFile } from "./node/bundled.js";
export { openCheckpoint } from "./node/folder.js";
export { openFileSource };
export { GgufFile } from "./model/checkpoint/gguf.js";
export { GgufWeights } from "./model/checkpoint/gguf-weights.js";
export { readGgufModel } from "./session/gguf-model.js";
export { readAnyGgufModel } from "./session/open.js";
export { convertFolder, writeGgufFile } from "./node/gguf-files.js";
export { createOpenAI, LocalOpenAI, type ChatCompletionsResource, type ChunkStream, type CompletionsResource, type OpenAIOptions, type RequestOptions } from "./serve/openai.js";
export { OpenAIError, type OpenAIErrorBody } from "./serve/errors.js";
export { Scheduler, Slot, type SchedulerOptions, type SchedulerStats } from "./serve/scheduler.js";
export type * from "./serve/openai-types.js";
export { startHttpServer, DEFAULT_BODY_LIMIT, DEFAULT_MAX_CONNECTIONS, DEFAULT_TIMEOUT, type HttpServerOptions, type RunningServer } from "./node/http-server.js";
export { KvStateError } from "./model/kv-state.js";
export { MIN_VOCAB, synthesizeCheckpoint } from "./node/synth.js";

/**
 * Loads a Hugging Face checkpoint folder, a GGUF file (`mobilellm convert`'s), or the bundled model by name
 * (default). Checks config, tokenizer and weights against each other, then reads and quantizes (or, for a
 * GGUF's Q4_0 blocks, repacks) the weights. A GGUF converted from a folder gives the folder's logits.
 */
export async function loadModel(dirOrName: string = BUNDLED_MODEL, opts: LoadOptions = {}): Promise<Model> {
  const { path, kind } = resolveModelPath(dirOrName, Object.keys(PRESETS));
  if (kind === "file") return openGgufModel(await openFileSource(path), nodePlatform, opts);
  return openModel(nodeFolder(path), nodePlatform, opts);
}
