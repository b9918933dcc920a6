// Hostile grammars and schemas: each is refused (or, for ambiguity that only shows while matching, stopped)
// with one GrammarError line, in bounded time and memory. Never unconstrained output.
import { describe, expect, it } from "vitest";
import { jsonSchemaToGbnf } from "../../src/grammar/json-schema.js";
import { GrammarMatcher } from "../../src/grammar/matcher.js";
import { MAX_PARSES } from "../../src/grammar/parse-levels.js";
import { GrammarMasks } from "../../src/grammar/token-masks.js";
import { TokenTrie } from "../../src/grammar/vocabulary.js";
import { compile, expectGrammarError, tokenBytes } from "../helpers/grammar.js";

/** Runs `f`, expecting a one-line GrammarError matching `re` within `ms`, and heap growth below 256 MiB. */
function refused(f: () => unknown, re: RegExp, ms = 5000): void {
  const heap0 = process.memoryUsage().heapUsed;
  const t0 = performance.now();
  expectGrammarError(f, re);
  expect(performance.now() - t0).toBeLessThan(ms);
  expect(process.memoryUsage().heapUsed - heap0).toBeLessThan(256 * 2 ** 20);
}

describe("hostile grammars", () => {
  it("left recursion, direct and through a nullable rule", () => {
    refused(() => compile('root ::= expr\nexpr ::= expr "+" term | term\nterm ::= [0-9]'), /left recursion: rule expr reaches itself/);
    refused(() => compile('root ::= a\na ::= opt b\nb ::= a "x" | "y"\nopt ::= "z"?'), /left recursion/);
  });

  it("repetition counts in the millions, nested repetitions that multiply", () => {
    refused(() => compile('root ::= "a"{1000000}'), /automaton states/);
    refused(() => compile('root ::= "a"{10000000}'), /larger than/);
    refused(() => compile('root ::= (("a"{1000}){1000}){1000}'), /automaton states/);
  });

  it("alternatives whose automaton is exponential", () => {
    refused(() => compile('root ::= ("a" | "b")* "a" ("a" | "b"){24}'), /more than \d+ automaton states/, 15_000);
  });

  it("nesting thousands deep, and a chain of thousands of rules (compiled without overflowing the stack)", () => {
    refused(() => compile(`root ::= ${"(".repeat(5000)}"a"${")".repeat(5000)}`), /nested more than/);
    const chain = Array.from({ length: 3000 }, (_, i) => `r${i} ::= "x" r${i + 1}`).join("\n");
    expect(compile(`root ::= r0\n${chain}\nr3000 ::= "y"`).numStates).toBeGreaterThan(0);
  });

  it("a grammar that does not parse, and one whose language is empty, are refused: no free output", () => {
    refused(() => compile("root ::= ("), /grammar line 1:11: expected "\)"/);
    refused(() => compile('root ::= "a" root'), /matches nothing/);
    refused(() => compile('root ::= x\nx ::= "b" x'), /matches nothing/);
  });

  it("ambiguity that grows while matching stops with a clear error", () => {
    // Each a opens a p or a q (to be closed by a b or a c later) or extends the one before: the parses
    // differ in their stacks, and their number grows exponentially with the a's.
    const automaton = compile('root ::= s\ns ::= p s "b" | q s "c" | ""\np ::= "a" | "a" p\nq ::= "a" | "a" q');
    const masks = new GrammarMasks(automaton, new TokenTrie(tokenBytes(["a", "b", null])));
    const m = new GrammarMatcher(masks, [2]);
    const t0 = performance.now();
    expect(() => {
      for (let i = 0; i < 64; i++) m.accept(0);
    }).toThrow(new RegExp(`too ambiguous: more than ${MAX_PARSES} parses`));
    expect(performance.now() - t0).toBeLessThan(5000);
  });
});

describe("hostile JSON Schemas", () => {
  it("nested thousands deep", () => {
    let deep: unknown = { type: "string" };
    for (let i = 0; i < 5000; i++) deep = { type: "array", items: deep };
    refused(() => jsonSchemaToGbnf(deep), /nests more than 128 levels/);
  });

  it("$ref cycles, and recursion that is left recursion", () => {
    refused(() => jsonSchemaToGbnf({ $ref: "#" }), /\$ref cycle: # -> #/);
    refused(() => jsonSchemaToGbnf({ $defs: { a: { $ref: "#/$defs/b" }, b: { $ref: "#/$defs/a" } }, $ref: "#/$defs/a" }), /\$ref cycle: #\/\$defs\/a -> #\/\$defs\/b -> #\/\$defs\/a/);
    refused(() => compile(jsonSchemaToGbnf({ $defs: { a: { anyOf: [{ $ref: "#/$defs/a" }, { type: "null" }] } }, $ref: "#/$defs/a" })), /left recursion/);
  });

  it("an object inside itself, a schema of a million nodes, huge counts", () => {
    const self: Record<string, unknown> = { type: "object" };
    self.properties = { me: self };
    refused(() => jsonSchemaToGbnf(self), /contains itself/);
    const props: Record<string, unknown> = {};
    for (let i = 0; i < 120_000; i++) props[`p${i}`] = {};
    refused(() => jsonSchemaToGbnf({ type: "object", properties: props }), /more than 100000 nodes/);
    refused(() => compile(jsonSchemaToGbnf({ type: "string", maxLength: 10_000_000 })), /larger than|automaton states/);
    refused(() => compile(jsonSchemaToGbnf({ type: "array", items: { type: "string" }, minItems: 900_000 })), /automaton states/);
  });

  it("values that are not JSON", () => {
    refused(() => jsonSchemaToGbnf({ type: "integer", minimum: Infinity }), /not finite/);
    refused(() => jsonSchemaToGbnf({ type: "string", f: () => 1 }), /not JSON/);
  });
});
