// The model cache (src/browser/model-cache.ts) in headless Chromium: a page bundled with esbuild
// (test/e2e/model-cache-page.ts) loads the bundled model by URL from a localhost server that counts the
// body bytes it sends, in a persistent browser profile. The second visit (a new page, even a new browser on
// the same profile) must get zero bytes of the model or kernels from the server and the same logits as
// Node; a cut-short entry, a download killed mid-way, a changed ETag and a cleared cache must each end in a
// clean re-download. The page is not cross-origin isolated (no COOP/COEP): the cache must not need it.
//
// Needs /usr/bin/chromium: `sudo apt-get install -y chromium` (Debian/Ubuntu); .ci/run installs it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { build } from "esbuild";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { loadModel } from "../../src/api.js";
import type { CachedModel } from "../../src/browser/model-cache.js";
import type { LoadRequest, LoadResult } from "./model-cache-page.js";

const CHROMIUM = "/usr/bin/chromium";
const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"];
const MODEL_DIR = resolve("models/shakespeare-tiny");
const WASM_DIR = resolve("build");
const PROMPT = [1000, 872, 266, 471, 300, 12];
const WEIGHTS = "model.safetensors";
const WEIGHTS_BYTES = statSync(join(MODEL_DIR, WEIGHTS)).size;

if (!existsChromium()) {
  throw new Error(`the model cache test drives Debian's Chromium at ${CHROMIUM}: install it with "sudo apt-get install -y chromium"`);
}
function existsChromium(): boolean {
  try {
    return statSync(CHROMIUM).isFile();
  } catch {
    return false;
  }
}

/** Body bytes the server sent, per path, since the last reset. */
let served = new Map<string, number>();
/** Changes every file's ETag (the bytes stay the same: only the validator says "changed"). */
let etagVersion = 1;
/** When set, the weights' GET sends its headers and this many bytes, then drops the connection. */
let cutWeightsAt: number | null = null;
/** When set, the weights' GET sends its headers and this many bytes, then waits (until the test ends it). */
let holdWeightsAt: number | null = null;
const held: ServerResponse[] = [];
/** "missing": /download-worker.js is a 404; a number: the download worker's OPFS writes fail past that many bytes. */
let downloadWorker: "missing" | number | null = null;
/** What a dev server or a single-page app's host answers, with status 200, for a path it does not have. */
/** Requests for /download-worker.js since the last load. */
let downloadWorkerRequests = 0;
const INDEX_HTML = "<!doctype html><html><head><title>app</title></head><body><div id=app></div></body></html>";
let server: Server;
let origin: string;
/**
 * The esbuild output: /app.js (the test page), /worker.js (src/browser/worker.ts), /download-worker.js (the
 * cache's download worker) and /quota-download-worker.js (the same, on a disk that fills up).
 */
const scripts = new Map<string, string>();
let context: BrowserContext;
/** Node's logits for PROMPT: the int4 engine's, and the float32 reference's (quicker to load, used by most tests). */
let expected: number[];
let expectedReference: number[];
/** The reference model's text for "ROMEO:" (8 tokens, seed 1). */
let expectedText: string;
const profile = mkdtempSync(join(tmpdir(), "mobilellm-cache-profile-"));

/**
 * /model/* and /wasm/*: the bundled model's files and the kernels. /spa/* is a host that answers every path
 * it lacks with its index page (status 200, text/html): under /spa/model/ it has the model's files but
 * generation_config.json; anywhere else under /spa/ it has none.
 */
function fileFor(path: string): string | "index.html" | null {
  const spa = /^\/spa\/(?:(model)\/)?([\w.-]+)$/.exec(path);
  if (spa) return spa[1] === "model" && spa[2] !== "generation_config.json" ? (fileFor(`/model/${spa[2]}`) ?? "index.html") : "index.html";
  const m = /^\/(model|wasm)\/([\w.-]+)$/.exec(path);
  if (!m) return null;
  const dir = m[1] === "model" ? MODEL_DIR : WASM_DIR;
  return readdirSync(dir).includes(m[2]) ? join(dir, m[2]) : null;
}

