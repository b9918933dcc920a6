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
// briefly, then sleep in Atomics.wait. When the workers keep missing regions (more runnable threads than
// free cores: another process holds a core), the main thread goes SOLO for a while: it runs the regions
// alone, so the workers fall asleep and stop competing with it for a core, then it tries again (backing
// off exponentially while the machine stays busy).
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
  /** How long idle workers spin before sleeping (µs); default 300. */
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
  /** Regions the main thread ran alone because the workers kept missing regions (a busy machine). */
  soloRegions: number;
  /** Times the pool went solo. */
  soloSpells: number;
}

/** Minimum time the main thread waits for a worker's claimed chunk before recomputing it (ms)... */
const MIN_STEAL_MS = 0.02;
/** ...otherwise this many times its own average chunk time (a worker on a core finishes well within). */
const STEAL_AFTER_CHUNKS = 2;
/** ...or, when the main thread computed no chunk itself, this long (ms). */
const STEAL_AFTER_NONE_MS = 0.2;
/**
 * Idle workers spin this long before sleeping (µs): long enough to catch the next region of a decode step
 * across the main thread's serial work and its garbage-collection pauses (a worker that fell asleep took up
 * to a millisecond to wake on this VM), short enough to hand the core back soon when the main thread is
 * not coming back (between tokens, or solo on a busy machine).
 */
const DEFAULT_SPIN_MICROS = 300;
/**
 * Solo policy: of the last SOLO_WINDOW parallel regions, SOLO_BAD or more "missed" (a chunk had to be
 * stolen, or the workers computed none although there were enough chunks for every thread) means the
 * workers are not getting a core; the main thread then runs the next soloLength regions alone
 * (SOLO_MIN_REGIONS, about one decode step, doubling up to SOLO_MAX_REGIONS while the next tries miss
 * again, back to the minimum after 4 windows without a spell). A try after a spell starts a fresh window
 * and gives up early: SOLO_PROBE_BAD misses among its first SOLO_PROBE regions. Spells count regions,
 * not time, so an engine that is idle in between (or alternates with another) still gets its tries.
 * Measured on this 2-vCPU VM over 15 decode steps (2265 regions): 0.2-1.5% of regions missed on an idle
 * machine, in bursts of up to ~30 (a worker descheduled for a few ms, e.g. while V8's own background
 * threads run), and 17-26% with another process spinning on one core.
 */
const SOLO_WINDOW = 256;
const SOLO_BAD = 40;
const SOLO_MIN_REGIONS = 150;
const SOLO_MAX_REGIONS = 150 * 32;
const SOLO_PROBE = 64;
const SOLO_PROBE_BAD = 12;
/**
 * The first regions of a fresh pool do not count: V8 is still compiling the workers' JavaScript and tiering
 * up the kernels, and the misses of those first ~15 decode steps once sent the pool solo for a second.
 */
const SOLO_WARMUP_REGIONS = 2048;
/** How long the main thread spins on a worker's commit before it sleeps in short timed waits (ms). */
const COMMIT_SPIN_MS = 0.05;
/** A commit not finished after this long means the worker died in the middle of it (ms). */
const COMMIT_GIVE_UP_MS = 10_000;
/** Bytes per chunk of a memory-read sweep. */
const READ_CHUNK = 4 << 20;

const rt = threadRuntime();

