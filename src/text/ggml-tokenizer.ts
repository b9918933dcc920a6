// The tokenizer of a GGUF file that carries its vocabulary as llama.cpp's converter writes it
// (`tokenizer.ggml.*`, no tokenizer.huggingface.json), tokenizing as llama.cpp does, so a prompt becomes
// the same ids here as in llama.cpp on the same file.
//
// Two vocabulary kinds (tokenizer.ggml.model):
// - "gpt2": byte-level BPE (Llama 3, SmolLM2, Qwen). Tokens, merges ("left right" strings in rank order)
//   and token types; tokenizer.ggml.pre names the pre-tokenizer, the regular expressions that split text
//   into words before the merges run (PRE_TOKENIZER_GROUPS below, one entry per group of names llama.cpp
//   treats alike). The words are merged by @huggingface/tokenizers, from a tokenizer.json built here with the
//   file's merges and that pre-tokenizer: its BPE ranks pairs and breaks ties leftmost first, as
//   llama.cpp's does.
// - "llama": SentencePiece BPE (Llama 2, Gemma). Tokens, scores and token types, merged by score with byte
//   fallback (sentencepiece.ts); tokenizer.ggml.add_space_prefix (default true) puts a space in front of
//   the text and after each special token.
//
// Around both, llama.cpp's own steps: control, user-defined and unknown tokens are split out of the text
// first (special-split.ts), longest first; BOS and EOS are added as tokenizer.ggml.add_bos_token /
// add_eos_token say (llama.cpp's default per vocabulary when absent); decoding writes each token's piece as
// llama.cpp's token_to_piece does (control and unknown tokens only when special tokens are kept) and, for
// the pre-tokenizers llama.cpp cleans spaces for, removes the space before punctuation.
//
// The file also says which ids end a turn. llama.cpp takes EOS, tokenizer.ggml.eot_token_id /
// eom_token_id, the fill-in-the-middle pad, repository and separator tokens (FIM_MARKERS), and every token
// whose text is one of the end-of-turn markers of the common chat formats (END_OF_GENERATION below,
// "<|im_end|>", "<end_of_turn>", ...); generation stops at any of them, and here the same set is the
// model's end ids. The chat template is tokenizer.chat_template, else the documented
// default of the file's family (Gemma's turns for a gemma* architecture), else none.
//
// The metadata comes from a downloaded file: every array's type and length, every id, every merge, the
// length and number of special tokens and the byte alphabet are checked here, before anything
// proportional to them is built, and the first problem is one CheckpointError line naming the key.
import { Tokenizer } from "@huggingface/tokenizers";
import { CheckpointError } from "../env/byte-source.js";
import type { GgufMetadata, GgufValue } from "../model/checkpoint/gguf.js";
import { GEMMA_TURNS_TEMPLATE } from "./chat-template.js";
import { sentencePieceEncode, type SentencePieceVocabulary } from "./sentencepiece.js";
import { SpecialTokenSplitter } from "./special-split.js";
import { TextTokenizer, type TokenizerEngine } from "./tokenizer.js";
import { BYTE_LEVEL_BYTES, BYTE_LEVEL_CHARS } from "./byte-level.js";
import type { TokenBytes } from "./token-bytes.js";
import { MAX_SPECIAL_TOKEN_CHARS, MAX_TOKEN_ID, TokenizerError } from "./tokenizer-json.js";

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
 * Merges a gpt2 vocabulary may list (duplicates included): 2^20, about 4x Llama 3's 280,147. Each costs
 * @huggingface/tokenizers about 150 bytes, so the library's share stays near 150 MB whatever the file says.
 */
export const MAX_MERGES = 2 ** 20;

/**
 * Control, user-defined and unknown tokens a vocabulary may have: 2^16 (Gemma 3 has 6,414). They are
 * sorted once at load and searched for in every prompt.
 */
export const MAX_SPECIAL_TOKENS = 2 ** 16;

/**
 * Text of the tokens llama.cpp treats as the end of a turn (its special_eog_ids, found by text in
 * src/llama-vocab.cpp), by chat format. Two are dropped where llama.cpp drops them: "<|end|>" in a vocabulary
 * that also has "<|return|>" and "<|call|>" (or "<|calls|>" and "<|flush|>"), where it ends a message, not
 * a turn; "</s>" in one with "<|tool_response>". Elsewhere "</s>" ends generation even where it is an HTML
 * tag (Gemma 3 has it as a user-defined token), as in llama.cpp.
 */
