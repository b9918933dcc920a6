// The browser demo end to end: build it with Vite, serve it on localhost (vite preview, with COOP/COEP),
// drive Debian's Chromium with playwright-core, and check that the page (loading the bundled model's GGUF
// by default, its folder by ?model=) generates exactly what the Node engine generates for the same prompt,
// seed and sampling options, with and without threads; that the stop button stops; that a bad folder shows
// a visible error. Saves the screenshot the README shows (docs/demo.png).
//
// Needs /usr/bin/chromium: `sudo apt-get install -y chromium` (Debian/Ubuntu); .ci/run installs it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { build, preview, type PreviewServer } from "vite";
import { chromium, type Browser, type Page } from "playwright-core";
import { createOpenAI, loadModel } from "../../src/api.js";
import type { ModelClient } from "../../src/browser/client.js";

const CHROMIUM = "/usr/bin/chromium";
const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"];
const CONFIG = resolve("demo/vite.config.ts");
const BUNDLED = resolve("models/shakespeare-tiny");
// The README's screenshot is refreshed on request (UPDATE_SCREENSHOT=1 npm test); otherwise a test run
// leaves the repository's files alone.
const SCREENSHOT = process.env.UPDATE_SCREENSHOT === "1" ? resolve("docs/demo.png") : join(tmpdir(), "mobilellm-demo.png");

const PROMPT = "ROMEO:\nWhat light through yonder window";
const OPTIONS = { temperature: 0.8, topK: 40, topP: 0.95, minP: 0.05, repetitionPenalty: 1.1, seed: 42, maxNewTokens: 32 };

if (!existsSync(CHROMIUM)) {
  throw new Error(
    `the browser end-to-end test drives Debian's Chromium at ${CHROMIUM}, which is not installed: ` +
      `install it with "sudo apt-get install -y chromium" (Debian/Ubuntu; .ci/run does this in CI), then run npm test again`,
  );
}

let server: PreviewServer;
let base: string;
let browser: Browser;
let expected: { text: string; tokens: number; stopReason: string };
const tmp = mkdtempSync(join(tmpdir(), "mobilellm-e2e-"));

beforeAll(async () => {
  const outDir = join(tmp, "site");
  const node = (async () => {
    const m = await loadModel();
    try {
      const r = await m.generate(PROMPT, OPTIONS).result;
      return { text: r.text, tokens: r.tokens.length, stopReason: r.stopReason };
    } finally {
      await m.dispose();
    }
  })();
  await build({ configFile: CONFIG, logLevel: "error", build: { outDir, emptyOutDir: true } });
  server = await preview({ configFile: CONFIG, logLevel: "error", build: { outDir }, preview: { host: "127.0.0.1", port: 0, strictPort: false } });
  base = (server.resolvedUrls?.local[0] ?? "").replace(/\/?$/, "/");
  if (!base.startsWith("http")) throw new Error("vite preview did not report its URL");
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  expected = await node;
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
  rmSync(tmp, { recursive: true, force: true });
});

async function openDemo(query = ""): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1200, height: 760 } });
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(base + query);
  try {
    await page.waitForSelector('#model-status[data-state="ready"]', { timeout: 60_000 });
  } catch (err) {
    const shown = await page.locator("#error").textContent().catch(() => "");
    throw new Error(`the demo did not load the bundled model: ${shown || errors.join("; ") || (err as Error).message}`);
  }
  return page;
}

async function setControls(page: Page, o: Record<string, number>, prompt: string): Promise<void> {
  await page.fill("#prompt", prompt);
  const ids: Record<string, string> = {
    temperature: "#temperature", topK: "#top-k", topP: "#top-p", minP: "#min-p",
    repetitionPenalty: "#repetition-penalty", seed: "#seed", maxNewTokens: "#max-tokens",
  };
  for (const [k, sel] of Object.entries(ids)) await page.fill(sel, String(o[k]));
}

/** Clicks Generate and waits for the end; returns the generated text and the token count shown. */
async function generate(page: Page): Promise<{ text: string; tokens: number; stopReason: string }> {
  await page.click("#generate");
  await page.waitForFunction(() => {
    const s = document.getElementById("output")?.dataset.state;
    return s !== undefined && s !== "running";
  }, undefined, { timeout: 60_000 });
  const state = (await page.locator("#output").getAttribute("data-state")) ?? "";
  if (state === "error") throw new Error(`generation failed on the page: ${await page.locator("#error").textContent()}`);
  return {
    text: (await page.locator("#out-text").textContent()) ?? "",
    tokens: Number(await page.locator("#stat-tokens").textContent()),
    stopReason: state,
  };
}

