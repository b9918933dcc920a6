// One Llama GGUF, two engines: llama.cpp (through node-llama-cpp) and this engine read the SAME file, a
// llama.cpp-layout Q4_0 GGUF of a synthetic checkpoint in a Llama preset's published shape (default
// Llama-3.2-1B), and are compared on what they predict and how fast they decode. Figures are printed, not
// asserted.
//
//  1. `mobilellm synth --preset P` (seed 1) writes the bf16 folder once; bench/llama-gguf.ts streams it
//     into a llama.cpp GGUF with ggml's own Q4_0 rounding and llama.cpp's q/k row order, as
//     convert_hf_to_gguf.py + llama-quantize would. Our engine repacks those Q4_0 blocks as they are, so
//     both engines hold the same int4 weights; both quantize activations to int8 per block of 32 (ours with f32
//     scales, llama.cpp's Q8_0 with f16 ones); they differ in the KV cache (ours int8, llama.cpp F16) and the
//     order of float sums.
//  2. Agreement: for each of --prompts random prompts (--prompt-tokens ids), the next-token distribution at
//     the last position from both: top-1 agreement and KL(llama.cpp || ours), llama.cpp's probabilities at
//     temperature 1 with no truncation.
//  3. Speed: per thread count, decode after a --decode-at-token prompt both engines really evaluate, each
//     engine in a fresh child process per round (rounds alternating which goes first), the median of all
//     rounds' --iterations steps.
//
//   flock /tmp/mobilellm-bench.lock npm run bench:peer-llama
//   npm run bench:peer-llama -- --preset smollm2-360m --threads 1,2 --decode-at 512 --iterations 16 --rounds 2
//
// Environment: BENCH_MODEL_DIR (reuse or keep the synthetic folder), BENCH_GGUF (reuse or keep the GGUF),
// BENCH_NLC_DIR (bench/node-llama-cpp.ts).
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { loadModel } from "../src/api.js";
import { PRESETS } from "../src/model/config.js";
import { synthesizeCheckpoint } from "../src/node/synth.js";
import type { WasmEngine } from "../src/model/engine.js";
import { cpuLlama, importNodeLlamaCpp, installNodeLlamaCpp, NLC_DEFAULT_VERSION } from "./node-llama-cpp.js";
import { peerGguf, seconds, type Cleanups } from "./peer-inputs.js";
import { median } from "./machine.js";
import { arg, count, intList } from "./args.js";

const PRESET = arg("preset") ?? "llama-3.2-1b";
if (!Object.hasOwn(PRESETS, PRESET) || PRESETS[PRESET].config.architecture !== "llama") {
  throw new Error(`--preset must be a Llama preset: ${Object.keys(PRESETS).filter((p) => PRESETS[p].config.architecture === "llama").join(", ")}`);
}
const THREADS = intList(arg("threads") ?? "1,2");
const PROMPTS = count("prompts", 8);
const PROMPT_TOKENS = count("prompt-tokens", 32);
const DECODE_AT = count("decode-at", 512);
const ITERATIONS = count("iterations", 16);
const ROUNDS = count("rounds", 2);
/** Untimed decode steps first: the Wasm engine's thread pool needs about 10 to reach speed (bench/peer.ts). */
const WARMUP = count("warmup", 10);
const CONTEXT = Math.ceil((DECODE_AT + WARMUP + ITERATIONS + 64) / 256) * 256;
const VOCAB = PRESETS[PRESET].config.vocabSize;
/** Ordinary token ids (past the synthetic vocabulary's byte tokens and below its specials). */
const token = (i: number) => 300 + ((i * 7919) % (VOCAB - 400));
const cleanups: Cleanups = [];

async function syntheticFolder(): Promise<string> {
  const given = process.env.BENCH_MODEL_DIR;
  if (given && existsSync(join(given, "config.json"))) return resolve(given);
  const dir = given ? resolve(given) : mkdtempSync(join(tmpdir(), `mobilellm-peer-${PRESET}-`));
  if (!given) cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const t0 = performance.now();
  await synthesizeCheckpoint({ presetJson: PRESETS[PRESET].json, presetName: PRESET, outDir: dir, seed: 1, maxShardBytes: 1e9 });
  console.log(`synthetic ${PRESET} checkpoint (seed 1) written to ${dir} in ${seconds(t0)} s`);
  return dir;
}

