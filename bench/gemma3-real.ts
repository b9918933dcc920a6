// Gemma 3's forward pass on the real gemma-3-270m Q4_K_M file, held against llama.cpp (node-llama-cpp's CPU
// backend) over real English text, to tell apart what the family's arithmetic does from what quantized
// arithmetic does. Three files hold the same weights: the hub file (Q5_0, Q4_K, Q6_K, Q8_0, F32), and its
// copy with every tensor dequantized to F32 by llama.cpp's own `gguf` Python package (the values ggml
// computes with, exactly). Compared, position by position, on next-token distributions:
//
//   1. llama.cpp on the Q4_K_M file vs llama.cpp on the F32 copy: what llama.cpp's quantized dot products
//      (activations rounded to Q8_K / Q8_0 blocks) change by themselves;
//   2. this project's float32 reference vs llama.cpp, both on the F32 copy: the Gemma 3 arithmetic of the
//      two implementations on the same values (llama.cpp keeps its KV cache in F16);
//   3. the reference (F32 copy) and the engine (the hub file, computed with its values) vs llama.cpp on the
//      hub file: the conformance figures of issue 24 (top-1 agreement, KL(llama.cpp || ours), perplexity on
//      both sides).
//
// The text is tokenized by llama.cpp (the file's own SentencePiece vocabulary), BOS first. Figures are
// printed, not asserted. The reference costs ~1 s a token on one core: --positions trades time for coverage.
//
//   npm run bench:gemma3-real -- [--positions 520] [--text /usr/share/common-licenses/GPL-3] [--skip reference]
//
// Environment: BENCH_GEMMA3_F32 (keep or reuse the F32 copy there), BENCH_NLC_DIR (node-llama-cpp's folder).
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { GgufFile } from "../src/model/checkpoint/gguf.js";
import { GgufWeights } from "../src/model/checkpoint/gguf-weights.js";
import { openFileSource } from "../src/node/file-source.js";
import { readLlamaCppHeader } from "../src/session/llama-gguf-model.js";
import { loadReferenceWeights } from "../src/reference/backend.js";
import { ReferenceModel } from "../src/reference/model.js";
import { loadModel } from "../src/api.js";
import { GEMMA3_270M_Q4_K_M, hubPath } from "../scripts/hub-models.js";
import { cpuLlama, importNodeLlamaCpp, type NlcSequence } from "./node-llama-cpp.js";
import { arg, count } from "./args.js";
import { AgreementMeter } from "./agreement.js";

const POSITIONS = count("positions", 520);
const TEXT = arg("text") ?? "/usr/share/common-licenses/GPL-3";
const SKIP = new Set((arg("skip") ?? "").split(",").filter(Boolean));
const NLC = resolve(process.env.BENCH_NLC_DIR ?? join(homedir(), ".cache", "mobilellm-wasm", "peer-nlc"));
const CONTEXT = 1024;
const CHUNK = 16;

