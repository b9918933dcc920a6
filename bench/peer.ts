// A peer, side by side in one run: llama.cpp (through node-llama-cpp's prebuilt CPU binaries) and this
// engine on the same weights, shapes and thread counts. Figures are printed, never asserted.
//
//  1. The full-size synthetic MobileLLM-Pro checkpoint (seeded bf16, src/model/synth.ts) is written once.
//  2. Its weights are streamed into a llama-architecture GGUF (Q4_0 matrices, F32 norms, tied head) by
//     bench/llama-gguf.ts. llama.cpp has no MobileLLM-Pro support, so every layer is global there.
//  3. node-llama-cpp is installed on demand into a temporary folder (never into this repo): npm with
//     --omit=optional, so none of the CUDA/Vulkan/other-OS binary packages come along, plus the one prebuilt
//     CPU package of this platform; --ignore-scripts, and getLlama({ gpu: false, build: "never" }), so
//     nothing is compiled or downloaded from GitHub. Only the npm registry is needed.
//  4. For each thread count, both engines run prefill of an N-token prompt and single-token decode at given
//     positions. Ours runs twice: with every layer global (the same attention work as llama.cpp, from a
//     config.json variant of the same folder) and with the real hybrid 3:1 sliding/global pattern. All three
//     are loaded side by side and each task runs in rounds, every engine in turn, so a slow drift of the
//     shared machine hits them alike; a figure is the p50 step (tinybench) of the best round. A measurement
//     during which other processes kept the CPU busy (from /proc/stat) is repeated, and flagged if it stays so.
//
// To reach a decode position, llama.cpp really evaluates the tokens before it (in batches); our cache is
// filled with random int8 entries instead (as in bench/engine.ts): the cost of a decode step depends on how
// many cached positions attention reads, not on what they hold. Both compute the full 202,048-entry logits
// of every decoded token (llama.cpp also picks the argmax; ours does not sample).
//
//   flock /tmp/mobilellm-bench.lock npm run bench:peer
//   npm run bench:peer -- --threads 1,2 --prefill 512 --decode-at 512,2048 --iterations 16 --warmup 10 --rounds 2 \
//                         --simd auto --flash-attention auto
//   npm run bench:peer -- --only llama        # or --only ours
//
// Environment (each optional; without them everything goes to temporary folders that are removed):
//   BENCH_MODEL_DIR=/tmp/mlp-synth    reuse a folder written by `mobilellm synth --preset mobilellm-pro`
//                                     (written there, and kept, if it does not exist yet)
//   BENCH_GGUF=/tmp/mlp-synth.gguf    reuse (when its size matches the checkpoint's layout) or write and keep the GGUF
//   BENCH_NLC_DIR=/tmp/peer-nlc       reuse (or install into and keep) the node-llama-cpp folder
//   NODE_LLAMA_CPP_VERSION=3.22.1     the node-llama-cpp version to install
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { cpus, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { Bench } from "tinybench";
import { loadModel, type LoadOptions } from "../src/api.js";
import { PRESETS } from "../src/model/config.js";
import { loadConfig } from "../src/node/bundled.js";
import { synthesizeCheckpoint } from "../src/node/synth.js";
import { resolveTensorNames } from "../src/model/tensor-names.js";
import type { WasmEngine } from "../src/model/engine.js";
import type { SimdMode } from "../src/kernels/wasm.js";
import { llamaGguf } from "./llama-gguf.js";
import { encodeGgufHeader } from "../src/model/checkpoint/gguf-writer.js";
import { writeGgufFile } from "../src/node/gguf-files.js";
import { openCheckpoint } from "../src/node/folder.js";

// ---------------------------------------------------------------------------------------------------------
// Options

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
}
const intList = (s: string) =>
  s.split(",").map((x) => {
    const n = Number(x);
    if (!Number.isSafeInteger(n) || n < 1) throw new Error(`not a positive integer: ${x}`);
    return n;
  });

