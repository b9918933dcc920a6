// Plain Llama checkpoints (model_type "llama": SmolLM2, AMD-Llama, Llama 3.2) against an independent float64
// forward pass written here the way transformers' LlamaForCausalLM computes it (rotate_half RoPE with
// cos/sin repeated over both halves, repeat_kv, llama3 frequency scaling), on random bf16 weights in each
// model's published shape. The reference must match it to float32 rounding; the int4 engine must stay as
// close to a reference run on the same int4 weights as it does for MobileLLM-Pro. And the same weights read as a Llama-4 checkpoint
// (interleaved RoPE) must NOT match: that is the silent wrong answer this dispatch exists to prevent.
import { afterAll, describe, expect, it } from "vitest";
import { rmSync } from "node:fs";
import { loadModel } from "../../src/api.js";
import { LLAMA_SHAPES, writeLlamaFolder, type LlamaFolder, type LlamaShape } from "../helpers/llama-folder.js";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { expectEngineNearInt4Reference } from "../helpers/int4-reference.js";
import { relativeError } from "../helpers/compare.js";
import { groupedAttention, linear, rmsNorm, ropeRotateHalf } from "../helpers/float64.js";

const TOKENS = [1000, 17, 402, 999, 3, 511, 77, 1023];

/** transformers' inverse frequencies, with the "llama3" rope_scaling rule when the config has one. */
function invFreq(config: Record<string, unknown>, hd: number): number[] {
  const theta = config.rope_theta as number;
  const inv = Array.from({ length: hd / 2 }, (_, i) => 1 / theta ** ((2 * i) / hd));
  const s = config.rope_scaling as Record<string, number> | undefined;
  if (!s) return inv;
  const lowWavelen = s.original_max_position_embeddings / s.low_freq_factor;
  const highWavelen = s.original_max_position_embeddings / s.high_freq_factor;
  return inv.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen > lowWavelen) return f / s.factor;
    if (wavelen < highWavelen) return f;
    const smooth = (s.original_max_position_embeddings / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
    return ((1 - smooth) * f) / s.factor + smooth * f;
  });
}

/** Logits of every position, in float64, straight from the tensors by their Hugging Face names. */
function llamaFloat64(m: LlamaFolder, tokens: number[]): Float64Array[] {
  const c = m.config;
  const W = (name: string) => m.tensors.get(name)!.data;
  const d = c.hidden_size as number;
  const nh = c.num_attention_heads as number;
  const nkv = c.num_key_value_heads as number;
  const hd = (c.head_dim as number | undefined) ?? d / nh;
  const f = c.intermediate_size as number;
  const vocab = c.vocab_size as number;
  const eps = c.rms_norm_eps as number;
  const inv = invFreq(c, hd);
  const norm = (x: Float64Array, w: Float32Array) => rmsNorm(x, eps, (i) => w[i]);
  const rope = (x: Float64Array, heads: number, pos: number) => ropeRotateHalf(x, heads, hd, pos, inv);
  const layers = c.num_hidden_layers as number;
  const keys: Float64Array[][] = Array.from({ length: layers }, () => []);
  const values: Float64Array[][] = Array.from({ length: layers }, () => []);
  const head = c.tie_word_embeddings ? W("model.embed_tokens.weight") : W("lm_head.weight");
  return tokens.map((tok, pos) => {
    let x = Float64Array.from(W("model.embed_tokens.weight").subarray(tok * d, (tok + 1) * d));
    for (let l = 0; l < layers; l++) {
      const p = `model.layers.${l}`;
      const h = norm(x, W(`${p}.input_layernorm.weight`));
      const q = rope(linear(W(`${p}.self_attn.q_proj.weight`), h, nh * hd), nh, pos);
      keys[l].push(rope(linear(W(`${p}.self_attn.k_proj.weight`), h, nkv * hd), nkv, pos));
      values[l].push(linear(W(`${p}.self_attn.v_proj.weight`), h, nkv * hd));
      const att = groupedAttention(q, keys[l], values[l], 0, nh, nkv, hd, 1 / Math.sqrt(hd));
      const o = linear(W(`${p}.self_attn.o_proj.weight`), att, d);
      x = x.map((v, i) => v + o[i]);
      const h2 = norm(x, W(`${p}.post_attention_layernorm.weight`));
      const gate = linear(W(`${p}.mlp.gate_proj.weight`), h2, f);
      const up = linear(W(`${p}.mlp.up_proj.weight`), h2, f);
      const act = gate.map((g, i) => (g / (1 + Math.exp(-g))) * up[i]);
      const down = linear(W(`${p}.mlp.down_proj.weight`), act, d);
      x = x.map((v, i) => v + down[i]);
    }
    return linear(head, norm(x, W("model.norm.weight")), vocab);
  });
}

const CASES: Array<[LlamaShape, number]> = [
  ["SmolLM2-135M", 2],
  ["AMD-Llama-135m", 2],
  ["Llama-3.2-1B", 1],
];
const folders: string[] = [];
afterAll(() => folders.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

describe.each(CASES)("%s shape (%i layers, vocabulary cut to 2048), bf16 weights", (shape, layers) => {
  let m: LlamaFolder;
  let expected: Float64Array[];

  it("the float32 reference matches an independent float64 Llama within 1e-3", async () => {
    m = await writeLlamaFolder(shape, layers, 2048, 7);
    folders.push(m.dir);
    expected = llamaFloat64(m, TOKENS);
    const model = await loadModel(m.dir, { backend: "reference", contextLength: 64 });
    try {
      expect(model.config.architecture).toBe("llama");
      expect(model.config.tieWordEmbeddings).toBe(LLAMA_SHAPES[shape].tie_word_embeddings);
      const got = model.logits(TOKENS, true);
      expect(relativeError(got, expected)).toBeLessThan(1e-3);
    } finally {
      await model.dispose();
    }
  }, 120_000);

  it("the int4 engine matches the reference run on the same int4 weights (cosine >= 0.999, same top-1)", async () => {
    await expectEngineNearInt4Reference(m.dir, TOKENS);
  }, 120_000);
});

it("the same weights read with Llama-4's interleaved RoPE are far off: the pairing is what the dispatch fixes", async () => {
  const m = await writeLlamaFolder("SmolLM2-135M", 2, 2048, 7);
  folders.push(m.dir);
  const expected = llamaFloat64(m, TOKENS);
  writeFileSync(join(m.dir, "config.json"), JSON.stringify({ ...m.config, model_type: "llama4_text", architectures: ["MobileLLMP1ForCausalLM"] }));
  const model = await loadModel(m.dir, { backend: "reference", contextLength: 64 });
  try {
    expect(relativeError(model.logits(TOKENS, true), expected)).toBeGreaterThan(0.05);
  } finally {
    await model.dispose();
  }
}, 120_000);
