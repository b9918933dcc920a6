// The scheduler: the model's sequences as slots, a bounded queue of requests waiting for one, and the loop
// that runs the steps of every busy slot as one batched forward pass (continuous batching).
//
// - A request gets the free slot whose cached tokens share the longest reusable prefix with its prompt
//   (llama-server's cache_prompt), so only the rest is prefilled; with none free it waits in a queue of at
//   most `queueLimit` requests, and past that it is refused (429).
// - Each slot runs the ordinary token loop (generate.ts) on itself: its prefill chunks and decode tokens are
//   handed to the scheduler, which collects the work of all busy slots and runs it as one batch: every
//   decode token, then prefill chunks up to the engine's block, so a long prompt never stalls the others'
//   decoding. A request joins at the next step and leaves when its loop ends.
// - Batch invariance: the engine computes every row of a batch exactly as if its sequence ran alone
//   (Backend.forwardBatch), so an answer never depends on what else was running.
//
// The scheduler holds the model (Model.reserve) while it runs: the model's own single-sequence API refuses
// meanwhile. It never touches HTTP or the OpenAI shapes: openai.ts maps requests onto it.
import type { Backend, BatchToken } from "../model/backend.js";
import type { Model } from "../session/model.js";
import { yieldToEventLoop } from "../generate/generate.js";
import { checkPromptFits, PREFILL_CHUNK, restoreState, reusablePrefix, saveState, type PrefillResult, type TokenSequence } from "../generate/sequence.js";
import { OpenAIError, queueFull, shuttingDown } from "./errors.js";

export interface SchedulerOptions {
  /** Requests that may wait for a slot (default 64); one more is refused with 429. */
  queueLimit?: number;
  /** Prompt tokens a slot prefills per step at most (default 32, one engine block). */
  prefillChunk?: number;
}

/** Counters for /health, tests and benchmarks. */
export interface SchedulerStats {
  slots: number;
  busy: number;
  queued: number;
  /** Batched forward passes run, and the rows they carried. */
  steps: number;
  rows: number;
}

/** Work a slot handed over: tokens at consecutive positions from `position`, the last one's logits wanted. */
interface Work {
  slot: Slot;
  tokens: readonly number[];
  position: number;
  resolve(logits: Float32Array): void;
  reject(err: unknown): void;
}

interface Waiter {
  prompt: readonly number[];
  count: number;
  resolve(slots: Slot[]): void;
  reject(err: unknown): void;
}

/**
 * One of the model's sequences: the tokens its KV cache holds and, while a request runs on it, the token
 * loop's TokenSequence, whose steps go through the scheduler.
 */
export class Slot implements TokenSequence {
  private cached: number[] = [];
  busy = false;
  /** When the slot was last released (picks the least recently used among equally good free slots). */
  releasedAt = 0;

  constructor(
    private readonly scheduler: Scheduler,
    readonly index: number,
  ) {}

  get tokens(): readonly number[] {
    return this.cached;
  }

  get contextLength(): number {
    return this.scheduler.backend.contextLength;
  }

  get full(): boolean {
    return this.cached.length >= this.contextLength;
  }

  /** Prompt tokens a request could reuse from this slot's cache. */
  reusable(prompt: readonly number[]): number {
    return prompt.length === 0 ? 0 : reusablePrefix(this.scheduler.backend, this.index, this.cached, prompt);
  }

  async prefill(prompt: readonly number[], between: () => Promise<void>): Promise<PrefillResult> {
    checkPromptFits(prompt, this.contextLength);
    const keep = this.reusable(prompt);
    this.cached = prompt.slice(0, keep);
    const chunk = this.scheduler.prefillChunk;
    let logits: Float32Array | undefined;
    for (let i = keep; i < prompt.length; i += chunk) {
      const part = prompt.slice(i, i + chunk);
      logits = await this.scheduler.submit(this, part, i);
      this.cached.push(...part);
      if (i + chunk < prompt.length) await between();
    }
    return { logits: logits as Float32Array, reused: keep, prefilled: prompt.length - keep };
  }

