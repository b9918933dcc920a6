// A pool of threads sharing one Wasm memory: the main thread and threads-1 workers split the rows of each
// matrix product and the (token, KV head) jobs of attention. The protocol and the work itself live in
// runtime.ts (one self-contained function, shipped to workers as source text); this file is the main
// thread's side. It only uses SharedArrayBuffer, Atomics and a worker handle created by a `SpawnWorker`
// function, so it runs unchanged on Web Workers; the Node binding (worker_threads) is node-worker.ts.
//
// Determinism: a chunk is a run of whole 4-row blocks (matmul) or one (token, KV head) pair (attention),
// and the kernels compute every block and every head on its own, so the bits of every output are the same
// for any thread count and whichever thread ran the chunk.
//
// Robustness: the main thread never waits long for a worker. It works through the chunks itself and, once
// none is left, gives the workers a bounded time to finish what they claimed and then recomputes (steals)
// the rest; a worker that the OS descheduled (a busy machine) only wastes its own time. Idle workers spin
// briefly, then sleep in Atomics.wait.
import type { Int4Matrix, Int8Activations } from "../kernels/layout.js";
import { threadRuntime, type RuntimeExports, type WorkerInit } from "./runtime.js";

/** Events a worker handle reports (from its postMessage channel and its lifecycle). */
export interface WorkerEvents {
  ready(): void;
  error(message: string): void;
  exit(code: number): void;
}

/** The environment-specific part of a worker: Node's worker_threads or a browser Worker. */
export interface PoolWorker {
  terminate(): Promise<unknown> | void;
  /** Let the host exit although this worker still exists (Node). */
  unref?(): void;
}

/**
 * Starts a worker that evaluates `source` (it defines `runWorker(init, post)`) and calls
 * runWorker(init, post), post sending messages back to `events`.
 */
export type SpawnWorker = (source: string, init: WorkerInit, events: WorkerEvents) => PoolWorker;

/** Script text defining runWorker(init, post): the whole runtime, nothing to load from disk. */
export function workerSource(): string {
  // __name: a no-op stand-in in case a bundler's keepNames transform decorated the function.
  return `"use strict";\nvar __name = (f) => f;\nconst runWorker = (${threadRuntime.toString()})().workerMain;\n`;
}

export interface PoolOptions {
  threads: number;
  /** The main thread's instance of the shared build, its compiled module and its memory. */
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  exports: RuntimeExports;
  /** Attention state (attentionStateBytes) per thread, the main thread's first. */
  states: number[];
  /** Private output scratch per worker (threads - 1 of them), `scratchBytes` each. */
  scratch: number[];
  scratchBytes: number;
  /** Required when threads > 1. */
  spawn?: SpawnWorker;
  /** How long idle workers spin before sleeping (µs); default 200. */
  spinMicros?: number;
  /** Rejects start() when the workers are not ready within this time (ms); default 60 000. */
  startTimeoutMs?: number;
}

/** Counters for benchmarks and tests. */
export interface PoolStats {
  regions: number;
  chunks: number;
  /** Chunks the main thread computed because a worker had not finished them in time. */
  stolen: number;
  /** Chunks the main thread claimed and computed itself (stolen ones not included). */
  mainChunks: number;
  /** Time the main thread spent computing its chunks, and at the end of regions (waiting, stealing), ms. */
  mainMs: number;
  tailMs: number;
}

/** Minimum time the main thread waits for a worker's claimed chunk before recomputing it (ms)... */
const MIN_STEAL_MS = 0.02;
/** ...otherwise this many times its own average chunk time (a worker on a core finishes well within). */
const STEAL_AFTER_CHUNKS = 1.25;
/** ...or, when the main thread computed no chunk itself, this long (ms). */
const STEAL_AFTER_NONE_MS = 0.2;
/** How long the main thread spins on a worker's commit before it sleeps in short timed waits (ms). */
const COMMIT_SPIN_MS = 0.05;
/** A commit not finished after this long means the worker died in the middle of it (ms). */
const COMMIT_GIVE_UP_MS = 10_000;
/** Bytes per chunk of a memory-read sweep. */
const READ_CHUNK = 4 << 20;

const rt = threadRuntime();

