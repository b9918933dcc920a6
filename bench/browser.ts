// This engine and wllama (@wllama/wllama: llama.cpp compiled to Wasm) side by side in one headless Chromium,
// on the same weights: ours loads the GGUF `mobilellm convert` writes, through ModelClient and its worker;
// wllama loads the llama-architecture Q4_0 GGUF of the same checkpoint that bench/llama-gguf.ts writes
// (every layer global there: llama.cpp has no MobileLLM-Pro sliding pattern). Figures are printed, never
// asserted.
//
// The page (bench/browser-page.ts, bundled with esbuild) is served from localhost with COOP/COEP, so it is
// cross-origin isolated and both engines can run threads. Each round starts by timing our GGUF's download
// alone: a new browser on an empty profile fetches it into the model cache (bench/browser-download.ts) and
// loads nothing. Then for each thread count and engine (the engines alternate which goes first), in a fresh
// browser profile:
//   visit 1  a new browser on an empty profile loads the model: ready = download + preparation (the server
//            also times the model's GET: from the request to its last byte);
//   visit 2  a new browser on the same profile loads it again, from each engine's own cache (ours: the
//            Origin Private File System through ModelCache; wllama: its CacheManager, also OPFS), then runs
//            an untimed warm-up request and a prompt of each length in --prefill and --decode-at, each
//            followed by --new-tokens greedy tokens (end-of-text ignored by wllama; ours stops on one).
// A decode figure is 1000 / the median interval between two tokens streamed to the page, leaving out the
// first STEADY_AFTER intervals of each stream (the engine's threads and V8's optimizing tier settle there):
// a steady figure over --new-tokens - STEADY_AFTER - 1 intervals, printed with its p10 and p90.
// After each of our visits, the same GGUF runs the same requests in Node, in this process (loadModel and
// generate, the thread count and context of the page, no browser running meanwhile), timed the same way:
// the page's decode over Node's is what a user of the page gives up against one of Node (a second table;
// --no-node leaves it out).
// Both engines get the same context size, thread count, prompt lengths and greedy sampling; wllama runs on
// the CPU (n_gpu_layers 0) with one server slot. Peak renderer memory is the largest sum of the resident
// sets (/proc) of the browser's renderer processes during the visit, sampled every 100 ms. The table shows
// medians over rounds.
//
//   npm run bench:browser -- --model-dir /tmp/mlp-synth --ours /tmp/mlp-synth.gguf --peer /tmp/wllama-peer.gguf
//   npm run bench:browser -- ... --threads 1,2 --rounds 2 --prefill 512 --decode-at 512,2048 --new-tokens 32
//
// --model-dir is the checkpoint folder both GGUFs hold (its tokenizer makes our prompts exactly PREFILL
// tokens long); --peer is written from it when missing (or of the wrong size); --prepare only writes it.
// --only ours|wllama runs one side. --wllama-defaults loads wllama with its own defaults (threads, WebGPU
// layers, server slots) and lets the browser look for a GPU, to see what a page gets that sets only n_ctx.
// BENCH_CONSOLE=1 prints the page's console (llama.cpp's log included). Needs /usr/bin/chromium.
import { createReadStream, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { build } from "esbuild";
import { chromium, type BrowserContext } from "playwright-core";
import { loadConfig } from "../src/node/bundled.js";
import { openCheckpoint } from "../src/node/folder.js";
import { writeGgufFile } from "../src/node/gguf-files.js";
import { encodeGgufHeader } from "../src/model/checkpoint/gguf-writer.js";
import { resolveTensorNames } from "../src/model/tensor-names.js";
import { TextTokenizer } from "../src/text/tokenizer.js";
import { loadModel } from "../src/api.js";
import { llamaGguf } from "./llama-gguf.js";
import type { Loaded, LoadRequest, Ran, RunRequest } from "./browser-page.js";
import { arg, intList } from "./args.js";

// ---------------------------------------------------------------------------------------------------------
// Options

function required(name: string): string {
  const v = arg(name);
  if (!v) throw new Error(`--${name} is required (see the header of bench/browser.ts)`);
  return resolve(v);
}

const MODEL_DIR = required("model-dir");
const OURS_GGUF = required("ours");
const PEER_GGUF = required("peer");
const THREADS = intList(arg("threads") ?? "1,2");
const ROUNDS = intList(arg("rounds") ?? "2")[0];
const PREFILL = intList(arg("prefill") ?? "512")[0];
const DECODE_AT = intList(arg("decode-at") ?? "512,2048").sort((a, b) => a - b);
const NEW_TOKENS = intList(arg("new-tokens") ?? "64")[0];
/** Intervals at the start of each stream left out of the decode figure. */
const STEADY_AFTER = 8;
if (NEW_TOKENS < STEADY_AFTER + 9) throw new Error(`--new-tokens must be at least ${STEADY_AFTER + 9}: a decode figure leaves out the first ${STEADY_AFTER} intervals and needs 8 more`);
/** wllama with its defaults (threads, WebGPU layers, slots) in a browser with a software GPU: see the page. */
const WLLAMA_DEFAULTS = process.argv.includes("--wllama-defaults");
const ENGINES = (arg("only") ? [arg("only")] : ["ours", "wllama"]) as Array<"ours" | "wllama">;
/** Our requests also run in Node after each of our visits (see the header). */
const NODE = ENGINES.includes("ours") && !process.argv.includes("--no-node");
/** Room for the longest prompt and its new tokens, the same for both engines. */
const CONTEXT = Math.ceil((Math.max(PREFILL, ...DECODE_AT) + NEW_TOKENS + 16) / 256) * 256;
const WARMUP_TOKENS = 16;
const CHROMIUM = "/usr/bin/chromium";
const CHROMIUM_ARGS = ["--headless", "--no-sandbox", ...(WLLAMA_DEFAULTS ? [] : ["--disable-gpu"]), "--disable-background-networking", "--disable-component-update", "--no-first-run"];
const MIB = 1 << 20;
const seconds = (t0: number) => ((performance.now() - t0) / 1000).toFixed(1);
if (!existsSync(CHROMIUM)) throw new Error(`bench:browser drives Debian's Chromium at ${CHROMIUM}: install it with "sudo apt-get install -y chromium"`);
for (const f of [OURS_GGUF, join(MODEL_DIR, "config.json"), join(MODEL_DIR, "tokenizer.json")]) if (!existsSync(f)) throw new Error(`${f} does not exist`);

// ---------------------------------------------------------------------------------------------------------
// Inputs: wllama's GGUF, and prompts of exact lengths

async function peerGguf(): Promise<void> {
  const config = loadConfig(MODEL_DIR);
  const ckpt = await openCheckpoint(MODEL_DIR);
  try {
    const { metadata, tensors } = llamaGguf({ ckpt, config, names: resolveTensorNames(config, ckpt), name: "MobileLLM-Pro shapes, synthetic weights, all layers global" });
    const expected = encodeGgufHeader(metadata, tensors).fileSize;
    if (existsSync(PEER_GGUF) && statSync(PEER_GGUF).size === expected) return console.log(`reusing ${PEER_GGUF} (${(expected / 1e9).toFixed(2)} GB)`);
    const t0 = performance.now();
    await writeGgufFile(PEER_GGUF, metadata, tensors);
    console.log(`wllama's GGUF (llama, Q4_0, all layers global, ${(expected / 1e9).toFixed(2)} GB) written to ${PEER_GGUF} in ${seconds(t0)} s`);
  } finally {
    await ckpt.close();
  }
}

const tokenizer = new TextTokenizer({
  tokenizer: JSON.parse(readFileSync(join(MODEL_DIR, "tokenizer.json"), "utf8")),
  tokenizerConfig: existsSync(join(MODEL_DIR, "tokenizer_config.json")) ? JSON.parse(readFileSync(join(MODEL_DIR, "tokenizer_config.json"), "utf8")) : {},
});
const WORDS = "time river stone light north garden paper window music silver orange market winter forest bridge letter".split(" ");

/** A text our tokenizer encodes (BOS included) to exactly n tokens; `seed` changes its first word. */
function textOfTokens(n: number, seed: number): string {
  const words: string[] = [];
  let count = tokenizer.encode("").length;
  for (let i = 0; count < n; i++) {
    const w = ` ${WORDS[(seed * 5 + i) % WORDS.length]}`;
    words.push(w);
    count += tokenizer.encode(w, false).length;
  }
  // Word-level counts can differ from the whole text's at a word boundary: settle on the exact length.
  for (let tries = 0; tries < 64; tries++) {
    const have = tokenizer.encode(words.join("")).length;
    if (have === n) return words.join("");
    if (have > n) words.pop();
    else words.push(" a");
  }
  throw new Error(`no text of exactly ${n} tokens found`);
}

/** n letters for wllama's prompt (each a byte token of its synthetic vocabulary); `seed` changes the first. */
const lettersOf = (n: number, seed: number) => Array.from({ length: n }, (_, i) => String.fromCharCode(97 + ((i * 7 + seed) % 26))).join("");

// ---------------------------------------------------------------------------------------------------------
// The page and its server

const bundle = await build({
  // The engine's thread workers and the cache's download worker are started from the worker as
  // new URL("./pool-worker.js", import.meta.url) and new URL("./download-worker.js", import.meta.url).
  entryPoints: {
    app: resolve("bench/browser-page.ts"),
    worker: resolve("src/browser/worker.ts"),
    "pool-worker": resolve("src/browser/pool-worker.ts"),
    "download-worker": resolve("src/browser/download-worker.ts"),
    "download-bench": resolve("bench/browser-download.ts"),
  },
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  outdir: "/bundle",
  write: false,
  logLevel: "silent",
});
const scripts = new Map(bundle.outputFiles.map((f) => [f.path.replace(/^\/bundle/, ""), f.text]));
const FILES: Record<string, string> = {
  "/model/ours.gguf": OURS_GGUF,
  "/model/wllama.gguf": PEER_GGUF,
  "/wllama/wllama.wasm": resolve("node_modules/@wllama/wllama/esm/wasm/wllama.wasm"),
};
for (const f of readdirSync("build").filter((f) => f.endsWith(".wasm"))) FILES[`/wasm/${f}`] = resolve("build", f);
/** Body bytes sent for the model files since the last reset: the second visit must read none. */
let modelBytesServed = 0;
/** How long the last GET of a whole model file took, from its request to its last byte handed to the socket (ms). */
let modelGetMs = NaN;

function sendFile(req: IncomingMessage, res: ServerResponse, path: string): void {
  const st = statSync(path);
  res.setHeader("Content-Type", path.endsWith(".wasm") ? "application/wasm" : "application/octet-stream");
  res.setHeader("Accept-Ranges", "bytes");
  res.setHeader("ETag", `"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`);
  res.setHeader("Last-Modified", st.mtime.toUTCString());
  res.setHeader("Cache-Control", "no-cache");
  const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? "");
  let [start, end] = [0, st.size - 1];
  if (range) {
    start = Number(range[1]);
    end = range[2] === "" ? st.size - 1 : Math.min(Number(range[2]), st.size - 1);
    if (start >= st.size || end < start) {
      res.writeHead(416, { "Content-Range": `bytes */${st.size}` });
      return void res.end();
    }
    res.statusCode = 206;
    res.setHeader("Content-Range", `bytes ${start}-${end}/${st.size}`);
  }
  res.setHeader("Content-Length", String(end - start + 1));
  if (req.method === "HEAD") return void res.end();
  const stream = createReadStream(path, { start, end, highWaterMark: 4 * MIB });
  if (path.endsWith(".gguf")) {
    const t0 = performance.now();
    stream.on("data", (c) => (modelBytesServed += c.length));
    if (!range) res.on("finish", () => (modelGetMs = performance.now() - t0));
  }
  stream.pipe(res);
}

