// Parses and validates a Hugging Face config.json of any supported family (src/model/families/ says what
// each family is and reads its own keys): MobileLLM-Pro (llama4_text), plain Llama, Gemma 3.
//
// Everything the config can say is read from it; a default is used only where a key is absent, and every
// default taken is recorded in `defaulted` so `info` can show what was assumed (MobileLLM-Pro's published
// config.json does not show rope_theta, rms_norm_eps, use_qk_norm or no_rope_layers, so those are the ones
// a real checkpoint is most likely to leave to the defaults). Inconsistent configs fail here, with the key
// named, not deep in a kernel.
import { CONFIG_LIMITS, ConfigError, ConfigReader, type Json } from "./config-reader.js";
import { familyOf, familyOfConfig, type Family } from "./families/index.js";
import type { LayerType, ModelConfig, Rope, Sizes } from "./families/family.js";

export { CONFIG_LIMITS, ConfigError };
export { LLAMA4_DEFAULTS } from "./families/llama.js";
export type {
  Activation, FamilyName, LayerSpec, LayerType, Llama3RopeScaling, LinearRopeScaling, ModelConfig, NormPlacement, QkNorm, Rope,
  RopeFrequencyFactors, RopeScaling, RopeStyle,
} from "./families/family.js";

export function parseConfig(json: unknown, source = "config.json"): ModelConfig {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new ConfigError(`${source}: expected a JSON object`);
  }
  const r = new ConfigReader(json as Json, source);
  const family = readFamily(r);
  family.checkKeys(r);
  const sizes = readSizes(r, family);
  const f = family.readConfig(r, sizes);
  const eos = r.c["eos_token_id"];
  return {
    architecture: family.name,
    ropeStyle: family.ropeStyle,
    norms: family.norms.placement,
    activation: f.activation,
    qkNorm: f.qkNorm,
    ...sizes,
    rmsNormEps: f.rmsNormEps,
    layers: f.layers,
    rope: f.rope,
    slidingWindow: f.slidingWindow,
    embedScale: f.embedScale,
    queryScale: f.queryScale,
    attnTemperatureTuning: f.attnTemperatureTuning,
    floorScale: f.floorScale,
    attnScale: f.attnScale,
    tieWordEmbeddings: r.bool("tie_word_embeddings", family.tiedByDefault),
    bosTokenId: r.optionalTokenId("bos_token_id"),
    eosTokenIds: eos === undefined || eos === null ? [] : (Array.isArray(eos) ? eos : [eos]).map((v) => r.tokenId(v, "eos_token_id")),
    padTokenId: r.optionalTokenId("pad_token_id"),
    defaulted: r.defaulted,
  };
}

/** The family the config names (model_type, architectures). */
function readFamily(r: ConfigReader): Family {
  const found = familyOfConfig(r.c["model_type"], r.c["architectures"]);
  if ("error" in found) r.fail(found.error);
  const { family, assumed } = found as Exclude<typeof found, { error: string }>;
  if (assumed) r.defaulted.push("model_type");
  return family;
}

/** The sizes of the network, checked against each other. */
function readSizes(r: ConfigReader, family: Family): Sizes {
  const hiddenSize = r.positiveInt("hidden_size");
  const numLayers = r.positiveInt("num_hidden_layers");
  if (numLayers > CONFIG_LIMITS.maxLayers) r.fail(`"num_hidden_layers" is ${numLayers}, more than the ${CONFIG_LIMITS.maxLayers} this engine accepts`);
  const numHeads = r.positiveInt("num_attention_heads");
  const numKvHeads = r.positiveInt("num_key_value_heads", numHeads);
  // Llama-4 dense layers use intermediate_size_mlp; plain Llama configs only have intermediate_size.
  const intermediateSize = r.c["intermediate_size_mlp"] !== undefined ? r.positiveInt("intermediate_size_mlp") : r.positiveInt("intermediate_size");
  const vocabSize = r.positiveInt("vocab_size");
  const maxPositions = r.positiveInt("max_position_embeddings");
  if (hiddenSize % numHeads !== 0 && r.c["head_dim"] === undefined && family.headDim === undefined) {
    r.fail(`hidden_size ${hiddenSize} is not divisible by num_attention_heads ${numHeads} and no head_dim is given`);
  }
  const headDim = r.positiveInt("head_dim", family.headDim ?? hiddenSize / numHeads);
  if (headDim % 2 !== 0) r.fail(`head_dim must be even for RoPE's pairs, got ${headDim}`);
  if (numHeads % numKvHeads !== 0) r.fail(`num_attention_heads ${numHeads} is not divisible by num_key_value_heads ${numKvHeads}`);
  return { hiddenSize, intermediateSize, numLayers, numHeads, numKvHeads, headDim, vocabSize, maxPositions };
}

