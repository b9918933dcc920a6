// A peer, side by side in one run: llama.cpp (through node-llama-cpp's prebuilt CPU binaries) and this
// engine on the same weights, shapes and thread counts. Figures are printed, never asserted.
//
//  1. The full-size synthetic MobileLLM-Pro checkpoint (seeded bf16, src/model/synth.ts) is written once.
//  2. Its weights are streamed into a llama-architecture GGUF (Q4_0 matrices, F32 norms, tied head) by
//     bench/llama-gguf.ts. llama.cpp has no MobileLLM-Pro support, so every layer is global there.
//  3. node-llama-cpp is installed on demand into a temporary folder (never into this repo), from the npm
//     registry only, with nothing compiled or downloaded from GitHub (bench/node-llama-cpp.ts).
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
// Environment: BENCH_MODEL_DIR and BENCH_GGUF (bench/peer-inputs.ts), BENCH_NLC_DIR (bench/node-llama-cpp.ts),
// NODE_LLAMA_CPP_VERSION (the version to install).
import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { Bench } from "tinybench";
import { loadModel, type LoadOptions } from "../src/api.js";
import { loadConfig } from "../src/node/bundled.js";
import type { WasmEngine } from "../src/model/engine.js";
import type { SimdMode } from "../src/kernels/wasm.js";
import { cpuLlama, importNodeLlamaCpp, installedVersion, installNodeLlamaCpp, NLC_DEFAULT_VERSION, type NlcModel } from "./node-llama-cpp.js";
import { peerGguf, seconds, syntheticModel, type Cleanups } from "./peer-inputs.js";
import { arg, intList } from "./args.js";

// ---------------------------------------------------------------------------------------------------------
// Options


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
const NLC_VERSION = arg("nlc-version") ?? process.env.NODE_LLAMA_CPP_VERSION ?? NLC_DEFAULT_VERSION;
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

const cleanups: Cleanups = [];

// ---------------------------------------------------------------------------------------------------------
// Inputs: checkpoint folder, its all-global variant, the GGUF

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
  const llama = await cpuLlama(await importNodeLlamaCpp(nlcDir));
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
  for (const layer of engine.caches[0].layers) {
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
  const dir = await syntheticModel(cleanups);
  tokenRange = Math.max(1, Math.min(190000, loadConfig(dir).vocabSize - 512));
  let llama: LlamaCpp | undefined;
  if (ONLY !== "ours") {
    const gguf = await peerGguf(dir, cleanups);
    const nlcDir = installNodeLlamaCpp(NLC_VERSION, cleanups);
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
