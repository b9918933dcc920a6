// One walk of the whole vocabulary trie from a set of parses: the tokens whose every byte the grammar
// accepts. It is the inner loop of building a state's cached mask (token-masks.ts) and of the matcher's
// exact masks near a token budget, so it runs over most of a 262,144-token vocabulary's ~600,000 nodes
// when a state accepts nearly everything (inside a string).
//
// Most of those nodes continue a single parse whose state has no calls and cannot return (the string's
// content loop): for them a level is one state and one frame kept in two small arrays here, and a byte is
// one table lookup. Only where a byte leads to a state that calls or returns is the level built in full
// by Levels (parse-levels.ts).
import type { Automaton } from "./automaton.js";
import { LEFT, type Levels } from "./parse-levels.js";
import type { TokenTrie } from "./vocabulary.js";

export interface TrieWalkOptions {
  /** Skip subtrees after which the grammar needs more than this many bytes to complete (default: no bound). */
  room?: number;
  /** Follow only shortest completions: each byte must shorten the completion by one. */
  shortest?: boolean;
}

/**
 * Calls `onToken(node, depth, inside, insideDist, minDist)` for every trie node holding tokens whose bytes
 * are accepted from the parses at level 0 of `lv`. `inside`: some parse took them without returning below
 * its start frame (LEFT); `insideDist` / `minDist`: the shortest completion after them over those parses /
 * over all.
 */
export function walkTrie(
  lv: Levels,
  a: Automaton,
  trie: TokenTrie,
  onToken: (node: number, depth: number, inside: boolean, insideDist: number, minDist: number) => void,
  opts: TrieWalkOptions = {},
): void {
  const room = opts.room ?? Infinity;
  const shortest = opts.shortest === true;
  const d0 = lv.minDist[0];
  const { nodeByte, nodeDepth, subtreeEnd, subtreeDepth, tokenStart, numNodes } = trie;
  const { next, plain, dist, classOf, numClasses: C } = a;
  const frames = lv.frames;
  const maxD = trie.maxTokenBytes + 1;
  // The fast lane: ss[d] >= 0 when level d is the single plain parse (ss[d], sf[d]), not built in lv.
  const ss = new Int32Array(maxD + 1).fill(-1);
  const sf = new Int32Array(maxD + 1);
  const one = new Int32Array(1);
  const oneFrame = new Int32Array(1);
  if (!shortest && lv.size[0] === 1 && plain[lv.stateAt(0, 0)]) {
    ss[0] = lv.stateAt(0, 0);
    sf[0] = lv.frameAt(0, 0);
  }
  const fm = new Int32Array(maxD + 1);
  fm[0] = frames.length;
  for (let i = 1; i < numNodes; ) {
    const d = nodeDepth[i];
    const b = nodeByte[i];
    const ps = ss[d - 1];
    let md: number;
    let inside: boolean;
    let insideDist: number;
    let t = -1;
    if (ps >= 0) t = next[ps * C + classOf[b]];
    if (ps >= 0 && t < 0) {
      i = subtreeEnd[i];
      continue;
    }
    if (ps >= 0 && plain[t]) {
      const f = sf[d - 1];
      ss[d] = t;
      sf[d] = f;
      fm[d] = fm[d - 1];
      md = dist[t] + frames.dist[f];
      inside = frames.root[f] !== LEFT;
      insideDist = inside ? md : Infinity;
    } else {
      if (ps >= 0) {
        // The parent level was on the fast lane: build it in lv before going on from it.
        frames.length = fm[d - 1];
        one[0] = ps;
        oneFrame[0] = sf[d - 1];
        lv.start(d - 1, one, oneFrame, 1);
      }
      if (!(shortest ? lv.advance(d - 1, b, d0 - d) : lv.advance(d - 1, b))) {
        i = subtreeEnd[i];
        continue;
      }
      fm[d] = lv.frameMark[d];
      ss[d] = !shortest && lv.size[d] === 1 && plain[lv.stateAt(d, 0)] ? lv.stateAt(d, 0) : -1;
      if (ss[d] >= 0) sf[d] = lv.frameAt(d, 0);
      md = lv.minDist[d];
      inside = lv.inside[d] > 0;
      insideDist = lv.insideDist[d];
    }
    // Each further byte shortens the completion by one at most: prune what cannot get back within room.
    if (room !== Infinity && md - (subtreeDepth[i] - d) > room) {
      i = subtreeEnd[i];
      continue;
    }
    if (tokenStart[i + 1] > tokenStart[i]) onToken(i, d, inside, insideDist, md);
    i++;
  }
}