export const END_OF_GENERATION = [
  "<|eot_id|>", // Llama 3
  "<|eom_id|>", // Llama 3.1, after a tool call
  "<|im_end|>", // ChatML (SmolLM2, Qwen)
  "<|end|>", // Phi-3
  "<|return|>", // gpt-oss
  "<|call|>",
  "<|flush|>", // Solar Open
  "<|calls|>",
  "<end_of_turn>", // Gemma
  "<|endoftext|>", // GPT-2, StarCoder, SmolLM2
  "</s>", // Llama 2, PaddleOCR
  "<EOT>",
  "_<EOT>", // CodeLlama
  "[EOT]", // Kimi K2
  "[EOS]",
  "<|end_of_text|>", // Granite
  "<end_of_utterance>", // SmolDocling
  "<eos>", // Gemma 4
  "<turn|>",
  "<|tool_response>",
  "<｜end▁of▁sentence｜>", // DeepSeek
  "[e~[", // MiniMax
];

/**
 * llama.cpp's fill-in-the-middle markers, found by text when the file has no key for them
 * (tokenizer.ggml.fim_*_token_id). All are control tokens; pad, repository and file separator also end
 * generation.
 */
const FIM_MARKERS: Array<{ key: string; texts: string[]; endsGeneration: boolean }> = [
  { key: "fim_pre", texts: ["<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>", "<|code_prefix|>", "<|prefix|>"], endsGeneration: false },
  { key: "fim_suf", texts: ["<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>", "<|code_suffix|>", "<|suffix|>"], endsGeneration: false },
  { key: "fim_mid", texts: ["<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>", "<|code_middle|>", "<|middle|>"], endsGeneration: false },
  { key: "fim_pad", texts: ["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"], endsGeneration: true },
  { key: "fim_rep", texts: ["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"], endsGeneration: true },
  { key: "fim_sep", texts: ["<|file_sep|>"], endsGeneration: true },
];

/**
 * The end-of-generation ids, as llama.cpp collects them: EOS, the end-of-turn and end-of-message keys, the
 * fill-in-the-middle pad, repository and separator tokens, and every token named in END_OF_GENERATION, less
 * llama.cpp's two exceptions. Tokens found by text (END_OF_GENERATION, FIM_MARKERS) become control tokens in
 * `types`, as llama.cpp makes them: split out of text, left out when decoding without special tokens.
 */
function endOfGenerationIds(md: GgufMetadata, ids: ReadonlyMap<string, number>, types: Uint8Array, given: Array<number | undefined>): Set<number> {
  const out = new Set<number>(given.filter((id): id is number => id !== undefined));
  const control = (id: number) => {
    if (types[id] !== GgmlTokenType.CONTROL && types[id] !== GgmlTokenType.UNKNOWN) types[id] = GgmlTokenType.CONTROL;
  };
  for (const { key, texts, endsGeneration } of FIM_MARKERS) {
    // The key, else the first of its texts in the vocabulary.
    const found = texts.map((t) => ids.get(t)).filter((id): id is number => id !== undefined);
    const id = tokenIdKey(md, `tokenizer.ggml.${key}_token_id`, types.length) ?? (found.length > 0 ? Math.min(...found) : undefined);
    if (id === undefined) continue;
    control(id);
    if (endsGeneration) out.add(id);
  }
  for (const text of END_OF_GENERATION) {
    const id = ids.get(text);
    if (id === undefined) continue;
    out.add(id);
    control(id);
  }
  // Dropped, the token also takes the type llama.cpp gives it then.
  const drop = (text: string, type: number) => {
    const id = ids.get(text)!;
    out.delete(id);
    types[id] = type;
  };
  const has = (text: string) => ids.has(text);
  if (has("<|end|>") && ((has("<|return|>") && has("<|call|>")) || (has("<|calls|>") && has("<|flush|>")))) drop("<|end|>", GgmlTokenType.USER_DEFINED);
  if (has("<|tool_response>") && has("</s>")) drop("</s>", GgmlTokenType.NORMAL);
  return out;
}

