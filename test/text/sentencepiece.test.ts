// The two algorithms GgmlTokenizer runs as llama.cpp does, against plain restatements written here:
// - sentencePieceEncode (src/text/sentencepiece.ts) against a brute-force loop that, over the symbols as
//   they are, joins the adjacent pair whose joined text is the best-scoring token (leftmost on ties) until
//   none is left, then writes unknown characters as byte tokens;
// - SpecialTokenSplitter (src/text/special-split.ts) against llama.cpp's partition as written in its
//   src/llama-vocab.cpp: for each special token, longest first (then by id), find it left to right in each
//   raw fragment and cut the fragment there.
// Random small vocabularies and texts over a small alphabet, so that pieces, ties and overlaps are common.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { sentencePieceEncode } from "../../src/text/sentencepiece.js";
import { SpecialTokenSplitter, type Fragment } from "../../src/text/special-split.js";

const utf8 = new TextEncoder();

/** The joins one by one, each over every adjacent pair: O(n^2) per join, obviously the definition. */
function bruteForceSpm(text: string, ids: Map<string, number>, scores: number[], byteTokens: number[]): number[] {
  const symbols = Array.from(text);
  for (;;) {
    let best = -1;
    let bestScore = -Infinity;
    for (let i = 0; i + 1 < symbols.length; i++) {
      const id = ids.get(symbols[i] + symbols[i + 1]);
      if (id !== undefined && (best < 0 || scores[id] > bestScore)) {
        best = i;
        bestScore = scores[id];
      }
    }
    if (best < 0) break;
    symbols.splice(best, 2, symbols[best] + symbols[best + 1]);
  }
  return symbols.flatMap((s) => (ids.has(s) ? [ids.get(s)!] : [...utf8.encode(s)].map((b) => byteTokens[b])));
}

/** llama.cpp's tokenizer_st_partition, restated: fragments of raw text split by each special token in turn. */
function llamaCppPartition(text: string, tokens: string[], specials: number[]): Fragment[] {
  let fragments: Fragment[] = text.length === 0 ? [] : [text];
  const order = [...specials].sort((a, b) => tokens[b].length - tokens[a].length || a - b);
  for (const id of order) {
    const t = tokens[id];
    const next: Fragment[] = [];
    for (const f of fragments) {
      if (typeof f === "number") {
        next.push(f);
        continue;
      }
      let rest = f;
      for (let at = rest.indexOf(t); at >= 0; at = rest.indexOf(t)) {
        if (at > 0) next.push(rest.slice(0, at));
        next.push(id);
        rest = rest.slice(at + t.length);
      }
      if (rest.length > 0) next.push(rest);
    }
    fragments = next;
  }
  return fragments;
}

const alphabet = fc.constantFrom("a", "b", "▁", "é", "😀");
const piece = fc.array(alphabet, { minLength: 1, maxLength: 4 }).map((cs) => cs.join(""));
const text = fc.array(fc.oneof(alphabet, fc.constantFrom("c", "x")), { maxLength: 24 }).map((cs) => cs.join(""));

describe("SentencePiece joins as llama.cpp does", () => {
  it("equals the brute-force definition on random vocabularies, scores (ties included) and texts", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.tuple(piece, fc.integer({ min: -6, max: 0 })), { selector: ([p]) => p, maxLength: 40 }),
        fc.array(text, { minLength: 1, maxLength: 5 }),
        (pieces, texts) => {
          // Byte tokens 0..255 first, then the pieces; integer scores make ties frequent.
          const tokens = [...Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`), ...pieces.map(([p]) => p)];
          const scores = [...new Array(256).fill(0), ...pieces.map(([, s]) => s)];
          const ids = new Map(tokens.map((t, i) => [t, i]));
          const byteTokens = Array.from({ length: 256 }, (_, b) => b);
          for (const t of texts) {
            const out: number[] = [];
            sentencePieceEncode(t, { ids, scores, byteTokens: Int32Array.from(byteTokens) }, out);
            expect(out, t).toEqual(bruteForceSpm(t, ids, scores, byteTokens));
          }
        },
      ),
      { numRuns: 400, seed: 31 },
    );
  });
});

describe("special tokens are split out as llama.cpp does", () => {
  it("equals llama.cpp's partition on random special tokens and texts, overlapping ones included", () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.array(fc.constantFrom("a", "b", "<", ">", "😀"), { minLength: 1, maxLength: 5 }).map((cs) => cs.join("")), { maxLength: 12 }), fc.array(fc.array(fc.constantFrom("a", "b", "<", ">", "😀", "c"), { maxLength: 30 }).map((cs) => cs.join("")), { minLength: 1, maxLength: 5 }), (specialTexts, texts) => {
        const tokens = ["n0", "n1", ...specialTexts];
        const specials = specialTexts.map((_, i) => i + 2);
        const splitter = new SpecialTokenSplitter(tokens, specials);
        for (const t of texts) expect(splitter.split(t), t).toEqual(llamaCppPartition(t, tokens, specials));
      }),
      { numRuns: 500, seed: 32 },
    );
  });

  it("splits a long prompt against long, overlapping special tokens in bounded time", () => {
    // The worst case for the search: every position starts a near-match of every length up to 256.
    const tokens = Array.from({ length: 256 }, (_, i) => "a".repeat(i + 1) + "b");
    const splitter = new SpecialTokenSplitter(tokens, tokens.map((_, i) => i));
    const t0 = performance.now();
    const out = splitter.split("a".repeat(100_000));
    expect(out).toEqual(["a".repeat(100_000)]);
    expect(performance.now() - t0).toBeLessThan(10_000);
  });
});
