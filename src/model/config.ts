// Parses and validates a Hugging Face config.json: MobileLLM-Pro (llama4_text with layer_types) or a plain
// Llama (src/model/architectures.ts says what differs).
//
// Everything the config can say is read from it; a default is used only where a key is absent, and every
// default taken is recorded in `defaulted` so `info` can show what was assumed (MobileLLM-Pro's published
// config.json does not show rope_theta, rms_norm_eps, use_qk_norm or no_rope_layers, so those are the ones
// a real checkpoint is most likely to leave to the defaults). Inconsistent configs fail here, with the key
// named, not deep in a kernel.
import { architectureOf, type Architecture, type ArchitectureName, type RopeStyle } from "./architectures.js";

export type LayerType = "full_attention" | "sliding_attention";

export interface Llama3RopeScaling {
  type: "llama3";
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositions: number;
}

/**
 * RoPE scaling as a llama.cpp GGUF stores it: one divisor per frequency (its rope_freqs.weight tensor, which
 * llama.cpp's converter computes from a config's llama3 rope_scaling), headDim/2 of them.
 */
export interface RopeFrequencyFactors {
  type: "factors";
  factors: readonly number[];
}

export type RopeScaling = Llama3RopeScaling | RopeFrequencyFactors;

export interface ModelConfig {
  /** The model family (src/model/architectures.ts). */
  architecture: ArchitectureName;
  /** Which dimensions of a head RoPE rotates together, as the checkpoint's q and k rows are laid out. */
  ropeStyle: RopeStyle;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  vocabSize: number;
  maxPositions: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling | null;
  layerTypes: LayerType[];
  /** Keys visible to a sliding layer's query: itself and the window-1 previous tokens. */
  slidingWindow: number | null;
  /** useRope[l] is false for NoPE layers (config `no_rope_layers[l] == 0`). */
  useRope: boolean[];
  useQkNorm: boolean;
  attnTemperatureTuning: boolean;
  floorScale: number;
  attnScale: number;
  tieWordEmbeddings: boolean;
  bosTokenId: number | null;
  eosTokenIds: number[];
  padTokenId: number | null;
  /** config.json keys that were absent and took their documented default. */
  defaulted: string[];
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/**
 * Defaults of the Llama-4 extras for keys a config may omit (transformers' Llama4TextConfig values); the
 * per-family ones (rope_theta, rms_norm_eps, tie_word_embeddings) are in src/model/architectures.ts.
 */
export const LLAMA4_DEFAULTS = {
  use_qk_norm: false,
  attn_temperature_tuning: false,
  floor_scale: 8192,
  attn_scale: 0.1,
} as const;

/**
 * Ranges a config must keep to, checked when it is parsed: a config.json comes with a download, and a
 * value outside these either allocates in proportion to itself before any tensor is checked (a layer
 * count builds per-layer tables) or overflows float32 in the engine and turns every logit into NaN.
 * Real checkpoints sit far inside them (MobileLLM-Pro: 30 layers, rope_theta 500000, llama3 factor 8).
 */
export const CONFIG_LIMITS = {
  /** num_hidden_layers at most (the deepest published transformers have about 130). */
  maxLayers: 1024,
  /** rope_theta at least 1: below it the inverse frequencies exceed 1 and position x frequency overflows. */
  minRopeTheta: 1,
  /** rope_scaling.factor at least 1: it divides the frequencies (a context extension, never a squeeze). */
  minRopeFactor: 1,
  /** rms_norm_eps within [1e-30, 1]: smaller rounds to 0 in float32 (a zero row then divides by zero). */
  minRmsNormEps: 1e-30,
  maxRmsNormEps: 1,
  /** attn_scale at most 10 and floor_scale at least 1: the query temperature stays below ~400. */
  maxAttnScale: 10,
  minFloorScale: 1,
} as const;

type Json = Record<string, unknown>;

/**
 * The keys of one config.json, read with the rules every key follows: a missing key takes its default and
 * is recorded in `defaulted`; a present one must have the right type and range, or parsing fails with the
 * file and the key named.
 */
class ConfigReader {
  readonly defaulted: string[] = [];

  constructor(
    readonly c: Json,
    private readonly source: string,
  ) {}