// llama.cpp's pre-tokenizer regexes (src/llama-vocab.cpp, llm_tokenizer_bpe): for each name group, the
// expressions it applies in turn, each splitting the pieces the previous one made and keeping the text
// between matches as pieces of their own.
const GPT2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
const CONTRACTIONS = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])";
const LLAMA3 = `${CONTRACTIONS}|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`;
const QWEN2 = `${CONTRACTIONS}|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`;
// "A letter that is not a-z" and "a letter that is not A-Z": llama.cpp's spelling of the upper and lower
// case classes of GPT-4o's expression.
const UPPER = "((?=[\\p{L}])([^a-z]))";
const LOWER = "((?=[\\p{L}])([^A-Z]))";
const GPT4O = `[^\\r\\n\\p{L}\\p{N}]?${UPPER}*${LOWER}+${CONTRACTIONS}?|[^\\r\\n\\p{L}\\p{N}]?${UPPER}+${LOWER}*${CONTRACTIONS}?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`;
const TEKKEN = `[^\\r\\n\\p{L}\\p{N}]?${UPPER}*${LOWER}+|[^\\r\\n\\p{L}\\p{N}]?${UPPER}+${LOWER}*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`;
const CJK = "[一-龥ࠀ-一가-퟿]+";

interface PreTokenizer {
  /** The regular expressions, in the order llama.cpp applies them. */
  splits: string[];
  /** A word that is itself a token is taken whole, before any merge (llama.cpp's ignore_merges). */
  ignoreMerges: boolean;
  /** llama.cpp's add_bos default when the file does not say. */
  addBos: boolean;
  /** llama.cpp's clean_spaces: decoding drops the space before punctuation (" ." -> "."). */
  cleanSpaces: boolean;
}

const pre = (splits: string[], flags: Partial<Omit<PreTokenizer, "splits">> = {}): PreTokenizer => ({ ignoreMerges: false, addBos: false, cleanSpaces: true, ...flags, splits });

/** tokenizer.ggml.pre values this reader knows, grouped as llama.cpp groups them. */
const PRE_TOKENIZER_GROUPS: Array<[string[], PreTokenizer]> = [
  // Runs of punctuation, GPT-2's word split, digit runs, then groups of three digits.
  [["default"], pre(["[\\p{P}\\$\\+<=>\\^~\\|]+", GPT2, "\\p{N}+", "[0-9][0-9][0-9]"])],
  // Llama 3: contractions, letters, numbers of at most three digits, punctuation, spaces; whole-token words.
  [["llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2"], pre([LLAMA3], { ignoreMerges: true, addBos: true })],
  [["dbrx", "smaug-bpe"], pre([LLAMA3])],
  // GPT-2's word split alone.
  [["gpt-2", "phi-2", "mpt", "olmo", "jina-es", "jina-de", "jina-v2-es", "jina-v2-de", "gigachat", "a.x-4.0", "mellum", "exaone4"], pre([GPT2])],
  // Every digit alone, then GPT-2's split (StarCoder's tokenizer and those trained like it).
  [["starcoder", "refact", "codeshell", "exaone", "minerva-7b", "mellum2"], pre(["\\p{N}", GPT2])],
  [["smollm", "command-r"], pre(["\\p{N}", GPT2], { cleanSpaces: false })],
  // Qwen 2: as Llama 3 but every digit alone.
  [["qwen2", "deepseek-r1-qwen"], pre([QWEN2], { cleanSpaces: false })],
  [["stablelm2", "megrez"], pre([QWEN2])],
  [["falcon"], pre(["[\\p{P}\\$\\+<=>\\^~\\|`]+", GPT2, "[0-9][0-9][0-9]"])],
  [["deepseek-coder"], pre(["[\\r\\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", CJK, "\\p{N}"], { cleanSpaces: false })],
  [["deepseek-v3"], pre(["\\p{N}{1,3}", "[一-龥぀-ゟ゠-ヿ]+", "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"], { cleanSpaces: false })],
  // GPT-4o's split (Llama 4), and Mistral's Tekken.
  [["gpt-4o", "llama4"], pre([GPT4O], { cleanSpaces: false })],
  [["tekken"], pre([TEKKEN], { cleanSpaces: false, ignoreMerges: true, addBos: true })],
  // BLOOM: words with the space before them, splitting at punctuation.
  [["bloom", "gpt3-finnish"], pre([" ?[^(\\s|.,!?…。，、।۔،)]+"])],
  [["poro-chat"], pre([" ?[^(\\s|.,!?…。，、।۔،)]+"], { cleanSpaces: false })],
];
const PRE_TOKENIZERS: ReadonlyMap<string, PreTokenizer> = new Map(PRE_TOKENIZER_GROUPS.flatMap(([names, p]) => names.map((n): [string, PreTokenizer] => [n, p])));

