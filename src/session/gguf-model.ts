// MobileLLM-Pro as one GGUF file: which metadata keys and tensors the file holds (docs/gguf.md is the table
// of them), written from a checkpoint folder and read back into what loading a folder produces.
//
// config.json is carried verbatim and stays the one definition of the model: the reader parses it with the
// same parseConfig as a folder, so `info` and the engine see identical numbers (and the same "defaulted"
// keys). The hyperparameters are also written under GGUF's conventional keys, for tools that read GGUF; the
// reader recomputes every one of them from the carried config.json and refuses a file where a key is
// missing, has another type, or disagrees. The same goes for the tensors: each must be present, with the
// shape the config implies and a type this layout allows (Q4_0 matrices, or F32/F16/BF16 ones quantized at
// load; F32 norms), and nothing else.
import { CheckpointError } from "../env/byte-source.js";
import type { Checkpoint } from "../model/checkpoint/checkpoint.js";
import { Q4_0_BLOCK } from "../model/checkpoint/gguf-format.js";
import type { Quantization } from "../model/weights.js";
import type { GgufFile, GgufValue } from "../model/checkpoint/gguf.js";
import { bool, bools, f32, str, u32, u32s, i32, type GgufMetadataToWrite, type GgufTensorToWrite } from "../model/checkpoint/gguf-writer.js";
import { ConfigError, parseConfig, type ModelConfig } from "../model/config.js";
import { showName } from "../model/checkpoint/safetensors.js";
import { bytesPerElement } from "../kernels/dtype.js";
import { Q4_0_BLOCK_BYTES, quantizeRowsQ4_0 } from "../kernels/quantize.js";
import type { WasmKernels } from "../kernels/wasm.js";
import { expectedShapes, ggufTensorNames, resolveTensorNames, type TensorNames } from "../model/tensor-names.js";

export { ggufTensorNames };
import { NO_GENERATION_CONFIG, parseGenerationConfig, type GenerationDefaults } from "../generate/generation-config.js";
import { TextTokenizer } from "../text/tokenizer.js";
import { ChatTemplate, findChatTemplate } from "../text/chat-template.js";

/**
 * general.architecture of these files. llama.cpp has no architecture for this model (its "llama4" is the
 * MoE Scout/Maverick graph with chunked attention), so a name of its own makes other GGUF readers refuse
 * the file instead of running the wrong graph; the GGUF format asks for [a-z0-9]+ only.
 */
export const GGUF_ARCHITECTURE = "mobilellmpro";
const A = GGUF_ARCHITECTURE;

export const GGUF_KEYS = {
  architecture: "general.architecture",
  name: "general.name",
  alignment: "general.alignment",
  fileType: "general.file_type",
  quantizationVersion: "general.quantization_version",
  tokenizerJson: "tokenizer.huggingface.json",
  chatTemplate: "tokenizer.chat_template",
  configJson: `${A}.source.config_json`,
  tokenizerConfigJson: `${A}.source.tokenizer_config_json`,
  generationConfigJson: `${A}.source.generation_config_json`,
} as const;

/** llama.cpp's LLAMA_FTYPE_MOSTLY_Q4_0: every matrix Q4_0, the 1-D tensors F32. */
const FILE_TYPE_Q4_0 = 2;
/** ggml's quantization format version of Q4_0 blocks as written here. */
const QUANTIZATION_VERSION = 2;

/** The files of a checkpoint folder the GGUF carries, as their text (null when the folder has none). */
export interface ModelSourceFiles {
  configJson: string;
  tokenizerJson: string;
  tokenizerConfigJson: string | null;
  generationConfigJson: string | null;
  /** The chat template as a folder load finds it (chat_template.jinja, else tokenizer_config.json's). */
  chatTemplate: string | null;
}

function integer(key: string, v: number, max = 2 ** 32 - 1): number {
  if (!Number.isInteger(v) || v < 0 || v > max) throw new CheckpointError(`${key}: ${v} cannot be stored as a u32`);
  return v;
}

