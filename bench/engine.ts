// End-to-end engine benchmark on a full-size synthetic checkpoint (random bf16 weights in the real layout of
// MobileLLM-Pro or, with --preset, another model; written once into a temporary folder by `synth`), for 1 and 2 threads:
//
//   - the Wasm memory-read roofline (v128 loads over 512 MiB, threads 1 and 2), measured in the same run;
//   - decode at 512, 2k, 8k and 32k positions, both thread counts loaded side by side and measured in
//     alternating rounds (the machine is shared: this cancels most of the drift);
//   - prefill of a 2048-token prompt;
//   - decode at 2k with another process spinning on one core (`node -e "for(;;){}"`);
//   - decode against context length for the hybrid layout and the same model with every layer global;
//   - peak RSS of a process that loads the engine with an 8k context (a child process per thread count).
//
// Figures are printed (and written as JSON with --json for bench/plot-context.ts), not asserted. To reach
// a position quickly the KV cache is filled with random int8 entries instead of being prefilled: decode
// cost depends on how many cached positions attention reads, not on what they hold. Each measurement says
// how many cores OTHER processes kept busy meanwhile ("elsewhere"); a 2-thread figure is only meaningful
// when that is near 0.
//
//   npm run bench                                     # everything (about 10 minutes)
//   npm run bench -- --simd auto --threads 1,2        # one build
//   npm run bench -- --positions 512,2048 --no-prefill --no-busy --no-layouts --no-rss
//   BENCH_MODEL_DIR=/path npm run bench               # reuse a folder written by `mobilellm synth`
//   npm run bench -- --preset llama-3.2-1b --no-layouts # another synth preset (see `mobilellm synth --help`)
//   npm run bench -- --json /tmp/bench.json && npx tsx bench/plot-context.ts /tmp/bench.json
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { PRESETS, parseConfig, type ModelConfig } from "../src/model/config.js";
import { synthesizeCheckpoint } from "../src/node/synth.js";
import { WasmEngine } from "../src/model/engine.js";
import { resolveTensorNames } from "../src/model/tensor-names.js";
import type { SimdMode } from "../src/kernels/wasm.js";
import { Int4Matrix } from "../src/kernels/layout.js";
import type { Measured } from "./results.js";
import { busyProcess, describeMachine, median, otherLoad, waitForQuiet, withElsewhere } from "./machine.js";
import { openCheckpoint } from "../src/node/folder.js";
import { enableRelaxedSimd, kernelBytes } from "../src/node/wasm-files.js";
import { spawnNodeWorker } from "../src/node/worker-thread.js";

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}
const flag = (name: string) => process.argv.includes(name);
const list = (name: string, dflt: string) => (arg(name) ?? dflt).split(",").filter((s) => s !== "");

const MODES = list("--simd", "baseline,auto") as SimdMode[];
const THREADS = list("--threads", "1,2").map(Number);
const POSITIONS = list("--positions", "512,2048,8192,32768").map(Number);
const PREFILL = Number(arg("--prefill") ?? 2048);
const ROUNDS = Number(arg("--rounds") ?? 3);
const PRESET = arg("--preset") ?? "mobilellm-pro";
if (!Object.hasOwn(PRESETS, PRESET)) throw new Error(`unknown --preset ${PRESET} (known: ${Object.keys(PRESETS).join(", ")})`);
/** Token ids the benchmark feeds stay inside the preset's vocabulary. */
const VOCAB = PRESETS[PRESET].config.vocabSize;
const STEPS = Number(arg("--steps") ?? 4);
const ROOFLINE_BYTES = 512 << 20;
const CONTEXT = Math.max(...POSITIONS, PREFILL) + 64;
const RSS_CONTEXT = 8192;

// ---- results -----------------------------------------------------------------------------------------

const results = {
  machine: describeMachine(),
  date: new Date().toISOString(),
  context: CONTEXT,
  rooflines: [] as Array<{ build: string; threads: number; gbPerS: number; elsewhere: number | null }>,
  measured: [] as Measured[],
  load: [] as Array<{ build: string; layout: string; threads: number; seconds: number; wasmMiB: number }>,
  rss: [] as Array<{ threads: number; context: number; peakRssMiB: number; wasmMiB: number }>,
  /** Bytes a decode step streams from the weights (int4 + f16 scales + f32 row sums), for the roofline ratio. */
  weightBytesPerToken: 0,
};

