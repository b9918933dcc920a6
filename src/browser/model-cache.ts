// Model files (and the kernels' .wasm) kept across page visits, in the Origin Private File System.
//
// Why OPFS and not the Cache API: bench/browser-storage.ts writes 256 MiB or 1 GiB from a stream of 4 MiB
// chunks (as a download arrives) and reads it back in 4 MiB slices in a new page, in headless Chromium 156
// with an on-disk profile, on a 2-core machine shared with other jobs (so the figures are noisy):
//
//                                     write MB/s   read MB/s    first 4 MiB   browser memory
//   OPFS, a worker's sync handle      224-653      968-14278    19-62 ms      +8..45 MiB
//   Cache API (put / match + blob)    34-42        48-128       27-115 ms     +108..263 MiB
//   OPFS, async (createWritable)      12-21        39-101       13-138 ms     +119..237 MiB
//
// (The top read figure is the OS page cache serving a file just written.) Only the synchronous access handle
// is faster than fetching from localhost (~119 MB/s in one GET), and it also reads bytes already written
// while the rest is still arriving, so a load starts before the download ends. It exists only in dedicated
// workers, which is where ModelClient loads models; in a window this falls back to OPFS's asynchronous API
// (slower; still one download, and zero bytes from the network on the next visit), so one store serves both
// and the entries are shared between them.
//
// In a worker, the download itself (the GET and the OPFS writes) runs in a download worker of its own
// (download-worker.ts) while this worker reads the bytes already written through a second handle on the
// file, so that preparing the model does not compete with the download for one thread.
//
// Layout: a directory (default "mobilellm-models") holding, per URL, <key>.bin (the bytes) and <key>.json
// (url, size, ETag, Last-Modified, when), key = SHA-256 of the URL. The .json is written last, after
// every byte is on disk, and removed before a download starts: an entry without it (the page was killed
// mid-download), or whose .bin has the wrong size, is never read, and the next open downloads again.
import { CheckpointError, blobSource, checkRange, openHttpSource, type ByteSource } from "../env/byte-source.js";
import { BodyCopyError, YIELD_MS, copyBody, yieldToEventLoop } from "./stream-source.js";
import type { DownloadReply, DownloadRequest } from "./download-worker.js";

/** Where the bytes of an opened file come from. */
export type CacheOrigin = "cache" | "network";

/** A complete cache entry. */
export interface CachedModel {
  url: string;
  bytes: number;
  /** When it was stored (ms since the epoch). */
  storedAt: number;
  etag: string | null;
  lastModified: string | null;
}

/** A file opened through the cache: a ByteSource that also says where its bytes come from. */
export interface CachedSource extends ByteSource {
  readonly origin: CacheOrigin;
}

export interface ModelCacheOptions {
  /** The OPFS directory (default "mobilellm-models"). */
  directory?: string;
  fetch?: typeof fetch;
  /** Told when something is not cached as asked (no quota, OPFS locked or missing) or cannot be validated. */
  onWarning?: (message: string) => void;
  /** Told for every file opened, with where its bytes come from. */
  onOpen?: (url: string, origin: CacheOrigin, bytes: number) => void;
}

// The parts of OPFS this file uses that TypeScript's DOM library leaves out (the synchronous handle is
// declared only for workers, directory iteration only with DOM.AsyncIterable).
interface SyncAccessHandle {
  read(buffer: Uint8Array, options: { at: number }): number;
  write(buffer: Uint8Array, options: { at: number }): number;
  truncate(size: number): void;
  getSize(): number;
  flush(): void;
  close(): void;
}
type SyncFileHandle = FileSystemFileHandle & { createSyncAccessHandle(options?: { mode?: string }): Promise<SyncAccessHandle> };
type IterableDirectory = FileSystemDirectoryHandle & { keys(): AsyncIterable<string> };

interface Meta extends CachedModel {
  version: 1;
}

interface Validators {
  size: number | null;
  etag: string | null;
  lastModified: string | null;
}

function validatorsOf(headers: Headers): Validators {
  const length = headers.get("content-length");
  // A compressed response's length is not the file's.
  const size = length !== null && !headers.get("content-encoding") ? Number(length) : null;
  return { size: size !== null && Number.isSafeInteger(size) ? size : null, etag: headers.get("etag"), lastModified: headers.get("last-modified") };
}