  fail(msg: string): never {
    throw new ConfigError(`${this.source}: ${msg}`);
  }

  has(key: string): boolean {
    return this.c[key] !== undefined && this.c[key] !== null;
  }

  positiveInt(key: string, fallback?: number): number {
    const v = this.c[key];
    if (v === undefined || v === null) {
      if (fallback === undefined) this.fail(`missing required key "${key}"`);
      this.defaulted.push(key);
      return fallback as number;
    }
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v <= 0) this.fail(`"${key}" must be a positive integer, got ${JSON.stringify(v)}`);
    return v as number;
  }

  positiveNumber(key: string, fallback: number, min = 0, max = Infinity): number {
    const v = this.c[key];
    if (v === undefined || v === null) {
      this.defaulted.push(key);
      return fallback;
    }
    if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) this.fail(`"${key}" must be a positive number, got ${JSON.stringify(v)}`);
    if ((v as number) < min || (v as number) > max) {
      this.fail(`"${key}" is ${String(v)}, outside the range this engine computes in float32 without overflow: [${min}, ${max}]`);
    }
    return v as number;
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.c[key];
    if (v === undefined || v === null) {
      this.defaulted.push(key);
      return fallback;
    }
    if (typeof v !== "boolean") this.fail(`"${key}" must be true or false, got ${JSON.stringify(v)}`);
    return v as boolean;
  }

  tokenId(v: unknown, key: string): number {
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) this.fail(`"${key}" must be a non-negative integer token id, got ${JSON.stringify(v)}`);
    return v as number;
  }

  optionalTokenId(key: string): number | null {
    return this.has(key) ? this.tokenId(this.c[key], key) : null;
  }
}

export function parseConfig(json: unknown, source = "config.json"): ModelConfig {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new ConfigError(`${source}: expected a JSON object`);
  }
  const r = new ConfigReader(json as Json, source);
  const arch = readArchitecture(r);
  const shape = readShape(r);
  const layerTypes = readLayerTypes(r, arch, shape.numLayers);
  const slidingWindow = readSlidingWindow(r, layerTypes);
  const useRope = readUseRope(r, arch, shape.numLayers);
  const ropeScaling = parseRopeScaling(r.c["rope_scaling"], (msg) => r.fail(msg));
  /** A Llama-4-only key: read as usual, or its neutral value (and no default recorded) in a plain Llama config. */
  const extra = <T>(read: () => T, neutral: T): T => (arch.llama4Extras ? read() : neutral);
  const eos = r.c["eos_token_id"];
  return {
    architecture: arch.name,
    ropeStyle: arch.ropeStyle,
    ...shape,
    rmsNormEps: r.positiveNumber("rms_norm_eps", arch.defaults.rms_norm_eps, CONFIG_LIMITS.minRmsNormEps, CONFIG_LIMITS.maxRmsNormEps),
    ropeTheta: r.positiveNumber("rope_theta", arch.defaults.rope_theta, CONFIG_LIMITS.minRopeTheta),
    ropeScaling,
    layerTypes,
    slidingWindow,
    useRope,
    useQkNorm: extra(() => r.bool("use_qk_norm", LLAMA4_DEFAULTS.use_qk_norm), false),
    attnTemperatureTuning: extra(() => r.bool("attn_temperature_tuning", LLAMA4_DEFAULTS.attn_temperature_tuning), false),
    floorScale: extra(() => r.positiveNumber("floor_scale", LLAMA4_DEFAULTS.floor_scale, CONFIG_LIMITS.minFloorScale), LLAMA4_DEFAULTS.floor_scale),
    attnScale: extra(() => r.positiveNumber("attn_scale", LLAMA4_DEFAULTS.attn_scale, 0, CONFIG_LIMITS.maxAttnScale), LLAMA4_DEFAULTS.attn_scale),
    tieWordEmbeddings: r.bool("tie_word_embeddings", arch.defaults.tie_word_embeddings),
    bosTokenId: r.optionalTokenId("bos_token_id"),
    eosTokenIds: eos === undefined || eos === null ? [] : (Array.isArray(eos) ? eos : [eos]).map((v) => r.tokenId(v, "eos_token_id")),
    padTokenId: r.optionalTokenId("pad_token_id"),
    defaulted: r.defaulted,
  };
}

