// Checks the options of loadModel / loadModelInBrowser before any file is read: a typo ("gpu", "avx") or
// an impossible value (contextLength 0, 4096 threads) is refused at once, not after reading and
// quantizing a whole checkpoint, and never silently replaced by a default.
import { BACKENDS, type BackendName } from "../model/backend.js";
import type { SimdMode } from "../kernels/wasm.js";
import { checkThreads } from "../threads/pool.js";
import type { LoadProgressCallback } from "./load-progress.js";

export interface LoadOptions {
  /** "wasm" (default): the int4 x int8 engine; "reference": the float32 oracle. */
  backend?: BackendName;
  /** Wasm build for the "wasm" backend: "auto" (default) picks relaxed SIMD where proven correct. */
  simd?: SimdMode;
  /** Positions the KV cache holds; defaults to min(max_position_embeddings, 4096). */
  contextLength?: number;
  /** Threads of the wasm engine (main thread + workers); defaults to the available cores. */
  threads?: number;
  /**
   * Sequences with a KV cache of their own, each holding the whole context (default 1): what a server
   * runs at once (src/serve/). The single-sequence API (generate, chat) uses sequence 0.
   */
  sequences?: number;
  /**
   * Called as the weights arrive and are read: the phase (download, prepare, threads), bytes done of the
   * total, rate and time left (src/session/load-progress.ts), at most every 100 ms within a phase; last,
   * once the model can generate, phase "ready".
   */
  onProgress?: LoadProgressCallback;
}


/** Sequences never exceed this: each has a KV cache for the whole context, and a decode step carries them all. */
export const MAX_SEQUENCES = 64;

/** Engine threads never exceed this, whatever the machine: each one is a worker with its own heap. */
export const MAX_THREADS = 64;

const SIMD_MODES = ["auto", "baseline", "relaxed"];

/**
 * Throws a RangeError or TypeError naming the option. `cores` is what the platform offers (its default
 * thread count); more than twice that many threads only queue for the same cores.
 */
export function checkLoadOptions(opts: LoadOptions, cores: number): void {
  if (typeof opts !== "object" || opts === null) throw new TypeError("the load options must be an object");
  const { backend, simd, contextLength, threads, sequences, onProgress } = opts;
  if (backend !== undefined && !BACKENDS.includes(backend)) {
    throw new RangeError(`backend must be one of ${BACKENDS.join(", ")}, got ${JSON.stringify(backend)}`);
  }
  if (simd !== undefined && !SIMD_MODES.includes(simd)) {
    throw new RangeError(`simd must be one of ${SIMD_MODES.join(", ")}, got ${JSON.stringify(simd)}`);
  }
  if (contextLength !== undefined && (typeof contextLength !== "number" || !Number.isSafeInteger(contextLength) || contextLength < 1)) {
    throw new RangeError(`contextLength must be an integer >= 1, got ${String(contextLength)}`);
  }
  if (sequences !== undefined && (typeof sequences !== "number" || !Number.isSafeInteger(sequences) || sequences < 1 || sequences > MAX_SEQUENCES)) {
    throw new RangeError(`sequences must be an integer in [1, ${MAX_SEQUENCES}], got ${String(sequences)}`);
  }
  if (threads !== undefined) {
    checkThreads(threads);
    const limit = Math.min(MAX_THREADS, 2 * Math.max(1, cores));
    if (threads > limit) {
      throw new RangeError(`threads ${threads} is more than this machine can use: at most ${limit} (twice the ${cores} available cores, and never more than ${MAX_THREADS})`);
    }
  }
  if (onProgress !== undefined && typeof onProgress !== "function") throw new TypeError("onProgress must be a function");
}