const server = createServer((req, res) => {
  // Cross-origin isolated: SharedArrayBuffer, hence threads, for both engines.
  res.setHeader("Cross-Origin-Opener-Policy", "same-origin");
  res.setHeader("Cross-Origin-Embedder-Policy", "require-corp");
  res.setHeader("Cross-Origin-Resource-Policy", "same-origin");
  const path = (req.url ?? "/").split("?")[0];
  if (path === "/") {
    res.setHeader("Content-Type", "text/html");
    return void res.end(`<!doctype html><meta charset=utf-8><title>bench:browser</title><script type=module src="/app.js"></script>`);
  }
  const script = scripts.get(path.replace(/^\//, "/"));
  if (script !== undefined) {
    res.setHeader("Content-Type", "text/javascript");
    return void res.end(script);
  }
  if (FILES[path]) return sendFile(req, res, FILES[path]);
  if (process.env.BENCH_CONSOLE) console.error(`404 ${req.method} ${req.url}`);
  res.statusCode = 404;
  res.end("not found");
});

// ---------------------------------------------------------------------------------------------------------
// Peak renderer memory, from /proc

function processTable(): Map<number, { ppid: number; rss: number; renderer: boolean }> {
  const table = new Map<number, { ppid: number; rss: number; renderer: boolean }>();
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const rss = Number(fields[21]) * 4096; // resident pages
      table.set(Number(d), { ppid: Number(fields[1]), rss, renderer: readFileSync(`/proc/${d}/cmdline`, "utf8").includes("--type=renderer") });
    } catch {
      // the process ended while being read
    }
  }
  return table;
}

