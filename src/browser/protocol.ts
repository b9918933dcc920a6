// Messages between a page (client.ts) and the model's Web Worker (worker.ts). Everything is structured-
// cloneable: Files travel as they are, the model stays in the worker.
import type { GenerationResult, StopReason } from "../generate/generate.js";
import type { GenerateOptions } from "../generate/generate.js";
import type { ChatOptions } from "../session/model.js";
import type { ChatMessage } from "../text/chat-template.js";
import type { PickedFile } from "./folders.js";
import type { WasmSource } from "./platform.js";
import type { BackendName } from "../model/backend.js";
import type { SimdMode } from "../kernels/wasm.js";
import type { LoadTimes } from "../model/backend.js";
import type { LoadProgress } from "../session/load-progress.js";

/** Where the model comes from: a URL base (a served folder) or files the user picked or dropped. */
export type ModelSource = { url: string } | { files: PickedFile[]; label?: string };

export interface WorkerLoadOptions {
  /** Kernel builds: a URL base with simd.wasm, relaxed.wasm, simd-shared.wasm, relaxed-shared.wasm, or bytes; default: the package's own. */
  wasm?: WasmSource;
  /** Engine threads; default: the cores when the page is cross-origin isolated, else 1. */
  threads?: number;
  contextLength?: number;
  simd?: SimdMode;
  backend?: BackendName;
  /** Sequences with a KV cache of their own (default 1): OpenAI requests the worker runs at once. */
  sequences?: number;
  /**
   * Keep the model's files (a URL source) and the kernels (a URL base) across visits, in the Origin
   * Private File System (model-cache.ts); a directory name picks a cache other than the default one.
   */
  cache?: boolean | { directory: string };
}

/** Generation options that cross the worker boundary (the AbortSignal is replaced by a stop message). */
export type WorkerGenerateOptions = Omit<GenerateOptions, "signal">;

/** Chat options that cross the worker boundary: generation options plus an optional Jinja template. */
export type WorkerChatOptions = Omit<ChatOptions, "signal">;

export type Request =
  | { type: "load"; id: number; source: ModelSource; options: WorkerLoadOptions }
  | { type: "generate"; id: number; prompt: string; options: WorkerGenerateOptions }
  /** The assistant's answer to `messages`; a follow-up turn reuses the conversation's KV cache (Model.chat). */
  | { type: "chat"; id: number; messages: ChatMessage[]; options: WorkerChatOptions }
  /**
   * OpenAI's chat.completions.create / completions.create (src/serve/openai.ts) on the worker's model: the
   * "response", or its chunks as "chunk" replies and then "end" when params.stream is true.
   */
  | { type: "openai"; id: number; route: "chat" | "completions"; params: unknown }
  /** The model's sequence saved to / restored from the Origin Private File System under `name`. */
  | { type: "save-state"; id: number; name: string }
  | { type: "restore-state"; id: number; name: string }
  /** Stops generation `target` (the running one when absent), even if it has not started yet. */
  | { type: "stop"; id: number; target?: number }
  | { type: "dispose"; id: number };

export interface LoadedModel {
  /** The folder's name (a path, a URL). */
  name: string;
  parameters: number;
  backend: BackendName;
  /** "relaxed" or "simd" and why. */
  simd: { variant: string; reason: string } | null;
  threads: number;
  /** Whether the worker can share memory with threads (the page is cross-origin isolated). */
  crossOriginIsolated: boolean;
  contextLength: number;
  /** KV cache bytes allocated for the whole context. */
  kvCacheBytes: number | null;
  vocabSize: number;
  loadMs: number;
  /** Where the engine's load time went (ms: kernels, waiting for weight bytes, quantizing, threads), wasm backend. */
  loadTimes: LoadTimes | null;
  /** Where the model's bytes came from: "cache" when no file needed the network, "files" when picked. */
  source: "network" | "cache" | "files";
  /** What the cache could not do as asked (no quota, no OPFS, an entry locked by another tab). */
  cacheWarnings: string[];
}

/** Live numbers sent with every streamed piece. */
export interface PieceStats {
  /** Tokens generated so far. */
  generated: number;
  /** Decode speed since the first token (0 until the second). */
  tokensPerSecond: number;
  /** KV cache bytes holding the positions so far (int8 data + f32 scales). */
  kvCacheBytes: number;
  /** Positions in the cache (prompt + generated). */
  positions: number;
}

export type Reply =
  /** Load progress: phase, bytes, rate, time left (at most every 100 ms within a phase). */
  | { type: "progress"; id: number; progress: LoadProgress }
  | { type: "loaded"; id: number; model: LoadedModel }
  | { type: "piece"; id: number; token: number; text: string; stats: PieceStats }
  | { type: "done"; id: number; result: GenerationResult }
  | { type: "chunk"; id: number; chunk: unknown }
  | { type: "end"; id: number }
  | { type: "response"; id: number; response: unknown }
  | { type: "state"; id: number; tokens: number; bytes: number }
  | { type: "stopped"; id: number }
  | { type: "disposed"; id: number }
  /** `status`: an OpenAI request's HTTP-equivalent status (400, 429, ...) when it failed as OpenAI's API fails. */
  | { type: "error"; id: number; message: string; status?: number };

export type { ChatMessage, GenerationResult, LoadProgress, StopReason };