export class ThreadPool {
  readonly threads: number;
  readonly stats: PoolStats = { regions: 0, chunks: 0, stolen: 0, mainChunks: 0, mainMs: 0, tailMs: 0, soloRegions: 0, soloSpells: 0 };
  /**
   * Tuning: a matmul chunk holds at most about this many multiply-adds (2^22: ~0.1 ms for one thread)...
   * On an idle machine few large chunks measured fastest (a decode GEMV pass: 25.0 ms with 2^24 and one
   * chunk per thread, 26.3 ms with 2^21, 27.8 ms with 2^19 and four per thread; bench notes in
   * docs/performance.md); smaller chunks bound what a descheduled worker can hold up.
   */
  chunkMacs = 1 << 22;
  /** ...and a matrix is cut into at least this many chunks per thread. */
  chunksPerThread = 2;
  private exports: RuntimeExports | null;
  private readonly control: SharedArrayBuffer | null;
  private readonly ctl: Int32Array;
  private readonly desc = new Int32Array(rt.DESC_WORDS);
  private readonly mainState: number;
  private readonly scratchBytes: number;
  private workers: PoolWorker[] = [];
  private gen = 0;
  private failure: string | null = null;
  /** Solo policy state: missed flags of the last SOLO_WINDOW parallel regions, as a ring. */
  private readonly missed = new Uint8Array(SOLO_WINDOW);
  private missedAt = 0;
  private missedCount = 0;
  /** Regions left in the current solo spell; -1: the spell just ended (the next region starts a try). */
  private soloLeft = 0;
  private soloLength = SOLO_MIN_REGIONS;
  private goodRegions = 0;
  /** Regions accounted since the last spell ended (a try), or Infinity when not in a try. */
  private probeSeen = Infinity;
  /** Tuning: 0 disables the solo policy (benchmarks of the policy itself). */
  soloPolicy = 1;
  /** Tuning: parallel regions of a fresh pool the policy ignores (JIT warm-up), SOLO_WARMUP_REGIONS. */
  soloWarmupRegions = SOLO_WARMUP_REGIONS;
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
        scratch: o.scratch[i - 1], state: o.states[i], spinMicros: o.spinMicros ?? DEFAULT_SPIN_MICROS,
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
    d[rt.M_WSUM] = m.wsumPtr;
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
    this.run(true);
  }

  /** Rows per matmul chunk: whole 4-row blocks, ~TARGET_MACS of work, at least 4 chunks per thread. */
  matmulChunkRows(rows: number, cols: number, tokens: number): number {
    if (this.threads === 1 || this.solo()) return rows;
    const up4 = (n: number) => Math.ceil(n / 4) * 4;
    const byWork = up4(this.chunkMacs / (cols * tokens));
    const byBalance = up4(rows / (this.chunksPerThread * this.threads));
    const byScratch = Math.floor(this.scratchBytes / (4 * tokens)) & ~3;
    const atMostChunks = up4(rows / rt.MAX_CHUNKS);
    const chunk = Math.max(4, atMostChunks, Math.min(byWork, byBalance, byScratch));
    if (chunk * tokens * 4 > this.scratchBytes) throw new RangeError(`matmul: ${rows} rows x ${tokens} tokens do not fit the worker scratch`);
    return chunk;
  }

  /** Tuning: how long idle workers spin before sleeping, in µs (overrides PoolOptions.spinMicros). */
  setSpinMicros(micros: number): void {
    if (this.control) Atomics.store(this.ctl, rt.SPIN, Math.max(1, Math.round(micros)));
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

  // ---- solo policy -------------------------------------------------------------------------------------

  /** True while the main thread runs regions alone (see the top of this file). */
  private solo(): boolean {
    return this.soloLeft > 0;
  }

  /** Records whether a parallel region was missed by the workers and decides on going solo. */
  private account(missed: boolean): void {
    if (this.soloLeft === -1) {
      // First parallel region after a solo spell: a try, with a fresh window.
      this.soloLeft = 0;
      this.missed.fill(0);
      this.missedCount = 0;
      this.goodRegions = 0;
      this.probeSeen = 0;
      return; // the workers were asleep: this region says nothing
    }
    if (this.stats.regions < this.soloWarmupRegions) return;
    const m = missed ? 1 : 0;
    this.missedCount += m - this.missed[this.missedAt];
    this.missed[this.missedAt] = m;
    this.missedAt = (this.missedAt + 1) % SOLO_WINDOW;
    if (++this.goodRegions >= 4 * SOLO_WINDOW) this.soloLength = SOLO_MIN_REGIONS;
    const probing = ++this.probeSeen <= SOLO_PROBE;
    if (this.soloPolicy === 0) return;
    if (this.missedCount < SOLO_BAD && !(probing && this.missedCount >= SOLO_PROBE_BAD)) return;
    this.stats.soloSpells++;
    this.probeSeen = Infinity;
    this.soloLeft = this.soloLength;
    this.soloLength = Math.min(SOLO_MAX_REGIONS, 2 * this.soloLength);
  }

  // ---- one region --------------------------------------------------------------------------------------

  /** Runs the region in `desc`; `force`: in parallel even while solo, and without feeding the policy. */
  private run(force = false): void {
    this.check();
    const e = this.exports as RuntimeExports;
    const d = this.desc;
    const n = d[1];
    this.stats.regions++;
    this.stats.chunks += n;
    const solo = this.threads > 1 && !force && this.solo();
    if (solo && --this.soloLeft === 0) this.soloLeft = -1;
    if (this.threads === 1 || n === 1 || solo) {
      if (solo) this.stats.soloRegions++;
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
    // A worker that was asleep needs a wake-up (in a VM, an idle vCPU can take a millisecond to run again):
    // what it then misses of this region says nothing about the machine being busy.
    const asleep = Atomics.load(ctl, rt.SLEEPERS) > 0;
    if (asleep) Atomics.notify(ctl, rt.SEQ);

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
    let stolenHere = 0;
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
          stolenHere++;
          break;
        }
      }
    }
    const t2 = performance.now();
    const workerChunks = n - mine - stolenHere;
    if (!force && !asleep) this.account(stolenHere > 0 || (workerChunks === 0 && n >= this.threads));
    this.stats.mainChunks += mine;
    this.stats.mainMs += t1 - t0;
    this.stats.tailMs += t2 - t1;
    this.stats.stolen += stolenHere;
    if (Atomics.load(ctl, rt.ERROR) > 0) this.check();
  }
}
