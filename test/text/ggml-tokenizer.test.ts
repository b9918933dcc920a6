// tokenizerFromGgml on small hand-built vocabularies, written as GGUF files: each pre-tokenizer's splits,
// score-ordered SentencePiece merges, special tokens, BOS/EOS, end-of-generation ids, the chat template, and
// the refusals of malformed metadata. Expected ids are worked out by hand from the vocabularies below.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { CheckpointError } from "../../src/env/byte-source.js";
import { GgufMetadata } from "../../src/model/checkpoint/gguf.js";
import { bool, f32s, i32s, str, strings, u32, u8, type GgufValue } from "../../src/model/checkpoint/gguf-writer.js";
import { MAX_MERGES, MAX_SPECIAL_TOKENS, ggmlPreTokenizers, tokenizerFromGgml } from "../../src/text/ggml-tokenizer.js";
import { GEMMA_TURNS_TEMPLATE } from "../../src/text/chat-template.js";
import { backtrackingRisk } from "../../src/text/regex-safety.js";
import { TextTokenizer } from "../../src/text/tokenizer.js";
import { MAX_SPECIAL_TOKEN_CHARS, TokenizerError } from "../../src/text/tokenizer-json.js";
import { ggufMetadata } from "../helpers/ggml-vocab.js";
import { BYTE_CHARS } from "../helpers/tiny-llama-gguf.js";

const NORMAL = 1;
const CONTROL = 3;
const USER_DEFINED = 4;

/** A byte-level vocabulary: the 256 byte characters (id = byte), then these tokens. */
const BPE_EXTRA: Array<[string, number]> = [
  ["he", NORMAL], // 256
  ["ll", NORMAL], // 257
  ["hell", NORMAL], // 258
  ["hello", NORMAL], // 259
  ["Ġhello", NORMAL], // 260
  ["12", NORMAL], // 261
  ["123", NORMAL], // 262
  ["abc", NORMAL], // 263: no merge builds it
  ["__proto__", NORMAL], // 264
  ["<|bos|>", CONTROL], // 265
  ["<|eos|>", CONTROL], // 266
  ["<tool>", USER_DEFINED], // 267
];
const BPE_MERGES = ["h e", "l l", "he ll", "hell o", "Ġ hello", "1 2", "12 3"];
const id = (t: string) => BYTE_CHARS.indexOf(t) >= 0 ? BYTE_CHARS.indexOf(t) : 256 + BPE_EXTRA.findIndex(([s]) => s === t);

function bpeEntries(pre: string | null, extra: Array<[string, GgufValue | undefined]> = []): Array<[string, GgufValue]> {
  const kv: Array<[string, GgufValue]> = [
    ["tokenizer.ggml.model", str("gpt2")],
    ["tokenizer.ggml.tokens", strings([...BYTE_CHARS, ...BPE_EXTRA.map(([t]) => t)])],
    ["tokenizer.ggml.token_type", i32s([...BYTE_CHARS.map(() => NORMAL), ...BPE_EXTRA.map(([, t]) => t)])],
    ["tokenizer.ggml.merges", strings(BPE_MERGES)],
    ["tokenizer.ggml.bos_token_id", u32(265)],
    ["tokenizer.ggml.eos_token_id", u32(266)],
  ];
  if (pre !== null) kv.push(["tokenizer.ggml.pre", str(pre)]);
  return edit(kv, extra);
}

/** Sets (or with `undefined`, removes) keys of `kv`. */
function edit(kv: Array<[string, GgufValue]>, changes: Array<[string, GgufValue | undefined]>): Array<[string, GgufValue]> {
  const m = new Map(kv);
  for (const [k, v] of changes) {
    if (v === undefined) m.delete(k);
    else m.set(k, v);
  }
  return [...m];
}

async function build(kv: Array<[string, GgufValue]>) {
  return tokenizerFromGgml(await ggufMetadata(kv));
}

async function tokenizer(kv: Array<[string, GgufValue]>): Promise<TextTokenizer> {
  return (await build(kv)).tokenizer;
}

