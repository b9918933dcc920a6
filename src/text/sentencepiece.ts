// SentencePiece BPE as llama.cpp runs it on a GGUF vocabulary of tokenizer.ggml.model "llama" (Llama 2,
// Gemma): the text, with its spaces already written as "▁", starts as one symbol per character; the
// adjacent pair whose joined text is a token with the highest score is joined, again and again, the
// leftmost pair first among equal scores, until no adjacent pair joins to a token. A character that is not a
// token is written as its UTF-8 bytes, each the byte token "<0xXX>" (byte fallback).
//
// This is the algorithm itself (llm_tokenizer_spm_session in llama.cpp's src/llama-vocab.cpp, after
// sentencepiece's bpe_model.cc), not a list of merges derived from the scores: a merge list ranks the pairs,
// where SentencePiece ranks the joined token, so two ways of building one token tie here and are taken
// leftmost first, which no merge order reproduces; and for a 262k vocabulary the derived list holds half a
// million merges (several seconds and about 50 MB in @huggingface/tokenizers), which a crafted vocabulary
// could multiply. Here the work is proportional to the text: one priority queue of candidate pairs, each
// a map lookup of the joined text.

import { TokenizerError } from "./tokenizer-json.js";

export interface SentencePieceVocabulary {
  /** Token id by text (every token of the vocabulary, whatever its type, as llama.cpp looks them up). */
  ids: ReadonlyMap<string, number>;
  /** Score by id. */
  scores: ArrayLike<number>;
  /** Id of the byte token of each byte value (256 entries, -1 where the vocabulary has none). */
  byteTokens: Int32Array;
}

/**
 * The queue of candidate joins, a binary heap over parallel arrays (no object per candidate): the pair of
 * symbol `left` with the symbol after it (`right`), whose joined text, `size` units long, scores `score`.
 * The top is the highest score, then the leftmost.
 */
class PairQueue {
  private score = new Float64Array(64);
  private left = new Int32Array(64);
  private right = new Int32Array(64);
  private size = new Int32Array(64);
  length = 0;
  /** Set by pop(). */
  topLeft = 0;
  topRight = 0;
  topSize = 0;

  private before(i: number, j: number): boolean {
    return this.score[i] > this.score[j] || (this.score[i] === this.score[j] && this.left[i] < this.left[j]);
  }

  private swap(i: number, j: number): void {
    const { score, left, right, size } = this;
    [score[i], score[j]] = [score[j], score[i]];
    [left[i], left[j]] = [left[j], left[i]];
    [right[i], right[j]] = [right[j], right[i]];
    [size[i], size[j]] = [size[j], size[i]];
  }

  push(score: number, left: number, right: number, size: number): void {
    if (this.length === this.score.length) {
      const grow = <T extends Float64Array | Int32Array>(a: T): T => {
        const b = new (a.constructor as new (n: number) => T)(a.length * 2);
        b.set(a);
        return b;
      };
      this.score = grow(this.score);
      this.left = grow(this.left);
      this.right = grow(this.right);
      this.size = grow(this.size);
    }
    let i = this.length++;
    this.score[i] = score;
    this.left[i] = left;
    this.right[i] = right;
    this.size[i] = size;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  pop(): void {
    this.topLeft = this.left[0];
    this.topRight = this.right[0];
    this.topSize = this.size[0];
    const last = --this.length;
    if (last === 0) return;
    this.score[0] = this.score[last];
    this.left[0] = this.left[last];
    this.right[0] = this.right[last];
    this.size[0] = this.size[last];
    for (let i = 0; ; ) {
      const l = 2 * i + 1;
      const r = l + 1;
      let best = i;
      if (l < last && this.before(l, best)) best = l;
      if (r < last && this.before(r, best)) best = r;
      if (best === i) break;
      this.swap(i, best);
      i = best;
    }
  }
}

/** Appends the ids of `text` (a raw fragment with spaces as "▁") to `out`. */
export function sentencePieceEncode(text: string, v: SentencePieceVocabulary, out: number[]): void {
  if (text.length === 0) return;
  // Symbols: one per code point, as offsets into `text`; merged symbols stay contiguous (a symbol absorbs
  // the one after it), so a symbol's text is always text.slice(start, start + len).
  const n = text.length;
  const start = new Int32Array(n);
  const len = new Int32Array(n);
  const prev = new Int32Array(n);
  const next = new Int32Array(n);
  let count = 0;
  for (let i = 0; i < n; ) {
    const c = text.codePointAt(i)!;
    const units = c > 0xffff ? 2 : 1;
    start[count] = i;
    len[count] = units;
    prev[count] = count - 1;
    next[count] = i + units < n ? count + 1 : -1;
    count++;
    i += units;
  }

  const queue = new PairQueue();
  const tryPair = (left: number, right: number) => {
    if (left < 0 || right < 0) return;
    const size = len[left] + len[right];
    const id = v.ids.get(text.slice(start[left], start[left] + size));
    if (id !== undefined) queue.push(v.scores[id], left, right, size);
  };

  for (let i = 1; i < count; i++) tryPair(i - 1, i);
  while (queue.length > 0) {
    queue.pop();
    const { topLeft: left, topRight: right, topSize: size } = queue;
    // A pair is stale once either symbol was merged since it was queued (both only ever grow, or empty).
    if (len[left] === 0 || len[right] === 0 || len[left] + len[right] !== size) continue;
    len[left] += len[right];
    len[right] = 0;
    next[left] = next[right];
    if (next[right] >= 0) prev[next[right]] = left;
    tryPair(prev[left], left);
    tryPair(left, next[left]);
  }

  const encoder = new TextEncoder();
  for (let s = 0; s !== -1; s = next[s]) {
    const piece = text.slice(start[s], start[s] + len[s]);
    const id = v.ids.get(piece);
    if (id !== undefined) {
      out.push(id);
      continue;
    }
    // Only a single character can be unknown: every join made a token.
    for (const b of encoder.encode(piece)) {
      const id = v.byteTokens[b];
      if (id < 0) throw new TokenizerError(`the text holds ${JSON.stringify(piece)}, which this vocabulary has neither a token nor the byte token <0x${b.toString(16).toUpperCase().padStart(2, "0")}> for`);
      out.push(id);
    }
  }
}
