// Small vocabularies and membership checks for the grammar tests: a grammar's language is probed with a
// vocabulary of the 256 single bytes (so any text can be fed byte by byte), masks with vocabularies whose
// tokens cut text where a test needs them cut.
import { expect } from "vitest";
import { GrammarError } from "../../src/grammar/ast.js";
import { compileGrammar, type Automaton } from "../../src/grammar/automaton.js";
import { parseGbnf } from "../../src/grammar/gbnf.js";
import { GrammarMatcher } from "../../src/grammar/matcher.js";
import { GrammarMasks } from "../../src/grammar/token-masks.js";
import { TokenTrie } from "../../src/grammar/vocabulary.js";
import type { TokenBytes } from "../../src/text/token-bytes.js";

/** A TokenBytes table of the given tokens (strings are UTF-8 encoded; null: a token with no bytes). */
export function tokenBytes(tokens: ReadonlyArray<string | Uint8Array | null>): TokenBytes {
  const parts = tokens.map((t) => (t === null ? new Uint8Array(0) : typeof t === "string" ? new TextEncoder().encode(t) : t));
  const offsets = new Uint32Array(parts.length + 1);
  parts.forEach((p, i) => (offsets[i + 1] = offsets[i] + p.length));
  const data = new Uint8Array(offsets[parts.length]);
  parts.forEach((p, i) => data.set(p, offsets[i]));
  return { data, offsets };
}

/** Ids 0..255 are the single bytes, 256 is end-of-sequence. */
export const BYTE_EOS = 256;
const byteTrie = new TokenTrie(tokenBytes([...Array.from({ length: 256 }, (_, b) => Uint8Array.of(b)), null]));

export const compile = (gbnf: string): Automaton => compileGrammar(parseGbnf(gbnf));

/** Whether the grammar's language holds `text` exactly (fed byte by byte, then end-of-sequence). */
export function accepts(masks: GrammarMasks, text: string | Uint8Array): boolean {
  const m = new GrammarMatcher(masks, [BYTE_EOS]);
  const mask = new Uint8Array(257);
  for (const b of typeof text === "string" ? new TextEncoder().encode(text) : text) {
    m.fillMask(mask);
    if (!mask[b]) return false;
    m.accept(b);
  }
  m.fillMask(mask);
  return mask[BYTE_EOS] === 1;
}

/** A membership tester for a GBNF grammar (or an automaton). */
export function language(grammar: string | Automaton): (text: string | Uint8Array) => boolean {
  const masks = new GrammarMasks(typeof grammar === "string" ? compile(grammar) : grammar, byteTrie);
  return (text) => accepts(masks, text);
}

/** llama.cpp's grammars/json.gbnf as published (re-typed here). */
export const JSON_GBNF = String.raw`root   ::= object
value  ::= object | array | string | number | ("true" | "false" | "null") ws

object ::=
  "{" ws (
            string ":" ws value
    ("," ws string ":" ws value)*
  )? "}" ws

array  ::=
  "[" ws (
            value
    ("," ws value)*
  )? "]" ws

string ::=
  "\"" (
    [^"\\\x7F\x00-\x1F] |
    "\\" (["\\bfnrt/] | "u" [0-9a-fA-F]{4}) # escapes
  )* "\"" ws

number ::= ("-"? ([0-9] | [1-9] [0-9]{0,15})) ("." [0-9]+)? ([eE] [-+]? [0-9] [1-9]{0,15})? ws

# Optional space: by convention, applied in this grammar after literal chars when allowed
ws ::= | " " | "\n" [ \t]{0,20}
`;

/** Runs `f` and expects a one-line GrammarError matching `re`. */
export function expectGrammarError(f: () => unknown, re: RegExp): void {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(GrammarError);
  expect((err as Error).message).toMatch(re);
  expect((err as Error).message).not.toContain("\n");
}
