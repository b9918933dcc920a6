// The UTF-8 bytes each token id stands for, read from the tokenizer.json model it was built from. A grammar
// matcher works on bytes (src/grammar/), so it needs every token as the byte string it appends to the output.
//
// Two vocabulary kinds spell their tokens differently:
// - Byte-level BPE (GPT-2, Llama 3, SmolLM2, the bundled model): every byte is written as one printable
//   character of GPT-2's byte alphabet (the printable Latin-1 bytes as themselves, the other 68 bytes as
//   U+0100 upwards), so a token string maps back to bytes character by character.
// - SentencePiece (Llama 2, Gemma, AMD-Llama): a token is UTF-8 text with "▁" for a space, and with byte
//   fallback the 256 tokens "<0x00>".."<0xFF>" stand for single bytes.
// Added tokens hold their text as it is (not in the byte alphabet); special ones (BOS, EOS, control
// tokens) stand for no bytes at all, like the vocabulary padding ids.
import { TokenizerError } from "./tokenizer-json.js";
import { BYTE_LEVEL_BYTES } from "./byte-level.js";

/** Token id i's bytes are `data[offsets[i] .. offsets[i + 1])`; ids that stand for no bytes have an empty range. */
export interface TokenBytes {
  data: Uint8Array;
  offsets: Uint32Array;
}

type Spelling = "byte-level" | "sentencepiece";

/** The component types of a normalizer / pre-tokenizer / decoder, Sequences flattened. */
function componentTypes(c: unknown): string[] {
  if (typeof c !== "object" || c === null) return [];
  const r = c as Record<string, unknown>;
  const inner = ["normalizers", "pretokenizers", "decoders"].flatMap((k) => (Array.isArray(r[k]) ? (r[k] as unknown[]).flatMap(componentTypes) : []));
  return typeof r.type === "string" ? [r.type, ...inner] : inner;
}

function spellingOf(tj: Record<string, unknown>): Spelling | null {
  const decoder = componentTypes(tj.decoder);
  if (decoder.includes("ByteLevel")) return "byte-level";
  if (decoder.includes("Metaspace") || decoder.includes("ByteFallback") || decoder.includes("Replace")) return "sentencepiece";
  if (componentTypes(tj.pre_tokenizer).includes("ByteLevel")) return "byte-level";
  if (componentTypes(tj.pre_tokenizer).includes("Metaspace") || componentTypes(tj.normalizer).includes("Replace")) return "sentencepiece";
  return null;
}

const utf8 = new TextEncoder();
const BYTE_TOKEN = /^<0x([0-9A-Fa-f]{2})>$/;

/**
 * The byte table of a checked tokenizer.json (see checkTokenizerJson) for ids below `vocabSize`. Throws a
 * TokenizerError for a vocabulary whose tokens are not byte strings (WordPiece's "##" pieces, a model
 * without a byte-level or SentencePiece decoder).
 */
export function tokenBytesOf(tj: Record<string, unknown>, vocabSize: number): TokenBytes {
  const spelling = spellingOf(tj);
  const model = tj.model as Record<string, unknown>;
  if (spelling === null || model.type === "WordPiece" || model.type === "WordLevel") {
    throw new TokenizerError("tokenizer.json: its tokens are not byte strings (grammars need a byte-level BPE or SentencePiece vocabulary)");
  }
  const byteFallback = model.byte_fallback === true || componentTypes(tj.decoder).includes("ByteFallback");
  const alphabet = BYTE_LEVEL_BYTES;
  const pieces: (Uint8Array | null)[] = new Array(vocabSize).fill(null);

  const regular = (piece: string): Uint8Array | null => {
    if (spelling === "byte-level") {
      const out = new Uint8Array(piece.length);
      for (let i = 0; i < piece.length; i++) {
        const c = piece.charCodeAt(i);
        const b = c < alphabet.length ? alphabet[c] : -1;
        if (b < 0) return null; // not a byte-level spelling: no bytes rather than wrong ones
        out[i] = b;
      }
      return out;
    }
    const byte = byteFallback ? BYTE_TOKEN.exec(piece) : null;
    if (byte) return Uint8Array.of(parseInt(byte[1], 16));
    return utf8.encode(piece.replaceAll("▁", " "));
  };

  const vocab = model.vocab;
  if (Array.isArray(vocab)) {
    vocab.forEach((entry, id) => {
      if (id < vocabSize) pieces[id] = regular((entry as [string, number])[0]);
    });
  } else {
    for (const [piece, id] of Object.entries(vocab as Record<string, number>)) if (id < vocabSize) pieces[id] = regular(piece);
  }
  for (const a of (tj.added_tokens ?? []) as Array<{ id: number; content: string; special?: boolean }>) {
    if (a.id < vocabSize) pieces[a.id] = a.special === true ? null : utf8.encode(a.content);
  }

  let total = 0;
  for (const p of pieces) total += p?.length ?? 0;
  const data = new Uint8Array(total);
  const offsets = new Uint32Array(vocabSize + 1);
  let at = 0;
  for (let id = 0; id < vocabSize; id++) {
    offsets[id] = at;
    const p = pieces[id];
    if (p !== null) {
      data.set(p, at);
      at += p.length;
    }
  }
  offsets[vocabSize] = at;
  return { data, offsets };
}
