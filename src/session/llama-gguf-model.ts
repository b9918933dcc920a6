// llama.cpp's own GGUF files, read into what loading a Hugging Face folder of the same model produces:
// general.architecture "llama" (SmolLM2, Llama 3.x, AMD-Llama-135m) and "gemma3" (Gemma 3), as their
// publishers and llama.cpp's converter write them. docs/gguf.md ("llama.cpp files") is the table of the
// keys and tensors.
//
// The hyperparameters come from llama.cpp's keys (the same names under each architecture's prefix) and are
// turned into the config.json a folder would carry, then parsed by the same parseConfig, so every range and
// consistency check of a folder applies and `info` shows the same numbers. What an architecture's files say
// differently is one object each (src/session/llama-cpp-architecture.ts): LLAMA_GGUF below, GEMMA3_GGUF in
// gemma3-gguf-model.ts. Two facts of the llama files differ from a folder, both set by LLAMA_GGUF:
// - q and k rows: llama.cpp's converter (LlamaModel.permute) reorders each head's rows from Hugging Face's
//   rotate-half layout to adjacent pairs, the order llama.cpp's RoPE and this engine's kernel both rotate.
//   So the file's config says ropeStyle "interleaved": the engine loads those rows as they are (it reorders
//   only rotate_half rows) and the float32 reference rotates adjacent pairs.
// - llama3 RoPE scaling: the converter writes no scaling keys for it but a rope_freqs.weight tensor, one
//   divisor per frequency; the config carries those divisors ("factors") and RoPE applies them as given.
import { CheckpointError } from "../env/byte-source.js";
import { CONFIG_LIMITS, ConfigError, parseConfig, type ModelConfig, type RopeScaling } from "../model/config.js";
import type { GgufFile, GgufValue } from "../model/checkpoint/gguf.js";
import { GgufWeights, isReadableGgmlType, READABLE_GGML_TYPES } from "../model/checkpoint/gguf-weights.js";
import { engineShapeProblem } from "../model/engine.js";
import { expectedShapes, ggufTensorNames, type TensorNames } from "../model/tensor-names.js";
import { NO_GENERATION_CONFIG } from "../generate/generation-config.js";
import { TextTokenizer } from "../text/tokenizer.js";
import { tokenizerFromGgml, type GgmlText } from "../text/ggml-tokenizer.js";
import { ChatTemplate } from "../text/chat-template.js";
import { GGUF_KEYS, parseJson, type GgufModel } from "./gguf-model.js";
import { llamaCppKeys, type KeyReaders, type LlamaCppArchitecture } from "./llama-cpp-architecture.js";
import { GEMMA3_GGUF } from "./gemma3-gguf-model.js";

/** general.architecture of llama.cpp's Llama files. */
export const LLAMA_CPP_ARCHITECTURE = "llama";

/** The keys read, as llama.cpp names them (LLM_KV_* for the "llama" architecture). */
export const LLAMA_CPP_KEYS = {
  ...llamaCppKeys(LLAMA_CPP_ARCHITECTURE),
  tokens: "tokenizer.ggml.tokens",
  bosTokenId: "tokenizer.ggml.bos_token_id",
  eosTokenId: "tokenizer.ggml.eos_token_id",
  eotTokenId: "tokenizer.ggml.eot_token_id",
  padTokenId: "tokenizer.ggml.padding_token_id",
} as const;

/** llama.cpp's tensor of per-frequency RoPE divisors (llama3 scaling), F32 [head_dim / 2]. */
export const ROPE_FREQS_TENSOR = "rope_freqs.weight";