describe("the browser demo in headless Chromium", () => {
  it("generates from the bundled GGUF, with worker threads, exactly the text the Node engine generates for the same seed", async () => {
    const page = await openDemo();
    expect(await page.locator("#model-name").getAttribute("title")).toBe(`${base}models/shakespeare-tiny.gguf`);
    expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
    const cores = await page.evaluate(() => navigator.hardwareConcurrency);
    const threads = Math.min(8, cores);
    expect(await page.locator("#threads-note").getAttribute("data-threads")).toBe(String(threads));
    expect(await page.locator("#threads-note").textContent()).toMatch(/cross-origin isolated/);
    await setControls(page, OPTIONS, PROMPT);
    const got = await generate(page);
    expect(got).toEqual(expected);
    expect(expected.text.length).toBeGreaterThan(0);
    expect(await page.locator("#stat-speed").textContent()).toMatch(/^\d+(\.\d)?$/);
    expect(await page.locator("#stat-kv").textContent()).toMatch(/KiB of [\d.]+ MiB \(\d+ positions\)/);
    await page.screenshot({ path: SCREENSHOT });
    await page.close();
  });

  it("runs on one thread when the page is not cross-origin isolated, and says so, with the same text", async () => {
    const page = await openDemo("?coi=0");
    expect(await page.evaluate(() => crossOriginIsolated)).toBe(false);
    expect(await page.locator("#threads-note").getAttribute("data-threads")).toBe("1");
    expect(await page.locator("#threads-note").textContent()).toMatch(/^1 thread: the page is not cross-origin isolated/);
    await setControls(page, OPTIONS, PROMPT);
    expect(await generate(page)).toEqual(expected);
    await page.close();
  });

  it("loads the bundled folder by ?model=, and the stop button ends a long generation mid-way", async () => {
    const page = await openDemo("?model=./models/shakespeare-tiny/");
    expect(await page.locator("#model-name").getAttribute("title")).toBe(`${base}models/shakespeare-tiny`);
    await setControls(page, { ...OPTIONS, maxNewTokens: 3000 }, "ROMEO:\n");
    await page.click("#generate");
    await page.waitForFunction(() => Number(document.getElementById("stat-tokens")?.textContent) >= 8, undefined, { timeout: 30_000 });
    expect(await page.locator("#stop").isEnabled()).toBe(true);
    await page.click("#stop");
    await page.waitForFunction(() => document.getElementById("output")?.dataset.state !== "running", undefined, { timeout: 30_000 });
    expect(await page.locator("#output").getAttribute("data-state")).toBe("aborted");
    expect(await page.locator("#stat-stop").textContent()).toBe("stop button");
    expect(await page.locator("#model-status").textContent()).toBe("stopped");
    const tokens = Number(await page.locator("#stat-tokens").textContent());
    expect(tokens).toBeGreaterThanOrEqual(8);
    expect(tokens).toBeLessThan(3000);
    expect(await page.locator("#stop").isDisabled()).toBe(true);
    expect(await page.locator("#generate").isEnabled()).toBe(true);
    await page.close();
  });

  it("loads a folder the user picks, and files dropped on the page, then generates the same text", async () => {
    const page = await openDemo("?coi=0");
    await page.setInputFiles("#folder-input", BUNDLED);
    await page.waitForFunction(() => document.getElementById("model-name")?.textContent?.startsWith("shakespeare-tiny ·") && document.getElementById("model-status")?.dataset.state === "ready", undefined, { timeout: 60_000 });
    await setControls(page, OPTIONS, PROMPT);
    expect(await generate(page)).toEqual(expected);

    // A drop of the model's files (as a page script can build one: flat files, no folder entry).
    await page.evaluate(async () => {
      const dt = new DataTransfer();
      for (const f of ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors"]) {
        const blob = await (await fetch(`./models/shakespeare-tiny/${f}`)).blob();
        dt.items.add(new File([blob], f));
      }
      document.getElementById("drop-zone")?.dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
    });
    await page.waitForFunction(() => document.getElementById("model-name")?.textContent?.startsWith("the dropped files"), undefined, { timeout: 10_000 });
    await page.waitForFunction(() => /^(ready|error)$/.test(document.getElementById("model-status")?.dataset.state ?? ""), undefined, { timeout: 60_000 });
    expect(await page.locator("#error").textContent()).toBe("");
    expect(await generate(page)).toEqual(expected);
    await page.close();
  });

  it("a bad folder (no config.json, malformed safetensors) shows a visible error", async () => {
    const noConfig = join(tmp, "no-config");
    mkdirSync(noConfig);
    for (const f of ["tokenizer.json", "tokenizer_config.json", "model.safetensors"]) copyFileSync(join(BUNDLED, f), join(noConfig, f));
    const badWeights = join(tmp, "bad-weights");
    mkdirSync(badWeights);
    for (const f of ["config.json", "tokenizer.json", "tokenizer_config.json"]) copyFileSync(join(BUNDLED, f), join(badWeights, f));
    const header = Buffer.from('{"model.norm.weight": {"dtype": "F32", "shape": [320], "data_offsets": [0, 1280]', "utf8");
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(header.length + 200));
    writeFileSync(join(badWeights, "model.safetensors"), Buffer.concat([len, header]));

    const page = await openDemo();
    await page.setInputFiles("#folder-input", noConfig);
    await page.waitForSelector('#model-status[data-state="error"]', { timeout: 30_000 });
    expect(await page.locator("#error").isVisible()).toBe(true);
    expect(await page.locator("#error").textContent()).toMatch(/Could not load no-config: config\.json is missing from no-config/);
    expect(await page.locator("#generate").isDisabled()).toBe(true);

    await page.setInputFiles("#folder-input", badWeights);
    await page.waitForFunction(() => /bad-weights/.test(document.getElementById("error")?.textContent ?? ""), undefined, { timeout: 30_000 });
    expect(await page.locator("#error").isVisible()).toBe(true);
    expect(await page.locator("#error").textContent()).toMatch(/Could not load bad-weights: .*model\.safetensors/);
    await page.close();
  });
});

