// A queue that producers push values into and one consumer drains with for-await: the values as they
// come, then the end, or the producers' error. A Generation's pieces, the OpenAI layer's streamed chunks
// (several choices interleaved) and the browser client's streamed replies each flow through one.

export class AsyncQueue<T> {
  private readonly items: T[] = [];
  private wake: (() => void) | null = null;
  private closed = false;
  private error: { err: unknown } | null = null;
  private drained = false;

  /** Queues a value for the consumer (dropped once the queue has ended). */
  push(value: T): void {
    if (this.closed) return;
    this.items.push(value);
    this.wake?.();
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
    let complete = false;
    try {
      for (;;) {
        if (this.items.length > 0) {
          yield this.items.shift() as T;
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
      if (!complete) await Promise.resolve(onEarlyExit()).catch(() => undefined);
    }
  }
}
