// Builds a Model from a ModelFolder (files a user picked, a URL base, anything with readText/open): the
// same checks and the same code as Node's loadModel, with the folder's bytes coming through ByteSources.
import { parseConfig } from "../model/config.js";
import { Checkpoint, INDEX_FILE, SINGLE_FILE, parseIndex } from "../model/checkpoint/checkpoint.js";
import { showName } from "../model/checkpoint/safetensors.js";
import { CheckpointError, type ByteSource } from "../model/checkpoint/byte-source.js";
import { NO_GENERATION_CONFIG, parseGenerationConfig } from "../generate/generation-config.js";
import { Model, checkContextLength, createBackend, parseTextFiles, type LoadOptions } from "../model/model.js";
import type { ModelFolder, Platform } from "./platform.js";
import { checkLoadOptions } from "../model/load-options.js";

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
 * Opens the folder's model.safetensors, or else the shards its model.safetensors.index.json names
 * (transformers prefers the single file when both are present; so does this). Every source it opened is
 * closed again when the checkpoint cannot be built.
 */
export async function openFolderCheckpoint(folder: ModelFolder): Promise<Checkpoint> {
  const single = await folder.open(SINGLE_FILE);
  if (single !== null) {
    try {
      return await Checkpoint.fromSources([single]);
    } catch (err) {
      await single.close().catch(() => undefined);
      throw err;
    }
  }
  const indexText = await folder.readText(INDEX_FILE);
  if (indexText === null) throw new CheckpointError(`no ${SINGLE_FILE} or ${INDEX_FILE} in ${folder.name}`);
  const where = `${folder.name}/${INDEX_FILE}`;
  let raw: unknown;
  try {
    raw = JSON.parse(indexText);
  } catch (err) {
    throw new CheckpointError(`${where}: not valid JSON (${(err as Error).message})`);
  }
  const index = parseIndex(raw, where);
  const shards = new Map<string, string>(); // shard -> first tensor naming it, for the message
  for (const [tensor, shard] of index.weightMap) if (!shards.has(shard)) shards.set(shard, tensor);
  const sources: ByteSource[] = [];
  try {
    for (const [shard, tensor] of shards) {
      const source = await folder.open(shard);
      if (source === null) {
        throw new CheckpointError(`${where}: shard ${shard} (holding ${showName(tensor)}) does not exist in ${folder.name}`);
      }
      sources.push(source);
    }
    return await Checkpoint.fromSources(sources, raw as object);
  } catch (err) {
    await Promise.all(sources.map((s) => s.close().catch(() => undefined)));
    throw err;
  }
}

/**
 * Loads a Hugging Face checkpoint folder: config.json, tokenizer.json (+ tokenizer_config.json,
 * chat_template.jinja, generation_config.json when present) and the weights, checked against each other,
 * then read and quantized. `platform` supplies the kernel bytes, worker threads and default thread count.
 */
export async function openModel(folder: ModelFolder, platform: Platform, opts: LoadOptions = {}): Promise<Model> {
  checkLoadOptions(opts, platform.defaultThreads());
  const config = parseConfig(await readJson(folder, "config.json", true), `${folder.name}/config.json`);
  const tokenizerConfig = ((await readJson(folder, "tokenizer_config.json", false)) ?? {}) as Record<string, unknown>;
  const { tokenizer, chatTemplate } = parseTextFiles({
    tokenizer: await readJson(folder, "tokenizer.json", true),
    tokenizerConfig,
    chatTemplateJinja: await folder.readText("chat_template.jinja"),
  });
  tokenizer.checkFitsVocabulary(config.vocabSize);
  const generationConfig = await readJson(folder, "generation_config.json", false);
  const defaults =
    generationConfig === null ? NO_GENERATION_CONFIG : parseGenerationConfig(generationConfig, `${folder.name}/generation_config.json`);
  const contextLength = opts.contextLength ?? Math.min(config.maxPositions, 4096);
  checkContextLength(config, contextLength);
  const ckpt = await openFolderCheckpoint(folder);
  try {
    const backend = await createBackend(
      config,
      ckpt,
      { backend: opts.backend ?? "wasm", simd: opts.simd, contextLength, threads: opts.threads ?? platform.defaultThreads(), onProgress: opts.onProgress },
      platform,
    );
    return new Model(folder.name, config, tokenizer, chatTemplate, backend, defaults);
  } finally {
    await ckpt.close();
  }
}
