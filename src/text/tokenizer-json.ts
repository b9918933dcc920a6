// Checks a parsed tokenizer.json (and the parts of tokenizer_config.json the tokenizer reads) before
// @huggingface/tokenizers builds from them. The library trusts its input: a malformed file loads and
// encodes everything to one id, fails later on the first prompt that meets the bad entry, or fails with an
// internal message ("x.split is not a function"). Here each rule is checked once, at load, with a message
// naming the key. Regular expressions are checked by regex-safety.ts.
import { backtrackingRisk } from "./regex-safety.js";

/**
 * Token ids at most this (2^22 = 4,194,304): the library sizes its id -> token table by the largest id,
 * and the largest vocabularies in use hold about 260k tokens.
 */
export const MAX_TOKEN_ID = 2 ** 22;

/**
 * Characters of one special token (an added token of tokenizer.json; a control, user-defined or unknown token
 * of a GGUF vocabulary). Every prompt is searched for them, at a cost per position that grows with their
 * length, and @huggingface/tokenizers keeps them in a trie of about 190 bytes per character. Real ones are
 * short: Gemma 3's longest is 31 characters, Llama 3's 30.
 */
export const MAX_SPECIAL_TOKEN_CHARS = 256;

/** Characters of all added tokens of a tokenizer.json together (Gemma 3's 6,414 special tokens: 75,784). */
export const MAX_ADDED_TOKEN_CHARS = 2 ** 18;

/** Entries of tokenizer_config.json's additional_special_tokens (real lists hold a few hundred at most). */
export const MAX_ADDITIONAL_SPECIAL_TOKENS = 1024;

export class TokenizerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TokenizerError";
  }
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const isId = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0 && v <= MAX_TOKEN_ID;
const show = (v: unknown): string => {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? s.slice(0, 57) + "..." : s;
};

/**
 * Throws a TokenizerError for a tokenizer.json the library would mishandle. Returns the object to build
 * from (`added_tokens` defaulted to an empty list, which the library requires).
 */
export function checkTokenizerJson(tj: unknown): Record<string, unknown> {
  const fail = (msg: string): never => {
    throw new TokenizerError(`tokenizer.json: ${msg}`);
  };
  if (!isRecord(tj) || !("model" in tj)) fail('not a Hugging Face tokenizer (no "model" key)');
  const t = tj as Record<string, unknown>;
  const model = t.model;
  if (!isRecord(model)) fail(`"model" must be an object, got ${show(model)}`);
  const m = model as Record<string, unknown>;
  const type = m.type;
  if (type !== undefined && !["BPE", "WordPiece", "Unigram", "WordLevel"].includes(type as string)) {
    fail(`model.type ${show(type)} is not supported (BPE, WordPiece, Unigram, WordLevel)`);
  }
  const vocab = m.vocab;
  if (type === "Unigram" || (type === undefined && Array.isArray(vocab))) {
    // Unigram: [[piece, score], ...], ids by position.
    if (!Array.isArray(vocab) || vocab.length === 0) fail("model.vocab of a Unigram model must be a non-empty list of [piece, score] pairs");
    const list = vocab as unknown[];
    if (list.length > MAX_TOKEN_ID) fail(`model.vocab has ${list.length} entries, more than ${MAX_TOKEN_ID}`);
    list.forEach((e, i) => {
      if (!Array.isArray(e) || e.length !== 2 || typeof e[0] !== "string" || typeof e[1] !== "number" || !Number.isFinite(e[1])) {
        fail(`model.vocab[${i}] must be a [piece, score] pair of a string and a finite number, got ${show(e)}`);
      }
    });
    if (m.unk_id !== undefined && m.unk_id !== null && !(isId(m.unk_id) && (m.unk_id as number) < list.length)) {
      fail(`model.unk_id ${show(m.unk_id)} is not an index of model.vocab`);
    }
  } else {
    // BPE, WordPiece, WordLevel: {token: id}.
    if (!isRecord(vocab)) fail(`model.vocab must be an object mapping tokens to ids, got ${show(vocab)}`);
    const entries = Object.entries(vocab as Record<string, unknown>);
    if (entries.length === 0) fail("model.vocab is empty");
    for (const [token, id] of entries) {
      if (!isId(id)) fail(`model.vocab[${show(token)}] must be a token id (an integer in [0, ${MAX_TOKEN_ID}]), got ${show(id)}`);
    }
    for (const key of ["unk_token", "continuing_subword_prefix", "end_of_word_suffix"]) {
      if (m[key] !== undefined && m[key] !== null && typeof m[key] !== "string") fail(`model.${key} must be a string or null, got ${show(m[key])}`);
    }
  }
  if (type === "BPE" || (type === undefined && "merges" in m)) {
    const merges = m.merges;
    if (!Array.isArray(merges)) fail(`model.merges must be a list, got ${show(merges)}`);
    (merges as unknown[]).forEach((e, i) => {
      const pair = typeof e === "string" ? e.split(" ") : e;
      if (!Array.isArray(pair) || pair.length !== 2 || pair.some((p) => typeof p !== "string" || p.length === 0)) {
        fail(`model.merges[${i}] must be "left right" or ["left", "right"], got ${show(e)}`);
      }
    });
  }

  const added = t.added_tokens ?? [];
  if (!Array.isArray(added)) fail(`"added_tokens" must be a list, got ${show(added)}`);
  let addedChars = 0;
  (added as unknown[]).forEach((a, i) => {
    if (!isRecord(a)) fail(`added_tokens[${i}] must be an object, got ${show(a)}`);
    const e = a as Record<string, unknown>;
    if (typeof e.content !== "string" || e.content.length === 0) fail(`added_tokens[${i}].content must be a non-empty string, got ${show(e.content)}`);
    const content = e.content as string;
    if (content.length > MAX_SPECIAL_TOKEN_CHARS) fail(`added_tokens[${i}].content has ${content.length} characters; added tokens have at most ${MAX_SPECIAL_TOKEN_CHARS}`);
    addedChars += content.length;
    if (addedChars > MAX_ADDED_TOKEN_CHARS) fail(`added_tokens hold more than ${MAX_ADDED_TOKEN_CHARS} characters in all (at added_tokens[${i}])`);
    if (!isId(e.id)) fail(`added_tokens[${i}].id must be a token id (an integer in [0, ${MAX_TOKEN_ID}]), got ${show(e.id)}`);
    for (const flag of ["special", "normalized", "lstrip", "rstrip", "single_word"]) {
      if (e[flag] !== undefined && typeof e[flag] !== "boolean") fail(`added_tokens[${i}].${flag} must be true or false, got ${show(e[flag])}`);
    }
  });

  for (const key of ["fuse_unk", "byte_fallback", "ignore_merges"]) {
    if (m[key] !== undefined && m[key] !== null && typeof m[key] !== "boolean") fail(`model.${key} must be true or false, got ${show(m[key])}`);
  }
  for (const part of ["normalizer", "pre_tokenizer", "post_processor", "decoder"]) {
    const v = t[part];
    if (v !== undefined && v !== null) checkComponent(v, part, fail);
    checkPatterns(v, part, fail);
  }
  return { ...t, added_tokens: added };
}