/** llama.cpp's Llama files: q/k rows in adjacent-pair order, llama3 scaling as rope_freqs.weight. */
export const LLAMA_GGUF: LlamaCppArchitecture = {
  ropeStyle: "interleaved",
  configJson(r, K) {
    const expertCount = r.int(K.expertCount, false);
    if (expertCount !== undefined && expertCount > 0) r.fail(`${K.expertCount} is ${expertCount}: mixture-of-experts models are not supported`);
    const scalingType = r.string(K.ropeScalingType);
    if (scalingType !== undefined && scalingType !== "none" && !(scalingType === "linear" && r.float(K.ropeScalingFactor, false) === 1)) {
      r.fail(`${K.ropeScalingType} ${JSON.stringify(scalingType)} is not supported (llama3 scaling comes as ${ROPE_FREQS_TENSOR}, which is)`);
    }
    return { model_type: "llama", architectures: ["LlamaForCausalLM"], head_dim: r.int(K.keyLength, false) };
  },
  async finish(parsed, file, r) {
    const K = llamaCppKeys(LLAMA_CPP_ARCHITECTURE);
    const ropeDims = r.int(K.ropeDimensionCount, false);
    if (ropeDims !== undefined && ropeDims !== parsed.headDim) r.fail(`${K.ropeDimensionCount} ${ropeDims} differs from the head size ${parsed.headDim} (partial RoPE is not supported)`);
    const rope = { ...parsed.rope.full_attention, scaling: await readRopeFactors(file, parsed, r.fail) };
    return { ...parsed, rope: { full_attention: rope, sliding_attention: rope } };
  },
  extraTensors: [ROPE_FREQS_TENSOR],
  defaultedAs: (K) => ({ num_key_value_heads: K.headCountKv, head_dim: K.keyLength, rope_theta: K.ropeFreqBase }),
};

/** The llama.cpp architectures read here, by general.architecture. */
export const LLAMA_CPP_ARCHITECTURES: Readonly<Record<string, LlamaCppArchitecture>> = { llama: LLAMA_GGUF, gemma3: GEMMA3_GGUF };

const INTEGER_TYPES = new Set(["u8", "i8", "u16", "i16", "u32", "i32", "u64", "i64"]);

/** What a llama.cpp file's header says of the model: its config and tensor names, checked. */
export interface LlamaCppHeader {
  config: ModelConfig;
  /** The config.json its keys stand for. */
  configJson: Record<string, unknown>;
  /** Its tensors' names, each present with the shape the config implies. */
  names: TensorNames;
}

/**
 * Reads and checks a llama.cpp GGUF of one of LLAMA_CPP_ARCHITECTURES: the header (readLlamaCppHeader), the
 * ggml types of its tensors, and the tokenizer. A key of the wrong type or out of range, sizes that disagree,
 * a missing, misshapen, unreadable or unexpected tensor is one CheckpointError line.
 */
export async function readLlamaCppGgufModel(file: GgufFile): Promise<GgufModel> {
  const md = file.metadata;
  const fail: (msg: string) => never = (msg) => {
    throw new CheckpointError(`${file.source.name}: ${msg}`);
  };
  // The text side is read where the header has checked the vocabulary's size, before the config is parsed:
  // its end-of-generation ids become the config's end ids.
  let text: GgufText | undefined;
  const { config, configJson: json, names } = await readLlamaCppHeader(file, () => (text = readGgufText(file, fail)).endOfGeneration);
  if (text === undefined) throw new Error("readLlamaCppHeader did not read the text side");
  for (const [name, shape] of expectedShapes(config, names)) {
    const t = file.tensor(name);
    const readable = shape.length === 1 ? ["F32", "F16", "BF16"].includes(t.type) : isReadableGgmlType(t.type);
    if (!readable) fail(`tensor ${name} is ${t.type}; this loader reads ${shape.length === 1 ? "F32, F16 and BF16 vectors" : READABLE_GGML_TYPES}`);
  }

  return {
    config,
    configJson: json,
    tokenizer: text.tokenizer,
    tokenizerJson: text.tokenizerJson,
    tokenizerConfig: text.tokenizerConfig,
    chatTemplate: text.chatTemplate,
    chatTemplateSource: text.chatTemplateSource,
    generation: NO_GENERATION_CONFIG,
    names,
    quantization: "file",
  };
}

/** The text side of a llama.cpp file: its tokenizer, chat template and end-of-generation ids. */
export interface GgufText {
  tokenizer: TextTokenizer | null;
  tokenizerJson: unknown;
  tokenizerConfig: Record<string, unknown>;
  chatTemplate: ChatTemplate | null;
  chatTemplateSource: string | null;
  /** Empty unless the vocabulary comes from tokenizer.ggml.* keys. */
  endOfGeneration: number[];
}

