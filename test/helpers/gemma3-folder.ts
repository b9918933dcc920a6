// Hugging Face Gemma 3 checkpoint folders with random bf16 weights in the published shapes (google/gemma-3-270m,
// gemma-3-1b), cut to a few layers and a small vocabulary, the tensors named as transformers' Gemma3ForCausalLM
// names them. Norm weights are stored as Gemma stores them: w of the x · (1 + w) multiplier, here around 0.
import { GEMMA3_CONFIG_JSONS } from "../../src/model/config.js";
import { rng } from "./rng.js";
import { toBf16, writeFolderFiles, type LlamaFolder } from "./llama-folder.js";

export const GEMMA3_SHAPES = {
  "gemma-3-270m": GEMMA3_CONFIG_JSONS["gemma-3-270m"],
  "gemma-3-1b": GEMMA3_CONFIG_JSONS["gemma-3-1b"],
} as const;

export type Gemma3Shape = keyof typeof GEMMA3_SHAPES;

/**
 * Writes the folder: config.json (cut to `layers` and `vocab`, with `extra` keys on top), model.safetensors
 * (bf16), the bundled tokenizer.
 */
export async function writeGemma3Folder(shape: Gemma3Shape, layers: number, vocab: number, seed: number, extra: Record<string, unknown> = {}): Promise<LlamaFolder> {
  const preset = GEMMA3_SHAPES[shape] as Record<string, unknown>;
  const layerTypes = preset.layer_types as string[] | undefined;
  const config: Record<string, unknown> = {
    ...preset,
    num_hidden_layers: layers,
    ...(layerTypes ? { layer_types: layerTypes.slice(0, layers) } : {}),
    vocab_size: vocab,
    bos_token_id: 1000,
    eos_token_id: 1001,
    pad_token_id: 1002,
    ...extra,
  };
  const d = config.hidden_size as number;
  const hd = config.head_dim as number;
  const q = (config.num_attention_heads as number) * hd;
  const kv = (config.num_key_value_heads as number) * hd;
  const f = config.intermediate_size as number;
  const next = rng(seed);
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  const add = (name: string, s: number[], scale: number) => {
    const data = new Float32Array(s.reduce((a, b) => a * b, 1));
    const width = scale * Math.sqrt(12);
    for (let i = 0; i < data.length; i++) data[i] = toBf16(width * (next() - 0.5));
    tensors.set(name, { shape: s, data });
  };
  add("model.embed_tokens.weight", [vocab, d], 0.05);
  for (let l = 0; l < layers; l++) {
    const p = `model.layers.${l}`;
    add(`${p}.input_layernorm.weight`, [d], 0.2);
    add(`${p}.self_attn.q_proj.weight`, [q, d], 1 / Math.sqrt(d));
    add(`${p}.self_attn.k_proj.weight`, [kv, d], 1 / Math.sqrt(d));
    add(`${p}.self_attn.v_proj.weight`, [kv, d], 1 / Math.sqrt(d));
    add(`${p}.self_attn.o_proj.weight`, [d, q], 1 / Math.sqrt(q));
    add(`${p}.self_attn.q_norm.weight`, [hd], 0.5);
    add(`${p}.self_attn.k_norm.weight`, [hd], 0.5);
    add(`${p}.post_attention_layernorm.weight`, [d], 0.2);
    add(`${p}.pre_feedforward_layernorm.weight`, [d], 0.2);
    add(`${p}.mlp.gate_proj.weight`, [f, d], 1 / Math.sqrt(d));
    add(`${p}.mlp.up_proj.weight`, [f, d], 1 / Math.sqrt(d));
    add(`${p}.mlp.down_proj.weight`, [d, f], 1 / Math.sqrt(f));
    add(`${p}.post_feedforward_layernorm.weight`, [d], 0.2);
  }
  add("model.norm.weight", [d], 0.2);
  return await writeFolderFiles(`gemma3-${shape}-`, config, tensors);
}