/** The renderer processes descended from the browser whose profile is `profile`. */
function rendererPids(profile: string): number[] {
  const table = processTable();
  const roots = new Set<number>();
  for (const pid of table.keys()) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(`--user-data-dir=${profile}`)) roots.add(pid);
    } catch {
      // ended
    }
  }
  const pids: number[] = [];
  for (const [pid, p] of table) {
    if (!p.renderer) continue;
    for (let up = p.ppid, depth = 0; up > 1 && depth < 8; up = table.get(up)?.ppid ?? 0, depth++) {
      if (roots.has(up)) {
        pids.push(pid);
        break;
      }
    }
  }
  return pids;
}

/** Resident bytes of one process (0 once it has ended). */
function rssOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[21]) * 4096;
  } catch {
    return 0;
  }
}

/**
 * The peak of the renderers' resident bytes, sampled every 100 ms. Finding the renderers means reading every
 * process's stat and command line (about 2 ms of a core), which this process did every 100 ms at first: on
 * two cores that slowed the page's 2-thread decode (0.93x Node's, against 1.02-1.05x without it). So the
 * renderers are looked up once a second (a page gets its renderer at navigation and keeps it) and the
 * samples between read only their own stat files.
 */
class RendererPeak {
  peak = 0;
  private pids: number[] = [];
  private samples = 0;
  constructor(private readonly profile: string) {}
  sample(): void {
    if (this.samples++ % 10 === 0 || this.pids.length === 0) this.pids = rendererPids(this.profile);
    this.peak = Math.max(this.peak, this.pids.reduce((sum, pid) => sum + rssOf(pid), 0));
  }
}

