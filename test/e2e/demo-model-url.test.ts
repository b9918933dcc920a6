// The demo loading a full-width GGUF by URL (?model=), in headless Chromium: a 2-layer MobileLLM-Pro at
// the real widths (hidden 1280, ffn 6144, 20 heads / 4 KV heads) with an 8,192-token vocabulary (random
// weights, made once here: synth + convert, 37 MB), served from the demo's own preview server by a
// middleware that counts the model bytes it sends. The real 202,048-token vocabulary would make the file
// 176 MB, most of it the embedding table, and every visit below 4-5x slower (each load downloads or reads
// the whole file, caches it and prepares it) without checking anything more. The page's text
// equals Node's for the same seed and prompt; the second visit reads no model byte from the server and
// says "cache"; a cache entry cut short is detected and fetched again; the clear button empties the
// cache; the progress reports run download, then prepare, then threads, never going back. The tests run
// in order on one browser profile: each visit finds the cache the previous one left.
//
// Needs /usr/bin/chromium: `sudo apt-get install -y chromium` (Debian/Ubuntu); .ci/run installs it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { IncomingMessage, ServerResponse } from "node:http";
import { build, preview, type Plugin, type PreviewServer } from "vite";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { loadModel } from "../../src/api.js";
import { PRESETS } from "../../src/model/config.js";
import { synthesizeCheckpoint } from "../../src/node/synth.js";
import { convertFolder } from "../../src/node/gguf-files.js";
import type { LoadProgress } from "../../src/session/load-progress.js";

const CHROMIUM = "/usr/bin/chromium";
const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"];
const CONFIG = resolve("demo/vite.config.ts");
const MODEL_PATH = "/test-models/pro-2-layers.gguf";
const VOCAB = 8192;
const PROMPT = "The capital of France is";
const OPTIONS = { temperature: 0.8, topK: 40, topP: 0.95, minP: 0.05, repetitionPenalty: 1.1, seed: 7, maxNewTokens: 8 };

if (!existsSync(CHROMIUM)) {
  throw new Error(`the demo's model URL test drives Debian's Chromium at ${CHROMIUM}: install it with "sudo apt-get install -y chromium"`);
}

const tmp = mkdtempSync(join(tmpdir(), "mobilellm-demo-url-"));
const ggufPath = join(tmp, "pro-2-layers.gguf");
let ggufSize = 0;
/** Body bytes of the model the server sent since the last reset. */
let served = 0;
let server: PreviewServer;
let base: string;
let context: BrowserContext;
let expected: string;

/** Serves the test's GGUF (with Content-Length and an ETag, as a static server does) and counts its bytes. */
function testModel(): Plugin {
  const middleware = (req: IncomingMessage, res: ServerResponse, next: () => void) => {
    if ((req.url ?? "").split("?")[0] !== MODEL_PATH) return next();
    const bytes = readFileSync(ggufPath);
    res.setHeader("Content-Type", "application/octet-stream");
    res.setHeader("Content-Length", String(bytes.length));
    res.setHeader("ETag", `"${bytes.length}"`);
    if (req.method === "HEAD") return res.end();
    served += bytes.length;
    res.end(bytes);
  };
  return { name: "test-model", configurePreviewServer: (s) => void s.middlewares.use(middleware) };
}

