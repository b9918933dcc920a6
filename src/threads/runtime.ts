// The code every thread of the pool runs: the work items (chunks of a matrix product, attention jobs, a
// memory-read sweep) and the protocol that hands them out. It is ONE self-contained function,
// threadRuntime(), with no imports and no reference to anything outside its body, because a worker gets it
// as source text (threadRuntime.toString(), see workerSource in pool.ts): the same code then runs in a Node
// worker_thread or, later, a Web Worker, with nothing to resolve on disk. The main thread calls the very
// same functions, so a chunk computes the same bits whichever thread runs it.
//
// Protocol (all words in one SharedArrayBuffer, `control`, separate from the Wasm memory):
//
//   SEQ       a seqlock and the region generation: odd while the main thread writes a region's descriptor,
//             2·gen once region `gen` is published. Workers wait on it (spin, then Atomics.wait).
//   COUNTER   (gen mod 2^19) << 12 | next: the next unclaimed chunk of the region. A thread claims a chunk
//             with a compare-exchange that also checks the generation, so a worker that wakes up late can
//             never claim a chunk of a later region with an earlier region's descriptor.
//   STATES    one word per chunk, (gen mod 2^19) << 3 | code, code FREE / CLAIMED / COMMITTING / DONE /
//             STOLEN. The main thread resets them to FREE(gen) before publishing.
//
// A worker computes its chunk into PRIVATE scratch memory, then commits it: CLAIMED -> COMMITTING by
// compare-exchange, copy the rows into place, DONE. The main thread claims chunks too, computing them in
// place; when none is left it waits for the workers' chunks for a short, bounded time and then STEALS any
// chunk still FREE or CLAIMED (compare-exchange to STOLEN) and computes it itself. A worker descheduled by
// the OS (a busy machine) therefore never stalls the main thread: its late result fails the commit and is
// dropped, and it never wrote outside its scratch. Each output row still comes from one deterministic
// computation (the same kernel call on the same 4-row blocks), so the bits do not depend on who ran it.

import type { WasmExports } from "../kernels/exports.js";

