// Splits text at the special tokens of a GGUF vocabulary (its control, user-defined and unknown tokens) the
// way llama.cpp does before it tokenizes the pieces in between (tokenizer_st_partition in its
// src/llama-vocab.cpp): the special tokens are taken longest first, and each claims every occurrence of its
// text, left to right, that does not overlap a longer one claimed before. So with the tokens "ab" and "bcd",
// "abcd" splits as "a" + "bcd", where a leftmost-longest matcher would give "ab" + "cd". Tokens of equal
// length go in id order (llama.cpp leaves that order unspecified).
//
// The tokens come from a downloaded file and the text from anyone, so the cost is kept in proportion:
// - The special tokens are kept as one array of ids sorted by their text, which doubles as a trie: finding
//   every special token that starts at a position narrows a range of that array, one character at a time,
//   and stops at the first character no token continues with. No trie of objects is built
//   (@huggingface/tokenizers' costs about 190 bytes per character of the tokens).
// - Work per position is bounded by the longest special token, which the vocabulary reader caps
//   (MAX_SPECIAL_TOKEN_CHARS, tokenizer-json.ts); the claiming pass then costs one scan of the text per
//   distinct special token the text contains.

/** Raw text (to be tokenized) or the id of a special token, in text order. */
export type Fragment = string | number;

export class SpecialTokenSplitter {
  /** Special token ids, sorted by their text as UTF-16 code units. */
  private readonly sorted: Int32Array;
  /** Bit c is set when some special token starts with code unit c: most positions are ruled out at once. */
  private readonly firstUnits = new Uint32Array(65536 / 32);

  /**
   * @param tokens every token's text, by id
   * @param specials the ids to split at (each text non-empty and unique, as the reader checks)
   */
  constructor(
    private readonly tokens: readonly string[],
    specials: readonly number[],
  ) {
    const ids = Int32Array.from(specials);
    ids.sort((a, b) => (tokens[a] < tokens[b] ? -1 : tokens[a] > tokens[b] ? 1 : 0));
    this.sorted = ids;
    for (const id of ids) {
      const c = tokens[id].charCodeAt(0);
      this.firstUnits[c >>> 5] |= 1 << (c & 31);
    }
  }

  split(text: string): Fragment[] {
    if (text.length === 0) return [];
    const found = this.present(text);
    if (found.length === 0) return [text];
    // Longest first, then by id: the order in which llama.cpp lets them claim the text.
    found.sort((a, b) => this.tokens[b].length - this.tokens[a].length || a - b);
    // owner[i] = 1 + the id of the special token claiming text[i], 0 while unclaimed. free[i] = the first
    // claimed position at or after i (text.length when none), recomputed after each token, so a candidate
    // occurrence is checked in constant time.
    const n = text.length;
    const owner = new Int32Array(n);
    const free = new Int32Array(n + 1);
    const refreshFree = () => {
      free[n] = n;
      for (let i = n - 1; i >= 0; i--) free[i] = owner[i] !== 0 ? i : free[i + 1];
    };
    refreshFree();
    for (const id of found) {
      const t = this.tokens[id];
      let claimed = false;
      for (let at = text.indexOf(t); at >= 0; ) {
        if (free[at] >= at + t.length) {
          owner.fill(id + 1, at, at + t.length);
          claimed = true;
          at = text.indexOf(t, at + t.length);
        } else {
          at = text.indexOf(t, at + 1);
        }
      }
      if (claimed) refreshFree();
    }
    const out: Fragment[] = [];
    for (let i = 0; i < n; ) {
      if (owner[i] === 0) {
        let j = i + 1;
        while (j < n && owner[j] === 0) j++;
        out.push(text.slice(i, j));
        i = j;
      } else {
        const id = owner[i] - 1;
        out.push(id);
        i += this.tokens[id].length;
      }
    }
    return out;
  }

  /** The distinct special tokens that occur somewhere in `text`. */
  private present(text: string): number[] {
    const { sorted, tokens, firstUnits } = this;
    const seen = new Set<number>();
    for (let i = 0; i < text.length; i++) {
      const c0 = text.charCodeAt(i);
      if ((firstUnits[c0 >>> 5] & (1 << (c0 & 31))) === 0) continue;
      // [lo, hi) holds the tokens whose first d units equal text[i, i + d); a token of exactly d units sorts
      // first in it.
      let lo = 0;
      let hi = sorted.length;
      for (let d = 0; lo < hi && i + d < text.length; ) {
        const c = text.charCodeAt(i + d);
        lo = firstAtLeast(sorted, tokens, lo, hi, d, c);
        hi = firstAbove(sorted, tokens, lo, hi, d, c);
        d++;
        if (lo < hi && tokens[sorted[lo]].length === d) seen.add(sorted[lo++]);
      }
    }
    return [...seen];
  }
}

// Narrowing searches from the end where the answer usually is: the range keeps most of its tokens at each
// character (they share the text's prefix so far), so a step costs one or two comparisons rather than a
// binary search's log2(range), and a long shared prefix costs little per character.

/** The code unit at `d` of the token at sorted index k (no closure: this runs per character of the text). */
function unitAt(sorted: Int32Array, tokens: readonly string[], k: number, d: number): number {
  return tokens[sorted[k]].charCodeAt(d);
}

/** First index in [lo, hi) whose token has a code unit >= c at `d` (all tokens there are longer than d). */
function firstAtLeast(sorted: Int32Array, tokens: readonly string[], lo: number, hi: number, d: number, c: number): number {
  if (lo >= hi || unitAt(sorted, tokens, lo, d) >= c) return lo;
  // Below c at lo: gallop up to a bound, then halve.
  let below = lo;
  let step = 1;
  while (below + step < hi && unitAt(sorted, tokens, below + step, d) < c) {
    below += step;
    step *= 2;
  }
  let top = Math.min(below + step, hi);
  while (below + 1 < top) {
    const mid = (below + top) >>> 1;
    if (unitAt(sorted, tokens, mid, d) < c) below = mid;
    else top = mid;
  }
  return top;
}

/** First index in [lo, hi) whose token has a code unit > c at `d` (hi when none), the tokens from lo having >= c. */
function firstAbove(sorted: Int32Array, tokens: readonly string[], lo: number, hi: number, d: number, c: number): number {
  if (lo >= hi || unitAt(sorted, tokens, hi - 1, d) <= c) return hi;
  // Above c at hi - 1: gallop down to a bound, then halve.
  let above = hi - 1;
  let step = 1;
  while (above - step >= lo && unitAt(sorted, tokens, above - step, d) > c) {
    above -= step;
    step *= 2;
  }
  let bottom = Math.max(above - step, lo - 1);
  while (bottom + 1 < above) {
    const mid = (bottom + above) >>> 1;
    if (unitAt(sorted, tokens, mid, d) > c) above = mid;
    else bottom = mid;
  }
  return above;
}
