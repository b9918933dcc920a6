// A synthetic checkpoint folder in the real Hugging Face layout: a preset's config.json, seeded random bf16
// weights in sharded safetensors, generation_config.json and a tokenizer. It lets the real-size loading path
// run without the gated download; the weights are random, so the text it generates is noise.
//
// Weights are produced a chunk at a time through the writer's async producers, so the 517 MB embedding
// never exists in memory. Every tensor gets its own generator seeded from (seed, tensor name): the values
// depend on neither the chunk size nor the shard size, and the same seed gives byte-identical files.
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { layerMap, parseConfig, type ModelConfig } from "../model/config.js";
import type { TensorToWrite } from "../model/checkpoint/safetensors-writer.js";
import { shardedWrite } from "./safetensors-files.js";
import { INDEX_FILE, SINGLE_FILE } from "../model/checkpoint/checkpoint.js";
import { expectedShapes, tensorNamesFor } from "../model/tensor-names.js";
import { familyOf } from "../model/families/index.js";
import { bundledModelDir } from "./bundled.js";

type Json = Record<string, unknown>;

export interface SynthOptions {
  /** The preset's config.json object (PRESETS[name].json). */
  presetJson: Json;
  presetName: string;
  outDir: string;
  seed: number;
  /** Keep the first `layers` layers of the preset (its layer_types cut to match). */
  layers?: number;
  /** Shrink the vocabulary (>= MIN_VOCAB); the special-token block then moves to the top (see specialBase). */
  vocab?: number;
  /** Tensor bytes per shard. */
  maxShardBytes: number;
  /** Write into a non-empty folder, removing checkpoint files an earlier run left there. */
  force?: boolean;
  onProgress?: (bytesWritten: number, totalBytes: number) => void;
}

export interface SynthResult {
  files: Array<{ name: string; bytes: number }>;
  totalBytes: number;
  config: ModelConfig;
}

export class SynthError extends Error {
  override name = "SynthError";
}

/** The bundled tokenizer's 1000 BPE ranks need ids 0..999; 24 more hold the special block. */
export const MIN_VOCAB = 1024;

/**
 * Llama-4 special tokens the bundled tokenizer has, by name, as offsets from <|begin_of_text|> (id 200000 in
 * the real 202,048-token vocabulary: <|end_of_text|> 200001, <|eom|> 200007, <|eot|> 200008, pad 200018).
 */
const LLAMA4_SPECIAL_OFFSETS: Record<string, number> = {
  "<|begin_of_text|>": 0,
  "<|end_of_text|>": 1,
  "<|fim_prefix|>": 2,
  "<|fim_middle|>": 3,
  "<|fim_suffix|>": 4,
  "<|header_start|>": 5,
  "<|header_end|>": 6,
  "<|eom|>": 7,
  "<|eot|>": 8,
  "<|step|>": 9,
  "<|python_start|>": 16,
  "<|python_end|>": 17,
  "<|finetune_right_pad|>": 18,
};

/** <|text_post_train_reserved_special_token_0..5|> sit at these offsets (ids 200010-200015) in Llama-4. */
const RESERVED_OFFSETS = [10, 11, 12, 13, 14, 15];

/** Rows the special block takes at the top of a reduced vocabulary: offsets 0..18, then 5 padding rows. */
const SPECIAL_BLOCK_ROWS = 24;

/**
 * Id of <|begin_of_text|>: the preset's (200000) when the vocabulary is large enough, else the top 24 rows
 * of a reduced vocabulary, keeping the Llama-4 offsets inside the block (pad = base + 18).
 */
export function specialBase(vocab: number, presetBos: number): number {
  // A preset whose BOS sits among the bundled tokenizer's BPE ranks (SmolLM2's is 0, AMD-Llama's 1) gets the
  // block at the top, like a reduced vocabulary.
  if (presetBos < MIN_VOCAB) return vocab - SPECIAL_BLOCK_ROWS;
  return Math.min(presetBos, vocab - SPECIAL_BLOCK_ROWS);
}

// ---------------------------------------------------------------------------------------------------------
// config.json and generation_config.json