const THREADS = intList(arg("threads") ?? "1,2");
const PREFILL = intList(arg("prefill") ?? "512")[0];
const DECODE_AT = intList(arg("decode-at") ?? "512,2048").sort((a, b) => a - b);
const ITERATIONS = intList(arg("iterations") ?? "16")[0];
/** Decode steps before timing starts: the Wasm engine with a thread pool needs ~10 to reach speed. */
const WARMUP = intList(arg("warmup") ?? "10")[0];
const PREFILL_ITERATIONS = 3;
const SIMD = (arg("simd") ?? "auto") as SimdMode;
const ONLY = arg("only"); // "llama" | "ours"
/** llama.cpp's flash attention: "auto" (its default), "on" or "off". */
const FLASH = arg("flash-attention") ?? "auto";
if (!["auto", "on", "off"].includes(FLASH)) throw new Error(`--flash-attention must be auto, on or off`);
const NLC_VERSION = arg("nlc-version") ?? process.env.NODE_LLAMA_CPP_VERSION ?? "3.22.1";
/** Other processes using more than this many cores during a measurement make it a retry. */
const BUSY_ELSEWHERE = 0.15;
const ATTEMPTS = 3;
/** Each task runs this many rounds, every engine in turn; the best round counts. */
const ROUNDS = intList(arg("rounds") ?? "2")[0];
/** How far past a decode position all rounds and attempts of it can go. */
const DECODE_SLACK = ROUNDS * ATTEMPTS * (WARMUP + ITERATIONS);
/** Room for the last position and its slack, rounded up as llama.cpp does. */
const CONTEXT = Math.ceil((Math.max(PREFILL, ...DECODE_AT) + DECODE_SLACK + 16) / 256) * 256;
/** Filler token ids: ordinary pieces of the vocabulary (after the GGUF's byte tokens, below the specials). */
let tokenRange = 190000;
const token = (i: number) => 257 + ((i * 7919) % tokenRange);

const cleanups: Array<() => void> = [];
const seconds = (t0: number) => ((performance.now() - t0) / 1000).toFixed(1);

// ---------------------------------------------------------------------------------------------------------
// Inputs: checkpoint folder, its all-global variant, the GGUF

async function syntheticModel(): Promise<string> {
  const given = process.env.BENCH_MODEL_DIR;
  if (given && existsSync(join(given, "config.json"))) return resolve(given);
  const dir = given ? resolve(given) : mkdtempSync(join(tmpdir(), "mobilellm-peer-"));
  if (!given) cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const free = freeBytes(given ? resolve(given, "..") : dir);
  if (free !== null && free < 3e9) throw new Error(`${(free / 1e9).toFixed(1)} GB free for ${dir}: the synthetic checkpoint needs 2.2 GB`);
  const t0 = performance.now();
  await synthesizeCheckpoint({ presetJson: PRESETS["mobilellm-pro"].json, presetName: "mobilellm-pro", outDir: dir, seed: 1, maxShardBytes: 1e9 });
  console.log(`synthetic mobilellm-pro checkpoint (seed 1) written to ${dir} in ${seconds(t0)} s`);
  return dir;
}

/** The same folder (weights and tokenizer linked, not copied) with every layer global in config.json. */
function allGlobalVariant(dir: string): string {
  const out = mkdtempSync(join(tmpdir(), "mobilellm-peer-global-"));
  cleanups.push(() => rmSync(out, { recursive: true, force: true }));
  for (const f of readdirSync(dir)) if (f !== "config.json") symlinkSync(join(dir, f), join(out, f));
  const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as Record<string, unknown>;
  const layers = config["num_hidden_layers"] as number;
  config["layer_types"] = new Array(layers).fill("full_attention");
  writeFileSync(join(out, "config.json"), JSON.stringify(config, null, 2));
  return out;
}

