// A pool of threads sharing one Wasm memory: the main thread and threads-1 workers split the rows of each
// matrix product, the (token, KV head) jobs of attention and, at load, the rows each read quantizes. This
// file is the main thread's side: it turns a request into a typed job (jobs.ts), publishes it (protocol.ts),
// computes chunks alongside the workers (chunks.ts) and recomputes whatever a worker did not deliver in
// time. It only uses SharedArrayBuffer, Atomics and a worker handle created by a `SpawnWorker` function, so
// it runs unchanged on Web Workers; the Node binding (worker_threads) is src/node/worker-thread.ts, the
// browser's src/browser/web-worker-spawn.ts.
//
// Determinism: every output row and head is one kernel call on the same inputs whichever thread runs it
// (jobs.ts), so the bits of every output are the same for any thread count.
//
// Robustness: the main thread never waits long for a worker. It works through the chunks itself and, once
// none is left, gives the workers a bounded time to finish what they claimed and then recomputes (steals)
// the rest; a worker that the OS descheduled (a busy machine) only wastes its own time. Idle workers poll
// for a while, then sleep in Atomics.wait: during forward passes long enough to stay awake through the gap
// between two decode steps (sampling, streaming, the event loop), as llama.cpp's pool polls before it
// sleeps; during loads briefly. When the workers keep missing regions (more runnable threads than
// free cores: another process holds a core), the main thread goes SOLO for a while: it runs the regions
// alone, so the workers fall asleep and stop competing with it for a core, then it tries again (backing
// off exponentially while the machine stays busy). Decode steps (step()) are decided by their own timing
// instead (choice.ts): on this VM the workers miss about one region in six even on a quiet machine, where
// two threads still decode faster, and the miss-based policy then sent small models solo for nothing.
// docs/performance.md has the measurements behind the constants below.
import { packedBlockBytes, type Activations, type WeightMatrix } from "../kernels/layout.js";
import type { WasmKernels } from "../kernels/wasm.js";
import { runChunk } from "./chunks.js";
import { ThreadChoice, type StepMode } from "./choice.js";
import { chunkCount, chunkOutputBytes, encodeJob, type AttentionJob, type Job, type QuantizeJob } from "./jobs.js";
import {
  COMMITTING, CONTROL_BYTES, DELAY, DONE, ERROR, HOLD, INJECT, JOB, JOB_WORDS, MAX_CHUNKS, SEQ, SHUTDOWN, SLEEPERS, SPIN,
  STATES, STOLEN, claim, openRegion, readMessage, tag, writeMessage, type WorkerInit,
} from "./protocol.js";

export type { WorkerInit } from "./protocol.js";

/** Events a worker handle reports (from its message channel and its lifecycle). */
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
 * Starts a worker running runWorker(init, post) (worker.ts), `post` delivering its messages (protocol.ts:
 * WorkerMessage) to `events`.
 */
export type SpawnWorker = (init: WorkerInit, events: WorkerEvents) => PoolWorker;

export interface PoolOptions {
  threads: number;
  /** The main thread's instance of the kernels (the shared build when threads > 1). */
  kernels: WasmKernels;
  /** What workers instantiate and join: by default the kernels' own module and memory. */
  module?: WebAssembly.Module;
  memory?: WebAssembly.Memory;
  /** Attention state (attentionStateBytes) per thread, the main thread's first. */
  states: number[];
  /** Private output scratch per worker (threads - 1 of them), `scratchBytes` each. */
  scratch: number[];
  scratchBytes: number;
  /** Required when threads > 1. */
  spawn?: SpawnWorker;
  /** How long idle workers spin before sleeping (µs); default DEFAULT_SPIN_MICROS. */
  spinMicros?: number;
  /** How long idle workers poll after a forward pass's region before sleeping (µs); default DEFAULT_HOLD_MICROS. */
  holdMicros?: number;
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
  /** Decode steps (step()) run split, and run solo because the timing said solo was faster (choice.ts). */
  splitSteps: number;
  soloSteps: number;
  /** Parallel regions published while a worker slept (the main thread had to wake it). */
  wakeups: number;
}

