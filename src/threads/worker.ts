// A worker thread of the pool: it joins the main thread's Wasm memory with its own instance of the same
// compiled kernels, then waits for regions and computes the chunks it claims (protocol.ts) into its private
// scratch, committing each only if the main thread has not stolen it meanwhile. Environment-neutral: the
// Node entry is src/node/worker-thread.ts, the browser's src/browser/pool-worker.ts; both only hand over the
// WorkerInit and a way to post messages back.
import { WasmKernels } from "../kernels/wasm.js";
import { commitChunk, runChunk } from "./chunks.js";
import { chunkCount, decodeJob, type Job } from "./jobs.js";
import {
  CLAIMED, COMMITTING, DELAY, DONE, FREE, HOLD, INJECT, JOB, JOB_WORDS, SEQ, SHUTDOWN, SLEEPERS, SPIN, STATES,
  claim, readMessage, reportError, tag, type WorkerInit, type WorkerMessage,
} from "./protocol.js";

/** The loop of worker `init.index`; resolves at shutdown or after reporting an error. */
export async function runWorker(init: WorkerInit, post: (message: WorkerMessage) => void): Promise<void> {
  const ctl = new Int32Array(init.control);
  let k: WasmKernels;
  try {
    k = await WasmKernels.create(init.variant, init.module, { memory: init.memory });
  } catch (err) {
    fail(ctl, init, post, `worker ${init.index} could not instantiate the kernels: ${(err as Error).message}`);
    return;
  }
  post({ type: "ready" });
  const words = new Int32Array(JOB_WORDS);
  let seen = Atomics.load(ctl, SEQ) & ~1;
  for (;;) {
    const s = awaitRegion(ctl, seen, init.spinMicros);
    if (s === null) return;
    // Consistent snapshot of the job (seqlock): retry if the main thread moved on meanwhile.
    for (let i = 0; i < JOB_WORDS; i++) words[i] = Atomics.load(ctl, JOB + i);
    if (Atomics.load(ctl, SEQ) !== s) continue;
    seen = s;
    try {
      if (Atomics.load(ctl, INJECT) === init.index) throw new Error(readMessage(ctl));
      workRegion(k, ctl, s >>> 1, decodeJob(words), init);
    } catch (err) {
      // A worker that woke up late may compute on inputs the main thread is already rewriting; only an
      // error in a live region is real (it cannot be one of those, but then nothing is lost either).
      if (Atomics.load(ctl, SEQ) !== s) continue;
      fail(ctl, init, post, err instanceof Error ? err.message : String(err));
      return;
    }
  }
}

function fail(ctl: Int32Array, init: WorkerInit, post: (message: WorkerMessage) => void, message: string): void {
  reportError(ctl, init.index, message);
  post({ type: "error", message });
}

/**
 * Waits until a region newer than `seen` is published: spins for a bounded time (the region's hold, or the
 * spin), then sleeps. Returns its SEQ word, or null at shutdown.
 */
function awaitRegion(ctl: Int32Array, seen: number, spinMicros: number): number | null {
  const waiting = (s: number) => s === seen || (s & 1) === 1;
  let s = Atomics.load(ctl, SEQ);
  if (waiting(s)) {
    const spin = Atomics.load(ctl, SPIN) || spinMicros;
    const until = performance.now() + Math.max(spin, Atomics.load(ctl, HOLD)) / 1000;
    // performance.now() only every 64 spins: it costs more than a load.
    let spins = 0;
    while (waiting(s) && (spins++ & 63 || performance.now() < until)) s = Atomics.load(ctl, SEQ);
    while (waiting(s)) {
      if (Atomics.load(ctl, SHUTDOWN) !== 0) return null;
      Atomics.add(ctl, SLEEPERS, 1);
      Atomics.wait(ctl, SEQ, s);
      Atomics.sub(ctl, SLEEPERS, 1);
      s = Atomics.load(ctl, SEQ);
    }
  }
  return Atomics.load(ctl, SHUTDOWN) !== 0 ? null : s;
}

/** Claims and computes chunks of region `gen` until none is left, committing those not stolen meanwhile. */
function workRegion(k: WasmKernels, ctl: Int32Array, gen: number, job: Job, init: WorkerInit): void {
  const n = chunkCount(job);
  const free = tag(gen, FREE);
  const claimed = tag(gen, CLAIMED);
  const committing = tag(gen, COMMITTING);
  for (let c = claim(ctl, gen, n); c >= 0; c = claim(ctl, gen, n)) {
    const state = STATES + c;
    if (Atomics.compareExchange(ctl, state, free, claimed) !== free) continue;
    runChunk(k, job, c, init.scratch, init.state);
    const delay = Atomics.load(ctl, DELAY);
    if (delay > 0) for (const until = performance.now() + delay / 1000; performance.now() < until; );
    if (Atomics.compareExchange(ctl, state, claimed, committing) !== claimed) continue;
    commitChunk(k, job, c, init.scratch);
    Atomics.store(ctl, state, tag(gen, DONE));
  }
}