// The page's ModelClient (the demo exposes it as `client`, for the console), driven from the test: OpenAI's
// API in the page's worker against createOpenAI in Node, and a KV state kept in OPFS across a reload.
describe("the page's ModelClient in headless Chromium: OpenAI's API and states in OPFS", () => {
  type Page_ = { client: ModelClient };
  const messages = [{ role: "user" as const, content: "What news from Verona?" }];
  /** The model's end-of-sequence ids (generation_config.json), biased away so a stream runs until stopped. */
  const NO_END = { 1001: -100, 1007: -100, 1008: -100 };

  it("chat.completions.create, plain and streamed, answers as createOpenAI in Node; an abort ends a stream and frees its sequence; JSON output parses; a refused request is an OpenAI error with its status", async () => {
    const node = await loadModel();
    const api = createOpenAI(node);
    const want = await api.chat.completions.create({ model: "m", messages, max_tokens: 24, temperature: 0 });
    await api.close();
    await node.dispose();

    const page = await openDemo();
    const got = await page.evaluate(async ({ messages, NO_END }) => {
      const { client } = window as unknown as Page_;
      const plain = await client.chat.completions.create({ model: "m", messages, max_tokens: 24, temperature: 0 });
      const chunks = [];
      for await (const c of await client.chat.completions.create({ model: "m", messages, max_tokens: 24, temperature: 0, stream: true, stream_options: { include_usage: true } })) chunks.push(c);

      const ac = new AbortController();
      let read = 0;
      let ended = "done";
      const t0 = performance.now();
      try {
        const long = await client.completions.create({ model: "m", prompt: "ROMEO:", max_tokens: 3000, logit_bias: NO_END, stream: true }, { signal: ac.signal });
        for await (const _ of long) if (++read === 3) ac.abort();
      } catch (e) {
        ended = `${(e as Error).name} ${(e as { status?: number }).status}: ${(e as Error).message}`;
      }
      const abortMs = performance.now() - t0;
      const after = await client.completions.create({ model: "m", prompt: "ROMEO:", max_tokens: 3, temperature: 0 });

      const json = await client.chat.completions.create({ model: "m", messages, max_tokens: 60, response_format: { type: "json_object" } });
      const refused = async (f: () => Promise<unknown>) => f().then(() => "accepted", (e: Error & { status?: number }) => `${e.name} ${e.status}: ${e.message}`);
      return {
        plain,
        chunks,
        abort: { read, ended, abortMs, after: after.choices[0].text },
        json: json.choices[0].message.content,
        wrongType: await refused(() => client.chat.completions.create({ model: "m", messages, temperature: 9 })),
        streamRefused: await refused(() => client.chat.completions.create({ model: "m", messages, n: 99, stream: true })),
      };
    }, { messages, NO_END });
    await page.close();

    expect(got.plain.choices[0].message.content).toBe(want.choices[0].message.content);
    expect(got.plain.choices[0].finish_reason).toBe(want.choices[0].finish_reason);
    expect(got.plain.usage).toEqual(want.usage);
    expect(got.plain.id).toMatch(/^chatcmpl-[0-9a-f]{24}$/);
    expect(got.chunks[0].choices[0].delta).toEqual({ role: "assistant", content: "" });
    expect(got.chunks.map((c) => c.choices[0]?.delta.content ?? "").join("")).toBe(want.choices[0].message.content);
    expect(got.chunks.at(-2)?.choices[0].finish_reason).toBe(want.choices[0].finish_reason);
    expect(got.chunks.at(-1)).toMatchObject({ choices: [], usage: { completion_tokens: want.usage.completion_tokens } });
    expect(got.abort.read).toBeLessThan(50);
    expect(got.abort.ended).toMatch(/^(done|ModelClientError 499: the request was aborted)$/);
    expect(got.abort.after.length).toBeGreaterThan(0);
    expect(typeof JSON.parse(got.json ?? "")).toBe("object");
    expect(got.wrongType).toMatch(/^ModelClientError 400: temperature must be a number in \[0, 2\], got 9$/);
    expect(got.streamRefused).toMatch(/^ModelClientError 400: n must be an integer in \[1, 16\]/);
  });

  it("a state saved to OPFS and restored after a page reload continues exactly as without the reload", async () => {
    const PROMPT_ = "KING RICHARD:\nNow is the winter";
    const next = { temperature: 0.8, seed: 5, maxNewTokens: 16 };
    const page = await openDemo();
    const before = await page.evaluate(async ({ PROMPT_, next }) => {
      const { client } = window as unknown as Page_;
      const first = await client.generate(PROMPT_, { temperature: 0, maxNewTokens: 12 });
      const saved = await client.saveState("e2e-continuation");
      const cont = await client.generate(PROMPT_ + first.text, next);
      return { first: first.text, saved, cont: { tokens: cont.tokens, reused: cont.stats.reusedTokens } };
    }, { PROMPT_, next });
    expect(before.saved.tokens).toBeGreaterThan(12);
    expect(before.saved.bytes).toBeGreaterThan(0);

    // A reload ends the page, its worker and the model's KV cache; OPFS keeps the state.
    await page.reload();
    await page.waitForSelector('#model-status[data-state="ready"]', { timeout: 60_000 });
    const after = await page.evaluate(async ({ PROMPT_, next, first }) => {
      const { client } = window as unknown as Page_;
      const restored = await client.restoreState("e2e-continuation");
      const cont = await client.generate(PROMPT_ + first, next);
      const missing = await client.restoreState("no-such-state").then(() => "restored", (e: Error) => e.message);
      return { restored, cont: { tokens: cont.tokens, reused: cont.stats.reusedTokens }, missing };
    }, { PROMPT_, next, first: before.first });
    await page.close();

    expect(after.restored).toEqual(before.saved);
    expect(after.cont).toEqual(before.cont);
    expect(after.cont.reused).toBeGreaterThan(12);
    expect(after.missing).toMatch(/no saved state "no-such-state"/);

    // The same continuation in Node, and without the state nothing is reused.
    const node = await loadModel();
    expect((await node.generate(PROMPT_, { temperature: 0, maxNewTokens: 12 }).result).text).toBe(before.first);
    const cont = await node.generate(PROMPT_ + before.first, next).result;
    expect(cont.tokens).toEqual(before.cont.tokens);
    await node.dispose();
    const fresh = await openDemo();
    const cold = await fresh.evaluate(async ({ PROMPT_, next, first }) => {
      const c = await (window as unknown as Page_).client.generate(PROMPT_ + first, next);
      return { tokens: c.tokens, reused: c.stats.reusedTokens };
    }, { PROMPT_, next, first: before.first });
    await fresh.close();
    expect(cold).toEqual({ tokens: before.cont.tokens, reused: 0 });
  });
});