async function ggufFile(dir: string): Promise<string> {
  const given = process.env.BENCH_GGUF;
  const path = given ? resolve(given) : join(mkdtempSync(join(tmpdir(), "mobilellm-peer-gguf-")), "mobilellm-pro-synthetic-q4_0.gguf");
  if (!given) cleanups.push(() => rmSync(resolve(path, ".."), { recursive: true, force: true }));
  const config = loadConfig(dir);
  const ckpt = await openCheckpoint(dir);
  try {
    const { metadata, tensors } = llamaGguf({ ckpt, config, names: resolveTensorNames(config, ckpt), name: "MobileLLM-Pro shapes, synthetic weights, all layers global" });
    const expected = encodeGgufHeader(metadata, tensors).fileSize;
    if (existsSync(path) && statSync(path).size === expected) {
      console.log(`reusing ${path} (${(expected / 1e9).toFixed(2)} GB)`);
      return path;
    }
    const free = freeBytes(resolve(path, ".."));
    if (free !== null && free < expected * 1.2) throw new Error(`${(free / 1e9).toFixed(1)} GB free next to ${path}, the GGUF needs ${(expected / 1e9).toFixed(2)} GB`);
    const t0 = performance.now();
    await writeGgufFile(path, metadata, tensors);
    console.log(`GGUF (llama, Q4_0, ${tensors.length} tensors, ${(expected / 1e9).toFixed(2)} GB) written to ${path} in ${seconds(t0)} s`);
    return path;
  } finally {
    await ckpt.close();
  }
}

function freeBytes(dir: string): number | null {
  try {
    const out = execFileSync("df", ["-Pk", dir], { encoding: "utf8" }).trim().split("\n").pop()!.split(/\s+/);
    return Number(out[3]) * 1024;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------------------
// node-llama-cpp, installed on demand

/** The prebuilt CPU binary package of this platform (node-llama-cpp's optionalDependencies). */
function binaryPackage(): string {
  const key = `${process.platform}-${process.arch}`;
  const names: Record<string, string> = {
    "linux-x64": "linux-x64",
    "linux-arm64": "linux-arm64",
    "linux-arm": "linux-armv7l",
    "darwin-arm64": "mac-arm64-metal",
    "darwin-x64": "mac-x64",
    "win32-x64": "win-x64",
    "win32-arm64": "win-arm64",
  };
  const name = names[key];
  if (!name) throw new Error(`node-llama-cpp ships no prebuilt binary for ${key}`);
  return `@node-llama-cpp/${name}`;
}

function installedVersion(dir: string, pkg: string): string | null {
  try {
    return (JSON.parse(readFileSync(join(dir, "node_modules", pkg, "package.json"), "utf8")) as { version: string }).version;
  } catch {
    return null;
  }
}

function installNodeLlamaCpp(): string {
  const given = process.env.BENCH_NLC_DIR;
  const dir = given ? resolve(given) : mkdtempSync(join(tmpdir(), "mobilellm-peer-nlc-"));
  if (!given) cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const bin = binaryPackage();
  if (installedVersion(dir, "node-llama-cpp") === NLC_VERSION && installedVersion(dir, bin) === NLC_VERSION) {
    console.log(`reusing node-llama-cpp ${NLC_VERSION} + ${bin} in ${dir}`);
    return dir;
  }
  mkdirSync(dir, { recursive: true });
  if (!existsSync(join(dir, "package.json"))) writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "mobilellm-peer-bench", private: true }));
  const t0 = performance.now();
  const npm = process.platform === "win32" ? "npm.cmd" : "npm";
  try {
    execFileSync(
      npm,
      ["install", "--omit=optional", "--ignore-scripts", "--no-audit", "--no-fund", "--no-package-lock", `node-llama-cpp@${NLC_VERSION}`, `${bin}@${NLC_VERSION}`],
      { cwd: dir, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NODE_LLAMA_CPP_SKIP_DOWNLOAD: "true" } },
    );
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    throw new Error(`npm install of node-llama-cpp failed: ${err.stderr?.toString() ?? err.message}`);
  }
  console.log(`installed node-llama-cpp ${NLC_VERSION} + ${bin} into ${dir} in ${seconds(t0)} s`);
  return dir;
}