// ---------------------------------------------------------------------------------------------------------
// Rounds

interface Visit {
  loaded: Loaded;
  modelBytes: number;
  /** The model's GET in this visit, from its request to its last byte (ms; NaN when none). */
  getMs: number;
  peakRss: number;
  runs: Ran[];
}

async function visit(profile: string, engine: "ours" | "wllama", threads: number, runs: RunRequest[]): Promise<Visit> {
  const memory = new RendererPeak(profile);
  const timer = setInterval(() => memory.sample(), 100);
  const context: BrowserContext = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    page.on("pageerror", (e) => console.error(`page error: ${e.message}`));
    if (process.env.BENCH_CONSOLE) page.on("console", (m) => console.error(`console: ${m.text()}`));
    await page.goto(origin);
    await page.waitForFunction(() => "benchLoad" in window);
    modelBytesServed = 0;
    modelGetMs = NaN;
    const req: LoadRequest = { engine, model: `/model/${engine}.gguf`, threads, contextLength: CONTEXT, wllamaDefaults: WLLAMA_DEFAULTS };
    const loaded = await page.evaluate((r) => (window as unknown as { benchLoad(r: LoadRequest): Promise<Loaded> }).benchLoad(r), req);
    const modelBytes = modelBytesServed;
    const getMs = modelGetMs;
    const ran: Ran[] = [];
    for (const r of runs) ran.push(await page.evaluate((q) => (window as unknown as { benchRun(q: RunRequest): Promise<Ran> }).benchRun(q), r));
    memory.sample();
    return { loaded, modelBytes, getMs, peakRss: memory.peak, runs: ran };
  } finally {
    clearInterval(timer);
    await context.close();
  }
}

