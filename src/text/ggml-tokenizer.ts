// A Hugging Face tokenizer.json object (and the tokenizer_config.json fields the tokenizer reads) built from
// the `tokenizer.ggml.*` metadata llama.cpp's converter writes into a GGUF file, for files that carry no
// tokenizer.huggingface.json. The result is served by @huggingface/tokenizers through TextTokenizer, exactly
// as a folder's two files are: no tokenizer algorithm is written here, only the description of one.
//
// Two vocabulary kinds (tokenizer.ggml.model):
// - "gpt2": byte-level BPE (Llama 3, SmolLM2). Tokens, merges ("left right" strings in rank order) and
//   token types; tokenizer.ggml.pre names the pre-tokenizer, i.e. how text is split into words before the
//   merges run. Each supported name is described below as the pre-tokenizer of the models that use it.
// - "llama": SentencePiece BPE (Llama 2, AMD-Llama). Tokens, scores and token types; no merges. SentencePiece
//   BPE repeatedly joins the adjacent pair whose joined piece has the highest score, which is what a BPE
//   merge list ordered by the joined piece's score does, so the merges are derived from the scores. Spaces
//   become "▁" and one is put in front of the text and after each special token, with byte fallback for
//   characters outside the vocabulary: the layout of Hugging Face's Llama 2 tokenizer.json.
//
// BOS and EOS are added by a TemplateProcessing post-processor as tokenizer.ggml.add_bos_token /
// add_eos_token say (llama.cpp's defaults when absent), so TextTokenizer adds them when it encodes with
// special tokens and the chat path, which encodes without, gets the template's own.
//
// The metadata comes from a downloaded file: every array's type and length, every id and every merge is
// checked here, before anything proportional to them is built, and the first problem is one CheckpointError
// line naming the key.
import { CheckpointError } from "../env/byte-source.js";
import type { GgufMetadata, GgufValue } from "../model/checkpoint/gguf.js";
import { MAX_TOKEN_ID } from "./tokenizer-json.js";

/** llama.cpp's token types (tokenizer.ggml.token_type), as its converter writes them. */
const GgmlTokenType = {
  UNDEFINED: 0,
  NORMAL: 1,
  UNKNOWN: 2,
  CONTROL: 3,
  USER_DEFINED: 4,
  UNUSED: 5,
  BYTE: 6,
} as const;

/**
 * Bound on the work of deriving SentencePiece merges: every normal token of length L is tried at its L-1
 * split points, each a lookup of cost L. Real vocabularies stay far below (Llama 2: about 2^21; a 256k
 * vocabulary of longer pieces about 2^25).
 */
export const MAX_MERGE_WORK = 2 ** 27;

/** Split of Llama 3's tokenizer.json: contractions, letters, numbers of at most 3 digits, punctuation, spaces. */
const LLAMA3_SPLIT = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/**
 * llama.cpp's splits for a BPE file without a pre-tokenizer name (or "default"), applied in turn: runs of
 * punctuation and the symbols $+<=>^~|, then GPT-2's word split, then digit runs, then groups of three digits.
 */
const DEFAULT_SPLITS = [
  "[\\p{P}\\$\\+<=>\\^~\\|]+",
  "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
  "\\p{N}+",
  "[0-9][0-9][0-9]",
];

const split = (regex: string) => ({ type: "Split", pattern: { Regex: regex }, behavior: "Isolated", invert: false });
const byteLevel = (useRegex: boolean) => ({ type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: useRegex });

interface PreTokenizer {
  pre_tokenizer: Record<string, unknown>;
  /** A word that is itself a token is emitted whole, before any merge (Llama 3's `ignore_merges`). */
  ignoreMerges: boolean;
  /** llama.cpp's add_bos default when the file does not say. */
  addBos: boolean;
  /** llama.cpp's clean_spaces: decoding drops the space before punctuation (" ." -> "."). */
  cleanSpaces: boolean;
}

