// llama.cpp's GGUF files of Gemma 3 (general.architecture "gemma3"), as its converter writes them
// (convert_hf_to_gguf.py, Gemma3Model) and its loader reads them (llama-model.cpp, LLM_ARCH_GEMMA3): the keys
// that become Gemma 3's config.json. What the files keep of the model, the family says
// (src/model/families/gemma3.ts): the tensors under llama.cpp's names, norms stored as their multipliers 1 + w
// (the converter adds the 1), q and k rows in Hugging Face's rotate_half order (llama.cpp rotates them with
// NEOX RoPE, so the converter leaves them).
//
// What llama.cpp fixes rather than reads, taken as it does:
// - the layer pattern: sliding every layer but i % 6 == 5 when gemma3.attention.sliding_window is present
//   (and > 0), every layer global otherwise;
// - the local layers' RoPE base 10,000 (gemma3.rope.freq_base_swa where a file has it), unscaled;
// - the score scale 1/sqrt(key_length), but 1/sqrt(embedding / heads) for the 62-layer 27B
//   (query_pre_attn_scalar 168);
// - the embedding scale sqrtf(embedding) in float32 (transformers casts it to the weights' dtype; here the
//   config says float32, so the factor is llama.cpp's).
import type { KeyReaders, LlamaCppArchitecture, LlamaCppKeys } from "./llama-cpp-architecture.js";

/** The block count of Gemma 3 27B, whose score scale llama.cpp takes from embedding / heads. */
const GEMMA3_27B_LAYERS = 62;

export const GEMMA3_GGUF: LlamaCppArchitecture = {
  ropeStyle: "rotate_half",
  configJson(r: KeyReaders, K: LlamaCppKeys) {
    const softcap = r.float(K.finalLogitSoftcapping, false);
    if (softcap !== undefined && softcap !== 0) r.fail(`${K.finalLogitSoftcapping} is ${softcap}: logit soft-capping is not implemented`);
    const scaling = r.string(K.ropeScalingType);
    if (scaling !== undefined && scaling !== "none" && scaling !== "linear") r.fail(`${K.ropeScalingType} ${JSON.stringify(scaling)} is not supported (Gemma 3 uses "linear")`);
    const factor = scaling === "linear" ? r.float(K.ropeScalingFactor, true) : undefined;
    const window = r.int(K.slidingWindow, false);
    const layers = r.int(K.blockCount, true) as number;
    const hidden = r.int(K.embeddingLength, true) as number;
    const heads = r.int(K.headCount, true) as number;
    const keyLength = r.int(K.keyLength, false) ?? hidden / heads;
    return {
      model_type: "gemma3_text",
      architectures: ["Gemma3ForCausalLM"],
      head_dim: keyLength,
      sliding_window: window !== undefined && window > 0 ? window : undefined,
      sliding_window_pattern: window !== undefined && window > 0 ? 6 : 1,
      rope_local_base_freq: r.float(K.ropeFreqBaseSwa, false) ?? 10000,
      rope_scaling: factor !== undefined && factor !== 1 ? { rope_type: "linear", factor } : null,
      query_pre_attn_scalar: layers === GEMMA3_27B_LAYERS ? hidden / heads : keyLength,
      torch_dtype: "float32",
    };
  },
  finish: async (parsed) => parsed,
  extraTensors: [],
  defaultedAs: (K) => ({ num_key_value_heads: K.headCountKv, rope_theta: K.ropeFreqBase }),
};