beforeAll(async () => {
  const dir = join(tmp, "folder");
  await synthesizeCheckpoint({ presetJson: PRESETS["mobilellm-pro"].json, presetName: "mobilellm-pro", outDir: dir, seed: 5, layers: 2, vocab: VOCAB, maxShardBytes: 1e9 });
  await convertFolder(dir, ggufPath);
  rmSync(dir, { recursive: true, force: true });
  ggufSize = statSync(ggufPath).size;
  const outDir = join(tmp, "site");
  const site = build({ configFile: CONFIG, logLevel: "error", build: { outDir, emptyOutDir: true } });
  const node = await loadModel(ggufPath, { threads: 1 });
  try {
    expected = (await node.generate(PROMPT, OPTIONS).result).text;
  } finally {
    await node.dispose();
  }
  await site;
  server = await preview({ configFile: CONFIG, logLevel: "error", plugins: [testModel()], build: { outDir }, preview: { host: "127.0.0.1", port: 0, strictPort: false } });
  base = (server.resolvedUrls?.local[0] ?? "").replace(/\/?$/, "/");
  if (!base.startsWith("http")) throw new Error("vite preview did not report its URL");
  context = await chromium.launchPersistentContext(join(tmp, "profile"), { executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}, 180_000);

afterAll(async () => {
  await context?.close();
  await server?.close();
  rmSync(tmp, { recursive: true, force: true });
});

/** Opens the demo on the test model; resolves once body[data-state] is ready (or fails with the page's error). */
async function visit(): Promise<{ page: Page; progress: LoadProgress[] }> {
  const page = await context.newPage();
  await page.addInitScript(() => {
    const events: unknown[] = [];
    Object.assign(window, { progressEvents: events });
    document.addEventListener("mobilellm-progress", (e) => events.push((e as CustomEvent).detail));
  });
  await page.goto(`${base}?model=${MODEL_PATH}`);
  await page.waitForFunction(() => /^(ready|error)$/.test(document.body.dataset.state ?? ""), undefined, { timeout: 90_000 });
  if ((await page.evaluate(() => document.body.dataset.state)) === "error") {
    throw new Error(`the demo did not load the model: ${await page.locator("#error").textContent()}`);
  }
  const progress = (await page.evaluate(() => (window as unknown as { progressEvents: LoadProgress[] }).progressEvents)) ?? [];
  return { page, progress };
}

async function generate(page: Page): Promise<string> {
  await page.fill("#prompt", PROMPT);
  const ids: Record<string, string> = {
    temperature: "#temperature", topK: "#top-k", topP: "#top-p", minP: "#min-p",
    repetitionPenalty: "#repetition-penalty", seed: "#seed", maxNewTokens: "#max-tokens",
  };
  for (const [k, sel] of Object.entries(ids)) await page.fill(sel, String(OPTIONS[k as keyof typeof OPTIONS]));
  await page.click("#generate");
  await page.waitForFunction(() => {
    const s = document.getElementById("output")?.dataset.state;
    return s !== undefined && s !== "running";
  }, undefined, { timeout: 60_000 });
  return (await page.locator("#out-text").textContent()) ?? "";
}

/** Files in the cache's OPFS directory (entries are <key>.bin + <key>.json). */
function cacheFiles(page: Page): Promise<string[]> {
  return page.evaluate(async () => {
    const root = await navigator.storage.getDirectory();
    const dir = await root.getDirectoryHandle("mobilellm-models").catch(() => null);
    const names: string[] = [];
    if (dir === null) return names;
    for await (const name of (dir as unknown as { keys(): AsyncIterable<string> }).keys()) names.push(name);
    return names;
  });
}

describe("the demo with ?model=<a .gguf URL>", () => {
  it("first visit: streamed from the network with download progress, then prepare; the text equals Node's", async () => {
    served = 0;
    const { page, progress } = await visit();
    expect(await page.evaluate(() => document.body.dataset.source)).toBe("network");
    expect(await page.locator("#model-source").textContent()).toBe("from the network");
    expect(served).toBe(ggufSize);
    // Progress: download first (from its first bytes), then prepare, then threads, then ready; never back,
    // bytes never down.
    const order = ["download", "prepare", "threads", "ready"];
    expect(progress[0].phase).toBe("download");
    expect(progress.some((p) => p.phase === "prepare")).toBe(true);
    expect(progress.at(-2)?.phase).toBe("threads");
    expect(progress.at(-1)?.phase).toBe("ready");
    for (let i = 1; i < progress.length; i++) {
      const [a, b] = [progress[i - 1], progress[i]];
      expect(order.indexOf(b.phase)).toBeGreaterThanOrEqual(order.indexOf(a.phase));
      if (a.phase === b.phase) expect(b.bytes).toBeGreaterThanOrEqual(a.bytes);
      expect(b.elapsedMs).toBeGreaterThanOrEqual(a.elapsedMs);
    }
    expect(progress.every((p) => p.totalBytes === ggufSize)).toBe(true);
    expect(progress.filter((p) => p.phase === "download").at(-1)?.bytes).toBe(ggufSize);
    expect(await page.locator("#load-progress").getAttribute("data-phase")).not.toBeNull();
    expect(await generate(page)).toBe(expected);
    expect(expected.length).toBeGreaterThan(0);
    await page.close();
  });

  it("second visit: no model byte from the server, source cache, the same text", async () => {
    served = 0;
    const { page, progress } = await visit();
    expect(served).toBe(0);
    expect(await page.evaluate(() => document.body.dataset.source)).toBe("cache");
    expect(await page.locator("#model-source").textContent()).toBe("from the cache");
    expect(progress[0].phase).toBe("prepare");
    expect(await generate(page)).toBe(expected);
    await page.close();
  });

  it("a cache entry cut short is detected and fetched again whole; the clear button empties the cache", async () => {
    // Any document of the origin reaches its OPFS: a small file the demo serves, which loads no model.
    const page = await context.newPage();
    await page.goto(`${base}models/shakespeare-tiny/config.json`);
    // Cut the stored model as a page killed mid-write would leave it (its .json kept).
    const kept = await page.evaluate(async (url) => {
      const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(url)));
      const key = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
      const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle("mobilellm-models");
      const handle = await dir.getFileHandle(`${key}.bin`);
      const w = await handle.createWritable({ keepExistingData: true });
      await w.truncate(1 << 20);
      await w.close();
      return (await handle.getFile()).size;
    }, new URL(MODEL_PATH, base).href);
    expect(kept).toBe(1 << 20);
    await page.close();

    served = 0;
    const again = (await visit()).page;
    expect(served).toBe(ggufSize);
    expect(await again.evaluate(() => document.body.dataset.source)).toBe("network");
    expect(await generate(again)).toBe(expected);

    expect((await cacheFiles(again)).filter((n) => n.endsWith(".json")).length).toBeGreaterThan(0);
    expect(Number(await again.locator("#cache-info").getAttribute("data-entries"))).toBeGreaterThan(0);
    await again.click("#clear-cache");
    await again.waitForFunction(() => document.getElementById("cache-info")?.dataset.entries === "0", undefined, { timeout: 10_000 });
    expect(await cacheFiles(again)).toEqual([]);
    await again.close();
  });
});
