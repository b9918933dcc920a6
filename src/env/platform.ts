// The environment seam: the few things that differ between Node and a browser when a model is built.
//
// Everything else (config, tokenizer, chat template, the checkpoint reader over ByteSources, the engine and
// generation) is shared code that never imports a node:* module. Node's side is src/env/node.ts (and
// src/model/load.ts, which reads a folder on disk); the browser's is src/browser/.
import type { ByteSource } from "../model/checkpoint/byte-source.js";
import type { WasmVariant } from "../kernels/wasm.js";
import type { SpawnWorker } from "../threads/pool.js";

export interface Platform {
  readonly name: "node" | "browser";
  /** Threads the engine uses when the caller does not say. */
  defaultThreads(): number;
  /**
   * Module bytes of the kernel builds (the shared-memory builds when `shared`, for worker threads).
   * Absent: the kernels read build/*.wasm from disk (Node).
   */
  wasmBytes?(shared: boolean): Promise<Partial<Record<WasmVariant, Uint8Array>>>;
  /** Starts one worker thread of the engine's pool. Absent: Node's worker_threads. */
  spawn?: SpawnWorker;
}

/** A checkpoint folder wherever it lives: a directory on disk, files a user picked, a URL base. */
export interface ModelFolder {
  /** Shown in messages and as Model.dir: a path, a folder name, a URL. */
  readonly name: string;
  /** A file's text, or null when the folder has no such file. */
  readText(file: string): Promise<string | null>;
  /** A file as random-access bytes, or null when the folder has no such file. The caller closes it. */
  open(file: string): Promise<ByteSource | null>;
}