/** The regular expressions of each tokenizer.ggml.pre value this reader knows (for tests of their safety). */
export function ggmlPreTokenizers(): ReadonlyMap<string, readonly string[]> {
  return new Map([...PRE_TOKENIZERS].map(([k, v]) => [k, v.splits]));
}

const SUPPORTED_MODELS = '"gpt2" (byte-level BPE) and "llama" (SentencePiece)';

function fail(msg: string): never {
  throw new CheckpointError(`GGUF tokenizer: ${msg}`);
}

const show = (s: string): string => {
  const j = JSON.stringify(s.length > 60 ? s.slice(0, 60) : s);
  return s.length > 60 ? `${j.slice(0, -1)}..." (${s.length} characters)` : j;
};

const INTEGER_TYPES = new Set(["u8", "i8", "u16", "i16", "u32", "i32", "u64", "i64"]);
const describe = (v: GgufValue): string => (v.type === "array" ? `${v.itemType}[]` : v.type);

/**
 * An optional token id key: any integer type, a valid index of the `n` tokens. With `outOfRange: "ignore"`
 * an id outside the vocabulary reads as absent: llama.cpp does that for the padding id, which some
 * converters write as -1 (2^32 - 1 as a u32).
 */
function tokenIdKey(md: GgufMetadata, key: string, n: number, outOfRange: "refuse" | "ignore" = "refuse"): number | undefined {
  const v: GgufValue | undefined = md.get(key);
  if (v === undefined) return undefined;
  if (!INTEGER_TYPES.has(v.type)) fail(`${key} is ${describe(v)}, expected an integer token id`);
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
  if (v.type !== "array" || !types.includes(v.itemType)) fail(`${key} is ${describe(v)}, expected ${types.map((t) => `${t}[]`).join(" or ")}`);
  const arr = (v as { value: ArrayLike<number> }).value;
  if (arr.length !== n) fail(`${key} has ${arr.length} entries for ${n} tokens (one per token)`);
  for (let i = 0; i < arr.length; i++) if (!Number.isFinite(arr[i])) fail(`${key}[${i}] is ${arr[i]}, not a finite number`);
  return arr;
}

/** What a GGUF file's tokenizer.ggml.* and tokenizer.chat_template keys give a model. */
export interface GgmlText {
  tokenizer: TextTokenizer;
  /** The tokenizer_config.json fields they stand for: bos/eos/unk/pad token strings, space cleanup. */
  tokenizerConfig: Record<string, unknown>;
  /** Ids at which generation stops (llama.cpp's end-of-generation set), ascending. */
  endOfGeneration: number[];
  /** The file's tokenizer.chat_template, else its family's default (GEMMA_TURNS_TEMPLATE), else null. */
  chatTemplate: string | null;
  /** True when chatTemplate is the family default rather than the file's own. */
  chatTemplateIsDefault: boolean;
}

const byteToken = (b: number): string => `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`;