/**
 * Every hyperparameter key, with its type and value, as the config implies it. The writer writes exactly
 * these; the reader requires exactly these.
 */
export function hyperparameterKeys(c: ModelConfig): Array<[string, GgufValue]> {
  const kv: Array<[string, GgufValue]> = [
    [`${A}.vocab_size`, u32(c.vocabSize)],
    [`${A}.context_length`, u32(c.maxPositions)],
    [`${A}.embedding_length`, u32(c.hiddenSize)],
    [`${A}.block_count`, u32(c.numLayers)],
    [`${A}.feed_forward_length`, u32(c.intermediateSize)],
    [`${A}.attention.head_count`, u32(c.numHeads)],
    [`${A}.attention.head_count_kv`, u32(c.numKvHeads)],
    [`${A}.attention.key_length`, u32(c.headDim)],
    [`${A}.attention.value_length`, u32(c.headDim)],
    [`${A}.attention.layer_norm_rms_epsilon`, f32(c.rmsNormEps)],
    [`${A}.attention.use_qk_norm`, bool(c.qkNorm === "after_rope")],
    [`${A}.attention.temperature_tuning`, bool(c.attnTemperatureTuning)],
    [`${A}.attention.temperature_scale`, f32(c.attnScale)],
    [`${A}.attention.temperature_length`, u32(integer("floor_scale", c.floorScale))],
    [`${A}.attention.sliding_window_pattern`, bools(c.layers.map((l) => l.kind === "sliding_attention"))],
    [`${A}.attention.rope_pattern`, bools(c.layers.map((l) => l.rope))],
    [`${A}.rope.dimension_count`, u32(c.headDim)],
    [`${A}.rope.freq_base`, f32(c.rope.full_attention.theta)],
  ];
  // Gemma's local layers rotate with a RoPE of their own (llama.cpp's key for its base), unscaled.
  const local = c.rope.sliding_attention;
  if (JSON.stringify(local) !== JSON.stringify(c.rope.full_attention)) {
    if (local.scaling !== null) throw new CheckpointError("RoPE scaling on sliding layers has no key in this layout");
    kv.push([`${A}.rope.freq_base_swa`, f32(local.theta)]);
  }
  if (c.slidingWindow !== null) kv.push([`${A}.attention.sliding_window`, u32(c.slidingWindow)]);
  const r = c.rope.full_attention.scaling;
  if (r === null) kv.push([`${A}.rope.scaling.type`, str("none")]);
  else if (r.type === "factors") throw new CheckpointError("per-frequency RoPE factors (a llama.cpp file's rope_freqs) have no key in this layout");
  else if (r.type === "linear") kv.push([`${A}.rope.scaling.type`, str("linear")], [`${A}.rope.scaling.factor`, f32(r.factor)]);
  else {
    kv.push(
      [`${A}.rope.scaling.type`, str("llama3")],
      [`${A}.rope.scaling.factor`, f32(r.factor)],
      [`${A}.rope.scaling.low_freq_factor`, f32(r.lowFreqFactor)],
      [`${A}.rope.scaling.high_freq_factor`, f32(r.highFreqFactor)],
      [`${A}.rope.scaling.original_context_length`, u32(integer("rope_scaling.original_max_position_embeddings", r.originalMaxPositions))],
    );
  }
  if (c.bosTokenId !== null) kv.push(["tokenizer.ggml.bos_token_id", u32(integer("bos_token_id", c.bosTokenId))]);
  if (c.eosTokenIds.length > 0) {
    kv.push(["tokenizer.ggml.eos_token_id", u32(integer("eos_token_id", c.eosTokenIds[0]))]);
    kv.push([`${A}.eos_token_ids`, u32s(c.eosTokenIds.map((id) => integer("eos_token_id", id)))]);
  }
  if (c.padTokenId !== null) kv.push(["tokenizer.ggml.padding_token_id", u32(integer("pad_token_id", c.padTokenId))]);
  return kv;
}