export function synthConfigJson(preset: Json, layers: number | undefined, vocab: number | undefined): Json {
  const presetLayers = preset["num_hidden_layers"] as number;
  const presetVocab = preset["vocab_size"] as number;
  const presetBos = preset["bos_token_id"] as number;
  const n = layers ?? presetLayers;
  const v = vocab ?? presetVocab;
  if (!Number.isSafeInteger(n) || n < 1 || n > presetLayers) throw new SynthError(`layers must be 1..${presetLayers}, got ${n}`);
  if (!Number.isSafeInteger(v) || v < MIN_VOCAB || v > presetVocab) {
    throw new SynthError(`vocab must be ${MIN_VOCAB}..${presetVocab}, got ${v}`);
  }
  const base = specialBase(v, presetBos);
  // Each special id keeps its offset from BOS when that lands in the block (Llama 4's, SmolLM2's,
  // AMD-Llama's); one that would fall outside it (Gemma's EOS 1 and pad 0 sit below its BOS 2) takes the
  // block's token of the same role: <|end_of_text|> (base + 1), <|finetune_right_pad|> (base + 18).
  const remap = (id: unknown, role: "bos" | "eos" | "pad"): unknown => {
    if (typeof id !== "number") return id;
    const moved = id - presetBos + base;
    if (moved >= base && moved < base + SPECIAL_BLOCK_ROWS) return moved;
    return base + { bos: 0, eos: 1, pad: 18 }[role];
  };
  const eos = preset["eos_token_id"];
  const layerTypes = preset["layer_types"];
  return {
    ...preset,
    bos_token_id: remap(preset["bos_token_id"], "bos"),
    eos_token_id: Array.isArray(eos) ? eos.map((id) => remap(id, "eos")) : remap(eos, "eos"),
    pad_token_id: remap(preset["pad_token_id"], "pad"),
    ...(Array.isArray(layerTypes) ? { layer_types: layerTypes.slice(0, n) } : {}),
    num_hidden_layers: n,
    vocab_size: v,
    // MobileLLM-Pro's sources do not show these two; writing the documented defaults makes the folder
    // self-describing. The Llama presets publish theirs.
    rope_theta: preset["rope_theta"] ?? 500000.0,
    rms_norm_eps: preset["rms_norm_eps"] ?? 1e-5,
  };
}