export function tokenizerFromGgml(md: GgufMetadata): GgmlText {
  const kind = md.has("tokenizer.ggml.model") ? md.string("tokenizer.ggml.model") : fail(`no tokenizer.ggml.model (nor tokenizer.huggingface.json): the file carries no tokenizer`);
  if (kind !== "gpt2" && kind !== "llama") fail(`tokenizer.ggml.model ${show(kind)} is not supported (${SUPPORTED_MODELS} are)`);

  const tokensValue = md.get("tokenizer.ggml.tokens");
  if (tokensValue === undefined) fail("tokenizer.ggml.tokens is missing");
  if (tokensValue.type !== "array" || tokensValue.itemType !== "string") fail(`tokenizer.ggml.tokens is ${describe(tokensValue)}, expected string[]`);
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

  const fileTypes = perToken(md, "tokenizer.ggml.token_type", n, ["i32"]);
  const types = new Uint8Array(n).fill(GgmlTokenType.NORMAL);
  if (fileTypes !== undefined) {
    for (let i = 0; i < n; i++) {
      const t = fileTypes[i];
      if (!Number.isInteger(t) || t < 0 || t > GgmlTokenType.BYTE) fail(`tokenizer.ggml.token_type[${i}] is ${t} (token types are 0 to 6)`);
      types[i] = t;
    }
  }

  // llama.cpp's defaults for SentencePiece files: <unk> 0, <s> 1, </s> 2 (when the vocabulary has them).
  const spmDefault = (id: number) => (kind === "llama" && id < n ? id : undefined);
  const bos = tokenIdKey(md, "tokenizer.ggml.bos_token_id", n) ?? spmDefault(1);
  const eos = tokenIdKey(md, "tokenizer.ggml.eos_token_id", n) ?? spmDefault(2);
  const unk = tokenIdKey(md, "tokenizer.ggml.unknown_token_id", n) ?? spmDefault(0);
  const pad = tokenIdKey(md, "tokenizer.ggml.padding_token_id", n, "ignore");
  const eot = tokenIdKey(md, "tokenizer.ggml.eot_token_id", n);
  const eom = tokenIdKey(md, "tokenizer.ggml.eom_token_id", n);

  const endOfGeneration = endOfGenerationIds(md, ids, types, [eos, eot, eom]);

  const specials: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = types[i];
    if (t !== GgmlTokenType.CONTROL && t !== GgmlTokenType.USER_DEFINED && t !== GgmlTokenType.UNKNOWN) continue;
    if (tokens[i].length > MAX_SPECIAL_TOKEN_CHARS) {
      fail(`tokenizer.ggml.tokens[${i}] ${show(tokens[i])} is a ${t === GgmlTokenType.USER_DEFINED ? "user-defined" : t === GgmlTokenType.CONTROL ? "control" : "unknown"} token of ${tokens[i].length} characters; special tokens have at most ${MAX_SPECIAL_TOKEN_CHARS}`);
    }
    specials.push(i);
    if (specials.length > MAX_SPECIAL_TOKENS) fail(`tokenizer.ggml.token_type marks more than ${MAX_SPECIAL_TOKENS} tokens control, user-defined or unknown`);
  }

  const addBosKey = md.bool("tokenizer.ggml.add_bos_token", "optional");
  const addEos = md.bool("tokenizer.ggml.add_eos_token", "optional") ?? false;
  let addBosDefault: boolean;
  let cleanSpaces: boolean;
  let fragment: (text: string, afterSpecial: boolean, out: number[]) => void;
  let addSpacePrefix = false;
  let pieceOf: (id: number) => Uint8Array;
  const utf8 = new TextEncoder();

  if (kind === "gpt2") {
    const preName = md.string("tokenizer.ggml.pre", "optional") ?? "default";
    const p = PRE_TOKENIZERS.get(preName) ?? fail(`tokenizer.ggml.pre ${show(preName)} is not supported (${[...PRE_TOKENIZERS.keys()].join(", ")} are)`);
    // A byte with no token would vanish from the ids, as it does in llama.cpp. Real vocabularies lack a few
    // (SmolLM2 has none for 0x04, 0x06, 0x13, 0x14, 0x16, 0x1d, 0xf1, 0xf2): text holding one is refused
    // when encoded; a vocabulary lacking a byte of plain ASCII text cannot encode ordinary text at all.
    const missing = new Uint8Array(256);
    for (let b = 0; b < 256; b++) {
      if (ids.has(BYTE_LEVEL_CHARS[b])) continue;
      if (b === 0x09 || b === 0x0a || b === 0x0d || (b >= 0x20 && b < 0x7f)) {
        fail(`tokenizer.ggml.tokens has no token ${show(BYTE_LEVEL_CHARS[b])} for the byte 0x${b.toString(16).padStart(2, "0")} (${JSON.stringify(String.fromCharCode(b))}): a byte-level (gpt2) vocabulary needs one for every byte of ASCII text, or that text would encode to nothing`);
      }
      missing[b] = 1;
    }
    const checkBytes = missing.includes(1)
      ? (text: string) => {
          for (const b of utf8.encode(text)) if (missing[b]) throw new TokenizerError(`the text holds the byte 0x${b.toString(16).padStart(2, "0")}, which this vocabulary has no token for (llama.cpp would drop it)`);
        }
      : () => undefined;
    const bpe = bpeTokenizer(tokens, checkedMerges(md, ids), p);
    fragment = (text, _afterSpecial, out) => {
      checkBytes(text);
      for (const id of bpe.encode(text, { add_special_tokens: false }).ids) out.push(id);
    };
    // Normal tokens are written in GPT-2's byte characters; a character outside that table is kept as itself.
    pieceOf = (id) => {
      const t = tokens[id];
      if (types[id] !== GgmlTokenType.NORMAL) return utf8.encode(t);
      const bytes: number[] = [];
      for (const c of t) {
        const code = c.charCodeAt(0);
        const b = c.length === 1 && code < BYTE_LEVEL_BYTES.length ? BYTE_LEVEL_BYTES[code] : -1;
        if (b >= 0) bytes.push(b);
        else bytes.push(...utf8.encode(c));
      }
      return Uint8Array.from(bytes);
    };
    addBosDefault = p.addBos;
    cleanSpaces = p.cleanSpaces;
  } else {
    // tokenizer.ggml.merges and tokenizer.ggml.pre mean nothing to a SentencePiece vocabulary (llama.cpp
    // ignores them too): it merges by score.
    const scores = perToken(md, "tokenizer.ggml.scores", n, ["f32", "i32"]) ?? fail("tokenizer.ggml.scores is missing (a SentencePiece vocabulary merges by score)");
    addSpacePrefix = md.bool("tokenizer.ggml.add_space_prefix", "optional") ?? true;
    // Byte fallback: "<0xXX>", or (as llama.cpp falls back) the byte itself as a one-character token; a
    // byte with neither is refused when a character outside the vocabulary needs it (llama.cpp fails too).
    const byteTokens = new Int32Array(256).fill(-1);
    for (let b = 0; b < 256; b++) {
      const id = ids.get(byteToken(b)) ?? (b < 0x80 ? ids.get(String.fromCharCode(b)) : undefined);
      if (id !== undefined) byteTokens[b] = id;
    }
    const spm: SentencePieceVocabulary = { ids, scores, byteTokens };
    fragment = (text, afterSpecial, out) => sentencePieceEncode((addSpacePrefix && afterSpecial ? " " + text : text).replaceAll(" ", "▁"), spm, out);
    pieceOf = (id) => {
      const t = types[id];
      if (t === GgmlTokenType.NORMAL) return utf8.encode(tokens[id].replaceAll("▁", " "));
      if (t === GgmlTokenType.BYTE) {
        const m = /^<0x([0-9A-Fa-f]{2})>$/.exec(tokens[id]);
        return m === null ? new Uint8Array(0) : Uint8Array.of(parseInt(m[1], 16));
      }
      return utf8.encode(tokens[id]);
    };
    addBosDefault = true;
    cleanSpaces = false;
  }

  const addBos = addBosKey ?? addBosDefault;
  if (addBos && bos === undefined) {
    fail(`tokenizer.ggml.add_bos_token is ${addBosKey === undefined ? "absent (llama.cpp then adds BOS for this vocabulary)" : "true"} but there is no tokenizer.ggml.bos_token_id`);
  }
  if (addEos && eos === undefined) fail("tokenizer.ggml.add_eos_token is true but there is no tokenizer.ggml.eos_token_id");

  const engine = new GgmlTokenizer(tokens, ids, types, new SpecialTokenSplitter(tokens, specials), fragment, pieceOf, {
    bos: addBos ? bos : undefined,
    eos: addEos ? eos : undefined,
    stripLeadingSpace: addSpacePrefix,
  });
  const tokenizerConfig: Record<string, unknown> = { clean_up_tokenization_spaces: cleanSpaces };
  if (bos !== undefined) tokenizerConfig.bos_token = tokens[bos];
  if (eos !== undefined) tokenizerConfig.eos_token = tokens[eos];
  if (unk !== undefined) tokenizerConfig.unk_token = tokens[unk];
  if (pad !== undefined) tokenizerConfig.pad_token = tokens[pad];

  const fileTemplate = md.string("tokenizer.chat_template", "optional");
  const familyTemplate = defaultChatTemplate(md, ids);
  return {
    tokenizer: new TextTokenizer({ engine, tokenizerConfig }),
    tokenizerConfig,
    endOfGeneration: [...endOfGeneration].sort((a, b) => a - b),
    chatTemplate: fileTemplate ?? familyTemplate,
    chatTemplateIsDefault: fileTemplate === undefined && familyTemplate !== null,
  };
}