/** The family the config names, and what it refuses: Llama-4 extras in a plain Llama, biases, non-SwiGLU MLPs. */
function readArchitecture(r: ConfigReader): Architecture {
  const found = architectureOf(r.c["model_type"], r.c["architectures"]);
  if ("error" in found) r.fail(found.error);
  const { arch, assumed } = found as Exclude<typeof found, { error: string }>;
  if (assumed) r.defaulted.push("model_type");
  // A Llama-4-only key in a plain Llama config is refused only when it asks for something this family
  // cannot do; absent or at its neutral value, it changes nothing and is not reported as assumed.
  const llama4Only = (key: string, neutral: (v: unknown) => boolean) => {
    if (arch.llama4Extras || !r.has(key) || neutral(r.c[key])) return;
    r.fail(`"${key}" is a Llama-4 feature; a ${arch.name} checkpoint cannot use it (got ${JSON.stringify(r.c[key]).slice(0, 80)})`);
  };
  llama4Only("layer_types", (v) => Array.isArray(v) && v.every((t) => t === "full_attention"));
  llama4Only("no_rope_layers", (v) => Array.isArray(v) && v.every((t) => t === 1 || t === true));
  llama4Only("use_qk_norm", (v) => v === false);
  llama4Only("attn_temperature_tuning", (v) => v === false);
  for (const key of ["attention_bias", "mlp_bias"]) {
    if (r.has(key) && r.c[key] !== false) {
      r.fail(`"${key}": ${JSON.stringify(r.c[key])}: bias terms in the attention or MLP projections are not implemented`);
    }
  }
  if (r.c["hidden_act"] !== undefined && r.c["hidden_act"] !== "silu") {
    r.fail(`"hidden_act" ${JSON.stringify(r.c["hidden_act"])} is not supported: the MLP is SwiGLU (silu)`);
  }
  return arch;
}

/** The sizes of the network, checked against each other. */
function readShape(r: ConfigReader) {
  const hiddenSize = r.positiveInt("hidden_size");
  const numLayers = r.positiveInt("num_hidden_layers");
  if (numLayers > CONFIG_LIMITS.maxLayers) r.fail(`"num_hidden_layers" is ${numLayers}, more than the ${CONFIG_LIMITS.maxLayers} this engine accepts`);
  const numHeads = r.positiveInt("num_attention_heads");
  const numKvHeads = r.positiveInt("num_key_value_heads", numHeads);
  // Llama-4 dense layers use intermediate_size_mlp; plain Llama configs only have intermediate_size.
  const intermediateSize = r.c["intermediate_size_mlp"] !== undefined ? r.positiveInt("intermediate_size_mlp") : r.positiveInt("intermediate_size");
  const vocabSize = r.positiveInt("vocab_size");
  const maxPositions = r.positiveInt("max_position_embeddings");
  if (hiddenSize % numHeads !== 0 && r.c["head_dim"] === undefined) {
    r.fail(`hidden_size ${hiddenSize} is not divisible by num_attention_heads ${numHeads} and no head_dim is given`);
  }
  const headDim = r.positiveInt("head_dim", hiddenSize / numHeads);
  if (headDim % 2 !== 0) r.fail(`head_dim must be even for RoPE's pairs, got ${headDim}`);
  if (numHeads % numKvHeads !== 0) r.fail(`num_attention_heads ${numHeads} is not divisible by num_key_value_heads ${numKvHeads}`);
  return { hiddenSize, intermediateSize, numLayers, numHeads, numKvHeads, headDim, vocabSize, maxPositions };
}

function readLayerTypes(r: ConfigReader, arch: Architecture, numLayers: number): LayerType[] {
  const lt = r.c["layer_types"];
  if (lt === undefined || lt === null) {
    if (arch.llama4Extras) r.defaulted.push("layer_types");
    return new Array<LayerType>(numLayers).fill("full_attention");
  }
  if (!Array.isArray(lt)) r.fail(`"layer_types" must be an array`);
  const arr = lt as unknown[];
  if (arr.length !== numLayers) r.fail(`"layer_types" has ${arr.length} entries but num_hidden_layers is ${numLayers}`);
  return arr.map((t, i) => {
    if (t !== "full_attention" && t !== "sliding_attention") {
      r.fail(`layer_types[${i}] is ${JSON.stringify(t)}: expected "full_attention" or "sliding_attention"`);
    }
    return t as LayerType;
  });
}