// The part of node-llama-cpp's API used here (it is not a dependency of this repo, so no types come along).
interface NlcSequence {
  readonly nextTokenIndex: number;
  clearHistory(): Promise<void>;
  evaluateWithoutGeneratingNewTokens(tokens: number[]): Promise<void>;
  controlledEvaluate(input: Array<number | [number, { generateNext: { token: boolean } }]>): Promise<Array<{ next: { token?: number | null } } | undefined>>;
}
interface NlcContext {
  readonly contextSize: number;
  readonly batchSize: number;
  readonly currentThreads: number;
  readonly flashAttention: "auto" | boolean;
  getSequence(): NlcSequence;
  dispose(): Promise<void>;
}
interface NlcModel {
  createContext(o: { contextSize: number; batchSize: number; threads: number; sequences: number; flashAttention: "auto" | boolean }): Promise<NlcContext>;
  dispose(): Promise<void>;
}
interface NlcLlama {
  readonly llamaCppRelease: { repo: string; release: string };
  readonly buildType: string;
  readonly systemInfo: string;
  readonly cpuMathCores: number;
  loadModel(o: { modelPath: string; gpuLayers: number; useMmap: boolean }): Promise<NlcModel>;
  dispose(): Promise<void>;
}
interface NlcModule {
  getLlama(o: Record<string, unknown>): Promise<NlcLlama>;
}

// ---------------------------------------------------------------------------------------------------------
// Measurement

/** Busy CPU time of the whole machine in ms (Linux /proc/stat), or null. */
function machineBusyMs(): number | null {
  try {
    const f = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0); // user .. steal; guest time is already in user
    return ((total - f[3] - f[4]) * 1000) / 100; // minus idle and iowait; USER_HZ is 100 on Linux
  } catch {
    return null;
  }
}

/**
 * Median latency in ms of `fn`, and how busy the rest of the machine was meanwhile. The 2 cores are shared:
 * a measurement during which other processes were busy is repeated (up to ATTEMPTS times), and the quietest
 * attempt is kept.
 */
async function p50(name: string, iterations: number, warmup: number, fn: () => Promise<void>): Promise<{ ms: number; elsewhere: number | null }> {
  let best: { ms: number; elsewhere: number | null } | undefined;
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    const r = await measure(name, iterations, warmup, fn);
    if (!best || (r.elsewhere ?? 0) < (best.elsewhere ?? 0)) best = r;
    if (r.elsewhere === null || r.elsewhere <= BUSY_ELSEWHERE) break;
    if (attempt < ATTEMPTS) {
      console.log(`  ${name}: other processes kept ${r.elsewhere.toFixed(2)} cores busy, measuring again`);
      await new Promise((res) => setTimeout(res, 2000));
    }
  }
  return best!;
}

async function measure(name: string, iterations: number, warmup: number, fn: () => Promise<void>): Promise<{ ms: number; elsewhere: number | null }> {
  const bench = new Bench({ iterations, warmupIterations: warmup, warmupTime: 0, time: 0, throws: true });
  bench.add(name, fn);
  const busy0 = machineBusyMs();
  const own0 = process.cpuUsage();
  const t0 = performance.now();
  await bench.run();
  const wall = performance.now() - t0;
  const own = process.cpuUsage(own0);
  const busy1 = machineBusyMs();
  const r = bench.tasks[0].result;
  if (!r || (r.state !== "completed" && r.state !== "aborted-with-statistics")) throw new Error(`benchmark ${name} did not complete`);
  // /proc/stat counts in 10 ms ticks: over less than half a second the figure is mostly rounding.
  const elsewhere = busy0 === null || busy1 === null || wall < 500 ? null : Math.max(0, (busy1 - busy0 - (own.user + own.system) / 1000) / wall);
  return { ms: r.latency.p50, elsewhere };
}

const prefillTask = `prefill ${PREFILL}-token prompt`;
const decodeTask = (pos: number) => `decode at position ${pos}`;

/** One engine at one thread count, as the measurement loop drives it. */
interface Contender {
  engine: string;
  threads: number;
  prefill(prompt: number[]): Promise<void>;
  /** Makes the next decode step land at (about) `pos`, with `pos` positions in the cache. */
  prepareDecode(pos: number): Promise<void>;
  decodeStep(): Promise<void>;
  dispose(): Promise<void>;
}