/**
 * The chat format of a file without tokenizer.chat_template, where its family has a known one: Gemma's
 * turns for a gemma* architecture whose vocabulary has <start_of_turn> and <end_of_turn> (published Gemma
 * base models carry no template, while their instruction-tuned siblings use exactly these turns).
 */
function defaultChatTemplate(md: GgufMetadata, ids: ReadonlyMap<string, number>): string | null {
  const arch = md.get("general.architecture");
  const gemma = arch !== undefined && arch.type === "string" && arch.value.startsWith("gemma");
  return gemma && ids.has("<start_of_turn>") && ids.has("<end_of_turn>") ? GEMMA_TURNS_TEMPLATE : null;
}

/**
 * tokenizer.ggml.merges as [left, right] pairs, in rank order. llama.cpp splits each entry at its first
 * space after the first character and keeps the first rank of a pair listed twice; both halves and their
 * join must be tokens, or the BPE would build a piece with no id and drop it from the output.
 */
function checkedMerges(md: GgufMetadata, ids: ReadonlyMap<string, number>): [string, string][] {
  const v = md.get("tokenizer.ggml.merges");
  if (v === undefined) fail("tokenizer.ggml.merges is missing (a gpt2 vocabulary needs its merges)");
  if (v.type !== "array" || v.itemType !== "string") fail(`tokenizer.ggml.merges is ${describe(v)}, expected string[]`);
  const list = v.value as string[];
  if (list.length > MAX_MERGES) fail(`tokenizer.ggml.merges has ${list.length} entries, more than ${MAX_MERGES}`);
  const seen = new Set<string>();
  const out: [string, string][] = [];
  for (let i = 0; i < list.length; i++) {
    const m = list[i];
    if (seen.has(m)) continue;
    seen.add(m);
    const at = m.indexOf(" ", 1);
    const left = at < 0 ? "" : m.slice(0, at);
    const right = at < 0 ? "" : m.slice(at + 1);
    if (!ids.has(left) || !ids.has(right)) fail(`tokenizer.ggml.merges[${i}] ${show(m)} does not name two tokens ("left right")`);
    if (!ids.has(left + right)) fail(`tokenizer.ggml.merges[${i}] ${show(m)} joins to ${show(left + right)}, which is not a token`);
    out.push([left, right]);
  }
  return out;
}