/**
 * True for an HTML page where the URL names no HTML file: what a dev server or a single-page app's host
 * answers, with status 200, for a path it does not have (its index.html). Never stored: the next visit
 * must ask the server again, not find the page cached under config.json's URL.
 */
function isHtmlFallback(url: string, contentType: string | null): boolean {
  return contentType !== null && /^\s*text\/html\b/i.test(contentType) && !/\.html?$/i.test(new URL(url).pathname);
}

/** A GET's status and headers, its body not read yet. */
interface Answer {
  status: number;
  statusText: string;
  headers: Headers;
  hasBody: boolean;
  /** Drops the body unread. */
  cancel(): Promise<void>;
}

/** Whether the server's headers describe the stored entry (same size, same ETag, else same Last-Modified). */
function fresh(meta: Meta, now: Validators): boolean {
  if (now.size !== null && now.size !== meta.bytes) return false;
  if (meta.etag !== null && now.etag !== null) return meta.etag === now.etag;
  if (meta.lastModified !== null && now.lastModified !== null) return meta.lastModified === now.lastModified;
  return now.size !== null; // nothing but the size to go by
}

const MIB = 1 << 20;
const mib = (n: number) => `${(n / MIB).toFixed(1)} MiB`;

function errorText(e: unknown): string {
  return e instanceof Error ? `${e.name === "Error" ? "" : `${e.name}: `}${e.message}` : String(e);
}

/** Whether this context has the Origin Private File System (a secure context: https or localhost). */
export function modelCacheSupported(): boolean {
  const storage = (globalThis as { navigator?: { storage?: StorageManager } }).navigator?.storage;
  return typeof storage?.getDirectory === "function";
}

export class ModelCache {
  private readonly dirName: string;
  private readonly get: typeof fetch;
  private dir: Promise<FileSystemDirectoryHandle> | null = null;
  /** The download worker, started by the first download that uses it. */
  private downloader: DownloadWorker | null = null;
  /** Set once the download worker failed to start: every download then runs on this thread. */
  private noDownloadWorker = false;

  constructor(private readonly options: ModelCacheOptions = {}) {
    this.dirName = options.directory ?? "mobilellm-models";
    this.get = options.fetch ?? ((input, init) => fetch(input, init));
  }

  /**
   * A file by URL, from the cache when its entry is complete and the server's HEAD still describes it
   * (size, ETag or Last-Modified); else fetched with one GET and stored as it arrives. Null when the
   * server answers 404. Falls back to uncached Range reads, with a warning, when the file does not fit the
   * origin's quota or the cache cannot be used.
   */
  async open(url: string): Promise<CachedSource | null> {
    url = new URL(url, (globalThis as { location?: { href: string } }).location?.href).href;
    if (!modelCacheSupported()) {
      this.warn(`not caching ${url}: this context has no Origin Private File System (it needs https or localhost)`);
      return this.uncached(url);
    }
    const key = await keyOf(url);
    const meta = await this.readMeta(key);
    if (meta !== null && meta.url === url) {
      const stored = await this.storedSize(key);
      if (stored === meta.bytes) {
        const verdict = await this.validate(url, meta);
        if (verdict === "gone") {
          await this.remove(key);
          return null;
        }
        if (verdict === "fresh") {
          const source = await this.openStored(url, key, meta.bytes).catch((e) => {
            this.warn(`cannot read the cached ${url} (${errorText(e)}): fetching it again`);
            return null;
          });
          if (source !== null) {
            this.options.onOpen?.(url, "cache", meta.bytes);
            return source;
          }
        }
      }
    }
    await this.remove(key).catch(() => undefined);
    return this.download(url, key);
  }

  /** A whole (small) file by URL through the cache, e.g. a JSON file or a kernel build; null on 404. */
  async bytes(url: string): Promise<Uint8Array | null> {
    const source = await this.open(url);
    if (source === null) return null;
    try {
      return await source.read(0, source.size);
    } finally {
      await source.close();
    }
  }

  /** The complete entries. */
  async list(): Promise<CachedModel[]> {
    if (!modelCacheSupported()) return [];
    const dir = (await this.directory()) as IterableDirectory;
    const out: CachedModel[] = [];
    for await (const name of dir.keys()) {
      if (!name.endsWith(".json")) continue;
      const meta = await this.readMeta(name.slice(0, -".json".length));
      if (meta !== null) out.push({ url: meta.url, bytes: meta.bytes, storedAt: meta.storedAt, etag: meta.etag, lastModified: meta.lastModified });
    }
    return out.sort((a, b) => a.url.localeCompare(b.url));
  }