/**
 * The text side of a llama.cpp file of any architecture. The tokenizer: tokenizer.json whole when the file
 * carries one (as this project's own files do), else built from llama.cpp's vocabulary keys
 * (tokenizer.ggml.*, src/text/ggml-tokenizer.ts), else none (the model then serves id-level work only); the
 * chat template, tokenizer.chat_template or the vocabulary's family default; the end-of-generation ids, which
 * the reader makes the config's end ids. A problem with any of them is `fail`'s one line naming the key.
 */
export function readGgufText(file: GgufFile, fail: (msg: string) => never): GgufText {
  const md = file.metadata;
  const none: GgufText = { tokenizer: null, tokenizerJson: null, tokenizerConfig: {}, chatTemplate: null, chatTemplateSource: null, endOfGeneration: [] };
  const tokenizerText = md.string(GGUF_KEYS.tokenizerJson, "optional");
  let parts: GgufText;
  if (tokenizerText !== undefined) {
    const tokenizerJson = parseJson(tokenizerText, `${file.source.name}: ${GGUF_KEYS.tokenizerJson}`);
    let tokenizer: TextTokenizer;
    try {
      tokenizer = new TextTokenizer({ tokenizer: tokenizerJson, tokenizerConfig: {} });
    } catch (err) {
      fail(`${GGUF_KEYS.tokenizerJson}: ${(err as Error).message.split("\n")[0]}`);
    }
    parts = { ...none, tokenizer, tokenizerJson, chatTemplateSource: md.string(GGUF_KEYS.chatTemplate, "optional") ?? null };
  } else if (md.has("tokenizer.ggml.model")) {
    let t: GgmlText;
    try {
      t = tokenizerFromGgml(md);
    } catch (err) {
      fail((err as Error).message.split("\n")[0]);
    }
    parts = { ...none, tokenizer: t.tokenizer, tokenizerConfig: t.tokenizerConfig, chatTemplateSource: t.chatTemplate, endOfGeneration: t.endOfGeneration };
  } else {
    return none;
  }
  if (parts.chatTemplateSource !== null) {
    try {
      parts.chatTemplate = new ChatTemplate(parts.chatTemplateSource, { bos_token: parts.tokenizer!.bosToken, eos_token: parts.tokenizer!.eosToken });
    } catch (err) {
      fail(`${GGUF_KEYS.chatTemplate}: ${(err as Error).message.split("\n")[0]}`);
    }
  }
  return parts;
}

/**
 * A llama.cpp file's header, checked: the config from its keys (the architecture's own through
 * LLAMA_CPP_ARCHITECTURES) and every tensor of the family's list present with its shape, nothing else.
 * `endOfGeneration` is asked once the vocabulary's size is checked: the vocabulary's end-of-generation ids
 * (readGgufText's), which become the config's end ids when there are any.
 */
