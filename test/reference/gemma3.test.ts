// Gemma 3 checkpoints (model_type "gemma3_text") against an independent float64 forward pass written here the
// way transformers' Gemma3ForCausalLM computes it: the embedding times sqrt(hidden) cast to bfloat16, RMSNorm
// as x · (1 + w), q_norm and k_norm per head before rotate_half RoPE, RoPE base rope_local_base_freq on
// sliding layers and rope_theta (with a linear rope_scaling) on global ones, scores times
// query_pre_attn_scalar^-0.5, the sliding mask q - k < sliding_window, sandwich norms, GeGLU with
// gelu_pytorch_tanh. It reads the tensors by their Hugging Face names, on random bf16 weights in the published
// shapes. The float32 reference must match it to float32 rounding; the int4 engine must stay as close to a
// reference run on the same int4 weights as it does for the other families.
import { afterAll, describe, expect, it } from "vitest";
import { rmSync } from "node:fs";
import { loadModel } from "../../src/api.js";
import { layerMap } from "../../src/model/config.js";
import { GEMMA3_SHAPES, writeGemma3Folder, type Gemma3Shape } from "../helpers/gemma3-folder.js";
import { toBf16, type LlamaFolder } from "../helpers/llama-folder.js";
import { expectEngineNearInt4Reference } from "../helpers/int4-reference.js";
import { relativeError } from "../helpers/compare.js";
import { groupedAttention, linear, rmsNorm, ropeRotateHalf } from "../helpers/float64.js";

const TOKENS = [1000, 17, 402, 999, 3, 511, 77, 1023, 5, 900, 64, 12];

/** Logits of every position, in float64, straight from the tensors by their Hugging Face names. */
function gemma3Float64(m: LlamaFolder, tokens: number[]): Float64Array[] {
  const c = m.config;
  const W = (name: string) => m.tensors.get(name)!.data;
  const d = c.hidden_size as number;
  const nh = c.num_attention_heads as number;
  const nkv = c.num_key_value_heads as number;
  const hd = c.head_dim as number;
  const f = c.intermediate_size as number;
  const vocab = c.vocab_size as number;
  const eps = c.rms_norm_eps as number;
  const layers = c.num_hidden_layers as number;
  const window = c.sliding_window as number;
  const pattern = (c.sliding_window_pattern as number | undefined) ?? 6;
  const types = (c.layer_types as string[] | undefined) ?? Array.from({ length: layers }, (_, i) => ((i + 1) % pattern ? "sliding_attention" : "full_attention"));
  const scaling = c.rope_scaling as { rope_type: string; factor: number } | null;
  const invFreq = (theta: number, factor: number) => Array.from({ length: hd / 2 }, (_, i) => 1 / theta ** ((2 * i) / hd) / factor);
  const globalFreq = invFreq(c.rope_theta as number, scaling?.rope_type === "linear" ? scaling.factor : 1);
  const localFreq = invFreq(c.rope_local_base_freq as number, 1);
  // Gemma3RMSNorm: x / sqrt(mean(x^2) + eps) * (1 + w)
  const norm = (x: Float64Array, w: Float32Array) => rmsNorm(x, eps, (i) => 1 + w[i]);
  const headNorm = (x: Float64Array, heads: number, w: Float32Array) => {
    const out = new Float64Array(x.length);
    for (let h = 0; h < heads; h++) out.set(norm(x.subarray(h * hd, (h + 1) * hd), w), h * hd);
    return out;
  };
  const rope = (x: Float64Array, heads: number, pos: number, inv: number[]) => ropeRotateHalf(x, heads, hd, pos, inv);
  const gelu = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
  const embedScale = toBf16(Math.sqrt(d));
  const scale = (c.query_pre_attn_scalar as number) ** -0.5;
  const keys: Float64Array[][] = Array.from({ length: layers }, () => []);
  const values: Float64Array[][] = Array.from({ length: layers }, () => []);
  return tokens.map((tok, pos) => {
    let x = Float64Array.from(W("model.embed_tokens.weight").subarray(tok * d, (tok + 1) * d), (v) => v * embedScale);
    for (let l = 0; l < layers; l++) {
      const p = `model.layers.${l}`;
      const sliding = types[l] === "sliding_attention";
      const inv = sliding ? localFreq : globalFreq;
      const h = norm(x, W(`${p}.input_layernorm.weight`));
      const q = rope(headNorm(linear(W(`${p}.self_attn.q_proj.weight`), h, nh * hd), nh, W(`${p}.self_attn.q_norm.weight`)), nh, pos, inv);
      keys[l].push(rope(headNorm(linear(W(`${p}.self_attn.k_proj.weight`), h, nkv * hd), nkv, W(`${p}.self_attn.k_norm.weight`)), nkv, pos, inv));
      values[l].push(linear(W(`${p}.self_attn.v_proj.weight`), h, nkv * hd));
      const first = sliding ? Math.max(0, pos - window + 1) : 0;
      const att = groupedAttention(q, keys[l], values[l], first, nh, nkv, hd, scale);
      const o = norm(linear(W(`${p}.self_attn.o_proj.weight`), att, d), W(`${p}.post_attention_layernorm.weight`));
      x = x.map((v, i) => v + o[i]);
      const h2 = norm(x, W(`${p}.pre_feedforward_layernorm.weight`));
      const gate = linear(W(`${p}.mlp.gate_proj.weight`), h2, f);
      const up = linear(W(`${p}.mlp.up_proj.weight`), h2, f);
      const down = norm(linear(W(`${p}.mlp.down_proj.weight`), gate.map((g, i) => gelu(g) * up[i]), d), W(`${p}.post_feedforward_layernorm.weight`));
      x = x.map((v, i) => v + down[i]);
    }
    return linear(W("model.embed_tokens.weight"), norm(x, W("model.norm.weight")), vocab);
  });
}