beforeAll(async () => {
  const node = await loadModel(MODEL_DIR, { threads: 1, contextLength: 64 });
  expected = Array.from(node.logits(PROMPT)[0]);
  await node.dispose();
  const reference = await loadModel(MODEL_DIR, { backend: "reference", contextLength: 64 });
  expectedReference = Array.from(reference.logits(PROMPT)[0]);
  expectedText = await reference.generate("ROMEO:", { maxNewTokens: 8, seed: 1 }).text();
  await reference.dispose();
  const out = await build({
    entryPoints: {
      app: resolve("test/e2e/model-cache-page.ts"),
      worker: resolve("src/browser/worker.ts"),
      "download-worker": resolve("src/browser/download-worker.ts"),
      "quota-download-worker": resolve("test/e2e/quota-download-worker.ts"),
    },
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    outdir: "/bundle",
    write: false,
    logLevel: "silent",
  });
  for (const f of out.outputFiles) scripts.set(f.path.replace(/^\/bundle/, ""), f.text);
  server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    const send = (status: number, type: string, body: Buffer | string) => {
      res.statusCode = status;
      res.setHeader("Content-Type", type);
      res.end(req.method === "HEAD" ? undefined : body);
    };
    if (path === "/") return send(200, "text/html", `<!doctype html><meta charset=utf-8><script type=module src="/app.js"></script>`);
    res.setHeader("Cache-Control", "no-store");
    if (path === "/download-worker.js") downloadWorkerRequests++;
    if (path === "/download-worker.js" && downloadWorker === "missing") return send(404, "text/plain", "not found");
    if (path === "/download-worker.js" && typeof downloadWorker === "number") {
      return send(200, "text/javascript", `globalThis.FAIL_WRITES_AFTER = ${downloadWorker};\n${scripts.get("/quota-download-worker.js")}`);
    }
    const script = scripts.get(path);
    if (script !== undefined) return send(200, "text/javascript", script);
    const file = fileFor(path);
    if (file === null) return send(404, "text/plain", "not found");
    if (file === "index.html") {
      served.set(path, (served.get(path) ?? 0) + INDEX_HTML.length);
      return send(200, "text/html; charset=utf-8", INDEX_HTML);
    }
    const bytes = readFileSync(file);
    res.setHeader("ETag", `"v${etagVersion}-${bytes.length}"`);
    res.setHeader("Last-Modified", new Date(Date.UTC(2026, 0, etagVersion)).toUTCString());
    res.setHeader("Accept-Ranges", "bytes");
    let body = bytes;
    const range = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? "");
    if (range) {
      const [start, end] = [Number(range[1]), Math.min(Number(range[2]), bytes.length - 1)];
      res.statusCode = 206;
      res.setHeader("Content-Range", `bytes ${start}-${end}/${bytes.length}`);
      body = bytes.subarray(start, end + 1);
    } else res.statusCode = 200;
    res.setHeader("Content-Length", String(body.length));
    if (req.method === "HEAD") return res.end();
    if (cutWeightsAt !== null && path.endsWith(WEIGHTS) && !range) {
      served.set(path, (served.get(path) ?? 0) + cutWeightsAt);
      res.write(body.subarray(0, cutWeightsAt), () => setTimeout(() => res.destroy(), 50));
      return;
    }
    if (holdWeightsAt !== null && path.endsWith(WEIGHTS) && !range) {
      res.write(body.subarray(0, holdWeightsAt), () => served.set(path, (served.get(path) ?? 0) + (holdWeightsAt ?? 0)));
      held.push(res);
      return;
    }
    served.set(path, (served.get(path) ?? 0) + body.length);
    res.end(body);
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}, 120_000);

afterAll(async () => {
  await context?.close();
  await new Promise<void>((ok) => (server ? server.close(() => ok()) : ok()));
  rmSync(profile, { recursive: true, force: true });
});

const request = (extra: Partial<LoadRequest>): LoadRequest => ({ model: `${origin}/model/`, wasm: `${origin}/wasm/`, prompt: PROMPT, backend: "reference", ...extra });
const modelBytes = () => [...served].filter(([p]) => p.startsWith("/model/")).reduce((n, [, b]) => n + b, 0);
const wasmBytes = () => [...served].filter(([p]) => p.startsWith("/wasm/")).reduce((n, [, b]) => n + b, 0);

/** A new visit: a fresh page of the same profile. */
async function visit(): Promise<Page> {
  const page = await context.newPage();
  await page.goto(`${origin}/`);
  await page.waitForFunction(() => "loadInWorker" in window);
  return page;
}

async function load(page: Page, where: "worker" | "window", extra: Partial<LoadRequest> = {}): Promise<LoadResult> {
  served = new Map();
  downloadWorkerRequests = 0;
  const fn = where === "worker" ? "loadInWorker" : "loadInWindow";
  return page.evaluate(([f, r]) => (window as unknown as Record<string, (r: LoadRequest) => Promise<LoadResult>>)[f as string](r as LoadRequest), [fn, request(extra)] as const);
}

