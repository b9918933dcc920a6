// Conformance against llama.cpp on the real hub files (scripts/hub-models.ts), in one run: for each file, the
// tokenization of the conformance text on both sides; the next-token agreement over its first --positions
// positions (bench/agreement.ts: top-1, mean and max KL(llama.cpp || ours), perplexity on both sides, both
// engines fed llama.cpp's token ids); then, per thread count, each engine in a fresh child process per round
// (rounds alternating which goes first): time to ready, prefill and decode speed, peak memory.
//
//   npm run bench:conformance
//   npm run bench:conformance -- --positions 512 --threads 1,2 --rounds 2 --prefill 256 --decode 32
//
// A file that is not in the cache, or that this engine cannot load, is
// listed with the reason and skipped. Environment: BENCH_NLC_DIR (bench/node-llama-cpp.ts), MOBILELLM_HUB_DIR
// (scripts/hub-models.ts). Figures depend on the machine's load: the run prints the load average with them.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { loadModel, type Model } from "../src/api.js";
import type { WasmEngine } from "../src/model/engine.js";
import { HUB_MODELS, hubPath, type HubModel } from "../scripts/hub-models.js";
import { arg, count, intList } from "./args.js";
import { CONFORMANCE_TEXT_ABOUT, conformanceText, measureAgreement, missedTargets, TARGETS, withBos, type Agreement } from "./agreement.js";
import { median } from "./machine.js";
import { cpuLlama, importNodeLlamaCpp, installNodeLlamaCpp, NLC_DEFAULT_VERSION, type NlcLlama } from "./node-llama-cpp.js";

const POSITIONS = count("positions", 512);
const THREADS = intList(arg("threads") ?? "1,2");
const ROUNDS = count("rounds", 2);
const PREFILL = count("prefill", 256);
const DECODE = count("decode", 32);
/** Untimed decode steps first: the Wasm engine's thread pool needs about 10 to settle (bench/peer.ts). */
const WARMUP = count("warmup", 10);
const CONTEXT = Math.ceil((Math.max(POSITIONS + 1, PREFILL + WARMUP + DECODE) + 64) / 256) * 256;

type Engine = "ours" | "llama";

interface Speed {
  readyMs: number;
  prefillTokS: number;
  decodeTokS: number;
  peakRssMiB: number;
}

const loads = () => loadavg().map((x) => x.toFixed(2)).join(", ");

/** The prompt the speed runs use: the conformance text's first tokens (llama.cpp's ids), repeated if short. */
function speedTokens(ids: number[], n: number): number[] {
  return Array.from({ length: n }, (_, i) => ids[i % ids.length]);
}

/** One engine in a child process: load, prefill PREFILL tokens, WARMUP + DECODE single-token steps. */
async function child(who: Engine): Promise<void> {
  const threads = Number(arg("child-threads"));
  const file = arg("child-file")!;
  const ids = JSON.parse(arg("child-ids")!) as number[];
  const prompt = speedTokens(ids, PREFILL);
  const steps: number[] = [];
  let readyMs: number;
  let prefillMs: number;
  if (who === "ours") {
    const t0 = performance.now();
    const model = await loadModel(file, { backend: "wasm", threads, contextLength: CONTEXT });
    readyMs = performance.now() - t0;
    const engine = model.backend as WasmEngine;
    let t = performance.now();
    engine.forward(prompt, 0, false);
    prefillMs = performance.now() - t;
    for (let i = 0; i < WARMUP + DECODE; i++) {
      t = performance.now();
      engine.forward([ids[i % ids.length]], PREFILL + i, false);
      if (i >= WARMUP) steps.push(performance.now() - t);
    }
    await model.dispose();
  } else {
    const t0 = performance.now();
    const llama = await cpuLlama(await importNodeLlamaCpp(arg("child-nlc")!));
    const lm = await llama.loadModel({ modelPath: file, gpuLayers: 0, useMmap: true });
    const ctx = await lm.createContext({ contextSize: CONTEXT, batchSize: 512, threads, sequences: 1, flashAttention: "auto" });
    readyMs = performance.now() - t0;
    const seq = ctx.getSequence();
    let t = performance.now();
    await seq.evaluateWithoutGeneratingNewTokens(prompt);
    prefillMs = performance.now() - t;
    for (let i = 0; i < WARMUP + DECODE; i++) {
      t = performance.now();
      const r = await seq.controlledEvaluate([[ids[i % ids.length], { generateNext: { token: true } }]]);
      if (r[0]?.next.token == null) throw new Error("llama.cpp produced no next token");
      if (i >= WARMUP) steps.push(performance.now() - t);
    }
    await ctx.dispose();
    await lm.dispose();
    await llama.dispose();
  }
  const speed: Speed = {
    readyMs,
    prefillTokS: (1000 * PREFILL) / prefillMs,
    decodeTokS: 1000 / median(steps),
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
  };
  console.log(JSON.stringify(speed));
}

