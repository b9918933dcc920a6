// The inputs of the benchmarks against llama.cpp (bench/peer.ts, bench/load.ts): the synthetic checkpoint
// folder and its weights as a llama.cpp GGUF (bench/llama-gguf.ts), written once.
//
// Environment (each optional; without them the files go to temporary folders that `cleanups` removes):
//   BENCH_MODEL_DIR=/tmp/mlp-synth    reuse a folder written by `mobilellm synth --preset mobilellm-pro`
//                                     (written there, and kept, if it does not exist yet)
//   BENCH_GGUF=/tmp/mlp-synth.gguf    reuse (when its size matches the checkpoint's layout) or write and keep
//                                     the llama.cpp GGUF
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { PRESETS } from "../src/model/config.js";
import { loadConfig } from "../src/node/bundled.js";
import { synthesizeCheckpoint } from "../src/node/synth.js";
import { resolveTensorNames } from "../src/model/tensor-names.js";
import { encodeGgufHeader } from "../src/model/checkpoint/gguf-writer.js";
import { writeGgufFile } from "../src/node/gguf-files.js";
import { openCheckpoint } from "../src/node/folder.js";
import { llamaGguf } from "./llama-gguf.js";

/** Removes what the setup wrote to temporary folders; run them, newest first, when the benchmark ends. */
export type Cleanups = Array<() => void>;

export const seconds = (t0: number) => ((performance.now() - t0) / 1000).toFixed(1);

export function freeBytes(dir: string): number | null {
  try {
    const out = execFileSync("df", ["-Pk", dir], { encoding: "utf8" }).trim().split("\n").pop()!.split(/\s+/);
    return Number(out[3]) * 1024;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Inputs: the synthetic checkpoint folder and its llama.cpp GGUF

/** A smaller model of the preset's widths, for quick runs: the first `layers` layers, `vocab` tokens. */
export interface SynthShape {
  layers?: number;
  vocab?: number;
}

/** The synthetic mobilellm-pro checkpoint (seed 1): BENCH_MODEL_DIR's, or written once. */
export async function syntheticModel(cleanups: Cleanups, shape: SynthShape = {}): Promise<string> {
  const given = process.env.BENCH_MODEL_DIR;
  if (given && existsSync(join(given, "config.json"))) return resolve(given);
  const dir = given ? resolve(given) : mkdtempSync(join(tmpdir(), "mobilellm-peer-"));
  if (!given) cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const free = freeBytes(given ? resolve(given, "..") : dir);
  const full = shape.layers === undefined && shape.vocab === undefined;
  if (full && free !== null && free < 3e9) throw new Error(`${(free / 1e9).toFixed(1)} GB free for ${dir}: the synthetic checkpoint needs 2.2 GB`);
  const t0 = performance.now();
  await synthesizeCheckpoint({ presetJson: PRESETS["mobilellm-pro"].json, presetName: "mobilellm-pro", outDir: dir, seed: 1, maxShardBytes: 1e9, ...shape });
  const what = full ? "" : ` (${shape.layers ?? "all"} layers, vocabulary ${shape.vocab ?? "full"})`;
  console.log(`synthetic mobilellm-pro checkpoint${what} (seed 1) written to ${dir} in ${seconds(t0)} s`);
  return dir;
}

/**
 * The checkpoint at `dir` as a llama-architecture GGUF (Q4_0 matrices, F32 norms): BENCH_GGUF's when its
 * size matches the layout, or written (to BENCH_GGUF, kept; else to a temporary folder).
 */
export async function peerGguf(dir: string, cleanups: Cleanups, name = "MobileLLM-Pro shapes, synthetic weights, all layers global"): Promise<string> {
  const given = process.env.BENCH_GGUF;
  const path = given ? resolve(given) : join(mkdtempSync(join(tmpdir(), "mobilellm-peer-gguf-")), "synthetic-q4_0.gguf");
  if (!given) cleanups.push(() => rmSync(resolve(path, ".."), { recursive: true, force: true }));
  const config = loadConfig(dir);
  const ckpt = await openCheckpoint(dir);
  try {
    const { metadata, tensors } = llamaGguf({ ckpt, config, names: resolveTensorNames(config, ckpt), name });
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

/** The folder `dir` (weights and tokenizer linked, not copied) with every layer global in config.json. */
export function allGlobalVariant(dir: string, cleanups: Cleanups): string {
  const out = mkdtempSync(join(tmpdir(), "mobilellm-peer-global-"));
  cleanups.push(() => rmSync(out, { recursive: true, force: true }));
  for (const f of readdirSync(dir)) if (f !== "config.json") symlinkSync(join(dir, f), join(out, f));
  const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as Record<string, unknown>;
  config["layer_types"] = new Array(config["num_hidden_layers"] as number).fill("full_attention");
  writeFileSync(join(out, "config.json"), JSON.stringify(config, null, 2));
  return out;
}