// ---- tuning ------------------------------------------------------------------------------------------
//
// Stealing: once the main thread has no chunk left to claim, a worker's chunk that is not done yet is
// waited for, then recomputed. A worker on a core of its own started its chunk at most one chunk time
// before the main thread ran out, so twice the main thread's own average chunk time covers it with a margin
// while still bounding what a descheduled worker costs to about two chunks.
const STEAL_AFTER_CHUNKS = 2;
/** A floor under that wait (ms): timer resolution and cache misses make very short chunks noisy. */
const MIN_STEAL_MS = 0.02;
/** The wait when the main thread computed no chunk itself and has no chunk time to go by (ms). */
const STEAL_AFTER_NONE_MS = 0.2;
/**
 * Idle workers spin this long before sleeping (µs). A decode step publishes a region every few tens of
 * microseconds with short serial work (norms, quantization, an occasional GC pause) in between; a worker
 * that fell asleep needs an OS wake-up, which can cost more than the region itself. The spin covers those
 * gaps; it stays well under a millisecond so the core is handed back soon when the main thread is not
 * coming back (between tokens, or solo on a busy machine).
 */
const DEFAULT_SPIN_MICROS = 300;
/**
 * Idle workers poll this long (µs) after a region of a forward pass before sleeping: through the gap
 * between two decode steps or prefill blocks, where the main thread samples, streams the token and yields
 * to the event loop (0.3-3 ms measured, docs/performance.md). A worker that slept there must be woken at
 * the next step's first region: 10-50 µs on a quiet machine, but on a shared one its core has often gone
 * to another process meanwhile, and the wake-up then took 2-8 ms (p90-p99). The cost is a core kept busy
 * for at most this long after the last step of a generation. Loads use the spin: their gaps are I/O waits.
 */
const DEFAULT_HOLD_MICROS = 5000;
/**
 * Solo policy: of the last SOLO_WINDOW parallel regions, SOLO_BAD or more "missed" (a chunk had to be
 * stolen, or the workers computed none although there were enough chunks for every thread) means the
 * workers are not getting a core. An idle machine misses a small fraction of regions, in bursts (a worker
 * descheduled for a few milliseconds, e.g. while the engine's own background threads run); a busy one
 * misses a large fraction steadily. SOLO_BAD / SOLO_WINDOW (~16%) sits between the two, and the window is
 * several bursts long so one burst does not trigger a spell.
 */
const SOLO_WINDOW = 256;
const SOLO_BAD = 40;
/**
 * A spell runs SOLO_MIN_REGIONS regions alone (about one decode step of a 30-layer model, so a try happens
 * about once a token), doubling up to SOLO_MAX_REGIONS while the next tries miss again (a machine that stays
 * busy pays for a try rarely), back to the minimum after 4 windows without a spell. Spells count regions,
 * not time, so an engine that is idle in between (or alternates with another) still gets its tries.
 */
const SOLO_MIN_REGIONS = 150;
const SOLO_MAX_REGIONS = 150 * 32;
/**
 * A try after a spell starts a fresh window and gives up early: SOLO_PROBE_BAD misses among its first
 * SOLO_PROBE regions, the same ~1 in 5 rate as the window's threshold, judged on fewer regions.
 */
const SOLO_PROBE = 64;
const SOLO_PROBE_BAD = 12;
/**
 * The first regions of a fresh pool do not count: the engine is still compiling the workers' JavaScript and
 * tiering up the kernels, and those misses say nothing about the machine (they once sent a fresh pool solo
 * for a second). About a dozen decode steps.
 */
const SOLO_WARMUP_REGIONS = 2048;
/**
 * A commit is a copy of a few KiB that cannot be taken back: the main thread waits for it, spinning this
 * long (ms, many times a copy's duration) before it yields the core in short timed waits, in case the
 * worker was descheduled in the middle of it.
 */
const COMMIT_SPIN_MS = 0.05;
/** A commit not finished after this long means the worker died in the middle of it (ms). */
const COMMIT_GIVE_UP_MS = 10_000;
/** Bytes per chunk of a memory-read sweep: large enough that the claim is noise next to the reads. */
const READ_CHUNK = 4 << 20;

/**
 * Returns `threads` when it is a thread count the pool can run (an integer from 1 to one more than the
 * chunks a region can hold), else throws a RangeError; the one check of a thread count's form (the session
 * adds the machine's bound, src/session/load-options.ts).
 */
