// How the threads of the pool hand out the chunks of a region: the layout of the control block (Int32
// words in one SharedArrayBuffer, separate from the Wasm memory) and the operations on it that both sides
// use. The main thread's side is pool.ts, a worker's is worker.ts; what a region computes is jobs.ts.
//
//   SEQ       a seqlock and the region generation: odd while the main thread writes a region's job,
//             2·gen once region `gen` is published. Workers wait on it (spin, then Atomics.wait).
//   HOLD      how long (µs) an idle worker keeps polling SEQ after this region before it sleeps: the
//             main thread writes it with each region (long for forward passes, 0 for loads).
//   COUNTER   (gen mod 2^19) << 12 | next: the next unclaimed chunk of the region. A thread claims a chunk
//             with a compare-exchange that also checks the generation, so a worker that wakes up late can
//             never claim a chunk of a later region with an earlier region's job.
//   STATES    one word per chunk, (gen mod 2^19) << 3 | code, code FREE / CLAIMED / COMMITTING / DONE /
//             STOLEN. The main thread resets them to FREE(gen) before publishing.
//
// A worker computes its chunk into PRIVATE scratch memory, then commits it: CLAIMED -> COMMITTING by
// compare-exchange, copy the rows into place, DONE. The main thread claims chunks too, computing them in
// place; when none is left it waits for the workers' chunks for a short, bounded time and then STEALS any
// chunk still FREE or CLAIMED (compare-exchange to STOLEN) and computes it itself. A worker descheduled by
// the OS (a busy machine) therefore never stalls the main thread: its late result fails the commit and is
// dropped, and it never wrote outside its scratch.

import type { WasmVariant } from "../kernels/wasm.js";

/** What a worker needs to join the pool (structured-cloneable: postMessage or workerData). */
export interface WorkerInit {
  /** The main thread's compiled kernel module and shared memory, and the build's name (for messages). */
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  variant: WasmVariant;
  control: SharedArrayBuffer;
  /** 1 .. threads-1 (the main thread is 0). */
  index: number;
  /** Byte address of this worker's private output scratch in the Wasm memory. */
  scratch: number;
  /** Byte address of this worker's attention state. */
  state: number;
  /** How long an idle worker spins before it sleeps in Atomics.wait, in microseconds. */
  spinMicros: number;
}

/** The messages a worker posts to the thread that started it. */
export type WorkerMessage = { type: "ready" } | { type: "error"; message: string };

// ---- control block layout (Int32 word indexes) ----
export const SEQ = 0;
export const COUNTER = 1;
/** Workers currently asleep in Atomics.wait on SEQ (the main thread notifies only when there are some). */
export const SLEEPERS = 2;
export const SHUTDOWN = 3;
/** 0, or the index of the first worker that failed (its message is at MSG). */
export const ERROR = 4;
/** Test hook: a worker whose index is stored here throws the message at MSG at its next region. */
export const INJECT = 5;
const ERRLEN = 6;
/** Test hook: workers wait this many µs between computing a chunk and committing it (0: none). */
export const DELAY = 7;
/** When non-zero: overrides WorkerInit.spinMicros (tuning at run time). */
export const SPIN = 8;
/**
 * When non-zero: idle workers poll this long (µs) after the current region instead of the spin, so they are
 * still awake when the next forward pass starts (pool.ts: holdMicros).
 */
export const HOLD = 9;
/** The current region's job, encoded by jobs.ts. */
export const JOB = 16;
export const JOB_WORDS = 48;
export const STATES = JOB + JOB_WORDS;
/** Chunks per region: COUNTER holds the next chunk in 12 bits. */
export const MAX_CHUNKS = 4095;
const MSG = (STATES + MAX_CHUNKS + 1) * 4;
const MSG_BYTES = 1024;
export const CONTROL_BYTES = MSG + MSG_BYTES;
const GEN_MASK = 0x7ffff;

export const FREE = 0;
export const CLAIMED = 1;
export const COMMITTING = 2;
export const DONE = 3;
export const STOLEN = 4;

/** A chunk state word: `code` in region `gen`. */
export function tag(gen: number, code: number): number {
  return ((gen & GEN_MASK) << 3) | code;
}

/** Opens region `gen` for claiming: its n chunks FREE, the counter at chunk 0 (the job is already written). */
export function openRegion(ctl: Int32Array, gen: number, n: number): void {
  ctl.fill(tag(gen, FREE), STATES, STATES + n);
  Atomics.store(ctl, COUNTER, (gen & GEN_MASK) << 12);
}

/** Claims the next chunk of region `gen`: its index, or -1 when none is left or the region is over. */
export function claim(ctl: Int32Array, gen: number, n: number): number {
  const g = gen & GEN_MASK;
  for (;;) {
    const v = Atomics.load(ctl, COUNTER);
    if (v >>> 12 !== g) return -1;
    const next = v & 0xfff;
    if (next >= n) return -1;
    if (Atomics.compareExchange(ctl, COUNTER, v, v + 1) === v) return next;
  }
}

export function writeMessage(ctl: Int32Array, message: string): void {
  const bytes = new TextEncoder().encode(message).subarray(0, MSG_BYTES);
  new Uint8Array(ctl.buffer, MSG, MSG_BYTES).set(bytes);
  Atomics.store(ctl, ERRLEN, bytes.length);
}

export function readMessage(ctl: Int32Array): string {
  const n = Atomics.load(ctl, ERRLEN);
  // TextDecoder refuses views of a SharedArrayBuffer: copy first.
  return new TextDecoder().decode(new Uint8Array(ctl.buffer, MSG, n).slice());
}

/** Records a worker's failure (the first one wins) for the main thread to throw. */
export function reportError(ctl: Int32Array, index: number, message: string): void {
  if (Atomics.compareExchange(ctl, ERROR, 0, -1) !== 0) return;
  writeMessage(ctl, message);
  Atomics.store(ctl, ERROR, index);
}