  async append(token: number): Promise<Float32Array> {
    const logits = await this.scheduler.submit(this, [token], this.cached.length);
    this.cached.push(token);
    return logits;
  }

  /** The slot's state file (src/model/kv-state.ts); the slot must be free. */
  save(): Uint8Array {
    this.scheduler.checkIdle(this);
    return saveState(this.scheduler.backend, this.index, this.cached);
  }

  /** Loads a state file into the free slot; returns the tokens it now holds. */
  restore(bytes: Uint8Array): number {
    this.scheduler.checkIdle(this);
    this.cached = restoreState(this.scheduler.backend, this.index, bytes);
    return this.cached.length;
  }

  /** Forgets the cached tokens (a failed step may have left the cache behind them). */
  forget(): void {
    this.cached = [];
  }
}

export class Scheduler {
  readonly slots: Slot[];
  readonly backend: Backend;
  readonly queueLimit: number;
  readonly prefillChunk: number;
  readonly stats: SchedulerStats;
  private readonly queue: Waiter[] = [];
  private pending: Work[] = [];
  private stepping = false;
  private closed = false;
  private readonly release: () => void;
  private clock = 0;

  constructor(
    readonly model: Model,
    opts: SchedulerOptions = {},
  ) {
    this.backend = model.backend;
    this.queueLimit = opts.queueLimit ?? 64;
    this.prefillChunk = opts.prefillChunk ?? PREFILL_CHUNK;
    if (!Number.isInteger(this.queueLimit) || this.queueLimit < 0) throw new RangeError(`queueLimit must be an integer >= 0, got ${this.queueLimit}`);
    if (!Number.isInteger(this.prefillChunk) || this.prefillChunk < 1) throw new RangeError(`prefillChunk must be an integer >= 1, got ${this.prefillChunk}`);
    this.release = model.reserve("a server (close it first)");
    this.slots = Array.from({ length: this.backend.sequences }, (_, i) => new Slot(this, i));
    this.stats = { slots: this.slots.length, busy: 0, queued: 0, steps: 0, rows: 0 };
  }

