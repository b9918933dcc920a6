// The browser build of the library: the same Model, engine and generation as on Node, loaded from a URL
// base or from files the user picked, with no node:* module on the path. Run it in a Web Worker (worker.ts,
// driven from the page by ModelClient) so the page never blocks; loadModelInBrowser also works directly.
export { Model } from "../session/model.js";
export type { ChatOptions, ModelInfo } from "../session/model.js";
export type { LoadOptions } from "../session/open.js";
export { describeLoadProgress, type LoadPhase, type LoadProgress, type LoadProgressCallback } from "../session/load-progress.js";
export { Generation } from "../generate/generate.js";
export type { GenerateOptions, GenerationResult, GenerationStats, Piece, StopReason } from "../generate/generate.js";
export type { GrammarSpec } from "../grammar/spec.js";
export type { SamplingOptions } from "../generate/sampler.js";
export type { ChatMessage } from "../text/chat-template.js";
export { parseConfig, parameterCount } from "../model/config.js";
export type { ModelFolder } from "../env/folder.js";
export type { Platform } from "../session/platform.js";
export { openGgufModel, openModel } from "../session/open.js";
export { openFolderCheckpoint } from "../model/checkpoint/folder.js";
export { loadModelInBrowser, type BrowserLoadOptions } from "./load.js";
export { folderFromFiles, folderFromUrl, filesFromDrop, ggufFromFiles, ggufFromUrl, isGgufName, type PickedFile, type UrlFolderOptions } from "./folders.js";
export { ModelCache, modelCacheSupported, type CachedModel, type CachedSource, type CacheOrigin, type ModelCacheOptions } from "./model-cache.js";
export { browserPlatform, browserDefaultThreads, type WasmSource } from "./platform.js";
export { spawnWebWorker, canUseThreads } from "./web-worker-spawn.js";
export { ModelClient, ModelClientError, type ClientRequestOptions, type LoadSource, type StreamedPiece, type WorkerLike } from "./client.js";
export { readState, writeState, STATE_DIRECTORY } from "./state-store.js";
export { createOpenAI, LocalOpenAI, type ChunkStream, type OpenAIOptions, type RequestOptions } from "../serve/openai.js";
export { OpenAIError } from "../serve/errors.js";
export type * from "../serve/openai-types.js";
export type { LoadedModel, ModelSource, PieceStats, WorkerChatOptions, WorkerGenerateOptions, WorkerLoadOptions } from "./protocol.js";