/** The kinds of the layers as letters: G global, S sliding ("GSSSG..."). */
export function layerMap(c: ModelConfig): string {
  return c.layers.map((l) => (l.kind === "full_attention" ? "G" : "S")).join("");
}

/** The RoPE layer `l` rotates with, or null on a NoPE layer. */
export function ropeOf(c: ModelConfig, l: number): Rope | null {
  return c.layers[l].rope ? c.rope[c.layers[l].kind] : null;
}

/** Global layers 0, 4, ..., 28 and the last one (29): the published MobileLLM-Pro pattern. */
function mobilellmProLayerTypes(): LayerType[] {
  return Array.from({ length: 30 }, (_, l) => (l % 4 === 0 || l === 29 ? "full_attention" : "sliding_attention"));
}

/**
 * The published MobileLLM-Pro config.json, as far as the model card, the technical report and the
 * published config files show it. Keys they do not show (rope_theta, rms_norm_eps, use_qk_norm, no_rope_layers) are left out on purpose, so
 * they take their documented defaults and `info` reports them as assumed.
 */
export const MOBILELLM_PRO_CONFIG_JSON = {
  architectures: ["MobileLLMP1ForCausalLM"],
  model_type: "llama4_text",
  attention_bias: false,
  attention_chunk_size: 8192,
  attention_dropout: 0.0,
  attn_scale: 0.1,
  bos_token_id: 200000,
  eos_token_id: [200001, 200007, 200008],
  pad_token_id: 200018,
  head_dim: 64,
  hidden_act: "silu",
  hidden_size: 1280,
  initializer_range: 0.02,
  intermediate_size: 6144,
  intermediate_size_mlp: 6144,
  layer_types: mobilellmProLayerTypes(),
  sliding_window: 512,
  max_position_embeddings: 131072,
  num_attention_heads: 20,
  num_hidden_layers: 30,
  num_key_value_heads: 4,
  tie_word_embeddings: true,
  torch_dtype: "bfloat16",
  vocab_size: 202048,
};

export const mobilellmPro: ModelConfig = parseConfig(MOBILELLM_PRO_CONFIG_JSON, "mobilellm-pro preset");

/**
 * config.json of the Llama-architecture on-device models, as published on Hugging Face (the keys the forward
 * pass and the tokenizer ids read; HuggingFaceTB/SmolLM2-135M and -360M, amd/AMD-Llama-135m,
 * meta-llama/Llama-3.2-1B). `mobilellm synth` writes random-weight folders in these shapes.
 */