export async function readLlamaCppHeader(file: GgufFile, endOfGeneration: () => number[] = () => []): Promise<LlamaCppHeader> {
  const md = file.metadata;
  const fail: (msg: string) => never = (msg) => {
    throw new CheckpointError(`${file.source.name}: ${msg}`);
  };
  const arch = md.string(GGUF_KEYS.architecture);
  const a = Object.hasOwn(LLAMA_CPP_ARCHITECTURES, arch) ? LLAMA_CPP_ARCHITECTURES[arch] : undefined;
  if (a === undefined) fail(`general.architecture is ${JSON.stringify(arch).slice(0, 80)}, expected one of ${Object.keys(LLAMA_CPP_ARCHITECTURES).map((n) => JSON.stringify(n)).join(", ")}`);
  const K = { ...LLAMA_CPP_KEYS, ...llamaCppKeys(arch) };

  /** An integer key of any integer type (llama.cpp writes u32), or undefined when absent and optional. */
  const int = (key: string, required: boolean): number | undefined => {
    const v = md.get(key);
    if (v === undefined) {
      if (required) fail(`missing required metadata key ${key}`);
      return undefined;
    }
    if (v.type === "array") fail(`metadata key ${key} is an array (per-layer values are not supported)`);
    if (!INTEGER_TYPES.has(v.type)) fail(`metadata key ${key} is ${v.type}, expected an integer`);
    const n = Number(v.value);
    if (!Number.isSafeInteger(n) || n < 0 || n > 2 ** 31) fail(`metadata key ${key} is ${String(v.value)}, outside 0..2^31`);
    return n;
  };
  const float = (key: string, required: boolean): number | undefined => {
    const v = md.get(key);
    if (v === undefined) {
      if (required) fail(`missing required metadata key ${key}`);
      return undefined;
    }
    if (v.type !== "f32" && v.type !== "f64") fail(`metadata key ${key} is ${describe(v)}, expected f32`);
    // Said here: as config.json, NaN and infinities would reach parseConfig as null.
    if (!Number.isFinite(v.value)) fail(`metadata key ${key} is ${v.value}, expected a finite number`);
    return v.type === "f32" ? shortestDecimal(v.value as number) : (v.value as number);
  };

  const keys: KeyReaders = { int, float, string: (key) => md.string(key, "optional"), fail };
  const own = a.configJson(keys, K);

  const hidden = int(K.embeddingLength, true)!;
  if (!file.has("token_embd.weight")) fail("missing tensor token_embd.weight");
  const embed = file.tensor("token_embd.weight");
  if (embed.shape.length !== 2 || embed.shape[1] !== hidden) {
    fail(`tensor token_embd.weight has shape [${embed.shape.join(", ")}] but ${K.embeddingLength} is ${hidden}`);
  }
  // The embedding's rows are the vocabulary; the token list and <arch>.vocab_size, when present, must agree.
  const vocab = embed.shape[0];
  const declared = int(K.vocabSize, false);
  if (declared !== undefined && declared !== vocab) fail(`${K.vocabSize} is ${declared} but token_embd.weight has ${vocab} rows`);
  const tokens = md.get(K.tokens);
  if (tokens !== undefined) {
    if (tokens.type !== "array" || tokens.itemType !== "string") fail(`metadata key ${K.tokens} is ${describe(tokens)}, expected string[]`);
    if (tokens.value.length !== vocab) fail(`${K.tokens} has ${tokens.value.length} tokens but token_embd.weight has ${vocab} rows`);
  }
  const ends = endOfGeneration();
  const tokenId = (key: string): number | undefined => {
    const id = int(key, false);
    if (id !== undefined && id >= vocab) fail(`${key} ${id} is outside the vocabulary of ${vocab}`);
    return id;
  };
  const bos = tokenId(K.bosTokenId);
  const eos = tokenId(K.eosTokenId);
  const eot = tokenId(K.eotTokenId);
  // A padding id outside the vocabulary (some converters wrote -1 as a u32) is ignored, as llama.cpp does:
  // nothing here reads it.
  const padValue = md.get(K.padTokenId);
  const padId = padValue !== undefined && INTEGER_TYPES.has(padValue.type) ? Number(padValue.value) : -1;
  const pad = padId >= 0 && padId < vocab ? padId : undefined;

  // The config.json a Hugging Face folder of this model would carry; absent optional keys stay absent so
  // parseConfig takes transformers' defaults (which are llama.cpp's: head_count_kv = head_count,
  // key_length = embedding / heads, freq_base 10000) and records them.
  const json: Record<string, unknown> = {
    ...own,
    hidden_size: hidden,
    intermediate_size: int(K.feedForwardLength, true),
    num_hidden_layers: int(K.blockCount, true),
    num_attention_heads: int(K.headCount, true),
    num_key_value_heads: int(K.headCountKv, false),
    vocab_size: vocab,
    max_position_embeddings: int(K.contextLength, true),
    rms_norm_eps: float(K.rmsNormEps, true),
    rope_theta: float(K.ropeFreqBase, false),
    // llama.cpp reads the output head from token_embd when output.weight is absent.
    tie_word_embeddings: !file.has("output.weight"),
    bos_token_id: bos,
    // Generation ends at any of the vocabulary's end-of-generation ids (EOS, end of turn: llama.cpp's set)
    // when the file has llama.cpp's vocabulary keys.
    eos_token_id: ends.length > 0 ? ends : eos === undefined ? undefined : eot !== undefined && eot !== eos ? [eos, eot] : eos,
    pad_token_id: pad,
  };
  for (const k of Object.keys(json)) if (json[k] === undefined) delete json[k];
  let parsed: ModelConfig;
  try {
    parsed = parseConfig(json, `${file.source.name} (its ${arch}.* keys as config.json)`);
  } catch (err) {
    if (err instanceof ConfigError) throw new CheckpointError(err.message);
    throw err;
  }
  // Shapes llama.cpp runs but this engine's kernels do not (head_dim 8, hidden 16), refused naming the key.
  const shape = engineShapeProblem(parsed);
  if (shape !== null) {
    const key = { head_dim: md.has(K.keyLength) ? K.keyLength : `${K.embeddingLength} / ${K.headCount}`, hidden_size: K.embeddingLength, intermediate_size: K.feedForwardLength, num_attention_heads: K.headCount }[shape.key];
    fail(`${key} is ${shape.value}: this engine's kernels need ${shape.need}`);
  }
  const valueLength = int(K.valueLength, false);
  if (valueLength !== undefined && valueLength !== parsed.headDim) fail(`${K.valueLength} ${valueLength} differs from the key length ${parsed.headDim}`);

  const names = ggufTensorNames(parsed);
  const wanted = new Set<string>();
  for (const [name, shape] of expectedShapes(parsed, names)) {
    wanted.add(name);
    if (!file.has(name)) fail(`missing tensor ${name}`);
    const t = file.tensor(name);
    if (t.shape.length !== shape.length || t.shape.some((s, i) => s !== shape[i])) {
      fail(`tensor ${name} has shape [${t.shape.join(", ")}] but the file's keys imply [${shape.join(", ")}]`);
    }
  }
  const finished = await a.finish(parsed, file, keys);
  for (const name of a.extraTensors) wanted.add(name);
  for (const t of file.tensors) if (!wanted.has(t.name)) fail(`unexpected tensor ${JSON.stringify(t.name)} (not in the ${arch} layout this loader reads)`);

  const defaultedAs = a.defaultedAs(K);
  const config: ModelConfig = { ...finished, ropeStyle: a.ropeStyle, defaulted: parsed.defaulted.map((k) => defaultedAs[k] ?? k) };
  return { config, configJson: json, names };

}

