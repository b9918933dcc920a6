// The page (and its worker) that test/e2e/model-cache.test.ts bundles with esbuild and drives: it loads a
// model by URL through a ModelCache, in the window (OPFS's asynchronous API) or in a dedicated worker (its
// synchronous access handle), and returns the logits, where each file came from and the cache's warnings.
import "../../src/browser/set-immediate.js";
import { loadModelInBrowser } from "../../src/browser/load.js";
import { ModelCache, type CacheOrigin, type CachedModel } from "../../src/browser/model-cache.js";
import { ModelClient, type LoadedModel } from "../../src/browser/client.js";
import { quotaRunsOutAfter } from "./quota-runs-out.js";

export interface LoadResult {
  logits: number[];
  opened: { url: string; origin: CacheOrigin; bytes: number }[];
  warnings: string[];
  crossOriginIsolated: boolean;
  /** Milliseconds from the call to the loaded model. */
  loadMs: number;
}

export interface LoadRequest {
  model: string;
  wasm: string;
  prompt: number[];
  /** Pretend the origin's quota is this many bytes (navigator.storage.estimate), to test the quota check. */
  quota?: number;
  /**
   * Make this worker's OPFS writes (its synchronous handles) throw QuotaExceededError once this many bytes
   * were written (the download worker's are made to fail by the server, see the test).
   */
  failWritesAfter?: number;
  /** "reference" (the float32 oracle, quick to load) or the default int4 engine, which needs the kernels. */
  backend?: "reference" | "wasm";
}

async function load(req: LoadRequest): Promise<LoadResult> {
  if (req.quota !== undefined) {
    const quota = req.quota;
    navigator.storage.estimate = async () => ({ usage: 0, quota });
  }
  const t0 = performance.now();
  if (req.failWritesAfter !== undefined) quotaRunsOutAfter(req.failWritesAfter);
  const opened: LoadResult["opened"] = [];
  const warnings: string[] = [];
  const cache = new ModelCache({ onOpen: (url, origin, bytes) => opened.push({ url, origin, bytes }), onWarning: (w) => warnings.push(w) });
  const m = await loadModelInBrowser(req.model, { wasm: req.wasm, cache, threads: 1, contextLength: 64, backend: req.backend });
  const loadMs = performance.now() - t0;
  try {
    return { logits: Array.from(m.logits(req.prompt)[0]), opened, warnings, crossOriginIsolated, loadMs };
  } finally {
    await m.dispose();
  }
}

/** Cuts the stored bytes of `url` to `bytes`, as a page killed mid-write would leave them (its .json kept). */
async function truncateEntry(url: string, bytes: number): Promise<number> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(url)));
  const key = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
  const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle("mobilellm-models");
  const handle = await dir.getFileHandle(`${key}.bin`);
  const w = await handle.createWritable({ keepExistingData: true });
  await w.truncate(bytes);
  await w.close();
  return (await handle.getFile()).size;
}

/**
 * Reads the cached entry of `url` front to back, 64 KiB at a time, over and over, with a task queued
 * before the first read: whether the task ran while the reads went on (within `ms`).
 */
async function readsLetTasksRun(url: string, ms: number): Promise<boolean> {
  const source = await new ModelCache().open(url);
  if (source === null || source.origin !== "cache" || !source.readInto) throw new Error(`${url} is not cached`);
  let ran = false;
  setTimeout(() => (ran = true), 0);
  const out = new Uint8Array(64 << 10);
  const t0 = performance.now();
  try {
    for (let at = 0; !ran && performance.now() - t0 < ms; at = at + out.length >= source.size ? 0 : at + out.length) {
      await source.readInto(at, out.subarray(0, Math.min(out.length, source.size - at)));
    }
  } finally {
    await source.close();
  }
  return ran;
}

/** Downloads each URL into one ModelCache (waiting until it is stored), `gapMs` apart. */
async function downloadAll(urls: string[], gapMs: number): Promise<void> {
  const cache = new ModelCache();
  for (const [i, url] of urls.entries()) {
    if (i > 0) await new Promise((ok) => setTimeout(ok, gapMs));
    await (await cache.open(url))?.close(); // close waits for the entry to be stored
  }
}

type WorkerRequest = { load: LoadRequest } | { readsLetTasksRun: { url: string; ms: number } } | { downloadAll: { urls: string[]; gapMs: number } };

const inWorker = typeof window === "undefined";
if (inWorker) {
  const scope = globalThis as unknown as { onmessage: ((e: MessageEvent<WorkerRequest>) => void) | null; postMessage(m: unknown): void };
  scope.onmessage = (e) =>
    ("load" in e.data
      ? load(e.data.load)
      : "downloadAll" in e.data
        ? downloadAll(e.data.downloadAll.urls, e.data.downloadAll.gapMs)
        : readsLetTasksRun(e.data.readsLetTasksRun.url, e.data.readsLetTasksRun.ms)
    ).then(
      (r) => scope.postMessage({ ok: r }),
      (err: Error) => scope.postMessage({ error: err.message }),
    );
} else {
  const cache = new ModelCache();
  const inAWorker = <T>(req: WorkerRequest) =>
    new Promise<T>((ok, fail) => {
      const w = new Worker(import.meta.url, { type: "module" });
      w.onmessage = (e: MessageEvent<{ ok?: T; error?: string }>) => {
        w.terminate();
        if (e.data.error === undefined) ok(e.data.ok as T);
        else fail(new Error(e.data.error));
      };
      w.onerror = (e) => fail(new Error(`the worker failed: ${e.message}`));
      w.postMessage(req);
    });
  Object.assign(window, {
    loadInWindow: load,
    loadInWorker: (req: LoadRequest) => inAWorker<LoadResult>({ load: req }),
    readsLetTasksRun: (url: string, ms: number) => inAWorker<boolean>({ readsLetTasksRun: { url, ms } }),
    downloadAll: (urls: string[], gapMs: number) => inAWorker<void>({ downloadAll: { urls, gapMs } }),
    /** Through the library's own worker (served as /worker.js) and ModelClient, with `cache: true`. */
    loadViaClient: async (req: LoadRequest, prompt: string): Promise<{ model: LoadedModel; text: string }> => {
      const client = new ModelClient(new Worker("/worker.js", { type: "module" }));
      try {
        const model = await client.load({ url: req.model }, { wasm: req.wasm, cache: true, threads: 1, contextLength: 64, backend: req.backend });
        const result = await client.generate(prompt, { maxNewTokens: 8, seed: 1 });
        return { model, text: result.text };
      } finally {
        await client.terminate();
      }
    },
    listCache: (): Promise<CachedModel[]> => cache.list(),
    deleteCached: (url: string) => cache.delete(url),
    clearCache: () => cache.clear(),
    estimateCache: () => cache.estimate(),
    persistCache: () => cache.persist(),
    truncateEntry,
  });
}
