// Opens a Hugging Face checkpoint folder: config.json, tokenizer files, chat template and weights,
// validated against each other before any forward pass runs.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { availableParallelism } from "node:os";
import type { Backend, BackendName } from "./backend.js";
import { parseConfig, type ModelConfig } from "./config.js";
import { Checkpoint } from "./checkpoint/checkpoint.js";
import { resolveTensorNames } from "./tensor-names.js";
import { ReferenceBackend, loadReferenceWeights } from "./reference-backend.js";
import { WasmEngine } from "./engine.js";
import type { SimdMode } from "../kernels/wasm.js";
import { TextTokenizer } from "../text/tokenizer.js";
import { ChatTemplate, findChatTemplate } from "../text/chat-template.js";
import { NO_GENERATION_CONFIG, parseGenerationConfig, type GenerationDefaults } from "../generate/generation-config.js";

/** The model shipped in the package (models/shakespeare-tiny), found from src/ or dist/src/. */
export function bundledModelDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, "models", "shakespeare-tiny");
    if (existsSync(join(candidate, "config.json"))) return candidate;
    dir = dirname(dir);
  }
  throw new Error("the bundled model models/shakespeare-tiny is missing from the package");
}

export function readJsonFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new Error(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`${path} is not valid JSON: ${(err as Error).message}`);
  }
}

export function loadConfig(dir: string): ModelConfig {
  if (!existsSync(dir)) throw new Error(`model folder ${dir} does not exist`);
  return parseConfig(readJsonFile(join(dir, "config.json")), join(dir, "config.json"));
}

export interface TextFiles {
  tokenizer: TextTokenizer;
  chatTemplate: ChatTemplate | null;
}

export function loadText(dir: string): TextFiles {
  const cfgPath = join(dir, "tokenizer_config.json");
  const tokenizerConfig = existsSync(cfgPath) ? (readJsonFile(cfgPath) as Record<string, unknown>) : {};
  const tokenizer = new TextTokenizer({ tokenizer: readJsonFile(join(dir, "tokenizer.json")), tokenizerConfig });
  const jinjaPath = join(dir, "chat_template.jinja");
  const source = findChatTemplate(tokenizerConfig, existsSync(jinjaPath) ? readFileSync(jinjaPath, "utf8") : null);
  const chatTemplate =
    source === null ? null : new ChatTemplate(source, { bos_token: tokenizer.bosToken, eos_token: tokenizer.eosToken });
  return { tokenizer, chatTemplate };
}

/** Sampling defaults from generation_config.json; greedy when the folder has none. */
export function loadGenerationDefaults(dir: string): GenerationDefaults {
  const path = join(dir, "generation_config.json");
  return existsSync(path) ? parseGenerationConfig(readJsonFile(path), path) : NO_GENERATION_CONFIG;
}

/** The engine's default thread count: the cores this process may use. */
export function defaultThreads(): number {
  return availableParallelism();
}

export interface BackendOptions {
  backend: BackendName;
  contextLength: number;
  /** Threads for the wasm engine (ignored by the reference backend). */
  threads?: number;
  simd?: SimdMode;
  onProgress?: (done: number, total: number) => void;
}

export async function loadBackend(dir: string, config: ModelConfig, opts: BackendOptions): Promise<Backend> {
  if (opts.contextLength > config.maxPositions) {
    throw new RangeError(`context ${opts.contextLength} exceeds max_position_embeddings ${config.maxPositions}`);
  }
  const ckpt = await Checkpoint.openFolder(resolve(dir));
  try {
    const names = resolveTensorNames(config, ckpt);
    if (opts.backend === "reference") {
      return new ReferenceBackend(config, await loadReferenceWeights(ckpt, names), opts.contextLength);
    }
    const threads = opts.threads ?? 1;
    if (!Number.isInteger(threads) || threads < 1) throw new RangeError(`threads must be an integer >= 1, got ${threads}`);
    // EngineOptions gains `threads` with the worker pool; until then the engine runs on one thread.
    const engineOpts = { contextLength: opts.contextLength, simd: opts.simd, onProgress: opts.onProgress, ...{ threads } };
    return await WasmEngine.load(config, ckpt, names, engineOpts);
  } finally {
    await ckpt.close();
  }
}
