// A file behind a URL read through one streamed GET: the loader's reads are served from the body as it
// arrives, so loading runs during the download and ends about when it does, with no whole-file buffer
// and no second request for bytes already received. Browsers serve one streamed fetch several times
// faster than a series of Range requests (Chromium on localhost: ~119 MB/s against 18-31 MB/s for
// 4 MiB ranges).
//
// The engine reads a GGUF's tensors nearly in file order (a few reads go back a couple of MB, to a norm
// stored before the matrices just read). So the source keeps the last BEHIND bytes below the furthest
// read, holds the body back (the stream's backpressure) once AHEAD bytes past it are buffered, and
// serves a read of bytes already dropped with a Range request, which is correct, only slower.
import { CheckpointError, checkRange, openHttpSource, type ByteSource } from "../env/byte-source.js";

const MIB = 1 << 20;
/** Bytes kept below the furthest read, for reads that step back. */
const BEHIND = 32 * MIB;
/** Bytes buffered past the furthest read before the body is held back. */
const AHEAD = 64 * MIB;
/**
 * A download's body reads run as microtasks while data is queued; it yields a task this often (ms) so
 * messages, timers and other fetches' responses get through.
 */
export const YIELD_MS = 10;

export interface StreamSourceOptions {
  fetch?: typeof fetch;
  /** Bytes kept below the furthest read (default 32 MiB). */
  behind?: number;
  /** Bytes buffered past the furthest read before the body is held back (default 64 MiB). */
  ahead?: number;
}

/** A task boundary: setImmediate where installed (src/browser/set-immediate.ts, in workers), else setTimeout. */
export function yieldToEventLoop(): Promise<void> {
  const g = globalThis as { setImmediate?: (fn: () => void) => void };
  return new Promise((wake) => (g.setImmediate ? g.setImmediate(wake) : setTimeout(wake, 0)));
}

/** Bytes per read of a body through a BYOB reader (the size of its one buffer). */
const CHUNK = 4 * MIB;

/**
 * The body's bytes as they arrive, read into one reused buffer where the stream allows it (a byte stream's
 * BYOB reader): a default reader hands each chunk over in a freshly allocated buffer, and on a machine with
 * slow page faults those fresh pages made the download twice as slow (610 MB into OPFS: 11.6 s against 5.6 s
 * in headless Chromium on a 2-core VM). A chunk is valid until the next read, which reuses its memory.
 */
export function chunksOf(body: ReadableStream<Uint8Array>): { read(): Promise<Uint8Array | null>; cancel(): Promise<void> } {
  let byob: ReadableStreamBYOBReader | null = null;
  try {
    byob = body.getReader({ mode: "byob" });
  } catch {
    const reader = body.getReader();
    return { read: async () => (await reader.read()).value ?? null, cancel: () => reader.cancel() };
  }
  const r = byob;
  let buffer = new ArrayBuffer(CHUNK);
  return {
    async read() {
      const { done, value } = await r.read(new Uint8Array(buffer, 0, CHUNK));
      if (done || value === undefined) return null;
      buffer = value.buffer as ArrayBuffer; // the same memory, handed back for the next read
      return value;
    },
    cancel: () => r.cancel(),
  };
}

/** Where copying a body failed: reading it from the network, or storing a chunk. */
export class BodyCopyError extends Error {
  constructor(
    readonly stage: "download" | "store",
    readonly error: unknown,
  ) {
    super(error instanceof Error ? error.message : String(error));
  }
}

/**
 * Reads `body` to its end, handing each chunk to `write` at its offset (write must be done with the chunk
 * when it returns: the next read reuses its memory), and reports the bytes written after each. While the
 * body has data queued its reads resolve as microtasks, which would starve every task of the thread (its
 * messages, timers, another fetch) until the body ends, so it yields a task every YIELD_MS. Refuses more
 * bytes than `size` announced. Returns the bytes written; on failure cancels the body and throws a
 * BodyCopyError naming the stage.
 */
export async function copyBody(
  body: ReadableStream<Uint8Array>, size: number | null, write: (chunk: Uint8Array, at: number) => void | Promise<void>, onWritten: (bytes: number) => void,
): Promise<number> {
  const chunks = chunksOf(body);
  let stage: "download" | "store" = "download";
  let written = 0;
  let lastYield = performance.now();
  try {
    for (;;) {
      if (performance.now() - lastYield > YIELD_MS) {
        await yieldToEventLoop();
        lastYield = performance.now();
      }
      stage = "download";
      const chunk = await chunks.read();
      if (chunk === null) return written;
      if (size !== null && written + chunk.length > size) throw new Error(`the server sent more than the ${size} bytes it announced`);
      stage = "store";
      await write(chunk, written);
      written += chunk.length;
      onWritten(written);
    }
  } catch (e) {
    await chunks.cancel().catch(() => undefined);
    throw new BodyCopyError(stage, e);
  }
}

/**
 * The file at `url`, streamed; null on 404. A server that gives no Content-Length (a compressed or
 * chunked answer) is read with Range requests instead.
 */
