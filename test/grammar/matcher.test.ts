// The matcher's masks over token vocabularies: byte-level edge cases (a character split across tokens, a
// token spanning a literal and the next rule, a grammar that only allows end-of-sequence), and the mask
// against an independent check of every token (feeding it to a fresh matcher through accept, which walks
// the automaton byte by byte without the cached masks).
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { GrammarMatcher } from "../../src/grammar/matcher.js";
import { GrammarMasks } from "../../src/grammar/token-masks.js";
import { TokenTrie } from "../../src/grammar/vocabulary.js";
import { GrammarError } from "../../src/grammar/ast.js";
import { grammarConstraint } from "../../src/generate/constraint.js";
import { loadText } from "../../src/node/bundled.js";
import { jsonSchemaToGbnf } from "../../src/grammar/json-schema.js";
import { compile, JSON_GBNF, tokenBytes } from "../helpers/grammar.js";

function setup(gbnf: string, tokens: ReadonlyArray<string | Uint8Array | null>, eos: number[]) {
  const trie = new TokenTrie(tokenBytes(tokens));
  const masks = new GrammarMasks(compile(gbnf), trie);
  return { masks, trie, matcher: () => new GrammarMatcher(masks, eos) };
}

const allowedIds = (m: GrammarMatcher, n: number, budget = Infinity): number[] => {
  const mask = new Uint8Array(n);
  m.fillMask(mask, budget);
  return [...mask.keys()].filter((i) => mask[i] === 1);
};

describe("byte-level edges", () => {
  it("a multi-byte character split across tokens", () => {
    // é is C3 A9; tokens: its lead byte, its continuation, the whole, "x", continuation + "x".
    const vocab = [Uint8Array.of(0xc3), Uint8Array.of(0xa9), "é", "x", Uint8Array.of(0xa9, 0x78), "y", null];
    const { matcher } = setup('root ::= "é" "x"', vocab, [6]);
    const m = matcher();
    expect(allowedIds(m, 7)).toEqual([0, 2]);
    m.accept(0);
    expect(allowedIds(m, 7)).toEqual([1, 4]);
    m.accept(4);
    expect(allowedIds(m, 7)).toEqual([6]);
  });

  it("a token covering a literal and the start of the next rule, and one crossing a rule's return", () => {
    const { matcher } = setup('root ::= "a" b ("," b)*\nb ::= "bc" | "bd"', ["a", "ab", "abc", "c", "d", "cd", ",", "c,b", "d,bd", "b", null], [10]);
    const m = matcher();
    expect(allowedIds(m, 11)).toEqual([0, 1, 2]);
    m.accept(1); // "ab": the literal and b's first byte
    expect(allowedIds(m, 11)).toEqual([3, 4, 7, 8]); // c, d, and the tokens that return from b and go on
    m.accept(8); // "d,bd": leaves b, the comma, a whole new b
    expect(allowedIds(m, 11)).toEqual([6, 10]);
  });

  it("a grammar that only allows end-of-sequence", () => {
    const { matcher } = setup('root ::= ""', ["a", "b", null], [2]);
    expect(allowedIds(matcher(), 3)).toEqual([2]);
    // Without an end-of-sequence token, the output is complete at once: the loop stops.
    const { masks } = setup('root ::= ""', ["a", "b", null], []);
    expect(grammarConstraint(new GrammarMatcher(masks, []), 3).allowed(10)).toBeNull();
  });

  it("never offers end-of-sequence before the grammar may end, even when its id has bytes", () => {
    const { matcher } = setup('root ::= "ab"', ["a", "b", "</s>"], [2]);
    const m = matcher();
    expect(allowedIds(m, 3)).toEqual([0]);
    m.accept(0);
    m.accept(1);
    expect(allowedIds(m, 3)).toEqual([2]);
    expect(() => matcher().accept(2)).toThrow(GrammarError);
  });

  it("refuses a token the mask did not allow, and tokens with no bytes", () => {
    const { matcher } = setup('root ::= "a"', ["a", "b", null], [5]);
    expect(() => matcher().accept(1)).toThrow(/does not continue the grammar/);
    expect(() => matcher().accept(2)).toThrow(/no text/);
  });

  it("says when no token of the vocabulary can continue (a byte no token has)", () => {
    const { masks } = setup('root ::= "z"', ["a", "b"], [2]);
    expect(() => grammarConstraint(new GrammarMatcher(masks, [2]), 3).allowed(10)).toThrow(/no token of the vocabulary/);
  });
});

