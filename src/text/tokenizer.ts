// Text <-> token ids through the checkpoint's own tokenizer.json (@huggingface/tokenizers), or through an
// engine of the same shape for a GGUF file's own vocabulary (src/text/ggml-tokenizer.ts).
//
// BOS: tokenizer_config.json's `add_bos_token` decides when it is present (the ids are then encoded
// without special tokens and BOS prepended by hand, so a post-processor cannot add a second one);
// otherwise the tokenizer.json post-processor does what it was built to do.
import { Tokenizer } from "@huggingface/tokenizers";
import { TokenizerError, checkTokenizerConfig, checkTokenizerJson } from "./tokenizer-json.js";
import { tokenBytesOf, type TokenBytes } from "./token-bytes.js";

export interface TokenizerFiles {
  /** Parsed tokenizer.json. */
  tokenizer: unknown;
  /** Parsed tokenizer_config.json, or {} when the folder has none. */
  tokenizerConfig: Record<string, unknown>;
}

/**
 * The part of @huggingface/tokenizers' Tokenizer this class uses, so another implementation can stand in for
 * it (the library's names). encode with add_special_tokens adds what the tokenizer's post-processor adds.
 */
export interface TokenizerEngine {
  encode(text: string, options?: { add_special_tokens?: boolean }): { ids: number[] };
  decode(ids: number[], options?: { skip_special_tokens?: boolean; clean_up_tokenization_spaces?: boolean }): string;
  token_to_id(token: string): number | undefined;
  id_to_token(id: number): string | undefined;
  get_vocab(withAddedTokens?: boolean): Map<string, number>;
  /** Each id's bytes, as TextTokenizer.tokenBytes gives them; without it they are read from the tokenizer.json. */
  tokenBytes?(vocabSize: number): TokenBytes;
}

/** An engine already built (and checked) elsewhere, with the tokenizer_config.json fields it comes with. */
export interface TokenizerEngineFiles {
  engine: TokenizerEngine;
  tokenizerConfig: Record<string, unknown>;
}

export class TextTokenizer {
  readonly bosTokenId: number | null;
  readonly bosToken: string | null;
  readonly eosToken: string | null;
  private readonly tok: TokenizerEngine;
  private readonly addBos: boolean | null;
  /** transformers' cleanup (" !" -> "!") is lossy, so it runs only when tokenizer_config.json asks for it. */
  private readonly cleanUpSpaces: boolean;
  /** Ids below this bound that have a token string; ids without one are vocabulary padding. */
  private readonly known: Set<number>;
  /** The checked tokenizer.json, kept for the byte table (built on first use); null with an engine. */
  private readonly json: Record<string, unknown> | null;
  private bytes: TokenBytes | null = null;

  constructor(files: TokenizerFiles | TokenizerEngineFiles) {
    const cfg = files.tokenizerConfig;
    if (typeof cfg !== "object" || cfg === null || Array.isArray(cfg)) throw new TokenizerError("tokenizer_config.json: expected a JSON object");
    checkTokenizerConfig(cfg);
    if ("engine" in files) {
      this.tok = files.engine;
      this.json = null;
    } else {
      // Malformed files are refused here, with the key named, rather than inside the library (see tokenizer-json.ts).
      const tj = checkTokenizerJson(files.tokenizer);
      this.json = tj;
      const extra = cfg["additional_special_tokens"];
      const libraryConfig = Array.isArray(extra) ? { ...cfg, additional_special_tokens: extra.map(specialTokenString) } : cfg;
      try {
        this.tok = new Tokenizer(tj, libraryConfig);
      } catch (err) {
        throw new TokenizerError(`tokenizer.json: cannot be built: ${(err as Error).message.split("\n")[0]}`);
      }
    }
    this.bosToken = specialTokenString(cfg["bos_token"]);
    this.eosToken = specialTokenString(cfg["eos_token"]);
    this.bosTokenId = this.bosToken === null ? null : (this.tok.token_to_id(this.bosToken) ?? null);
    this.cleanUpSpaces = cfg["clean_up_tokenization_spaces"] === true;
    this.addBos = typeof cfg["add_bos_token"] === "boolean" ? (cfg["add_bos_token"] as boolean) : null;
    if (this.addBos && this.bosTokenId === null) {
      throw new Error(`tokenizer_config.json: add_bos_token is true but bos_token ${JSON.stringify(this.bosToken)} is not in the vocabulary`);
    }
    // get_vocab() reports a gap in the ids as one entry for the gap's last id; only ids with a token
    // string are real.
    this.known = new Set([...this.tok.get_vocab(true).values()].filter((id) => this.tok.id_to_token(id) !== undefined));
  }

  /** Encodes text; `addSpecialTokens` false gives the bare ids (for chat templates that write BOS themselves). */
  encode(text: string, addSpecialTokens = true): number[] {
    if (!addSpecialTokens || this.addBos !== null) {
      const ids = this.tok.encode(text, { add_special_tokens: false }).ids;
      return addSpecialTokens && this.addBos ? [this.bosTokenId as number, ...ids] : ids;
    }
    return this.tok.encode(text).ids;
  }

  decode(ids: readonly number[], skipSpecialTokens = false): string {
    // The library refuses an empty list; an empty continuation is simply empty text.
    if (ids.length === 0) return "";
    return this.tok.decode([...ids], { skip_special_tokens: skipSpecialTokens, clean_up_tokenization_spaces: this.cleanUpSpaces });
  }

  /** The token string of an id, or undefined for vocabulary padding rows. */
  tokenString(id: number): string | undefined {
    return this.tok.id_to_token(id);
  }

  /**
   * Each id's UTF-8 bytes (see token-bytes.ts) for ids below `vocabSize`, built once; special tokens and
   * padding ids have none. Throws a TokenizerError for a vocabulary whose tokens are not byte strings.
   */
  tokenBytes(vocabSize: number): TokenBytes {
    if (this.bytes === null || this.bytes.offsets.length !== vocabSize + 1) this.bytes = this.tok.tokenBytes?.(vocabSize) ?? tokenBytesOf(this.json!, vocabSize);
    return this.bytes;
  }

  /** True when no text maps to `id`: such rows of the embedding table must never be sampled. */
  isPadding(id: number): boolean {
    return !this.known.has(id);
  }

  /**
   * Throws when a token id is not below the model's vocab_size (its embedding table has no row for it);
   * checked at load, before any prompt could contain that token.
   */
  checkFitsVocabulary(vocabSize: number): void {
    let max = -1;
    for (const id of this.known) if (id > max) max = id;
    if (max >= vocabSize) {
      throw new TokenizerError(`tokenizer.json: token id ${max} (${JSON.stringify(this.tok.id_to_token(max))}) is not below the model's vocab_size ${vocabSize}`);
    }
  }

  /** Number of ids that have a token string (regular + added tokens). */
  get size(): number {
    return this.known.size;
  }
}

/** tokenizer_config.json writes special tokens either as strings or as AddedToken objects. */
function specialTokenString(v: unknown): string | null {
  if (typeof v === "string") return v;
  if (typeof v === "object" && v !== null && typeof (v as { content?: unknown }).content === "string") {
    return (v as { content: string }).content;
  }
  return null;
}