/** What a worker needs to join the pool (structured-cloneable: postMessage or workerData). */
export interface WorkerInit {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
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

/** The Wasm exports the runtime calls (a subset of the kernel module's). */
export type RuntimeExports = Pick<
  WasmExports,
  "gemv" | "gemm_ld" | "copy_rows" | "attention_reset" | "attention_accumulate" | "attention_finalize" | "read_bandwidth"
>;

export type Runtime = ReturnType<typeof threadRuntime>;

export function threadRuntime() {
  "use strict";
  // ---- control block layout (Int32 word indexes) ----
  const SEQ = 0;
  const COUNTER = 1;
  const SLEEPERS = 2;
  const SHUTDOWN = 3;
  /** 0, or the index of the first worker that failed (its message is at MSG). */
  const ERROR = 4;
  /** Test hook: a worker whose index is stored here throws the message at MSG at its next region. */
  const INJECT = 5;
  const ERRLEN = 6;
  /** Test hook: workers wait this many µs between computing a chunk and committing it (0: none). */
  const DELAY = 7;
  /** When non-zero: overrides WorkerInit.spinMicros (tuning at run time). */
  const SPIN = 8;
  const DESC = 16;
  const DESC_WORDS = 48;
  const STATES = DESC + DESC_WORDS;
  const MAX_CHUNKS = 4095;
  const MSG = (STATES + MAX_CHUNKS + 1) * 4;
  const MSG_BYTES = 1024;
  const CONTROL_BYTES = MSG + MSG_BYTES;
  const GEN_MASK = 0x7ffff;

  const FREE = 0;
  const CLAIMED = 1;
  const COMMITTING = 2;
  const DONE = 3;
  const STOLEN = 4;

  const OP_MATMUL = 1;
  const OP_ATTENTION = 2;
  const OP_READ = 3;

  // Descriptor fields (word offsets from DESC). Word 0: op, word 1: chunk count.
  // MATMUL: an Int4Matrix times `tokens` activation rows; chunk c = rows [c·chunkRows, ...), a multiple of 4.
  const M_QS = 2, M_SCALES = 3, M_WSUM = 4, M_ROWS = 5, M_COLS = 6, M_TOKENS = 7, M_XQ = 8, M_XW = 9,
    M_XCORR = 10, M_XS = 11, M_XZ = 12, M_Y = 13, M_CHUNK = 14;
  // ATTENTION: job j = (token tBase + j / kvHeads, KV head j % kvHeads) of one layer.
  const A_QKV = 2, A_QKV_STRIDE = 3, A_KV_HEADS = 4, A_GROUP = 5, A_HEAD_DIM = 6, A_K = 7, A_KS = 8, A_V = 9,
    A_VS = 10, A_SLOTS = 11, A_WINDOW = 12, A_POS0 = 13, A_TBASE = 14, A_SCALE = 15, A_OUT = 16, A_OUT_STRIDE = 17;
  // READ: chunk c sweeps bytes [c·chunk, ...) of [ptr, ptr + bytes).
  const R_PTR = 2, R_BYTES = 3, R_CHUNK = 4;

  const f32bits = new Float32Array(1);
  const i32bits = new Int32Array(f32bits.buffer);

  function tag(gen: number, code: number): number {
    return ((gen & GEN_MASK) << 3) | code;
  }

  function floatFromBits(bits: number): number {
    i32bits[0] = bits;
    return f32bits[0];
  }

  function bitsFromFloat(x: number): number {
    f32bits[0] = x;
    return i32bits[0];
  }

  /** Claims the next chunk of region `gen`: its index, or -1 when none is left or the region is over. */
  function claim(ctl: Int32Array, gen: number, n: number): number {
    const g = gen & GEN_MASK;
    for (;;) {
      const v = Atomics.load(ctl, COUNTER);
      if (v >>> 12 !== g) return -1;
      const next = v & 0xfff;
      if (next >= n) return -1;
      if (Atomics.compareExchange(ctl, COUNTER, v, v + 1) === v) return next;
    }
  }

  /**
   * Runs chunk c of the descriptor d (a private copy): in place when scratch < 0 (the main thread), else
   * into the worker's private `scratch` (commitChunk then copies it into place). `state` is the calling
   * thread's own attention state.
   */
  function runChunk(e: RuntimeExports, d: Int32Array, c: number, scratch: number, state: number): void {
    const op = d[0];
    if (op === OP_MATMUL) {
      const rows = d[M_ROWS];
      const cols = d[M_COLS];
      const tokens = d[M_TOKENS];
      const chunk = d[M_CHUNK];
      const r0 = c * chunk;
      const nr = Math.min(chunk, rows - r0);
      const cells = (r0 >> 2) * (cols >> 5);
      const wq = (d[M_QS] >>> 0) + cells * 64;
      const ws = (d[M_SCALES] >>> 0) + cells * 16;
      const wsum = (d[M_WSUM] >>> 0) + 4 * r0;
      const direct = scratch < 0;
      const y = direct ? (d[M_Y] >>> 0) + 4 * r0 : scratch;
      if (tokens === 1) {
        e.gemv(wq, ws, wsum, nr, cols, d[M_XQ], d[M_XW], d[M_XCORR], d[M_XS], d[M_XZ], y);
      } else {
        e.gemm_ld(wq, ws, wsum, nr, cols, tokens, d[M_XQ], d[M_XW], d[M_XCORR], d[M_XS], d[M_XZ], y, direct ? rows : nr);
      }
    } else if (op === OP_ATTENTION) {
      const kvHeads = d[A_KV_HEADS];
      const group = d[A_GROUP];
      const dh = d[A_HEAD_DIM];
      const slots = d[A_SLOTS];
      const window = d[A_WINDOW];
      const t = d[A_TBASE] + ((c / kvHeads) | 0);
      const g = c % kvHeads;
      const pos = d[A_POS0] + t;
      const q = (d[A_QKV] >>> 0) + t * d[A_QKV_STRIDE] + 4 * g * group * dh;
      const headData = g * slots * dh;
      const headScales = 4 * g * slots;
      const k = (d[A_K] >>> 0) + headData;
      const ks = (d[A_KS] >>> 0) + headScales;
      const v = (d[A_V] >>> 0) + headData;
      const vs = (d[A_VS] >>> 0) + headScales;
      const scale = floatFromBits(d[A_SCALE]);
      // Positions [lo, pos] as one run of ring slots, or two where the ring wraps (KvCache.ranges).
      const lo = window > 0 ? Math.max(0, pos - window + 1) : 0;
      const n = pos + 1 - lo;
      const s0 = lo % slots;
      e.attention_reset(state, group, dh);
      if (s0 + n <= slots) {
        e.attention_accumulate(q, group, dh, k, ks, v, vs, s0, n, scale, state);
      } else {
        e.attention_accumulate(q, group, dh, k, ks, v, vs, s0, slots - s0, scale, state);
        e.attention_accumulate(q, group, dh, k, ks, v, vs, 0, n - (slots - s0), scale, state);
      }
      const out = scratch < 0 ? (d[A_OUT] >>> 0) + t * d[A_OUT_STRIDE] + 4 * g * group * dh : scratch;
      e.attention_finalize(state, group, dh, out);
    } else if (op === OP_READ) {
      const chunk = d[R_CHUNK] >>> 0;
      const off = c * chunk;
      e.read_bandwidth((d[R_PTR] >>> 0) + off, Math.min(chunk, (d[R_BYTES] >>> 0) - off));
    }
  }

  /** Copies a chunk a worker computed in scratch into place. */
  function commitChunk(e: RuntimeExports, d: Int32Array, c: number, scratch: number): void {
    const op = d[0];
    if (op === OP_MATMUL) {
      const rows = d[M_ROWS];
      const chunk = d[M_CHUNK];
      const r0 = c * chunk;
      const nr = Math.min(chunk, rows - r0);
      e.copy_rows((d[M_Y] >>> 0) + 4 * r0, 4 * rows, scratch, 4 * nr, 4 * nr, d[M_TOKENS]);
    } else if (op === OP_ATTENTION) {
      const kvHeads = d[A_KV_HEADS];
      const width = 4 * d[A_GROUP] * d[A_HEAD_DIM];
      const t = d[A_TBASE] + ((c / kvHeads) | 0);
      const g = c % kvHeads;
      e.copy_rows((d[A_OUT] >>> 0) + t * d[A_OUT_STRIDE] + g * width, 0, scratch, 0, width, 1);
    }
  }

  /** Output bytes one chunk of `d` writes (what a worker's scratch must hold). */
  function chunkOutputBytes(d: Int32Array): number {
    if (d[0] === OP_MATMUL) return 4 * d[M_CHUNK] * d[M_TOKENS];
    if (d[0] === OP_ATTENTION) return 4 * d[A_GROUP] * d[A_HEAD_DIM];
    return 0;
  }

  function writeMessage(ctl: Int32Array, message: string): void {
    const bytes = new TextEncoder().encode(message).subarray(0, MSG_BYTES);
    new Uint8Array(ctl.buffer, MSG, MSG_BYTES).set(bytes);
    Atomics.store(ctl, ERRLEN, bytes.length);
  }

  function readMessage(ctl: Int32Array): string {
    const n = Atomics.load(ctl, ERRLEN);
    // TextDecoder refuses views of a SharedArrayBuffer: copy first.
    return new TextDecoder().decode(new Uint8Array(ctl.buffer, MSG, n).slice());
  }

  /** Records a worker's failure (the first one wins) for the main thread to throw. */
  function reportError(ctl: Int32Array, index: number, message: string): void {
    if (Atomics.compareExchange(ctl, ERROR, 0, -1) !== 0) return;
    writeMessage(ctl, message);
    Atomics.store(ctl, ERROR, index);
  }

  /** The loop of worker `init.index`; returns at shutdown or after reporting an error. */
  function workerMain(init: WorkerInit, post: (message: unknown) => void): void {
    const ctl = new Int32Array(init.control);
    let e: RuntimeExports;
    try {
      const instance = new WebAssembly.Instance(init.module, { env: { memory: init.memory } });
      e = instance.exports as unknown as RuntimeExports;
    } catch (err) {
      const message = `worker ${init.index} could not instantiate the kernels: ${(err as Error).message}`;
      reportError(ctl, init.index, message);
      post({ type: "error", message });
      return;
    }
    post({ type: "ready" });
    const d = new Int32Array(DESC_WORDS);
    const spinDefault = init.spinMicros;
    let seen = Atomics.load(ctl, SEQ) & ~1;
    for (;;) {
      // Wait for the next region: spin for a bounded time, then sleep.
      let s = Atomics.load(ctl, SEQ);
      if (s === seen || (s & 1) === 1) {
        const until = performance.now() + (Atomics.load(ctl, SPIN) || spinDefault) / 1000;
        let spins = 0;
        while ((s === seen || (s & 1) === 1) && (spins++ & 63 || performance.now() < until)) s = Atomics.load(ctl, SEQ);
        while (s === seen || (s & 1) === 1) {
          if (Atomics.load(ctl, SHUTDOWN) !== 0) return;
          Atomics.add(ctl, SLEEPERS, 1);
          Atomics.wait(ctl, SEQ, s);
          Atomics.sub(ctl, SLEEPERS, 1);
          s = Atomics.load(ctl, SEQ);
        }
      }
      if (Atomics.load(ctl, SHUTDOWN) !== 0) return;
      // Consistent snapshot of the descriptor (seqlock): retry if the main thread moved on meanwhile.
      for (let i = 0; i < DESC_WORDS; i++) d[i] = Atomics.load(ctl, DESC + i);
      if (Atomics.load(ctl, SEQ) !== s) continue;
      seen = s;
      const gen = s >>> 1;
      try {
        if (Atomics.load(ctl, INJECT) === init.index) throw new Error(readMessage(ctl));
        const n = d[1];
        for (let c = claim(ctl, gen, n); c >= 0; c = claim(ctl, gen, n)) {
          const st = STATES + c;
          if (Atomics.compareExchange(ctl, st, tag(gen, FREE), tag(gen, CLAIMED)) !== tag(gen, FREE)) continue;
          runChunk(e, d, c, init.scratch, init.state);
          const delay = Atomics.load(ctl, DELAY);
          if (delay > 0) for (const until = performance.now() + delay / 1000; performance.now() < until; );
          if (Atomics.compareExchange(ctl, st, tag(gen, CLAIMED), tag(gen, COMMITTING)) !== tag(gen, CLAIMED)) continue;
          commitChunk(e, d, c, init.scratch);
          Atomics.store(ctl, st, tag(gen, DONE));
        }
      } catch (err) {
        // A worker that woke up late may compute on inputs the main thread is already rewriting; only an
        // error in a live region is real (it cannot be one of those, but then nothing is lost either).
        if (Atomics.load(ctl, SEQ) !== s) continue;
        const message = err instanceof Error ? err.message : String(err);
        reportError(ctl, init.index, message);
        post({ type: "error", message });
        return;
      }
    }
  }

  return {
    SEQ, COUNTER, SLEEPERS, SHUTDOWN, ERROR, INJECT, DELAY, SPIN, DESC, DESC_WORDS, STATES, MAX_CHUNKS, CONTROL_BYTES, GEN_MASK,
    FREE, CLAIMED, COMMITTING, DONE, STOLEN, OP_MATMUL, OP_ATTENTION, OP_READ,
    M_QS, M_SCALES, M_WSUM, M_ROWS, M_COLS, M_TOKENS, M_XQ, M_XW, M_XCORR, M_XS, M_XZ, M_Y, M_CHUNK,
    A_QKV, A_QKV_STRIDE, A_KV_HEADS, A_GROUP, A_HEAD_DIM, A_K, A_KS, A_V, A_VS, A_SLOTS, A_WINDOW, A_POS0, A_TBASE,
    A_SCALE, A_OUT, A_OUT_STRIDE, R_PTR, R_BYTES, R_CHUNK,
    tag, claim, runChunk, commitChunk, chunkOutputBytes, bitsFromFloat, writeMessage, readMessage, reportError, workerMain,
  };
}