/** tokenizer.ggml.pre values this reader knows, grouped as llama.cpp groups them. */
const PRE_TOKENIZERS: ReadonlyMap<string, PreTokenizer> = (() => {
  const llama3: PreTokenizer = { pre_tokenizer: { type: "Sequence", pretokenizers: [split(LLAMA3_SPLIT), byteLevel(false)] }, ignoreMerges: true, addBos: true, cleanSpaces: true };
  // GPT-2's word split is the ByteLevel pre-tokenizer's own regex.
  const gpt2: PreTokenizer = { pre_tokenizer: byteLevel(true), ignoreMerges: false, addBos: false, cleanSpaces: true };
  // SmolLM2 (and StarCoder) split every digit apart first.
  const digitsThenGpt2 = { type: "Sequence", pretokenizers: [{ type: "Digits", individual_digits: true }, byteLevel(true)] };
  const dflt: PreTokenizer = { pre_tokenizer: { type: "Sequence", pretokenizers: [...DEFAULT_SPLITS.map(split), byteLevel(false)] }, ignoreMerges: false, addBos: false, cleanSpaces: true };
  return new Map<string, PreTokenizer>([
    ["llama-bpe", llama3],
    ["llama3", llama3],
    ["llama-v3", llama3],
    ["smollm", { pre_tokenizer: digitsThenGpt2, ignoreMerges: false, addBos: false, cleanSpaces: false }],
    ["starcoder", { pre_tokenizer: digitsThenGpt2, ignoreMerges: false, addBos: false, cleanSpaces: true }],
    ["gpt-2", gpt2],
    ["default", dflt],
  ]);
})();

/** The pre-tokenizer descriptions by tokenizer.ggml.pre value (for tests of their regexes). */
export function ggmlPreTokenizers(): ReadonlyMap<string, Record<string, unknown>> {
  return new Map([...PRE_TOKENIZERS].map(([k, v]) => [k, v.pre_tokenizer]));
}

const SUPPORTED_MODELS = '"gpt2" (byte-level BPE) and "llama" (SentencePiece)';

function fail(msg: string): never {
  throw new CheckpointError(`GGUF tokenizer: ${msg}`);
}

const show = (s: string): string => {
  const j = JSON.stringify(s);
  return j.length > 60 ? j.slice(0, 57) + '..."' : j;
};

const INTEGER_TYPES = new Set(["u8", "i8", "u16", "i16", "u32", "i32", "u64", "i64"]);

/**
 * An optional token id key: any integer type, a valid index of the `n` tokens. With `outOfRange: "ignore"`
 * an id outside the vocabulary reads as absent: llama.cpp does that for the padding id, which some
 * converters write as -1 (2^32 - 1 as a u32).
 */
function tokenIdKey(md: GgufMetadata, key: string, n: number, outOfRange: "refuse" | "ignore" = "refuse"): number | undefined {
  const v: GgufValue | undefined = md.get(key);
  if (v === undefined) return undefined;
  if (!INTEGER_TYPES.has(v.type)) fail(`${key} is ${v.type === "array" ? `${v.itemType}[]` : v.type}, expected an integer token id`);
  const id = Number(v.value as number | bigint);
  if (!Number.isSafeInteger(id) || id < 0 || id >= n) {
    if (outOfRange === "ignore") return undefined;
    fail(`${key} ${String(v.value)} is not a token id (the vocabulary has ${n} tokens)`);
  }
  return id;
}

/** The per-token numbers of `key` (i32 or f32, as llama.cpp accepts), exactly one per token, all finite. */
function perToken(md: GgufMetadata, key: string, n: number, types: readonly string[]): ArrayLike<number> | undefined {
  const v = md.get(key);
  if (v === undefined) return undefined;
  if (v.type !== "array" || !types.includes(v.itemType)) fail(`${key} is ${v.type === "array" ? `${v.itemType}[]` : v.type}, expected ${types.map((t) => `${t}[]`).join(" or ")}`);
  const arr = (v as { value: ArrayLike<number> }).value;
  if (arr.length !== n) fail(`${key} has ${arr.length} entries for ${n} tokens (one per token)`);
  for (let i = 0; i < arr.length; i++) if (!Number.isFinite(arr[i])) fail(`${key}[${i}] is ${arr[i]}, not a finite number`);
  return arr;
}

