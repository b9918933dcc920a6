// The tokenizers of the two real hub files (scripts/hub-models.ts), built from their tokenizer.ggml.* keys,
// against llama.cpp itself (node-llama-cpp, loading the same file's vocabulary): the same ids for a corpus
// of hard strings and a few hundred random mixtures of them, the same text back, the same BOS and
// end-of-generation tokens; and each file's chat format rendered and tokenized. The model weights are not
// loaded: these are the text side alone. Run in CI; elsewhere skipped without the files or the peer.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import { GgufFile } from "../../src/model/checkpoint/gguf.js";
import { openFileSource } from "../../src/node/file-source.js";
import { ChatTemplate, GEMMA_TURNS_TEMPLATE } from "../../src/text/chat-template.js";
import { tokenizerFromGgml, type GgmlText } from "../../src/text/ggml-tokenizer.js";
import type { NlcLlama } from "../../bench/node-llama-cpp.js";
import { GEMMA3_270M_Q4_K_M, SMOLLM2_135M_INSTRUCT_Q4_1, hubFilesPresent, hubPath } from "../helpers/hub-files.js";
import { nodeLlamaCppPresent, peerLlama, peerVocab, type NlcVocabModel } from "../helpers/peer-nlc.js";

/** Hard strings: scripts, whitespace runs, digits, code, emoji, both files' special-token text, nothing. */
const CORPUS = [
  "",
  "Hello, world! How are you doing today?",
  "I'm sure they'll say it's fine; we've done it, you'd agree. DON'T WON'T I'LL WE'VE",
  "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
  "const x = { a: [1, 2, 3], b: \"str\" }; // comment\n\tindented\twith\ttabs\n\t\t\t}",
  "<div class=\"x\"><table><tr><td>1</td></tr></table></div> <b>bold</b> </s> <s>",
  "Numbers: 1234567890 3.14159265358979 1,000,000 -42 0x1F 2024-12-31 12345678901234567890",
  "Other digits: ²³ ½ ① ٣٤٥ १२३ ๑๒๓ Ⅻ",
  "   leading spaces, trailing spaces   ",
  " ",
  "\n",
  "\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\nx",
  " ".repeat(40) + "x" + " ".repeat(3),
  "\t".repeat(35) + "tabs",
  "multiple   spaces\n\n\nnewlines\r\nwindows  \t mixed \u00a0 nbsp \u3000 ideographic \u2009 thin",
  "Grüße aus München! Straße, Äpfel, Öl, übermäßig. e\u0301 a\u0308 Z\u0351\u0352\u0353algo",
  "我们今天去公园散步，天气非常好。日本語のテキスト：東京は大きな都市です。カタカナとひらがな。",
  "한국어 텍스트입니다. ไทย ภาษา مرحبا بالعالم، كيف حالك؟ שלום עולם",
  "Русский текст: привет, мир! Ελληνικά: γειά σου κόσμε. हिन्दी: नमस्ते दुनिया",
  "Emoji: 😀🎉👍🏽 👨‍👩‍👧‍👦 🇩🇪 ❤️ 🫠 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
  "zero\u200bwidth\u200djoiner\ufeffbom\u2060word joiner",
  "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
  "<|endoftext|><repo_name>x<file_sep><filename>y.py<|im_end|>",
  "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nHello<end_of_turn>",
  "<bos><eos><pad><unk><mask>[multimodal]<unused0><start_of_image><end_of_image>",
  "<|im_star <start_of_tur <0x41> ▁▁ ▁x <s >",
  "lone \ud800 surrogate \udc00 and a pair \ud83d\ude00",
  "a".repeat(1000),
  "URL: https://example.com/path?query=1&b=two#frag email@example.org @user #tag $100 50% a+b=c ^~|`",
];

/** Pieces the random mixtures are drawn from: the corpus's ingredients, in short. */
const PIECES = ["a", "The", " the", "'s", "'LL", " ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", "\u00a0", "0", "12", "1234", "²", "٣", ".", ",", "!", "...", "(", "{", "}", "<", ">", "</", "=>", "$", "`", "'", "\"", "é", "e\u0301", "我", "日本", "한", "ไ", "ا", "Ж", "😀", "👍🏽", "🇩🇪", "▁", "\ud800", "<|im_start|>", "<|im_end|>", "<start_of_turn>", "<end_of_turn>", "<s>", "</s>", "<table>", "<mask>", "def", "fn("];
const MIXTURES = fc.sample(fc.array(fc.constantFrom(...PIECES), { minLength: 1, maxLength: 30 }).map((p) => p.join("")), { numRuns: 400, seed: 24 });

const FILES = [SMOLLM2_135M_INSTRUCT_Q4_1, GEMMA3_270M_Q4_K_M];
const ready = FILES.every((m) => hubFilesPresent(m)) && nodeLlamaCppPresent();

