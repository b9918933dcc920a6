// Small llama.cpp "llama" GGUF files (one layer, hidden 64, F32 matrices) with their metadata edited, for
// tests of what a file's tokenizer and template keys can do: the weights are real enough to load and
// generate, the vocabulary is the test's.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { i32s, str, strings, u32, type GgufValue } from "../../src/model/checkpoint/gguf-writer.js";
import { resolveTensorNames } from "../../src/model/tensor-names.js";
import { loadConfig } from "../../src/node/bundled.js";
import { openCheckpoint } from "../../src/node/folder.js";
import { writeGgufFile } from "../../src/node/gguf-files.js";
import { llamaGguf } from "../../bench/llama-gguf.js";
import { writeLlamaFolder } from "./llama-folder.js";

/**
 * GPT-2's byte -> character table: printable Latin-1 bytes stand for themselves, the rest for U+0100.. in
 * order. Restated here rather than taken from src/text/ggml-tokenizer.ts, so the tests' vocabularies do not
 * come from the code they test.
 */
export const BYTE_CHARS: readonly string[] = (() => {
  const out: string[] = [];
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
    out.push(String.fromCharCode(printable ? b : next++));
  }
  return out;
})();

export type Metadata = Map<string, GgufValue>;

/**
 * Writes a one-layer llama.cpp file (hidden 64, 2 heads, `vocab` rows, the benchmarks' synthetic
 * SentencePiece vocabulary; `shape` overrides config.json keys) with its metadata edited by `edit`, into a
 * new folder under the system's temporary one; its path. `cleanup` collects the folders to remove.
 */
export async function tinyLlamaGguf(edit: (md: Metadata) => void, cleanup: string[], opts: { vocab?: number; shape?: Record<string, unknown> } = {}): Promise<string> {
  const folder = await writeLlamaFolder("SmolLM2-135M", 1, opts.vocab ?? 512, 11, { hidden_size: 64, num_attention_heads: 2, num_key_value_heads: 1, intermediate_size: 64, ...opts.shape });
  cleanup.push(folder.dir);
  const config = loadConfig(folder.dir);
  const ckpt = await openCheckpoint(folder.dir);
  try {
    const { metadata, tensors } = llamaGguf({ ckpt, config, names: resolveTensorNames(config, ckpt), name: "tiny", matrices: "F32" });
    const md = new Map(metadata);
    edit(md);
    const dir = mkdtempSync(join(tmpdir(), "mobilellm-tiny-gguf-"));
    cleanup.push(dir);
    const path = join(dir, "model.gguf");
    await writeGgufFile(path, [...md], tensors);
    return path;
  } finally {
    await ckpt.close();
  }
}

/** Removes the folders `tinyLlamaGguf` made. */
export function removeAll(cleanup: string[]): void {
  for (const d of cleanup.splice(0)) rmSync(d, { recursive: true, force: true });
}

/**
 * Replaces the file's vocabulary with a byte-level (gpt2, pre-tokenizer "smollm") one of `n` tokens: the
 * 256 byte characters, "he", "ll", "llo", "<|im_end|>" (control, EOS, id 259), then fillers.
 */
export function gpt2Vocab(md: Metadata, n: number, extra: { tokens?: (t: string[]) => void; types?: (t: number[]) => void; merges?: string[] } = {}): void {
  const tokens = [...BYTE_CHARS, "he", "ll", "llo", "<|im_end|>"];
  while (tokens.length < n) tokens.push(`x${tokens.length}`);
  const types = tokens.map((t) => (t === "<|im_end|>" ? 3 : 1));
  extra.tokens?.(tokens);
  extra.types?.(types);
  for (const k of ["tokenizer.ggml.scores", "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.bos_token_id"]) md.delete(k);
  md.set("tokenizer.ggml.model", str("gpt2"));
  md.set("tokenizer.ggml.pre", str("smollm"));
  md.set("tokenizer.ggml.tokens", strings(tokens));
  md.set("tokenizer.ggml.token_type", i32s(types));
  md.set("tokenizer.ggml.merges", strings(extra.merges ?? ["h e", "l l", "ll o"]));
  md.set("tokenizer.ggml.eos_token_id", u32(259));
}
