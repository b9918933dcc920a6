// Time to ready, side by side in one run: this engine loading the full-size model from its GGUF (as
// `mobilellm convert` writes it) and from the bf16 checkpoint folder, at 1 and 2 threads, beside llama.cpp
// (node-llama-cpp's prebuilt CPU binaries) loading the llama.cpp GGUF of the same weights (Q4_0,
// bench/llama-gguf.ts). Figures are printed, never asserted.
//
// Each load runs in a fresh child process (bench/load-child.ts), so the page cache is warm (every input is
// read once before the first measurement, and a warm-up round runs first) but nothing of an earlier load is
// left in the process. "Ready" is the moment a first token could be computed: for ours, loadModel resolved
// (kernels compiled, weights read and repacked or quantized, threads started, KV cache allocated); for
// llama.cpp, getLlama + loadModel (memory-mapped, its default) + createContext. The first token's logits are
// then computed and timed from the same start, since a memory-mapped load defers its page faults to the
// first evaluation. Both get the same context length. Configurations run in rounds, each round every
// configuration once (the order rotating), so a slow drift of the shared machine hits them alike; a figure
// is the median over rounds, with the min-max beside it. Each child reports its peak RSS (VmHWM) and its
// resident size (VmRSS) once ready, from /proc/self/status.
//
//   flock /tmp/mobilellm-bench.lock npm run bench:load
//   npm run bench:load -- --rounds 3 --warmup 1 --threads 1,2 --ctx 4096 --simd auto --json /tmp/load.json
//   npm run bench:load -- --small --rounds 1 --warmup 0     # 2 layers, 4096-token vocabulary: a quick check
//   npm run bench:load -- --only ours                      # or --only llama
//
// Ours is loaded from the compiled library (dist/, what `mobilellm` runs): run `npm run build` first.
//
// Environment (each optional; without them everything is written once to temporary folders and removed):
//   BENCH_MODEL_DIR, BENCH_GGUF    the checkpoint folder and the llama.cpp GGUF (bench/peer-inputs.ts)
//   BENCH_OURS_GGUF=/tmp/m.gguf    reuse (or convert into and keep) the folder's GGUF as `mobilellm convert`
//                                  writes it
//   BENCH_NLC_DIR=/tmp/peer-nlc    the node-llama-cpp folder (bench/node-llama-cpp.ts)
//   NODE_LLAMA_CPP_VERSION         the node-llama-cpp version to install
import { spawn } from "node:child_process";
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { loadConfig } from "../src/node/bundled.js";
import { convertFolder } from "../src/node/gguf-files.js";
import type { SimdMode } from "../src/kernels/wasm.js";
import { describeMachine, machineBusyMs, median, waitForQuiet } from "./machine.js";
import { installNodeLlamaCpp, NLC_DEFAULT_VERSION } from "./node-llama-cpp.js";
import { peerGguf, seconds, syntheticModel, type Cleanups, type SynthShape } from "./peer-inputs.js";
import { REPORT_PREFIX, type LoadJob, type LoadReport } from "./load-child.js";
import type { LoadRun } from "./results.js";
import { arg, count, intList } from "./args.js";

// ---------------------------------------------------------------------------------------------------------
// Options

const flag = (name: string) => process.argv.includes(`--${name}`);

const THREADS = intList(arg("threads") ?? "1,2");
const ROUNDS = count("rounds", 3);
const WARMUP = count("warmup", 1, 0);
const CONTEXT = count("ctx", 4096);
const SIMD = (arg("simd") ?? "auto") as SimdMode;
const ONLY = arg("only");
if (ONLY !== undefined && ONLY !== "ours" && ONLY !== "llama") throw new Error(`--only must be ours or llama, got ${ONLY}`);
const NLC_VERSION = arg("nlc-version") ?? process.env.NODE_LLAMA_CPP_VERSION ?? NLC_DEFAULT_VERSION;
const JSON_OUT = arg("json");
const SHAPE: SynthShape = flag("small") ? { layers: 2, vocab: 4096 } : {};
if (arg("layers") !== undefined) SHAPE.layers = count("layers", 0);
if (arg("vocab") !== undefined) SHAPE.vocab = count("vocab", 0);
/** Token whose logits each child computes once ready: an ordinary piece in both vocabularies. */
const TOKEN = 1000;
/** Other processes busier than this (cores) during a load: its figure is flagged. */
const BUSY_ELSEWHERE = 0.25;
/** A child taking longer than this is killed and the benchmark fails. */
const CHILD_TIMEOUT_MS = 10 * 60_000;

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const API = join(ROOT, "dist", "src", "api.js");
const CHILD = join(ROOT, "bench", "load-child.ts");
const cleanups: Cleanups = [];