describe("byte-level BPE (tokenizer.ggml.model = gpt2)", () => {
  it("gpt-2: GPT-2's word split, then the merges in rank order", async () => {
    const tok = await tokenizer(bpeEntries("gpt-2"));
    // "hello" "Ġhello" "Ġ123" -> the last has no "Ġ 123" merge; "1212" is two "12" merges.
    expect(tok.encode("hello hello 123", false)).toEqual([259, 260, id("Ġ"), 262]);
    expect(tok.encode("1212", false)).toEqual([261, 261]);
    // Without ignore_merges a word that is itself a token is still built from its merges: none make "abc".
    expect(tok.encode("abc", false)).toEqual([id("a"), id("b"), id("c")]);
    expect(tok.decode(tok.encode("hello hello 123", false))).toBe("hello hello 123");
  });

  it("smollm: every digit on its own before the word split", async () => {
    const tok = await tokenizer(bpeEntries("smollm"));
    expect(tok.encode("hello 123", false)).toEqual([259, id("Ġ"), id("1"), id("2"), id("3")]);
  });

  it("llama-bpe: numbers in groups of at most three digits, and a word that is a token taken whole", async () => {
    const tok = await tokenizer(bpeEntries("llama-bpe"));
    expect(tok.encode("1212", false)).toEqual([261, id("1"), id("2")]);
    expect(tok.encode("121", false)).toEqual([261, id("1")]);
    expect(tok.encode("abc", false)).toEqual([263]);
    // llama.cpp adds BOS for llama-bpe when the file does not say.
    expect(tok.encode("abc")).toEqual([265, 263]);
  });

  it("default (or no tokenizer.ggml.pre): punctuation runs, then words, then digit runs cut every three digits", async () => {
    for (const pre of ["default", null]) {
      const tok = await tokenizer(bpeEntries(pre));
      expect(tok.encode("1212", false)).toEqual([261, id("1"), id("2")]);
      expect(tok.encode("12345", false)).toEqual([262, id("4"), id("5")]);
      // "he!!" : "!!" is its own piece; "he" merges.
      expect(tok.encode("he!!", false)).toEqual([256, id("!"), id("!")]);
    }
  });

  it("splits control and user-defined tokens out of the text; only control tokens are special", async () => {
    const tok = await tokenizer(bpeEntries("gpt-2"));
    const ids = tok.encode("<|bos|>hello<tool>hello<|eos|>", false);
    expect(ids).toEqual([265, 259, 267, 259, 266]);
    expect(tok.decode(ids)).toBe("<|bos|>hello<tool>hello<|eos|>");
    expect(tok.decode(ids, true)).toBe("hello<tool>hello");
  });

  it("cleans spaces on decoding as llama.cpp does for the pre-tokenizers it cleans them for", async () => {
    const clean = await tokenizer(bpeEntries("gpt-2"));
    const text = "Hi , you ' re here . he 's, 'd";
    expect(clean.decode(clean.encode(text, false))).toBe("Hi, you're here. he's, 'd");
    const kept = await tokenizer(bpeEntries("smollm"));
    expect(kept.decode(kept.encode(text, false))).toBe(text);
  });

  it("adds BOS and EOS as tokenizer.ggml.add_bos_token / add_eos_token say", async () => {
    const both = await tokenizer(bpeEntries("gpt-2", [["tokenizer.ggml.add_bos_token", bool(true)], ["tokenizer.ggml.add_eos_token", bool(true)]]));
    expect(both.encode("hello")).toEqual([265, 259, 266]);
    expect(both.encode("hello", false)).toEqual([259]);
    const none = await tokenizer(bpeEntries("llama-bpe", [["tokenizer.ggml.add_bos_token", bool(false)]]));
    expect(none.encode("hello")).toEqual([259]);
  });

  it("carries BOS, EOS and pad into tokenizerConfig, and the file's chat template", async () => {
    const b = await build(bpeEntries("smollm", [["tokenizer.chat_template", str("{{ bos_token }}x")], ["tokenizer.ggml.padding_token_id", u32(267)]]));
    expect(b.tokenizerConfig).toEqual({ clean_up_tokenization_spaces: false, bos_token: "<|bos|>", eos_token: "<|eos|>", pad_token: "<tool>" });
    expect(b.chatTemplate).toBe("{{ bos_token }}x");
    expect(b.chatTemplateIsDefault).toBe(false);
  });

  it("gives each id its bytes for grammars: normal tokens from GPT-2's alphabet, user-defined ones as written, control ones none", async () => {
    const tok = await tokenizer(bpeEntries("gpt-2"));
    const tb = tok.tokenBytes(268);
    const bytes = (ids: number[]) => Buffer.concat(ids.map((i) => tb.data.subarray(tb.offsets[i], tb.offsets[i + 1]))).toString("utf8");
    const text = "hello <tool> wörld 123";
    expect(bytes(tok.encode(text, false))).toBe(text);
    expect(tb.offsets[266] - tb.offsets[265]).toBe(0); // <|bos|>, control
    expect(bytes([id("Ġ"), 260])).toBe("  hello");
  });

  it("keeps a token named __proto__ as an ordinary token", async () => {
    const tok = await tokenizer(bpeEntries("gpt-2"));
    expect(tok.tokenString(264)).toBe("__proto__");
    expect(tok.encode("__proto__", false).length).toBeGreaterThan(1);
  });

  it("splits special tokens longest first, as llama.cpp does, where a leftmost-longest match would differ", async () => {
    // "<tool>" (user-defined) and "l>hello" (control, longer): in "<tool>hello" llama.cpp claims "l>hello"
    // first, and "<tool>" no longer fits.
    const tok = await tokenizer(bpeEntries("gpt-2", [
      ["tokenizer.ggml.tokens", strings([...BYTE_CHARS, ...BPE_EXTRA.map(([t]) => t), "l>hello"])],
      ["tokenizer.ggml.token_type", i32s([...BYTE_CHARS.map(() => NORMAL), ...BPE_EXTRA.map(([, t]) => t), CONTROL])],
    ]));
    expect(tok.encode("<tool>hello", false)).toEqual([id("<"), id("t"), id("o"), id("o"), 268]);
    expect(tok.encode("<tool>x", false)).toEqual([267, id("x")]);
  });

  it("drops a merge listed again (its first rank counts, as in llama.cpp)", async () => {
    const once = await tokenizer(bpeEntries("gpt-2"));
    const twice = await tokenizer(bpeEntries("gpt-2", [["tokenizer.ggml.merges", strings([...BPE_MERGES, ...BPE_MERGES, "h e"])]]));
    for (const text of ["hello hello 123", "hell", "1212"]) expect(twice.encode(text, false)).toEqual(once.encode(text, false));
  });

  it("refuses text holding a byte the vocabulary lacks, instead of dropping it as llama.cpp does", async () => {
    // Without "Ą" (byte 0x04) the vocabulary still encodes ordinary text.
    const tokens = [...BYTE_CHARS.map((c) => (c === BYTE_CHARS[4] ? "<unused>" : c)), ...BPE_EXTRA.map(([t]) => t)];
    const tok = await tokenizer(bpeEntries("gpt-2", [["tokenizer.ggml.tokens", strings(tokens)]]));
    expect(tok.encode("hello", false)).toEqual([259]);
    expect(() => tok.encode("a\u0004b", false)).toThrow(/the text holds the byte 0x04, which this vocabulary has no token for/);
  });

  it("builds only pre-tokenizer regexes the regex-safety rules accept", () => {
    const patterns: string[] = [];
    const walk = (v: unknown): void => {
      if (Array.isArray(v)) v.forEach(walk);
      else if (typeof v === "object" && v !== null) {
        const p = (v as { pattern?: { Regex?: string } }).pattern;
        if (typeof p?.Regex === "string") patterns.push(p.Regex);
        Object.values(v).forEach(walk);
      }
    };
    for (const splits of ggmlPreTokenizers().values()) patterns.push(...splits);
    expect(patterns.length).toBeGreaterThanOrEqual(5);
    for (const p of patterns) expect(backtrackingRisk(p), p).toBeNull();
  });
});

