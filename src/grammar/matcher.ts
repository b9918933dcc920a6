// The grammar's state during one generation: which tokens may come next (a mask over the vocabulary) and
// the move past the token that was sampled.
//
// A mask is the union, over the parses the matcher holds, of each parse state's cached tokens (the ones its
// state accepts whatever the stack, token-masks.ts) and of its stack-dependent tokens, checked against the
// real stack by a walk of their own small trie. End-of-sequence is allowed exactly where the grammar may
// end.
//
// Token budget. Given how many tokens may still come (max new tokens, the context), the mask keeps the
// output completable: a token is allowed only if what remains of the grammar afterwards (its shortest
// completion, in bytes) still fits in the tokens left, counting one token per byte and one for
// end-of-sequence. So a JSON document is closed before the budget runs out instead of being cut off.
// While the budget is far, the cached masks are used as they are (their largest growth is known per
// state); near it, the vocabulary is walked with the completion checked token by token.
import { GrammarError } from "./ast.js";
import { EMPTY, Frames, Levels } from "./parse-levels.js";
import type { GrammarMasks, StateMask } from "./token-masks.js";
import { walkTrie } from "./trie-walk.js";

export class GrammarMatcher {
  private readonly frames = new Frames();
  private readonly levels: Levels;
  /** The parses after the tokens accepted so far: states and frames (their kernel; closing them gives the rest). */
  private kernelStates: Int32Array;
  private kernelFrames: Int32Array;
  private kernelSize = 1;
  /** Frames the kernel uses; later ones are scratch of the last mask. */
  private keptFrames = 3;
  private ended = false;
  private readonly eos: number[];

  constructor(
    readonly masks: GrammarMasks,
    eosTokenIds: readonly number[],
  ) {
    const a = masks.automaton;
    this.levels = new Levels(a, this.frames);
    this.kernelStates = Int32Array.of(a.ruleStart[a.root]);
    this.kernelFrames = Int32Array.of(EMPTY);
    this.eos = eosTokenIds.filter((id) => id >= 0 && id < masks.trie.vocabSize);
  }

  /** True once end-of-sequence was accepted. */
  get finished(): boolean {
    return this.ended;
  }

  /** Whether the text so far is a whole sentence of the grammar (end-of-sequence may come now). */
  get canEnd(): boolean {
    this.startLevel();
    return this.levels.canEnd[0];
  }

  /** Fewest bytes that complete the grammar from here (0 when it may end now). */
  get remainingBytes(): number {
    this.startLevel();
    return this.levels.canEnd[0] ? 0 : this.levels.minDist[0];
  }

  private startLevel(): void {
    this.frames.length = this.keptFrames;
    this.levels.start(0, this.kernelStates, this.kernelFrames, this.kernelSize);
  }

  /**
   * Sets mask[id] to 1 for the tokens that may come next and 0 for the rest; `budget` is how many tokens
   * may still be generated, this one included. Returns whether any token is allowed.
   */
  fillMask(mask: Uint8Array, budget = Infinity): boolean {
    mask.fill(0);
    if (this.ended || budget < 1) return false;
    this.startLevel();
    const canEnd = this.levels.canEnd[0];
    // Bytes the grammar may still need after this token: one token per byte, one for end-of-sequence.
    const room = budget - 1 - (this.eos.length > 0 ? 1 : 0);
    let any = this.cachedMask(mask, room);
    if (!any && !canEnd) {
      // No token leaves room to finish: take the shortest way towards the end (the output stays a prefix
      // of the grammar's language, and ends with stopReason "length").
      any = this.walkMask(mask, Infinity, true);
    }
    // End-of-sequence only where the grammar may end, even for a vocabulary that gives it bytes.
    for (const id of this.eos) mask[id] = canEnd ? 1 : 0;
    return any || (canEnd && this.eos.length > 0);
  }

  /**
   * The mask from the parses' cached entries: each parse's accepted tokens, less those whose rise of the
   * shortest completion would not leave `room`, and its stack-dependent tokens checked one by one.
   */
  private cachedMask(mask: Uint8Array, room: number): boolean {
    const lv = this.levels;
    const a = this.masks.automaton;
    const n = this.kernelSize;
    // Level 0's first kernelSize parses are the kernel; copied, as the checks below reuse level 0.
    const states: number[] = [];
    const frames: number[] = [];
    for (let i = 0; i < n; i++) {
      states.push(lv.stateAt(0, i));
      frames.push(lv.frameAt(0, i));
    }
    const entries = states.map((s) => this.masks.entry(s));
    const allowance = states.map((s, i) => room - (a.dist[s] + this.frames.dist[frames[i]]));
    // Dropping one parse's risers is only right when no other parse could have allowed them.
    if (n > 1 && entries.some((e, i) => allowance[i] < e.maxRise)) return this.walkMask(mask, room);
    let any = false;
    const seen = new Set<number>();
    for (let i = 0; i < n; i++) {
      const e = entries[i];
      const allow = allowance[i];
      if (!seen.has(states[i])) {
        seen.add(states[i]);
        if (allow >= 0) {
          if (e.acceptedCount > 0) orInto(mask, e);
          let kept = e.acceptedCount;
          // Tokens that would grow the completion past the room (only near a budget).
          for (let k = e.riseIds.length - 1; k >= 0 && e.riseBy[k] > allow; k--, kept--) mask[e.riseIds[k]] = 0;
          if (kept > 0) any = true;
        } else {
          // Not even the tokens that keep the completion as long fit: only those that shorten it enough.
          for (let k = 0; k < e.riseIds.length && e.riseBy[k] <= allow; k++) {
            mask[e.riseIds[k]] = 1;
            any = true;
          }
        }
      }
      if (e.uncertain.length > 0 && this.checkUncertain(mask, e, states[i], frames[i], room)) any = true;
    }
    return any;
  }

