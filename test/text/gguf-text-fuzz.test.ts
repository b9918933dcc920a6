// Fuzzing the text keys of a GGUF file (beside test/checkpoint/gguf-fuzz.test.ts for its structure and
// test/text/fuzz.test.ts for tokenizer.json): small llama.cpp files, one with a byte-level (gpt2)
// vocabulary and one with a SentencePiece one, whose tokenizer.ggml.* and tokenizer.chat_template keys are
// replaced, dropped, or edited item by item (tokens emptied, repeated, lengthened, retyped; scores made
// NaN; merges shuffled and invented), and whose template is assembled from Jinja fragments and whitespace
// runs. Each case is read as a model, then its tokenizer encodes and decodes a few texts and its chat
// template renders a conversation: every step ends well or with one line of the project's own (the file's
// refusal naming it, or a tokenizer or template error), quickly; never an internal message, a hang or a
// crash.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import fc from "fast-check";
import { memorySource } from "../../src/env/byte-source.js";
import { GgufFile } from "../../src/model/checkpoint/gguf.js";
import { bool, f32, f32s, i32s, str, strings, u32, u64, type GgufValue } from "../../src/model/checkpoint/gguf-writer.js";
import { readAnyGgufModel } from "../../src/session/open.js";
import { classify } from "../helpers/json-mutation.js";
import { gpt2Vocab, removeAll, tinyLlamaGguf } from "../helpers/tiny-llama-gguf.js";
import { rewriteGguf } from "../checkpoint/gguf-helpers.js";

/** Slowest single case allowed: far above the tens of ms a case takes, far below a hang. */
const CASE_MS = 5000;
const TEXTS = ["hello world", "", "<|im_end|>x<s>", "a\u0004b\u0000", "😀 123 ²", " ".repeat(50) + "\n\n\t", "▁x <0x41>"];
const MESSAGES = [
  { role: "system" as const, content: "Be brief." },
  { role: "user" as const, content: "Hi <|im_end|>" },
  { role: "assistant" as const, content: "Hello." },
  { role: "user" as const, content: "Bye" },
];
/** Messages every clean failure starts with: the file's refusal, the tokenizer's, the template's. */
const PREFIXES = ["fuzz.gguf: ", "the text holds", "chat template"];

const TEMPLATE = "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/** Reads the file as a model, then uses its text side; the outcome or the unexpected failure. */
async function exercise(bytes: Uint8Array): Promise<string> {
  const t0 = performance.now();
  let outcome: string;
  try {
    const m = await readAnyGgufModel(await GgufFile.open(memorySource("fuzz.gguf", bytes)));
    // Without tokenizer.ggml.model the file has no tokenizer (and no template): id-level work only.
    const tokenizer = m.tokenizer;
    outcome = classify(() => {
      if (tokenizer === null) return;
      for (const t of TEXTS) {
        const ids = tokenizer.encode(t);
        tokenizer.decode(ids);
        tokenizer.decode(ids, true);
      }
      if (m.chatTemplate !== null) tokenizer.encode(m.chatTemplate.render(MESSAGES), false);
    }, PREFIXES);
  } catch (e) {
    outcome = classify(() => {
      throw e;
    }, PREFIXES);
  }
  const ms = performance.now() - t0;
  return ms > CASE_MS ? `a case took ${ms.toFixed(0)} ms` : outcome;
}

const KEYS = [
  "tokenizer.ggml.model",
  "tokenizer.ggml.pre",
  "tokenizer.ggml.tokens",
  "tokenizer.ggml.token_type",
  "tokenizer.ggml.scores",
  "tokenizer.ggml.merges",
  "tokenizer.ggml.bos_token_id",
  "tokenizer.ggml.eos_token_id",
  "tokenizer.ggml.eot_token_id",
  "tokenizer.ggml.unknown_token_id",
  "tokenizer.ggml.padding_token_id",
  "tokenizer.ggml.fim_rep_token_id",
  "tokenizer.ggml.add_bos_token",
  "tokenizer.ggml.add_eos_token",
  "tokenizer.ggml.add_space_prefix",
  "tokenizer.chat_template",
];

const token = fc.oneof(
  fc.string({ maxLength: 6 }),
  fc.constantFrom("", "<|im_end|>", "<s>", "</s>", "▁", "▁▁", "<0x41>", "h", "he", "llo", "<end_of_turn>", "<|endoftext|>", "\u0000", "😀", "x".repeat(300), "a".repeat(200) + "b"),
);
const scalar: fc.Arbitrary<GgufValue> = fc.oneof(
  fc.string({ maxLength: 10 }).map(str),
  fc.constantFrom("gpt2", "llama", "smollm", "llama-bpe", "default", "gpt-4o", "qwen2", "bert", "").map(str),
  fc.integer({ min: 0, max: 600 }).map(u32),
  fc.constantFrom(2 ** 32 - 1, 2 ** 31, 511, 512, 259).map(u32),
  fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map(u64),
  fc.integer({ min: -3, max: 600 }).map((v) => ({ type: "i32", value: v }) as GgufValue),
  fc.constantFrom(NaN, Infinity, -1, 0.5).map(f32),
  fc.boolean().map(bool),
);
const array: fc.Arbitrary<GgufValue> = fc.oneof(
  fc.array(token, { maxLength: 600 }).map(strings),
  fc.array(fc.integer({ min: -2, max: 8 }), { maxLength: 600 }).map(i32s),
  fc.array(fc.oneof(fc.float(), fc.constant(NaN)), { maxLength: 600 }).map(f32s),
  fc.array(fc.boolean(), { maxLength: 20 }).map((b) => ({ type: "array", itemType: "bool", value: Uint8Array.from(b, Number) }) as GgufValue),
);
const TEMPLATE_PIECES = ["{{ ", " }}", "{% ", " %}", "{%- ", " -%}", "for m in messages", "endfor", "if m['role'] == 'user'", "endif", "m['content']", "bos_token", "eos_token", "'x'", "|upper", "|trim", "range(", "10**9", ")", "raise_exception('no')", "~", "*", "+", "[", "]", "(", "loop.index", "{#", "#}", "set s = s ~ s", "generation", "endgeneration", " ".repeat(3000), "\n".repeat(500), "\t"];
const template = fc.array(fc.constantFrom(...TEMPLATE_PIECES), { maxLength: 30 }).map((p) => str(p.join("")));