function softmax(logits: Float32Array): Float64Array {
  let max = -Infinity;
  for (const x of logits) max = Math.max(max, x);
  const p = new Float64Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += p[i] = Math.exp(logits[i] - max);
  for (let i = 0; i < p.length; i++) p[i] /= sum;
  return p;
}

type Engine = "ours" | "llama";

/**
 * One engine in a child process (this file with --child): it loads the GGUF, really evaluates the same
 * DECODE_AT-token prompt, decodes WARMUP untimed tokens, then times ITERATIONS single-token decode steps; their ms.
 */
function decodeChild(who: Engine, gguf: string, nlcDir: string, threads: number): number[] {
  const r = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2), "--child", who, "--child-threads", String(threads), "--child-gguf", gguf, "--child-nlc", nlcDir], {
    encoding: "utf8",
    maxBuffer: 1 << 24,
  });
  const line = r.stdout.trim().split("\n").pop() ?? "";
  if (r.status !== 0 || !line.startsWith("{")) throw new Error(`the ${who} child failed (status ${r.status}): ${r.stderr.trim().split("\n").slice(-3).join(" | ")}`);
  return (JSON.parse(line) as { ms: number[] }).ms;
}

async function child(who: Engine): Promise<void> {
  const threads = Number(arg("child-threads"));
  const gguf = arg("child-gguf")!;
  const prompt = Array.from({ length: DECODE_AT }, (_, i) => token(i));
  const ms: number[] = [];
  if (who === "ours") {
    const model = await loadModel(gguf, { backend: "wasm", threads, contextLength: CONTEXT });
    const engine = model.backend as WasmEngine;
    engine.forward(prompt, 0, false);
    for (let i = 0, p = DECODE_AT; i < WARMUP + ITERATIONS; i++, p++) {
      const t = performance.now();
      engine.forward([token(p)], p, false);
      if (i >= WARMUP) ms.push(performance.now() - t);
    }
    await model.dispose();
  } else {
    const llama = await cpuLlama(await importNodeLlamaCpp(arg("child-nlc")!));
    const lm = await llama.loadModel({ modelPath: gguf, gpuLayers: 0, useMmap: true });
    const ctx = await lm.createContext({ contextSize: CONTEXT, batchSize: 512, threads, sequences: 1, flashAttention: "auto" });
    const seq = ctx.getSequence();
    await seq.evaluateWithoutGeneratingNewTokens(prompt);
    for (let i = 0; i < WARMUP + ITERATIONS; i++) {
      const t = performance.now();
      const r = await seq.controlledEvaluate([[token(seq.nextTokenIndex), { generateNext: { token: true } }]]);
      if (r[0]?.next.token == null) throw new Error("llama.cpp produced no next token");
      if (i >= WARMUP) ms.push(performance.now() - t);
    }
    await ctx.dispose();
    await lm.dispose();
    await llama.dispose();
  }
  console.log(JSON.stringify({ ms }));
}