interface LlamaCpp {
  model: NlcModel;
  dispose(): Promise<void>;
}

async function loadLlamaCpp(gguf: string, nlcDir: string): Promise<LlamaCpp> {
  const entry = createRequire(join(nlcDir, "package.json")).resolve("node-llama-cpp");
  const nlc = (await import(pathToFileURL(entry).href)) as NlcModule;
  const llama = await nlc.getLlama({ gpu: false, build: "never", usePrebuiltBinaries: true, skipDownload: true, progressLogs: false, logLevel: "error", maxThreads: 0 });
  const { repo, release } = llama.llamaCppRelease;
  const features = llama.systemInfo.replace(/\s+/g, " ").trim();
  console.log(`[llama.cpp] node-llama-cpp ${installedVersion(nlcDir, "node-llama-cpp")}, ${repo} ${release} (${llama.buildType} binary); ${features}`);
  const t0 = performance.now();
  const model = await llama.loadModel({ modelPath: gguf, gpuLayers: 0, useMmap: true });
  console.log(`[llama.cpp] model loaded in ${seconds(t0)} s`);
  return {
    model,
    async dispose() {
      await model.dispose();
      await llama.dispose();
    },
  };
}

async function llamaContender(l: LlamaCpp, threads: number): Promise<Contender> {
  const flashAttention = FLASH === "auto" ? "auto" : FLASH === "on";
  const ctx = await l.model.createContext({ contextSize: CONTEXT, batchSize: Math.min(512, CONTEXT), threads, sequences: 1, flashAttention });
  console.log(`[llama.cpp] ${threads} thread(s): context ${ctx.contextSize}, batch ${ctx.batchSize}, flash attention ${ctx.flashAttention}, F16 KV cache`);
  const seq = ctx.getSequence();
  const fill = async (upTo: number) => {
    const from = seq.nextTokenIndex;
    if (upTo > from) await seq.evaluateWithoutGeneratingNewTokens(Array.from({ length: upTo - from }, (_, i) => token(from + i)));
  };
  return {
    engine: "llama.cpp",
    threads,
    async prefill(prompt) {
      await seq.clearHistory();
      await seq.evaluateWithoutGeneratingNewTokens(prompt);
    },
    async prepareDecode(pos) {
      // Filler tokens are really evaluated (in batches) up to `pos`; a later round at the same position
      // continues a little past it, as the earlier round's steps stay in the cache.
      if (seq.nextTokenIndex > pos + DECODE_SLACK) await seq.clearHistory();
      await fill(pos);
    },
    async decodeStep() {
      const out = await seq.controlledEvaluate([[token(seq.nextTokenIndex), { generateNext: { token: true } }]]);
      if (out[0]?.next.token == null) throw new Error("llama.cpp produced no next token");
    },
    async dispose() {
      await ctx.dispose();
    },
  };
}

/** Random int8 keys/values and small scales in every slot up to `positions` (as bench/engine.ts does). */
function fillCache(engine: WasmEngine, positions: number): void {
  const k = engine.kernels;
  let seed = 12345;
  const next = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 24) - 128;
  for (const layer of engine.kv.layers) {
    const slots = Math.min(layer.slots, positions);
    for (const [data, scales] of [[layer.kData, layer.kScales], [layer.vData, layer.vScales]] as const) {
      for (let h = 0; h < layer.kvHeads; h++) {
        const base = data + h * layer.slots * layer.headDim;
        for (let j = 0; j < slots * layer.headDim; j++) k.i8[base + j] = next();
      }
      k.f32.fill(0.01, scales >> 2, (scales >> 2) + layer.kvHeads * layer.slots);
    }
  }
}

let engineHasThreads: boolean | undefined;

/**
 * Our engine at `threads` threads, or null when it cannot run that many: the `threads` option is passed
 * and the engine's own report of its thread count (a `threads` property) is believed; an engine without
 * one is single-threaded.
 */