/** A SentencePiece vocabulary: <unk> <s> </s>, the 256 byte tokens, then pieces with scores. */
function spmEntries(pieces: Array<[string, number]>, extra: Array<[string, GgufValue | undefined]> = []): Array<[string, GgufValue]> {
  const bytes = Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
  const kv: Array<[string, GgufValue]> = [
    ["tokenizer.ggml.model", str("llama")],
    ["tokenizer.ggml.tokens", strings(["<unk>", "<s>", "</s>", ...bytes, ...pieces.map(([p]) => p)])],
    ["tokenizer.ggml.scores", f32s([0, 0, 0, ...bytes.map(() => 0), ...pieces.map(([, s]) => s)])],
    ["tokenizer.ggml.token_type", i32s([2, CONTROL, CONTROL, ...bytes.map(() => 6), ...pieces.map(() => NORMAL)])],
    ["tokenizer.ggml.bos_token_id", u32(1)],
    ["tokenizer.ggml.eos_token_id", u32(2)],
    ["tokenizer.ggml.unknown_token_id", u32(0)],
  ];
  return edit(kv, extra);
}

describe("SentencePiece (tokenizer.ggml.model = llama)", () => {
  const P = 259; // first piece id
  const pieces = (abScore: number, bcScore: number): Array<[string, number]> => [
    ["▁", -10], // P
    ["a", -11], // P+1
    ["b", -12], // P+2
    ["c", -13], // P+3
    ["ab", abScore], // P+4
    ["bc", bcScore], // P+5
    ["▁a", -1], // P+6
  ];

  it("joins the adjacent pair whose joined piece scores highest first", async () => {
    // "▁abc": "▁a" scores highest and joins first; "▁ab" is no piece, so "b" + "c" -> "bc" follows.
    const bcFirst = await tokenizer(spmEntries(pieces(-5, -3)));
    expect(bcFirst.encode("abc", false)).toEqual([P + 6, P + 5]);
    // "▁b" is no piece: "▁" and "b" stay apart.
    expect(bcFirst.encode("b", false)).toEqual([P, P + 2]);
    const abOver = await tokenizer(spmEntries([["▁", -10], ["a", -11], ["b", -12], ["c", -13], ["ab", -3], ["bc", -5]]));
    // "▁abc" (no "▁a" piece): "ab" outscores "bc" -> "▁" "ab" "c"; swapped scores give "▁" "a" "bc".
    expect(abOver.encode("abc", false)).toEqual([P, P + 4, P + 3]);
    const bcOver = await tokenizer(spmEntries([["▁", -10], ["a", -11], ["b", -12], ["c", -13], ["ab", -5], ["bc", -3]]));
    expect(bcOver.encode("abc", false)).toEqual([P, P + 1, P + 5]);
  });

  it("writes spaces as ▁, adds BOS, falls back to bytes, and decodes back", async () => {
    const tok = await tokenizer(spmEntries(pieces(-5, -3)));
    const ids = tok.encode("a b\u00e9");
    // <s> "▁a" "▁" "b" and é as its UTF-8 bytes C3 A9 (byte token id = 3 + byte).
    expect(ids).toEqual([1, P + 6, P, P + 2, 0xc3 + 3, 0xa9 + 3]);
    expect(tok.decode(ids, true)).toBe("a b\u00e9");
    expect(tok.bosTokenId).toBe(1);
  });

  it("puts no ▁ in front without tokenizer.ggml.add_space_prefix", async () => {
    const tok = await tokenizer(spmEntries(pieces(-5, -3), [["tokenizer.ggml.add_space_prefix", bool(false)]]));
    expect(tok.encode("ab", false)).toEqual([P + 4]);
    expect(tok.encode("a b", false)).toEqual([P + 1, P, P + 2]);
    expect(tok.decode(tok.encode("a b", false))).toBe("a b");
  });

  it("joins equal scores leftmost first, each time over the symbols as they are then", async () => {
    // "aaaaa": the leftmost "aa" joins, then the next "aa" (a higher score than "aaa"); of the two "aaa"
    // candidates [aa]+[a]... only "aa" + "a" at the right is still current: "aa" "aaa".
    const tok = await tokenizer(spmEntries([["a", -10], ["aa", -1], ["aaa", -2], ["aaaa", -3]], [["tokenizer.ggml.add_space_prefix", bool(false)]]));
    expect(tok.encode("aaaa", false)).toEqual([P + 3]);
    expect(tok.encode("aaa", false)).toEqual([P + 2]);
    expect(tok.encode("aaaaa", false)).toEqual([P + 1, P + 2]);
  });

  it("encodes with a vocabulary of long normal tokens in time proportional to the text", async () => {
    const long = "x".repeat(200_000);
    const t0 = Date.now();
    const tok = await tokenizer(spmEntries([[long, -1], ["x", -2], ["xx", -1.5]]));
    expect(tok.encode("xxxxx", false).length).toBeGreaterThan(0);
    expect(Date.now() - t0).toBeLessThan(5_000);
  });

  it("puts the space after every special token, user-defined ones included, as llama.cpp does", async () => {
    const tok = await tokenizer(spmEntries([["▁", -10], ["a", -11], ["▁a", -1], ["<u>", 0]], [
      ["tokenizer.ggml.token_type", i32s([2, CONTROL, CONTROL, ...new Array(256).fill(6), NORMAL, NORMAL, NORMAL, USER_DEFINED])],
    ]));
    expect(tok.encode("a<u>a", false)).toEqual([P + 2, P + 3, P + 2]);
  });
});

