// What a caller asks for (a GBNF grammar or a JSON Schema), compiled once and bound to a vocabulary.
//
// A GrammarSpec is plain data, so it crosses a worker boundary or arrives in a request as it is. The cache
// keeps the last few compiled grammars with their per-state token masks (token-masks.ts), which are the
// expensive part: a second request with the same schema starts with every mask the first one built.
import { GrammarError, type Grammar } from "./ast.js";
import { compileGrammar, type Automaton } from "./automaton.js";
import { parseGbnf } from "./gbnf.js";
import { jsonSchemaToGbnf } from "./json-schema.js";
import { GrammarMasks } from "./token-masks.js";
import type { TokenTrie } from "./vocabulary.js";

/**
 * A grammar for the output: `{ gbnf, root? }` is llama.cpp's GBNF text (matching starts at rule `root`,
 * "root" by default); `{ jsonSchema }` is a JSON Schema (an object or a boolean) the output must validate
 * against; `{ jsonSchema: { type: "object" } }` is any JSON object.
 */
export type GrammarSpec = { gbnf: string; root?: string } | { jsonSchema: unknown };

/** The GBNF text of a spec (a JSON Schema translated). Throws a GrammarError for a malformed spec. */
export function gbnfOf(spec: GrammarSpec): { text: string; root: string } {
  if (typeof spec !== "object" || spec === null) throw new GrammarError("a grammar must be { gbnf: string } or { jsonSchema: schema }");
  if ("gbnf" in spec) {
    if (typeof spec.gbnf !== "string") throw new GrammarError("grammar.gbnf must be a string of GBNF rules");
    if (spec.root !== undefined && typeof spec.root !== "string") throw new GrammarError("grammar.root must be a rule name");
    return { text: spec.gbnf, root: spec.root ?? "root" };
  }
  if ("jsonSchema" in spec) return { text: jsonSchemaToGbnf(spec.jsonSchema), root: "root" };
  throw new GrammarError("a grammar must be { gbnf: string } or { jsonSchema: schema }");
}

/** Parses and compiles a spec into its automaton. */
export function compileSpec(spec: GrammarSpec): Automaton {
  const { text, root } = gbnfOf(spec);
  const grammar: Grammar = parseGbnf(text, root);
  return compileGrammar(grammar);
}

/** Compiled grammars bound to one vocabulary, the most recently used kept. */
export class GrammarCache {
  private readonly entries = new Map<string, GrammarMasks>();
  private trie: TokenTrie | null = null;

  constructor(
    private readonly vocabulary: () => TokenTrie,
    private readonly capacity = 8,
  ) {}

  /** The spec compiled and bound to the vocabulary (from the cache when it was seen lately). */
  masks(spec: GrammarSpec): GrammarMasks {
    const key = JSON.stringify(spec) ?? "";
    const hit = this.entries.get(key);
    if (hit !== undefined) {
      this.entries.delete(key);
      this.entries.set(key, hit);
      return hit;
    }
    const automaton = compileSpec(spec);
    this.trie ??= this.vocabulary();
    const masks = new GrammarMasks(automaton, this.trie);
    this.entries.set(key, masks);
    if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value as string);
    return masks;
  }
}

/** Throws the GrammarError a spec would raise when used: a grammar or schema refused before a model is loaded. */
export function checkGrammarSpec(spec: GrammarSpec): void {
  compileSpec(spec);
}