async function oursContender(dir: string, label: string, threads: number): Promise<Contender | null> {
  if (engineHasThreads === false && threads !== 1) {
    console.log(`[ours, ${label}] ${threads} thread(s): skipped, the engine has no threads option yet`);
    return null;
  }
  const t0 = performance.now();
  const opts: LoadOptions & { threads?: number } = { backend: "wasm", simd: SIMD, contextLength: CONTEXT, threads };
  const model = await loadModel(dir, opts);
  const engine = model.backend as WasmEngine;
  const reported = (engine as unknown as { threads?: unknown }).threads;
  engineHasThreads = typeof reported === "number";
  const actual = typeof reported === "number" ? reported : 1;
  if (actual !== threads) {
    console.log(`[ours, ${label}] asked for ${threads} thread(s), the engine runs ${actual}${engineHasThreads ? "" : " (it has no threads option yet)"}: skipped`);
    model.dispose();
    return null;
  }
  console.log(`[ours, ${label}] ${threads} thread(s), ${engine.simd.variant} build, load + quantize ${seconds(t0)} s; ${engine.simd.reason}`);
  let filled = false;
  let p = 0;
  return {
    engine: `ours (${label})`,
    threads,
    async prefill(prompt) {
      await engine.forward(prompt, 0, false);
      filled = false;
    },
    async prepareDecode(pos) {
      if (!filled) fillCache(engine, CONTEXT);
      filled = true;
      p = pos;
    },
    async decodeStep() {
      await engine.forward([token(p)], p, false);
      p++;
    },
    async dispose() {
      model.dispose();
    },
  };
}

/** Per engine, thread count and task: the p50 of every round. */
type Results = Map<string, { engine: string; threads: number; task: string; rounds: Array<{ ms: number; tokens: number; elsewhere: number | null }> }>;

function record(results: Results, c: Contender, task: string, ms: number, tokens: number, elsewhere: number | null): void {
  const key = `${c.engine}|${c.threads}|${task}`;
  let r = results.get(key);
  if (!r) results.set(key, (r = { engine: c.engine, threads: c.threads, task, rounds: [] }));
  r.rounds.push({ ms, tokens, elsewhere });
}

/**
 * Every task, ROUNDS times, each round measuring every contender in turn: slow drifts of a shared machine
 * then hit all engines alike, and each figure is the best round.
 */