const list = (page: Page) => page.evaluate(() => (window as unknown as { listCache(): Promise<CachedModel[]> }).listCache());
const clear = (page: Page) => page.evaluate(() => (window as unknown as { clearCache(): Promise<void> }).clearCache());
const originOf = (r: LoadResult, file: string) => r.opened.filter((o) => o.url.endsWith(`/${file}`)).map((o) => o.origin);

describe("the model cache in headless Chromium", () => {
  it("a second visit, in a worker, reads no model or kernel byte from the server and gives the same logits", async () => {
    let page = await visit();
    await clear(page);
    const first = await load(page, "worker", { backend: "wasm" });
    expect(first.crossOriginIsolated).toBe(false);
    expect(first.logits).toEqual(expected);
    expect(downloadWorkerRequests).toBeGreaterThanOrEqual(1); // the files went through the download worker
    expect(served.get(`/model/${WEIGHTS}`)).toBe(WEIGHTS_BYTES); // one whole GET, no Range re-reads
    expect(originOf(first, WEIGHTS)).toEqual(["network"]);
    expect(first.warnings).toEqual([]);
    const entries = await list(page);
    expect(entries.map((e) => e.url.slice(origin.length))).toEqual(
      expect.arrayContaining([`/model/${WEIGHTS}`, "/model/config.json", "/model/tokenizer.json", "/wasm/simd.wasm"]),
    );
    expect(entries.find((e) => e.url.endsWith(WEIGHTS))?.bytes).toBe(WEIGHTS_BYTES);
    await page.close();

    page = await visit();
    const second = await load(page, "worker", { backend: "wasm" });
    expect(modelBytes()).toBe(0);
    expect(wasmBytes()).toBe(0);
    expect(second.logits).toEqual(expected);
    expect(downloadWorkerRequests).toBe(0);
    expect(originOf(second, WEIGHTS)).toEqual(["cache"]);
    expect(second.opened.filter((o) => o.origin === "network").map((o) => o.url)).toEqual([]);
    await page.close();
  });

  it("works from the window too (OPFS's asynchronous API): the worker's entries serve it, with zero model bytes", async () => {
    const page = await visit();
    const r = await load(page, "window");
    expect(modelBytes()).toBe(0);
    expect(r.logits).toEqual(expectedReference);
    await clear(page);
    const fresh = await load(page, "window");
    expect(served.get(`/model/${WEIGHTS}`)).toBe(WEIGHTS_BYTES);
    expect(fresh.logits).toEqual(expectedReference);
    await page.close();
  });

  it("an entry cut short on disk is detected and downloaded again, whole", async () => {
    const page = await visit();
    await load(page, "worker"); // make sure every entry is there
    const size = await page.evaluate((u) => (window as unknown as { truncateEntry(u: string, n: number): Promise<number> }).truncateEntry(u, 1000), `${origin}/model/${WEIGHTS}`);
    expect(size).toBe(1000);
    const r = await load(page, "worker");
    expect(served.get(`/model/${WEIGHTS}`)).toBe(WEIGHTS_BYTES);
    expect(modelBytes()).toBe(WEIGHTS_BYTES); // the other files still came from the cache
    expect(r.logits).toEqual(expectedReference);
    expect(originOf(r, WEIGHTS)).toEqual(["network"]);
    await load(page, "worker");
    expect(modelBytes()).toBe(0);
    await page.close();
  });

  it("a download killed mid-way fails clearly, leaves no entry, and the next visit downloads again", async () => {
    let page = await visit();
    await clear(page);
    cutWeightsAt = 3_000_000;
    try {
      await expect(load(page, "worker")).rejects.toThrow(new RegExp(`${WEIGHTS}.*(download|network|fetch)`, "i"));
    } finally {
      cutWeightsAt = null;
    }
    expect((await list(page)).some((e) => e.url.endsWith(WEIGHTS))).toBe(false);
    await page.close();
    page = await visit();
    const r = await load(page, "worker");
    expect(served.get(`/model/${WEIGHTS}`)).toBe(WEIGHTS_BYTES);
    expect(r.logits).toEqual(expectedReference);
    await page.close();
  });

  it("a page closed mid-download (its model and download workers ended) leaves no entry, and the next visit downloads again", async () => {
    let page = await visit();
    await clear(page);
    holdWeightsAt = 3_000_000;
    try {
      served = new Map();
      void page.evaluate((r) => (window as unknown as { loadViaClient(r: LoadRequest, p: string): Promise<unknown> }).loadViaClient(r, "ROMEO:"), request({})).catch(() => undefined);
      for (let i = 0; i < 200 && (served.get(`/model/${WEIGHTS}`) ?? 0) === 0; i++) await new Promise((ok) => setTimeout(ok, 50));
      expect(served.get(`/model/${WEIGHTS}`)).toBe(3_000_000);
      await new Promise((ok) => setTimeout(ok, 500)); // the bytes sent reach the entry's .bin
      await page.close();
    } finally {
      holdWeightsAt = null;
      for (const res of held.splice(0)) res.destroy();
    }
    page = await visit();
    expect((await list(page)).some((e) => e.url.endsWith(WEIGHTS))).toBe(false);
    const r = await load(page, "worker");
    expect(served.get(`/model/${WEIGHTS}`)).toBe(WEIGHTS_BYTES);
    expect(r.logits).toEqual(expectedReference);
    expect(r.warnings).toEqual([]);
    await load(page, "worker");
    expect(modelBytes()).toBe(0);
    await page.close();
  });

  it("without the download worker's script, the model's worker downloads and stores the files itself, and says so once", async () => {
    let page = await visit();
    await clear(page);
    downloadWorker = "missing";
    let r: LoadResult;
    try {
      r = await load(page, "worker");
    } finally {
      downloadWorker = null;
    }
    expect(r.logits).toEqual(expectedReference);
    expect(served.get(`/model/${WEIGHTS}`)).toBe(WEIGHTS_BYTES);
    expect(r.warnings).toEqual([expect.stringMatching(/^the download worker did not start \(.+\): downloading on the model's thread$/)]);
    await page.close();
    page = await visit();
    const second = await load(page, "worker");
    expect(modelBytes()).toBe(0);
    expect(second.logits).toEqual(expectedReference);
    // A quota that runs out mid-download there too: the load goes on uncached and leaves no entry.
    await clear(page);
    downloadWorker = "missing";
    try {
      r = await load(page, "worker", { failWritesAfter: 1_000_000 });
    } finally {
      downloadWorker = null;
    }
    expect(r.logits).toEqual(expectedReference);
    expect(r.warnings.find((w) => w.includes(WEIGHTS))).toMatch(/not caching .*model\.safetensors: it needs 11\.9 MiB .*loading it from the network without caching/);
    expect((await list(page)).some((e) => e.url.endsWith(WEIGHTS))).toBe(false);
    await page.close();
  });

  it("the download worker serves the downloads that follow each other, and ends once idle for a second", async () => {
    const page = await visit();
    const downloads = async (gapMs: number) => {
      await clear(page);
      downloadWorkerRequests = 0;
      const urls = ["config.json", "tokenizer_config.json"].map((f) => `${origin}/model/${f}`);
      await page.evaluate(([u, g]) => (window as unknown as { downloadAll(u: string[], g: number): Promise<void> }).downloadAll(u as string[], g as number), [urls, gapMs] as const);
      expect((await list(page)).length).toBe(2);
      return downloadWorkerRequests;
    };
    expect(await downloads(0)).toBe(1);
    expect(await downloads(1500)).toBe(2);
    await page.close();
  });

  it("reads of a cached entry let the worker's other tasks run (so the engine's threads start while the weights load)", async () => {
    const page = await visit();
    await load(page, "worker");
    const ran = await page.evaluate((u) => (window as unknown as { readsLetTasksRun(u: string, ms: number): Promise<boolean> }).readsLetTasksRun(u, 2000), `${origin}/model/${WEIGHTS}`);
    expect(ran).toBe(true);
    await page.close();
  });

  it("a host's HTML page for a file it lacks is never cached: not as config.json (no model there), nor as an optional file", async () => {
    const page = await visit();
    await clear(page);
    await expect(load(page, "worker", { model: `${origin}/spa/` })).rejects.toThrow(
      /no model folder at .*\/spa: .*\/spa\/config\.json was not found \(the server answered with an HTML page/,
    );
    expect(await list(page)).toEqual([]);
    const r = await load(page, "worker", { model: `${origin}/spa/model/` });
    expect(r.logits).toEqual(expectedReference);
    const urls = (await list(page)).map((e) => e.url.slice(origin.length));
    expect(urls).toEqual(expect.arrayContaining(["/spa/model/config.json", `/spa/model/${WEIGHTS}`]));
    expect(urls).not.toContain("/spa/model/generation_config.json");
    await page.close();
  });

  it("a file whose ETag changed on the server is downloaded again", async () => {
    const page = await visit();
    await load(page, "worker");
    etagVersion++;
    const r = await load(page, "worker");
    expect(served.get(`/model/${WEIGHTS}`)).toBe(WEIGHTS_BYTES);
    expect(served.get("/model/config.json")).toBe(statSync(join(MODEL_DIR, "config.json")).size);
    expect(r.logits).toEqual(expectedReference);
    const entries = await list(page);
    expect(entries.find((e) => e.url.endsWith(WEIGHTS))?.etag).toBe(`"v${etagVersion}-${WEIGHTS_BYTES}"`);
    await load(page, "worker");
    expect(modelBytes()).toBe(0);
    await page.close();
  });

  it("a file larger than the free quota is loaded uncached, with a message giving the figures", async () => {
    const page = await visit();
    await clear(page);
    const r = await load(page, "worker", { quota: 1_000_000 });
    expect(r.logits).toEqual(expectedReference);
    expect(originOf(r, WEIGHTS)).toEqual(["network"]);
    const warning = r.warnings.find((w) => w.includes(WEIGHTS)) ?? "";
    expect(warning).toMatch(/not caching .*model\.safetensors: it needs 11\.9 MiB and this origin has 1\.0 MiB free .*navigator\.storage\.estimate\(\)/);
    expect((await list(page)).some((e) => e.url.endsWith(WEIGHTS))).toBe(false);
    await page.close();
  });

  it("a quota that runs out mid-download: the load goes on uncached, says so, and leaves no entry", async () => {
    const page = await visit();
    await clear(page);
    // The download worker writes the files: its writes fail (the model worker's do not).
    downloadWorker = 1_000_000;
    let r: LoadResult;
    try {
      r = await load(page, "worker");
    } finally {
      downloadWorker = null;
    }
    expect(r.logits).toEqual(expectedReference);
    expect(r.warnings.find((w) => w.includes(WEIGHTS))).toMatch(/not caching .*model\.safetensors: it needs 11\.9 MiB and this origin has [\d.]+ MiB free .*loading it from the network without caching/);
    expect((await list(page)).some((e) => e.url.endsWith(WEIGHTS))).toBe(false);
    await page.close();
  });

  it("ModelClient with cache: true says where the model came from: the network, then the cache", async () => {
    let page = await visit();
    await clear(page);
    type Via = { model: { source: string; cacheWarnings: string[] }; text: string };
    const via = (p: Page) => {
      served = new Map();
      return p.evaluate(([r, prompt]) => (window as unknown as { loadViaClient(r: LoadRequest, p: string): Promise<Via> }).loadViaClient(r as LoadRequest, prompt as string), [request({}), "ROMEO:"] as const);
    };
    const first = await via(page);
    expect(first.model.source).toBe("network");
    expect(first.model.cacheWarnings).toEqual([]);
    expect(first.text).toBe(expectedText);
    expect(served.get(`/model/${WEIGHTS}`)).toBe(WEIGHTS_BYTES);
    await page.close();
    page = await visit();
    const second = await via(page);
    expect(second.model.source).toBe("cache");
    expect(modelBytes()).toBe(0);
    expect(second.text).toBe(expectedText);
    await page.close();
  });

  it("delete removes one entry, clear empties the cache, estimate and persist answer", async () => {
    const page = await visit();
    await load(page, "worker");
    const before = await list(page);
    expect(before.length).toBeGreaterThan(3);
    const configUrl = `${origin}/model/config.json`;
    expect(await page.evaluate((u) => (window as unknown as { deleteCached(u: string): Promise<boolean> }).deleteCached(u), configUrl)).toBe(true);
    expect((await list(page)).map((e) => e.url)).toEqual(before.map((e) => e.url).filter((u) => u !== configUrl));
    const estimate = await page.evaluate(() => (window as unknown as { estimateCache(): Promise<{ usage: number; quota: number }> }).estimateCache());
    expect(estimate.usage).toBeGreaterThanOrEqual(WEIGHTS_BYTES);
    expect(estimate.quota).toBeGreaterThan(estimate.usage);
    expect(typeof (await page.evaluate(() => (window as unknown as { persistCache(): Promise<boolean> }).persistCache()))).toBe("boolean");
    await clear(page);
    expect(await list(page)).toEqual([]);
    await load(page, "worker");
    expect(served.get(`/model/${WEIGHTS}`)).toBe(WEIGHTS_BYTES);
    await page.close();
  });
});