export function checkThreads(threads: number): number {
  if (typeof threads !== "number" || !Number.isInteger(threads) || threads < 1) {
    throw new RangeError(`threads must be an integer >= 1, got ${String(threads)}`);
  }
  if (threads > 1 + MAX_CHUNKS) throw new RangeError(`threads must be at most ${1 + MAX_CHUNKS}, got ${threads}`);
  return threads;
}

/** How one parallel region went, for the statistics and the solo policy. */
interface RegionOutcome {
  mine: number;
  stolen: number;
  mainMs: number;
  tailMs: number;
}

export class ThreadPool {
  readonly threads: number;
  readonly stats: PoolStats = {
    regions: 0, chunks: 0, stolen: 0, mainChunks: 0, mainMs: 0, tailMs: 0, soloRegions: 0, soloSpells: 0, splitSteps: 0, soloSteps: 0, wakeups: 0,
  };
  /** Tuning: how long idle workers poll after a forward pass's region (µs), DEFAULT_HOLD_MICROS; 0 for the spin alone. */
  holdMicros: number;
  /**
   * Tuning: a matmul chunk holds at most about this many multiply-adds (2^22: about 0.1 ms of one thread's
   * work)... Fewer, larger chunks cost fewer hand-offs and measured a little faster on an idle machine;
   * smaller ones bound what a descheduled worker can hold up (docs/performance.md, chunk sizes).
   */
  chunkMacs = 1 << 22;
  /** ...and a matrix is cut into at least this many chunks per thread, so the threads can even out. */
  chunksPerThread = 2;
  /** Tuning: 0 disables the solo policy (benchmarks of the policy itself). */
  soloPolicy = 1;
  /** Tuning: parallel regions of a fresh pool the policy ignores (JIT warm-up), SOLO_WARMUP_REGIONS. */
  soloWarmupRegions = SOLO_WARMUP_REGIONS;
  private kernels: WasmKernels | null;
  private readonly control: SharedArrayBuffer | null;
  private readonly ctl: Int32Array;
  private readonly mainState: number;
  private readonly scratchBytes: number;
  /** The job being published, encoded (reused: one region at a time). */
  private readonly words = new Int32Array(JOB_WORDS);
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
  private terminated = false;
  /** Decides the mode of decode steps from their timing; `stepMode` is the mode of the step running now. */
  readonly choice = new ThreadChoice();
  private stepMode: StepMode | null = null;

  private constructor(o: PoolOptions) {
    this.threads = o.threads;
    this.kernels = o.kernels;
    this.mainState = o.states[0];
    this.scratchBytes = o.scratchBytes;
    this.holdMicros = o.holdMicros ?? DEFAULT_HOLD_MICROS;
    this.control = o.threads > 1 ? new SharedArrayBuffer(CONTROL_BYTES) : null;
    this.ctl = this.control ? new Int32Array(this.control) : new Int32Array(0);
  }

  /** Starts threads-1 workers and resolves once every one has instantiated the kernels. */
  static async start(o: PoolOptions): Promise<ThreadPool> {
    checkThreads(o.threads);
    if (o.states.length < o.threads) throw new RangeError(`need ${o.threads} attention states, got ${o.states.length}`);
    const pool = new ThreadPool(o);
    if (o.threads === 1) return pool;
    if (!o.spawn) throw new Error("ThreadPool.start: threads > 1 needs a spawn function");
    if (o.scratch.length < o.threads - 1) throw new RangeError(`need ${o.threads - 1} scratch blocks, got ${o.scratch.length}`);
    const memory = o.memory ?? o.kernels.memory;
    if (!(memory.buffer instanceof SharedArrayBuffer)) throw new Error("ThreadPool.start: threads > 1 needs the shared build (a shared WebAssembly.Memory)");
    const inits = Array.from({ length: o.threads - 1 }, (_, j): WorkerInit => ({
      module: o.module ?? o.kernels.module, memory, variant: o.kernels.variant, control: pool.control as SharedArrayBuffer,
      index: j + 1, scratch: o.scratch[j], state: o.states[j + 1], spinMicros: o.spinMicros ?? DEFAULT_SPIN_MICROS,
    }));
    try {
      await pool.spawnAll(inits, o.spawn, o.startTimeoutMs ?? 60_000);
    } catch (err) {
      await pool.terminate();
      throw err;
    }
    // Workers only react to the shared control block; they must not keep the process alive.
    for (const w of pool.workers) w.unref?.();
    return pool;
  }