function generationConfigJson(config: Json): Json {
  // The settings of Meta's MobileLLM-Pro demo: temperature 0.7, top-p 0.95, 256 new tokens.
  return {
    bos_token_id: config["bos_token_id"],
    eos_token_id: config["eos_token_id"],
    pad_token_id: config["pad_token_id"],
    do_sample: true,
    temperature: 0.7,
    top_p: 0.95,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Tokenizer: the bundled byte-level BPE with its special tokens moved to the Llama-4 ids

interface AddedToken {
  id: number;
  content: string;
  [k: string]: unknown;
}

function moveSpecialIds(id: number, content: string, base: number): number {
  const offset = LLAMA4_SPECIAL_OFFSETS[content];
  if (offset === undefined) throw new SynthError(`bundled tokenizer: special token ${content} (id ${id}) has no Llama-4 id`);
  return base + offset;
}

export function synthTokenizerFiles(bundledDir: string, base: number, maxPositions: number): { tokenizer: Json; tokenizerConfig: Json } {
  const tokenizer = JSON.parse(readFileSync(join(bundledDir, "tokenizer.json"), "utf8")) as Json;
  const bundled = tokenizer["added_tokens"] as AddedToken[];
  const moved = bundled.map((t) => ({ ...t, id: moveSpecialIds(t.id, t.content, base) }));
  // Llama-4 has reserved tokens at offsets 10..15 inside the named block; filling them keeps the block free
  // of holes (@huggingface/tokenizers' get_vocab reports one id of a hole as a token named undefined).
  const reserved = RESERVED_OFFSETS.map((offset, i) => ({ ...bundled[0], id: base + offset, content: `<|text_post_train_reserved_special_token_${i}|>` }));
  const added = [...moved, ...reserved].sort((a, b) => a.id - b.id);
  const post = structuredClone(tokenizer["post_processor"]) as Json | null;
  if (post && typeof post["special_tokens"] === "object" && post["special_tokens"] !== null) {
    for (const entry of Object.values(post["special_tokens"] as Record<string, { ids: number[]; tokens: string[] }>)) {
      entry.ids = entry.tokens.map((tok, i) => moveSpecialIds(entry.ids[i], tok, base));
    }
  }
  const tokenizerConfig = JSON.parse(readFileSync(join(bundledDir, "tokenizer_config.json"), "utf8")) as Json;
  const decoderEntries = added.map((t) => {
    const { id, ...rest } = t;
    return [String(id), rest] as const;
  });
  return {
    tokenizer: { ...tokenizer, added_tokens: added, post_processor: post },
    tokenizerConfig: { ...tokenizerConfig, model_max_length: maxPositions, added_tokens_decoder: Object.fromEntries(decoderEntries) },
  };
}

// ---------------------------------------------------------------------------------------------------------
// Weights

/** FNV-1a over the name, mixed with the seed: each tensor's stream is independent of every other. */
function tensorSeed(seed: number, name: string): number {
  let h = 0x811c9dc5 ^ Math.imul(seed | 0, 0x9e3779b1);
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  h ^= Math.floor(seed / 2 ** 32);
  return h >>> 0;
}

/** Standard deviation of the sum of four independent uniform bytes: sqrt(4 * (256^2 - 1) / 12). */
const BYTE_SUM_STD = Math.sqrt((4 * (256 * 256 - 1)) / 12);

/**
 * Fills `out` with mean + std * z, z approximately standard normal: the centred sum of the four bytes of
 * one mulberry32 draw (Irwin-Hall, bounded at about 3.5 sigma). One 32-bit draw per value keeps a full
 * 1.08G-value checkpoint to seconds; bf16 keeps only 8 significant bits, so finer tails would not survive.
 */
class NormalishStream {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  fill(out: Float32Array, mean: number, std: number): void {
    const k = std / BYTE_SUM_STD;
    let a = this.state;
    for (let i = 0; i < out.length; i++) {
      a = (a + 0x6d2b79f5) | 0;
      let t = Math.imul(a ^ (a >>> 15), a | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      t ^= t >>> 14;
      const sum = (t & 255) + ((t >>> 8) & 255) + ((t >>> 16) & 255) + ((t >>> 24) & 255);
      out[i] = mean + (sum - 510) * k;
    }
    this.state = a;
  }
}

/** Values per produced chunk: 4M f32 = 16 MiB, bounded whatever the tensor size. */
const CHUNK_VALUES = 1 << 22;

export interface WeightInit {
  /** Standard deviation of matrices (embedding and linear layers): the config's initializer_range. */
  std: number;
  /** Norm weights are 1 + normNoise * z, so the norm multiply is exercised but stays near identity. */
  normNoise: number;
}

function synthTensors(config: ModelConfig, seed: number, init: WeightInit, onValues: (n: number) => void): TensorToWrite[] {
  return expectedShapes(config, tensorNamesFor(config)).map(([name, shape]) => {
    // A norm's multiplier is near 1: stored as 1 + noise, or as the noise where the family's checkpoints
    // store w of x · (1 + w) (Gemma).
    const isNorm = shape.length === 1;
    const mean = isNorm ? 1 - familyOf(config.architecture).norms.hfOffset : 0;
    const std = isNorm ? init.normNoise : init.std;
    const total = shape.reduce((a, b) => a * b, 1);
    return {
      name,
      dtype: "BF16",
      shape,
      data: async function* () {
        const rng = new NormalishStream(tensorSeed(seed, name));
        for (let done = 0; done < total; done += CHUNK_VALUES) {
          // A fresh array per chunk: the writer may hold a chunk while it encodes and writes it.
          const chunk = new Float32Array(Math.min(CHUNK_VALUES, total - done));
          rng.fill(chunk, mean, std);
          onValues(chunk.length);
          yield chunk;
        }
      },
    };
  });
}

// ---------------------------------------------------------------------------------------------------------
// The folder

function readme(presetName: string, config: ModelConfig, seed: number, base: number, init: WeightInit): string {
  return `# Synthetic ${presetName} checkpoint (random weights)

Written by \`mobilellm synth\`. The weights are **random** (seed ${seed}): this model knows nothing and
generates noise. It exists to exercise the real-size loading path (sharded bf16 safetensors,
model.safetensors.index.json, config.json, tokenizer) without downloading the gated model.

- config.json: the ${presetName} preset with ${config.numLayers} layers (${layerMap(config)}),
  vocabulary ${config.vocabSize}, rope_theta ${config.rope.full_attention.theta} and rms_norm_eps ${config.rmsNormEps} written explicitly.
- Weights: embedding and linear layers approximately normal with mean 0 and std ${init.std} (initializer_range);
  norm weights 1 + ${init.normNoise} x noise. Stored as bfloat16. The same seed gives byte-identical files.
- Tokenizer: NOT the model's tokenizer (not available offline). It is the bundled shakespeare-tiny byte-level
  BPE (1000 ranks, ids 0-999) with its 13 special tokens moved to the Llama-4 ids
  (<|begin_of_text|> = ${base}, <|end_of_text|> = ${base + 1}, <|eot|> = ${base + 8}, <|finetune_right_pad|> = ${base + 18}),
  plus the six reserved tokens Llama-4 has at ${base + 10}-${base + 15}.
  Ids with no token string are padding rows (the real vocabulary has ${config.vocabSize} entries).
`;
}

function checkOutDir(dir: string, force: boolean): void {
  if (!existsSync(dir)) return;
  if (!statSync(dir).isDirectory()) throw new SynthError(`${dir} exists and is not a folder`);
  const entries = readdirSync(dir);
  if (entries.length === 0) return;
  if (!force) throw new SynthError(`${dir} is not empty (use --force to write into it)`);
  // A stale model.safetensors would shadow the new shards, and stale shards would confuse a reader.
  for (const e of entries) {
    if (e === SINGLE_FILE || e === INDEX_FILE || /^model-\d+-of-\d+\.safetensors(\.partial)?$/.test(e)) rmSync(join(dir, e));
  }
}

export async function synthesizeCheckpoint(opts: SynthOptions): Promise<SynthResult> {
  const configJson = synthConfigJson(opts.presetJson, opts.layers, opts.vocab);
  const config = parseConfig(configJson, "synthesized config.json");
  const base = specialBase(config.vocabSize, opts.presetJson["bos_token_id"] as number);
  const init: WeightInit = {
    std: typeof configJson["initializer_range"] === "number" ? (configJson["initializer_range"] as number) : 0.02,
    normNoise: 0.02,
  };
  checkOutDir(opts.outDir, opts.force ?? false);
  mkdirSync(opts.outDir, { recursive: true });

  const { tokenizer, tokenizerConfig } = synthTokenizerFiles(bundledModelDir(), base, config.maxPositions);
  const small: Array<[string, string]> = [
    ["config.json", JSON.stringify(configJson, null, 2) + "\n"],
    ["generation_config.json", JSON.stringify(generationConfigJson(configJson), null, 2) + "\n"],
    ["tokenizer.json", JSON.stringify(tokenizer) + "\n"],
    ["tokenizer_config.json", JSON.stringify(tokenizerConfig, null, 2) + "\n"],
    ["README.md", readme(opts.presetName, config, opts.seed, base, init)],
  ];
  for (const [name, text] of small) writeFileSync(join(opts.outDir, name), text);

  const totalValues = expectedShapes(config, tensorNamesFor(config)).reduce((s, [, shape]) => s + shape.reduce((a, b) => a * b, 1), 0);
  let produced = 0;
  const tensors = synthTensors(config, opts.seed, init, (n) => {
    produced += n;
    opts.onProgress?.(produced * 2, totalValues * 2);
  });
  const { shards } = await shardedWrite(opts.outDir, tensors, { maxShardBytes: opts.maxShardBytes });

  const names = [...small.map(([n]) => n), ...shards, INDEX_FILE];
  const files = names.map((name) => ({ name, bytes: statSync(join(opts.outDir, name)).size }));
  return { files, totalBytes: files.reduce((s, f) => s + f.bytes, 0), config };
}
