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

/** A candidate join of symbol `left` with the symbol after it, whose joined text `size` units long scores `score`. */
interface Pair {
  left: number;
  right: number;
  score: number;
  size: number;
}

/** True when pair a is taken before pair b: higher score, then further left. */
const before = (a: Pair, b: Pair): boolean => a.score > b.score || (a.score === b.score && a.left < b.left);

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

  const heap: Pair[] = [];
  const push = (p: Pair) => {
    let i = heap.push(p) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i], heap[parent])) break;
      [heap[i], heap[parent]] = [heap[parent], heap[i]];
      i = parent;
    }
  };
  const pop = (): Pair => {
    const top = heap[0];
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < heap.length && before(heap[l], heap[best])) best = l;
        if (r < heap.length && before(heap[r], heap[best])) best = r;
        if (best === i) break;
        [heap[i], heap[best]] = [heap[best], heap[i]];
        i = best;
      }
    }
    return top;
  };
  const tryPair = (left: number, right: number) => {
    if (left < 0 || right < 0) return;
    const size = len[left] + len[right];
    const id = v.ids.get(text.slice(start[left], start[left] + size));
    if (id !== undefined) push({ left, right, score: v.scores[id], size });
  };

  for (let i = 1; i < count; i++) tryPair(i - 1, i);
  while (heap.length > 0) {
    const p = pop();
    // A pair is stale once either symbol was merged since it was queued (both only ever grow, or empty).
    if (len[p.left] === 0 || len[p.right] === 0 || len[p.left] + len[p.right] !== p.size) continue;
    len[p.left] += len[p.right];
    len[p.right] = 0;
    next[p.left] = next[p.right];
    if (next[p.right] >= 0) prev[next[p.right]] = p.left;
    tryPair(prev[p.left], p.left);
    tryPair(p.left, next[p.left]);
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
