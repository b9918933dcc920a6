// A compiled grammar bound to a vocabulary: for each automaton state, which tokens it accepts whatever the
// stack below it, which it refuses whatever the stack, and which depend on the stack. xgrammar's adaptive
// token mask cache, with one change: where a token would leave the rule, this walk goes on into every place
// the grammar calls the rule from (returning on LEFT, parse-levels.ts) instead of stopping, so a token is
// "uncertain" only if some caller could really take its rest. After a JSON string's content that is the
// handful of tokens like `",` or `"}`, not every token that starts with a quote.
//
// An entry costs one walk of the vocabulary trie from its state, pruned where the grammar refuses a prefix:
// a state inside a string visits most of the trie, one expecting `{` only the tokens that begin with it.
// Entries are built the first time a state is met and kept with the grammar for later requests.
import type { Automaton } from "./automaton.js";
import { Frames, Levels, OPEN } from "./parse-levels.js";
import { walkTrie } from "./trie-walk.js";
import type { TokenTrie } from "./vocabulary.js";

/** The tokens a state decides on its own, and those it leaves to the stack. */
export interface StateMask {
  /** Tokens accepted whatever the stack: a bitset over ids when many, else a sorted id list. */
  accepted: Uint32Array | Int32Array;
  acceptedIsBitset: boolean;
  acceptedCount: number;
  /** Trie nodes (preorder) whose tokens depend on the stack, and each one's common prefix with the one before. */
  uncertain: Int32Array;
  uncertainLcp: Int32Array;
  /**
   * How an accepted token changes the shortest completion (bytes), for the tokens where it is not 0: ids and
   * their rise, by rise ascending; and the largest rise (0 when none is positive). Near a token budget the
   * matcher drops the tokens that rise too far, and only these can be the ones.
   */
  riseIds: Int32Array;
  riseBy: Int32Array;
  maxRise: number;
}

/** An accepted set larger than this fraction of the vocabulary is kept as a bitset. */
const BITSET_FRACTION = 1 / 32;
/** Work (state x edge visits) at most for finding states that share an entry; past it, none share. */
const SHARING_WORK = 64_000_000;

/**
 * For each state, the state whose entry it can use: two states share one when they cannot be told apart
 * by any text of up to `depth` bytes. A state's entry only depends on what its walk meets within the
 * longest token, so the positions of a long counted repetition (`maxLength: 200`: 200 states in a row)
 * that are more than a token away from the count's end all get one entry instead of one walk each.
 *
 * Moore's partition refinement, stopped after enough rounds: states start apart by rule, accepting flag,
 * shortest completion and the rules they call, and each round splits them by the blocks their bytes and
 * their calls' return states lead to. After r rounds, states in one block agree on every path of r edges;
 * a path of `depth` bytes crosses at most `depth` byte edges plus a call edge per nested rule entered
 * without a byte, hence depth + rules + 2 rounds. A partition that stops changing is final earlier.
 */
export function sharedEntries(a: Automaton, depth: number): Int32Array {
  const S = a.numStates;
  const C = a.numClasses;
  const rounds = depth + a.ruleNames.length + 2;
  let maxCalls = 0;
  for (let s = 0; s < S; s++) maxCalls = Math.max(maxCalls, a.callStart[s + 1] - a.callStart[s]);
  // Each state's signature as a row of integers: its block, then per byte class the target's block (-1:
  // none), then per call the rule and the return state's block. Rows are grouped by an exact comparison,
  // found through a hash of the row.
  const width = 1 + C + 2 * maxCalls;
  const row = new Int32Array(S * width);
  let block = new Int32Array(S);
  const group = (initial: boolean): number => {
    const buckets = new Map<number, number[]>();
    const next = new Int32Array(S);
    let count = 0;
    for (let s = 0; s < S; s++) {
      const o = s * width;
      if (initial) {
        row.fill(-1, o, o + width);
        row[o] = a.ruleOf[s] * 4 + a.accepting[s] * 2;
        row[o + 1] = a.dist[s];
        for (let j = a.callStart[s], k = o + 2; j < a.callStart[s + 1]; j++, k++) row[k] = a.callRule[j];
      } else {
        row[o] = block[s];
        for (let c = 0; c < C; c++) {
          const t = a.next[s * C + c];
          row[o + 1 + c] = t < 0 ? -1 : block[t];
        }
        for (let j = a.callStart[s], k = o + 1 + C; j < a.callStart[s + 1]; j++, k += 2) {
          row[k] = a.callRule[j];
          row[k + 1] = block[a.callReturn[j]];
        }
      }
      let h = 0;
      for (let k = o; k < o + width; k++) h = (Math.imul(h, 0x01000193) ^ row[k]) | 0;
      const list = buckets.get(h);
      let found = -1;
      if (list !== undefined) {
        for (const t of list) {
          let same = true;
          for (let k = 0; k < width && same; k++) same = row[t * width + k] === row[o + k];
          if (same) {
            found = next[t];
            break;
          }
        }
        if (found < 0) list.push(s);
      } else {
        buckets.set(h, [s]);
      }
      next[s] = found >= 0 ? found : count++;
    }
    block = next;
    return count;
  };
  let count = group(true);
  let work = 0;
  for (let r = 0; r < rounds; r++) {
    const n = group(false);
    work += S * width;
    const stable = n === count;
    count = n;
    if (stable || n === S) break; // no block split, or every state apart already
    if (work > SHARING_WORK) return Int32Array.from({ length: S }, (_, i) => i);
  }
  const first = new Int32Array(count).fill(-1);
  const rep = new Int32Array(S);
  for (let s = 0; s < S; s++) {
    if (first[block[s]] < 0) first[block[s]] = s;
    rep[s] = first[block[s]];
  }
  return rep;
}