/** general.sampling.* as llama.cpp reads them, from the generation defaults (informative: the reader uses
 * the carried generation_config.json). */
function samplingKeys(g: GenerationDefaults): Array<[string, GgufValue]> {
  const s = g.sampling;
  const kv: Array<[string, GgufValue]> = [["general.sampling.temp", f32(s.temperature ?? 0)]];
  if (s.topK !== undefined) kv.push(["general.sampling.top_k", i32(s.topK)]);
  if (s.topP !== undefined) kv.push(["general.sampling.top_p", f32(s.topP)]);
  if (s.minP !== undefined) kv.push(["general.sampling.min_p", f32(s.minP)]);
  if (s.repetitionPenalty !== undefined) kv.push(["general.sampling.penalty_repeat", f32(s.repetitionPenalty)]);
  return kv;
}

export function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new CheckpointError(`${what} is not valid JSON: ${(err as Error).message.split("\n")[0]}`);
  }
}

function parseConfigText(text: string, what: string): ModelConfig {
  try {
    return parseConfig(parseJson(text, what), what);
  } catch (err) {
    if (err instanceof ConfigError) throw new CheckpointError(err.message);
    throw err;
  }
}

export interface ModelGgufOptions {
  /** general.name */
  name: string;
  /**
   * The kernels that quantize the matrices (any build; the tensors' data stream reserves its buffers in
   * this instance's memory on first use).
   */
  kernels: WasmKernels;
  /** Rows read and quantized per checkpoint read (default: about 4 MiB of stored weights per read). */
  rowsPerRead?: number;
}

/** The metadata and tensors of the GGUF file for a checkpoint folder's files and weights. */
export function modelGguf(files: ModelSourceFiles, ckpt: Checkpoint, opts: ModelGgufOptions): { metadata: GgufMetadataToWrite; tensors: GgufTensorToWrite[]; config: ModelConfig } {
  const config = parseConfigText(files.configJson, "config.json");
  const generation = files.generationConfigJson === null ? NO_GENERATION_CONFIG : parseGenerationConfig(parseJson(files.generationConfigJson, "generation_config.json"));
  const metadata: Array<[string, GgufValue]> = [
    [GGUF_KEYS.architecture, str(A)],
    [GGUF_KEYS.name, str(opts.name)],
    [GGUF_KEYS.alignment, u32(32)],
    [GGUF_KEYS.fileType, u32(FILE_TYPE_Q4_0)],
    [GGUF_KEYS.quantizationVersion, u32(QUANTIZATION_VERSION)],
    ...hyperparameterKeys(config),
    ...samplingKeys(generation),
    [GGUF_KEYS.tokenizerJson, str(files.tokenizerJson)],
  ];
  if (files.chatTemplate !== null) metadata.push([GGUF_KEYS.chatTemplate, str(files.chatTemplate)]);
  metadata.push([GGUF_KEYS.configJson, str(files.configJson)]);
  if (files.tokenizerConfigJson !== null) metadata.push([GGUF_KEYS.tokenizerConfigJson, str(files.tokenizerConfigJson)]);
  if (files.generationConfigJson !== null) metadata.push([GGUF_KEYS.generationConfigJson, str(files.generationConfigJson)]);

  const from = resolveTensorNames(config, ckpt);
  const to = ggufTensorNames(config);
  const hfShapes = expectedShapes(config, from);
  const ggufNames = expectedShapes(config, to).map(([n]) => n);
  const staging = new Q4_0Staging(opts.kernels, ckpt, opts.rowsPerRead);
  const tensors = hfShapes.map(([hf, shape], i): GgufTensorToWrite => {
    const name = ggufNames[i];
    if (shape.length === 1) {
      return {
        name,
        dims: shape,
        type: "F32",
        data: async function* () {
          // The multiplier itself, as llama.cpp's converter writes it (1 + w for a Gemma checkpoint's w).
          const v = await ckpt.readF32(hf);
          if (from.normOffset !== 0) for (let j = 0; j < v.length; j++) v[j] += from.normOffset;
          yield new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
        },
      };
    }
    const [rows, cols] = shape;
    if (cols % Q4_0_BLOCK !== 0) throw new CheckpointError(`tensor ${hf}: ${cols} columns is not a multiple of the Q4_0 block of ${Q4_0_BLOCK}`);
    return { name, dims: [cols, rows], type: "Q4_0", data: () => staging.q4_0Rows(hf, rows, cols) };
  });
  return { metadata, tensors, config };
}

