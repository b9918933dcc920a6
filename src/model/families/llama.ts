// The Llama families: MobileLLM-Pro (llama4_text) and plain Llama (SmolLM2, Llama 3.x, AMD-Llama). Both are
// pre-norm decoders with RMSNorm, grouped-query attention, RoPE and a SwiGLU MLP, nine tensors a layer; the
// forward pass is src/reference/llama.ts (the engine's, src/model/layers.ts). What differs:
//
// - llama4_text (MobileLLM-Pro, "MobileLLMP1ForCausalLM"): RoPE rotates ADJACENT pairs of each head's
//   dimensions (2i, 2i+1), as Meta's original code does and Llama-4 checkpoints are stored for; layers can
//   be sliding-window ("layer_types"), skip RoPE ("no_rope_layers"), normalize q and k after RoPE
//   ("use_qk_norm") and scale NoPE queries by position ("attn_temperature_tuning").
// - llama ("LlamaForCausalLM"): Hugging Face stores the q and k projections for transformers' `rotate_half`,
//   which pairs dimension i with i + headDim/2. Every layer is global, and none of the Llama-4 extras exist.
//
// The defaults are transformers' own for each config class where a key is absent (LlamaConfig: rope_theta
// 10000, rms_norm_eps 1e-6, untied embeddings), except that llama4_text keeps the values of the published
// MobileLLM-Pro config (tied embeddings, rms_norm_eps 1e-5).
import { CONFIG_LIMITS, parseRopeScaling, readLayerTypes, readSlidingWindow, type ConfigReader } from "../config-reader.js";
import type { Family, FamilyConfig, LayerTensor, Rope, Sizes } from "./family.js";

/** One layer of a Llama checkpoint. Llama-4 checkpoints may spell the MLP `feed_forward.*`, Llama ones `mlp.*`. */
export const LLAMA_LAYER_TENSORS: readonly LayerTensor[] = [
  { role: "attnNorm", hf: ["input_layernorm.weight"], gguf: "attn_norm.weight", shape: (c) => [c.hiddenSize] },
  { role: "wq", hf: ["self_attn.q_proj.weight"], gguf: "attn_q.weight", shape: (c) => [c.numHeads * c.headDim, c.hiddenSize] },
  { role: "wk", hf: ["self_attn.k_proj.weight"], gguf: "attn_k.weight", shape: (c) => [c.numKvHeads * c.headDim, c.hiddenSize] },
  { role: "wv", hf: ["self_attn.v_proj.weight"], gguf: "attn_v.weight", shape: (c) => [c.numKvHeads * c.headDim, c.hiddenSize] },
  { role: "wo", hf: ["self_attn.o_proj.weight"], gguf: "attn_output.weight", shape: (c) => [c.hiddenSize, c.numHeads * c.headDim] },
  { role: "ffnNorm", hf: ["post_attention_layernorm.weight"], gguf: "ffn_norm.weight", shape: (c) => [c.hiddenSize] },
  { role: "wGate", hf: ["feed_forward.gate_proj.weight", "mlp.gate_proj.weight"], gguf: "ffn_gate.weight", shape: (c) => [c.intermediateSize, c.hiddenSize] },
  { role: "wUp", hf: ["feed_forward.up_proj.weight", "mlp.up_proj.weight"], gguf: "ffn_up.weight", shape: (c) => [c.intermediateSize, c.hiddenSize] },
  { role: "wDown", hf: ["feed_forward.down_proj.weight", "mlp.down_proj.weight"], gguf: "ffn_down.weight", shape: (c) => [c.hiddenSize, c.intermediateSize] },
];

/**
 * Defaults of the Llama-4 extras for keys a config may omit (transformers' Llama4TextConfig values); the
 * per-family ones (rope_theta, rms_norm_eps, tie_word_embeddings) are the family's.
 */
export const LLAMA4_DEFAULTS = {
  use_qk_norm: false,
  attn_temperature_tuning: false,
  floor_scale: 8192,
  attn_scale: 0.1,
} as const;

/** Refusals both Llama families share: biases and an MLP other than SwiGLU. */
function checkLlamaKeys(r: ConfigReader): void {
  for (const key of ["attention_bias", "mlp_bias"]) {
    if (r.has(key) && r.c[key] !== false) {
      r.fail(`"${key}": ${JSON.stringify(r.c[key])}: bias terms in the attention or MLP projections are not implemented`);
    }
  }
  if (r.c["hidden_act"] !== undefined && r.c["hidden_act"] !== "silu") {
    r.fail(`"hidden_act" ${JSON.stringify(r.c["hidden_act"])} is not supported: the MLP is SwiGLU (silu)`);
  }
}

/**
 * The keys both Llama families read; `extras` says whether the Llama-4 ones are read (llama4_text) or take
 * their neutral values without being reported as assumed (llama, whose checkKeys refused any other value).
 */
