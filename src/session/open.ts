// Building a Model: from a ModelFolder (a directory on disk, files a user picked, a URL base) or a GGUF file
// (any ByteSource), and a Platform, with the same checks and the same code on Node (src/api.ts) and in a
// browser (src/browser/). Everything is checked against everything else (config, tokenizer, the tensors'
// names and shapes) before a weight is read, and both kinds of input load through one createBackend: a
// GGUF converted from a folder gives the folder's logits, bit for bit.
import type { ModelFolder } from "../env/folder.js";
import { CheckpointError, type ByteSource } from "../env/byte-source.js";
import type { SimdMode } from "../kernels/wasm.js";
import type { Backend, BackendName } from "../model/backend.js";
import { checkContextLength, parseConfig, type ModelConfig } from "../model/config.js";
import { checkWasmBudget, engineWeightBytes } from "../model/memory.js";
import { openFolderCheckpoint } from "../model/checkpoint/folder.js";
import { GgufFile } from "../model/checkpoint/gguf.js";
import { GgufWeights } from "../model/checkpoint/gguf-weights.js";
import type { WeightSource } from "../model/weights.js";
import { resolveTensorNames, type TensorNames } from "../model/tensor-names.js";
import { WasmEngine } from "../model/engine.js";
import { ReferenceBackend, loadReferenceWeights } from "../reference/backend.js";
import { TextTokenizer } from "../text/tokenizer.js";
import { ChatTemplate, findChatTemplate } from "../text/chat-template.js";
import { NO_GENERATION_CONFIG, parseGenerationConfig } from "../generate/generation-config.js";
import { Model } from "./model.js";
import type { Platform } from "./platform.js";
import { checkLoadOptions, type LoadOptions } from "./load-options.js";
import { GGUF_ARCHITECTURE, GGUF_KEYS, readGgufModel, type GgufModel } from "./gguf-model.js";
import { LLAMA_CPP_ARCHITECTURES, readLlamaCppGgufModel } from "./llama-gguf-model.js";
import { LoadMeter } from "./load-progress.js";

export type { LoadOptions };

/** A JSON file of the folder, parsed; null when it is optional and absent. */
async function readJson(folder: ModelFolder, file: string, required: true): Promise<unknown>;
async function readJson(folder: ModelFolder, file: string, required: false): Promise<unknown | null>;
async function readJson(folder: ModelFolder, file: string, required: boolean): Promise<unknown | null> {
  const text = await folder.readText(file);
  if (text === null) {
    if (required) throw new Error(`${file} is missing from ${folder.name}: is this a Hugging Face checkpoint folder?`);
    return null;
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`${folder.name}/${file} is not valid JSON: ${(err as Error).message}`);
  }
}

/**
 * Loads a Hugging Face checkpoint folder: config.json, tokenizer.json (+ tokenizer_config.json,
 * chat_template.jinja, generation_config.json when present) and the weights, checked against each other,
 * then read and quantized. `platform` supplies the kernel bytes, worker threads and default thread count.
 */
export async function openModel(folder: ModelFolder, platform: Platform, opts: LoadOptions = {}): Promise<Model> {
  const started = performance.now();
  checkLoadOptions(opts, platform.defaultThreads());
  const config = parseConfig(await readJson(folder, "config.json", true), `${folder.name}/config.json`);
  // Without tokenizer.json the model still serves id-level work (logits of given token ids); text in or
  // out then fails with a message saying the tokenizer is missing (Model.encode).
  const tokenizerJson = await readJson(folder, "tokenizer.json", false);
  let tokenizer: TextTokenizer | null = null;
  let chatTemplate: ChatTemplate | null = null;
  if (tokenizerJson !== null) {
    const tokenizerConfig = ((await readJson(folder, "tokenizer_config.json", false)) ?? {}) as Record<string, unknown>;
    ({ tokenizer, chatTemplate } = parseTextFiles({
      tokenizer: tokenizerJson,
      tokenizerConfig,
      chatTemplateJinja: await folder.readText("chat_template.jinja"),
    }));
    tokenizer.checkFitsVocabulary(config.vocabSize);
  }
  const generationConfig = await readJson(folder, "generation_config.json", false);
  const defaults =
    generationConfig === null ? NO_GENERATION_CONFIG : parseGenerationConfig(generationConfig, `${folder.name}/generation_config.json`);
  const meter = new LoadMeter(opts.onProgress);
  const backendOpts = backendOptions(config, opts, platform, meter);
  // The weight files (what the folder's checkpoint opens) are the bytes the progress counts.
  const weights: ModelFolder = {
    name: folder.name,
    readText: (file) => folder.readText(file),
    open: async (file) => {
      const source = await folder.open(file);
      return source === null ? null : meter.watch(source);
    },
  };
  try {
    const ckpt = await openFolderCheckpoint(weights);
    try {
      const backend = await createBackend(config, ckpt, resolveTensorNames(config, ckpt), backendOpts, platform);
      return await ready(new Model(folder.name, config, tokenizer, chatTemplate, backend, defaults, performance.now() - started), meter);
    } finally {
      await ckpt.close();
    }
  } finally {
    meter.stop();
  }
}

/** The reader of each GGUF layout, by general.architecture. */
const GGUF_READERS: Readonly<Record<string, { read: (file: GgufFile) => GgufModel | Promise<GgufModel>; what: string }>> = {
  [GGUF_ARCHITECTURE]: { read: readGgufModel, what: "mobilellm convert" },
  ...Object.fromEntries(Object.keys(LLAMA_CPP_ARCHITECTURES).map((arch) => [arch, { read: readLlamaCppGgufModel, what: `llama.cpp's ${arch} files` }])),
};