function readSlidingWindow(r: ConfigReader, layerTypes: LayerType[]): number | null {
  if (layerTypes.includes("sliding_attention")) {
    if (!r.has("sliding_window")) r.fail(`layer_types has sliding_attention layers but "sliding_window" is missing`);
    return r.positiveInt("sliding_window");
  }
  return typeof r.c["sliding_window"] === "number" ? r.positiveInt("sliding_window") : null;
}

/** useRope[l] is false for NoPE layers (`no_rope_layers[l] == 0`). */
function readUseRope(r: ConfigReader, arch: Architecture, numLayers: number): boolean[] {
  const nr = r.c["no_rope_layers"];
  if (nr === undefined || nr === null || (Array.isArray(nr) && nr.length === 0)) {
    if (arch.llama4Extras) r.defaulted.push("no_rope_layers");
    return new Array<boolean>(numLayers).fill(true);
  }
  if (!Array.isArray(nr) || nr.length !== numLayers) r.fail(`"no_rope_layers" must be an array of ${numLayers} entries (1 = RoPE, 0 = NoPE)`);
  return (nr as unknown[]).map((v, i) => {
    if (v !== 0 && v !== 1 && v !== true && v !== false) r.fail(`no_rope_layers[${i}] must be 0 or 1, got ${JSON.stringify(v)}`);
    return v === 1 || v === true;
  });
}

function parseRopeScaling(v: unknown, fail: (msg: string) => never): Llama3RopeScaling | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== "object" || Array.isArray(v)) fail(`"rope_scaling" must be an object or null`);
  const r = v as Json;
  const type = r["rope_type"] ?? r["type"];
  if (type === "default") return null;
  if (type !== "llama3") {
    fail(`rope_scaling type ${JSON.stringify(type)} is not supported (supported: "llama3", "default")`);
  }
  const num = (key: string): number => {
    const x = r[key];
    if (typeof x !== "number" || !Number.isFinite(x) || x <= 0) {
      fail(`rope_scaling.${key} must be a positive number, got ${JSON.stringify(x)}`);
    }
    return x as number;
  };
  const scaling: Llama3RopeScaling = {
    type: "llama3",
    factor: num("factor"),
    lowFreqFactor: num("low_freq_factor"),
    highFreqFactor: num("high_freq_factor"),
    originalMaxPositions: num("original_max_position_embeddings"),
  };
  if (scaling.factor < CONFIG_LIMITS.minRopeFactor) {
    fail(`rope_scaling.factor is ${scaling.factor}: it must be at least ${CONFIG_LIMITS.minRopeFactor} (it divides the RoPE frequencies)`);
  }
  if (scaling.highFreqFactor <= scaling.lowFreqFactor) {
    fail(`rope_scaling.high_freq_factor must exceed low_freq_factor`);
  }
  return scaling;
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

export const PRESETS: Record<string, { json: Json; config: ModelConfig }> = {
  "mobilellm-pro": { json: MOBILELLM_PRO_CONFIG_JSON, config: mobilellmPro },
  ...Object.fromEntries(
    Object.entries(LLAMA_CONFIG_JSONS).map(([name, json]) => [name, { json: json as Json, config: parseConfig(json as Json, `${name} preset`) }]),
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

/** Parameters by part; `total` is what the checkpoint stores (1,084,453,120 for the preset). */
export function parameterCount(c: ModelConfig): {
  embedding: number;
  perLayer: number;
  layers: number;
  finalNorm: number;
  lmHead: number;
  total: number;
} {
  const d = c.hiddenSize;
  const attention = d * c.numHeads * c.headDim * 2 + d * c.numKvHeads * c.headDim * 2;
  const mlp = 3 * d * c.intermediateSize;
  const perLayer = attention + mlp + 2 * d;
  const embedding = c.vocabSize * d;
  const lmHead = c.tieWordEmbeddings ? 0 : c.vocabSize * d;
  const layers = perLayer * c.numLayers;
  return { embedding, perLayer, layers, finalNorm: d, lmHead, total: embedding + layers + d + lmHead };
}