/**
 * @huggingface/tokenizers' BPE over the file's tokens and merges, behind the pre-tokenizer's splits and the
 * byte-level mapping: the words of one raw fragment to ids. No added tokens, normalizer or post-processor:
 * those steps are GgmlTokenizer's.
 */
function bpeTokenizer(tokens: readonly string[], merges: [string, string][], p: PreTokenizer): Tokenizer {
  // A null-prototype object, where a token named "__proto__" is an ordinary key.
  const vocab = Object.create(null) as Record<string, number>;
  for (let i = 0; i < tokens.length; i++) vocab[tokens[i]] = i;
  const split = (regex: string) => ({ type: "Split", pattern: { Regex: regex }, behavior: "Isolated", invert: false });
  const tokenizerJson = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [],
    normalizer: null,
    pre_tokenizer: { type: "Sequence", pretokenizers: [...p.splits.map(split), { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false }] },
    post_processor: null,
    decoder: null,
    model: { type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: p.ignoreMerges, vocab, merges },
  };
  return new Tokenizer(tokenizerJson, {});
}

/** What GgmlTokenizer adds around the text: the BOS and EOS ids when the vocabulary adds them. */
interface Around {
  bos: number | undefined;
  eos: number | undefined;
  /** SentencePiece with add_space_prefix: decoding drops the space encoding put in front. */
  stripLeadingSpace: boolean;
}

/** Surrogates with no partner: llama.cpp receives them (through UTF-8) as U+FFFD, as TextEncoder writes them. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** A GGUF vocabulary as a TokenizerEngine for TextTokenizer (see the file comment). */
class GgmlTokenizer implements TokenizerEngine {
  private readonly decoder = new TextDecoder("utf-8", { ignoreBOM: true });