export const LLAMA_CONFIG_JSONS = {
  "smollm2-135m": {
    architectures: ["LlamaForCausalLM"], model_type: "llama", hidden_size: 576, intermediate_size: 1536, num_attention_heads: 9,
    num_key_value_heads: 3, num_hidden_layers: 30, vocab_size: 49152, max_position_embeddings: 8192, rope_theta: 100000,
    rms_norm_eps: 1e-5, tie_word_embeddings: true, hidden_act: "silu", attention_bias: false, mlp_bias: false,
    bos_token_id: 0, eos_token_id: 0, torch_dtype: "bfloat16",
  },
  "smollm2-360m": {
    architectures: ["LlamaForCausalLM"], model_type: "llama", hidden_size: 960, intermediate_size: 2560, num_attention_heads: 15,
    num_key_value_heads: 5, num_hidden_layers: 32, vocab_size: 49152, max_position_embeddings: 8192, rope_theta: 100000,
    rms_norm_eps: 1e-5, tie_word_embeddings: true, hidden_act: "silu", attention_bias: false, mlp_bias: false,
    bos_token_id: 0, eos_token_id: 0, torch_dtype: "bfloat16",
  },
  "amd-llama-135m": {
    architectures: ["LlamaForCausalLM"], model_type: "llama", hidden_size: 768, intermediate_size: 2048, num_attention_heads: 12,
    num_key_value_heads: 12, num_hidden_layers: 12, vocab_size: 32000, max_position_embeddings: 2048, rope_theta: 10000,
    rms_norm_eps: 1e-5, tie_word_embeddings: false, hidden_act: "silu", bos_token_id: 1, eos_token_id: 2,
  },
  "llama-3.2-1b": {
    architectures: ["LlamaForCausalLM"], model_type: "llama", hidden_size: 2048, intermediate_size: 8192, num_attention_heads: 32,
    num_key_value_heads: 8, head_dim: 64, num_hidden_layers: 16, vocab_size: 128256, max_position_embeddings: 131072,
    rope_theta: 500000, rms_norm_eps: 1e-5, tie_word_embeddings: true, hidden_act: "silu", attention_bias: false, mlp_bias: false,
    rope_scaling: { rope_type: "llama3", factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
    bos_token_id: 128000, eos_token_id: 128001, torch_dtype: "bfloat16",
  },
} as const;

/**
 * config.json of Google's small Gemma 3 text models as published on Hugging Face (google/gemma-3-270m,
 * google/gemma-3-1b-pt; the keys the forward pass and the tokenizer ids read). The 270m file lists its
 * layer_types, the 1b one gives sliding_window_pattern: both say layers 5, 11, 17 and 23 are global.
 */
export const GEMMA3_CONFIG_JSONS = {
  "gemma-3-270m": {
    architectures: ["Gemma3ForCausalLM"], model_type: "gemma3_text", hidden_size: 640, intermediate_size: 2048, num_attention_heads: 4,
    num_key_value_heads: 1, head_dim: 256, num_hidden_layers: 18, vocab_size: 262144, max_position_embeddings: 32768,
    layer_types: Array.from({ length: 18 }, (_, i) => ((i + 1) % 6 === 0 ? "full_attention" : "sliding_attention")),
    sliding_window: 512, rope_theta: 1000000.0, rope_local_base_freq: 10000.0, rope_scaling: null, query_pre_attn_scalar: 256,
    rms_norm_eps: 1e-6, hidden_activation: "gelu_pytorch_tanh", attention_bias: false, attn_logit_softcapping: null,
    final_logit_softcapping: null, use_bidirectional_attention: false, bos_token_id: 2, eos_token_id: 1, pad_token_id: 0,
    torch_dtype: "bfloat16",
  },
  "gemma-3-1b": {
    architectures: ["Gemma3ForCausalLM"], model_type: "gemma3_text", hidden_size: 1152, intermediate_size: 6912, num_attention_heads: 4,
    num_key_value_heads: 1, head_dim: 256, num_hidden_layers: 26, vocab_size: 262144, max_position_embeddings: 32768,
    sliding_window_pattern: 6, sliding_window: 512, rope_theta: 1000000.0, rope_local_base_freq: 10000.0, rope_scaling: null,
    query_pre_attn_scalar: 256, rms_norm_eps: 1e-6, hidden_activation: "gelu_pytorch_tanh", attention_bias: false,
    attn_logit_softcapping: null, final_logit_softcapping: null, bos_token_id: 2, eos_token_id: 1, pad_token_id: 0,
    torch_dtype: "bfloat16",
  },
};

export const PRESETS: Record<string, { json: Json; config: ModelConfig }> = {
  "mobilellm-pro": { json: MOBILELLM_PRO_CONFIG_JSON, config: mobilellmPro },
  ...Object.fromEntries(
    Object.entries({ ...LLAMA_CONFIG_JSONS, ...GEMMA3_CONFIG_JSONS }).map(([name, json]) => [name, { json: json as Json, config: parseConfig(json as Json, `${name} preset`) }]),
  ),
};

/**
 * Throws a RangeError unless `contextLength` (the positions a KV cache holds) is an integer from 1 to the
 * config's max_position_embeddings: the one check every layer that sizes a cache or a RoPE table calls.
 */
export function checkContextLength(c: ModelConfig, contextLength: number): void {
  if (typeof contextLength !== "number" || !Number.isSafeInteger(contextLength) || contextLength < 1) {
    throw new RangeError(`context length must be a positive integer, got ${String(contextLength)}`);
  }
  if (contextLength > c.maxPositions) {
    throw new RangeError(`context ${contextLength} exceeds max_position_embeddings ${c.maxPositions}`);
  }
}

/** Parameters by part, from the family's tensor list; `total` is what the checkpoint stores (1,084,453,120 for the preset). */
export function parameterCount(c: ModelConfig): {
  embedding: number;
  perLayer: number;
  layers: number;
  finalNorm: number;
  lmHead: number;
  total: number;
} {
  const d = c.hiddenSize;
  const elements = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
  const perLayer = familyOf(c.architecture).layerTensors.reduce((n, t) => n + elements(t.shape(c)), 0);
  const embedding = c.vocabSize * d;
  const lmHead = c.tieWordEmbeddings ? 0 : c.vocabSize * d;
  const layers = perLayer * c.numLayers;
  return { embedding, perLayer, layers, finalNorm: d, lmHead, total: embedding + layers + d + lmHead };
}