// A window of 4 positions, so the 12 tokens reach past it; a global layer among the layers (pattern 6 or 2).
const CASES: Array<[string, Gemma3Shape, number, Record<string, unknown>, string]> = [
  ["gemma-3-270m (layer_types), 6 layers", "gemma-3-270m", 6, { sliding_window: 4 }, "SSSSSG"],
  ["gemma-3-1b (sliding_window_pattern 2, no layer_types), 2 layers", "gemma-3-1b", 2, { sliding_window: 4, sliding_window_pattern: 2 }, "SG"],
  ["gemma-3-270m with the 4B's linear rope_scaling x8 on global layers, 6 layers", "gemma-3-270m", 6, { sliding_window: 4, rope_scaling: { rope_type: "linear", factor: 8 } }, "SSSSSG"],
];
const folders: string[] = [];
afterAll(() => folders.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

describe.each(CASES)("%s shape, vocabulary cut to 2048, bf16 weights", (_, shape, layers, extra, map) => {
  let m: LlamaFolder;
  let expected: Float64Array[];

  it("the float32 reference matches an independent float64 Gemma 3 within 1e-4", async () => {
    m = await writeGemma3Folder(shape, layers, 2048, 11, extra);
    folders.push(m.dir);
    expected = gemma3Float64(m, TOKENS);
    const model = await loadModel(m.dir, { backend: "reference", contextLength: 64 });
    try {
      expect(model.config).toMatchObject({ architecture: "gemma3", norms: "sandwich", activation: "gelu_tanh", qkNorm: "before_rope", headDim: 256, numKvHeads: 1 });
      expect(layerMap(model.config)).toBe(map);
      expect(GEMMA3_SHAPES[shape].hidden_size).toBe(model.config.hiddenSize);
      expect(relativeError(model.logits(TOKENS, true), expected)).toBeLessThan(1e-4);
    } finally {
      await model.dispose();
    }
  }, 120_000);

  it("the int4 engine matches the reference run on the same int4 weights (cosine >= 0.999, same top-1)", async () => {
    await expectEngineNearInt4Reference(m.dir, TOKENS);
  }, 120_000);
});
