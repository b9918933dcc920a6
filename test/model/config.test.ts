import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { ConfigError, layerMap, MOBILELLM_PRO_CONFIG_JSON, mobilellmPro, parameterCount, parseConfig, PRESETS } from "../../src/model/config.js";

const tiny = JSON.parse(readFileSync("models/shakespeare-tiny/config.json", "utf8")) as Record<string, unknown>;
const withKey = (patch: Record<string, unknown>) => ({ ...tiny, ...patch });
const without = (key: string) => Object.fromEntries(Object.entries(tiny).filter(([k]) => k !== key));

describe("config.json parsing", () => {
  it("reads the bundled model's config with no defaults needed", () => {
    const c = parseConfig(tiny);
    expect(c).toMatchObject({ hiddenSize: 320, numLayers: 6, numHeads: 5, numKvHeads: 1, headDim: 64, intermediateSize: 768, vocabSize: 1024, slidingWindow: 64, rmsNormEps: 1e-5, qkNorm: "none", tieWordEmbeddings: true });
    expect(c.rope.full_attention).toEqual({ theta: 10000, scaling: null });
    expect(layerMap(c)).toBe("GSSSGG");
    expect(c.eosTokenIds).toEqual([1001, 1007, 1008]);
    expect(c.defaulted).toEqual(["attn_temperature_tuning", "floor_scale"]);
  });

  it("takes the documented defaults for absent keys and records them", () => {
    const c = parseConfig(Object.fromEntries(Object.entries(tiny).filter(([k]) => !["rope_theta", "rms_norm_eps", "use_qk_norm", "no_rope_layers", "tie_word_embeddings"].includes(k))));
    expect(c.rope.full_attention.theta).toBe(500000);
    expect(c.rmsNormEps).toBe(1e-5);
    expect(c.qkNorm).toBe("none");
    expect(c.layers.every((l) => l.rope)).toBe(true);
    expect(c.tieWordEmbeddings).toBe(true);
    expect(c.defaulted).toEqual(expect.arrayContaining(["rope_theta", "rms_norm_eps", "use_qk_norm", "no_rope_layers", "tie_word_embeddings"]));
  });

  it("reads NoPE layers, temperature tuning and llama3 rope scaling", () => {
    const c = parseConfig(
      withKey({
        no_rope_layers: [1, 1, 1, 0, 1, 1],
        attn_temperature_tuning: true,
        floor_scale: 16,
        rope_scaling: { rope_type: "llama3", factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
      }),
    );
    expect(c.layers.map((l) => l.rope)).toEqual([true, true, true, false, true, true]);
    expect(c.attnTemperatureTuning).toBe(true);
    expect(c.floorScale).toBe(16);
    expect(c.rope.full_attention.scaling).toEqual({ type: "llama3", factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 });
    expect(c.rope.sliding_attention).toBe(c.rope.full_attention);
  });

  it.each([
    [{ num_key_value_heads: 2 }, /not divisible by num_key_value_heads/],
    [{ layer_types: ["full_attention"] }, /"layer_types" has 1 entries but num_hidden_layers is 6/],
    [{ layer_types: ["full_attention", "chunked_attention", "full_attention", "full_attention", "full_attention", "full_attention"] }, /layer_types\[1\] is "chunked_attention"/],
    [{ hidden_size: 0 }, /"hidden_size" must be a positive integer/],
    [{ intermediate_size_mlp: -5 }, /"intermediate_size_mlp" must be a positive integer/],
    [{ vocab_size: 10.5 }, /"vocab_size" must be a positive integer/],
    [{ rope_scaling: { rope_type: "yarn", factor: 4 } }, /rope_scaling type "yarn" is not supported/],
    [{ sliding_window: null }, /"sliding_window" is missing/],
    [{ no_rope_layers: [1, 1] }, /"no_rope_layers" must be an array of 6 entries/],
    [{ use_qk_norm: "yes" }, /"use_qk_norm" must be true or false/],
  ])("rejects an inconsistent config %j", (patch, message) => {
    expect(() => parseConfig(withKey(patch))).toThrow(ConfigError);
    expect(() => parseConfig(withKey(patch))).toThrow(message);
  });

  it("names a missing required key", () => {
    expect(() => parseConfig(without("num_hidden_layers"))).toThrow(/missing required key "num_hidden_layers"/);
    expect(() => parseConfig([1, 2])).toThrow(/expected a JSON object/);
  });
});

describe("config values the engine cannot compute with", () => {
  const llama3 = { rope_type: "llama3", factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 };

  it("refuses a layer count past the cap before allocating per-layer tables", () => {
    const t0 = performance.now();
    expect(() => parseConfig(withKey({ num_hidden_layers: 1e8, layer_types: undefined, no_rope_layers: undefined }))).toThrow(/"num_hidden_layers" is 100000000, more than the 1024/);
    expect(performance.now() - t0).toBeLessThan(100);
  });

  it("refuses rope_theta, rms_norm_eps, attn_scale and floor_scale that overflow float32", () => {
    expect(() => parseConfig(withKey({ rope_theta: 1e-300 }))).toThrow(/"rope_theta" is 1e-300, outside the range .*\[1, Infinity\]/);
    expect(() => parseConfig(withKey({ rope_theta: 0.5 }))).toThrow(/rope_theta/);
    expect(() => parseConfig(withKey({ rms_norm_eps: 1e-300 }))).toThrow(/"rms_norm_eps" is 1e-300/);
    expect(() => parseConfig(withKey({ rms_norm_eps: 5 }))).toThrow(/"rms_norm_eps" is 5/);
    expect(() => parseConfig(withKey({ attn_scale: 1e300 }))).toThrow(/"attn_scale" is 1e\+300/);
    expect(() => parseConfig(withKey({ floor_scale: 1e-300 }))).toThrow(/"floor_scale" is 1e-300/);
  });

  it("refuses a llama3 rope factor below 1", () => {
    expect(() => parseConfig(withKey({ rope_scaling: { ...llama3, factor: 1e-308 } }))).toThrow(/rope_scaling.factor is 1e-308: it must be at least 1/);
    expect(parseConfig(withKey({ rope_scaling: { ...llama3, factor: 1 } })).rope.full_attention.scaling).toMatchObject({ type: "llama3", factor: 1 });
  });

  it("accepts the limits themselves", () => {
    const c = parseConfig(withKey({ rope_theta: 1, rms_norm_eps: 1e-30, attn_scale: 10, floor_scale: 1 }));
    expect([c.rope.full_attention.theta, c.rmsNormEps, c.attnScale, c.floorScale]).toEqual([1, 1e-30, 10, 1]);
  });
});

describe("the mobilellm-pro preset", () => {
  it("is the published architecture", () => {
    const c = mobilellmPro;
    expect(c).toMatchObject({ numLayers: 30, hiddenSize: 1280, intermediateSize: 6144, numHeads: 20, numKvHeads: 4, headDim: 64, vocabSize: 202048, slidingWindow: 512, maxPositions: 131072, bosTokenId: 200000, padTokenId: 200018 });
    const global = c.layers.flatMap((l, i) => (l.kind === "full_attention" ? [i] : []));
    expect(global).toEqual([0, 4, 8, 12, 16, 20, 24, 28, 29]);
    expect(MOBILELLM_PRO_CONFIG_JSON.layer_types).toHaveLength(30);
  });

  it("has 1,084,453,120 parameters, the published count", () => {
    // 202048*1280 + 30*(2*1280*1280 + 2*1280*256 + 3*1280*6144 + 2*1280) + 1280, worked out independently:
    const expected = 202048 * 1280 + 30 * (2 * 1280 * 1280 + 2 * 1280 * 256 + 3 * 1280 * 6144 + 2 * 1280) + 1280;
    expect(expected).toBe(1_084_453_120);
    expect(parameterCount(mobilellmPro).total).toBe(1_084_453_120);
  });

  it("reports as defaults the values the published config does not show", () => {
    expect(mobilellmPro.defaulted).toEqual(expect.arrayContaining(["rope_theta", "rms_norm_eps", "use_qk_norm", "no_rope_layers"]));
  });
});

describe("architecture dispatch", () => {
  const llama = {
    model_type: "llama", architectures: ["LlamaForCausalLM"], hidden_size: 576, intermediate_size: 1536, num_attention_heads: 9,
    num_key_value_heads: 3, num_hidden_layers: 2, vocab_size: 2048, max_position_embeddings: 8192,
  };

  it("reads a plain Llama config with transformers' LlamaConfig defaults and rotate_half RoPE", () => {
    const c = parseConfig(llama);
    expect(c).toMatchObject({ architecture: "llama", ropeStyle: "rotate_half", headDim: 64, rmsNormEps: 1e-6, tieWordEmbeddings: false, slidingWindow: null, qkNorm: "none", attnTemperatureTuning: false });
    expect(c.rope.full_attention.theta).toBe(10000);
    expect(c.layers.every((l) => l.kind === "full_attention")).toBe(true);
    expect(c.defaulted.sort()).toEqual(["head_dim", "rms_norm_eps", "rope_theta", "tie_word_embeddings"]);
  });

  it("takes MobileLLM-Pro's family from model_type or from the class name, and says when it assumed it", () => {
    expect(parseConfig(tiny)).toMatchObject({ architecture: "llama4_text", ropeStyle: "interleaved" });
    expect(parseConfig(without("model_type")).architecture).toBe("llama4_text");
    expect(parseConfig(without("model_type")).defaulted).not.toContain("model_type");
    const neither = Object.fromEntries(Object.entries(tiny).filter(([k]) => k !== "model_type" && k !== "architectures"));
    expect(parseConfig(neither).defaulted).toContain("model_type");
    expect(parseConfig({ ...llama, model_type: undefined }).architecture).toBe("llama");
  });

  it.each([
    [{ model_type: "mistral" }, /model_type "mistral" is not supported; supported: model_type "llama4_text" \(MobileLLMP1ForCausalLM, Llama4ForCausalLM\), model_type "llama" \(LlamaForCausalLM\), model_type "gemma3_text" \(Gemma3ForCausalLM\)/],
    [{ model_type: undefined, architectures: ["GPT2LMHeadModel"] }, /architecture "GPT2LMHeadModel" is not supported/],
    [{ architectures: ["MobileLLMP1ForCausalLM"] }, /name different model families/],
    [{ model_type: 7 }, /"model_type" must be a string/],
    [{ layer_types: ["full_attention", "sliding_attention"], sliding_window: 4 }, /"layer_types" is a Llama-4 feature; a llama checkpoint cannot use it/],
    [{ no_rope_layers: [1, 0] }, /"no_rope_layers" is a Llama-4 feature/],
    [{ use_qk_norm: true }, /"use_qk_norm" is a Llama-4 feature/],
    [{ attention_bias: true }, /"attention_bias": true: bias terms .* are not implemented/],
    [{ mlp_bias: true }, /"mlp_bias": true: bias terms/],
    [{ hidden_act: "gelu" }, /"hidden_act" "gelu" is not supported/],
  ])("refuses %j with a message naming it", (patch, message) => {
    expect(() => parseConfig({ ...llama, ...patch })).toThrow(message);
  });

  it("accepts the Llama-4 keys in a plain Llama config at their neutral values", () => {
    const c = parseConfig({ ...llama, layer_types: ["full_attention", "full_attention"], no_rope_layers: [1, 1], use_qk_norm: false, attention_bias: false, mlp_bias: false });
    expect(c.architecture).toBe("llama");
  });
});

describe("Gemma 3 config.json", () => {
  const gemma = PRESETS["gemma-3-270m"].json;
  const with_ = (patch: Record<string, unknown>) => ({ ...gemma, ...patch });

  it("reads the published gemma-3-270m config: its shape, layer kinds, RoPE per kind and scales", () => {
    const c = parseConfig(gemma);
    expect(c).toMatchObject({
      architecture: "gemma3", ropeStyle: "rotate_half", norms: "sandwich", activation: "gelu_tanh", qkNorm: "before_rope",
      hiddenSize: 640, intermediateSize: 2048, numLayers: 18, numHeads: 4, numKvHeads: 1, headDim: 256, vocabSize: 262144,
      slidingWindow: 512, rmsNormEps: 1e-6, tieWordEmbeddings: true, queryScale: 1 / 16,
    });
    expect(layerMap(c)).toBe("SSSSSGSSSSSGSSSSSG");
    expect(c.rope).toEqual({ full_attention: { theta: 1e6, scaling: null }, sliding_attention: { theta: 10000, scaling: null } });
    // sqrt(640) = 25.298..., cast to bfloat16 as transformers does: 25.25
    expect(c.embedScale).toBe(25.25);
    // The published file leaves tie_word_embeddings to Gemma3TextConfig's default (true).
    expect(c.defaulted).toEqual(["tie_word_embeddings"]);
  });

  it("derives the layer kinds from sliding_window_pattern (layer i global when (i + 1) % pattern == 0), 6 by default", () => {
    expect(layerMap(parseConfig(PRESETS["gemma-3-1b"].json))).toBe("SSSSSGSSSSSGSSSSSGSSSSSGSS");
    const noPattern = Object.fromEntries(Object.entries(PRESETS["gemma-3-1b"].json).filter(([k]) => k !== "sliding_window_pattern"));
    const c = parseConfig(noPattern);
    expect(layerMap(c)).toBe("SSSSSGSSSSSGSSSSSGSSSSSGSS");
    expect(c.defaulted).toContain("sliding_window_pattern");
    expect(layerMap(parseConfig({ ...noPattern, sliding_window_pattern: 3, num_hidden_layers: 7 }))).toBe("SSGSSGS");
  });

  it("rounds the embedding scale to the checkpoint's dtype, and takes float32 when none is given", () => {
    expect(parseConfig(with_({ torch_dtype: "float32" })).embedScale).toBe(Math.fround(Math.sqrt(640)));
    expect(parseConfig(with_({ torch_dtype: undefined, dtype: "float16" })).embedScale).toBe(25.296875);
    const none = parseConfig(with_({ torch_dtype: undefined }));
    expect(none.embedScale).toBe(Math.fround(Math.sqrt(640)));
    expect(none.defaulted).toContain("torch_dtype");
  });

  it("puts a linear rope_scaling on the global layers only, and reads transformers 5's rope_parameters", () => {
    const scaled = parseConfig(with_({ rope_scaling: { rope_type: "linear", factor: 8 } }));
    expect(scaled.rope.full_attention).toEqual({ theta: 1e6, scaling: { type: "linear", factor: 8 } });
    expect(scaled.rope.sliding_attention).toEqual({ theta: 10000, scaling: null });
    const params = parseConfig(with_({
      rope_theta: undefined, rope_local_base_freq: undefined, rope_scaling: undefined,
      rope_parameters: { full_attention: { rope_type: "linear", factor: 8, rope_theta: 1e6 }, sliding_attention: { rope_type: "default", rope_theta: 10000 } },
    }));
    expect(params.rope).toEqual(scaled.rope);
  });

  it.each([
    [{ final_logit_softcapping: 30 }, /"final_logit_softcapping" 30: logit soft-capping \(Gemma 2\) is not implemented/],
    [{ attn_logit_softcapping: 50 }, /"attn_logit_softcapping" 50: attention soft-capping/],
    [{ hidden_activation: "gelu" }, /"hidden_activation" "gelu": the MLP is GeGLU with tanh-approximated GELU/],
    [{ attention_bias: true }, /"attention_bias" true: bias terms/],
    [{ use_bidirectional_attention: true }, /bidirectional attention \(EmbeddingGemma\)/],
    [{ rope_scaling: { rope_type: "llama3", factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 } }, /rope_scaling type "llama3" is not supported \(supported: "linear", "default"\)/],
    [{ rope_local_base_freq: 0.5 }, /"rope_local_base_freq" is 0.5, outside the range/],
    [{ query_pre_attn_scalar: -1 }, /"query_pre_attn_scalar" must be a positive number/],
    [{ torch_dtype: "int8" }, /"torch_dtype" "int8" is not one of/],
    [{ rope_parameters: { full_attention: { rope_type: "default", rope_theta: 1e6 } } }, /"rope_parameters.sliding_attention" must be an object/],
  ])("refuses %j with a message naming the key", (patch, message) => {
    expect(() => parseConfig(with_(patch))).toThrow(message);
  });

  it("counts the parameters of the family's thirteen tensors a layer: 268,098,176 for gemma-3-270m", () => {
    // Independently: the embedding, and per layer q, k, v, o, gate, up, down and the six norms (four of
    // hidden size, q_norm and k_norm of head_dim); the final norm.
    const d = 640, q = 4 * 256, kv = 256, f = 2048;
    const perLayer = d * q + 2 * d * kv + q * d + 3 * d * f + 4 * d + 2 * 256;
    expect(262144 * d + 18 * perLayer + d).toBe(268_098_176);
    expect(parameterCount(parseConfig(gemma)).total).toBe(268_098_176);
  });
});