export function tokenizerFromGgml(md: GgufMetadata): { tokenizerJson: Record<string, unknown>; tokenizerConfig: Record<string, unknown> } {
  const kind = md.has("tokenizer.ggml.model") ? md.string("tokenizer.ggml.model") : fail(`no tokenizer.ggml.model (nor tokenizer.huggingface.json): the file carries no tokenizer`);
  if (kind !== "gpt2" && kind !== "llama") fail(`tokenizer.ggml.model ${show(kind)} is not supported (${SUPPORTED_MODELS} are)`);

  const tokensValue = md.get("tokenizer.ggml.tokens");
  if (tokensValue === undefined) fail("tokenizer.ggml.tokens is missing");
  if (tokensValue.type !== "array" || tokensValue.itemType !== "string") fail("tokenizer.ggml.tokens must be a string[]");
  const tokens = tokensValue.value as string[];
  const n = tokens.length;
  if (n === 0) fail("tokenizer.ggml.tokens is empty");
  if (n > MAX_TOKEN_ID) fail(`tokenizer.ggml.tokens has ${n} tokens, more than ${MAX_TOKEN_ID}`);
  const ids = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const t = tokens[i];
    if (t.length === 0) fail(`tokenizer.ggml.tokens[${i}] is empty`);
    const seen = ids.get(t);
    if (seen !== undefined) fail(`tokenizer.ggml.tokens[${i}] ${show(t)} repeats token ${seen}`);
    ids.set(t, i);
  }
  // tokenizer.json's form; a null-prototype object, where a token named "__proto__" is an ordinary key.
  const vocab = Object.create(null) as Record<string, number>;
  for (let i = 0; i < n; i++) vocab[tokens[i]] = i;

  const types = perToken(md, "tokenizer.ggml.token_type", n, ["i32"]);
  const typeOf = (i: number): number => (types === undefined ? GgmlTokenType.NORMAL : types[i]);
  if (types !== undefined) {
    for (let i = 0; i < n; i++) {
      if (!Number.isInteger(types[i]) || types[i] < 0 || types[i] > GgmlTokenType.BYTE) fail(`tokenizer.ggml.token_type[${i}] is ${types[i]} (token types are 0 to 6)`);
    }
  }

  // llama.cpp's defaults for SentencePiece files: <unk> 0, <s> 1, </s> 2 (when the vocabulary has them).
  const spmDefault = (id: number) => (kind === "llama" && id < n ? id : undefined);
  const bos = tokenIdKey(md, "tokenizer.ggml.bos_token_id", n) ?? spmDefault(1);
  const eos = tokenIdKey(md, "tokenizer.ggml.eos_token_id", n) ?? spmDefault(2);
  const unk = tokenIdKey(md, "tokenizer.ggml.unknown_token_id", n) ?? spmDefault(0);
  const pad = tokenIdKey(md, "tokenizer.ggml.padding_token_id", n, "ignore");

  let model: Record<string, unknown>;
  let normalizer: Record<string, unknown> | null = null;
  let preTokenizer: Record<string, unknown> | null = null;
  let decoder: Record<string, unknown>;
  let addBosDefault: boolean;
  let cleanSpaces: boolean;
  if (kind === "gpt2") {
    const pre = md.string("tokenizer.ggml.pre", "optional") ?? "default";
    const p = PRE_TOKENIZERS.get(pre) ?? fail(`tokenizer.ggml.pre ${show(pre)} is not supported (${[...PRE_TOKENIZERS.keys()].join(", ")} are)`);
    model = { type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: p.ignoreMerges, vocab, merges: checkedMerges(md, ids) };
    preTokenizer = p.pre_tokenizer;
    decoder = { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true };
    addBosDefault = p.addBos;
    cleanSpaces = p.cleanSpaces;
  } else {
    if (md.has("tokenizer.ggml.merges")) fail("tokenizer.ggml.merges in a SentencePiece (llama) vocabulary is not supported: its merges come from the scores");
    const scores = perToken(md, "tokenizer.ggml.scores", n, ["f32", "i32"]) ?? fail("tokenizer.ggml.scores is missing (a SentencePiece vocabulary merges by score)");
    const addSpacePrefix = md.bool("tokenizer.ggml.add_space_prefix", "optional") ?? true;
    const hasBytes = types !== undefined && Array.prototype.some.call(types, (t: number) => t === GgmlTokenType.BYTE);
    model = { type: "BPE", dropout: null, unk_token: unk === undefined ? null : tokens[unk], continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: true, byte_fallback: hasBytes, ignore_merges: false, vocab, merges: scoreMerges(tokens, ids, scores, typeOf) };
    const escape = { type: "Replace", pattern: { String: " " }, content: "▁" };
    normalizer = { type: "Sequence", normalizers: addSpacePrefix ? [{ type: "Prepend", prepend: "▁" }, escape] : [escape] };
    const unescape = [{ type: "Replace", pattern: { String: "▁" }, content: " " }, { type: "ByteFallback" }, { type: "Fuse" }];
    decoder = { type: "Sequence", decoders: addSpacePrefix ? [...unescape, { type: "Strip", content: " ", start: 1, stop: 0 }] : unescape };
    addBosDefault = true;
    cleanSpaces = false;
  }

  const addBosKey = md.bool("tokenizer.ggml.add_bos_token", "optional");
  const addBos = addBosKey ?? addBosDefault;
  const addEos = md.bool("tokenizer.ggml.add_eos_token", "optional") ?? false;
  if (addBos && bos === undefined) {
    fail(`tokenizer.ggml.add_bos_token is ${addBosKey === undefined ? "absent (llama.cpp then adds BOS for this vocabulary)" : "true"} but there is no tokenizer.ggml.bos_token_id`);
  }
  if (addEos && eos === undefined) fail("tokenizer.ggml.add_eos_token is true but there is no tokenizer.ggml.eos_token_id");

  // Control and unknown tokens are special; user-defined ones are matched whole in the text but are not special.
  const added: Record<string, unknown>[] = [];
  for (let i = 0; i < n; i++) {
    const t = typeOf(i);
    if (t === GgmlTokenType.CONTROL || t === GgmlTokenType.UNKNOWN || t === GgmlTokenType.USER_DEFINED) {
      added.push({ id: i, content: tokens[i], single_word: false, lstrip: false, rstrip: false, normalized: false, special: t !== GgmlTokenType.USER_DEFINED });
    }
  }

  const tokenizerJson: Record<string, unknown> = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer,
    pre_tokenizer: preTokenizer,
    post_processor: postProcessor(addBos ? bos : undefined, addEos ? eos : undefined, tokens),
    decoder,
    model,
  };
  const tokenizerConfig: Record<string, unknown> = { clean_up_tokenization_spaces: cleanSpaces };
  if (bos !== undefined) tokenizerConfig.bos_token = tokens[bos];
  if (eos !== undefined) tokenizerConfig.eos_token = tokens[eos];
  if (unk !== undefined) tokenizerConfig.unk_token = tokens[unk];
  if (pad !== undefined) tokenizerConfig.pad_token = tokens[pad];
  const template = md.string("tokenizer.chat_template", "optional");
  if (template !== undefined) tokenizerConfig.chat_template = template;
  return { tokenizerJson, tokenizerConfig };
}