export class GrammarMasks {
  private readonly entries: (StateMask | undefined)[];
  private readonly frames = new Frames(1024);
  private readonly levels: Levels;
  private shareOf: Int32Array | null = null;
  /** Entries built so far, and their bytes (for the benchmark and the docs' figures). */
  built = 0;
  bytes = 0;

  constructor(
    readonly automaton: Automaton,
    readonly trie: TokenTrie,
  ) {
    this.entries = new Array(automaton.numStates);
    this.levels = new Levels(automaton, this.frames);
  }

  /** The entry of `state`, built on first use (or the one it shares, see sharedEntries). */
  entry(state: number): StateMask {
    this.shareOf ??= sharedEntries(this.automaton, this.trie.maxTokenBytes);
    const rep = this.shareOf[state];
    return this.entries[rep] ?? (this.entries[rep] = this.build(rep));
  }

  /** Builds the entry of `state` itself, whatever it shares (for tests of the sharing). */
  ownEntry(state: number): StateMask {
    return this.build(state);
  }

  /** Builds the entries of every state (for measuring; a matcher builds them as it meets them). */
  buildAll(): void {
    for (let s = 0; s < this.automaton.numStates; s++) this.entry(s);
  }

  /** Distinct entries among the states (after sharing). */
  get distinctEntries(): number {
    this.shareOf ??= sharedEntries(this.automaton, this.trie.maxTokenBytes);
    return new Set(this.shareOf).size;
  }

  private build(state: number): StateMask {
    const trie = this.trie;
    const tokenStart = trie.tokenStart;
    this.frames.length = 3;
    this.levels.start(0, [state], [OPEN], 1);
    const acceptedNodes: number[] = [];
    const uncertain: number[] = [];
    const rises: [number, number][] = [];
    let acceptedCount = 0;
    const base = this.automaton.dist[state];
    walkTrie(this.levels, this.automaton, trie, (node, _d, inside, insideDist) => {
      if (inside) {
        acceptedNodes.push(node);
        acceptedCount += tokenStart[node + 1] - tokenStart[node];
        if (insideDist !== base) for (let k = tokenStart[node]; k < tokenStart[node + 1]; k++) rises.push([trie.tokens[k], insideDist - base]);
      } else {
        uncertain.push(node);
      }
    });

    const N = trie.vocabSize;
    const asBitset = acceptedCount > N * BITSET_FRACTION;
    let accepted: Uint32Array | Int32Array;
    if (asBitset) {
      const bits = new Uint32Array((N + 31) >>> 5);
      for (const node of acceptedNodes) {
        for (let k = tokenStart[node]; k < tokenStart[node + 1]; k++) {
          const id = trie.tokens[k];
          bits[id >>> 5] |= 1 << (id & 31);
        }
      }
      accepted = bits;
    } else {
      const ids = new Int32Array(acceptedCount);
      let n = 0;
      for (const node of acceptedNodes) for (let k = tokenStart[node]; k < tokenStart[node + 1]; k++) ids[n++] = trie.tokens[k];
      accepted = ids.sort();
    }
    const lcp = new Int32Array(uncertain.length);
    for (let j = 1; j < uncertain.length; j++) lcp[j] = commonPrefix(trie, uncertain[j - 1], uncertain[j]);
    rises.sort((x, y) => x[1] - y[1]);
    const entry: StateMask = {
      accepted,
      acceptedIsBitset: asBitset,
      acceptedCount,
      uncertain: Int32Array.from(uncertain),
      uncertainLcp: lcp,
      riseIds: Int32Array.from(rises, (r) => r[0]),
      riseBy: Int32Array.from(rises, (r) => r[1]),
      maxRise: Math.max(0, rises.length > 0 ? rises[rises.length - 1][1] : 0),
    };
    this.built++;
    this.bytes += accepted.byteLength + entry.uncertain.byteLength * 2 + entry.riseIds.byteLength * 2;
    return entry;
  }
}

/** Length of the common prefix of two trie nodes' byte strings. */
function commonPrefix(trie: TokenTrie, a: number, b: number): number {
  const x = trie.tokenBytes(trie.tokens[trie.tokenStart[a]]);
  const y = trie.tokenBytes(trie.tokens[trie.tokenStart[b]]);
  let m = 0;
  while (m < x.length && m < y.length && x[m] === y[m]) m++;
  return m;
}