describe.runIf(ready)("the real files' tokenizers against llama.cpp", () => {
  let llama: NlcLlama;
  const text = new Map<string, GgmlText>();
  const peer = new Map<string, NlcVocabModel>();

  beforeAll(async () => {
    llama = await peerLlama();
    for (const m of FILES) {
      const file = await GgufFile.open(await openFileSource(hubPath(m)));
      try {
        text.set(m.file, tokenizerFromGgml(file.metadata));
      } finally {
        await file.close();
      }
      peer.set(m.file, await peerVocab(llama, hubPath(m)));
    }
  }, 120_000);

  afterAll(async () => {
    for (const p of peer.values()) await p.dispose();
    await llama?.dispose();
  });

  for (const m of FILES) {
    describe(m.file, () => {
      it("encodes every corpus string and mixture to llama.cpp's ids (special tokens parsed), and decodes them to its text", () => {
        const ours = text.get(m.file)!.tokenizer;
        const theirs = peer.get(m.file)!;
        for (const t of [...CORPUS, ...MIXTURES]) {
          const ids = Array.from(theirs.tokenize(t, true));
          expect(ours.encode(t, false), JSON.stringify(t)).toEqual(ids);
          expect(ours.decode(ids, false), JSON.stringify(t)).toBe(theirs.detokenize(ids, true));
          expect(ours.decode(ids, true), JSON.stringify(t)).toBe(theirs.detokenize(ids, false));
        }
      });

      it("adds BOS as llama.cpp does, and ends generation at exactly llama.cpp's end-of-generation tokens", () => {
        const t = text.get(m.file)!;
        const theirs = peer.get(m.file)!;
        const bos = theirs.tokens.shouldPrependBosToken ? [theirs.tokens.bos!] : [];
        expect(t.tokenizer.encode("Hello")).toEqual([...bos, ...Array.from(theirs.tokenize("Hello", false))]);
        expect(t.tokenizer.bosTokenId).toBe(theirs.tokens.bos);
        const eog: number[] = [];
        for (let id = 0; id < t.tokenizer.size; id++) if (theirs.isEogToken(id)) eog.push(id);
        expect(t.endOfGeneration).toEqual(eog);
      });
    });
  }

  it("SmolLM2: the file's ChatML template, each marker one token, ending the turn at <|im_end|>", () => {
    const t = text.get(SMOLLM2_135M_INSTRUCT_Q4_1.file)!;
    expect(t.chatTemplateIsDefault).toBe(false);
    const template = new ChatTemplate(t.chatTemplate!, { bos_token: t.tokenizer.bosToken, eos_token: t.tokenizer.eosToken });
    const prompt = template.render([{ role: "user", content: "What is 2 + 2?" }]);
    expect(prompt).toBe("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nWhat is 2 + 2?<|im_end|>\n<|im_start|>assistant\n");
    const ids = t.tokenizer.encode(prompt, false);
    expect(ids).toEqual(Array.from(peer.get(SMOLLM2_135M_INSTRUCT_Q4_1.file)!.tokenize(prompt, true)));
    const [start, end] = ["<|im_start|>", "<|im_end|>"].map((s) => t.tokenizer.encode(s, false));
    expect([start.length, end.length]).toEqual([1, 1]);
    expect(ids.filter((i) => i === start[0])).toHaveLength(3);
    expect(t.endOfGeneration).toContain(end[0]);
  });

  it("Gemma 3 (no template in the file): Gemma's turns, each marker one token, ending the turn at <end_of_turn>", () => {
    const t = text.get(GEMMA3_270M_Q4_K_M.file)!;
    expect(t.chatTemplate).toBe(GEMMA_TURNS_TEMPLATE);
    expect(t.chatTemplateIsDefault).toBe(true);
    const template = new ChatTemplate(t.chatTemplate!, { bos_token: t.tokenizer.bosToken, eos_token: t.tokenizer.eosToken });
    const prompt = template.render([
      { role: "system", content: "Answer briefly." },
      { role: "user", content: "Hi!" },
      { role: "assistant", content: "Hello." },
      { role: "user", content: "What is the capital of France?" },
    ]);
    expect(prompt).toBe(
      "<bos><start_of_turn>user\nAnswer briefly.\n\nHi!<end_of_turn>\n<start_of_turn>model\nHello.<end_of_turn>\n<start_of_turn>user\nWhat is the capital of France?<end_of_turn>\n<start_of_turn>model\n",
    );
    const ids = t.tokenizer.encode(prompt, false);
    expect(ids).toEqual(Array.from(peer.get(GEMMA3_270M_Q4_K_M.file)!.tokenize(prompt, true)));
    expect(ids[0]).toBe(t.tokenizer.bosTokenId);
    const [start, end] = ["<start_of_turn>", "<end_of_turn>"].map((s) => t.tokenizer.encode(s, false));
    expect([start.length, end.length]).toEqual([1, 1]);
    expect(ids.filter((i) => i === start[0])).toHaveLength(4);
    expect(t.endOfGeneration).toContain(end[0]);
  });
});