/** Our GGUF downloaded into the model cache of a new profile, nothing loaded: the download's time alone (ms). */
async function downloadAlone(): Promise<number> {
  const profile = mkdtempSync(join(tmpdir(), "bench-browser-download-"));
  const context: BrowserContext = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    await page.goto(origin);
    if (process.env.BENCH_CONSOLE) page.on("console", (m) => console.error(`console: ${m.text()}`));
    await page.waitForFunction(() => "benchDownload" in window);
    const r = await page.evaluate((u) => (window as unknown as { benchDownload(u: string): Promise<{ ms: number; warnings: string[] }> }).benchDownload(u), "/model/ours.gguf");
    if (r.warnings.length > 0) console.log(`download alone: ${r.warnings.join("; ")}`);
    return r.ms;
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

/**
 * Our GGUF's requests in Node, the page's way: loaded with the page's thread count and context, each
 * request's tokens timed as they arrive from generate (the page times them as its worker's messages arrive).
 */
async function nodeVisit(threads: number, runs: RunRequest[]): Promise<{ threads: number; simd: string; runs: Ran[] }> {
  const model = await loadModel(OURS_GGUF, { threads, contextLength: CONTEXT });
  try {
    const ran: Ran[] = [];
    for (const r of runs) {
      const arrivals: number[] = [];
      const t0 = performance.now();
      const g = model.generate(r.text, { maxNewTokens: r.newTokens, temperature: 0 });
      for await (const _ of g) arrivals.push(performance.now());
      const { stats } = await g.result;
      ran.push({
        promptTokens: stats.promptTokens,
        prefillMs: stats.prefillMs,
        firstTokenMs: (arrivals[0] ?? NaN) - t0,
        stepsMs: arrivals.slice(1).map((t, i) => t - arrivals[i]),
        generatedTokens: stats.generatedTokens,
        engineDecodeTokPerS: stats.decodeTokensPerSecond,
        engineSteps: { medianMs: stats.decodeSteps.medianMs, split: stats.decodeSteps.split, solo: stats.decodeSteps.solo },
      });
    }
    return { threads: model.info.threads, simd: model.info.simd?.variant ?? "no Wasm", runs: ran };
  } finally {
    await model.dispose();
  }
}

/** Records each run's figures under `engine` and describes them, one entry per prompt length. */
function describeRuns(engine: string, threads: number, runs: Ran[], lengths: number[]): string[] {
  return runs.map((r, i) => {
    const n = lengths[i];
    if (n === PREFILL) record(engine, threads, "prefillTokPerS", (r.promptTokens / r.prefillMs) * 1000);
    const steady = r.stepsMs.slice(STEADY_AFTER);
    if (DECODE_AT.includes(n)) record(engine, threads, `decode${n}`, 1000 / median(steady));
    const q = (p: number) => [...steady].sort((a, b) => a - b)[Math.floor(p * (steady.length - 1))]?.toFixed(1);
    const split = r.engineSteps ? `; engine: steps p50 ${r.engineSteps.medianMs.toFixed(1)} ms, ${r.engineSteps.split} split / ${r.engineSteps.solo} solo` : "";
    return `${n}: prompt ${r.promptTokens} in ${r.prefillMs.toFixed(0)} ms, ${r.generatedTokens} tokens, steady steps (${steady.length}) p10 ${q(0.1)} / p50 ${median(steady).toFixed(1)} / p90 ${q(0.9)} ms (engine says ${r.engineDecodeTokPerS.toFixed(1)} tok/s${split})`;
  });
}

function median(xs: number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

type Metric = "downloadMs" | "firstMs" | "firstGetMs" | "secondMs" | "prefillTokPerS" | `decode${number}` | "peakMiB";
const results = new Map<string, number[]>(); // `${engine} ${threads} ${metric}` -> one figure per round
const record = (engine: string, threads: number, metric: Metric, v: number) => {
  const k = `${engine} ${threads} ${metric}`;
  results.set(k, [...(results.get(k) ?? []), v]);
};
const infos = new Map<string, Loaded["info"]>();

await peerGguf();
if (process.argv.includes("--prepare")) process.exit(0);
await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
console.log(
  `headless Chromium, cross-origin isolated page; context ${CONTEXT} for both; prefill ${PREFILL}, decode at ${DECODE_AT.join(", ")} (${NEW_TOKENS} greedy tokens); ` +
    `threads ${THREADS.join(", ")}; ${ROUNDS} round(s); load average at start ${loadavg().map((x) => x.toFixed(2)).join(" ")}`,
);
console.log(`ours: ${OURS_GGUF} (${(statSync(OURS_GGUF).size / 1e9).toFixed(2)} GB); wllama: ${PEER_GGUF} (${(statSync(PEER_GGUF).size / 1e9).toFixed(2)} GB)`);

try {
  for (let round = 1; round <= ROUNDS; round++) {
    if (ENGINES.includes("ours")) {
      const ms = await downloadAlone();
      for (const t of THREADS) record("ours", t, "downloadMs", ms);
      console.log(`round ${round} ours: download alone (GET into the model cache, nothing loaded) ${(ms / 1000).toFixed(1)} s`);
    }
    for (const [ti, threads] of THREADS.entries()) {
      const order = (round + ti) % 2 === 0 ? ENGINES : [...ENGINES].reverse();
      for (const engine of order) {
        const seed = round * 10 + ti;
        const lengths = [PREFILL, ...DECODE_AT.filter((n) => n !== PREFILL)];
        const prompt = (n: number, i: number, newTokens: number): RunRequest => ({ text: engine === "ours" ? textOfTokens(n, seed + i) : lettersOf(n, seed + i), tokens: n, newTokens });
        // A short request first, not timed: each engine's first one pays one-time costs (fresh compute
        // buffers being touched, hot functions being recompiled by V8's optimizing tier).
        const runs: RunRequest[] = [prompt(WARMUP_TOKENS, 9, 16), ...lengths.map((n, i) => prompt(n, i, NEW_TOKENS))];
        const profile = mkdtempSync(join(tmpdir(), `bench-browser-${engine}-`));
        try {
          const first = await visit(profile, engine, threads, []);
          const second = await visit(profile, engine, threads, runs);
          infos.set(`${engine} ${threads}`, second.loaded.info);
          record(engine, threads, "firstMs", first.loaded.readyMs);
          record(engine, threads, "firstGetMs", first.getMs);
          record(engine, threads, "secondMs", second.loaded.readyMs);
          const peakMiB = Math.max(first.peakRss, second.peakRss) / MIB;
          record(engine, threads, "peakMiB", peakMiB);
          const line = [`round ${round} ${engine.padEnd(6)} ${threads}T`, `coi ${second.loaded.crossOriginIsolated}`];
          line.push(
            `ready ${(first.loaded.readyMs / 1000).toFixed(1)} s (${(first.modelBytes / MIB).toFixed(0)} MiB served in ${(first.getMs / 1000).toFixed(1)} s) / ` +
              `${(second.loaded.readyMs / 1000).toFixed(1)} s (${(second.modelBytes / MIB).toFixed(0)} MiB served)`,
          );
          for (const [name, v] of [["first", first], ["second", second]] as const) {
            const { loadTimes, cacheWarnings } = v.loaded.info as { loadTimes?: Record<string, number> | null; cacheWarnings?: string[] };
            if (loadTimes) line.push(`${name} engine ${Object.entries(loadTimes).map(([k, ms]) => `${k} ${(ms / 1000).toFixed(2)}`).join(", ")} s`);
            if (cacheWarnings?.length) line.push(`${name} cache warnings: ${cacheWarnings.join(" / ")}`);
          }
          line.push(...describeRuns(engine, threads, second.runs.slice(1), lengths));
          line.push(`peak renderer ${peakMiB.toFixed(0)} MiB`);
          console.log(line.join("; "));
          if (engine === "ours" && NODE) {
            const node = await nodeVisit(threads, runs);
            if (node.threads !== threads) throw new Error(`Node's engine runs ${node.threads} thread(s), not ${threads}`);
            console.log([`round ${round} node   ${threads}T`, `${node.simd} build`, ...describeRuns("node", threads, node.runs.slice(1), lengths)].join("; "));
          }
        } finally {
          rmSync(profile, { recursive: true, force: true });
        }
      }
    }
  }
} finally {
  server.close();
}

// ---------------------------------------------------------------------------------------------------------
// The table

for (const [k, info] of infos) {
  const { log, ...rest } = info as { log?: string[] };
  console.log(`${k} threads: ${JSON.stringify(rest)}`);
  if (log?.length) console.log(log.map((l) => `  | ${l}`).join("\n"));
}
const ROWS: Array<{ metric: Metric; label: string; better: "lower" | "higher"; fmt: (v: number) => string }> = [
  { metric: "downloadMs", label: "download alone, into the cache (s)", better: "lower", fmt: (v) => (v / 1000).toFixed(1) },
  { metric: "firstGetMs", label: "first visit: the model's GET (s)", better: "lower", fmt: (v) => (v / 1000).toFixed(1) },
  { metric: "firstMs", label: "ready, first visit (s)", better: "lower", fmt: (v) => (v / 1000).toFixed(1) },
  { metric: "secondMs", label: "ready, second visit (s)", better: "lower", fmt: (v) => (v / 1000).toFixed(1) },
  { metric: "prefillTokPerS", label: `prefill of ${PREFILL} tokens (tok/s)`, better: "higher", fmt: (v) => v.toFixed(1) },
  ...DECODE_AT.map((n) => ({ metric: `decode${n}` as Metric, label: `decode at ${n} (tok/s)`, better: "higher" as const, fmt: (v: number) => v.toFixed(1) })),
  { metric: "peakMiB", label: "peak renderer memory (MiB)", better: "lower", fmt: (v) => v.toFixed(0) },
];
console.log(`\nmedians over ${ROUNDS} round(s); "ours x" is how many times better ours is (faster, or less memory); load average at end ${loadavg().map((x) => x.toFixed(2)).join(" ")}`);
console.log(`| | ${THREADS.map((t) => `ours ${t}T | wllama ${t}T | ours x`).join(" | ")} |`);
console.log(`|---|${THREADS.map(() => "---:|---:|---:").join("|")}|`);
for (const row of ROWS) {
  const cells = THREADS.map((t) => {
    const o = median(results.get(`ours ${t} ${row.metric}`) ?? []);
    const w = median(results.get(`wllama ${t} ${row.metric}`) ?? []);
    const x = row.better === "higher" ? o / w : w / o;
    return `${row.fmt(o)} | ${row.fmt(w)} | ${Number.isFinite(x) ? x.toFixed(2) : "-"}`;
  });
  console.log(`| ${row.label} | ${cells.join(" | ")} |`);
}
if (NODE) {
  // Ours in the page against ours in Node: the same GGUF, requests, threads and timing, in the same run.
  const rows = ROWS.filter((r) => r.metric === "prefillTokPerS" || r.metric.startsWith("decode"));
  console.log(`\nours in the page against ours in Node (same GGUF, prompts, threads; medians over ${ROUNDS} round(s)); "page / Node" above 1 means the page is faster`);
  console.log(`| | ${THREADS.map((t) => `page ${t}T | Node ${t}T | page / Node`).join(" | ")} |`);
  console.log(`|---|${THREADS.map(() => "---:|---:|---:").join("|")}|`);
  for (const row of rows) {
    const cells = THREADS.map((t) => {
      const page = median(results.get(`ours ${t} ${row.metric}`) ?? []);
      const node = median(results.get(`node ${t} ${row.metric}`) ?? []);
      return `${row.fmt(page)} | ${row.fmt(node)} | ${(page / node).toFixed(2)}`;
    });
    console.log(`| ${row.label} | ${cells.join(" | ")} |`);
  }
}