function runChild(who: Engine, file: string, nlcDir: string, threads: number, ids: number[]): Speed {
  const r = spawnSync(
    process.execPath,
    [...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2), "--child", who, "--child-threads", String(threads), "--child-file", file, "--child-nlc", nlcDir, "--child-ids", JSON.stringify(ids.slice(0, PREFILL + WARMUP + DECODE))],
    { encoding: "utf8", maxBuffer: 1 << 24 },
  );
  const line = r.stdout.trim().split("\n").pop() ?? "";
  if (r.status !== 0 || !line.startsWith("{")) throw new Error(`the ${who} child failed (status ${r.status}): ${r.stderr.trim().split("\n").slice(-3).join(" | ")}`);
  return JSON.parse(line) as Speed;
}

/** The first token index where two tokenizations differ, or -1. */
function firstDifference(a: number[], b: number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) if (a[i] !== b[i]) return i;
  return -1;
}

interface FileReport {
  name: string;
  skipped?: string;
  tokens?: string;
  agreement?: Agreement;
  speed?: Array<{ threads: number; ours: Speed; llama: Speed }>;
}

async function conform(m: HubModel, llama: NlcLlama, nlcDir: string): Promise<FileReport> {
  const path = hubPath(m);
  if (!existsSync(path)) return { name: m.file, skipped: `not in the cache (${path}): npm run fetch:models` };
  let ours: Model;
  try {
    ours = await loadModel(path, { backend: "wasm", threads: 1, contextLength: CONTEXT });
  } catch (err) {
    return { name: m.file, skipped: `this engine cannot load it yet: ${(err as Error).message.split("\n")[0]}` };
  }
  const lm = await llama.loadModel({ modelPath: path, gpuLayers: 0, useMmap: true });
  const report: FileReport = { name: m.file };
  try {
    const text = conformanceText();
    const theirs = lm.tokenize(text);
    const ids = withBos(ours, theirs);
    if (ours.tokenizer) {
      const mine = ours.encode(text, false);
      const at = firstDifference(mine, theirs);
      report.tokens = at < 0 ? `identical (${theirs.length} tokens)` : `differ from token ${at} of ${theirs.length} (ours ${mine[at]}, llama.cpp ${theirs[at]})`;
    } else {
      report.tokens = "no tokenizer in this engine's reading of the file";
    }
    const ctx = await lm.createContext({ contextSize: CONTEXT, batchSize: 512, threads: 2, sequences: 1, flashAttention: "auto" });
    try {
      const engine = ours.backend as WasmEngine;
      report.agreement = await measureAgreement(
        { llama: { model: lm, context: ctx }, ours: (tokens, start) => engine.forward(tokens, start, true), vocab: ours.config.vocabSize },
        ids,
        Math.min(POSITIONS, ids.length - 1),
      );
    } finally {
      await ctx.dispose();
    }
    report.speed = [];
    for (const threads of THREADS) {
      const runs: Record<Engine, Speed[]> = { ours: [], llama: [] };
      for (let round = 0; round < ROUNDS; round++) {
        for (const who of round % 2 === 0 ? (["ours", "llama"] as const) : (["llama", "ours"] as const)) runs[who].push(runChild(who, path, nlcDir, threads, ids));
      }
      const med = (s: Speed[]): Speed => ({
        readyMs: median(s.map((x) => x.readyMs)),
        prefillTokS: median(s.map((x) => x.prefillTokS)),
        decodeTokS: median(s.map((x) => x.decodeTokS)),
        peakRssMiB: median(s.map((x) => x.peakRssMiB)),
      });
      report.speed.push({ threads, ours: med(runs.ours), llama: med(runs.llama) });
    }
  } finally {
    await ours.dispose();
    await lm.dispose();
  }
  return report;
}