  /** Removes one URL's entry; false when there was none. */
  async delete(url: string): Promise<boolean> {
    if (!modelCacheSupported()) return false;
    const key = await keyOf(new URL(url, (globalThis as { location?: { href: string } }).location?.href).href);
    const had = (await this.readMeta(key)) !== null;
    await this.remove(key);
    return had;
  }

  /** Removes every entry (and any partial download). A file still open (a load running) cannot be removed. */
  async clear(): Promise<void> {
    if (!modelCacheSupported()) return;
    const root = await navigator.storage.getDirectory();
    this.dir = null;
    try {
      await root.removeEntry(this.dirName, { recursive: true });
    } catch (e) {
      if ((e as Error).name !== "NotFoundError") throw new Error(`cannot clear the model cache: ${errorText(e)}`);
    }
  }

  /** The origin's storage use and quota in bytes (navigator.storage.estimate()). */
  async estimate(): Promise<{ usage: number; quota: number }> {
    const e = await navigator.storage.estimate();
    return { usage: e.usage ?? 0, quota: e.quota ?? 0 };
  }

  /** Asks the browser not to evict this origin's storage under pressure; whether it agreed. */
  async persist(): Promise<boolean> {
    return typeof navigator.storage?.persist === "function" ? navigator.storage.persist() : false;
  }

  private warn(message: string): void {
    this.options.onWarning?.(message);
  }

  private async uncached(url: string): Promise<CachedSource | null> {
    const source = await openHttpSource(url, { fetch: this.get });
    if (source === null) return null;
    this.options.onOpen?.(url, "network", source.size);
    return Object.assign(source, { origin: "network" as const });
  }

  private directory(): Promise<FileSystemDirectoryHandle> {
    this.dir ??= navigator.storage.getDirectory().then((root) => root.getDirectoryHandle(this.dirName, { create: true }));
    return this.dir;
  }

  private async readMeta(key: string): Promise<Meta | null> {
    try {
      const file = await (await (await this.directory()).getFileHandle(`${key}.json`)).getFile();
      const meta = JSON.parse(await file.text()) as Meta;
      return meta.version === 1 && typeof meta.url === "string" && Number.isSafeInteger(meta.bytes) ? meta : null;
    } catch {
      return null; // absent, or not ours: either way not a usable entry
    }
  }

  private async storedSize(key: string): Promise<number | null> {
    try {
      return (await (await (await this.directory()).getFileHandle(`${key}.bin`)).getFile()).size;
    } catch {
      return null;
    }
  }

  private async remove(key: string): Promise<void> {
    const dir = await this.directory();
    for (const name of [`${key}.json`, `${key}.bin`]) {
      try {
        await dir.removeEntry(name);
      } catch (e) {
        if ((e as Error).name !== "NotFoundError") throw new Error(`cannot remove the cache entry ${name}: ${errorText(e)}`);
      }
    }
  }

  /** "fresh", "stale", or "gone" (404); offline or a HEAD the server refuses keeps the entry, with a warning. */
  private async validate(url: string, meta: Meta): Promise<"fresh" | "stale" | "gone"> {
    let r: Response;
    try {
      r = await this.get(url, { method: "HEAD", cache: "no-store" });
    } catch (e) {
      this.warn(`cannot check ${url} with the server (${errorText(e)}): using the cached copy`);
      return "fresh";
    }
    if (r.status === 404 || r.status === 410) return "gone";
    if (!r.ok) {
      this.warn(`cannot check ${url} with the server (HEAD: HTTP ${r.status}): using the cached copy`);
      return "fresh";
    }
    return fresh(meta, validatorsOf(r.headers)) ? "fresh" : "stale";
  }

  private async openStored(url: string, key: string, size: number): Promise<CachedSource> {
    const handle = await (await this.directory()).getFileHandle(`${key}.bin`);
    if (hasSyncAccess(handle)) {
      // "read-only" lets several tabs read one entry (browsers that do not know the mode lock it instead).
      const access = await handle.createSyncAccessHandle({ mode: "read-only" });
      if (access.getSize() !== size) {
        access.close();
        throw new Error(`the entry holds ${access.getSize()} of ${size} bytes`);
      }
      return { ...syncSource(url, size, access, () => size), origin: "cache" };
    }
    const file = await handle.getFile();
    if (file.size !== size) throw new Error(`the entry holds ${file.size} of ${size} bytes`);
    return { ...blobSource(url, file), origin: "cache" };
  }

