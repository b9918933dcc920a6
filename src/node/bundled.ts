// The bundled model's folder, and single files of a checkpoint folder on disk (config.json, the tokenizer)
// for the commands and tests that need one of them rather than a whole model; loadModel itself goes through
// the shared openModel (src/session/open.ts) over nodeFolder.
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseConfig, type ModelConfig } from "../model/config.js";
import { parseTextFiles, type TextFiles } from "../session/open.js";

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

/**
 * The bundled model as one GGUF file (models/shakespeare-tiny.gguf beside its folder), or null where it
 * was not built: `npm run build` writes it from the folder with `mobilellm convert` (build:model), and the
 * package ships it. It loads to the folder's logits, bit for bit, and starts faster (no bf16 to quantize).
 */
export function bundledGgufPath(): string | null {
  const path = `${bundledModelDir()}.gguf`;
  return existsSync(path) ? path : null;
}

/** The bundled model as it loads by default: its GGUF where built, else its folder. */
export function bundledModelPath(): string {
  return bundledGgufPath() ?? bundledModelDir();
}

/** The model that ships in the package, usable by name. */
export const BUNDLED_MODEL = "shakespeare-tiny";

/**
 * What `dirOrName` names: the bundled model for its name (unless a path of that name exists), as its GGUF
 * when built, else its folder; otherwise the path itself, which must exist: a checkpoint folder, or a file
 * (a GGUF).
 */
export function resolveModelPath(dirOrName: string, presets: readonly string[]): { path: string; kind: "folder" | "file" } {
  const path = resolveModelDir(dirOrName, presets);
  return { path, kind: statSync(path).isFile() ? "file" : "folder" };
}

/**
 * The path `dirOrName` names: the bundled model for its name (unless a path of that name exists), else
 * the path itself, which must exist. A preset's name is refused with how to get its weights.
 */
function resolveModelDir(dirOrName: string, presets: readonly string[]): string {
  if (dirOrName === BUNDLED_MODEL && !existsSync(dirOrName)) return bundledModelPath();
  if (!existsSync(dirOrName) && presets.includes(dirOrName)) {
    throw new Error(
      `"${dirOrName}" is a configuration preset without weights: download the checkpoint (e.g. huggingface-cli download facebook/MobileLLM-Pro --local-dir DIR) and pass its folder, or write random weights with "mobilellm synth --preset ${dirOrName} --out DIR"`,
    );
  }
  if (!existsSync(dirOrName)) throw new Error(`${/\.gguf$/i.test(dirOrName) ? "GGUF file" : "model folder"} ${dirOrName} does not exist`);
  return dirOrName;
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

export function loadText(dir: string): TextFiles {
  const cfgPath = join(dir, "tokenizer_config.json");
  const tokenizerConfig = existsSync(cfgPath) ? (readJsonFile(cfgPath) as Record<string, unknown>) : {};
  const tokenizer = readJsonFile(join(dir, "tokenizer.json"));
  const jinjaPath = join(dir, "chat_template.jinja");
  return parseTextFiles({ tokenizer, tokenizerConfig, chatTemplateJinja: existsSync(jinjaPath) ? readFileSync(jinjaPath, "utf8") : null });
}
