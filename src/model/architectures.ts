// The model families this engine runs, and everything that differs between them, in one place.
//
// Both are decoder-only transformers with RMSNorm, grouped-query attention, RoPE and a SwiGLU MLP, so one
// forward pass serves both; what differs is a handful of facts, each one named here:
//
// - llama4_text (MobileLLM-Pro, "MobileLLMP1ForCausalLM"): RoPE rotates ADJACENT pairs of each head's
//   dimensions (2i, 2i+1), as Meta's original code does and Llama-4 checkpoints are stored for; layers can
//   be sliding-window ("layer_types"), skip RoPE ("no_rope_layers"), normalize q and k ("use_qk_norm") and
//   scale NoPE queries by position ("attn_temperature_tuning").
// - llama (SmolLM2, Llama 3.x, AMD-Llama-135m, "LlamaForCausalLM"): Hugging Face stores the q and k
//   projections for transformers' `rotate_half`, which pairs dimension i with i + headDim/2. Every layer
//   is global, and none of the Llama-4 extras exist.
//
// The defaults are transformers' own for each config class where a key is absent (LlamaConfig:
// rope_theta 10000, rms_norm_eps 1e-6, untied embeddings), except that llama4_text keeps the values of
// the published MobileLLM-Pro config (tied embeddings, rms_norm_eps 1e-5).

/** Which dimensions of a head RoPE rotates together: (2i, 2i+1), or (i, i + headDim/2). */
export type RopeStyle = "interleaved" | "rotate_half";

export type ArchitectureName = "llama4_text" | "llama";

export interface Architecture {
  readonly name: ArchitectureName;
  /** config.json `model_type` values that select it. */
  readonly modelTypes: readonly string[];
  /** config.json `architectures` class names that select it. */
  readonly classes: readonly string[];
  readonly ropeStyle: RopeStyle;
  /** Sliding-window layers, NoPE layers, QK-norm and attention temperature tuning may be configured. */
  readonly llama4Extras: boolean;
  /** Values taken for absent keys. */
  readonly defaults: { readonly rope_theta: number; readonly rms_norm_eps: number; readonly tie_word_embeddings: boolean };
}

export const ARCHITECTURES: readonly Architecture[] = [
  {
    name: "llama4_text",
    modelTypes: ["llama4_text"],
    classes: ["MobileLLMP1ForCausalLM", "Llama4ForCausalLM"],
    ropeStyle: "interleaved",
    llama4Extras: true,
    defaults: { rope_theta: 500000, rms_norm_eps: 1e-5, tie_word_embeddings: true },
  },
  {
    name: "llama",
    modelTypes: ["llama"],
    classes: ["LlamaForCausalLM"],
    ropeStyle: "rotate_half",
    llama4Extras: false,
    defaults: { rope_theta: 10000, rms_norm_eps: 1e-6, tie_word_embeddings: false },
  },
];

const supported = () =>
  ARCHITECTURES.map((a) => `model_type ${a.modelTypes.map((t) => `"${t}"`).join("/")} (${a.classes.join(", ")})`).join(", ");

/**
 * The architecture a config.json names by `model_type`, else by its first `architectures` entry; a config
 * naming neither is taken as llama4_text (`assumed`), the family this engine was built for. Anything else,
 * or the two keys disagreeing, is refused with a message naming what is supported.
 */
export function architectureOf(modelType: unknown, classes: unknown): { arch: Architecture; assumed: boolean } | { error: string } {
  if (modelType !== undefined && modelType !== null && typeof modelType !== "string") {
    return { error: `"model_type" must be a string, got ${JSON.stringify(modelType)}` };
  }
  if (classes !== undefined && classes !== null && (!Array.isArray(classes) || !classes.every((c) => typeof c === "string"))) {
    return { error: `"architectures" must be an array of class names, got ${JSON.stringify(classes)}` };
  }
  const cls = Array.isArray(classes) && classes.length > 0 ? (classes[0] as string) : null;
  const byType = typeof modelType === "string" ? ARCHITECTURES.find((a) => a.modelTypes.includes(modelType)) : undefined;
  const byClass = cls !== null ? ARCHITECTURES.find((a) => a.classes.includes(cls)) : undefined;
  if (typeof modelType === "string" && byType === undefined) {
    return { error: `model_type ${JSON.stringify(modelType)} is not supported; supported: ${supported()}` };
  }
  if (cls !== null && byClass === undefined && byType === undefined) {
    return { error: `architecture ${JSON.stringify(cls)} is not supported; supported: ${supported()}` };
  }
  if (byType !== undefined && byClass !== undefined && byType !== byClass) {
    return { error: `model_type ${JSON.stringify(modelType)} and architectures ${JSON.stringify(cls)} name different model families` };
  }
  const arch = byType ?? byClass;
  return arch === undefined ? { arch: ARCHITECTURES[0], assumed: true } : { arch, assumed: false };
}