  /**
   * One GET, its body written into <key>.bin as it arrives; reads wait for the bytes they need. Where it
   * can (a dedicated worker with nested workers, Web Locks and OPFS's shared handles), a download worker
   * fetches and writes (download-worker.ts), so that this thread stays free to prepare the bytes already
   * written; else this thread does both.
   */
  private async download(url: string, key: string): Promise<CachedSource | null> {
    const offThread = await this.downloadOffThread(url, key);
    if (offThread !== undefined) return offThread;
    let r: Response;
    try {
      r = await this.get(url, { cache: "no-store" });
    } catch (e) {
      throw new CheckpointError(`cannot fetch ${url}: ${(e as Error).message}`);
    }
    const answer: Answer = { status: r.status, statusText: r.statusText, headers: r.headers, hasBody: r.body !== null, cancel: async () => r.body?.cancel() };
    const screened = await this.screen(url, answer);
    if (screened !== undefined) return screened;
    let handle: FileSystemFileHandle;
    try {
      handle = await (await this.directory()).getFileHandle(`${key}.bin`, { create: true });
    } catch (e) {
      await answer.cancel();
      this.warn(`not caching ${url}: ${errorText(e)}`);
      return this.uncached(url);
    }
    const store = await (hasSyncAccess(handle) ? syncStore(handle) : asyncStore(handle)).catch(() => null);
    if (store === null) {
      await answer.cancel();
      this.warn(openElsewhere(url));
      return this.uncached(url);
    }
    const validators = validatorsOf(r.headers);
    return this.store(url, key, validators, store, bodyPump(url, r.body as ReadableStream<Uint8Array>, store, validators.size));
  }

  /**
   * The download through the download worker, undefined where it cannot run here (then this thread
   * downloads): no nested Worker or Web Locks, a fetch of the caller's own, no shared handle mode, or the
   * worker's script did not start (said by a warning).
   */
  private async downloadOffThread(url: string, key: string): Promise<CachedSource | null | undefined> {
    const locks = (globalThis as { navigator?: { locks?: LockManager } }).navigator?.locks;
    if (this.options.fetch !== undefined || this.noDownloadWorker || typeof Worker !== "function" || locks === undefined) return undefined;
    let handle: FileSystemFileHandle;
    try {
      handle = await (await this.directory()).getFileHandle(`${key}.bin`, { create: true });
    } catch {
      return undefined; // this thread's download says why
    }
    if (!hasSyncAccess(handle)) return undefined;
    // Shared handles do not lock the entry against another tab's download: a Web Lock does, held while
    // this worker's handle is open.
    const release = await tryLock(locks, `mobilellm-models:${this.dirName}/${key}`);
    if (release === null) {
      this.warn(openElsewhere(url));
      return this.uncached(url);
    }
    let reader: SyncAccessHandle | null = null;
    let handedOver = false;
    try {
      reader = await sharedHandle(handle);
      if (reader === null) return undefined;
      if (this.downloader === null || this.downloader.ended) this.downloader = new DownloadWorker();
      let answer: Answer & { id: number };
      try {
        answer = await this.downloader.fetch(url);
      } catch (e) {
        if (!(e instanceof DownloadWorkerUnavailable)) throw e;
        this.noDownloadWorker = true;
        this.downloader = null;
        this.warn(`the download worker did not start (${e.message}): downloading on the model's thread`);
        return undefined;
      }
      const screened = await this.screen(url, answer);
      if (screened !== undefined) return screened;
      const validators = validatorsOf(answer.headers);
      const pump = this.downloader.write(answer.id, { directory: this.dirName, file: `${key}.bin`, size: validators.size });
      // From here the store closes the handle, and releases the lock, when the load is done with it.
      handedOver = true;
      return await this.store(url, key, validators, sharedStore(reader, release), pump);
    } finally {
      if (!handedOver) {
        reader?.close();
        release();
      }
    }
  }

