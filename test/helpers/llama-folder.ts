// Hugging Face Llama checkpoint folders with random weights in the published shapes of the small on-device
// Llamas, cut to a few layers and a small vocabulary (the shapes that matter for correctness are the
// heads, the GQA grouping, the MLP width and RoPE; the vocabulary only adds rows to two tables).
import { copyFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { writeSafetensors } from "../../src/node/safetensors-files.js";
import type { TensorToWrite } from "../../src/model/checkpoint/safetensors-writer.js";
import { BUNDLED } from "./model-folder.js";
import { rng } from "./rng.js";
import { tempDir } from "./temp-dir.js";
import { LLAMA_CONFIG_JSONS } from "../../src/model/config.js";

/** config.json of each model as published on Hugging Face (the presets `mobilellm synth` writes). */
export const LLAMA_SHAPES = {
  "SmolLM2-135M": LLAMA_CONFIG_JSONS["smollm2-135m"],
  "AMD-Llama-135m": LLAMA_CONFIG_JSONS["amd-llama-135m"],
  "Llama-3.2-1B": LLAMA_CONFIG_JSONS["llama-3.2-1b"],
} as const;

export type LlamaShape = keyof typeof LLAMA_SHAPES;

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Rounds to the nearest bfloat16 (ties to even), so the folder stores exactly these values. */
export function toBf16(x: number): number {
  f32[0] = x;
  u32[0] = (u32[0] + 0x7fff + ((u32[0] >>> 16) & 1)) & 0xffff0000;
  return f32[0];
}

export interface LlamaFolder {
  dir: string;
  config: Record<string, unknown>;
  /** Every tensor as written (bf16 values held as f32), by its Hugging Face name. */
  tensors: Map<string, { shape: number[]; data: Float32Array }>;
}

/**
 * Writes the folder: config.json (cut to `layers` and `vocab`, with `extra` keys on top), model.safetensors
 * (bf16), the bundled tokenizer.
 */
export async function writeLlamaFolder(shape: LlamaShape, layers: number, vocab: number, seed: number, extra: Record<string, unknown> = {}): Promise<LlamaFolder> {
  const config: Record<string, unknown> = { ...LLAMA_SHAPES[shape], num_hidden_layers: layers, vocab_size: vocab, bos_token_id: 1000, eos_token_id: 1001, ...extra };
  const d = config.hidden_size as number;
  const heads = config.num_attention_heads as number;
  const hd = (config.head_dim as number | undefined) ?? d / heads;
  const q = heads * hd;
  const kv = (config.num_key_value_heads as number) * hd;
  const f = config.intermediate_size as number;
  const next = rng(seed);
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  const add = (name: string, s: number[], scale: number, offset = 0) => {
    const data = new Float32Array(s.reduce((a, b) => a * b, 1));
    // Uniform with the standard deviation `scale` (Gaussian draws cost a log and a cosine each).
    const width = scale * Math.sqrt(12);
    for (let i = 0; i < data.length; i++) data[i] = toBf16(offset + width * (next() - 0.5));
    tensors.set(name, { shape: s, data });
  };
  add("model.embed_tokens.weight", [vocab, d], 1);
  for (let l = 0; l < layers; l++) {
    const p = `model.layers.${l}`;
    add(`${p}.input_layernorm.weight`, [d], 0.1, 1);
    add(`${p}.self_attn.q_proj.weight`, [q, d], 2 / Math.sqrt(d));
    add(`${p}.self_attn.k_proj.weight`, [kv, d], 2 / Math.sqrt(d));
    add(`${p}.self_attn.v_proj.weight`, [kv, d], 1 / Math.sqrt(d));
    add(`${p}.self_attn.o_proj.weight`, [d, q], 1 / Math.sqrt(q));
    add(`${p}.post_attention_layernorm.weight`, [d], 0.1, 1);
    add(`${p}.mlp.gate_proj.weight`, [f, d], 1 / Math.sqrt(d));
    add(`${p}.mlp.up_proj.weight`, [f, d], 1 / Math.sqrt(d));
    add(`${p}.mlp.down_proj.weight`, [d, f], 1 / Math.sqrt(f));
  }
  add("model.norm.weight", [d], 0.1, 1);
  if (config.tie_word_embeddings === false) add("lm_head.weight", [vocab, d], 1 / Math.sqrt(d));
  return await writeFolderFiles(`llama-${shape}-`, config, tensors);
}

/**
 * A fresh folder with config.json, the bundled tokenizer and model.safetensors (bf16) holding `tensors`,
 * removed after the test file's tests (temp-dir.ts).
 */
export async function writeFolderFiles(prefix: string, config: Record<string, unknown>, tensors: LlamaFolder["tensors"]): Promise<LlamaFolder> {
  const dir = tempDir(prefix);
  writeFileSync(join(dir, "config.json"), JSON.stringify(config, null, 2));
  for (const file of ["tokenizer.json", "tokenizer_config.json"]) copyFileSync(join(BUNDLED, file), join(dir, file));
  const list: TensorToWrite[] = [...tensors].map(([name, t]) => ({ name, dtype: "BF16", shape: t.shape, data: t.data }));
  await writeSafetensors(join(dir, "model.safetensors"), list, { format: "pt" });
  return { dir, config, tensors };
}
