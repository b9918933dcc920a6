// What a model family is, in data: the vocabulary every family file (llama.ts, gemma3.ts) speaks and the
// config every forward pass reads.
//
// A family says what it is in data: where its norms sit and how a Hugging Face checkpoint stores their
// weights, its MLP activation, where its QK-norm sits, its embedding and attention scales, its RoPE per
// layer kind and the kind of every layer (one list). It owns its tensor list (LayerTensor below), from which
// the checkpoint and GGUF names, the shape checks, the loaders, the parameter count and the memory sizes all
// derive. The order of a layer's blocks is the one thing data does not say: each norm placement has its
// forward pass in a file of its own (src/reference/llama.ts and gemma3.ts; the engine's in
// src/model/layers.ts), sharing the blocks.

import type { ConfigReader, LayerType } from "../config-reader.js";

export type { LayerType };

/** Which dimensions of a head RoPE rotates together: (2i, 2i+1), or (i, i + headDim/2). */
export type RopeStyle = "interleaved" | "rotate_half";

export type FamilyName = "llama4_text" | "llama" | "gemma3";

/**
 * Where a layer's norms sit, which fixes the order of its blocks:
 * - "pre": x += attention(norm(x)); x += mlp(norm(x)) (Llama, MobileLLM-Pro);
 * - "sandwich": x += norm(attention(norm(x))); x += norm(mlp(norm(x))) (Gemma 2 and 3).
 */
export type NormPlacement = "pre" | "sandwich";

/** The MLP: down(act(gate(x)) · up(x)) with act SiLU (SwiGLU) or tanh-approximated GELU (GeGLU). */
export type Activation = "silu" | "gelu_tanh";

/**
 * Where q and k are RMS-normalized per head, if at all:
 * - "after_rope": Llama 4's use_qk_norm, after RoPE and without weights, on RoPE layers only;
 * - "before_rope": Gemma 3's q_norm and k_norm, with learned per-dimension weights, on every layer.
 */
export type QkNorm = "none" | "after_rope" | "before_rope";

export interface Llama3RopeScaling {
  type: "llama3";
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositions: number;
}

/** Positions divided by `factor` (transformers' "linear" rope_type; llama.cpp's rope.scaling.type "linear"). */
export interface LinearRopeScaling {
  type: "linear";
  factor: number;
}

/**
 * RoPE scaling as a llama.cpp GGUF stores it: one divisor per frequency (its rope_freqs.weight tensor, which
 * llama.cpp's converter computes from a config's llama3 rope_scaling), headDim/2 of them.
 */
export interface RopeFrequencyFactors {
  type: "factors";
  factors: readonly number[];
}

export type RopeScaling = Llama3RopeScaling | LinearRopeScaling | RopeFrequencyFactors;

/** One RoPE: its base and scaling (src/model/rope.ts turns them into frequencies). */
export interface Rope {
  theta: number;
  scaling: RopeScaling | null;
}

/** One layer: its attention kind and whether it rotates q and k (false on Llama 4's NoPE layers). */
export interface LayerSpec {
  kind: LayerType;
  rope: boolean;
}

export interface ModelConfig {
  /** The model family (src/model/families/). */
  architecture: FamilyName;
  /** Which dimensions of a head RoPE rotates together, as the checkpoint's q and k rows are laid out. */
  ropeStyle: RopeStyle;
  norms: NormPlacement;
  activation: Activation;
  qkNorm: QkNorm;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  vocabSize: number;
  maxPositions: number;
  rmsNormEps: number;
  /** Every layer, in order. */
  layers: LayerSpec[];
  /** The RoPE of each layer kind (one object for both when the family has one RoPE). */
  rope: Record<LayerType, Rope>;
  /** Keys visible to a sliding layer's query: itself and the window-1 previous tokens. */
  slidingWindow: number | null;
  /** The token embedding is multiplied by this (1 for Llama; sqrt(hidden) for Gemma). */
  embedScale: number;
  /** Attention scores are q·k times this (1/sqrt(head_dim), or Gemma's query_pre_attn_scalar^-0.5). */
  queryScale: number;
  /** Llama 4: NoPE layers scale their queries by a temperature growing with the position. */
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

/** The sizes a tensor's shape is computed from. */
export type Shape = Pick<ModelConfig, "hiddenSize" | "intermediateSize" | "numHeads" | "numKvHeads" | "headDim">;

/** The sizes every family's config.json gives, read before the family's own keys. */
export type Sizes = Shape & Pick<ModelConfig, "numLayers" | "vocabSize" | "maxPositions">;

/** Tensors every family's layer stores, by the role the forward pass reads them in. */
export type CoreRole = "attnNorm" | "wq" | "wk" | "wv" | "wo" | "ffnNorm" | "wGate" | "wUp" | "wDown";
/** Tensors only some families' layers store. */
export type ExtraRole = "qNorm" | "kNorm" | "attnPostNorm" | "ffnPostNorm";
export type LayerRole = CoreRole | ExtraRole;

/** One tensor of every layer, as the family lists it. */
export interface LayerTensor {
  role: LayerRole;
  /**
   * Its name in a Hugging Face checkpoint after `model.layers.N.`: the first is the one written, any other
   * an alternative spelling that is accepted.
   */
  hf: readonly string[];
  /** Its name in a GGUF file after `blk.N.` (llama.cpp's). */
  gguf: string;
  /** Its shape: [out, in] for a matrix as PyTorch stores it, [n] for a norm weight. */
  shape: (c: Shape) => number[];
}

/** A layer's tensor names (or weights, ...) by role: the core roles always, the extras where the family has them. */
export type ByRole<T> = Record<CoreRole, T> & Partial<Record<ExtraRole, T>>;

/** What the family reads from config.json beyond the shared sizes (src/model/config.ts reads those). */
export type FamilyConfig = Pick<
  ModelConfig,
  | "rmsNormEps" | "layers" | "rope" | "slidingWindow" | "qkNorm" | "activation" | "embedScale" | "queryScale"
  | "attnTemperatureTuning" | "floorScale" | "attnScale"
>;

export interface Family {
  readonly name: FamilyName;
  /** config.json `model_type` values that select it. */
  readonly modelTypes: readonly string[];
  /** config.json `architectures` class names that select it. */
  readonly classes: readonly string[];
  /** llama.cpp's general.architecture for it, null where llama.cpp has none (MobileLLM-Pro). */
  readonly ggufArchitecture: string | null;
  /** How a Hugging Face checkpoint of it lays out q and k rows for RoPE. */
  readonly ropeStyle: RopeStyle;
  readonly norms: {
    readonly placement: NormPlacement;
    /**
     * What a Hugging Face checkpoint's norm weights miss of the multiplier: Gemma's RMSNorm computes
     * x · (1 + w) and stores w (1), Llama's x · w (0). GGUF files store the multiplier itself (llama.cpp's
     * converter adds the 1), so loaders add this to a folder's norms only.
     */
    readonly hfOffset: number;
  };
  /** Every tensor of one layer. */
  readonly layerTensors: readonly LayerTensor[];
  /** head_dim when config.json does not say (absent: hidden_size / num_attention_heads). */
  readonly headDim?: number;
  /** tie_word_embeddings when config.json does not say (transformers' default for the config class). */
  readonly tiedByDefault: boolean;
  /**
   * Refuses, before any size is read, the config.json keys that ask for what this family's forward pass does
   * not compute (biases, another activation, another family's features), naming the key.
   */
  checkKeys(r: ConfigReader): void;
  /** Reads the family's own keys, with its defaults for absent ones. */
  readConfig(r: ConfigReader, sizes: Sizes): FamilyConfig;
}
