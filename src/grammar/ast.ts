// A grammar as rules of expressions over Unicode code points: what the GBNF parser (gbnf.ts) produces and
// the automaton compiler (automaton.ts) turns into byte-level automata. JSON Schemas reach it as GBNF text
// (json-schema.ts), so there is one way into the matcher.

/** Inclusive code point ranges, sorted and disjoint: [lo0, hi0, lo1, hi1, ...]. */
export type CodePointRanges = readonly number[];

export type Expr =
  | { kind: "literal"; text: string }
  | { kind: "chars"; ranges: CodePointRanges }
  /** `at`: where the reference is in the grammar text, for messages. */
  | { kind: "ref"; name: string; at: number }
  | { kind: "seq"; items: Expr[] }
  | { kind: "alt"; options: Expr[] }
  /** `max` is Infinity for `*`, `+` and `{m,}`. */
  | { kind: "repeat"; item: Expr; min: number; max: number };

export interface Grammar {
  /** Rules by name, in the order they were defined. */
  rules: Map<string, Expr>;
  /** The rule a text must match as a whole ("root" for GBNF). */
  root: string;
}

export class GrammarError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "GrammarError";
  }
}

/** The largest Unicode code point. */
export const MAX_CODE_POINT = 0x10ffff;
const SURROGATES: CodePointRanges = [0xd800, 0xdfff];

/** Sorts and merges ranges; surrogates (which UTF-8 cannot encode) are removed. */
export function normalizeRanges(ranges: readonly number[]): number[] {
  const pairs: [number, number][] = [];
  for (let i = 0; i < ranges.length; i += 2) pairs.push([ranges[i], ranges[i + 1]]);
  pairs.sort((a, b) => a[0] - b[0]);
  const merged: number[] = [];
  for (const [lo, hi] of pairs) {
    const n = merged.length;
    if (n > 0 && lo <= merged[n - 1] + 1) merged[n - 1] = Math.max(merged[n - 1], hi);
    else merged.push(lo, hi);
  }
  return subtractRanges(merged, SURROGATES);
}

/** Code points in `a` but not in `b` (both normalized). */
export function subtractRanges(a: CodePointRanges, b: CodePointRanges): number[] {
  const out: number[] = [];
  for (let i = 0; i < a.length; i += 2) {
    let lo = a[i];
    const hi = a[i + 1];
    for (let j = 0; j < b.length && lo <= hi; j += 2) {
      if (b[j + 1] < lo || b[j] > hi) continue;
      if (b[j] > lo) out.push(lo, b[j] - 1);
      lo = b[j + 1] + 1;
    }
    if (lo <= hi) out.push(lo, hi);
  }
  return out;
}

/** Every code point (but surrogates) not in `ranges`. */
export function complementRanges(ranges: CodePointRanges): number[] {
  return subtractRanges(normalizeRanges([0, MAX_CODE_POINT]), normalizeRanges([...ranges]));
}

export const ANY_CHAR: CodePointRanges = normalizeRanges([0, MAX_CODE_POINT]);