function readLlamaConfig(r: ConfigReader, s: Sizes, extras: boolean, defaults: { rope_theta: number; rms_norm_eps: number }): FamilyConfig {
  const kinds = readLayerTypes(r, s.numLayers, () => new Array(s.numLayers).fill("full_attention"), extras);
  const slidingWindow = readSlidingWindow(r, kinds);
  const useRope = readUseRope(r, s.numLayers, extras);
  const rmsNormEps = r.positiveNumber("rms_norm_eps", defaults.rms_norm_eps, CONFIG_LIMITS.minRmsNormEps, CONFIG_LIMITS.maxRmsNormEps);
  const rope: Rope = {
    theta: r.positiveNumber("rope_theta", defaults.rope_theta, CONFIG_LIMITS.minRopeTheta),
    scaling: parseRopeScaling(r.c["rope_scaling"], (msg) => r.fail(msg), ["llama3"]),
  };
  const extra = <T>(read: () => T, neutral: T): T => (extras ? read() : neutral);
  const useQkNorm = extra(() => r.bool("use_qk_norm", LLAMA4_DEFAULTS.use_qk_norm), false);
  return {
    rmsNormEps,
    layers: kinds.map((kind, l) => ({ kind, rope: useRope[l] })),
    rope: { full_attention: rope, sliding_attention: rope },
    slidingWindow,
    qkNorm: useQkNorm ? "after_rope" : "none",
    activation: "silu",
    embedScale: 1,
    queryScale: 1 / Math.sqrt(s.headDim),
    attnTemperatureTuning: extra(() => r.bool("attn_temperature_tuning", LLAMA4_DEFAULTS.attn_temperature_tuning), false),
    floorScale: extra(() => r.positiveNumber("floor_scale", LLAMA4_DEFAULTS.floor_scale, CONFIG_LIMITS.minFloorScale), LLAMA4_DEFAULTS.floor_scale),
    attnScale: extra(() => r.positiveNumber("attn_scale", LLAMA4_DEFAULTS.attn_scale, 0, CONFIG_LIMITS.maxAttnScale), LLAMA4_DEFAULTS.attn_scale),
  };
}

/** useRope[l] is false for NoPE layers (`no_rope_layers[l] == 0`). */
function readUseRope(r: ConfigReader, numLayers: number, recordDefault: boolean): boolean[] {
  const nr = r.c["no_rope_layers"];
  if (nr === undefined || nr === null || (Array.isArray(nr) && nr.length === 0)) {
    if (recordDefault) r.defaulted.push("no_rope_layers");
    return new Array<boolean>(numLayers).fill(true);
  }
  if (!Array.isArray(nr) || nr.length !== numLayers) r.fail(`"no_rope_layers" must be an array of ${numLayers} entries (1 = RoPE, 0 = NoPE)`);
  return (nr as unknown[]).map((v, i) => {
    if (v !== 0 && v !== 1 && v !== true && v !== false) r.fail(`no_rope_layers[${i}] must be 0 or 1, got ${JSON.stringify(v)}`);
    return v === 1 || v === true;
  });
}

const LLAMA4_TEXT_DEFAULTS = { rope_theta: 500000, rms_norm_eps: 1e-5 };

export const LLAMA4_TEXT: Family = {
  name: "llama4_text",
  modelTypes: ["llama4_text"],
  classes: ["MobileLLMP1ForCausalLM", "Llama4ForCausalLM"],
  ggufArchitecture: null,
  ropeStyle: "interleaved",
  norms: { placement: "pre", hfOffset: 0 },
  layerTensors: LLAMA_LAYER_TENSORS,
  tiedByDefault: true,
  checkKeys: checkLlamaKeys,
  readConfig: (r, s) => readLlamaConfig(r, s, true, LLAMA4_TEXT_DEFAULTS),
};

const LLAMA_DEFAULTS = { rope_theta: 10000, rms_norm_eps: 1e-6 };

export const LLAMA: Family = {
  name: "llama",
  modelTypes: ["llama"],
  classes: ["LlamaForCausalLM"],
  ggufArchitecture: "llama",
  ropeStyle: "rotate_half",
  norms: { placement: "pre", hfOffset: 0 },
  layerTensors: LLAMA_LAYER_TENSORS,
  tiedByDefault: false,
  checkKeys(r) {
    // A Llama-4-only key in a plain Llama config is refused only when it asks for something this family
    // cannot do; absent or at its neutral value, it changes nothing and is not reported as assumed.
    const llama4Only = (key: string, neutral: (v: unknown) => boolean) => {
      if (!r.has(key) || neutral(r.c[key])) return;
      r.fail(`"${key}" is a Llama-4 feature; a llama checkpoint cannot use it (got ${JSON.stringify(r.c[key]).slice(0, 80)})`);
    };
    llama4Only("layer_types", (v) => Array.isArray(v) && v.every((t) => t === "full_attention"));
    llama4Only("no_rope_layers", (v) => Array.isArray(v) && v.every((t) => t === 1 || t === true));
    llama4Only("use_qk_norm", (v) => v === false);
    llama4Only("attn_temperature_tuning", (v) => v === false);
    checkLlamaKeys(r);
  },
  readConfig: (r, s) => readLlamaConfig(r, s, false, LLAMA_DEFAULTS),
};