describe("token budget", () => {
  it("closes the output before the budget runs out: every allowed token leaves room to finish", () => {
    const { matcher } = setup('root ::= "[" ( "x" ( "," "x" )* )? "]"', ["[", "]", "x", ",", ",x", "x,x,x", null], [6]);
    fc.assert(
      fc.property(fc.integer({ min: 3, max: 12 }), fc.infiniteStream(fc.nat()), (budget, picks) => {
        const m = matcher();
        let text = "";
        const it = picks[Symbol.iterator]();
        for (let left = budget; left > 0; left--) {
          const ids = allowedIds(m, 7, left);
          expect(ids.length).toBeGreaterThan(0);
          const t = ids[(it.next().value as number) % ids.length];
          m.accept(t);
          if (t === 6) break;
          text += ["[", "]", "x", ",", ",x", "x,x,x"][t];
        }
        expect(m.finished).toBe(true);
        expect(text).toMatch(/^\[(x(,x)*)?\]$/);
      }),
      { numRuns: 200 },
    );
  });

  it("with less budget than the shortest completion, goes the shortest way (output ends unfinished)", () => {
    const { matcher } = setup('root ::= "abc" [a-z]*', ["a", "b", "c", "ab", "z", null], [5]);
    const m = matcher();
    expect(allowedIds(m, 6, 2)).toEqual([0, 3]);
    m.accept(3);
    expect(allowedIds(m, 6, 1)).toEqual([2]);
  });
});

describe("masks against a token-by-token check", () => {
  const tok = loadText("models/shakespeare-tiny").tokenizer!;
  const bundled = tok.tokenBytes(1024);
  const EOS = 1001;

  /** For each id: does a fresh matcher, fed the history, take it? (accept() walks bytes, not the cached masks) */
  function expected(masks: GrammarMasks, history: number[], n: number): number[] {
    const out: number[] = [];
    for (let id = 0; id < n; id++) {
      const m = new GrammarMatcher(masks, [EOS]);
      for (const h of history) m.accept(h);
      try {
        if (id === EOS) {
          if (m.canEnd) out.push(id);
          continue;
        }
        m.accept(id);
        out.push(id);
      } catch (err) {
        if (!(err instanceof GrammarError)) throw err;
      }
    }
    return out;
  }

  for (const [name, gbnf] of [
    ["json.gbnf", JSON_GBNF],
    ["arithmetic", 'root ::= expr\nexpr ::= term (("+" | "-") term)*\nterm ::= factor (("*" | "/") factor)*\nfactor ::= [0-9]+ | "(" expr ")" | "-" factor'],
    ["a list of quoted words", 'root ::= "- " item ("\\n- " item)*\nitem ::= "\\"" [a-zA-Z ]+ "\\""'],
  ] as const) {
    it(`${name}: the mask is exactly the tokens that continue a prefix of the language`, () => {
      const masks = new GrammarMasks(compile(gbnf), new TokenTrie(bundled));
      fc.assert(
        fc.property(fc.array(fc.nat(), { minLength: 8, maxLength: 8 }), (picks) => {
          const m = new GrammarMatcher(masks, [EOS]);
          const history: number[] = [];
          for (const p of picks) {
            const ids = allowedIds(m, 1024);
            expect(ids).toEqual(expected(masks, history, 1024));
            const t = ids[p % ids.length];
            if (t === EOS) break;
            m.accept(t);
            history.push(t);
          }
        }),
        { numRuns: 6 },
      );
    });
  }
});

describe("states sharing one cached mask", () => {
  const tok = loadText("models/shakespeare-tiny").tokenizer!;
  const sameEntry = (x: ReturnType<GrammarMasks["entry"]>, y: ReturnType<GrammarMasks["entry"]>) => {
    expect([...x.accepted]).toEqual([...y.accepted]);
    expect([...x.uncertain]).toEqual([...y.uncertain]);
    expect([...x.riseIds]).toEqual([...y.riseIds]);
    expect([...x.riseBy]).toEqual([...y.riseBy]);
  };
  for (const [name, gbnf] of [
    ["a long counted string", jsonSchemaToGbnf({ type: "object", properties: { s: { type: "string", minLength: 3, maxLength: 60 }, t: { type: "array", items: { type: "integer", minimum: -5, maximum: 500 }, maxItems: 30 } }, required: ["s"] })],
    ["json.gbnf", JSON_GBNF],
    ["nested nullable rules", 'root ::= a "x"{0,40} b\na ::= c? "y"\nb ::= ("z" b)?\nc ::= "w"*'],
  ] as const) {
    it(`${name}: a shared entry is exactly the state's own`, () => {
      const masks = new GrammarMasks(compile(gbnf), new TokenTrie(tok.tokenBytes(1024)));
      const a = masks.automaton;
      expect(masks.distinctEntries).toBeLessThanOrEqual(a.numStates);
      for (let s = 0; s < a.numStates; s++) sameEntry(masks.entry(s), masks.ownEntry(s));
    });
  }

  it("a counted string of 200 shares most of its positions' masks", () => {
    const masks = new GrammarMasks(compile(jsonSchemaToGbnf({ type: "string", maxLength: 200 })), new TokenTrie(tok.tokenBytes(1024)));
    expect(masks.automaton.numStates).toBeGreaterThan(200);
    expect(masks.distinctEntries).toBeLessThan(masks.automaton.numStates / 4);
  });
});