async function measureAll(contenders: Contender[], results: Results): Promise<void> {
  const prompt = Array.from({ length: PREFILL }, (_, i) => token(i));
  for (let round = 1; round <= ROUNDS; round++) {
    for (const c of contenders) {
      const r = await p50(`${c.engine} prefill t${c.threads}`, PREFILL_ITERATIONS, 1, () => c.prefill(prompt));
      record(results, c, prefillTask, r.ms, PREFILL, r.elsewhere);
    }
  }
  for (const pos of DECODE_AT) {
    for (let round = 1; round <= ROUNDS; round++) {
      for (const c of contenders) {
        await c.prepareDecode(pos);
        const r = await p50(`${c.engine} decode@${pos} t${c.threads}`, ITERATIONS, WARMUP, () => c.decodeStep());
        record(results, c, decodeTask(pos), r.ms, 1, r.elsewhere);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Main

interface Figure {
  engine: string;
  threads: number;
  task: string;
  tokensPerSecond: number;
  p50ms: number;
  elsewhere: number | null;
  rounds: number[];
}

function figures(results: Results): Figure[] {
  return [...results.values()].map((r) => {
    const best = r.rounds.reduce((a, b) => (b.ms < a.ms ? b : a));
    return {
      engine: r.engine,
      threads: r.threads,
      task: r.task,
      p50ms: best.ms,
      tokensPerSecond: (best.tokens / best.ms) * 1000,
      elsewhere: best.elsewhere,
      rounds: r.rounds.map((x) => (x.tokens / x.ms) * 1000),
    };
  });
}

function table(figs: Figure[]): void {
  console.log(`\nevery measurement: tok/s of the p50 step in each round, the best round kept; 'elsewhere' = CPU cores other processes kept busy during it`);
  console.table(
    figs.map((f) => ({
      engine: f.engine,
      threads: f.threads,
      task: f.task,
      "rounds tok/s": f.rounds.map((x) => x.toFixed(1)).join(" / "),
      "best p50 ms": +f.p50ms.toFixed(1),
      "best tok/s": +f.tokensPerSecond.toFixed(1),
      elsewhere: f.elsewhere === null ? "?" : +f.elsewhere.toFixed(2),
    })),
  );
  const noisy = figs.filter((f) => f.elsewhere !== null && f.elsewhere > BUSY_ELSEWHERE);
  if (noisy.length > 0) {
    console.log(`note: other processes stayed busy during ${noisy.length} kept measurement(s) (elsewhere > ${BUSY_ELSEWHERE} core, ${ATTEMPTS} attempts each): those figures are low`);
  }

  const get = (engine: string, threads: number, task: string) => figs.find((f) => f.engine === engine && f.threads === threads && f.task === task);
  const fmt = (f: Figure | undefined) => (f ? +f.tokensPerSecond.toFixed(1) : "-");
  const rows: Record<string, string | number>[] = [];
  for (const threads of THREADS) {
    for (const task of [prefillTask, ...DECODE_AT.map(decodeTask)]) {
      const ref = get("llama.cpp", threads, task);
      const global = get("ours (all global)", threads, task);
      const hybrid = get("ours (hybrid)", threads, task);
      rows.push({
        threads,
        task,
        "llama.cpp tok/s": fmt(ref),
        "ours all-global tok/s": fmt(global),
        "ours / llama.cpp": ref && global ? +(global.tokensPerSecond / ref.tokensPerSecond).toFixed(2) : "-",
        "ours hybrid tok/s": fmt(hybrid),
        "hybrid / llama.cpp": ref && hybrid ? +(hybrid.tokensPerSecond / ref.tokensPerSecond).toFixed(2) : "-",
      });
    }
  }
  console.log("\ntokens per second (higher is better); ratio = ours / llama.cpp on the same shapes and threads");
  console.table(rows);
}

async function main(): Promise<void> {
  console.log(
    `node ${process.version}, ${cpus()[0]?.model ?? "unknown CPU"} x${cpus().length}; threads ${THREADS.join(",")}; ` +
      `prefill ${PREFILL} tokens (p50 of ${PREFILL_ITERATIONS} after 1 warm-up), decode at ${DECODE_AT.join(", ")} ` +
      `(p50 of ${ITERATIONS} steps after ${WARMUP}); best of ${ROUNDS} rounds; context ${CONTEXT}`,
  );
  const dir = await syntheticModel();
  tokenRange = Math.max(1, Math.min(190000, loadConfig(dir).vocabSize - 512));
  let llama: LlamaCpp | undefined;
  if (ONLY !== "ours") {
    const gguf = await ggufFile(dir);
    const nlcDir = installNodeLlamaCpp();
    llama = await loadLlamaCpp(gguf, nlcDir);
  }
  const global = ONLY !== "llama" ? allGlobalVariant(dir) : "";
  const results: Results = new Map();
  try {
    for (const threads of THREADS) {
      console.log(`\n--- ${threads} thread(s)`);
      const contenders: Contender[] = [];
      try {
        if (llama) contenders.push(await llamaContender(llama, threads));
        if (ONLY !== "llama") {
          for (const [label, folder] of [["all global", global], ["hybrid", dir]] as const) {
            const c = await oursContender(folder, label, threads);
            if (c) contenders.push(c);
          }
        }
        await measureAll(contenders, results);
      } finally {
        for (const c of contenders) await c.dispose();
      }
    }
  } finally {
    await llama?.dispose();
  }
  table(figures(results));
  console.log(
    "llama.cpp: Q4_0 weights (f16 scale per 32), Q8_0 activations, F16 KV cache, native CPU kernels, filler tokens really evaluated. " +
      "ours: int4 g32 weights (f32 scales), int8 activations, int8 KV cache, Wasm SIMD; decode cache filled with random int8.",
  );
}

try {
  await main();
} finally {
  for (const c of cleanups.reverse()) c();
}