  constructor(
    private readonly tokens: readonly string[],
    private readonly ids: Map<string, number>,
    private readonly types: Uint8Array,
    private readonly splitter: SpecialTokenSplitter,
    /** Appends the ids of one raw fragment; `afterSpecial` when it starts the text or follows a special token. */
    private readonly fragment: (text: string, afterSpecial: boolean, out: number[]) => void,
    /** The bytes a token writes (llama.cpp's token_to_piece with special tokens kept). */
    private readonly pieceOf: (id: number) => Uint8Array,
    private readonly around: Around,
  ) {}

  encode(text: string, options: { add_special_tokens?: boolean } = {}): { ids: number[] } {
    const addSpecial = options.add_special_tokens ?? true;
    const out: number[] = [];
    if (addSpecial && this.around.bos !== undefined) out.push(this.around.bos);
    let afterSpecial = true;
    for (const f of this.splitter.split(text.replace(LONE_SURROGATE, "\uFFFD"))) {
      if (typeof f === "number") {
        out.push(f);
        afterSpecial = true;
      } else {
        this.fragment(f, afterSpecial, out);
        afterSpecial = false;
      }
    }
    if (addSpecial && this.around.eos !== undefined) out.push(this.around.eos);
    return { ids: out };
  }

  decode(ids: number[], options: { skip_special_tokens?: boolean; clean_up_tokenization_spaces?: boolean } = {}): string {
    const parts: Uint8Array[] = [];
    let total = 0;
    let first = true;
    for (const id of ids) {
      const t = this.types[id];
      if (t === undefined) throw new RangeError(`token id ${id} is not in the vocabulary of ${this.tokens.length} tokens`);
      if (t === GgmlTokenType.UNUSED || t === GgmlTokenType.UNDEFINED) continue;
      if (options.skip_special_tokens && (t === GgmlTokenType.CONTROL || t === GgmlTokenType.UNKNOWN)) continue;
      let piece = this.pieceOf(id);
      if (first && this.around.stripLeadingSpace && piece[0] === 0x20) piece = piece.subarray(1);
      first = false;
      parts.push(piece);
      total += piece.length;
    }
    const bytes = new Uint8Array(total);
    let at = 0;
    for (const p of parts) {
      bytes.set(p, at);
      at += p.length;
    }
    const text = this.decoder.decode(bytes);
    return options.clean_up_tokenization_spaces ? cleanSpaces(text) : text;
  }

  token_to_id(token: string): number | undefined {
    return this.ids.get(token);
  }

  id_to_token(id: number): string | undefined {
    return this.tokens[id];
  }

  get_vocab(): Map<string, number> {
    return this.ids;
  }

  /**
   * Each id's bytes for a grammar's byte-level matcher: what decoding the id alone without special tokens
   * writes (control, unknown and unused tokens none), SentencePiece's "▁" as a space.
   */
  tokenBytes(vocabSize: number): TokenBytes {
    const pieces: Uint8Array[] = [];
    let total = 0;
    for (let id = 0; id < vocabSize; id++) {
      const t = this.types[id];
      const silent = t === undefined || t === GgmlTokenType.CONTROL || t === GgmlTokenType.UNKNOWN || t === GgmlTokenType.UNUSED || t === GgmlTokenType.UNDEFINED;
      const p = silent ? new Uint8Array(0) : this.pieceOf(id);
      pieces.push(p);
      total += p.length;
    }
    const data = new Uint8Array(total);
    const offsets = new Uint32Array(vocabSize + 1);
    let at = 0;
    pieces.forEach((p, id) => {
      offsets[id] = at;
      data.set(p, at);
      at += p.length;
    });
    offsets[vocabSize] = at;
    return { data, offsets };
  }
}

/**
 * llama.cpp's clean_spaces: the space before ? ! . , goes, a lone apostrophe between spaces loses both, and
 * the space before 's 'm 're 've goes.
 */
function cleanSpaces(text: string): string {
  return text
    .replace(/ ([?!.,])/g, "$1")
    .replace(/ ' /g, "'")
    .replace(/ '(s|m|re|ve)/g, "'$1");
}
