// One configuration of `npm run bench:load` in a process of its own (bench/load.ts starts it): loads a
// model until a first token could be computed ("ready"), computes that token's logits, and prints one line,
// LOAD_REPORT followed by the JSON of a LoadReport, with the process's memory at each step.
//
// Ours is loaded through the compiled library (dist/src/api.js, what `mobilellm` runs), llama.cpp through
// node-llama-cpp: getLlama (the native binding), loadModel (the GGUF, memory-mapped as llama.cpp does by
// default) and createContext (KV cache and compute buffers), the three steps before it can evaluate a token.
// Modules are imported before the clock starts, for both.
import { readFileSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { SimdMode } from "../src/kernels/wasm.js";
import { pageFaultMicros } from "./machine.js";
import { cpuLlama, importNodeLlamaCpp } from "./node-llama-cpp.js";

export interface LoadJob {
  engine: "ours" | "llama.cpp";
  /** A checkpoint folder or GGUF file (ours), the llama.cpp GGUF (llama.cpp). */
  path: string;
  threads: number;
  contextLength: number;
  /** The token whose logits are computed once ready. */
  token: number;
  /** ours: dist/src/api.js. */
  api?: string;
  simd?: SimdMode;
  /** llama.cpp: the node-llama-cpp folder. */
  nlcDir?: string;
}

/** /proc/self/status figures, in MiB: VmRSS (resident now) and VmHWM (the most it has been resident). */
export interface Memory {
  rss: number;
  peak: number;
}

export interface LoadReport {
  readyMs: number;
  /** From the same start to the first token's logits. */
  firstTokenMs: number;
  /** Before the clock starts (Node, the modules), once ready, after the first token. */
  before: Memory;
  ready: Memory;
  firstToken: Memory;
  /**
   * Minor page faults of the whole process (every thread) from the start to ready and to the first token:
   * the pages the load wrote for the first time (ours) or mapped from the file (llama.cpp).
   */
  faults: { ready: number; firstToken: number };
  /**
   * ours: what one page fault cost each of the job's threads faulting together, in µs, timed in this process
   * just after the load (pageFaultMicros), while the machine is as it was for the load; null for llama.cpp.
   */
  faultMicros: number | null;
  /** CPU time of the whole process (every thread), start to end, in ms. */
  cpuMs: number;
  /**
   * Where the time to ready went, in ms: ours, the engine's own breakdown (its LoadTimes) where it reports
   * one; llama.cpp, its three steps (binding = getLlama, model = loadModel, context = createContext).
   */
  phases: Record<string, number> | null;
  /** What ran: the kernel build and its reason, or llama.cpp's release and features. */
  detail: string;
}

export const REPORT_PREFIX = "LOAD_REPORT ";

function memory(): Memory {
  const status = readFileSync("/proc/self/status", "utf8");
  const kb = (key: string) => {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status);
    if (!m) throw new Error(`/proc/self/status has no ${key}`);
    return Number(m[1]) / 1024;
  };
  return { rss: kb("VmRSS"), peak: kb("VmHWM") };
}

const minorFaults = () => process.resourceUsage().minorPageFault;

type Api = typeof import("../src/api.js");

async function runOurs(job: LoadJob): Promise<Omit<LoadReport, "cpuMs">> {
  const api = (await import(pathToFileURL(job.api!).href)) as Api;
  const before = memory();
  const f0 = minorFaults();
  const t0 = performance.now();
  const model = await api.loadModel(job.path, { threads: job.threads, contextLength: job.contextLength, simd: job.simd });
  const readyMs = performance.now() - t0;
  const readyFaults = minorFaults() - f0;
  const ready = memory();
  model.logits([job.token]);
  const firstTokenMs = performance.now() - t0;
  const faults = { ready: readyFaults, firstToken: minorFaults() - f0 };
  const firstToken = memory();
  const b = model.backend;
  if (b.threads !== job.threads) throw new Error(`asked for ${job.threads} threads, the engine runs ${b.threads}`);
  const detail = b.simd ? `${b.simd.variant} build` : b.name;
  await model.dispose();
  // After every memory reading: the probe's own pages must not count in the peak.
  const faultMicros = await pageFaultMicros(job.threads);
  const t = b.loadTimes;
  const phases = t ? { kernels: t.kernels, read: t.read, "quantize/repack": t.quantize, "start threads": t.threads, "engine total": t.total } : null;
  return { readyMs, firstTokenMs, before, ready, firstToken, faults, faultMicros, phases, detail };
}

async function runLlama(job: LoadJob): Promise<Omit<LoadReport, "cpuMs">> {
  const nlc = await importNodeLlamaCpp(job.nlcDir!);
  const before = memory();
  const f0 = minorFaults();
  const t0 = performance.now();
  const llama = await cpuLlama(nlc);
  const t1 = performance.now();
  const model = await llama.loadModel({ modelPath: job.path, gpuLayers: 0, useMmap: true });
  const t2 = performance.now();
  const ctx = await model.createContext({ contextSize: job.contextLength, batchSize: Math.min(512, job.contextLength), threads: job.threads, sequences: 1, flashAttention: "auto" });
  const seq = ctx.getSequence();
  const readyMs = performance.now() - t0;
  const readyFaults = minorFaults() - f0;
  const phases = { binding: t1 - t0, model: t2 - t1, context: t0 + readyMs - t2 };
  const ready = memory();
  const out = await seq.controlledEvaluate([[job.token, { generateNext: { token: true } }]]);
  const firstTokenMs = performance.now() - t0;
  const faults = { ready: readyFaults, firstToken: minorFaults() - f0 };
  const firstToken = memory();
  if (out[0]?.next.token == null) throw new Error("llama.cpp produced no next token");
  if (ctx.currentThreads !== job.threads) throw new Error(`asked llama.cpp for ${job.threads} threads, it runs ${ctx.currentThreads}`);
  const detail = `${llama.llamaCppRelease.release} (${llama.buildType} binary)`;
  await ctx.dispose();
  await model.dispose();
  await llama.dispose();
  return { readyMs, firstTokenMs, before, ready, firstToken, faults, faultMicros: null, phases, detail };
}

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2] ?? "null") as LoadJob | null;
  if (job === null) throw new Error("usage: load-child.ts JOB_JSON (bench/load.ts starts it)");
  const r = job.engine === "ours" ? await runOurs(job) : await runLlama(job);
  const cpu = process.cpuUsage();
  const report: LoadReport = { ...r, cpuMs: (cpu.user + cpu.system) / 1000 };
  process.stdout.write(`${REPORT_PREFIX}${JSON.stringify(report)}\n`);
}

// Run as a script (bench/load.ts imports only the types and the prefix).
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) await main();