async function main(): Promise<void> {
  const childOf = arg("child");
  if (childOf === "ours" || childOf === "llama") return child(childOf);
  const dir = await syntheticFolder();
  const gguf = await peerGguf(dir, cleanups, `${PRESET} shapes, synthetic weights`);
  const nlcDir = installNodeLlamaCpp(arg("nlc-version") ?? process.env.NODE_LLAMA_CPP_VERSION ?? NLC_DEFAULT_VERSION, cleanups);
  const llama = await cpuLlama(await importNodeLlamaCpp(nlcDir));
  console.log(`[llama.cpp] ${llama.llamaCppRelease.repo} ${llama.llamaCppRelease.release} (${llama.buildType}); ${llama.systemInfo.replace(/\s+/g, " ").trim()}`);
  const lm = await llama.loadModel({ modelPath: gguf, gpuLayers: 0, useMmap: true });
  const rows: Array<Record<string, string | number>> = [];
  try {
    for (const threads of THREADS.slice(0, 1)) {
      const t0 = performance.now();
      const ours = await loadModel(gguf, { backend: "wasm", threads, contextLength: CONTEXT });
      const engine = ours.backend as WasmEngine;
      console.log(`[ours] ${gguf}: ${threads} thread(s), ${engine.simd.variant} build, loaded in ${seconds(t0)} s`);
      const ctx = await lm.createContext({ contextSize: CONTEXT, batchSize: 512, threads, sequences: 1, flashAttention: "auto" });
      const seq = ctx.getSequence();
      try {
        {
          // Agreement: the same prompts, the distribution after the last token.
          let agree = 0;
          const kls: number[] = [];
          for (let p = 0; p < PROMPTS; p++) {
            const ids = Array.from({ length: PROMPT_TOKENS }, (_, i) => token(p * 1000 + i));
            await seq.clearHistory();
            if (ids.length > 1) await seq.evaluateWithoutGeneratingNewTokens(ids.slice(0, -1));
            const out = await seq.controlledEvaluate([[ids[ids.length - 1], { generateNext: { token: true, probabilities: true, options: { temperature: 1, topK: 0, topP: 1, minP: 0 } } }]]);
            const probs = out[0]?.next.probabilities;
            if (!probs) throw new Error("llama.cpp returned no probabilities");
            const q = softmax(engine.forward(ids, 0, false)[0]);
            let kl = 0;
            let top = -1;
            let topP = -1;
            for (const [id, pr] of probs) {
              if (pr > topP) [top, topP] = [id, pr];
              if (pr > 0) kl += pr * Math.log(pr / Math.max(q[id], 1e-300));
            }
            let ourTop = 0;
            for (let i = 1; i < q.length; i++) if (q[i] > q[ourTop]) ourTop = i;
            if (ourTop === top) agree++;
            kls.push(kl);
            console.log(`  prompt ${p}: llama.cpp top-1 ${top} (p ${topP.toFixed(4)}), ours ${ourTop} (p ${q[ourTop].toFixed(4)}), KL ${kl.toExponential(2)} nats (${probs.size} probabilities)`);
          }
          rows.push({ threads, task: `agreement over ${PROMPTS} prompts of ${PROMPT_TOKENS} tokens`, "llama.cpp": `top-1 same in ${agree}/${PROMPTS}`, ours: `KL median ${median(kls).toExponential(2)}, max ${Math.max(...kls).toExponential(2)} nats`, "ours / llama.cpp": "" });
        }
      } finally {
        await ctx.dispose();
        ours.dispose();
      }
    }
  } finally {
    await lm.dispose();
    await llama.dispose();
  }
  // Speed: each engine decodes in a process of its own (sharing one, each slowed the other: ours ran at
  // 15.5 instead of 20.5 tok/s beside llama.cpp), rounds alternating which goes first.
  for (const threads of THREADS) {
    const steps: Record<Engine, number[]> = { ours: [], llama: [] };
    for (let round = 0; round < ROUNDS; round++) {
      for (const who of round % 2 === 0 ? (["ours", "llama"] as const) : (["llama", "ours"] as const)) {
        steps[who].push(...decodeChild(who, gguf, nlcDir, threads));
      }
    }
    const ours1 = 1000 / median(steps.ours);
    const llama1 = 1000 / median(steps.llama);
    rows.push({ threads, task: `decode at ${DECODE_AT}`, "llama.cpp": `${llama1.toFixed(1)} tok/s`, ours: `${ours1.toFixed(1)} tok/s`, "ours / llama.cpp": (ours1 / llama1).toFixed(2) });
    console.log(`  ${threads} thread(s), decode at ${DECODE_AT}: ours ${ours1.toFixed(1)} tok/s, llama.cpp ${llama1.toFixed(1)} tok/s`);
  }
  console.log(`\n${PRESET} shapes, synthetic weights, one llama.cpp Q4_0 GGUF (${gguf}), context ${CONTEXT}`);
  console.table(rows);
}

main()
  .finally(() => {
    for (const c of cleanups.reverse()) c();
  })
  .catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