/** Lists of sub-components, by the key a Sequence keeps them under. */
const SEQUENCE_KEYS = ["normalizers", "pretokenizers", "processors", "decoders"];
/** Fields of normalizers, pre-tokenizers, post-processors and decoders, by name, and what they must hold. */
const FIELD_KINDS: Record<string, "string" | "boolean" | "count" | "positive" | "string-or-null" | "boolean-or-null"> = {
  content: "string",
  prepend: "string",
  replacement: "string",
  str_rep: "string",
  prepend_scheme: "string",
  behavior: "string",
  suffix: "string",
  prefix: "string",
  pad_token: "string",
  word_delimiter_token: "string",
  precompiled_charsmap: "string-or-null",
  add_prefix_space: "boolean",
  trim_offsets: "boolean",
  use_regex: "boolean",
  invert: "boolean",
  individual_digits: "boolean",
  strip_left: "boolean",
  strip_right: "boolean",
  cleanup: "boolean",
  lowercase: "boolean",
  clean_text: "boolean",
  handle_chinese_chars: "boolean",
  strip_accents: "boolean-or-null",
  start: "count",
  stop: "count",
  // FixedLength splits the text every `length` characters: 0 would never advance.
  length: "positive",
};

/** A normalizer / pre-tokenizer / post-processor / decoder object, its fields and its sub-components. */
function checkComponent(v: unknown, path: string, fail: (msg: string) => never): void {
  if (!isRecord(v) || typeof v.type !== "string") fail(`${path} must be null or an object with a "type", got ${show(v)}`);
  const c = v as Record<string, unknown>;
  for (const [key, kind] of Object.entries(FIELD_KINDS)) {
    const x = c[key];
    if (x === undefined) continue;
    const ok =
      kind === "string" ? typeof x === "string"
      : kind === "string-or-null" ? x === null || typeof x === "string"
      : kind === "boolean" ? typeof x === "boolean"
      : kind === "boolean-or-null" ? x === null || typeof x === "boolean"
      : kind === "count" ? Number.isSafeInteger(x) && (x as number) >= 0
      : Number.isSafeInteger(x) && (x as number) >= 1;
    if (!ok) fail(`${path}.${key} must be ${kind === "count" ? "an integer >= 0" : kind === "positive" ? "an integer >= 1" : kind.replace("-or-", " or ").replace(/^(string|boolean)/, "a $1")}, got ${show(x)}`);
  }
  if ((c.type === "Split" || c.type === "Replace") && c.pattern === undefined) fail(`${path} (${c.type}) has no "pattern"`);
  for (const key of SEQUENCE_KEYS) {
    if (c[key] === undefined) continue;
    if (!Array.isArray(c[key])) fail(`${path}.${key} must be a list, got ${show(c[key])}`);
    (c[key] as unknown[]).forEach((e, i) => checkComponent(e, `${path}.${key}[${i}]`, fail));
  }
  if (c.type === "TemplateProcessing") {
    for (const key of ["single", "pair"]) {
      const list = c[key];
      if (list === undefined && key === "pair") continue;
      if (!Array.isArray(list)) fail(`${path}.${key} must be a list, got ${show(list)}`);
      (list as unknown[]).forEach((e, i) => {
        const special = isRecord(e) && isRecord(e.SpecialToken) && typeof e.SpecialToken.id === "string" && Number.isSafeInteger(e.SpecialToken.type_id);
        const sequence = isRecord(e) && isRecord(e.Sequence) && (e.Sequence.id === "A" || e.Sequence.id === "B") && Number.isSafeInteger(e.Sequence.type_id);
        if (!special && !sequence) {
          fail(`${path}.${key}[${i}] must be {"SpecialToken": {"id": string, "type_id": integer}} or {"Sequence": {"id": "A" or "B", "type_id": integer}}, got ${show(e)}`);
        }
      });
    }
  }
  for (const key of ["sep", "cls"]) {
    const x = c[key];
    if (x !== undefined && !(Array.isArray(x) && x.length === 2 && typeof x[0] === "string" && isId(x[1]))) fail(`${path}.${key} must be [token, id], got ${show(x)}`);
  }
}