  /**
   * `count` free slots for `prompt` (n choices of one request), taken together so two requests never hold
   * part of what each needs: the slots that reuse the most of it (then the least recently used), at once
   * when enough are free, else after the requests queued before it. Refused with 429 when the queue is
   * full, 503 once the scheduler is closing; an abort while waiting rejects with the signal's reason.
   */
  acquire(prompt: readonly number[], signal?: AbortSignal, count = 1): Promise<Slot[]> {
    if (this.closed) return Promise.reject(shuttingDown());
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (!Number.isInteger(count) || count < 1 || count > this.slots.length) {
      return Promise.reject(new RangeError(`${count} sequences asked for, the server runs ${this.slots.length}`));
    }
    if (this.queue.length === 0 && this.freeCount() >= count) return Promise.resolve(this.takeBest(prompt, count));
    if (this.queue.length >= this.queueLimit) return Promise.reject(queueFull(this.queue.length));
    return new Promise<Slot[]>((resolve, reject) => {
      const waiter: Waiter = { prompt, count, resolve, reject };
      const onAbort = () => {
        const i = this.queue.indexOf(waiter);
        if (i >= 0) this.queue.splice(i, 1);
        this.stats.queued = this.queue.length;
        reject(signal?.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      waiter.resolve = (slots) => {
        signal?.removeEventListener("abort", onAbort);
        resolve(slots);
      };
      this.queue.push(waiter);
      this.stats.queued = this.queue.length;
    });
  }

  /** Gives a slot back; the next queued request gets a slot. */
  releaseSlot(slot: Slot): void {
    if (!slot.busy) return;
    slot.busy = false;
    slot.releasedAt = ++this.clock;
    this.stats.busy--;
    // Work it still had in flight (released from outside its token loop) fails rather than hang.
    for (const w of this.pending.filter((x) => x.slot === slot)) w.reject(new Error(`slot ${slot.index} was released`));
    this.pending = this.pending.filter((w) => w.slot !== slot);
    while (this.queue.length > 0 && this.freeCount() >= this.queue[0].count) {
      const next = this.queue.shift() as Waiter;
      next.resolve(this.takeBest(next.prompt, next.count));
    }
    this.stats.queued = this.queue.length;
  }

  /** Throws unless the slot is free (state files are read and written between requests). */
  checkIdle(slot: Slot): void {
    if (slot.busy) throw new OpenAIError(409, `slot ${slot.index} is running a request`, "invalid_request_error", null, "slot_busy");
  }

  /**
   * Stops taking requests (new ones get 503, queued ones are refused) and resolves once every running one
   * has ended; the model's own API is usable again afterwards.
   */
  async close(): Promise<void> {
    this.closed = true;
    for (const w of this.queue.splice(0)) w.reject(shuttingDown());
    this.stats.queued = 0;
    while (this.slots.some((s) => s.busy)) await new Promise((r) => setTimeout(r, 5));
    this.release();
  }

  get closing(): boolean {
    return this.closed;
  }

  /** Hands a slot's tokens to the next batched step; resolves to the logits after the last of them. */
  submit(slot: Slot, tokens: readonly number[], position: number): Promise<Float32Array> {
    return new Promise((resolve, reject) => {
      this.pending.push({ slot, tokens, position, resolve, reject });
      this.schedule();
    });
  }

  private freeCount(): number {
    return this.slots.filter((s) => !s.busy).length;
  }

  /** Takes the `count` free slots that reuse the most of `prompt`, the least recently used first among equals. */
  private takeBest(prompt: readonly number[], count: number): Slot[] {
    const ranked = this.slots
      .filter((s) => !s.busy)
      .map((s) => ({ s, reuse: s.reusable(prompt) }))
      .sort((a, b) => b.reuse - a.reuse || a.s.releasedAt - b.s.releasedAt)
      .slice(0, count)
      .map(({ s }) => s);
    for (const s of ranked) s.busy = true;
    this.stats.busy += ranked.length;
    return ranked;
  }

  private schedule(): void {
    if (this.stepping) return;
    this.stepping = true;
    void this.loop();
  }

  /**
   * Runs batched steps while there is work. Before each step it lets the event loop turn until every busy
   * slot has handed over its next work (each does so within a turn or two of its previous step), so the
   * step carries them all; a slot that has not after a few turns (its request is ending) is not waited for.
   */
  private async loop(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        for (let turn = 0; turn < 4 && this.waitingFor() > 0; turn++) await yieldToEventLoop();
        this.step();
        await yieldToEventLoop();
      }
    } finally {
      this.stepping = false;
    }
  }

  /** Busy slots that have not handed over work yet. */
  private waitingFor(): number {
    let n = 0;
    for (const s of this.slots) if (s.busy && !this.pending.some((w) => w.slot === s)) n++;
    return n;
  }

  /**
   * One batched forward pass: every pending decode token, then prefill chunks up to `prefillChunk` rows
   * (the first one always, so prefill progresses however many sequences decode).
   */
  private step(): void {
    const work = this.pending;
    const decode = work.filter((w) => w.tokens.length === 1);
    const prefill = work.filter((w) => w.tokens.length > 1);
    const taken: Work[] = [...decode];
    let rows = 0;
    for (const w of prefill) {
      if (rows > 0 && rows + w.tokens.length > this.prefillChunk) continue;
      taken.push(w);
      rows += w.tokens.length;
    }
    this.pending = work.filter((w) => !taken.includes(w));
    const batch: BatchToken[] = [];
    for (const w of taken) {
      w.tokens.forEach((token, i) => batch.push({ sequence: w.slot.index, token, position: w.position + i, logits: i === w.tokens.length - 1 }));
    }
    let logits: Float32Array[];
    try {
      logits = this.backend.forwardBatch(batch);
    } catch (err) {
      for (const w of taken) {
        w.slot.forget();
        w.reject(err);
      }
      return;
    }
    this.stats.steps++;
    this.stats.rows += batch.length;
    taken.forEach((w, i) => w.resolve(logits[i]));
  }
}