export class ThreadPool {
  readonly threads: number;
  readonly stats: PoolStats = { regions: 0, chunks: 0, stolen: 0, mainChunks: 0, mainMs: 0, tailMs: 0 };
  /**
   * Tuning: a matmul chunk holds at most about this many multiply-adds (2^22: ~0.1 ms for one thread)...
   * On an idle machine few large chunks measured fastest (a decode GEMV pass: 25.0 ms with 2^24 and one
   * chunk per thread, 26.3 ms with 2^21, 27.8 ms with 2^19 and four per thread; bench notes in
   * docs/performance.md); smaller chunks bound what a descheduled worker can hold up.
   */
  chunkMacs = 1 << 22;
  /** ...and a matrix is cut into at least this many chunks per thread. */
  chunksPerThread = 1;
  private exports: RuntimeExports | null;
  private readonly control: SharedArrayBuffer | null;
  private readonly ctl: Int32Array;
  private readonly desc = new Int32Array(rt.DESC_WORDS);
  private readonly mainState: number;
  private readonly scratchBytes: number;
  private workers: PoolWorker[] = [];
  private gen = 0;
  private failure: string | null = null;
  private terminated = false;

  private constructor(o: PoolOptions) {
    this.threads = o.threads;
    this.exports = o.exports;
    this.mainState = o.states[0];
    this.scratchBytes = o.scratchBytes;
    this.control = o.threads > 1 ? new SharedArrayBuffer(rt.CONTROL_BYTES) : null;
    this.ctl = this.control ? new Int32Array(this.control) : new Int32Array(0);
  }