// ---------------------------------------------------------------------------------------------------------
// Inputs

/** Refuses to measure a stale build: dist/ must be newer than every source file. */
function checkBuild(): void {
  if (!existsSync(API)) throw new Error(`${API} is missing: run "npm run build" first (ours is measured as the compiled library)`);
  const built = statSync(API).mtimeMs;
  const newest = (dir: string): number =>
    Math.max(0, ...readdirSync(dir, { withFileTypes: true }).map((e) => (e.isDirectory() ? newest(join(dir, e.name)) : statSync(join(dir, e.name)).mtimeMs)));
  const src = Math.max(newest(join(ROOT, "src")), newest(join(ROOT, "assembly")));
  if (src > built) throw new Error(`src/ or assembly/ changed after dist/ was built: run "npm run build" first`);
}

/** The folder's GGUF as `mobilellm convert` writes it: BENCH_OURS_GGUF's, or converted once. */
async function oursGguf(dir: string): Promise<string> {
  const given = process.env.BENCH_OURS_GGUF;
  if (given && existsSync(given)) {
    console.log(`reusing ${resolve(given)} (${(statSync(given).size / 1e9).toFixed(2)} GB)`);
    return resolve(given);
  }
  const path = given ? resolve(given) : join(mkdtempSync(join(tmpdir(), "mobilellm-load-gguf-")), "model.gguf");
  if (!given) cleanups.push(() => rmSync(dirname(path), { recursive: true, force: true }));
  const t0 = performance.now();
  const r = await convertFolder(dir, path);
  console.log(`converted ${dir} to ${path} (${(r.layout.fileSize / 1e9).toFixed(2)} GB) in ${seconds(t0)} s`);
  return path;
}

/** Reads every file once, so that each measured load finds them in the page cache. */
function warmPageCache(paths: string[]): void {
  const t0 = performance.now();
  const buf = Buffer.allocUnsafe(8 << 20);
  let bytes = 0;
  for (const p of paths) {
    const files = statSync(p).isDirectory() ? readdirSync(p).map((f) => join(p, f)) : [p];
    for (const f of files) {
      const fd = openSync(f, "r");
      try {
        for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0; ) bytes += n;
      } finally {
        closeSync(fd);
      }
    }
  }
  console.log(`read ${(bytes / 1e9).toFixed(2)} GB of inputs in ${seconds(t0)} s (page cache warm-up)`);
}

// ---------------------------------------------------------------------------------------------------------
// Measurement

interface Config {
  label: string;
  engine: LoadJob["engine"];
  input: "GGUF" | "bf16 folder" | "llama.cpp GGUF";
  threads: number;
  job: LoadJob;
}

/** Runs one child; its report, how long it took from spawn to exit, and how busy the rest of the machine was. */
async function runChild(c: Config): Promise<{ report: LoadReport; elsewhere: number | null }> {
  const busy0 = machineBusyMs();
  const own0 = process.cpuUsage();
  const t0 = performance.now();
  const child = spawn(process.execPath, [...process.execArgv, CHILD, JSON.stringify(c.job)], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (err += d.toString()));
  const timer = setTimeout(() => child.kill("SIGKILL"), CHILD_TIMEOUT_MS);
  const code = await new Promise<number | null>((res) => child.on("close", (code) => res(code)));
  clearTimeout(timer);
  const wall = performance.now() - t0;
  const line = out.split("\n").find((l) => l.startsWith(REPORT_PREFIX));
  if (code !== 0 || line === undefined) throw new Error(`${c.label}: the child exited with ${code}${err ? `: ${err.trim().split("\n").slice(-5).join(" | ")}` : ""}`);
  const report = JSON.parse(line.slice(REPORT_PREFIX.length)) as LoadReport;
  const busy1 = machineBusyMs();
  const own = process.cpuUsage(own0);
  const elsewhere =
    busy0 === null || busy1 === null ? null : Math.max(0, (busy1 - busy0 - report.cpuMs - (own.user + own.system) / 1000) / wall);
  return { report, elsewhere };
}

