// The page bench/browser.ts bundles with esbuild and drives in headless Chromium: it loads one engine (ours
// through ModelClient and its worker, or wllama) from the bench's server, and runs the timed requests. Both
// engines are timed the same way here: ready is from the call to the loaded model; a decode step is the
// interval between two streamed tokens arriving in the page (their median counts); prefill is each engine's
// own figure for its prompt (ours: stats.prefillMs; wllama: llama.cpp's timings.prompt_ms).
import { Wllama, type LoadedContextInfo } from "@wllama/wllama";
import { ModelClient } from "../src/browser/client.js";

export interface LoadRequest {
  engine: "ours" | "wllama";
  model: string;
  threads: number;
  contextLength: number;
  /**
   * wllama with its own defaults for threads (half the cores), GPU layers (all, on WebGPU when the browser
   * has an adapter) and server slots (4): what a page gets that passes only n_ctx.
   */
  wllamaDefaults?: boolean;
}

export interface Loaded {
  readyMs: number;
  crossOriginIsolated: boolean;
  /** What the engine says about itself once loaded (thread count, SIMD build, context, batch sizes, ...). */
  info: Record<string, unknown>;
}

export interface RunRequest {
  /**
   * The prompt text. Ours: encoded by the model's tokenizer to the wanted length. wllama: at least `tokens`
   * ASCII letters, cut to that length less the tokens llama.cpp adds around a prompt (its GGUF's synthetic
   * vocabulary has no pieces reachable from text, so every letter is one byte token).
   */
  text: string;
  tokens: number;
  newTokens: number;
}

export interface Ran {
  promptTokens: number;
  prefillMs: number;
  /** From the request to the first streamed token, in the page. */
  firstTokenMs: number;
  /** Intervals between consecutive streamed tokens, in the page. */
  stepsMs: number[];
  generatedTokens: number;
  /** The engine's own decode speed, for comparison with the page's. */
  engineDecodeTokPerS: number;
  /** Ours: the engine's own step times and how its threads ran the steps (GenerationStats.decodeSteps). */
  engineSteps?: { medianMs: number; split: number; solo: number };
}

let client: ModelClient | null = null;
let wllama: Wllama | null = null;
const nativeLog: string[] = [];

async function load(req: LoadRequest): Promise<Loaded> {
  const t0 = performance.now();
  if (req.engine === "ours") {
    client = new ModelClient(new Worker("/worker.js", { type: "module" }));
    const m = await client.load({ url: req.model }, { wasm: "/wasm/", threads: req.threads, contextLength: req.contextLength, cache: true });
    const readyMs = performance.now() - t0;
    const { name: _name, ...info } = m;
    return { readyMs, crossOriginIsolated, info };
  }
  // llama.cpp's own log says which build and settings it runs with (system_info, n_ctx, n_batch, ...).
  const keep = (args: unknown[]) => {
    const line = args.map(String).join(" ");
    console.log(`${(performance.now() - t0).toFixed(0)} ms ${line}`);
    if (/system_info|n_ctx|n_batch|n_threads|flash_attn|buffer size|backend|simd|SIMD|warn|error/i.test(line)) nativeLog.push(line.trim());
  };
  const logger = { debug: (...a: unknown[]) => keep(a), log: (...a: unknown[]) => keep(a), warn: (...a: unknown[]) => keep(a), error: (...a: unknown[]) => keep(a) };
  wllama = new Wllama({ default: new URL("/wllama/wllama.wasm", location.href).href }, { logger });
  const fair = {
    n_threads: req.threads,
    // CPU only: its default (99999) offloads every layer to WebGPU, which headless Chromium without a GPU
    // runs on SwiftShader, a software rasterizer (see docs/performance.md).
    n_gpu_layers: 0,
    // One request at a time here; its default of 4 slots only splits the same unified KV cache.
    n_parallel: 1,
  };
  await wllama.loadModelFromUrl(new URL(req.model, location.href).href, { n_ctx: req.contextLength, ...(req.wllamaDefaults ? {} : fair) });
  const readyMs = performance.now() - t0;
  const c: LoadedContextInfo = wllama.getLoadedContextInfo();
  const info: Record<string, unknown> = { multiThread: wllama.isMultithread(), threads: wllama.getNumThreads(), webgpu: wllama.isSupportWebGPU(), defaults: !!req.wllamaDefaults };
  for (const [k, v] of Object.entries(c)) if (typeof v !== "object") info[k] = v;
  info["log"] = nativeLog.slice(0, 60);
  return { readyMs, crossOriginIsolated, info };
}