  /**
   * What a GET's answer means before its body is stored: null on 404 (its body dropped), an error on
   * another failure, an uncached source where the cache should not keep it (an HTML fallback page, more
   * than the quota leaves); undefined to go on and store it.
   */
  private async screen(url: string, a: Answer): Promise<CachedSource | null | undefined> {
    if (a.status === 404 || a.status === 410) {
      await a.cancel();
      return null;
    }
    if (a.status < 200 || a.status > 299 || !a.hasBody) {
      await a.cancel();
      throw new CheckpointError(`cannot fetch ${url}: HTTP ${a.status} ${a.statusText}`);
    }
    if (isHtmlFallback(url, a.headers.get("content-type"))) {
      await a.cancel();
      return this.uncached(url);
    }
    const size = validatorsOf(a.headers).size;
    // Without a length up front (a compressed or chunked answer) the size is known only at the end.
    if (size !== null) {
      const { usage, quota } = await this.estimate();
      if (quota > 0 && size > quota - usage) {
        await a.cancel();
        this.warn(quotaMessage(url, size, usage, quota));
        return this.uncached(url);
      }
    }
    return undefined;
  }

  /** Runs `pump` into `store` as the entry of `url`: its .json written once every byte is durable. */
  private async store(url: string, key: string, validators: Validators, store: Store, pump: Pump): Promise<CachedSource> {
    const size = validators.size;
    const dl = new Download(
      url,
      store,
      size,
      pump,
      async (bytes) => {
        const meta: Meta = { version: 1, url, bytes, storedAt: Date.now(), etag: validators.etag, lastModified: validators.lastModified };
        await writeText(await this.directory(), `${key}.json`, JSON.stringify(meta));
      },
      () => this.remove(key),
      async (written) => {
        const { usage, quota } = await this.estimate().catch(() => ({ usage: 0, quota: 0 }));
        this.warn(quotaMessage(url, size ?? written, usage, quota));
        return this.uncached(url);
      },
    );
    dl.start();
    const total = size ?? (await dl.finished);
    this.options.onOpen?.(url, "network", total);
    return dl.source(total);
  }
}

const openElsewhere = (url: string) => `not caching ${url}: its cache entry is open elsewhere (another tab loading it?)`;

function quotaMessage(url: string, needed: number, usage: number, quota: number): string {
  return (
    `not caching ${url}: it needs ${mib(needed)} and this origin has ${mib(Math.max(0, quota - usage))} free ` +
    `(${mib(usage)} used of its ${mib(quota)} quota, navigator.storage.estimate()); loading it from the network without caching`
  );
}

function hasSyncAccess(h: FileSystemFileHandle): h is SyncFileHandle {
  return typeof (h as Partial<SyncFileHandle>).createSyncAccessHandle === "function";
}

async function keyOf(url: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(url)));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function writeText(dir: FileSystemDirectoryHandle, name: string, text: string): Promise<void> {
  const handle = await dir.getFileHandle(name, { create: true });
  if (hasSyncAccess(handle)) {
    const access = await handle.createSyncAccessHandle();
    try {
      const bytes = new TextEncoder().encode(text);
      access.truncate(0);
      access.write(bytes, { at: 0 });
      access.flush();
    } finally {
      access.close();
    }
    return;
  }
  const w = await handle.createWritable();
  await w.write(text);
  await w.close();
}

/** Where a download's bytes are read back from, while they are being written and after. */
interface Store {
  /** Bytes that reads may already use (all written ones for a synchronous handle, none before commit otherwise). */
  readable(written: number, committed: boolean): number;
  source(url: string, size: number, readable: () => number): Promise<ByteSource>;
  /** Releases what the store holds (its handle), when the download failed or no read needed it. */
  discard(): Promise<void>;
}

/** A store this thread writes the bytes into. */
interface WritableStore extends Store {
  write(bytes: Uint8Array, at: number): Promise<void>;
  /** Makes every byte durable; afterwards `source` serves them. */
  commit(): Promise<void>;
}

async function syncStore(handle: SyncFileHandle): Promise<WritableStore> {
  const access = await handle.createSyncAccessHandle();
  access.truncate(0);
  return {
    async write(bytes, at) {
      access.write(bytes, { at });
    },
    async commit() {
      access.flush();
    },
    readable: (written) => written,
    async source(url, size, readable) {
      return syncSource(url, size, access, readable);
    },
    async discard() {
      access.close();
    },
  };
}

async function asyncStore(handle: FileSystemFileHandle): Promise<WritableStore> {
  const w = await handle.createWritable();
  let open = true;
  return {
    async write(bytes) {
      await w.write(bytes as Uint8Array<ArrayBuffer>);
    },
    async commit() {
      open = false;
      await w.close(); // a writable's bytes replace the file only now
    },
    readable: (_written, committed) => (committed ? Number.MAX_SAFE_INTEGER : 0),
    async source(url) {
      return blobSource(url, await handle.getFile());
    },
    async discard() {
      if (open) await w.abort().catch(() => undefined);
    },
  };
}