/** Bytes of stored weights per checkpoint read, when the caller does not say how many rows. */
const READ_BYTES = 4 << 20;

/**
 * Matrices of the checkpoint as Q4_0 blocks, read a few MiB at a time: the stored rows (bf16, f16 or f32)
 * go straight into Wasm memory, where the SIMD quantizer (quantizeRowsQ4_0, the recipe with f16 scales)
 * writes their blocks, and each read's blocks are yielded as a fresh array. Two read buffers alternate, so
 * the file read of the next rows runs while the current ones are quantized and written out. The buffers
 * are reserved once, on the first read, and shared: one matrix is streamed at a time (as writeGgufTo reads
 * tensors), and a second stream started meanwhile is refused.
 */
class Q4_0Staging {
  private buffers: { src: [number, number]; srcBytes: number; out: number; outBytes: number } | null = null;
  private busy = false;

  constructor(
    private readonly k: WasmKernels,
    private readonly ckpt: Checkpoint,
    private readonly rowsPerRead: number | undefined,
  ) {}

  private perRead(cols: number, size: number): number {
    return this.rowsPerRead ?? Math.max(1, Math.floor(READ_BYTES / (cols * size)));
  }

  private reserve(srcBytes: number, outBytes: number): NonNullable<Q4_0Staging["buffers"]> {
    const b = this.buffers;
    if (b !== null && b.srcBytes >= srcBytes && b.outBytes >= outBytes) return b;
    // Nothing else allocates in this memory while a conversion runs, so the arena grows at most a few
    // times (rowsPerRead given and a wider matrix later), never per read.
    const src: [number, number] = [this.k.alloc(srcBytes), this.k.alloc(srcBytes)];
    this.buffers = { src, srcBytes, out: this.k.alloc(outBytes), outBytes };
    return this.buffers;
  }

  async *q4_0Rows(hf: string, rows: number, cols: number): AsyncGenerator<Uint8Array, void, undefined> {
    if (this.busy) throw new Error("Q4_0Staging: one matrix at a time");
    this.busy = true;
    let pending: Promise<void> | null = null;
    try {
      const dtype = this.ckpt.info(hf).dtype;
      const size = bytesPerElement(dtype);
      const per = this.perRead(cols, size);
      const outRow = (cols / Q4_0_BLOCK) * Q4_0_BLOCK_BYTES;
      const b = this.reserve(Math.min(per, rows) * cols * size, Math.min(per, rows) * outRow);
      // readRowsInto writes into the memory's current buffer: k.u8 is fetched after every allocation above.
      // A read that fails while its rows wait (the consumer writing the previous ones) is reported when
      // awaited; the empty handler only keeps Node from calling it unhandled meanwhile.
      const read = (row0: number, slot: number) => {
        const p = this.ckpt.readRowsInto(hf, row0, Math.min(per, rows - row0), this.k.u8, b.src[slot]);
        p.catch(() => undefined);
        return p;
      };
      pending = read(0, 0);
      for (let r = 0, slot = 0; r < rows; r += per, slot ^= 1) {
        const n = Math.min(per, rows - r);
        await pending;
        pending = r + n < rows ? read(r + n, slot ^ 1) : null;
        try {
          quantizeRowsQ4_0(this.k, b.src[slot], n, cols, dtype, b.out, { source: { name: `tensor ${showName(hf)}`, row0: r } });
        } catch (err) {
          throw new CheckpointError((err as Error).message);
        }
        yield this.k.u8.slice(b.out, b.out + n * outRow);
      }
    } finally {
      // A stream abandoned early (a refused row, a failed write) still lets its last read land before the
      // buffers are reused or the checkpoint is closed.
      await pending?.catch(() => undefined);
      this.busy = false;
    }
  }
}