  /** Spawns one worker per init; resolves when all are ready, rejects on the first failure or the timeout. */
  private async spawnAll(inits: WorkerInit[], spawn: SpawnWorker, timeoutMs: number): Promise<void> {
    let pending = inits.length;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const ready = new Promise<void>((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`worker threads not ready after ${timeoutMs} ms`)), timeoutMs);
      for (const init of inits) {
        let isReady = false;
        const failed = (message: string) => {
          this.failure ??= message;
          if (!isReady) reject(new Error(this.failure));
        };
        this.workers.push(spawn(init, {
          ready: () => {
            isReady = true;
            if (--pending === 0) resolve();
          },
          error: (message) => failed(`worker thread ${init.index} failed: ${message}`),
          exit: (code) => {
            if (!this.terminated) failed(`worker thread ${init.index} exited unexpectedly (exit code ${code})`);
          },
        }));
      }
    });
    try {
      await ready;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Throws the first worker failure, if any (with the worker's message). */
  check(): void {
    if (this.terminated) throw new Error("the thread pool was terminated");
    if (this.failure === null && this.control && Atomics.load(this.ctl, ERROR) > 0) {
      this.failure = `worker thread ${Atomics.load(this.ctl, ERROR)} failed: ${readMessage(this.ctl)}`;
    }
    if (this.failure !== null) throw new Error(this.failure);
  }

  /**
   * Y (f32 [tokens] rows of ldy at yPtr) = m times act's tokens [first, first + tokens): gemv for one token,
   * gemm otherwise, by the kernel of m's layout (act in the format it takes), rows split across the threads.
   * Layouts: WeightMatrix and the activation formats (layout.ts).
   */
  matmul(m: WeightMatrix, act: Activations, yPtr: number, tokens: number, first = 0, ldy = m.rows): void {
    if (m.cols !== act.cols) throw new RangeError(`matmul: matrix has ${m.cols} columns, activations have ${act.cols}`);
    if (!Number.isInteger(first) || !Number.isInteger(tokens) || first < 0 || tokens < 1 || first + tokens > act.tokens) {
      throw new RangeError(`matmul: tokens [${first}, ${first + tokens}) outside the ${act.tokens} held by the activations`);
    }
    this.run({ kind: "matmul", matrix: m, act, first, tokens, y: yPtr, ldy, chunkRows: this.matmulChunkRows(m.rows, m.cols, tokens) });
  }

  /**
   * Attention of a group of consecutive tokens of one layer, one chunk per (token, KV head): the keys and
   * values of the positions they see must already be in the cache.
   */
  attention(job: Omit<AttentionJob, "kind">): void {
    const a: AttentionJob = { kind: "attention", ...job, scale: Math.fround(job.scale) };
    const n = chunkCount(a);
    if (n > MAX_CHUNKS) throw new RangeError(`attention: ${n} jobs exceed ${MAX_CHUNKS}`);
    if (this.threads > 1 && chunkOutputBytes(a) > this.scratchBytes) throw new RangeError("attention: a head's output exceeds the worker scratch");
    this.run(a);
  }

  /** Reads [ptr, ptr + bytes) with v128 loads, split across the threads: the memory-read roofline. */
  readBandwidth(ptr: number, bytes: number): void {
    const chunkBytes = this.threads === 1 ? bytes : Math.max(64, Math.ceil(Math.max(READ_CHUNK, bytes / MAX_CHUNKS) / 64) * 64);
    this.run({ kind: "read", ptr, bytes, chunkBytes }, true);
  }

  /**
   * Rows [row0, row0 + rows) of m from `rows` stored rows at src (quantized, or repacked from Q4_0: the load
   * of one staged read), whole 4-row blocks split across the threads. row0 and rows are multiples of 4.
   * Errors name the kernel wrapper, not the tensor: a loader that wants the tensor named re-runs the rows.
   */
  quantize(job: Omit<QuantizeJob, "kind" | "chunkRows">): void {
    const m = job.matrix;
    if (job.row0 % 4 !== 0 || job.rows % 4 !== 0 || job.rows < 4 || job.row0 + job.rows > m.rows) {
      throw new RangeError(`quantize: rows [${job.row0}, ${job.row0 + job.rows}) are not whole 4-row blocks inside the matrix's ${m.rows}`);
    }
    // Whole blocks, as many as a worker's scratch holds, at least chunksPerThread chunks per thread; one
    // chunk (the main thread alone) when a chunk would not fit the scratch.
    const blocks = job.rows / 4;
    const fit = Math.floor(this.scratchBytes / packedBlockBytes(m.layout, m.cols));
    const perChunk = Math.max(Math.ceil(blocks / MAX_CHUNKS), Math.min(fit, Math.ceil(blocks / (this.chunksPerThread * this.threads))));
    const chunkRows = this.threads === 1 || perChunk > fit ? job.rows : 4 * perChunk;
    this.run({ kind: "quantize", ...job, chunkRows }, true);
  }

  /** Rows per matmul chunk: whole 4-row blocks, about chunkMacs of work, at least chunksPerThread per thread. */
  matmulChunkRows(rows: number, cols: number, tokens: number): number {
    if (this.threads === 1 || this.solo()) return rows;
    const up4 = (n: number) => Math.ceil(n / 4) * 4;
    const byWork = up4(this.chunkMacs / (cols * tokens));
    const byBalance = up4(rows / (this.chunksPerThread * this.threads));
    const byScratch = Math.floor(this.scratchBytes / (4 * tokens)) & ~3;
    const atMostChunks = up4(rows / MAX_CHUNKS);
    const chunk = Math.max(4, atMostChunks, Math.min(byWork, byBalance, byScratch));
    if (chunk * tokens * 4 > this.scratchBytes) throw new RangeError(`matmul: ${rows} rows x ${tokens} tokens do not fit the worker scratch`);
    return chunk;
  }

  /** Tuning: how long idle workers spin before sleeping, in µs (overrides PoolOptions.spinMicros). */
  setSpinMicros(micros: number): void {
    if (this.control) Atomics.store(this.ctl, SPIN, Math.max(1, Math.round(micros)));
  }

  /** Test hook: worker `index` throws `message` at its next region. */
  injectWorkerError(index: number, message: string): void {
    if (!this.control) throw new Error("injectWorkerError: no worker threads");
    writeMessage(this.ctl, message);
    Atomics.store(this.ctl, INJECT, index);
  }

  /**
   * Test hook: workers hold every computed chunk for `micros` before committing it, so the main thread
   * recomputes (steals) most of them and the workers' late commits must fail harmlessly.
   */
  delayWorkerCommits(micros: number): void {
    if (this.control) Atomics.store(this.ctl, DELAY, Math.max(0, Math.round(micros)));
  }

  /** Stops the workers and drops every reference to the Wasm instance and memory. Never rejects. */
  async terminate(): Promise<void> {
    if (this.terminated) return;
    this.terminated = true;
    if (this.control) {
      Atomics.store(this.ctl, SHUTDOWN, 1);
      Atomics.add(this.ctl, SEQ, 2);
      Atomics.notify(this.ctl, SEQ);
    }
    const workers = this.workers;
    this.workers = [];
    this.kernels = null;
    await Promise.all(workers.map((w) => Promise.resolve().then(() => w.terminate()).catch(() => undefined)));
  }

  // ---- solo policy -------------------------------------------------------------------------------------

  /** True while the main thread runs regions alone (see the top of this file). */
  private solo(): boolean {
    return this.stepMode === null ? this.soloLeft > 0 : this.stepMode === "solo";
  }

  /**
   * Runs one decode step `f` (a forward pass of the token at `position`) in the mode the timing of the previous steps
   * chose (choice.ts), and times it. Inside a step the miss-based solo policy neither decides nor learns.
   */
  step<T>(position: number, f: () => T): T {
    if (this.threads === 1 || this.stepMode !== null) return f();
    const mode = this.choice.next();
    this.stepMode = mode;
    const t0 = performance.now();
    try {
      return f();
    } finally {
      this.choice.record(mode, performance.now() - t0, position);
      this.stepMode = null;
      if (mode === "solo") this.stats.soloSteps++;
      else this.stats.splitSteps++;
    }
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

  /** Runs `job`; `force`: in parallel even while solo, and without feeding the solo policy. */
  private run(job: Job, force = false): void {
    this.check();
    const k = this.kernels as WasmKernels;
    const n = chunkCount(job);
    this.stats.regions++;
    this.stats.chunks += n;
    const solo = this.threads > 1 && !force && this.solo();
    if (solo && this.stepMode === null && --this.soloLeft === 0) this.soloLeft = -1;
    if (this.threads === 1 || n === 1 || solo) {
      if (solo) this.stats.soloRegions++;
      for (let c = 0; c < n; c++) runChunk(k, job, c, "in place", this.mainState);
      return;
    }
    const gen = this.publish(job, n, force ? 0 : this.holdMicros);
    // A worker that was asleep needs a wake-up (an idle core can take a millisecond to run it again): what
    // it then misses of this region says nothing about the machine being busy.
    const asleep = Atomics.load(this.ctl, SLEEPERS) > 0;
    if (asleep) {
      Atomics.notify(this.ctl, SEQ);
      this.stats.wakeups++;
    }
    const outcome = this.share(k, job, gen, n);
    const workerChunks = n - outcome.mine - outcome.stolen;
    if (!force && !asleep && this.stepMode === null) this.account(outcome.stolen > 0 || (workerChunks === 0 && n >= this.threads));
    this.stats.mainChunks += outcome.mine;
    this.stats.mainMs += outcome.mainMs;
    this.stats.tailMs += outcome.tailMs;
    this.stats.stolen += outcome.stolen;
    if (Atomics.load(this.ctl, ERROR) > 0) this.check();
  }

  /**
   * Publishes `job` as the next region: the job under the seqlock, its chunks FREE, then the generation.
   * `hold`: how long idle workers poll after it (µs, 0: the spin).
   */
  private publish(job: Job, n: number, hold: number): number {
    const ctl = this.ctl;
    const gen = ++this.gen;
    const words = this.words;
    encodeJob(job, words);
    Atomics.store(ctl, HOLD, hold);
    Atomics.store(ctl, SEQ, 2 * gen - 1);
    for (let i = 0; i < JOB_WORDS; i++) Atomics.store(ctl, JOB + i, words[i]);
    openRegion(ctl, gen, n);
    Atomics.store(ctl, SEQ, 2 * gen);
    return gen;
  }

  /** Computes chunks of region `gen` alongside the workers, then collects (or steals) theirs. */
  private share(k: WasmKernels, job: Job, gen: number, n: number): RegionOutcome {
    const ctl = this.ctl;
    const done = tag(gen, DONE);
    const t0 = performance.now();
    let mine = 0;
    for (let c = claim(ctl, gen, n); c >= 0; c = claim(ctl, gen, n)) {
      runChunk(k, job, c, "in place", this.mainState);
      ctl[STATES + c] = done;
      mine++;
    }
    const t1 = performance.now();
    const deadline = t1 + (mine > 0 ? Math.max(MIN_STEAL_MS, (STEAL_AFTER_CHUNKS * (t1 - t0)) / mine) : STEAL_AFTER_NONE_MS);
    let stolen = 0;
    for (let c = 0; c < n; c++) if (this.collect(k, job, gen, c, deadline)) stolen++;
    return { mine, stolen, mainMs: t1 - t0, tailMs: performance.now() - t1 };
  }

  /**
   * Waits until chunk c of region `gen` is done, stealing and computing it once `deadline` has passed
   * while a worker still holds it unfinished. True when it was stolen.
   */
  private collect(k: WasmKernels, job: Job, gen: number, c: number, deadline: number): boolean {
    const ctl = this.ctl;
    const i = STATES + c;
    const done = tag(gen, DONE);
    const committing = tag(gen, COMMITTING);
    let commitSeen = 0;
    for (;;) {
      const v = Atomics.load(ctl, i);
      if (v === done) return false;
      if (v === committing) {
        commitSeen = this.awaitCommit(i, v, commitSeen);
        continue;
      }
      if (performance.now() < deadline) continue;
      if (Atomics.compareExchange(ctl, i, v, tag(gen, STOLEN)) === v) {
        runChunk(k, job, c, "in place", this.mainState);
        ctl[i] = done;
        return true;
      }
    }
  }

  /**
   * One step of waiting for a worker's commit of the chunk state word i (its value v): spin at first, then
   * yield the core in short timed waits. `since`: when this wait began (0: now). Returns it.
   */
  private awaitCommit(i: number, v: number, since: number): number {
    const now = performance.now();
    if (since === 0) return now;
    if (now - since > COMMIT_GIVE_UP_MS) throw new Error(`worker thread stuck for ${COMMIT_GIVE_UP_MS} ms committing its result`);
    if (now - since > COMMIT_SPIN_MS) Atomics.wait(this.ctl, i, v, 0.05);
    return since;
  }
}