/**
 * tokenizer.ggml.merges as [left, right] pairs, in rank order. llama.cpp splits each entry at its first
 * space after the first character; both halves and their join must be tokens, or the BPE would build a
 * piece with no id and drop it from the output.
 */
function checkedMerges(md: GgufMetadata, ids: ReadonlyMap<string, number>): [string, string][] {
  const v = md.get("tokenizer.ggml.merges");
  if (v === undefined) fail("tokenizer.ggml.merges is missing (a gpt2 vocabulary needs its merges)");
  if (v.type !== "array" || v.itemType !== "string") fail("tokenizer.ggml.merges must be a string[]");
  const list = v.value as string[];
  const out: [string, string][] = new Array(list.length);
  for (let i = 0; i < list.length; i++) {
    const m = list[i];
    const at = m.indexOf(" ", 1);
    const left = at < 0 ? "" : m.slice(0, at);
    const right = at < 0 ? "" : m.slice(at + 1);
    if (!ids.has(left) || !ids.has(right)) fail(`tokenizer.ggml.merges[${i}] ${show(m)} does not name two tokens ("left right")`);
    if (!ids.has(left + right)) fail(`tokenizer.ggml.merges[${i}] ${show(m)} joins to ${show(left + right)}, which is not a token`);
    out[i] = [left, right];
  }
  return out;
}

