// What differs between Node and a browser when a model is built: the kernel bytes, how a worker thread
// starts, and how many threads to use. Node's platform is src/node/platform.ts, the browser's
// src/browser/platform.ts; everything below this layer never asks which one runs.
import type { WasmVariant } from "../kernels/wasm.js";
import type { SpawnWorker } from "../threads/pool.js";

export interface Platform {
  readonly name: "node" | "browser";
  /** Threads the engine uses when the caller does not say. */
  defaultThreads(): number;
  /** Module bytes of the kernel builds (the shared-memory builds when `shared`, for worker threads). */
  wasmBytes(shared: boolean): Promise<Partial<Record<WasmVariant, Uint8Array>>>;
  /** Switches relaxed SIMD on where the engine needs telling (Node 20's V8 flag); browsers need nothing. */
  enableRelaxedSimd?: () => void;
  /** Starts one worker thread of the engine's pool. Absent: Node's worker_threads. */
  spawn?: SpawnWorker;
}