/**
 * The bytes the download worker writes, read through this thread's own shared handle on the same file;
 * `release` (the entry's Web Lock) once the handle is closed.
 */
function sharedStore(access: SyncAccessHandle, release: () => void): Store {
  const close = () => {
    access.close();
    release();
  };
  return {
    readable: (written) => written,
    async source(url, size, readable) {
      const source = syncSource(url, size, access, readable);
      return {
        ...source,
        async close() {
          await source.close();
          release();
        },
      };
    },
    async discard() {
      close();
    },
  };
}

/**
 * A handle on the file in OPFS's "readwrite-unsafe" mode, which lets another handle (the download
 * worker's) write it meanwhile; null where the file is open elsewhere or handles are not shared (a
 * browser that ignores the mode refuses a second handle on the file).
 */
async function sharedHandle(handle: SyncFileHandle): Promise<SyncAccessHandle | null> {
  let first: SyncAccessHandle;
  try {
    first = await handle.createSyncAccessHandle({ mode: "readwrite-unsafe" });
  } catch {
    return null;
  }
  try {
    (await handle.createSyncAccessHandle({ mode: "readwrite-unsafe" })).close();
    return first;
  } catch {
    first.close();
    return null;
  }
}

/** Takes the Web Lock `name` unless someone holds it: its release, or null when it is taken. */
function tryLock(locks: LockManager, name: string): Promise<(() => void) | null> {
  return new Promise((ok, fail) => {
    locks
      .request(name, { ifAvailable: true }, (lock) => {
        if (lock === null) return ok(null);
        return new Promise<void>((release) => ok(release));
      })
      .catch(fail);
  });
}

/**
 * Moves a download's bytes into its entry: calls `onWritten` with the bytes written so far each time more
 * are, and resolves with their count once the body has ended and every byte is durable. A failure is a
 * StageError saying whether the download or the storing failed.
 */
type Pump = (onWritten: (written: number) => void) => Promise<number>;

class StageError extends Error {
  constructor(
    readonly stage: "download" | "store",
    readonly error: unknown,
  ) {
    super(errorText(error));
  }
}

/** A GET's body written into `store` by this thread. */
function bodyPump(url: string, body: ReadableStream<Uint8Array>, store: WritableStore, size: number | null): Pump {
  return async (onWritten) => {
    try {
      const written = await copyBody(body, size, (chunk, at) => store.write(chunk, at), onWritten);
      await store.commit();
      return written;
    } catch (e) {
      throw e instanceof BodyCopyError ? new StageError(e.stage, e.error) : new StageError("store", e);
    }
  };
}

/** The download worker failed to start (its script missing or not a script): download on this thread. */
class DownloadWorkerUnavailable extends Error {}

/** How long the download worker stays without a download before it is ended (ms). */
const DOWNLOAD_WORKER_IDLE_MS = 1000;

/**
 * This thread's side of download-worker.ts: one worker, its downloads by id. It ends itself once no
 * download has run for DOWNLOAD_WORKER_IDLE_MS (a model cache lives for one load; a later one starts a new
 * worker).
 */
class DownloadWorker {
  private readonly worker: Worker;
  private nextId = 1;
  private readonly handlers = new Map<number, { reply(m: DownloadReply): void; died(e: Error): void }>();
  private death: Error | null = null;
  /** Whether any message came: a failure before that means the script never ran. */
  private started = false;
  private idleTimer: ReturnType<typeof setTimeout> | null = null;
  /** Set once the worker was ended for being idle. */
  ended = false;