  /** Walks a state's stack-dependent tokens from one parse with its real stack. */
  private checkUncertain(mask: Uint8Array, e: StateMask, state: number, frame: number, room: number): boolean {
    const trie = this.masks.trie;
    const lv = this.levels;
    lv.start(0, [state], [frame], 1);
    let any = false;
    let valid = 0; // levels 0..valid hold the previous token's prefix
    let dead = Infinity; // the previous token's prefix of this length + 1 was refused
    for (let j = 0; j < e.uncertain.length; j++) {
      const node = e.uncertain[j];
      const l = e.uncertainLcp[j];
      if (l > dead) continue;
      dead = Infinity;
      if (l < valid) valid = l;
      const bytes = trie.tokenBytes(trie.tokens[trie.tokenStart[node]]);
      const len = bytes.length;
      for (let d = valid; d < len; d++) {
        if (!lv.advance(d, bytes[d])) {
          dead = d;
          break;
        }
      }
      if (dead !== Infinity) {
        valid = dead;
        continue;
      }
      valid = len;
      if (lv.minDist[len] <= room) {
        for (let k = trie.tokenStart[node]; k < trie.tokenStart[node + 1]; k++) mask[trie.tokens[k]] = 1;
        any = true;
      }
    }
    this.startLevel();
    return any;
  }

  /**
   * The exact mask by one walk of the whole trie from the current parses, keeping tokens after which the
   * grammar can still complete within `room` bytes; with `shortest`, only tokens on a shortest completion.
   */
  private walkMask(mask: Uint8Array, room: number, shortest = false): boolean {
    const trie = this.masks.trie;
    const { tokenStart, tokens } = trie;
    this.startLevel();
    let any = false;
    walkTrie(
      this.levels,
      this.masks.automaton,
      trie,
      (node, _d, _inside, _insideDist, minDist) => {
        if (minDist > room) return;
        for (let k = tokenStart[node]; k < tokenStart[node + 1]; k++) mask[tokens[k]] = 1;
        any = true;
      },
      { room, shortest },
    );
    this.startLevel();
    return any;
  }

  /** Moves past `token`; throws a GrammarError if the grammar does not allow it here. */
  accept(token: number): void {
    if (this.ended) throw new GrammarError("the grammar already ended");
    if (this.eos.includes(token)) {
      if (!this.canEnd) throw new GrammarError(`end-of-sequence (token ${token}) where the grammar cannot end`);
      this.ended = true;
      return;
    }
    const trie = this.masks.trie;
    if (token < 0 || token >= trie.vocabSize) throw new GrammarError(`token ${token} is not in the vocabulary`);
    const bytes = trie.tokenBytes(token);
    if (bytes.length === 0) throw new GrammarError(`token ${token} stands for no text, which the grammar cannot match`);
    this.startLevel();
    const lv = this.levels;
    for (let d = 0; d < bytes.length; d++) {
      if (!lv.advance(d, bytes[d])) throw new GrammarError(`token ${token} does not continue the grammar here`);
    }
    const L = bytes.length;
    const n = lv.kernel[L];
    if (this.kernelStates.length < n) {
      this.kernelStates = new Int32Array(n);
      this.kernelFrames = new Int32Array(n);
    }
    for (let i = 0; i < n; i++) {
      this.kernelStates[i] = lv.stateAt(L, i);
      this.kernelFrames[i] = lv.frameAt(L, i);
    }
    this.kernelSize = n;
    this.keptFrames = lv.frameMark[L - 1];
  }
}

/** mask |= the entry's accepted tokens. */
function orInto(mask: Uint8Array, e: StateMask): void {
  const acc = e.accepted;
  if (!e.acceptedIsBitset) {
    for (let i = 0; i < acc.length; i++) mask[acc[i]] = 1;
    return;
  }
  const n = mask.length;
  for (let w = 0; w < acc.length; w++) {
    let x = acc[w];
    if (x === 0) continue;
    const base = w << 5;
    if (x === 0xffffffff) {
      mask.fill(1, base, Math.min(base + 32, n));
      continue;
    }
    while (x !== 0) {
      const bit = 31 - Math.clz32(x & -x);
      mask[base + bit] = 1;
      x &= x - 1;
    }
  }
}