/**
 * SentencePiece merges from scores: every split of a normal token into two normal tokens, ordered by the
 * joined token's score (highest first; equal scores by id), the splits of one token by their halves' scores.
 */
function scoreMerges(tokens: readonly string[], ids: ReadonlyMap<string, number>, scores: ArrayLike<number>, typeOf: (i: number) => number): [string, string][] {
  let work = 0;
  for (let i = 0; i < tokens.length; i++) if (typeOf(i) === GgmlTokenType.NORMAL) work += tokens[i].length * (tokens[i].length - 1);
  if (work > MAX_MERGE_WORK) fail(`tokenizer.ggml.tokens: the normal tokens are too long in total to derive merges from (work ${work}, at most ${MAX_MERGE_WORK})`);
  const isPiece = (t: string): boolean => {
    const id = ids.get(t);
    return id !== undefined && typeOf(id) === GgmlTokenType.NORMAL;
  };
  const found: { left: string; right: string; id: number; l: number; r: number }[] = [];
  for (let id = 0; id < tokens.length; id++) {
    if (typeOf(id) !== GgmlTokenType.NORMAL) continue;
    const t = tokens[id];
    for (let k = 1; k < t.length; k++) {
      const left = t.slice(0, k);
      const right = t.slice(k);
      if (isPiece(left) && isPiece(right)) found.push({ left, right, id, l: scores[ids.get(left)!], r: scores[ids.get(right)!] });
    }
  }
  found.sort((a, b) => scores[b.id] - scores[a.id] || a.id - b.id || b.l - a.l || b.r - a.r);
  return found.map((m) => [m.left, m.right]);
}

/** BOS / EOS (ids, when added) around each sequence, or no post-processor when neither is added. */
function postProcessor(bosId: number | undefined, eosId: number | undefined, tokens: readonly string[]): Record<string, unknown> | null {
  if (bosId === undefined && eosId === undefined) return null;
  const bos = bosId === undefined ? null : tokens[bosId];
  const eos = eosId === undefined ? null : tokens[eosId];
  const around = (seq: "A" | "B", typeId: number): unknown[] => [
    ...(bos === null ? [] : [{ SpecialToken: { id: bos, type_id: typeId } }]),
    { Sequence: { id: seq, type_id: typeId } },
    ...(eos === null ? [] : [{ SpecialToken: { id: eos, type_id: typeId } }]),
  ];
  const special = Object.create(null) as Record<string, unknown>;
  if (bos !== null) special[bos] = { id: bos, ids: [bosId], tokens: [bos] };
  if (eos !== null) special[eos] = { id: eos, ids: [eosId], tokens: [eos] };
  return { type: "TemplateProcessing", single: around("A", 0), pair: [...around("A", 0), ...around("B", 1)], special_tokens: special };
}