/** One change to a metadata list: a key replaced, dropped, or one item of its array edited. */
type Change = { key: string; how: "replace"; value: GgufValue } | { key: string; how: "drop" } | { key: string; how: "item"; index: number; value: string | number };
const change: fc.Arbitrary<Change> = fc.oneof(
  fc.record({ key: fc.constantFrom(...KEYS), how: fc.constant("replace" as const), value: fc.oneof(scalar, array) }),
  fc.record({ key: fc.constantFrom(...KEYS), how: fc.constant("drop" as const) }),
  fc.record({ key: fc.constant("tokenizer.chat_template"), how: fc.constant("replace" as const), value: template }),
  fc.record({ key: fc.constantFrom("tokenizer.ggml.tokens", "tokenizer.ggml.merges"), how: fc.constant("item" as const), index: fc.nat({ max: 600 }), value: token }),
  fc.record({ key: fc.constantFrom("tokenizer.ggml.token_type", "tokenizer.ggml.scores"), how: fc.constant("item" as const), index: fc.nat({ max: 600 }), value: fc.oneof(fc.integer({ min: -1, max: 7 }), fc.constant(NaN)) }),
);

function apply(entries: Array<[string, GgufValue]>, c: Change): void {
  const i = entries.findIndex(([k]) => k === c.key);
  if (c.how === "drop") {
    if (i >= 0) entries.splice(i, 1);
    return;
  }
  if (c.how === "replace") {
    if (i >= 0) entries[i] = [c.key, c.value];
    else entries.push([c.key, c.value]);
    return;
  }
  if (i < 0) return;
  const v = entries[i][1];
  if (v.type !== "array" || v.value.length === 0) return;
  const at = c.index % v.value.length;
  if (v.itemType === "string" && typeof c.value === "string") {
    const items = [...(v.value as string[])];
    items[at] = c.value;
    entries[i] = [c.key, strings(items)];
  } else if ((v.itemType === "i32" || v.itemType === "f32") && typeof c.value === "number") {
    const items = v.itemType === "i32" ? Int32Array.from(v.value as Int32Array) : Float32Array.from(v.value as Float32Array);
    items[at] = c.value;
    entries[i] = [c.key, { type: "array", itemType: v.itemType, value: items }];
  }
}

describe("fuzzing a GGUF file's tokenizer and template keys", () => {
  const cleanup: string[] = [];
  const bases = new Map<string, Uint8Array>();
  beforeAll(async () => {
    const gpt2 = await tinyLlamaGguf((md) => {
      gpt2Vocab(md, 512);
      md.set("tokenizer.chat_template", str(TEMPLATE));
    }, cleanup);
    const spm = await tinyLlamaGguf((md) => md.set("tokenizer.chat_template", str(TEMPLATE)), cleanup);
    bases.set("gpt2", new Uint8Array(readFileSync(gpt2)));
    bases.set("llama", new Uint8Array(readFileSync(spm)));
  }, 120_000);
  afterAll(() => removeAll(cleanup));

  it("the unmutated files read, encode, decode and render", async () => {
    for (const b of bases.values()) expect(await exercise(b)).toBe("ok");
  });

  for (const kind of ["gpt2", "llama"]) {
    it(`${kind} vocabulary: every mutated file is served or refused with one line, quickly`, async () => {
      const outcomes = new Map<string, number>();
      await fc.assert(
        fc.asyncProperty(fc.array(change, { minLength: 1, maxLength: 3 }), async (changes) => {
          const bytes = await rewriteGguf(bases.get(kind)!, { metadata: (entries) => changes.forEach((c) => apply(entries, c)) });
          const r = await exercise(bytes);
          outcomes.set(r, (outcomes.get(r) ?? 0) + 1);
          expect(r === "ok" || r === "refused" ? "clean" : r).toBe("clean");
        }),
        { numRuns: 300, seed: kind === "gpt2" ? 41 : 42 },
      );
      // The mutations reach both outcomes.
      expect(outcomes.get("refused")).toBeGreaterThan(30);
      expect(outcomes.get("ok")).toBeGreaterThan(30);
    }, 300_000);
  }
});