const mib = (x: number) => Math.round(x);
const s2 = (ms: number) => (ms / 1000).toFixed(2);
const range = (xs: number[]) => `${s2(median(xs))} (${s2(Math.min(...xs))}-${s2(Math.max(...xs))})`;

/** The time a child's faults to ready take alone, at what one cost it (ms): its threads share them. */
const faultFloorMs = (r: LoadReport, threads: number) => (r.faults.ready * (r.faultMicros ?? NaN)) / 1000 / threads;

/** A child's time to ready without llama.cpp's binding start (getLlama): what llama.cpp itself spends. */
const withoutBinding = (r: LoadReport) => r.readyMs - (r.phases?.binding ?? 0);

function table(configs: Config[], runs: LoadRun[]): void {
  const of = (c: Config) => runs.filter((r) => r.label === c.label && !r.warmup);
  const llama = (threads: number) => {
    const c = configs.find((x) => x.engine === "llama.cpp" && x.threads === threads);
    return c ? { ready: median(of(c).map((r) => r.report.readyMs)), load: median(of(c).map((r) => withoutBinding(r.report))) } : null;
  };
  console.log(
    `\nready = a first token can be computed, in s: the median of ${ROUNDS} round(s) (min-max). llama.cpp's ready includes ` +
      `starting node-llama-cpp's binding (getLlama); 'load' leaves it out (loadModel + createContext). Ratios: ours / llama.cpp, ` +
      `medians, same threads. Memory in MiB from /proc/self/status (medians): before = the process before the clock starts, ` +
      `peak = VmHWM once ready, resident = VmRSS once ready and after the first token. 'elsewhere' = the most cores other ` +
      `processes kept busy while a measured child ran. 'faults to ready' = minor page faults of the child from the start ` +
      `to ready, thousands (llama.cpp maps the file and takes most of its faults at the first token); ours writes each ` +
      `page of its weights once, and 'fault floor' = those faults x what one cost each of that many threads faulting ` +
      `together, timed in the same child just after its load / the threads: the part of ready that is page faults alone.`,
  );
  console.table(
    configs.map((c) => {
      const rs = of(c);
      const ready = rs.map((r) => r.report.readyMs);
      const ref = llama(c.threads);
      const peak = median(rs.map((r) => r.report.ready.peak));
      const rss = median(rs.map((r) => r.report.ready.rss));
      const elsewhere = rs.map((r) => r.elsewhere).filter((x): x is number => x !== null);
      const ratio = (x: number | undefined) => (c.engine === "llama.cpp" || x === undefined ? "-" : +(median(ready) / x).toFixed(2));
      return {
        engine: c.engine,
        input: c.input,
        threads: c.threads,
        "ready s": range(ready),
        "llama.cpp load s": c.engine === "llama.cpp" ? range(rs.map((r) => withoutBinding(r.report))) : "-",
        "/ llama.cpp ready": ratio(ref?.ready),
        "/ llama.cpp load": ratio(ref?.load),
        "first token s": range(rs.map((r) => r.report.firstTokenMs)),
        "before MiB": mib(median(rs.map((r) => r.report.before.rss))),
        "peak MiB": mib(peak),
        "resident MiB": mib(rss),
        "peak / resident": +(peak / rss).toFixed(2),
        "resident after token": mib(median(rs.map((r) => r.report.firstToken.rss))),
        "faults to ready k": +(median(rs.map((r) => r.report.faults.ready)) / 1000).toFixed(1),
        "fault floor s": c.engine === "ours" ? s2(median(rs.map((r) => faultFloorMs(r.report, c.threads)))) : "-",
        elsewhere: elsewhere.length ? +Math.max(...elsewhere).toFixed(2) : "?",
      };
    }),
  );
  const phases = configs.flatMap((c) => {
    const ps = of(c).map((r) => r.report.phases).filter((x): x is Record<string, number> => x !== null);
    if (ps.length === 0) return [];
    const row: Record<string, string | number> = { engine: c.engine, input: c.input, threads: c.threads };
    for (const k of Object.keys(ps[0])) row[k] = s2(median(ps.map((p) => p[k])));
    return [row];
  });
  if (phases.length > 0) {
    console.log("\nwhere the time to ready went, s (medians): ours as the engine reports it (LoadTimes), llama.cpp by step");
    console.table(phases);
  }
  const noisy = runs.filter((r) => !r.warmup && r.elsewhere !== null && r.elsewhere > BUSY_ELSEWHERE).length;
  if (noisy > 0) console.log(`note: other processes kept more than ${BUSY_ELSEWHERE} core busy during ${noisy} measured load(s): those figures are high`);
}

