import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import fc from "fast-check";
import { TextTokenizer } from "../../src/text/tokenizer.js";
import { ChatTemplate, TemplateLimitError, findChatTemplate } from "../../src/text/chat-template.js";
import { loadText } from "../../src/node/bundled.js";
import { backtrackingRisk } from "../../src/text/regex-safety.js";

const tokenizerJson = JSON.parse(readFileSync("models/shakespeare-tiny/tokenizer.json", "utf8")) as unknown;
const tokenizerConfig = JSON.parse(readFileSync("models/shakespeare-tiny/tokenizer_config.json", "utf8")) as Record<string, unknown>;

describe("tokenizer", () => {
  const tok = loadText("models/shakespeare-tiny").tokenizer;

  it("prepends exactly one BOS, as tokenizer_config.json asks", () => {
    const ids = tok.encode("ROMEO:\nWhat say you?");
    expect(ids[0]).toBe(1000);
    expect(ids.filter((i) => i === 1000)).toHaveLength(1);
    expect(tok.encode("ROMEO:", false)[0]).not.toBe(1000);
  });

  it("leaves BOS out when add_bos_token is false", () => {
    const t = new TextTokenizer({ tokenizer: tokenizerJson, tokenizerConfig: { ...tokenizerConfig, add_bos_token: false } });
    expect(t.encode("ROMEO:")).toEqual(tok.encode("ROMEO:", false));
  });

  it("round-trips any text through encode and decode", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme", maxLength: 40 }), (s) => {
        expect(tok.decode(tok.encode(s, false))).toBe(s);
      }),
      // " !" once came back as "!" (the library's default space cleanup); keep it as a fixed example.
      { numRuns: 200, examples: [[" !"], ["a , b ."], ["don 't"]] },
    );
  });

  it("knows the vocabulary padding rows: ids 1013-1023 have no token string", () => {
    expect(tok.isPadding(1012)).toBe(false);
    for (let id = 1013; id < 1024; id++) expect(tok.isPadding(id)).toBe(true);
    expect(tok.size).toBe(1013);
  });

  it("treats every id of a gap in the ids as padding", () => {
    const json = JSON.parse(JSON.stringify(tokenizerJson)) as { added_tokens: Array<{ id: number; content: string }> };
    json.added_tokens.find((t) => t.content === "<|finetune_right_pad|>")!.id = 1020;
    const t = new TextTokenizer({ tokenizer: json, tokenizerConfig });
    for (let id = 1012; id < 1020; id++) expect(t.isPadding(id)).toBe(true);
    expect(t.isPadding(1020)).toBe(false);
  });

  it("rejects a file that is not a tokenizer", () => {
    expect(() => new TextTokenizer({ tokenizer: { version: "1.0" }, tokenizerConfig: {} })).toThrow(/not a Hugging Face tokenizer/);
  });
});

describe("chat template", () => {
  const source = readFileSync("test/fixtures/llama4-chat-template.jinja", "utf8");

  it("renders the Llama-4 format", () => {
    const t = new ChatTemplate(source, { bos_token: "<|begin_of_text|>", eos_token: "<|eot|>" });
    const text = t.render([
      { role: "system", content: "Speak as Shakespeare." },
      { role: "user", content: "Who art thou?" },
    ]);
    expect(text).toBe(
      "<|begin_of_text|><|header_start|>system<|header_end|>\n\nSpeak as Shakespeare.<|eot|>" +
        "<|header_start|>user<|header_end|>\n\nWho art thou?<|eot|><|header_start|>assistant<|header_end|>\n\n",
    );
  });

  it("is found in chat_template.jinja first, then in tokenizer_config.json", () => {
    expect(findChatTemplate({ chat_template: "B" }, "A")).toBe("A");
    expect(findChatTemplate({ chat_template: "B" }, null)).toBe("B");
    expect(findChatTemplate({ chat_template: [{ name: "tool_use", template: "T" }, { name: "default", template: "D" }] }, null)).toBe("D");
    expect(findChatTemplate({}, null)).toBeNull();
  });

  it("reports a template that does not parse", () => {
    expect(() => new ChatTemplate("{% for %}", { bos_token: null, eos_token: null })).toThrow(/chat template does not parse/);
  });
});

