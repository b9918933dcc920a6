// Opens a Hugging Face checkpoint folder on disk (Node): config.json, tokenizer files, chat template and
// weights, validated against each other before any forward pass runs. The parsing and the engine are the
// environment-neutral code of model.ts, which the browser build (src/browser/, src/env/folder.ts) shares.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { availableParallelism } from "node:os";
import type { Backend } from "./backend.js";
import { parseConfig, type ModelConfig } from "./config.js";
import { Checkpoint } from "./checkpoint/checkpoint.js";
import { checkContextLength, createBackend, parseTextFiles, type BackendOptions, type TextFiles } from "./model.js";
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

export type { BackendOptions, TextFiles };

export function loadText(dir: string): TextFiles {
  const cfgPath = join(dir, "tokenizer_config.json");
  const tokenizerConfig = existsSync(cfgPath) ? (readJsonFile(cfgPath) as Record<string, unknown>) : {};
  const tokenizer = readJsonFile(join(dir, "tokenizer.json"));
  const jinjaPath = join(dir, "chat_template.jinja");
  return parseTextFiles({ tokenizer, tokenizerConfig, chatTemplateJinja: existsSync(jinjaPath) ? readFileSync(jinjaPath, "utf8") : null });
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

export async function loadBackend(dir: string, config: ModelConfig, opts: BackendOptions): Promise<Backend> {
  checkContextLength(config, opts.contextLength);
  const ckpt = await Checkpoint.openFolder(resolve(dir));
  try {
    return await createBackend(config, ckpt, opts);
  } finally {
    await ckpt.close();
  }
}