/** What a GGUF file of this layout holds besides tensor data: everything a folder load reads from text. */
export interface GgufModel {
  config: ModelConfig;
  /** config.json as carried in the file, parsed. */
  configJson: Record<string, unknown>;
  /** Null when the file carries no tokenizer: the model then serves id-level work only. */
  tokenizer: TextTokenizer | null;
  /** Null with the tokenizer. */
  tokenizerJson: unknown;
  tokenizerConfig: Record<string, unknown>;
  chatTemplate: ChatTemplate | null;
  chatTemplateSource: string | null;
  generation: GenerationDefaults;
  /** The file's tensor names, each checked for presence, shape and type. */
  names: TensorNames;
  /** How the engine computes with the matrices: the int4 recipe (this project's files) or the file's values (llama.cpp's). */
  quantization: Quantization;
}

function sameValue(a: GgufValue, b: GgufValue): boolean {
  if (a.type !== b.type) return false;
  if (a.type === "array" && b.type === "array") {
    if (a.itemType !== b.itemType || a.value.length !== b.value.length) return false;
    for (let i = 0; i < a.value.length; i++) if (a.value[i] !== b.value[i]) return false;
    return true;
  }
  // f32 values are compared as the file stores them.
  if (a.type === "f32") return Math.fround(a.value as number) === Math.fround(b.value as number);
  return a.value === b.value;
}

/** A value for a message: strings cut, arrays by their first 8 items and length (never all of them turned to text). */
function showValue(v: GgufValue): string {
  const one = (x: unknown) => (typeof x !== "string" ? String(x) : x.length > 200 ? `${JSON.stringify(x.slice(0, 200))}... (${x.length} characters)` : JSON.stringify(x));
  if (v.type === "array") {
    const all = v.value as ArrayLike<unknown>;
    const items = Array.from({ length: Math.min(all.length, 8) }, (_, i) => one(all[i]));
    return `[${all.length > 8 ? `${items.join(", ")}, ... (${all.length} items)` : items.join(", ")}]`;
  }
  return one(v.value);
}

/**
 * Reads and checks a GGUF of this layout: the model's config, tokenizer, chat template and generation
 * defaults, and the tensor names a loader reads. Any missing or wrongly typed key, any key disagreeing with
 * the carried config.json, a tokenizer or template that does not parse, and any missing, misshapen,
 * mistyped or unexpected tensor is one CheckpointError line.
 */
