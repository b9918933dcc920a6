// A queue that producers push values into and one consumer drains with for-await: the values as they
// come, then the end, or the producers' error. A Generation's pieces, the OpenAI layer's streamed chunks
// (several choices interleaved) and the browser client's streamed replies each flow through one.
//
// With a limit, a producer that awaits room() after each push waits while the consumer lags that many
// values behind: a client that stops reading pauses what feeds it instead of piling values up in memory.

export class AsyncQueue<T> {
  private readonly items: T[] = [];
  private wake: (() => void) | null = null;
  private closed = false;
  private error: { err: unknown } | null = null;
  private drained = false;
  /** A consumer's loop is running (room() waits for it only then). */
  private consuming = false;
  private roomWaiters: (() => void)[] = [];

  /** `limit`: the values queued ahead of the consumer beyond which room() waits. */
  constructor(private readonly limit = Infinity) {}

  /** Queues a value for the consumer (dropped once the queue has ended or its consumer has left). */
  push(value: T): void {
    if (this.closed) return;
    this.items.push(value);
    this.wake?.();
  }

  /**
   * Resolves once the consumer has fewer than `limit` values ahead of it: at once while no consumer loop
   * runs (nobody may ever iterate; a result-only use must still run to its end) or after it has left.
   */
  room(): Promise<void> {
    if (!this.consuming || this.items.length < this.limit) return Promise.resolve();
    return new Promise((r) => this.roomWaiters.push(r));
  }

  /** No more values: the consumer gets those queued, then its loop ends. */
  end(): void {
    this.closed = true;
    this.wake?.();
  }

  /** No more values: the consumer gets those queued, then `err` is thrown from its loop (the first one wins). */
  fail(err: unknown): void {
    this.error ??= { err };
    this.end();
  }

  /**
   * The values as they come, once (a second consumer would steal the first one's values). Leaving the loop
   * early (break, return, a throw in its body) calls `onEarlyExit` and waits for what it returns (the
   * producers' end), so the loop exits only once production has stopped.
   */
  async *drain(onEarlyExit: () => Promise<unknown> | void = () => {}): AsyncGenerator<T, void, undefined> {
    if (this.drained) throw new Error("this stream can be iterated only once");
    this.drained = true;
    this.consuming = true;
    let complete = false;
    try {
      for (;;) {
        if (this.items.length > 0) {
          const value = this.items.shift() as T;
          if (this.items.length < this.limit) this.releaseProducers();
          yield value;
          continue;
        }
        if (this.closed) {
          complete = true;
          if (this.error) throw this.error.err;
          return;
        }
        await new Promise<void>((r) => (this.wake = r));
        this.wake = null;
      }
    } finally {
      this.consuming = false;
      if (!complete) {
        // Nobody will read what is queued or comes: drop it, and let waiting producers run to their end.
        this.closed = true;
        this.items.length = 0;
      }
      this.releaseProducers();
      if (!complete) await Promise.resolve(onEarlyExit()).catch(() => undefined);
    }
  }

  private releaseProducers(): void {
    for (const r of this.roomWaiters.splice(0)) r();
  }
}