  /** Starts threads-1 workers and resolves once every one has instantiated the kernels. */
  static async start(o: PoolOptions): Promise<ThreadPool> {
    if (!Number.isInteger(o.threads) || o.threads < 1) throw new RangeError(`threads must be an integer >= 1, got ${o.threads}`);
    if (o.threads > 1 + rt.MAX_CHUNKS) throw new RangeError(`threads must be at most ${1 + rt.MAX_CHUNKS}, got ${o.threads}`);
    if (o.states.length < o.threads) throw new RangeError(`need ${o.threads} attention states, got ${o.states.length}`);
    const pool = new ThreadPool(o);
    if (o.threads === 1) return pool;
    if (!o.spawn) throw new Error("ThreadPool.start: threads > 1 needs a spawn function");
    if (o.scratch.length < o.threads - 1) throw new RangeError(`need ${o.threads - 1} scratch blocks, got ${o.scratch.length}`);
    if (!(o.memory.buffer instanceof SharedArrayBuffer)) throw new Error("ThreadPool.start: threads > 1 needs the shared build (a shared WebAssembly.Memory)");
    const source = workerSource();
    let pending = o.threads - 1;
    let settle!: (err: Error | null) => void;
    const ready = new Promise<void>((resolve, reject) => {
      settle = (err) => (err ? reject(err) : resolve());
    });
    for (let i = 1; i < o.threads; i++) {
      const init: WorkerInit = {
        module: o.module, memory: o.memory, control: pool.control as SharedArrayBuffer, index: i,
        scratch: o.scratch[i - 1], state: o.states[i], spinMicros: o.spinMicros ?? 200,
      };
      let isReady = false;
      pool.workers.push(o.spawn(source, init, {
        ready: () => {
          isReady = true;
          if (--pending === 0) settle(null);
        },
        error: (message) => {
          pool.failure ??= `worker thread ${i} failed: ${message}`;
          if (!isReady) settle(new Error(pool.failure));
        },
        exit: (code) => {
          if (pool.terminated) return;
          pool.failure ??= `worker thread ${i} exited unexpectedly (exit code ${code})`;
          if (!isReady) settle(new Error(pool.failure));
        },
      }));
    }
    const timeout = o.startTimeoutMs ?? 60_000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        ready,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`worker threads not ready after ${timeout} ms`)), timeout);
        }),
      ]);
    } catch (err) {
      await pool.terminate();
      throw err;
    } finally {
      clearTimeout(timer);
    }
    // Workers only react to the shared control block; they must not keep the process alive.
    for (const w of pool.workers) w.unref?.();
    return pool;
  }

  /** Throws the first worker failure, if any (with the worker's message). */
  check(): void {
    if (this.terminated) throw new Error("the thread pool was terminated");
    if (this.failure === null && this.control && Atomics.load(this.ctl, rt.ERROR) > 0) {
      this.failure = `worker thread ${Atomics.load(this.ctl, rt.ERROR)} failed: ${rt.readMessage(this.ctl)}`;
    }
    if (this.failure !== null) throw new Error(this.failure);
  }

  /**
   * Y (f32 [tokens][m.rows] at yPtr) = m times act's tokens [first, first + tokens): gemv for one token,
   * gemm otherwise, rows split across the threads. Layouts: Int4Matrix and Int8Activations (layout.ts).
   */
  matmul(m: Int4Matrix, act: Int8Activations, yPtr: number, tokens: number, first = 0): void {
    if (m.cols !== act.cols) throw new RangeError(`matmul: matrix has ${m.cols} columns, activations have ${act.cols}`);
    if (!Number.isInteger(first) || !Number.isInteger(tokens) || first < 0 || tokens < 1 || first + tokens > act.tokens) {
      throw new RangeError(`matmul: tokens [${first}, ${first + tokens}) outside the ${act.tokens} held by the activations`);
    }
    const d = this.desc;
    const chunk = this.matmulChunkRows(m.rows, m.cols, tokens);
    d[0] = rt.OP_MATMUL;
    d[1] = Math.ceil(m.rows / chunk);
    d[rt.M_QS] = m.qsPtr;
    d[rt.M_SCALES] = m.scalesPtr;
    d[rt.M_SUMS] = m.sumsPtr;
    d[rt.M_ROWS] = m.rows;
    d[rt.M_COLS] = m.cols;
    d[rt.M_TOKENS] = tokens;
    d[rt.M_XQ] = act.qPtr + first * act.cols;
    d[rt.M_XW] = act.widePtr + 2 * first * act.cols;
    d[rt.M_XCORR] = act.corrPtr + 4 * first * (act.cols / 32);
    d[rt.M_XS] = act.scalePtr + 4 * first;
    d[rt.M_XZ] = act.zeroPtr + 4 * first;
    d[rt.M_Y] = yPtr;
    d[rt.M_CHUNK] = chunk;
    this.run();
  }

  /**
   * Attention of block tokens [tBase, tBase + tokens) of one layer, one job per (token, KV head): reset,
   * accumulate the visible positions (a ring range may wrap), finalize into out. The keys and values of
   * those positions must already be in the cache.
   */
  attention(a: {
    qkv: number; qkvStride: number; kvHeads: number; group: number; headDim: number;
    kData: number; kScales: number; vData: number; vScales: number; slots: number; window: number;
    pos0: number; tBase: number; tokens: number; scale: number; out: number; outStride: number;
  }): void {
    const d = this.desc;
    d[0] = rt.OP_ATTENTION;
    d[1] = a.tokens * a.kvHeads;
    if (d[1] > rt.MAX_CHUNKS) throw new RangeError(`attention: ${d[1]} jobs exceed ${rt.MAX_CHUNKS}`);
    d[rt.A_QKV] = a.qkv;
    d[rt.A_QKV_STRIDE] = a.qkvStride;
    d[rt.A_KV_HEADS] = a.kvHeads;
    d[rt.A_GROUP] = a.group;
    d[rt.A_HEAD_DIM] = a.headDim;
    d[rt.A_K] = a.kData;
    d[rt.A_KS] = a.kScales;
    d[rt.A_V] = a.vData;
    d[rt.A_VS] = a.vScales;
    d[rt.A_SLOTS] = a.slots;
    d[rt.A_WINDOW] = a.window;
    d[rt.A_POS0] = a.pos0;
    d[rt.A_TBASE] = a.tBase;
    d[rt.A_SCALE] = rt.bitsFromFloat(a.scale);
    d[rt.A_OUT] = a.out;
    d[rt.A_OUT_STRIDE] = a.outStride;
    if (rt.chunkOutputBytes(d) > this.scratchBytes && this.threads > 1) throw new RangeError("attention: a head's output exceeds the worker scratch");
    this.run();
  }

  /** Reads [ptr, ptr + bytes) with v128 loads, split across the threads: the memory-read roofline. */
  readBandwidth(ptr: number, bytes: number): void {
    const d = this.desc;
    const chunk = this.threads === 1 ? bytes : Math.max(64, Math.ceil(Math.max(READ_CHUNK, bytes / rt.MAX_CHUNKS) / 64) * 64);
    d[0] = rt.OP_READ;
    d[1] = Math.ceil(bytes / chunk);
    d[rt.R_PTR] = ptr;
    d[rt.R_BYTES] = bytes;
    d[rt.R_CHUNK] = chunk;
    this.run();
  }

  /** Rows per matmul chunk: whole 4-row blocks, ~TARGET_MACS of work, at least 4 chunks per thread. */
  matmulChunkRows(rows: number, cols: number, tokens: number): number {
    if (this.threads === 1) return rows;
    const up4 = (n: number) => Math.ceil(n / 4) * 4;
    const byWork = up4(this.chunkMacs / (cols * tokens));
    const byBalance = up4(rows / (this.chunksPerThread * this.threads));
    const byScratch = Math.floor(this.scratchBytes / (4 * tokens)) & ~3;
    const atMostChunks = up4(rows / rt.MAX_CHUNKS);
    const chunk = Math.max(4, atMostChunks, Math.min(byWork, byBalance, byScratch));
    if (chunk * tokens * 4 > this.scratchBytes) throw new RangeError(`matmul: ${rows} rows x ${tokens} tokens do not fit the worker scratch`);
    return chunk;
  }

  /** Test hook: worker `index` throws `message` at its next region. */
  injectWorkerError(index: number, message: string): void {
    if (!this.control) throw new Error("injectWorkerError: no worker threads");
    rt.writeMessage(this.ctl, message);
    Atomics.store(this.ctl, rt.INJECT, index);
  }

  /**
   * Test hook: workers hold every computed chunk for `micros` before committing it, so the main thread
   * recomputes (steals) most of them and the workers' late commits must fail harmlessly.
   */
  delayWorkerCommits(micros: number): void {
    if (this.control) Atomics.store(this.ctl, rt.DELAY, Math.max(0, Math.round(micros)));
  }

  /** Stops the workers and drops every reference to the Wasm instance and memory. Never rejects. */
  async terminate(): Promise<void> {
    if (this.terminated) return;
    this.terminated = true;
    if (this.control) {
      Atomics.store(this.ctl, rt.SHUTDOWN, 1);
      Atomics.add(this.ctl, rt.SEQ, 2);
      Atomics.notify(this.ctl, rt.SEQ);
    }
    const workers = this.workers;
    this.workers = [];
    this.exports = null;
    await Promise.all(workers.map((w) => Promise.resolve().then(() => w.terminate()).catch(() => undefined)));
  }

  // ---- one region --------------------------------------------------------------------------------------

  private run(): void {
    this.check();
    const e = this.exports as RuntimeExports;
    const d = this.desc;
    const n = d[1];
    this.stats.regions++;
    this.stats.chunks += n;
    if (this.threads === 1) {
      for (let c = 0; c < n; c++) rt.runChunk(e, d, c, -1, this.mainState);
      return;
    }
    const ctl = this.ctl;
    const gen = ++this.gen;
    // Publish: descriptor under the seqlock, chunk states FREE(gen), then the counter and the generation.
    Atomics.store(ctl, rt.SEQ, 2 * gen - 1);
    for (let i = 0; i < rt.DESC_WORDS; i++) Atomics.store(ctl, rt.DESC + i, d[i]);
    const free = rt.tag(gen, rt.FREE);
    ctl.fill(free, rt.STATES, rt.STATES + n);
    Atomics.store(ctl, rt.COUNTER, (gen & rt.GEN_MASK) << 12);
    Atomics.store(ctl, rt.SEQ, 2 * gen);
    if (Atomics.load(ctl, rt.SLEEPERS) > 0) Atomics.notify(ctl, rt.SEQ);

    // Work through the chunks alongside the workers.
    const done = rt.tag(gen, rt.DONE);
    const t0 = performance.now();
    let mine = 0;
    for (let c = rt.claim(ctl, gen, n); c >= 0; c = rt.claim(ctl, gen, n)) {
      rt.runChunk(e, d, c, -1, this.mainState);
      ctl[rt.STATES + c] = done;
      mine++;
    }
    // Wait briefly for the chunks the workers claimed, then recompute whatever is still missing.
    const t1 = performance.now();
    const stealAfter = mine > 0 ? Math.max(MIN_STEAL_MS, (STEAL_AFTER_CHUNKS * (t1 - t0)) / mine) : STEAL_AFTER_NONE_MS;
    const deadline = t1 + stealAfter;
    const committing = rt.tag(gen, rt.COMMITTING);
    const stolen = rt.tag(gen, rt.STOLEN);
    for (let c = 0; c < n; c++) {
      const i = rt.STATES + c;
      let since = 0;
      for (;;) {
        const v = Atomics.load(ctl, i);
        if (v === done) break;
        if (v === committing) {
          // A commit is a copy of a few KiB and cannot be taken back: wait for it, yielding the core after a
          // short spin in case the worker was descheduled in the middle of it.
          const now = performance.now();
          if (since === 0) since = now;
          else if (now - since > COMMIT_SPIN_MS) {
            if (now - since > COMMIT_GIVE_UP_MS) throw new Error(`worker thread stuck for ${COMMIT_GIVE_UP_MS} ms committing its result`);
            Atomics.wait(ctl, i, v, 0.05);
          }
          continue;
        }
        if (performance.now() < deadline) continue;
        if (Atomics.compareExchange(ctl, i, v, stolen) === v) {
          rt.runChunk(e, d, c, -1, this.mainState);
          ctl[i] = done;
          this.stats.stolen++;
          break;
        }
      }
    }
    const t2 = performance.now();
    this.stats.mainChunks += mine;
    this.stats.mainMs += t1 - t0;
    this.stats.tailMs += t2 - t1;
    if (Atomics.load(ctl, rt.ERROR) > 0) this.check();
  }
}