describe("end of generation and the chat template", () => {
  it("ends generation at EOS, the end-of-turn key and the end-of-turn markers of the vocabulary", async () => {
    const b = await build(bpeEntries("gpt-2", [
      ["tokenizer.ggml.tokens", strings([...BYTE_CHARS, ...BPE_EXTRA.map(([t]) => t), "<|im_end|>", "<|eom_id|>", "<|file_sep|>", "<|fim_prefix|>"])],
      ["tokenizer.ggml.token_type", i32s([...BYTE_CHARS.map(() => NORMAL), ...BPE_EXTRA.map(([, t]) => t), NORMAL, CONTROL, NORMAL, NORMAL])],
      ["tokenizer.ggml.eot_token_id", u32(265)],
    ]));
    // The fill-in-the-middle file separator ends generation too, the prefix marker does not.
    expect(b.endOfGeneration).toEqual([265, 266, 268, 269, 270]);
    expect(b.tokenizer.decode([259, 270, 271], true)).toBe("hello");
    // "<|im_end|>", typed normal in the file, is made a control token as llama.cpp does: split out of the
    // text and left out when decoding without special tokens.
    expect(b.tokenizer.encode("hello<|im_end|>", false)).toEqual([259, 268]);
    expect(b.tokenizer.decode([259, 268], true)).toBe("hello");
  });

  it("gives a Gemma file without a template Gemma's turns, and nothing to other families", async () => {
    const turns = ["<start_of_turn>", "<end_of_turn>"];
    const kv = (arch: string) => [
      ["general.architecture", str(arch)],
      ...spmEntries([["▁", -1], ...turns.map((t): [string, number] => [t, 0])], [["tokenizer.ggml.token_type", i32s([2, CONTROL, CONTROL, ...new Array(256).fill(6), NORMAL, CONTROL, CONTROL])]]),
    ] as Array<[string, GgufValue]>;
    const gemma = tokenizerFromGgml(new GgufMetadata("g.gguf", new Map(kv("gemma3"))));
    expect(gemma.chatTemplate).toBe(GEMMA_TURNS_TEMPLATE);
    expect(gemma.chatTemplateIsDefault).toBe(true);
    expect(gemma.endOfGeneration).toEqual([2, 261]);
    expect(tokenizerFromGgml(new GgufMetadata("l.gguf", new Map(kv("llama")))).chatTemplate).toBeNull();
  });
});

