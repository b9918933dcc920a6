// The GBNF parser and the automaton it compiles to, checked through the language they accept: each
// construct of llama.cpp's format against texts it must and must not match, and each error as one line
// with its position.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { parseGbnf } from "../../src/grammar/gbnf.js";
import { compile, expectGrammarError, JSON_GBNF, language } from "../helpers/grammar.js";

describe("GBNF: the constructs of llama.cpp's format", () => {
  it("literals, alternatives, grouping and rule references", () => {
    const L = language(`root ::= greeting " " ("world" | "there")\ngreeting ::= "hello" | "hi"`);
    for (const t of ["hello world", "hi there", "hello there"]) expect(L(t), t).toBe(true);
    for (const t of ["hello", "hello  world", "hey world", "hi world!", ""]) expect(L(t), t).toBe(false);
  });

  it("repetition: * + ? {m} {m,} {m,n} {,n}", () => {
    const cases: [string, string[], string[]][] = [
      ['"a"*', ["", "a", "aaaa"], ["b"]],
      ['"a"+', ["a", "aaa"], [""]],
      ['"a"?', ["", "a"], ["aa"]],
      ['"a"{3}', ["aaa"], ["aa", "aaaa"]],
      ['"a"{2,}', ["aa", "aaaaaaa"], ["a"]],
      ['"a"{1,3}', ["a", "aa", "aaa"], ["", "aaaa"]],
      ['"a"{,2}', ["", "a", "aa"], ["aaa"]],
      ['("ab" | "c"){2}', ["abab", "cc", "abc", "cab"], ["ab", "abcab"]],
    ];
    for (const [body, yes, no] of cases) {
      const L = language(`root ::= ${body}`);
      for (const t of yes) expect(L(t), `${body} on ${JSON.stringify(t)}`).toBe(true);
      for (const t of no) expect(L(t), `${body} on ${JSON.stringify(t)}`).toBe(false);
    }
  });

  it("character classes: ranges, negation, escapes, and Unicode matched as UTF-8", () => {
    const L = language(`root ::= [a-c] [^a-z\\n] [\\x41-\\x43] [é-ë] "\\u00fc" "\\U0001F600" .`);
    expect(L("aZBéü😀x")).toBe(true);
    expect(L("a\nBéü😀x")).toBe(false); // \\n excluded by the negation
    expect(L("dZBéü😀x")).toBe(false);
    expect(L("aZBèü😀x")).toBe(false); // è is below é
    expect(L("aZBéü😀")).toBe(false); // . needs a character
    expect(L("aZBéü😀€")).toBe(true); // . is one code point, 3 bytes here
  });

  it("a negated class matches any code point outside it, and only valid UTF-8", () => {
    const L = language(`root ::= [^"]`);
    fc.assert(
      fc.property(fc.string({ unit: "binary", minLength: 1, maxLength: 1 }), (ch) => {
        expect(L(ch)).toBe(ch !== '"');
      }),
      { numRuns: 300 },
    );
    expect(L(Uint8Array.of(0xc3))).toBe(false); // a lone lead byte
    expect(L(Uint8Array.of(0xed, 0xa0, 0x80))).toBe(false); // an encoded surrogate
    expect(L(Uint8Array.of(0xc0, 0x80))).toBe(false); // an overlong NUL
  });

  it("comments, line continuation inside parentheses and after ::= and |", () => {
    const L = language(`# a comment
root ::= # after the name
  "a" ( "b" # inside
  | "c" ) rest  # end
rest ::= "d" |
  "e"`);
    for (const t of ["abd", "ace", "abe"]) expect(L(t)).toBe(true);
    expect(L("ad")).toBe(false);
  });

  it("matches llama.cpp's json.gbnf example on JSON.stringify output", () => {
    const L = language(JSON_GBNF);
    // json.gbnf's root is an object; its strings exclude U+007F and its exponents are its own, so values
    // are kept to what it describes.
    const value = fc.letrec((tie) => ({
      v: fc.oneof({ depthSize: "small" }, fc.string({ unit: "grapheme" }).filter((s) => !s.includes("\x7f")), fc.integer(), fc.boolean(), fc.constant(null), fc.array(tie("v"), { maxLength: 3 }), fc.dictionary(fc.string(), tie("v"), { maxKeys: 3 })),
    })).v;
    fc.assert(
      fc.property(fc.dictionary(fc.string(), value, { maxKeys: 4 }), fc.boolean(), (obj, pretty) => {
        const text = JSON.stringify(obj, null, pretty ? 1 : undefined);
        expect(L(text)).toBe(true);
      }),
      { numRuns: 150 },
    );
    for (const bad of ["{", '{"a" 1}', '{"a":[1,]}', '{"a":"\\x"}', '{"a":01}', "[]"]) expect(L(bad), bad).toBe(false);
  });
});


describe("GBNF errors: one line, with the position", () => {
  const cases: [string, RegExp][] = [
    ['root ::= "abc', /line 1:\d+: unterminated string literal/],
    ["root ::= [a-", /unterminated character class/],
    ["root ::= foo", /line 1:10: rule root refers to foo, which is not defined/],
    ['root := "a"', /expected "::="/],
    ['root ::= ("a"', /expected "\)"/],
    ['root ::= "a"{3,1}', /maximum is below the minimum/],
    ['root ::= "a"{}', /expected a count/],
    ['root ::= *"a"', /must follow an item/],
    ['root ::= "\\q"', /unknown escape \\q/],
    ['root ::= "\\uD800"', /not a Unicode scalar value/],
    ['root ::= [z-a]', /reversed/],
    ['root ::= <[12]>', /token references/],
    ['a ::= "x"', /no rule named root/],
    ["", /no rules/],
    ['root ::= "a"\nroot ::= "b"', /line 2:1: rule root is defined twice/],
    ['root ::= "a" "b"\n  "c"', /line 2:/],
  ];
  for (const [text, re] of cases) {
    it(JSON.stringify(text), () => expectGrammarError(() => compile(text), re));
  }

  it("names another root when asked", () => {
    expect(parseGbnf('start ::= "a"', "start").root).toBe("start");
  });
});
