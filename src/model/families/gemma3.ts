// Gemma 3 (model_type "gemma3_text", "Gemma3ForCausalLM"; general.architecture "gemma3" in llama.cpp's
// GGUF files): what it is, from transformers' modeling_gemma3.py / configuration_gemma3.py and llama.cpp's
// src/models/gemma3.cpp and convert_hf_to_gguf.py (Gemma3Model). Its forward pass is src/reference/gemma3.ts
// (the engine's, src/model/layers.ts).
//
// - Sandwich norms: an RMSNorm before and after attention and before and after the MLP, each output norm
//   applied before its residual add. Hugging Face's Gemma3RMSNorm computes x · (1 + w) and stores w;
//   llama.cpp's converter stores 1 + w (norms.hfOffset).
// - q_norm and k_norm: an RMSNorm with learned weights over each head of q and k, before RoPE.
// - GeGLU: down(gelu_tanh(gate(x)) · up(x)), GELU with the tanh approximation ("gelu_pytorch_tanh").
// - The token embedding times sqrt(hidden_size), a factor transformers rounds to the weights' dtype
//   (sqrt(640) = 25.298 becomes 25.25 in bfloat16; llama.cpp multiplies by sqrtf(n_embd)).
// - Attention scores q·k times query_pre_attn_scalar^-0.5 (256 in every published size but 27B).
// - Local layers (sliding window, RoPE base rope_local_base_freq = 10,000) and global ones (every position,
//   RoPE base rope_theta = 1,000,000, with the rope_scaling of 4B and up, linear, on them only). Layer i is
//   global when (i + 1) % sliding_window_pattern == 0 (pattern 6: layers 5, 11, 17, ...) unless config.json
//   lists layer_types. The window counts the token itself (transformers masks q - k >= sliding_window,
//   llama.cpp the same with n_swa).
// - Tied embeddings; q and k rows in Hugging Face's rotate_half layout, in folders and in llama.cpp's files
//   alike (llama.cpp runs Gemma with NEOX RoPE, so its converter does not reorder them).
import { CONFIG_LIMITS, parseRopeScaling, readLayerTypes, readSlidingWindow, type ConfigReader, type Json } from "../config-reader.js";
import { f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from "../../kernels/dtype.js";
import { LLAMA4_DEFAULTS } from "./llama.js";
import type { Family, FamilyConfig, LayerTensor, LayerType, Rope, Sizes } from "./family.js";

export const GEMMA3_LAYER_TENSORS: readonly LayerTensor[] = [
  { role: "attnNorm", hf: ["input_layernorm.weight"], gguf: "attn_norm.weight", shape: (c) => [c.hiddenSize] },
  { role: "wq", hf: ["self_attn.q_proj.weight"], gguf: "attn_q.weight", shape: (c) => [c.numHeads * c.headDim, c.hiddenSize] },
  { role: "wk", hf: ["self_attn.k_proj.weight"], gguf: "attn_k.weight", shape: (c) => [c.numKvHeads * c.headDim, c.hiddenSize] },
  { role: "wv", hf: ["self_attn.v_proj.weight"], gguf: "attn_v.weight", shape: (c) => [c.numKvHeads * c.headDim, c.hiddenSize] },
  { role: "wo", hf: ["self_attn.o_proj.weight"], gguf: "attn_output.weight", shape: (c) => [c.hiddenSize, c.numHeads * c.headDim] },
  { role: "qNorm", hf: ["self_attn.q_norm.weight"], gguf: "attn_q_norm.weight", shape: (c) => [c.headDim] },
  { role: "kNorm", hf: ["self_attn.k_norm.weight"], gguf: "attn_k_norm.weight", shape: (c) => [c.headDim] },
  { role: "attnPostNorm", hf: ["post_attention_layernorm.weight"], gguf: "post_attention_norm.weight", shape: (c) => [c.hiddenSize] },
  { role: "ffnNorm", hf: ["pre_feedforward_layernorm.weight"], gguf: "ffn_norm.weight", shape: (c) => [c.hiddenSize] },
  { role: "wGate", hf: ["mlp.gate_proj.weight"], gguf: "ffn_gate.weight", shape: (c) => [c.intermediateSize, c.hiddenSize] },
  { role: "wUp", hf: ["mlp.up_proj.weight"], gguf: "ffn_up.weight", shape: (c) => [c.intermediateSize, c.hiddenSize] },
  { role: "wDown", hf: ["mlp.down_proj.weight"], gguf: "ffn_down.weight", shape: (c) => [c.hiddenSize, c.intermediateSize] },
  { role: "ffnPostNorm", hf: ["post_feedforward_layernorm.weight"], gguf: "post_ffw_norm.weight", shape: (c) => [c.hiddenSize] },
];

/** Gemma3TextConfig's values for keys a config.json may omit. */
export const GEMMA3_DEFAULTS = {
  rope_theta: 1_000_000,
  rope_local_base_freq: 10_000,
  rms_norm_eps: 1e-6,
  query_pre_attn_scalar: 256,
  sliding_window: 4096,
  sliding_window_pattern: 6,
  hidden_activation: "gelu_pytorch_tanh",
} as const;

/** Layer i is global when (i + 1) % pattern == 0, sliding otherwise (transformers' rule, llama.cpp's i % 6 == 5). */
export function gemma3LayerTypes(numLayers: number, pattern: number): LayerType[] {
  return Array.from({ length: numLayers }, (_, i) => ((i + 1) % pattern === 0 ? "full_attention" : "sliding_attention"));
}

/** x as transformers holds it in `dtype`: a float32 tensor, then cast (round half to even). */
export function roundToDtype(x: number, dtype: "bfloat16" | "float16" | "float32"): number {
  if (dtype === "bfloat16") return new Float32Array(new Uint32Array([f32ToBf16Bits(x) << 16]).buffer)[0];
  if (dtype === "float16") return f16BitsToF32(f32ToF16Bits(x));
  return Math.fround(x);
}

/**
 * The dtype transformers computes the embedding in: config.json's torch_dtype (or `dtype`, as newer
 * versions write it); float32, the unrounded factor, when it says neither.
 */
function embeddingDtype(r: ConfigReader): "bfloat16" | "float16" | "float32" {
  for (const key of ["torch_dtype", "dtype"]) {
    const v = r.c[key];
    if (v === "bfloat16" || v === "float16" || v === "float32") return v;
    if (v !== undefined && v !== null) r.fail(`"${key}" ${JSON.stringify(v).slice(0, 40)} is not one of "bfloat16", "float16", "float32"`);
  }
  r.defaulted.push("torch_dtype");
  return "float32";
}

/**
 * The RoPE of each layer kind: from `rope_parameters` ({ full_attention: {...}, sliding_attention: {...} },
 * transformers 5's form) when config.json has it, else from rope_theta, rope_local_base_freq and
 * rope_scaling (which only the global layers use).
 */
function readRopes(r: ConfigReader): Record<LayerType, Rope> {
  const fail = (msg: string): never => r.fail(msg);
  const theta = (v: unknown, key: string): number => {
    if (typeof v !== "number" || !Number.isFinite(v) || v < CONFIG_LIMITS.minRopeTheta) {
      fail(`"${key}" must be a number of at least ${CONFIG_LIMITS.minRopeTheta}, got ${JSON.stringify(v)}`);
    }
    return v as number;
  };
  const params = r.c["rope_parameters"];
  if (params !== undefined && params !== null) {
    if (typeof params !== "object" || Array.isArray(params)) fail(`"rope_parameters" must be an object`);
    const kind = (k: LayerType): Rope => {
      const p = (params as Json)[k];
      if (typeof p !== "object" || p === null || Array.isArray(p)) fail(`"rope_parameters.${k}" must be an object`);
      const scaling = parseRopeScaling(p, fail, k === "full_attention" ? ["linear"] : [], `rope_parameters.${k}`);
      return { theta: theta((p as Json)["rope_theta"], `rope_parameters.${k}.rope_theta`), scaling };
    };
    return { full_attention: kind("full_attention"), sliding_attention: kind("sliding_attention") };
  }
  return {
    full_attention: {
      theta: r.positiveNumber("rope_theta", GEMMA3_DEFAULTS.rope_theta, CONFIG_LIMITS.minRopeTheta),
      scaling: parseRopeScaling(r.c["rope_scaling"], fail, ["linear"]),
    },
    sliding_attention: {
      theta: r.positiveNumber("rope_local_base_freq", GEMMA3_DEFAULTS.rope_local_base_freq, CONFIG_LIMITS.minRopeTheta),
      scaling: null,
    },
  };
}

function readGemma3Config(r: ConfigReader, s: Sizes): FamilyConfig {
  const pattern = (): LayerType[] => gemma3LayerTypes(s.numLayers, r.positiveInt("sliding_window_pattern", GEMMA3_DEFAULTS.sliding_window_pattern));
  const kinds = readLayerTypes(r, s.numLayers, pattern, false);
  const slidingWindow = kinds.includes("sliding_attention")
    ? r.positiveInt("sliding_window", GEMMA3_DEFAULTS.sliding_window)
    : readSlidingWindow(r, kinds);
  const rmsNormEps = r.positiveNumber("rms_norm_eps", GEMMA3_DEFAULTS.rms_norm_eps, CONFIG_LIMITS.minRmsNormEps, CONFIG_LIMITS.maxRmsNormEps);
  const rope = readRopes(r);
  const queryPreAttnScalar = r.positiveNumber("query_pre_attn_scalar", GEMMA3_DEFAULTS.query_pre_attn_scalar, 1e-6, 1e12);
  return {
    rmsNormEps,
    layers: kinds.map((kind) => ({ kind, rope: true })),
    rope,
    slidingWindow,
    qkNorm: "before_rope",
    activation: "gelu_tanh",
    embedScale: roundToDtype(Math.sqrt(s.hiddenSize), embeddingDtype(r)),
    queryScale: 1 / Math.sqrt(queryPreAttnScalar),
    // Llama 4's temperature tuning, off: its parameters at their neutral (default) values.
    attnTemperatureTuning: false,
    floorScale: LLAMA4_DEFAULTS.floor_scale,
    attnScale: LLAMA4_DEFAULTS.attn_scale,
  };
}

export const GEMMA3: Family = {
  name: "gemma3",
  modelTypes: ["gemma3_text"],
  classes: ["Gemma3ForCausalLM"],
  ggufArchitecture: "gemma3",
  ropeStyle: "rotate_half",
  norms: { placement: "sandwich", hfOffset: 1 },
  layerTensors: GEMMA3_LAYER_TENSORS,
  headDim: 256,
  tiedByDefault: true,
  checkKeys(r) {
    const refuse = (key: string, neutral: (v: unknown) => boolean, why: string) => {
      if (r.has(key) && !neutral(r.c[key])) r.fail(`"${key}" ${JSON.stringify(r.c[key]).slice(0, 80)}: ${why}`);
    };
    refuse("attention_bias", (v) => v === false, "bias terms in the attention projections are not implemented");
    for (const key of ["hidden_activation", "hidden_act"]) {
      refuse(key, (v) => v === GEMMA3_DEFAULTS.hidden_activation, `the MLP is GeGLU with tanh-approximated GELU ("${GEMMA3_DEFAULTS.hidden_activation}")`);
    }
    refuse("final_logit_softcapping", () => false, "logit soft-capping (Gemma 2) is not implemented");
    refuse("attn_logit_softcapping", () => false, "attention soft-capping (Gemma 2) is not implemented");
    refuse("use_bidirectional_attention", (v) => v === false, "bidirectional attention (EmbeddingGemma) is not implemented");
  },
  readConfig: readGemma3Config,
};