const f = (x: number, d = 1) => x.toFixed(d);

async function main(): Promise<void> {
  const who = arg("child");
  if (who === "ours" || who === "llama") return child(who);
  console.log(`load average at the start: ${loads()}`);
  const cleanups: Array<() => void> = [];
  const nlcDir = installNodeLlamaCpp(arg("nlc-version") ?? process.env.NODE_LLAMA_CPP_VERSION ?? NLC_DEFAULT_VERSION, cleanups);
  const llama = await cpuLlama(await importNodeLlamaCpp(nlcDir));
  console.log(`[llama.cpp] ${llama.llamaCppRelease.repo} ${llama.llamaCppRelease.release} (${llama.buildType}); ${llama.systemInfo.replace(/\s+/g, " ").trim()}`);
  console.log(`text: ${CONFORMANCE_TEXT_ABOUT}; targets: top-1 >= ${TARGETS.top1}, mean KL <= ${TARGETS.meanKl}, perplexity within ${100 * TARGETS.perplexity}%`);
  const reports: FileReport[] = [];
  try {
    for (const m of HUB_MODELS) {
      const r = await conform(m, llama, nlcDir);
      reports.push(r);
      console.log(`${r.name}: ${r.skipped ? `skipped: ${r.skipped}` : "done"}`);
    }
  } finally {
    await llama.dispose();
    for (const c of cleanups.reverse()) c();
  }
  for (const r of reports) {
    console.log(`\n${r.name}`);
    if (r.skipped) {
      console.log(`  skipped: ${r.skipped}`);
      continue;
    }
    const a = r.agreement!;
    console.log(`  tokenization of the text: ${r.tokens}`);
    console.log(
      `  over ${a.positions} positions: top-1 ${f(a.top1, 4)}, KL(llama.cpp || ours) mean ${a.meanKl.toFixed(5)} max ${a.maxKl.toFixed(4)} nats, ` +
        `perplexity ours ${f(a.pplOurs, 3)} llama.cpp ${f(a.pplLlama, 3)} (${f(100 * (a.pplOurs / a.pplLlama - 1), 2)}%); targets missed: ${missedTargets(a).join("; ") || "none"}`,
    );
    console.table(
      r.speed!.flatMap(({ threads, ours, llama: l }) => [
        { threads, "": "ready ms", ours: f(ours.readyMs, 0), "llama.cpp": f(l.readyMs, 0), "ours / llama.cpp": f(ours.readyMs / l.readyMs, 2) },
        { threads, "": `prefill ${PREFILL} tok/s`, ours: f(ours.prefillTokS), "llama.cpp": f(l.prefillTokS), "ours / llama.cpp": f(ours.prefillTokS / l.prefillTokS, 2) },
        { threads, "": `decode tok/s`, ours: f(ours.decodeTokS), "llama.cpp": f(l.decodeTokS), "ours / llama.cpp": f(ours.decodeTokS / l.decodeTokS, 2) },
        { threads, "": "peak RSS MiB", ours: f(ours.peakRssMiB, 0), "llama.cpp": f(l.peakRssMiB, 0), "ours / llama.cpp": f(ours.peakRssMiB / l.peakRssMiB, 2) },
      ]),
    );
  }
  console.log(`\nload average at the end: ${loads()} (2 cores; figures from a busy machine are slower and noisier on both sides)`);
  console.log(`each speed figure: the median of ${ROUNDS} fresh child processes per engine; decode: the median of ${DECODE} steps after ${WARMUP} untimed ones, following a ${PREFILL}-token prefill`);
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