/**
 * The shortest decimal that rounds to float32 `x`: the converter wrote config.json's decimal (1e-5) as the
 * nearest f32 (9.99999975e-6), and this gives the folder's number back.
 */
function shortestDecimal(x: number): number {
  if (!Number.isFinite(x)) return x;
  for (let digits = 1; digits < 9; digits++) {
    const d = Number(x.toPrecision(digits));
    if (Math.fround(d) === x) return d;
  }
  return x;
}

function describe(v: GgufValue): string {
  return v.type === "array" ? `${v.itemType}[]` : v.type;
}

/**
 * The file's rope_freqs.weight as the config's RoPE scaling: F32 [head_dim / 2], every divisor finite and at
 * least 1 (a divisor below 1 would raise a frequency above theta's, as a rope_scaling.factor below 1
 * would). Null without the tensor, or when every divisor is 1 (no scaling at all).
 */
async function readRopeFactors(file: GgufFile, c: ModelConfig, fail: (msg: string) => never): Promise<RopeScaling | null> {
  if (!file.has(ROPE_FREQS_TENSOR)) return null;
  const t = file.tensor(ROPE_FREQS_TENSOR);
  if (t.type !== "F32" || t.shape.length !== 1 || t.shape[0] !== c.headDim / 2) {
    fail(`tensor ${ROPE_FREQS_TENSOR} is ${t.type} [${t.shape.join(", ")}], expected F32 [${c.headDim / 2}] (one divisor per RoPE frequency)`);
  }
  const factors = Array.from(await new GgufWeights(file).readF32(ROPE_FREQS_TENSOR));
  const bad = factors.findIndex((f) => !(f >= CONFIG_LIMITS.minRopeFactor));
  if (bad >= 0) fail(`${ROPE_FREQS_TENSOR}[${bad}] is ${factors[bad]}: every RoPE frequency divisor must be at least ${CONFIG_LIMITS.minRopeFactor}`);
  return factors.every((f) => f === 1) ? null : { type: "factors", factors };
}