/** Downloads `model` into the model cache (in a worker) without loading it: how long that takes alone. */
function download(model: string): Promise<{ ms: number; warnings: string[] }> {
  return new Promise((ok, fail) => {
    const w = new Worker("/download-bench.js", { type: "module" });
    w.onmessage = (e: MessageEvent<{ ms: number; warnings: string[] } | { error: string }>) => {
      w.terminate();
      if ("error" in e.data) fail(new Error(e.data.error));
      else ok(e.data);
    };
    w.onerror = (e) => fail(new Error(`the download worker failed: ${e.message}`));
    w.postMessage(new URL(model, location.href).href);
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function run(req: RunRequest): Promise<Ran> {
  const arrivals: number[] = [];
  const t0 = performance.now();
  if (client) {
    const r = await client.generate(req.text, { maxNewTokens: req.newTokens, temperature: 0 }, () => arrivals.push(performance.now()));
    const d = r.stats.decodeSteps;
    return { ...summary(t0, arrivals, r.stats.promptTokens, r.stats.prefillMs, r.stats.generatedTokens, r.stats.decodeTokensPerSecond), engineSteps: { medianMs: d.medianMs, split: d.split, solo: d.solo } };
  }
  if (!wllama) throw new Error("no engine loaded");
  const timed = await wllamaRun(req.text.slice(0, req.tokens - (await wllamaPromptOverhead())), req.newTokens, arrivals);
  return summary(t0, arrivals, timed.prompt_n, timed.prompt_ms, timed.predicted_n, timed.predicted_per_second);
}

interface Timings {
  prompt_n: number;
  prompt_ms: number;
  predicted_n: number;
  predicted_per_second: number;
}

let overhead: number | null = null;
/** How many tokens llama.cpp's tokenizer adds to a prompt (SentencePiece's leading "▁", as byte tokens). */
async function wllamaPromptOverhead(): Promise<number> {
  overhead ??= (await wllamaRun("a", 1, [])).prompt_n - 1;
  return overhead;
}

async function wllamaRun(prompt: string, newTokens: number, arrivals: number[]): Promise<Timings> {
  if (!wllama) throw new Error("no engine loaded");
  let timings: Timings | undefined;
  await wllama.createCompletion({
    prompt,
    max_tokens: newTokens,
    temperature: 0,
    // Not part of its TypeScript types, but read by llama.cpp's server: keep going past an end-of-text
    // token, and evaluate the whole prompt every time (no reuse of an earlier request's KV entries).
    ...({ ignore_eos: true, cache_prompt: false } as object),
    stream: true,
    onData: (chunk: { timings?: typeof timings }) => {
      arrivals.push(performance.now());
      if (chunk.timings) timings = chunk.timings;
    },
  });
  if (!timings) throw new Error("wllama returned no timings");
  // The last chunk carries the timings and no new token.
  arrivals.length = Math.min(arrivals.length, timings.predicted_n);
  return timings;
}

function summary(t0: number, arrivals: number[], promptTokens: number, prefillMs: number, generatedTokens: number, engineDecodeTokPerS: number): Ran {
  const stepsMs = arrivals.slice(1).map((t, i) => t - arrivals[i]);
  return { promptTokens, prefillMs, firstTokenMs: (arrivals[0] ?? NaN) - t0, stepsMs, generatedTokens, engineDecodeTokPerS };
}

Object.assign(window, { benchLoad: load, benchRun: run, benchDownload: download, median });