/** Every {"Regex": ...} / {"String": ...} pattern inside `v` (Split, Replace), with its path for messages. */
function checkPatterns(v: unknown, path: string, fail: (msg: string) => never): void {
  if (Array.isArray(v)) {
    v.forEach((e, i) => checkPatterns(e, `${path}[${i}]`, fail));
    return;
  }
  if (!isRecord(v)) return;
  if ("pattern" in v) {
    const p = v.pattern;
    if (!isRecord(p) || (typeof p.Regex !== "string" && typeof p.String !== "string")) {
      fail(`${path}.pattern must be {"Regex": string} or {"String": string}, got ${show(p)}`);
    }
    const regex = (p as Record<string, unknown>).Regex;
    if (typeof regex === "string") {
      const risk = backtrackingRisk(regex);
      if (risk !== null) {
        fail(`${path}.pattern.Regex is refused, as it could backtrack for minutes on a short text (${risk}): ${show(regex)}`);
      }
    }
  }
  for (const [k, e] of Object.entries(v)) if (k !== "pattern") checkPatterns(e, `${path}.${k}`, fail);
}

/** Throws for tokenizer_config.json values the library would trip over. */
export function checkTokenizerConfig(cfg: Record<string, unknown>): void {
  const fail = (msg: string): never => {
    throw new TokenizerError(`tokenizer_config.json: ${msg}`);
  };
  for (const key of ["bos_token", "eos_token", "unk_token", "pad_token"]) {
    const v = cfg[key];
    if (v !== undefined && v !== null && typeof v !== "string" && !(isRecord(v) && typeof v.content === "string")) {
      fail(`${key} must be a string, an {"content": string} token or null, got ${show(v)}`);
    }
  }
  const extra = cfg.additional_special_tokens;
  if (extra !== undefined && extra !== null) {
    if (!Array.isArray(extra) || extra.some((v) => typeof v !== "string" && !(isRecord(v) && typeof v.content === "string"))) {
      fail(`additional_special_tokens must be a list of strings or {"content": string} tokens, got ${show(extra)}`);
    }
    // The library checks each against every special token before it (quadratic in the list).
    const list = extra as unknown[];
    if (list.length > MAX_ADDITIONAL_SPECIAL_TOKENS) fail(`additional_special_tokens has ${list.length} entries, more than ${MAX_ADDITIONAL_SPECIAL_TOKENS}`);
    list.forEach((v, i) => {
      const text = typeof v === "string" ? v : (v as { content: string }).content;
      if (text.length > MAX_SPECIAL_TOKEN_CHARS) fail(`additional_special_tokens[${i}] has ${text.length} characters; special tokens have at most ${MAX_SPECIAL_TOKEN_CHARS}`);
    });
  }
  for (const key of ["add_bos_token", "add_eos_token", "clean_up_tokenization_spaces", "remove_space", "do_lowercase_and_remove_accent"]) {
    if (cfg[key] !== undefined && cfg[key] !== null && typeof cfg[key] !== "boolean") fail(`${key} must be true or false, got ${show(cfg[key])}`);
  }
}