function record(m: Omit<Measured, "tokPerS">, tokens = 1): void {
  const row = { ...m, tokPerS: (1000 * tokens) / m.ms };
  results.measured.push(row);
  const where = m.elsewhere === null ? "" : `, elsewhere ${m.elsewhere.toFixed(2)} cores`;
  console.log(`  ${m.build} ${m.layout} t${m.threads} ${m.task}: ${row.tokPerS.toFixed(1)} tok/s (${m.ms.toFixed(1)} ms${where})`);
}

// ---- model and engines ---------------------------------------------------------------------------------

const cleanups: Array<() => void> = [];

async function syntheticModel(): Promise<string> {
  const given = process.env.BENCH_MODEL_DIR;
  if (given && existsSync(join(given, "config.json"))) return resolve(given);
  const dir = given ? resolve(given) : mkdtempSync(join(tmpdir(), "mobilellm-bench-"));
  if (!given) cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const t0 = performance.now();
  await synthesizeCheckpoint({ presetJson: PRESETS[PRESET].json, presetName: PRESET, outDir: dir, seed: 1, maxShardBytes: 1e9 });
  console.log(`synthetic ${PRESET} checkpoint written to ${dir} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return dir;
}

function configOf(dir: string, layout: "hybrid" | "all-global"): ModelConfig {
  const json = JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as Record<string, unknown>;
  if (layout === "all-global") json["layer_types"] = new Array(json["num_hidden_layers"] as number).fill("full_attention");
  return parseConfig(json);
}

async function loadEngine(dir: string, config: ModelConfig, threads: number, simd: SimdMode, context: number): Promise<{ engine: WasmEngine; seconds: number }> {
  const t0 = performance.now();
  const ckpt = await openCheckpoint(dir);
  try {
    const engine = await WasmEngine.load(config, ckpt, resolveTensorNames(config, ckpt), { contextLength: context, threads, simd, wasm: kernelBytes(threads > 1), enableRelaxedSimd, spawn: spawnNodeWorker });
    return { engine, seconds: (performance.now() - t0) / 1000 };
  } finally {
    await ckpt.close();
  }
}

const wasmMiB = (e: WasmEngine) => e.kernels.memory.buffer.byteLength / 2 ** 20;

/** Random int8 keys/values and small scales in every slot up to `positions` (32-bit writes, an LCG). */
function fillCache(engine: WasmEngine, positions: number): void {
  const k = engine.kernels;
  let seed = 12345;
  const i32 = k.i32;
  const f32 = k.f32;
  for (const layer of engine.caches[0].layers) {
    const slots = Math.min(layer.slots, positions);
    for (const [data, scales] of [[layer.kData, layer.kScales], [layer.vData, layer.vScales]] as const) {
      for (let h = 0; h < layer.kvHeads; h++) {
        const base = (data + h * layer.slots * layer.headDim) >> 2;
        const end = base + (slots * layer.headDim) / 4;
        for (let j = base; j < end; j++) i32[j] = seed = (Math.imul(seed, 1103515245) + 12345) | 0;
        f32.fill(0.01, (scales >> 2) + h * layer.slots, (scales >> 2) + h * layer.slots + slots);
      }
    }
  }
}

/** ms of each of `n` decode steps from position `pos` on. */
function decodeSteps(engine: WasmEngine, pos: number, n: number): number[] {
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    engine.forward([(pos + i) % VOCAB], pos + i, false);
    ms.push(performance.now() - t0);
  }
  return ms;
}

/**
 * Decode at each position for every engine, in alternating rounds: median step time per engine and
 * position, and the load elsewhere over its steps.
 */
function decodeAcross(engines: Array<{ engine: WasmEngine; label: { build: string; layout: Measured["layout"]; threads: number } }>, positions: number[], task = (p: number) => `decode at ${p}`): void {
  for (const pos of positions) {
    const steps = engines.map(() => [] as number[]);
    engines.forEach(({ engine }) => decodeSteps(engine, pos, 2)); // warm-up at this position
    const m = withElsewhere(() => {
      for (let r = 0; r < ROUNDS; r++) engines.forEach(({ engine }, i) => steps[i].push(...decodeSteps(engine, pos, STEPS)));
    });
    engines.forEach(({ label }, i) => record({ ...label, task: task(pos), position: pos, ms: median(steps[i]), elsewhere: m.elsewhere }));
    for (const { engine, label } of engines) {
      const st = engine.threadPool.stats;
      if (label.threads > 1) console.log(`    (t${label.threads} pool so far: ${st.regions} regions, ${st.soloRegions} run solo (${st.soloSpells} spells; ${st.soloSteps} of ${st.splitSteps + st.soloSteps} decode steps), ${st.stolen} chunks stolen)`);
    }
  }
}

/**
 * 40 decode steps per engine before measuring: V8 compiles the kernels' optimized tier and the pool's
 * JavaScript in the background, and on 2 busy cores the first ~30 steps of a fresh engine ran up to 2x
 * slower (and stole more chunks) than the later ones.
 */
async function warmUp(engines: Array<{ engine: WasmEngine }>, pos: number): Promise<void> {
  for (let i = 0; i < 5; i++) {
    for (const { engine } of engines) decodeSteps(engine, pos, 8);
    await new Promise((r) => setTimeout(r, 300));
  }
}

function roofline(engine: WasmEngine, buf: number): { gbPerS: number; elsewhere: number | null } {
  const pool = engine.threadPool;
  pool.readBandwidth(buf, ROOFLINE_BYTES); // warm-up (and tier-up)
  const times: number[] = [];
  const m = withElsewhere(() => {
    for (let i = 0; i < 7; i++) {
      const t0 = performance.now();
      pool.readBandwidth(buf, ROOFLINE_BYTES);
      times.push(performance.now() - t0);
    }
  });
  return { gbPerS: ROOFLINE_BYTES / median(times) / 1e6, elsewhere: m.elsewhere };
}

/** A buffer of ROOFLINE_BYTES in the engine's Wasm memory, every page written (untouched pages read as the zero page). */
function rooflineBuffer(engine: WasmEngine): number {
  const k = engine.kernels;
  const ptr = k.alloc(ROOFLINE_BYTES);
  const u8 = k.u8;
  for (let p = ptr; p < ptr + ROOFLINE_BYTES; p += 4096) u8[p] = (p >> 12) & 255;
  return ptr;
}

// ---- the runs ------------------------------------------------------------------------------------------

type Labelled = { engine: WasmEngine; label: { build: string; layout: Measured["layout"]; threads: number } };

async function runBuild(dir: string, simd: SimdMode, opts: { prefill: boolean; busy: boolean; layouts: boolean }): Promise<void> {
  const config = configOf(dir, "hybrid");
  const engines: Labelled[] = [];
  try {
    for (const t of THREADS) {
      const { engine, seconds } = await loadEngine(dir, config, t, simd, CONTEXT);
      const build = engine.simd.variant === "relaxed" ? "relaxed" : "baseline";
      console.log(`\n[${build}, ${t} thread(s)] ${engine.simd.reason}; load + quantize ${seconds.toFixed(1)} s, Wasm memory ${wasmMiB(engine).toFixed(0)} MiB`);
      results.load.push({ build, layout: "hybrid", threads: t, seconds, wasmMiB: wasmMiB(engine) });
      engines.push({ engine, label: { build, layout: "hybrid", threads: t } });
    }
    if (!results.weightBytesPerToken) {
      // 30 layers x (q|k|v, o, gate|up, down) + the tied head, as il4 streams them (0.5625 B per weight:
      // int4 + f16 group scale, and 4 B per row: its f32 weight sum).
      const c = config;
      const stream = (rows: number, cols: number) => new Int4Matrix(rows, cols, 0, 0, 0).streamBytes;
      const perLayer =
        stream((c.numHeads + 2 * c.numKvHeads) * c.headDim, c.hiddenSize) + stream(c.hiddenSize, c.numHeads * c.headDim) +
        stream(2 * c.intermediateSize, c.hiddenSize) + stream(c.hiddenSize, c.intermediateSize);
      results.weightBytesPerToken = c.numLayers * perLayer + stream(c.vocabSize, c.hiddenSize);
    }

    if (!flag("--no-roofline")) console.log(`\nroofline: v128 loads over ${ROOFLINE_BYTES >> 20} MiB of Wasm memory`);
    for (const { engine, label } of flag("--no-roofline") ? [] : engines) {
      const buf = rooflineBuffer(engine);
      const r = roofline(engine, buf);
      results.rooflines.push({ build: label.build, threads: label.threads, gbPerS: r.gbPerS, elsewhere: r.elsewhere });
      console.log(`  t${label.threads}: ${r.gbPerS.toFixed(1)} GB/s${r.elsewhere === null ? "" : `, elsewhere ${r.elsewhere.toFixed(2)} cores`}`);
    }

    console.log(`\ndecode (KV cache filled with random int8 up to ${CONTEXT} positions; median of ${ROUNDS} x ${STEPS} steps, engines alternating)`);
    for (const { engine } of engines) fillCache(engine, CONTEXT);
    await warmUp(engines, POSITIONS[0]);
    decodeAcross(engines, POSITIONS);

    if (opts.prefill) {
      console.log(`\nprefill of a ${PREFILL}-token prompt (one run each, after a 64-token warm-up)`);
      const prompt = Array.from({ length: PREFILL }, (_, i) => (i * 7919) % VOCAB);
      for (const { engine, label } of engines) {
        engine.forward(prompt.slice(0, 64), 0, false);
        const m = withElsewhere(() => engine.forward(prompt, 0, false));
        record({ ...label, task: `prefill ${PREFILL}`, ms: m.wallMs, elsewhere: m.elsewhere }, PREFILL);
      }
    }

    if (opts.busy) {
      const pos = 2048;
      const busy = busyProcess();
      console.log(`\ndecode at ${pos} with a busy process on one core (pid ${busy.pid})`);
      try {
        await new Promise((r) => setTimeout(r, 500));
        for (const { engine } of engines) fillCache(engine, pos + 64);
        decodeAcross(engines, [pos], (p) => `decode at ${p}, one core busy`);
      } finally {
        busy.stop();
      }
    }
    if (opts.layouts) await runLayouts(dir, simd, engines);
  } finally {
    for (const { engine } of engines) await engine.dispose();
  }
}

/**
 * The same model with every layer global, loaded next to the hybrid engines and measured in the same
 * alternating rounds (the hybrid ones again): separate processes differ by up to 20% on this VM, so the
 * comparison is only fair inside one process.
 */
async function runLayouts(dir: string, simd: SimdMode, hybrid: Labelled[]): Promise<void> {
  const config = configOf(dir, "all-global");
  const engines: Labelled[] = [];
  try {
    for (const t of THREADS) {
      const { engine, seconds } = await loadEngine(dir, config, t, simd, CONTEXT);
      const build = engine.simd.variant === "relaxed" ? "relaxed" : "baseline";
      console.log(`\n[${build}, all layers global, ${t} thread(s)] load + quantize ${seconds.toFixed(1)} s, Wasm memory ${wasmMiB(engine).toFixed(0)} MiB`);
      results.load.push({ build, layout: "all-global", threads: t, seconds, wasmMiB: wasmMiB(engine) });
      engines.push({ engine, label: { build, layout: "all-global", threads: t } });
    }
    for (const { engine } of [...hybrid, ...engines]) fillCache(engine, CONTEXT);
    await warmUp(engines, POSITIONS[0]);
    console.log(`\ndecode, hybrid vs every layer global, alternating (task "layouts: decode at P")`);
    decodeAcross([...hybrid, ...engines], POSITIONS, (p) => `layouts: decode at ${p}`);
  } finally {
    for (const { engine } of engines) await engine.dispose();
  }
}

/** Peak RSS of a fresh process that loads the engine (relaxed where proven) with an 8k context and decodes once. */
function peakRss(dir: string, threads: number): void {
  const self = fileURLToPath(import.meta.url);
  const r = spawnSync(process.execPath, ["--import", "tsx", self, "--rss-child", String(threads)], {
    env: { ...process.env, BENCH_MODEL_DIR: dir }, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"],
  });
  const line = r.stdout.split("\n").find((l) => l.startsWith("{"));
  if (r.status !== 0 || !line) {
    console.log(`  peak RSS with ${threads} thread(s): the child process failed (status ${r.status})`);
    return;
  }
  const m = JSON.parse(line) as { peakRssMiB: number; wasmMiB: number };
  results.rss.push({ threads, context: RSS_CONTEXT, ...m });
  console.log(`  ${threads} thread(s), context ${RSS_CONTEXT}: peak RSS ${m.peakRssMiB.toFixed(0)} MiB (Wasm memory ${m.wasmMiB.toFixed(0)} MiB)`);
}

async function rssChild(threads: number): Promise<void> {
  const dir = process.env.BENCH_MODEL_DIR as string;
  const { engine } = await loadEngine(dir, configOf(dir, "hybrid"), threads, "auto", RSS_CONTEXT);
  engine.forward([1, 2, 3, 4], 0, false);
  const out = { peakRssMiB: process.resourceUsage().maxRSS / 1024, wasmMiB: wasmMiB(engine) };
  await engine.dispose();
  console.log(JSON.stringify(out));
}

// ---- report --------------------------------------------------------------------------------------------

function report(): void {
  const rows = results.measured.map((m) => ({
    build: m.build, layout: m.layout, threads: m.threads, task: m.task,
    "tok/s": +m.tokPerS.toFixed(1), "ms": +(m.ms / (m.task.startsWith("prefill") ? 1000 : 1)).toFixed(m.task.startsWith("prefill") ? 1 : 1) + (m.task.startsWith("prefill") ? " s" : ""),
    elsewhere: m.elsewhere === null ? "" : m.elsewhere.toFixed(2),
  }));
  console.log(`\n${results.machine}`);
  console.table(rows);
  const roof = (build: string, t: number) => results.rooflines.find((r) => r.build === build && r.threads === t)?.gbPerS;
  for (const m of results.measured) {
    if (m.task !== "decode at 2048" || m.layout !== "hybrid") continue;
    const bw = roof(m.build, m.threads);
    if (!bw) continue;
    const gb = results.weightBytesPerToken / (m.ms / 1000) / 1e9;
    console.log(`${m.build} t${m.threads} decode at 2048: ${gb.toFixed(1)} GB/s of weights = ${((100 * gb) / bw).toFixed(0)}% of the ${bw.toFixed(1)} GB/s roofline measured in this run`);
  }
  for (const build of ["relaxed", "baseline"]) {
    const one = results.measured.find((m) => m.build === build && m.threads === 1 && m.task.includes("busy"));
    const two = results.measured.find((m) => m.build === build && m.threads === 2 && m.task.includes("busy"));
    if (one && two) console.log(`${build}, one core busy: 2 threads at ${((100 * two.tokPerS) / one.tokPerS).toFixed(0)}% of 1 thread (${two.tokPerS.toFixed(1)} vs ${one.tokPerS.toFixed(1)} tok/s)`);
  }
}

// ---- main ----------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const child = arg("--rss-child");
  if (child) return rssChild(Number(child));
  console.log(`${results.machine}\ncontext ${CONTEXT}; builds ${MODES.join(", ")}; threads ${THREADS.join(", ")}; full-size synthetic ${PRESET}`);
  const quiet = await waitForQuiet(0.1, 60_000);
  console.log(`other processes before the run: ${quiet === null ? "unknown" : `${quiet.toFixed(2)} cores busy`}`);
  const dir = await syntheticModel();
  try {
    for (const m of MODES) {
      const last = m === MODES[MODES.length - 1];
      await runBuild(dir, m, { prefill: !flag("--no-prefill"), busy: !flag("--no-busy") && m !== "baseline", layouts: !flag("--no-layouts") && last });
    }
    if (!flag("--no-rss")) {
      console.log(`\npeak RSS (a fresh process per thread count, relaxed where proven, context ${RSS_CONTEXT})`);
      for (const t of THREADS) peakRss(dir, t);
    }
    const after = await otherLoad(1000);
    console.log(`\nother processes after the run: ${after === null ? "unknown" : `${after.toFixed(2)} cores busy`}`);
    report();
    const json = arg("--json");
    if (json) {
      writeFileSync(json, JSON.stringify(results, null, 2));
      console.log(`results written to ${json}`);
    }
  } finally {
    cleanups.forEach((c) => c());
  }
}

await main();