  constructor() {
    // The form bundlers recognize (see web-worker-spawn.ts): they emit the worker module and rewrite the URL.
    this.worker = new Worker(new URL("./download-worker.js", import.meta.url), { type: "module", name: "mobilellm-download" });
    this.worker.onmessage = (e: MessageEvent<DownloadReply>) => {
      this.started = true;
      this.handlers.get(e.data.id)?.reply(e.data);
    };
    this.worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      this.death = new Error(e.message || (this.started ? "the download worker failed" : "its script did not load"));
      const all = [...this.handlers.values()];
      this.handlers.clear();
      for (const h of all) h.died(this.death);
      this.worker.terminate();
    };
  }

  /** Forgets download `id`; once none is left, ends the worker unless another starts soon. */
  private finish(id: number): void {
    this.handlers.delete(id);
    if (this.handlers.size > 0 || this.death !== null) return;
    if (this.idleTimer !== null) clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      if (this.handlers.size > 0) return;
      this.ended = true;
      this.worker.terminate();
    }, DOWNLOAD_WORKER_IDLE_MS);
  }

  /** The answer's status and headers; its body waits in the worker for `write` or the answer's `cancel`. */
  fetch(url: string): Promise<Answer & { id: number }> {
    const id = this.nextId++;
    if (this.idleTimer !== null) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    return new Promise((ok, fail) => {
      if (this.death !== null) return fail(new DownloadWorkerUnavailable(this.death.message));
      this.handlers.set(id, {
        reply: (m) => {
          if (m.type === "response") {
            ok({
              id,
              status: m.status,
              statusText: m.statusText,
              headers: new Headers(m.headers),
              hasBody: m.body,
              cancel: async () => {
                this.worker.postMessage({ type: "cancel", id } satisfies DownloadRequest);
                this.finish(id);
              },
            });
          } else if (m.type === "failed") {
            this.finish(id);
            fail(new CheckpointError(`cannot fetch ${url}: ${m.message}`));
          }
        },
        died: (e) => fail(new DownloadWorkerUnavailable(e.message)),
      });
      this.worker.postMessage({ type: "fetch", id, url } satisfies DownloadRequest);
    });
  }

  /** Stores the body of answer `id` as `file` of `directory`. */
  write(id: number, to: { directory: string; file: string; size: number | null }): Pump {
    return (onWritten) =>
      new Promise((ok, fail) => {
        if (this.death !== null) return fail(new StageError("download", this.death));
        this.handlers.set(id, {
          reply: (m) => {
            if (m.type === "written") return onWritten(m.bytes);
            if (m.type !== "done" && m.type !== "failed") return;
            this.finish(id);
            if (m.type === "done") return ok(m.bytes);
            fail(new StageError(m.stage, Object.assign(new Error(m.message), { name: m.name })));
          },
          died: (e) => fail(new StageError("download", new Error(`the download worker failed: ${e.message}`))),
        });
        this.worker.postMessage({ type: "write", id, ...to } satisfies DownloadRequest);
      });
  }
}

/**
 * Reads from a synchronous access handle, up to the bytes `readable()` says are there; close releases it.
 *
 * A synchronous read resolves its promise as a microtask, so a loader reading a whole entry in a loop would
 * never give the worker's event loop a task: the messages of the engine's thread workers starting up (they
 * then join the repacking only after the last read), and the page's own (a later load replacing this one),
 * would wait until the load ends. Each read therefore yields a task once YIELD_MS have passed since the
 * last one.
 */
function syncSource(name: string, size: number, access: SyncAccessHandle, readable: () => number): ByteSource {
  let closed = false;
  let lastYield = performance.now();
  const where = { name, size };
  const readInto = (offset: number, out: Uint8Array) => {
    if (closed) throw new CheckpointError(`${name}: read after close`);
    checkRange(where, offset, out.length);
    if (offset + out.length > readable()) throw new CheckpointError(`${name}: read past the bytes downloaded so far`);
    const got = out.length === 0 ? 0 : access.read(out, { at: offset });
    if (got !== out.length) throw new CheckpointError(`${name}: short read from the cache, got ${got} of ${out.length} bytes at offset ${offset}`);
  };
  const yieldNowAndThen = async () => {
    if (performance.now() - lastYield <= YIELD_MS) return;
    await yieldToEventLoop();
    lastYield = performance.now();
  };
  return {
    ...where,
    async read(offset, length) {
      const out = new Uint8Array(length);
      readInto(offset, out);
      await yieldNowAndThen();
      return out;
    },
    // Straight into the caller's memory (the engine's Wasm heap): no buffer of its own, no copy.
    async readInto(offset, out) {
      readInto(offset, out);
      await yieldNowAndThen();
    },
    async close() {
      if (!closed) access.close();
      closed = true;
    },
  };
}

/**
 * A download going into a Store (by a Pump). Reads wait until the bytes they ask for are readable; a failed
 * write (QuotaExceededError) can hand the reads over to an uncached source; a failed download fails them.
 */