describe("chat template limits", () => {
  const special = { bos_token: "<s>", eos_token: "</s>" };
  const hi = [{ role: "user" as const, content: "Hi" }];
  const CHATML = `{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}`;
  // The shape of Llama 3.1's template: namespace, slicing, strftime_now, raise_exception, tojson.
  const LLAMA3 = `{{- bos_token }}
{%- set ns = namespace(sys='') %}
{%- if messages[0]['role'] == 'system' %}{%- set ns.sys = messages[0]['content'] | trim %}{%- set messages = messages[1:] %}{%- endif %}
{{- '<|start_header_id|>system<|end_header_id|>\n\nToday Date: ' + strftime_now('%d %b %Y') + '\n\n' + ns.sys + '<|eot_id|>' }}
{%- for message in messages %}
{%- if message['role'] not in ['user', 'assistant'] %}{{ raise_exception('bad role ' + message['role']) }}{% endif %}
{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}
{%- if loop.last and message['role'] == 'user' %}{{- '' ~ (messages | length) | tojson }}{% endif %}
{%- endfor %}
{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{%- endif %}`;

  it("still renders ChatML and Llama-3 style templates", () => {
    expect(new ChatTemplate(CHATML, special).render(hi)).toBe("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    const out = new ChatTemplate(LLAMA3, special).render([{ role: "system", content: " Be brief. " }, ...hi]);
    expect(out).toMatch(/^<s><\|start_header_id\|>system<\|end_header_id\|>\n\nToday Date: \d\d [A-Z][a-z]{2} \d{4}\n\nBe brief\.<\|eot_id\|>/);
    expect(out.endsWith("<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>1<|start_header_id|>assistant<|end_header_id|>\n\n")).toBe(true);
    expect(() => new ChatTemplate(LLAMA3, special).render([{ role: "tool", content: "x" }])).toThrow(/chat template failed: chat template raised: bad role tool/);
  });

  it("renders a 200-turn conversation well inside the limits", () => {
    const turns = Array.from({ length: 200 }, (_, i) => ({ role: (i % 2 ? "assistant" : "user") as "user", content: "word ".repeat(100) }));
    expect(new ChatTemplate(LLAMA3, special).render(turns).length).toBeGreaterThan(200 * 500);
  });

  const refuse = (source: string, message: RegExp) => {
    const t0 = performance.now();
    expect(() => new ChatTemplate(source, special).render(hi)).toThrow(message);
    expect(performance.now() - t0).toBeLessThan(5000);
  };

  it("refuses loops past the step budget: range(10^9), nested 10^5 loops, a loop over a long list", () => {
    refuse("{% for i in range(1000000000) %}x{% endfor %}", /number 1000000000 is out of range/);
    refuse("{% for i in range(999999) %}{% endfor %}{% for i in range(999999) %}{% endfor %}", /runs too long/);
    refuse("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", /runs too long: .* past 1000000 steps/);
    refuse("{% set xs = range(900000) | list %}{% for a in xs %}{% endfor %}", /runs too long: a for loop/);
  });

  it("refuses strings, lists and widths past the size caps", () => {
    refuse("{% set s = 'x' %}{% for i in range(40) %}{% set s = s ~ s %}{% endfor %}{{ s }}", /output too large: a string of 16777216 characters/);
    refuse("{{ 'a' | indent(500000000, true) }}", /number 500000000 is out of range/);
    refuse("{{ 'a' | indent(999 * 999 * 999, true) }}", /number 997002999 is out of range/);
    expect(() => new ChatTemplate("{% for i in range(2000000) %}{% endfor %}", special).render(hi)).toThrow(TemplateLimitError);
  });

  it("refuses, before the template library preprocesses it, a source too long or with whitespace runs it would backtrack through", () => {
    // 100,000 spaces took the library's preprocessing about 20 s here; a million, hours.
    refuse("{{ x }}" + " ".repeat(100_000) + "{{ y }}", /chat template has too much whitespace in long runs \(the longest 100000 characters\)/);
    refuse("{{ x }}".repeat(40_000), /chat template has 280000 characters, more than 262144/);
    // Indentation and blank lines of the size real templates have are nothing.
    const indented = Array.from({ length: 300 }, (_, i) => `${" ".repeat(i % 40)}{{- 'x' }}\n\n`).join("");
    expect(new ChatTemplate(indented, special).render(hi).trim()).toBe("x".repeat(300));
  });

  it("says an unfinished tag is one, not the template library's internal message", () => {
    expect(() => new ChatTemplate("{{ raise_exception('no')", special)).toThrow(/^chat template does not parse: the template library fails on it \(an unfinished tag or expression\?\)$/);
  });
});

describe("malformed and hostile tokenizers are refused at load", () => {
  type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  const patched = (f: (t: Json) => void): Json => {
    const t = structuredClone(tokenizerJson) as Json;
    f(t);
    return t;
  };
  const load = (t: unknown, cfg: Record<string, unknown> = tokenizerConfig) => () => new TextTokenizer({ tokenizer: t, tokenizerConfig: cfg });

  it("names the bad key of the vocabulary, merges and added tokens", () => {
    expect(load(patched((t) => (t.model.vocab = [1, 2])))).toThrow(/^tokenizer\.json: model\.vocab must be an object mapping tokens to ids, got \[1,2\]$/);
    expect(load(patched((t) => (t.model = { type: "Unigram", vocab: [1, 2] })))).toThrow(/model\.vocab\[0\] must be a \[piece, score\] pair/);
    expect(load(patched((t) => (t.model.vocab.x = -1)))).toThrow(/model\.vocab\["x"\] must be a token id/);
    expect(load(patched((t) => (t.model.vocab.x = 2 ** 40)))).toThrow(/model\.vocab\["x"\] must be a token id \(an integer in \[0, 4194304\]\)/);
    expect(load(patched((t) => (t.model.merges = [1, 2])))).toThrow(/^tokenizer\.json: model\.merges\[0\] must be "left right" or \["left", "right"\], got 1$/);
    expect(load(patched((t) => delete t.model.merges))).toThrow(/model\.merges must be a list/);
    expect(load(patched((t) => (t.added_tokens[0].content = 7)))).toThrow(/added_tokens\[0\]\.content must be a non-empty string/);
    expect(load(patched((t) => (t.added_tokens = "x")))).toThrow(/"added_tokens" must be a list/);
    expect(load(patched((t) => (t.pre_tokenizer = "Split")))).toThrow(/^tokenizer\.json: pre_tokenizer must be null or an object with a "type", got "Split"$/);
    expect(load(patched((t) => (t.pre_tokenizer = { type: "Nonsense" })))).toThrow(/^tokenizer\.json: cannot be built: Unknown PreTokenizer type: Nonsense$/);
    expect(load(patched((t) => (t.post_processor.single[0] = { SpecialToken: "x" })))).toThrow(/^tokenizer\.json: post_processor\.single\[0\] must be \{"SpecialToken"/);
    expect(load(patched((t) => (t.pre_tokenizer = { type: "FixedLength", length: 0 })))).toThrow(/^tokenizer\.json: pre_tokenizer\.length must be an integer >= 1, got 0$/);
    expect(load(patched((t) => (t.pre_tokenizer.pretokenizers[0].behavior = 3)))).toThrow(/^tokenizer\.json: pre_tokenizer\.pretokenizers\[0\]\.behavior must be a string, got 3$/);
    expect(load(tokenizerJson, { ...tokenizerConfig, additional_special_tokens: "x" })).toThrow(/^tokenizer_config\.json: additional_special_tokens must be a list/);
    expect(load(tokenizerJson, { ...tokenizerConfig, bos_token: 5 })).toThrow(/^tokenizer_config\.json: bos_token must be a string/);
  });

  it("bounds special tokens: an added token's length, all added tokens' characters, additional_special_tokens", () => {
    expect(load(patched((t) => t.added_tokens.push({ id: 900, content: "z".repeat(257), special: true })))).toThrow(/^tokenizer\.json: added_tokens\[\d+\]\.content has 257 characters; added tokens have at most 256$/);
    const many = patched((t) => {
      for (let i = 0; i < 1100; i++) t.added_tokens.push({ id: 2000 + i, content: `<|${String(i).padStart(250, "0")}|>`, special: true });
    });
    expect(load(many)).toThrow(/^tokenizer\.json: added_tokens hold more than 262144 characters in all \(at added_tokens\[\d+\]\)$/);
    expect(load(tokenizerJson, { ...tokenizerConfig, additional_special_tokens: Array.from({ length: 1025 }, (_, i) => `<${i}>`) })).toThrow(/^tokenizer_config\.json: additional_special_tokens has 1025 entries, more than 1024$/);
    expect(load(tokenizerJson, { ...tokenizerConfig, additional_special_tokens: ["<ok>", { content: "w".repeat(300) }] })).toThrow(/^tokenizer_config\.json: additional_special_tokens\[1\] has 300 characters; special tokens have at most 256$/);
  });

  it("refuses an added token id the model's embedding table has no row for", () => {
    const t = load(patched((t) => t.added_tokens.push({ id: 5000, content: "<|far|>", special: true })))();
    expect(() => t.checkFitsVocabulary(1024)).toThrow(/^tokenizer\.json: token id 5000 \("<\|far\|>"\) is not below the model's vocab_size 1024$/);
    expect(() => new TextTokenizer({ tokenizer: tokenizerJson, tokenizerConfig }).checkFitsVocabulary(1024)).not.toThrow();
  });

  it("refuses a Split pattern that backtracks catastrophically, before it can hang an encode", () => {
    const evil = patched((t) => (t.pre_tokenizer.pretokenizers[0].pattern = { Regex: "(a+)+$" }));
    expect(load(evil)).toThrow(/^tokenizer\.json: pre_tokenizer\.pretokenizers\[0\]\.pattern\.Regex is refused, as it could backtrack for minutes on a short text \(a repeated group holds a quantifier or an alternation \(nested quantifiers\)\): "\(a\+\)\+\$"$/);
    const poly = patched((t) => (t.normalizer = { type: "Replace", pattern: { Regex: "\\s*\\s*\\s*\\s*x" }, content: "" }));
    expect(load(poly)).toThrow(/normalizer\.pattern\.Regex is refused, .*\(4 unbounded quantifiers in a row/);
  });

  it("accepts the pre-tokenizer patterns of real tokenizers", () => {
    const patterns = {
      gpt2: "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
      llama3: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
      qwen2: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
      llama4: (tokenizerJson as Json).pre_tokenizer.pretokenizers[0].pattern.Regex as string,
    };
    for (const [name, p] of Object.entries(patterns)) expect([name, backtrackingRisk(p)]).toEqual([name, null]);
  });

  it("refuses each class of catastrophic pattern, and the refused ones really are slow", () => {
    for (const p of ["(a+)+$", "(a|a)*$", "(\\s*x)*y", "((ab)*)*c", "(?:a|b){2,}$", "a*a*a*b", "a?a?a?a?a?aaaaa", "(x)\\1", "(?<n>x)\\k<n>"]) {
      expect([p, backtrackingRisk(p)]).not.toEqual([p, null]);
    }
    // What rule 1 prevents: 2^20 paths for 20 characters (well over 10 ms; a 35-character text takes hours).
    const t0 = performance.now();
    /(a+)+$/.test("a".repeat(20) + "!");
    expect(performance.now() - t0).toBeGreaterThan(10);
  });
});

