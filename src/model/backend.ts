// The one interface every forward pass implements, so commands and the API never care which runs.
import type { ModelConfig } from "./config.js";

export type BackendName = "reference" | "wasm";
export const BACKENDS: readonly BackendName[] = ["reference", "wasm"];

/**
 * Where the engine's load went, in ms: what `--stats` and `mobilellm info --load` print as the load
 * breakdown. kernels, read, quantize and threads are disjoint stretches of `total`; threadsStart overlaps
 * them.
 */
export interface LoadTimes {
  /** From the engine's start to ready (the model's own files, config and tokenizer, are read before). */
  total: number;
  /** Compiling and probing the Wasm kernels. */
  kernels: number;
  /**
   * Waiting for weight bytes (file or network reads); each read runs while the previous one is quantized,
   * so this is the part of reading that quantizing did not hide.
   */
  read: number;
  /**
   * Quantizing float rows or repacking Q4_0 blocks into the kernels' layout, on every thread (first-touch
   * page faults of the fresh Wasm memory included: on a virtual machine they can be most of it).
   */
  quantize: number;
  /**
   * Starting the worker threads where it holds the load up: spawning them (the part that runs on this
   * thread), then waiting for them once the weights are in (they get ready while the weights load).
   */
  threads: number;
  /**
   * From asking for the worker threads to their being ready (about 0 for one thread): most of it passes
   * alongside the reads and quantizing; `threads` is the part that adds to the total.
   */
  threadsStart: number;
}

/**
 * One token of a batched forward pass: the sequence whose KV cache it extends, its position in that
 * sequence, and whether its next-token logits are wanted. A sequence's tokens in one batch are consecutive
 * positions in order, on top of the positions already cached for it.
 */
export interface BatchToken {
  sequence: number;
  token: number;
  position: number;
  logits: boolean;
}

export interface Backend {
  readonly name: BackendName;
  readonly config: ModelConfig;
  /** Positions each sequence can hold (its KV cache length). */
  readonly contextLength: number;
  /** Sequences with a KV cache of their own: 0 .. sequences - 1 (the serving layer's slots). */
  readonly sequences: number;
  /** Threads running the forward pass (the main thread included). */
  readonly threads: number;
  /** The Wasm build in use and why, or null for a backend without kernels. */
  readonly simd: { variant: string; reason: string } | null;
  /** The load's breakdown, where the backend measured it. */
  readonly loadTimes: LoadTimes | null;
  /**
   * Runs `tokens` at positions startPos, startPos + 1, ... of `sequence` (default 0) on top of its cached
   * positions before startPos, and returns the next-token logits of every position (`all`) or of the last
   * one only. Each returned array is a fresh copy the caller may keep.
   */
  forward(tokens: readonly number[], startPos: number, all: boolean, sequence?: number): Float32Array[];
  /**
   * Runs the tokens of several sequences as one pass (continuous batching) and returns the logits of the
   * rows that want them, in batch order. Every row's logits are bit-identical to running its sequence alone:
   * no kernel mixes tokens, so what else is in the batch never changes a result (batch invariance).
   */
  forwardBatch(batch: readonly BatchToken[]): Float32Array[];
  /**
   * The KV state of `sequence` holding `tokens` (its cached positions 0 .. tokens.length - 1) as bytes
   * (kv-state.ts); null when this backend keeps no state it can save (the float32 reference).
   */
  saveState?(sequence: number, tokens: readonly number[]): Uint8Array;
  /** Loads a saved state into `sequence` and returns its tokens; a file that fails a check is refused. */
  restoreState?(sequence: number, bytes: Uint8Array): number[];
  /**
   * Decode steps (one-token forward passes) run so far split across the threads and on the main thread
   * alone, as the thread pool chose them by their timing (src/threads/choice.ts); absent without threads.
   */
  decodeSteps?(): { split: number; solo: number };
  /**
   * The oldest position whose keys and values every sliding layer of `sequence` still holds in its ring
   * (KvCache.intactFrom), for the cache-reuse policy (canResumeAt); absent where the backend keeps no rings.
   */
  kvIntactFrom?(sequence: number): number;
  /** Bytes the backend's KV cache holds allocated (int8 data and f32 scales), for a backend that keeps one. */
  kvCacheBytes?(): number;
  /** Releases what the backend holds (Wasm memory, worker threads); the backend is unusable afterwards. */
  dispose(): void | Promise<void>;
}

/** Checks a request before any work, so bad input fails with a clear message and not deep inside. */
export function checkForwardRequest(b: Backend, tokens: readonly number[], startPos: number, sequence = 0): void {
  checkSequence(b, sequence);
  if (tokens.length === 0) throw new RangeError("no tokens to run");
  if (!Number.isInteger(startPos) || startPos < 0) throw new RangeError(`invalid start position ${startPos}`);
  if (startPos + tokens.length > b.contextLength) {
    throw new RangeError(
      `${startPos + tokens.length} positions do not fit the context of ${b.contextLength} tokens`,
    );
  }
  const v = b.config.vocabSize;
  for (const t of tokens) {
    if (!Number.isInteger(t) || t < 0 || t >= v) throw new RangeError(`token id ${t} is outside the vocabulary [0, ${v})`);
  }
}

export function checkSequence(b: Backend, sequence: number): void {
  if (!Number.isInteger(sequence) || sequence < 0 || sequence >= b.sequences) {
    throw new RangeError(`sequence ${sequence} is outside 0..${b.sequences - 1}`);
  }
}

/**
 * Checks a batch before any work: each row a valid token inside the context of a valid sequence, and each
 * sequence's rows consecutive positions in order.
 */
export function checkBatch(b: Backend, batch: readonly BatchToken[]): void {
  if (batch.length === 0) throw new RangeError("no tokens to run");
  const next = new Map<number, number>();
  for (const r of batch) {
    checkSequence(b, r.sequence);
    const expected = next.get(r.sequence);
    if (expected !== undefined && r.position !== expected) {
      throw new RangeError(`sequence ${r.sequence}: position ${r.position} follows position ${expected - 1} in the batch`);
    }
    checkForwardRequest(b, [r.token], r.position, r.sequence);
    next.set(r.sequence, r.position + 1);
  }
}
