// The tests' model of llama.cpp's converter (convert_hf_to_gguf.py) for the tokenizer: a Hugging Face
// tokenizer.json + tokenizer_config.json written as `tokenizer.ggml.*` metadata, then through the project's
// GGUF writer and reader, so the code under test sees exactly what it sees in a downloaded file. Written
// from the converter's documented behaviour, independently of src/text/ggml-tokenizer.ts:
// - tokens in id order; an id with no token becomes "[PAD<id>]" of type UNUSED;
// - types: special added tokens CONTROL (3), other added tokens USER_DEFINED (4), "<0xXX>" tokens of a
//   byte-fallback vocabulary BYTE (6), the unknown token UNKNOWN (2), the rest NORMAL (1);
// - gpt2: the merges as "left right" strings, in rank order;
// - llama (SentencePiece): no merges but a score per token. SentencePiece BPE numbers its pieces in the
//   order training learned them, so the score of a piece falls with the rank of the first merge that
//   builds it; a piece no merge builds (a single character) scores below every built one, in id order;
//   control, unknown and byte tokens score 0, as in a SentencePiece model file;
// - bos/eos/unk/pad ids from tokenizer_config.json's token strings; add_bos_token / add_eos_token only
//   when tokenizer_config.json states them; the chat template as given.
import { memorySource } from "../../src/env/byte-source.js";
import { GgufFile, type GgufMetadata, type GgufValue } from "../../src/model/checkpoint/gguf.js";
import { bool, f32s, i32s, str, strings, u32, writeGgufTo } from "../../src/model/checkpoint/gguf-writer.js";
import { memorySink } from "../checkpoint/gguf-helpers.js";

interface HfTokenizerJson {
  added_tokens: { id: number; content: string; special: boolean }[];
  model: { vocab: Record<string, number>; merges: (string | [string, string])[]; byte_fallback?: boolean; unk_token?: string | null };
}

const tokenString = (v: unknown): string | undefined =>
  typeof v === "string" ? v : typeof v === "object" && v !== null && typeof (v as { content?: unknown }).content === "string" ? (v as { content: string }).content : undefined;

export function convertTokenizer(
  tokenizerJson: unknown,
  tokenizerConfig: Record<string, unknown>,
  opts: { model: "gpt2" | "llama"; pre?: string },
): Array<[string, GgufValue]> {
  const tj = tokenizerJson as HfTokenizerJson;
  const byId = new Map<number, string>();
  for (const [t, id] of Object.entries(tj.model.vocab)) byId.set(id, t);
  const added = new Map(tj.added_tokens.map((a) => [a.id, a]));
  for (const a of tj.added_tokens) byId.set(a.id, a.content);
  const size = [...byId.keys()].reduce((a, b) => Math.max(a, b), -1) + 1;

  const tokens: string[] = [];
  const types: number[] = [];
  for (let id = 0; id < size; id++) {
    const t = byId.get(id);
    if (t === undefined) {
      tokens.push(`[PAD${id}]`);
      types.push(5);
      continue;
    }
    tokens.push(t);
    const a = added.get(id);
    if (t === tj.model.unk_token) types.push(2);
    else if (a !== undefined) types.push(a.special ? 3 : 4);
    else if (tj.model.byte_fallback && /^<0x[0-9A-F]{2}>$/.test(t)) types.push(6);
    else types.push(1);
  }

  const kv: Array<[string, GgufValue]> = [["tokenizer.ggml.model", str(opts.model)]];
  if (opts.pre !== undefined) kv.push(["tokenizer.ggml.pre", str(opts.pre)]);
  kv.push(["tokenizer.ggml.tokens", strings(tokens)]);
  if (opts.model === "llama") {
    const merges = tj.model.merges.map((m) => (typeof m === "string" ? m.split(" ") : m));
    const firstRank = new Map<number, number>();
    merges.forEach(([l, r], rank) => {
      const id = tj.model.vocab[l + r];
      if (!firstRank.has(id)) firstRank.set(id, rank);
    });
    const scores = tokens.map((_, id) => (types[id] !== 1 ? 0 : -(firstRank.get(id) ?? merges.length + id)));
    kv.push(["tokenizer.ggml.scores", f32s(scores)]);
  }
  kv.push(["tokenizer.ggml.token_type", i32s(types)]);
  if (opts.model === "gpt2") kv.push(["tokenizer.ggml.merges", strings(tj.model.merges.map((m) => (typeof m === "string" ? m : m.join(" "))))]);
  const ids: Array<[string, string]> = [
    ["bos_token", "tokenizer.ggml.bos_token_id"],
    ["eos_token", "tokenizer.ggml.eos_token_id"],
    ["unk_token", "tokenizer.ggml.unknown_token_id"],
    ["pad_token", "tokenizer.ggml.padding_token_id"],
  ];
  for (const [cfgKey, key] of ids) {
    const t = tokenString(tokenizerConfig[cfgKey]);
    const id = t === undefined ? -1 : tokens.indexOf(t);
    if (id >= 0) kv.push([key, u32(id)]);
  }
  for (const flag of ["add_bos_token", "add_eos_token"]) {
    if (typeof tokenizerConfig[flag] === "boolean") kv.push([`tokenizer.ggml.${flag}`, bool(tokenizerConfig[flag] as boolean)]);
  }
  if (typeof tokenizerConfig.chat_template === "string") kv.push(["tokenizer.chat_template", str(tokenizerConfig.chat_template)]);
  return kv;
}

/** The metadata of a GGUF file holding `entries` (and no tensors), written and read back in memory. */
export async function ggufMetadata(entries: Array<[string, GgufValue]>): Promise<GgufMetadata> {
  const sink = memorySink("tokenizer.gguf");
  await writeGgufTo(sink, [["general.architecture", str("llama")], ...entries], []);
  await sink.close();
  return (await GgufFile.open(memorySource("tokenizer.gguf", sink.bytes()))).metadata;
}