async function main(): Promise<void> {
  console.log(`${describeMachine()}; threads ${THREADS.join(",")}; context ${CONTEXT}; ${WARMUP} warm-up + ${ROUNDS} measured round(s)`);
  checkBuild();
  const given = process.env.BENCH_MODEL_DIR;
  if ((SHAPE.layers !== undefined || SHAPE.vocab !== undefined) && given && existsSync(join(given, "config.json"))) {
    throw new Error(`--small, --layers and --vocab shape a new synthetic model; BENCH_MODEL_DIR=${given} already holds one`);
  }
  const dir = await syntheticModel(cleanups, SHAPE);
  const vocab = loadConfig(dir).vocabSize;
  if (TOKEN >= vocab) throw new Error(`the model's vocabulary (${vocab}) has no token ${TOKEN}`);
  const configs: Config[] = [];
  const paths: string[] = [];
  if (ONLY !== "llama") {
    const gguf = await oursGguf(dir);
    paths.push(gguf, dir);
    for (const threads of THREADS) {
      for (const [input, path] of [["GGUF", gguf], ["bf16 folder", dir]] as const) {
        configs.push({
          label: `ours ${input} t${threads}`, engine: "ours", input, threads,
          job: { engine: "ours", path, threads, contextLength: CONTEXT, token: TOKEN, api: API, simd: SIMD },
        });
      }
    }
  }
  if (ONLY !== "ours") {
    const gguf = await peerGguf(dir, cleanups);
    const nlcDir = installNodeLlamaCpp(NLC_VERSION, cleanups);
    paths.push(gguf);
    for (const threads of THREADS) {
      configs.push({
        label: `llama.cpp t${threads}`, engine: "llama.cpp", input: "llama.cpp GGUF", threads,
        job: { engine: "llama.cpp", path: gguf, threads, contextLength: CONTEXT, token: TOKEN, nlcDir },
      });
    }
  }
  configs.sort((a, b) => a.threads - b.threads);
  warmPageCache(paths);

  const runs: LoadRun[] = [];
  for (let round = 1 - WARMUP; round <= ROUNDS; round++) {
    const warmup = round < 1;
    // Each round starts one configuration later, so none always runs first (or right after llama.cpp).
    const shift = (round + WARMUP - 1) % configs.length;
    const order = [...configs.slice(shift), ...configs.slice(0, shift)];
    console.log(`\n--- ${warmup ? "warm-up round" : `round ${round} of ${ROUNDS}`}`);
    for (const c of order) {
      const quiet = await waitForQuiet(BUSY_ELSEWHERE, 5000);
      const { report, elsewhere } = await runChild(c);
      runs.push({ label: c.label, engine: c.engine, input: c.input, threads: c.threads, round, warmup, elsewhere, report });
      console.log(
        `${c.label.padEnd(24)} ready ${s2(report.readyMs)} s, first token ${s2(report.firstTokenMs)} s; peak ${mib(report.ready.peak)} MiB, ` +
          `resident ${mib(report.ready.rss)} MiB; ${(report.faults.ready / 1000).toFixed(1)}k faults` +
          (report.faultMicros === null ? "" : ` at ${report.faultMicros.toFixed(1)} µs: ${s2(faultFloorMs(report, c.threads))} s`) +
          `; ${report.detail}; ` +
          (report.phases ? `${Object.entries(report.phases).map(([k, v]) => `${k} ${s2(v)}`).join(", ")}; ` : "") +
          `elsewhere ${elsewhere?.toFixed(2) ?? "?"} (before: ${quiet?.toFixed(2) ?? "?"})`,
      );
    }
  }
  table(configs, runs);
  if (JSON_OUT) {
    writeFileSync(JSON_OUT, JSON.stringify({ machine: describeMachine(), context: CONTEXT, model: dir, runs }, null, 2));
    console.log(`wrote ${JSON_OUT}`);
  }
}

try {
  await main();
} finally {
  for (const c of cleanups.reverse()) c();
}