export function readGgufModel(file: GgufFile): GgufModel {
  const md = file.metadata;
  const where = file.source.name;
  const fail: (msg: string) => never = (msg) => {
    throw new CheckpointError(`${where}: ${msg}`);
  };
  const arch = md.string(GGUF_KEYS.architecture);
  if (arch !== A) fail(`general.architecture is ${JSON.stringify(arch)}, expected ${JSON.stringify(A)} (a file of another model)`);

  const configText = md.string(GGUF_KEYS.configJson);
  const config = parseConfigText(configText, `${where}: ${GGUF_KEYS.configJson}`);
  const configJson = JSON.parse(configText) as Record<string, unknown>;
  const expected = hyperparameterKeys(config);
  for (const [key, want] of expected) {
    const got = md.get(key);
    if (got === undefined) fail(`missing required metadata key ${key}`);
    if (got.type !== want.type || (got.type === "array" && want.type === "array" && got.itemType !== want.itemType)) {
      fail(`metadata key ${key} is ${got.type === "array" ? `${got.itemType}[]` : got.type}, expected ${want.type === "array" ? `${want.itemType}[]` : want.type}`);
    }
    if (!sameValue(got, want)) fail(`metadata key ${key} is ${showValue(got)} but the carried config.json implies ${showValue(want)}`);
  }
  // Keys that only make sense with some configs must not appear with others.
  const expectedKeys = new Set(expected.map(([k]) => k));
  for (const key of md.keys()) {
    if ((key.startsWith(`${A}.attention.`) || key.startsWith(`${A}.rope.`)) && !expectedKeys.has(key)) {
      fail(`metadata key ${key} does not fit the carried config.json`);
    }
  }

  const tokenizerJson = parseJson(md.string(GGUF_KEYS.tokenizerJson), `${where}: ${GGUF_KEYS.tokenizerJson}`);
  const tcText = md.string(GGUF_KEYS.tokenizerConfigJson, "optional");
  const tokenizerConfig = tcText === undefined ? {} : parseJson(tcText, `${where}: ${GGUF_KEYS.tokenizerConfigJson}`);
  if (typeof tokenizerConfig !== "object" || tokenizerConfig === null || Array.isArray(tokenizerConfig)) {
    fail(`${GGUF_KEYS.tokenizerConfigJson} is not a JSON object`);
  }
  let tokenizer: TextTokenizer;
  try {
    tokenizer = new TextTokenizer({ tokenizer: tokenizerJson, tokenizerConfig: tokenizerConfig as Record<string, unknown> });
  } catch (err) {
    fail(`${GGUF_KEYS.tokenizerJson}: ${(err as Error).message.split("\n")[0]}`);
  }
  const templateInFile = md.string(GGUF_KEYS.chatTemplate, "optional") ?? null;
  const chatTemplateSource = findChatTemplate(tokenizerConfig as Record<string, unknown>, templateInFile);
  let chatTemplate: ChatTemplate | null = null;
  if (chatTemplateSource !== null) {
    try {
      chatTemplate = new ChatTemplate(chatTemplateSource, { bos_token: tokenizer!.bosToken, eos_token: tokenizer!.eosToken });
    } catch (err) {
      fail(`${GGUF_KEYS.chatTemplate}: ${(err as Error).message.split("\n")[0]}`);
    }
  }
  const genText = md.string(GGUF_KEYS.generationConfigJson, "optional");
  let generation = NO_GENERATION_CONFIG;
  if (genText !== undefined) {
    try {
      generation = parseGenerationConfig(parseJson(genText, GGUF_KEYS.generationConfigJson), GGUF_KEYS.generationConfigJson);
    } catch (err) {
      fail((err as Error).message.split("\n")[0]);
    }
  }

  const names = ggufTensorNames(config);
  const wanted = new Set<string>();
  for (const [name, shape] of expectedShapes(config, names)) {
    wanted.add(name);
    if (!file.has(name)) fail(`missing tensor ${name}`);
    const t = file.tensor(name);
    // convert writes Q4_0 matrices; float ones (another writer's) are quantized at load like a folder's.
    const types = shape.length === 1 ? ["F32"] : ["Q4_0", "F32", "F16", "BF16"];
    if (!types.includes(t.type)) fail(`tensor ${name} is ${t.type}, expected ${types.join(" or ")}`);
    if (t.shape.length !== shape.length || t.shape.some((s, i) => s !== shape[i])) {
      fail(`tensor ${name} has shape [${t.shape.join(", ")}] but the config implies [${shape.join(", ")}]`);
    }
  }
  for (const t of file.tensors) if (!wanted.has(t.name)) fail(`unexpected tensor ${JSON.stringify(t.name)} (not in this model's layout)`);

  return {
    config,
    configJson,
    tokenizer: tokenizer!,
    tokenizerJson,
    tokenizerConfig: tokenizerConfig as Record<string, unknown>,
    chatTemplate,
    chatTemplateSource,
    generation,
    names,
    quantization: "recipe",
  };
}