export async function openStreamedSource(url: string, options: StreamSourceOptions = {}): Promise<ByteSource | null> {
  const get = options.fetch ?? ((input, init) => fetch(input, init));
  let r: Response;
  try {
    r = await get(url, { cache: "no-store" });
  } catch (e) {
    throw new CheckpointError(`cannot fetch ${url}: ${(e as Error).message}`);
  }
  if (r.status === 404 || r.status === 410) {
    await r.body?.cancel();
    return null;
  }
  if (!r.ok) {
    await r.body?.cancel();
    throw new CheckpointError(`cannot fetch ${url}: HTTP ${r.status} ${r.statusText}`);
  }
  const length = r.headers.get("content-length");
  const size = length !== null && !r.headers.get("content-encoding") ? Number(length) : NaN;
  if (r.body === null || !Number.isSafeInteger(size)) {
    await r.body?.cancel();
    return openHttpSource(url, { fetch: get });
  }
  return new StreamedFile(url, size, r.body, get, options.behind ?? BEHIND, options.ahead ?? AHEAD).source();
}

class StreamedFile {
  /** Received chunks still kept, in file order. */
  private chunks: { at: number; bytes: Uint8Array }[] = [];
  private received = 0;
  /** The furthest byte a read asked for. */
  private furthest = 0;
  /** Bytes below this were dropped. */
  private keptFrom = 0;
  private failure: Error | null = null;
  private closed = false;
  private waiters: { end: number; wake: () => void }[] = [];
  private pumpWake: (() => void) | null = null;
  private ranges: Promise<ByteSource | null> | null = null;
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;

  constructor(
    private readonly url: string,
    private readonly size: number,
    body: ReadableStream<Uint8Array>,
    private readonly get: typeof fetch,
    private readonly behind: number,
    private readonly ahead: number,
  ) {
    this.reader = body.getReader();
    void this.pump();
  }

  private async pump(): Promise<void> {
    let lastYield = performance.now();
    try {
      while (this.received < this.size && !this.closed) {
        const needed = this.waiters.reduce((n, w) => Math.max(n, w.end), 0);
        if (this.received >= this.furthest + this.ahead && this.received >= needed) {
          await new Promise<void>((wake) => (this.pumpWake = wake));
          continue;
        }
        const { done, value } = await this.reader.read();
        if (done) break;
        if (this.received + value.length > this.size) throw new Error(`the server sent more than the ${this.size} bytes it announced`);
        this.chunks.push({ at: this.received, bytes: value });
        this.received += value.length;
        this.wake();
        if (performance.now() - lastYield > YIELD_MS) {
          await yieldToEventLoop();
          lastYield = performance.now();
        }
      }
      if (this.received < this.size && !this.closed) throw new Error(`the download ended after ${this.received} of ${this.size} bytes`);
    } catch (e) {
      if (!this.closed) this.failure = new CheckpointError(`cannot download ${this.url}: ${(e as Error).message}`);
      await this.reader.cancel().catch(() => undefined);
    }
    this.wake(true);
  }

  private wake(all = false): void {
    const ready = this.waiters.filter((w) => all || w.end <= this.received);
    this.waiters = this.waiters.filter((w) => !ready.includes(w));
    for (const w of ready) w.wake();
  }

  private until(end: number): Promise<void> {
    if (end <= this.received || this.failure !== null) return Promise.resolve();
    const p = new Promise<void>((wake) => this.waiters.push({ end, wake }));
    this.pumpWake?.();
    this.pumpWake = null;
    return p;
  }

  /** Copies bytes [offset, offset + out.length) from the kept chunks into `out`. */
  private copy(offset: number, out: Uint8Array): void {
    const end = offset + out.length;
    for (const c of this.chunks) {
      const cEnd = c.at + c.bytes.length;
      if (cEnd <= offset) continue;
      if (c.at >= end) break;
      const from = Math.max(offset, c.at);
      const to = Math.min(end, cEnd);
      out.set(c.bytes.subarray(from - c.at, to - c.at), from - offset);
    }
  }

  /** Drops chunks wholly below furthest - BEHIND, and lets the body flow again. */
  private advance(end: number): void {
    this.furthest = Math.max(this.furthest, end);
    const keep = this.furthest - this.behind;
    let drop = 0;
    while (drop < this.chunks.length && this.chunks[drop].at + this.chunks[drop].bytes.length <= keep) drop++;
    if (drop > 0) {
      const last = this.chunks[drop - 1];
      this.keptFrom = last.at + last.bytes.length;
      this.chunks = this.chunks.slice(drop);
    }
    this.pumpWake?.();
    this.pumpWake = null;
  }

  private async readAt(offset: number, out: Uint8Array): Promise<void> {
    if (this.closed) throw new CheckpointError(`${this.url}: read after close`);
    checkRange({ name: this.url, size: this.size }, offset, out.length);
    if (out.length === 0) return;
    if (offset < this.keptFrom) {
      // Dropped already: ask the server for these bytes alone.
      this.ranges ??= openHttpSource(this.url, { fetch: this.get });
      const ranged = await this.ranges;
      if (ranged === null) throw new CheckpointError(`cannot fetch ${this.url}: not found (HTTP 404)`);
      out.set(await ranged.read(offset, out.length));
      return;
    }
    const end = offset + out.length;
    await this.until(end);
    if (end > this.received) throw this.failure ?? new CheckpointError(`${this.url}: read after close`);
    this.copy(offset, out);
    this.advance(end);
  }

  source(): ByteSource {
    return {
      name: this.url,
      size: this.size,
      read: async (offset, length) => {
        const out = new Uint8Array(length);
        await this.readAt(offset, out);
        return out;
      },
      readInto: (offset, out) => this.readAt(offset, out),
      arrived: () => this.received,
      close: async () => {
        if (this.closed) return;
        this.closed = true;
        this.chunks = [];
        this.pumpWake?.();
        this.wake(true);
        await this.reader.cancel().catch(() => undefined);
        await (await this.ranges?.catch(() => null))?.close();
      },
    };
  }
}