describe("malformed tokenizer.ggml.* metadata", () => {
  const cases: Array<[string, Array<[string, GgufValue]>, RegExp]> = [
    ["no tokenizer at all", [["general.name", str("x")]], /no tokenizer\.ggml\.model/],
    ["an unknown model", bpeEntries(null, [["tokenizer.ggml.model", str("bert")]]), /tokenizer\.ggml\.model "bert" is not supported \("gpt2" \(byte-level BPE\) and "llama" \(SentencePiece\) are\)/],
    ["an unknown pre-tokenizer", bpeEntries("qwen9"), /tokenizer\.ggml\.pre "qwen9" is not supported \(default, llama3, .*smollm.* are\)/],
    ["tokens that are not strings", bpeEntries(null, [["tokenizer.ggml.tokens", i32s([1, 2])]]), /tokenizer\.ggml\.tokens is i32\[\], expected string\[\]/],
    ["no tokens", bpeEntries(null, [["tokenizer.ggml.tokens", undefined]]), /tokenizer\.ggml\.tokens is missing/],
    ["an empty token", bpeEntries(null, [["tokenizer.ggml.tokens", strings([...BYTE_CHARS.slice(0, 255), "", ...BPE_EXTRA.map(([t]) => t)])]]), /tokens\[255\] is empty/],
    ["a repeated token", bpeEntries(null, [["tokenizer.ggml.tokens", strings([...BYTE_CHARS.slice(0, 255), "a", ...BPE_EXTRA.map(([t]) => t)])]]), /tokens\[255\] "a" repeats token 97/],
    ["token types of the wrong type", bpeEntries(null, [["tokenizer.ggml.token_type", { type: "array", itemType: "u8", value: new Uint8Array(268) } as GgufValue]]), /token_type is u8\[\], expected i32\[\]/],
    ["token types of the wrong length", bpeEntries(null, [["tokenizer.ggml.token_type", i32s([1, 1, 1])]]), /token_type has 3 entries for 268 tokens/],
    ["an unknown token type", bpeEntries(null, [["tokenizer.ggml.token_type", i32s([9, ...new Array(267).fill(1)])]]), /token_type\[0\] is 9/],
    ["a BOS id past the vocabulary", bpeEntries(null, [["tokenizer.ggml.bos_token_id", u32(268)]]), /bos_token_id 268 is not a token id \(the vocabulary has 268 tokens\)/],
    ["a BOS id that is a string", bpeEntries(null, [["tokenizer.ggml.bos_token_id", str("1")]]), /bos_token_id is string, expected an integer token id/],
    ["add_bos_token of the wrong type", bpeEntries(null, [["tokenizer.ggml.add_bos_token", u8(1)]]), /add_bos_token is u8, expected bool/],
    ["add_bos_token without a BOS id", bpeEntries(null, [["tokenizer.ggml.add_bos_token", bool(true)], ["tokenizer.ggml.bos_token_id", undefined]]), /add_bos_token is true but there is no tokenizer\.ggml\.bos_token_id/],
    ["llama-bpe (BOS by default) without a BOS id", bpeEntries("llama-bpe", [["tokenizer.ggml.bos_token_id", undefined]]), /add_bos_token is absent \(llama\.cpp then adds BOS/],
    ["no merges", bpeEntries(null, [["tokenizer.ggml.merges", undefined]]), /tokenizer\.ggml\.merges is missing/],
    ["merges that are not strings", bpeEntries(null, [["tokenizer.ggml.merges", i32s([1])]]), /merges is i32\[\], expected string\[\]/],
    ["a merge without a space", bpeEntries(null, [["tokenizer.ggml.merges", strings(["h e", "hell"])]]), /merges\[1\] "hell" does not name two tokens/],
    ["a merge naming a non-token", bpeEntries(null, [["tokenizer.ggml.merges", strings(["h zz"])]]), /merges\[0\] "h zz" does not name two tokens/],
    ["a merge joining to a non-token", bpeEntries(null, [["tokenizer.ggml.merges", strings(["x y"])]]), /merges\[0\] "x y" joins to "xy", which is not a token/],
    ["a SentencePiece vocabulary without scores", spmEntries([["a", -1]], [["tokenizer.ggml.scores", undefined]]), /tokenizer\.ggml\.scores is missing/],
    ["scores of the wrong length", spmEntries([["a", -1]], [["tokenizer.ggml.scores", f32s([0, 0])]]), /scores has 2 entries for 260 tokens/],
    ["a score that is NaN", spmEntries([["a", NaN]]), /scores\[259\] is NaN, not a finite number/],
    ["scores that are strings", spmEntries([["a", -1]], [["tokenizer.ggml.scores", strings(["0"])]]), /scores is string\[\], expected f32\[\] or i32\[\]/],
    ["a byte-level vocabulary without the bytes of ASCII text", bpeEntries(null, [["tokenizer.ggml.tokens", strings([...BYTE_CHARS.map((c, b) => (b === 0x68 ? "<no h>" : c)), ...BPE_EXTRA.map(([t]) => t)])], ["tokenizer.ggml.merges", strings([])]]), /tokenizer\.ggml\.tokens has no token "h" for the byte 0x68 \("h"\)/],
    ["a control token too long", bpeEntries(null, [["tokenizer.ggml.tokens", strings([...BYTE_CHARS, ...BPE_EXTRA.slice(0, -3).map(([t]) => t), "<|" + "x".repeat(MAX_SPECIAL_TOKEN_CHARS) + "|>", "<|eos|>", "<tool>"])]]), new RegExp(`tokens\\[265\\] "<\\|x+\\.\\.\\." \\(${MAX_SPECIAL_TOKEN_CHARS + 4} characters\\) is a control token of ${MAX_SPECIAL_TOKEN_CHARS + 4} characters; special tokens have at most ${MAX_SPECIAL_TOKEN_CHARS}`)],
    ["too many merges", bpeEntries(null, [["tokenizer.ggml.merges", strings(new Array(MAX_MERGES + 1).fill("h e"))]]), new RegExp(`merges has ${MAX_MERGES + 1} entries, more than ${MAX_MERGES}`)],
    ["too many special tokens", bpeEntries(null, [["tokenizer.ggml.tokens", strings([...BYTE_CHARS, ...BPE_EXTRA.map(([t]) => t), ...Array.from({ length: MAX_SPECIAL_TOKENS }, (_, i) => `<${i}>`)])], ["tokenizer.ggml.token_type", i32s([...BYTE_CHARS.map(() => NORMAL), ...BPE_EXTRA.map(([, t]) => t), ...new Array(MAX_SPECIAL_TOKENS).fill(CONTROL)])]]), new RegExp(`marks more than ${MAX_SPECIAL_TOKENS} tokens control, user-defined or unknown`)],
  ];
  for (const [what, kv, message] of cases) {
    it(`refuses ${what} with one line`, async () => {
      const err = await build(kv).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(CheckpointError);
      expect((err as Error).message).toMatch(message);
      expect((err as Error).message).not.toContain("\n");
    });
  }
});

describe("properties", () => {
  /** Random merges over the byte alphabet: each joins two tokens present so far into a new one. */
  const vocabulary = fc.array(fc.tuple(fc.nat(), fc.nat()), { maxLength: 60 }).map((pairs) => {
    const tokens = [...BYTE_CHARS];
    const merges: string[] = [];
    for (const [a, b] of pairs) {
      const left = tokens[a % tokens.length];
      const right = tokens[b % tokens.length];
      if (tokens.includes(left + right)) continue;
      tokens.push(left + right);
      merges.push(`${left} ${right}`);
    }
    return { tokens, merges };
  });
  const pre = fc.constantFrom(...ggmlPreTokenizers().keys());
  const text = fc.oneof(fc.string({ unit: "grapheme", maxLength: 30 }), fc.string({ unit: "binary", maxLength: 30 }), fc.stringMatching(/^[hel0-9 \n.!]{0,30}$/));

  it("any byte-level vocabulary and pre-tokenizer encodes any text to ids that decode back to it", () => {
    fc.assert(
      fc.property(vocabulary, pre, fc.array(text, { minLength: 1, maxLength: 5 }), ({ tokens, merges }, p, texts) => {
        const md = new GgufMetadata("t.gguf", new Map<string, GgufValue>([
          ["tokenizer.ggml.model", str("gpt2")],
          ["tokenizer.ggml.pre", str(p)],
          ["tokenizer.ggml.tokens", strings([...tokens, "<|bos|>"])],
          ["tokenizer.ggml.token_type", i32s([...tokens.map(() => NORMAL), CONTROL])],
          ["tokenizer.ggml.merges", strings(merges)],
          ["tokenizer.ggml.bos_token_id", u32(tokens.length)],
        ]));
        const b = tokenizerFromGgml(md);
        const tok = b.tokenizer;
        for (const t of texts) {
          const ids = tok.encode(t, false);
          expect(ids.every((id) => id >= 0 && id < tokens.length)).toBe(true);
          // Cleanup (" ." -> ".", for the pre-tokenizers llama.cpp cleans spaces for) is lossy on purpose.
          if (b.tokenizerConfig.clean_up_tokenization_spaces && / ['?!.,]/.test(t)) continue;
          expect(tok.decode(ids)).toBe(t);
        }
      }),
      { numRuns: 150, seed: 21 },
    );
  });

  it("any SentencePiece vocabulary with byte fallback encodes any text to ids that decode back to it", () => {
    const pieces = fc.uniqueArray(fc.tuple(fc.stringMatching(/^[▁abc\u00e9]{1,4}$/), fc.float({ min: -100, max: 0, noNaN: true })), { selector: ([p]) => p, maxLength: 30 });
    fc.assert(
      fc.property(pieces, fc.array(text, { minLength: 1, maxLength: 5 }), (ps, texts) => {
        // Every SentencePiece vocabulary has "▁" (a space) as a piece.
        const withSpace: Array<[string, number]> = ps.some(([p]) => p === "▁") ? ps : [["▁", -1], ...ps];
        const md = new GgufMetadata("t.gguf", new Map(spmEntries(withSpace)));
        const tok = tokenizerFromGgml(md).tokenizer;
        for (const t of texts) {
          // Text that spells a special token is that token, not its characters; a "▁" in the text is a
          // space to SentencePiece.
          if (/<s>|<\/s>|<unk>|▁/.test(t)) continue;
          expect(tok.decode(tok.encode(t), true)).toBe(t);
        }
      }),
      { numRuns: 150, seed: 22 },
    );
  });

  it("metadata with any key replaced by any value builds, or is refused with one CheckpointError line", () => {
    const base = bpeEntries("llama-bpe", [["tokenizer.chat_template", str("x")]]);
    const value: fc.Arbitrary<GgufValue> = fc.oneof(
      fc.string({ maxLength: 8 }).map(str),
      fc.nat({ max: 300 }).map(u32),
      fc.integer({ min: -5, max: 300 }).map((v) => ({ type: "i32", value: v }) as GgufValue),
      fc.boolean().map(bool),
      fc.array(fc.string({ maxLength: 4 }), { maxLength: 300 }).map(strings),
      fc.array(fc.integer({ min: -2, max: 8 }), { maxLength: 300 }).map(i32s),
      fc.array(fc.float({ noDefaultInfinity: false }), { maxLength: 300 }).map(f32s),
    );
    const keys = fc.constantFrom(...base.map(([k]) => k), "tokenizer.ggml.scores", "tokenizer.ggml.add_eos_token", "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.add_space_prefix");
    fc.assert(
      fc.property(fc.array(fc.tuple(keys, fc.option(value)), { minLength: 1, maxLength: 3 }), (changes) => {
        const md = new GgufMetadata("t.gguf", new Map(edit(base, changes.map(([k, v]) => [k, v ?? undefined]))));
        let built;
        try {
          built = tokenizerFromGgml(md);
        } catch (err) {
          expect(err).toBeInstanceOf(CheckpointError);
          expect((err as Error).message).not.toContain("\n");
          return;
        }
        try {
          const tok = built.tokenizer;
          tok.decode(tok.encode("hello 123 <|bos|> x"));
        } catch (err) {
          expect(err).toBeInstanceOf(TokenizerError);
        }
      }),
      { numRuns: 400, seed: 23 },
    );
  });
});