/** The hub file with every tensor dequantized to F32 by gguf.quants.dequantize, metadata copied. */
function f32Copy(src: string, cleanups: Array<() => void>): string {
  const given = process.env.BENCH_GEMMA3_F32;
  if (given && existsSync(given)) return given;
  const dir = mkdtempSync(join(tmpdir(), "gemma3-f32-"));
  if (!given) cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const out = given ?? join(dir, "gemma-3-270m-f32.gguf");
  const py = `
import sys, numpy as np, gguf
r = gguf.GGUFReader(sys.argv[1])
w = gguf.GGUFWriter(sys.argv[2], arch=r.fields["general.architecture"].contents())
for k, f in r.fields.items():
    if k.startswith("GGUF.") or k == "general.architecture": continue
    t = f.types[0]
    w.add_key_value(k, f.contents(), t, sub_type=f.types[-1] if t == gguf.GGUFValueType.ARRAY else None)
for t in r.tensors:
    w.add_tensor(t.name, gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32).reshape([int(x) for x in reversed(t.shape)]), raw_dtype=gguf.GGMLQuantizationType.F32)
w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
`;
  const t0 = performance.now();
  const r = spawnSync("python3", ["-c", py, src, out], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`dequantizing with Python's gguf package failed: ${r.stderr.trim().split("\n").slice(-2).join(" | ")}`);
  console.log(`F32 copy (gguf.quants.dequantize) written to ${out} in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  return out;
}

/** The figures of one comparison as a table row ("peer" is the first engine fed to the meter). */
function row(what: string, m: AgreementMeter): Record<string, string | number> {
  const a = m.result;
  return {
    comparison: what, positions: a.positions, "top-1": a.top1.toFixed(4), "mean KL": a.meanKl.toExponential(2),
    "max KL": a.maxKl.toExponential(2), "ppl peer": a.pplLlama.toFixed(4), "ppl ours": a.pplOurs.toFixed(4),
    "ppl ratio": (a.pplOurs / a.pplLlama).toFixed(4),
  };
}

const nextOptions = { generateNext: { logits: true, options: { temperature: 1, topK: 0, topP: 1, minP: 0 } } } as const;

/** The peer's logits after positions [p0, p0 + n) of `ids`, evaluated in order on `seq`. */
async function peerChunk(seq: NlcSequence, ids: number[], p0: number, n: number, vocab: number): Promise<Float32Array[]> {
  const out = await seq.controlledEvaluate(ids.slice(p0, p0 + n).map((t) => [t, nextOptions]));
  return out.map((o, i) => {
    const logits = o?.next.logits;
    if (!logits) throw new Error(`llama.cpp returned no logits at position ${p0 + i}`);
    const row = new Float32Array(vocab).fill(-Infinity);
    for (const [id, v] of logits) row[id] = v;
    return row;
  });
}

async function main(cleanups: Array<() => void>): Promise<void> {
  const hub = hubPath(GEMMA3_270M_Q4_K_M);
  if (!existsSync(hub)) throw new Error(`${hub} is missing: npm run fetch:models`);
  const f32 = f32Copy(hub, cleanups);
  const llama = await cpuLlama(await importNodeLlamaCpp(NLC));
  console.log(`[llama.cpp] ${llama.llamaCppRelease.repo} ${llama.llamaCppRelease.release}; load average ${(await import("node:os")).loadavg().map((x) => x.toFixed(1)).join(" ")}`);
  type Lm = Awaited<ReturnType<typeof llama.loadModel>> & { tokenize(text: string): number[]; tokens: { bos: number } };
  const open = async (path: string) => {
    const lm = (await llama.loadModel({ modelPath: path, gpuLayers: 0, useMmap: true })) as Lm;
    const ctx = await lm.createContext({ contextSize: CONTEXT, batchSize: 512, threads: 1, sequences: 1, flashAttention: false });
    return { lm, ctx, seq: ctx.getSequence() };
  };
  const q = await open(hub);
  const f = await open(f32);
  const ids = [q.lm.tokens.bos, ...q.lm.tokenize(readFileSync(TEXT, "utf8"))].slice(0, Math.min(POSITIONS + 1, CONTEXT));
  console.log(`${TEXT}: ${ids.length} tokens (llama.cpp's tokenizer, BOS first), ${ids.length - 1} predicted positions`);

  const file = await GgufFile.open(await openFileSource(f32));
  const { config, names } = await readLlamaCppHeader(file);
  const reference = SKIP.has("reference") ? null : new ReferenceModel(config, await loadReferenceWeights(new GgufWeights(file), names), CONTEXT);
  await file.close();
  const engine = SKIP.has("engine") ? null : await loadModel(hub, { backend: "wasm", threads: 1, contextLength: CONTEXT }).catch((e: Error) => {
    console.log(`the engine does not load the hub file: ${e.message}`);
    return null;
  });

  const llamaSelf = new AgreementMeter();
  const refF32 = new AgreementMeter();
  const refQ = new AgreementMeter();
  const engQ = new AgreementMeter();
  for (let p0 = 0; p0 < ids.length - 1; p0 += CHUNK) {
    const n = Math.min(CHUNK, ids.length - 1 - p0);
    const pq = await peerChunk(q.seq, ids, p0, n, config.vocabSize);
    const pf = await peerChunk(f.seq, ids, p0, n, config.vocabSize);
    const eng = engine?.backend.forward(ids.slice(p0, p0 + n), p0, true);
    for (let i = 0; i < n; i++) {
      const pos = p0 + i;
      const next = ids[pos + 1];
      llamaSelf.add(pq[i], pf[i], next); // llama.cpp on the F32 copy in the place of "ours"
      if (reference) {
        const lr = reference.forward(ids[pos], pos);
        refF32.add(pf[i], lr, next);
        refQ.add(pq[i], lr, next);
      }
      if (eng) engQ.add(pq[i], eng[i], next);
    }
    process.stdout.write(`\r${p0 + n} positions`);
  }
  console.log("");
  const rows = [row("llama.cpp Q4_K_M (peer) vs llama.cpp F32 copy (as ours)", llamaSelf)];
  if (reference) rows.push(row("llama.cpp F32 copy (peer) vs our reference on it", refF32), row("llama.cpp Q4_K_M (peer) vs our reference on the F32 copy", refQ));
  if (engine) rows.push(row("llama.cpp Q4_K_M (peer) vs our engine on it", engQ));
  console.table(rows);
  for (const s of [q, f]) {
    await s.ctx.dispose();
    await s.lm.dispose();
  }
  await llama.dispose();
  await engine?.dispose();
}

const cleanups: Array<() => void> = [];
main(cleanups)
  .finally(() => cleanups.reverse().forEach((c) => c()))
  .catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