/**
 * What a GGUF file holds, by its general.architecture: this project's layout ("mobilellmpro",
 * src/session/gguf-model.ts, written by `mobilellm convert`) or llama.cpp's files of a family it runs
 * ("llama", "gemma3": src/session/llama-gguf-model.ts). Any other architecture is refused with one line
 * naming them.
 */
export async function readAnyGgufModel(file: GgufFile): Promise<GgufModel> {
  const arch = file.metadata.string(GGUF_KEYS.architecture);
  if (Object.hasOwn(GGUF_READERS, arch)) return await GGUF_READERS[arch].read(file);
  throw new CheckpointError(
    `${file.source.name}: general.architecture is ${JSON.stringify(arch).slice(0, 80)}; this loader reads ${Object.entries(GGUF_READERS).map(([a, r]) => `${JSON.stringify(a)} (${r.what})`).join(", ")}`,
  );
}

/**
 * Loads a GGUF file (readAnyGgufModel says which kinds): the config, tokenizer, chat template and generation
 * defaults it carries, checked as a folder's are, and its tensors. `source` is closed when the load ends,
 * whether it succeeded or not.
 */
export async function openGgufModel(source: ByteSource, platform: Platform, opts: LoadOptions = {}): Promise<Model> {
  const started = performance.now();
  let file: GgufFile;
  const meter = new LoadMeter(opts.onProgress);
  try {
    checkLoadOptions(opts, platform.defaultThreads());
    file = await GgufFile.open(meter.watch(source));
  } catch (err) {
    meter.stop();
    await source.close().catch(() => undefined);
    throw err;
  }
  try {
    const m = await readAnyGgufModel(file);
    m.tokenizer?.checkFitsVocabulary(m.config.vocabSize);
    const backend = await createBackend(m.config, new GgufWeights(file, m.quantization), m.names, backendOptions(m.config, opts, platform, meter), platform);
    return await ready(new Model(source.name, m.config, m.tokenizer, m.chatTemplate, backend, m.generation, performance.now() - started), meter);
  } catch (err) {
    // The weight loaders and the quantizer refuse a tensor by its name ("tensor blk.0.attn_q.weight: ..."):
    // the file's name goes in front, as in every other refusal of the file.
    if (err instanceof Error && err.message.startsWith("tensor ")) throw new CheckpointError(`${source.name}: ${err.message}`);
    throw err;
  } finally {
    meter.stop();
    await file.close();
  }
}

/**
 * The load's last progress report ("ready"); a callback that throws there cancels the load as at any
 * earlier report, and the model just built is disposed.
 */
async function ready(model: Model, meter: LoadMeter): Promise<Model> {
  try {
    meter.ready();
  } catch (err) {
    await model.dispose();
    throw err;
  }
  return model;
}

/** The backend options a load's options mean for this config (the context checked against it). */
function backendOptions(config: ModelConfig, opts: LoadOptions, platform: Platform, meter: LoadMeter): BackendOptions {
  const contextLength = opts.contextLength ?? Math.min(config.maxPositions, 4096);
  checkContextLength(config, contextLength);
  return { backend: opts.backend ?? "wasm", simd: opts.simd, contextLength, sequences: opts.sequences, threads: opts.threads ?? platform.defaultThreads(), onProgress: meter.tensors };
}

export interface TextFiles {
  tokenizer: TextTokenizer;
  chatTemplate: ChatTemplate | null;
}

/**
 * The tokenizer and chat template from the folder's parsed tokenizer.json, tokenizer_config.json ({} when
 * absent) and chat_template.jinja (null when absent).
 */
export function parseTextFiles(files: { tokenizer: unknown; tokenizerConfig: Record<string, unknown>; chatTemplateJinja: string | null }): TextFiles {
  const tokenizer = new TextTokenizer({ tokenizer: files.tokenizer, tokenizerConfig: files.tokenizerConfig });
  const source = findChatTemplate(files.tokenizerConfig, files.chatTemplateJinja);
  const chatTemplate =
    source === null ? null : new ChatTemplate(source, { bos_token: tokenizer.bosToken, eos_token: tokenizer.eosToken });
  return { tokenizer, chatTemplate };
}

export interface BackendOptions {
  backend: BackendName;
  contextLength: number;
  /** Sequences with a KV cache of their own (default 1). */
  sequences?: number;
  /** Threads for the wasm engine (ignored by the reference backend). */
  threads?: number;
  simd?: SimdMode;
  /** Told as the engine finishes each weight tensor: `done` of `total`. */
  onProgress?: (done: number, total: number) => void;
}

/**
 * Builds the forward pass over open weights (a folder's checkpoint or a GGUF; the caller closes them) whose
 * `names` were checked against the config: the float32 reference, or the int4 x int8 Wasm engine with the
 * platform's kernel bytes and worker threads.
 */
export async function createBackend(config: ModelConfig, weights: WeightSource, names: TensorNames, opts: BackendOptions, platform: Platform): Promise<Backend> {
  checkContextLength(config, opts.contextLength);
  if (opts.backend !== "reference") checkWasmBudget(config, opts.contextLength, engineWeightBytes(config, weights, names).total, opts.sequences);
  if (opts.backend === "reference") {
    return new ReferenceBackend(config, await loadReferenceWeights(weights, names), opts.contextLength, opts.sequences);
  }
  const threads = opts.threads ?? 1;
  return await WasmEngine.load(config, weights, names, {
    contextLength: opts.contextLength,
    sequences: opts.sequences,
    simd: opts.simd,
    onProgress: opts.onProgress,
    threads,
    wasm: await platform.wasmBytes(threads > 1),
    enableRelaxedSimd: platform.enableRelaxedSimd,
    spawn: platform.spawn,
  });
}