class Download {
  private written = 0;
  private committed = false;
  private failure: unknown = null;
  private fallback: Promise<ByteSource | null> | null = null;
  private stored: ByteSource | null = null;
  private waiters: { end: number; wake: () => void }[] = [];
  private closed = false;
  /** Resolves with the byte count once every byte is stored; rejects when the download fails. */
  readonly finished: Promise<number>;
  private settle!: { ok(n: number): void; fail(e: unknown): void };

  constructor(
    private readonly url: string,
    private readonly store: Store,
    private readonly size: number | null,
    private readonly pump: Pump,
    /** Commits the entry (writes its .json). */
    private readonly onComplete: (bytes: number) => Promise<void>,
    /** Removes what a failed download left. */
    private readonly discardEntry: () => Promise<void>,
    /** Where reads go once the quota ran out mid-download (an uncached source), or null to fail them. */
    private readonly onQuota: (written: number) => Promise<ByteSource | null>,
  ) {
    this.finished = new Promise((ok, fail) => (this.settle = { ok, fail }));
    this.finished.catch(() => undefined); // observed through the reads
  }

  start(): void {
    void this.run();
  }

  private async run(): Promise<void> {
    try {
      const total = await this.pump((written) => {
        this.written = written;
        this.wake();
      });
      this.written = total;
      if (this.size !== null && total !== this.size) {
        throw new StageError("download", new Error(`the server sent ${total} of the ${this.size} bytes it announced`));
      }
      this.committed = true;
      await this.onComplete(total).catch((e: unknown) => {
        throw new StageError("store", e);
      });
      this.settle.ok(total);
    } catch (e) {
      const stage = e instanceof StageError ? e.stage : "download";
      const error = e instanceof StageError ? e.error : e;
      const quota = (error as Error)?.name === "QuotaExceededError";
      this.failure = quota ? error : new CheckpointError(`cannot ${stage} ${this.url}: ${errorText(error)} (after ${this.written} bytes)`);
      // Set before the first await, so that a read from now on goes here rather than to the closing handle.
      this.fallback = (async () => {
        await this.store.discard().catch(() => undefined);
        await this.discardEntry().catch(() => undefined);
        return quota ? this.onQuota(this.written) : null;
      })();
      await this.fallback.catch(() => undefined);
      this.settle.fail(this.failure);
    }
    this.wake(true);
  }

  private wake(all = false): void {
    const now = this.store.readable(this.written, this.committed);
    const ready = this.waiters.filter((w) => all || w.end <= now);
    this.waiters = this.waiters.filter((w) => !ready.includes(w));
    for (const w of ready) w.wake();
  }

  private until(end: number): Promise<void> {
    if (end <= this.store.readable(this.written, this.committed) || this.fallback !== null) return Promise.resolve();
    return new Promise((wake) => this.waiters.push({ end, wake }));
  }

  source(size: number): CachedSource {
    const where = { name: this.url, size };
    /** Bytes [offset, offset + length) into `out` when given (the engine's memory), else a new array. */
    const readAt = async (offset: number, length: number, out?: Uint8Array): Promise<Uint8Array> => {
      if (this.closed) throw new CheckpointError(`${this.url}: read after close`);
      checkRange(where, offset, length);
      await this.until(offset + length);
      const from = async (source: ByteSource) => {
        if (out === undefined) return source.read(offset, length);
        if (source.readInto) await source.readInto(offset, out);
        else out.set(await source.read(offset, length));
        return out;
      };
      if (this.fallback === null) {
        try {
          this.stored ??= await this.store.source(this.url, size, () => this.store.readable(this.written, this.committed));
          return await from(this.stored);
        } catch (e) {
          if (this.fallback === null) throw e;
          // The download failed while this read waited: its handle is closing; read where the rest goes.
        }
      }
      const fb = await this.fallback;
      if (fb === null) throw this.failure;
      return from(fb);
    };
    return {
      ...where,
      origin: "network",
      read: (offset, length) => readAt(offset, length),
      readInto: async (offset, out) => {
        await readAt(offset, out.length, out);
      },
      arrived: () => this.written,
      close: async () => {
        if (this.closed) return;
        this.closed = true;
        // A loader may close the file before its last bytes arrive (it needed none of them, or it failed):
        // the download still runs to the end and commits, so the next visit finds it whole. Waiting here
        // keeps the file's handle (a lock) until then, and a worker ended right after the load has no
        // download left half-done.
        await this.finished.catch(() => undefined);
        await this.stored?.close();
        if (this.stored === null && this.failure === null) await this.store.discard().catch(() => undefined);
        await (await this.fallback)?.close();
      },
    };
  }
}
