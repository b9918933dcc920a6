// A Grammar (ast.ts) compiled into a byte-level pushdown automaton: one deterministic automaton per rule
// whose edges are bytes or calls of other rules (a recursive transition network).
//
//   1. Which rules are calls. A rule that takes part in recursion is always called; any other rule small
//      enough is inlined into its callers (the whitespace and character-class rules of a JSON grammar),
//      so most of a grammar is plain automaton and the stack only grows where the grammar nests.
//   2. A nondeterministic automaton per called rule (Thompson's construction): literals and UTF-8 byte
//      ranges (utf8.ts) as byte edges, `*` `+` `?` as loops and skips, `{m,n}` as copies, references as
//      call edges.
//   3. Byte classes: the bytes no edge tells apart share a class, so a state's transitions are one row of
//      a table indexed by class (a JSON grammar has a few dozen classes, not 256).
//   4. Subset construction per rule, with each called rule as one more input symbol: the matcher then
//      follows one state per rule frame; it only keeps several where a call and a byte (or a return)
//      compete.
//   5. Shortest completion: for every state the fewest bytes that finish its rule (Knuth's generalization
//      of Dijkstra, as a call costs its rule's shortest completion). States that can never finish are cut
//      off, so every prefix the matcher allows can be completed; an empty language is refused.
//   6. Left recursion (a rule reaching itself before consuming a byte) is refused: a stack-based matcher
//      would loop on it. llama.cpp refuses it too.
//
// Sizes are bounded before anything proportional to them is built, each with one GrammarError line.
import { GrammarError, type Expr, type Grammar } from "./ast.js";
import { utf8Bytes, utf8Sequences } from "./utf8.js";

/** Nondeterministic states at most (the expanded grammar: repetition counts multiply). */
export const MAX_NFA_STATES = 400_000;
/** Deterministic states at most, over all rules. */
export const MAX_STATES = 1 << 15;
/** Transition table entries (states x byte classes) at most: 4 bytes each. */
export const MAX_TABLE = 1 << 22;
/** A rule whose expansion has at most this many states is inlined into its callers (unless recursive). */
const INLINE_STATES = 48;

/** Bytes of completion that mean "never": larger than any real distance. */
export const UNREACHABLE = 0x3fffffff;

export interface Automaton {
  /** Names of the called rules, by rule index (inlined rules have no index). */
  ruleNames: string[];
  /** Start state of each rule. */
  ruleStart: Int32Array;
  /** Index of the rule matching starts in. */
  root: number;
  numStates: number;
  /** The rule each state belongs to. */
  ruleOf: Int32Array;
  /** Byte -> class. */
  classOf: Uint8Array;
  numClasses: number;
  /** next[state * numClasses + class]: the state after that byte, or -1. */
  next: Int32Array;
  /** 1 where the state's rule may end (return to its caller). */
  accepting: Uint8Array;
  /** Calls of state s: callRule / callReturn[callStart[s] .. callStart[s + 1]). */
  callStart: Int32Array;
  callRule: Int32Array;
  callReturn: Int32Array;
  /** For each rule, the states its callers resume in when it returns. */
  returnSites: Int32Array[];
  /** Fewest bytes that finish the state's rule (UNREACHABLE: never). */
  dist: Int32Array;
  /** 1 for states with no calls that cannot return: a byte is all they can take. */
  plain: Uint8Array;
}

// ---- 1. calls and inlining ------------------------------------------------------------------------------

function refsOf(e: Expr, out: Set<string>): Set<string> {
  if (e.kind === "ref") out.add(e.name);
  else if (e.kind === "seq") for (const x of e.items) refsOf(x, out);
  else if (e.kind === "alt") for (const x of e.options) refsOf(x, out);
  else if (e.kind === "repeat") refsOf(e.item, out);
  return out;
}

/** Rules that take part in a cycle of references (Tarjan's strongly connected components). */
function recursiveRules(g: Grammar): Set<string> {
  const refs = new Map([...g.rules].map(([n, e]) => [n, [...refsOf(e, new Set())]]));
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const out = new Set<string>();
  let counter = 0;
  // Iterative, so a long chain of rules cannot overflow the JavaScript stack.
  for (const start of g.rules.keys()) {
    if (index.has(start)) continue;
    const work: [string, number][] = [[start, 0]];
    index.set(start, counter);
    low.set(start, counter++);
    stack.push(start);
    onStack.add(start);
    while (work.length > 0) {
      const top = work[work.length - 1];
      const [v, i] = top;
      const succ = refs.get(v) as string[];
      if (i < succ.length) {
        top[1]++;
        const w = succ[i];
        if (!index.has(w)) {
          index.set(w, counter);
          low.set(w, counter++);
          stack.push(w);
          onStack.add(w);
          work.push([w, 0]);
        } else if (onStack.has(w)) {
          low.set(v, Math.min(low.get(v) as number, index.get(w) as number));
        }
        continue;
      }
      work.pop();
      if (work.length > 0) {
        const parent = work[work.length - 1][0];
        low.set(parent, Math.min(low.get(parent) as number, low.get(v) as number));
      }
      if (low.get(v) === index.get(v)) {
        const scc: string[] = [];
        let w: string;
        do {
          w = stack.pop() as string;
          onStack.delete(w);
          scc.push(w);
        } while (w !== v);
        if (scc.length > 1 || succ.includes(v)) for (const x of scc) out.add(x);
      }
    }
  }
  return out;
}

/** Inlined rules nest at most this deep (a chain of small rules inlines its first links, then calls). */
const MAX_INLINE_DEPTH = 8;

/**
 * States an expression expands to (inlined references included; Infinity past any bound), and which rules
 * are inlined. Rules are sized callees first, in an order found without recursion, so a chain of thousands
 * of rules cannot overflow the stack.
 */
function sizer(g: Grammar, recursive: Set<string>): { size: (e: Expr) => number; inlined: (name: string) => boolean } {
  const sizes = new Map<string, { size: number; depth: number }>();
  const inlined = (name: string) => {
    const s = sizes.get(name);
    return s !== undefined && s.size <= INLINE_STATES && s.depth < MAX_INLINE_DEPTH;
  };
  let depth = 0;
  const size = (e: Expr): number => {
    switch (e.kind) {
      case "literal":
        return utf8Bytes(e.text).length + 1;
      case "chars":
        return 2 + (e.ranges.length / 2) * 4;
      case "ref": {
        if (recursive.has(e.name) || !inlined(e.name)) return 2;
        const s = sizes.get(e.name) as { size: number; depth: number };
        depth = Math.max(depth, s.depth + 1);
        return s.size;
      }
      case "seq":
        return e.items.reduce((n, x) => n + size(x), 1);
      case "alt":
        return e.options.reduce((n, x) => n + size(x), 2);
      case "repeat": {
        const copies = e.max === Infinity ? Math.max(e.min, 1) : e.max;
        return 2 + copies * (size(e.item) + 2);
      }
    }
  };
  // Postorder of the non-recursive rules over their references.
  const refs = new Map([...g.rules].map(([n, e]) => [n, [...refsOf(e, new Set())].filter((r) => !recursive.has(r))]));
  const done = new Set<string>();
  for (const start of g.rules.keys()) {
    if (recursive.has(start) || done.has(start)) continue;
    const work: [string, number][] = [[start, 0]];
    done.add(start);
    while (work.length > 0) {
      const top = work[work.length - 1];
      const succ = refs.get(top[0]) as string[];
      if (top[1] < succ.length) {
        const next = succ[top[1]++];
        if (!done.has(next)) {
          done.add(next);
          work.push([next, 0]);
        }
        continue;
      }
      work.pop();
      depth = 0;
      const n = size(g.rules.get(top[0]) as Expr);
      sizes.set(top[0], { size: n, depth });
    }
  }
  return { size, inlined };
}

// ---- 2. nondeterministic automata ---------------------------------------------------------------------

class Nfa {
  /** Per state: epsilon targets; byte edges as [lo, hi, target] triples; calls as [rule, target] pairs. */
  readonly eps: number[][] = [];
  readonly bytes: number[][] = [];
  readonly calls: number[][] = [];

  state(): number {
    if (this.eps.length >= MAX_NFA_STATES) throw new GrammarError(`the grammar expands to more than ${MAX_NFA_STATES} automaton states (large repetition counts multiply); simplify it`);
    this.eps.push([]);
    this.bytes.push([]);
    this.calls.push([]);
    return this.eps.length - 1;
  }
}

interface Fragment {
  start: number;
  end: number;
}

class NfaBuilder {
  readonly nfa = new Nfa();
  /** Called rules by name -> rule index, in discovery order. */
  readonly ruleIndex = new Map<string, number>();
  readonly ruleNames: string[] = [];
  readonly ruleFragments: Fragment[] = [];
  private readonly pending: string[] = [];

  constructor(
    private readonly g: Grammar,
    private readonly inlined: (name: string) => boolean,
  ) {}

  /** Builds the root and every rule it calls, transitively. */
  buildAll(): void {
    this.ruleOf(this.g.root);
    while (this.pending.length > 0) {
      const name = this.pending.shift() as string;
      this.ruleFragments[this.ruleIndex.get(name) as number] = this.expr(this.g.rules.get(name) as Expr);
    }
  }

  private ruleOf(name: string): number {
    let i = this.ruleIndex.get(name);
    if (i === undefined) {
      i = this.ruleNames.length;
      this.ruleIndex.set(name, i);
      this.ruleNames.push(name);
      this.pending.push(name);
    }
    return i;
  }

  private expr(e: Expr): Fragment {
    const n = this.nfa;
    switch (e.kind) {
      case "literal": {
        const start = n.state();
        let at = start;
        for (const b of utf8Bytes(e.text)) {
          const t = n.state();
          n.bytes[at].push(b, b, t);
          at = t;
        }
        return { start, end: at };
      }
      case "chars": {
        const start = n.state();
        const end = n.state();
        for (let i = 0; i < e.ranges.length; i += 2) {
          for (const seq of utf8Sequences(e.ranges[i], e.ranges[i + 1])) {
            let at = start;
            for (let j = 0; j < seq.length; j += 2) {
              const t = j + 2 === seq.length ? end : n.state();
              n.bytes[at].push(seq[j], seq[j + 1], t);
              at = t;
            }
          }
        }
        return { start, end };
      }
      case "ref": {
        if (e.name !== this.g.root && this.inlined(e.name)) return this.expr(this.g.rules.get(e.name) as Expr);
        const start = n.state();
        const end = n.state();
        n.calls[start].push(this.ruleOf(e.name), end);
        return { start, end };
      }
      case "seq": {
        if (e.items.length === 0) {
          const s = n.state();
          return { start: s, end: s };
        }
        const parts = e.items.map((x) => this.expr(x));
        for (let i = 1; i < parts.length; i++) n.eps[parts[i - 1].end].push(parts[i].start);
        return { start: parts[0].start, end: parts[parts.length - 1].end };
      }
      case "alt": {
        const start = n.state();
        const end = n.state();
        for (const x of e.options) {
          const f = this.expr(x);
          n.eps[start].push(f.start);
          n.eps[f.end].push(end);
        }
        return { start, end };
      }
      case "repeat": {
        const start = n.state();
        let at = start;
        for (let i = 0; i < e.min; i++) {
          const f = this.expr(e.item);
          n.eps[at].push(f.start);
          at = f.end;
        }
        const end = n.state();
        if (e.max === Infinity) {
          // A loop: the item again and again, or leave.
          const f = this.expr(e.item);
          n.eps[at].push(f.start, end);
          n.eps[f.end].push(at);
        } else {
          // max - min optional copies, each one may be the last.
          for (let i = e.min; i < e.max; i++) {
            const f = this.expr(e.item);
            n.eps[at].push(f.start, end);
            at = f.end;
          }
          n.eps[at].push(end);
        }
        return { start, end };
      }
    }
  }
}

// ---- 3. byte classes -----------------------------------------------------------------------------------

function byteClasses(nfa: Nfa): { classOf: Uint8Array; numClasses: number } {
  const cut = new Uint8Array(257);
  cut[0] = 1;
  for (const edges of nfa.bytes) {
    for (let i = 0; i < edges.length; i += 3) {
      cut[edges[i]] = 1;
      cut[edges[i + 1] + 1] = 1;
    }
  }
  const classOf = new Uint8Array(256);
  let c = -1;
  for (let b = 0; b < 256; b++) {
    if (cut[b]) c++;
    classOf[b] = c;
  }
  return { classOf, numClasses: c + 1 };
}

// ---- 4. subset construction ------------------------------------------------------------------------------

interface DfaParts {
  ruleStart: number[];
  ruleOf: number[];
  accepting: number[];
  /** Per state: [class, target, ...]. */
  edges: number[][];
  /** Per state: [rule, return state, ...]. */
  calls: number[][];
}

function determinize(b: NfaBuilder, classOf: Uint8Array, numClasses: number): DfaParts {
  const nfa = b.nfa;
  const out: DfaParts = { ruleStart: [], ruleOf: [], accepting: [], edges: [], calls: [] };
  const seen = new Int32Array(nfa.eps.length).fill(-1);
  let stamp = 0;
  const closure = (seeds: number[]): number[] => {
    stamp++;
    const set: number[] = [];
    const todo = [...seeds];
    while (todo.length > 0) {
      const s = todo.pop() as number;
      if (seen[s] === stamp) continue;
      seen[s] = stamp;
      set.push(s);
      for (const t of nfa.eps[s]) if (seen[t] !== stamp) todo.push(t);
    }
    return set.sort((x, y) => x - y);
  };
  b.ruleFragments.forEach((frag, rule) => {
    const ids = new Map<string, number>();
    const sets: number[][] = [];
    const intern = (set: number[]): number => {
      const key = set.join(",");
      let id = ids.get(key);
      if (id === undefined) {
        id = out.ruleOf.length;
        if (id >= MAX_STATES) throw new GrammarError(`the grammar needs more than ${MAX_STATES} automaton states (alternatives that only differ late, or large repetition counts); simplify it`);
        ids.set(key, id);
        sets.push(set);
        out.ruleOf.push(rule);
        out.accepting.push(set.includes(frag.end) ? 1 : 0);
        out.edges.push([]);
        out.calls.push([]);
      }
      return id;
    };
    const first = out.ruleOf.length;
    out.ruleStart.push(intern(closure([frag.start])));
    for (let k = 0; first + k < out.ruleOf.length; k++) {
      const id = first + k;
      const set = sets[k];
      const byClass = new Map<number, number[]>();
      const byRule = new Map<number, number[]>();
      for (const s of set) {
        const be = nfa.bytes[s];
        for (let i = 0; i < be.length; i += 3) {
          for (let c = classOf[be[i]]; c <= classOf[be[i + 1]]; c++) {
            const list = byClass.get(c);
            if (list) list.push(be[i + 2]);
            else byClass.set(c, [be[i + 2]]);
          }
        }
        const ce = nfa.calls[s];
        for (let i = 0; i < ce.length; i += 2) {
          const list = byRule.get(ce[i]);
          if (list) list.push(ce[i + 1]);
          else byRule.set(ce[i], [ce[i + 1]]);
        }
      }
      for (const [c, targets] of [...byClass].sort((x, y) => x[0] - y[0])) out.edges[id].push(c, intern(closure(targets)));
      for (const [r, targets] of byRule) out.calls[id].push(r, intern(closure(targets)));
    }
  });
  if (out.ruleOf.length * numClasses > MAX_TABLE) {
    throw new GrammarError(`the grammar's automaton would need ${out.ruleOf.length} states x ${numClasses} byte classes, more than ${MAX_TABLE} table entries; simplify it`);
  }
  return out;
}

// ---- 4b. minimization ------------------------------------------------------------------------------------

/** Refinement work (edges examined over all rounds) at most per rule; a rule needing more stays as it is. */
const MINIMIZE_WORK = 4_000_000;

/**
 * Merges the states of each rule that have the same future (Moore's partition refinement): the same
 * accepting flag, and for every byte class and every call, successors in the same block. Subset
 * construction leaves such twins behind (a string's content right after the quote and after a character),
 * and every state costs a cached mask. Rules whose refinement would take too many rounds (long counted
 * repetitions) keep their states: correct, only less shared.
 */
function minimize(p: DfaParts): DfaParts {
  const S = p.ruleOf.length;
  const byRule = new Map<number, number[]>();
  for (let s = 0; s < S; s++) {
    const list = byRule.get(p.ruleOf[s]);
    if (list) list.push(s);
    else byRule.set(p.ruleOf[s], [s]);
  }
  const block = new Int32Array(S); // global block id per state
  let blocks = 0;
  for (const states of byRule.values()) {
    const local = refine(p, states);
    if (local === null) {
      for (const s of states) block[s] = blocks++;
      continue;
    }
    let max = -1;
    for (let i = 0; i < states.length; i++) {
      block[states[i]] = blocks + local[i];
      if (local[i] > max) max = local[i];
    }
    blocks += max + 1;
  }
  if (blocks === S) return p;
  const out: DfaParts = { ruleStart: p.ruleStart.map((s) => block[s]), ruleOf: new Array(blocks), accepting: new Array(blocks), edges: new Array(blocks), calls: new Array(blocks) };
  for (let s = 0; s < S; s++) {
    const b = block[s];
    if (out.edges[b] !== undefined) continue;
    out.ruleOf[b] = p.ruleOf[s];
    out.accepting[b] = p.accepting[s];
    out.edges[b] = p.edges[s].map((x, i) => (i % 2 === 1 ? block[x] : x));
    const calls: number[] = [];
    const seen = new Set<string>();
    for (let i = 0; i < p.calls[s].length; i += 2) {
      const key = `${p.calls[s][i]},${block[p.calls[s][i + 1]]}`;
      if (!seen.has(key)) {
        seen.add(key);
        calls.push(p.calls[s][i], block[p.calls[s][i + 1]]);
      }
    }
    out.calls[b] = calls;
  }
  return out;
}

/** Block numbers (0-based, dense) for one rule's states, or null when over the work bound. */
function refine(p: DfaParts, states: number[]): Int32Array | null {
  const index = new Map<number, number>();
  states.forEach((s, i) => index.set(s, i));
  let cur = new Int32Array(states.length);
  states.forEach((s, i) => (cur[i] = p.accepting[s]));
  let count = -1;
  let work = 0;
  for (;;) {
    const ids = new Map<string, number>();
    const nextBlocks = new Int32Array(states.length);
    for (let i = 0; i < states.length; i++) {
      const s = states[i];
      const e = p.edges[s];
      const c = p.calls[s];
      work += e.length + c.length + 1;
      let key = `${cur[i]}|`;
      for (let k = 0; k < e.length; k += 2) key += `${e[k]}:${cur[index.get(e[k + 1]) as number]},`;
      const calls: string[] = [];
      for (let k = 0; k < c.length; k += 2) calls.push(`${c[k]}:${cur[index.get(c[k + 1]) as number]}`);
      key += "|" + calls.sort().join(",");
      let id = ids.get(key);
      if (id === undefined) ids.set(key, (id = ids.size));
      nextBlocks[i] = id;
    }
    if (work > MINIMIZE_WORK) return null;
    if (ids.size === count) return nextBlocks;
    count = ids.size;
    cur = nextBlocks;
  }
}

// ---- 5. shortest completions -------------------------------------------------------------------------------

/** A binary min-heap of (key, value) pairs. */
class MinHeap {
  private keys: number[] = [];
  private vals: number[] = [];
  get size(): number {
    return this.keys.length;
  }
  push(key: number, val: number): void {
    const k = this.keys;
    const v = this.vals;
    let i = k.length;
    k.push(key);
    v.push(val);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (k[p] <= key) break;
      k[i] = k[p];
      v[i] = v[p];
      i = p;
    }
    k[i] = key;
    v[i] = val;
  }
  pop(): [number, number] {
    const k = this.keys;
    const v = this.vals;
    const top: [number, number] = [k[0], v[0]];
    const lastK = k.pop() as number;
    const lastV = v.pop() as number;
    const n = k.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        let c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && k[c + 1] < k[c]) c++;
        if (k[c] >= lastK) break;
        k[i] = k[c];
        v[i] = v[c];
        i = c;
      }
      k[i] = lastK;
      v[i] = lastV;
    }
    return top;
  }
}

/**
 * dist[s] = 0 if s may return, else the minimum over its byte edges of 1 + dist[target] and over its calls
 * of dist[callee's start] + dist[return state]. States are settled in increasing order; a call is relaxed
 * once both of its terms are settled (Knuth 1977: valid since a sum is at least each of its terms).
 */
function shortestCompletions(a: Omit<Automaton, "dist" | "plain" | "returnSites">): Int32Array {
  const S = a.numStates;
  const C = a.numClasses;
  const dist = new Int32Array(S).fill(UNREACHABLE);
  const settled = new Uint8Array(S);
  // Reverse edges: who reaches t by a byte; which calls depend on t (as return state or callee start).
  const byteFromCount = new Int32Array(S + 1);
  for (let s = 0; s < S; s++) for (let c = 0; c < C; c++) if (a.next[s * C + c] >= 0) byteFromCount[a.next[s * C + c] + 1]++;
  for (let s = 0; s < S; s++) byteFromCount[s + 1] += byteFromCount[s];
  const byteFrom = new Int32Array(byteFromCount[S]);
  const fill = byteFromCount.slice();
  for (let s = 0; s < S; s++) for (let c = 0; c < C; c++) {
    const t = a.next[s * C + c];
    if (t >= 0) byteFrom[fill[t]++] = s;
  }
  const callDeps: number[][] = Array.from({ length: S }, () => []);
  const callOwner = new Int32Array(a.callRule.length);
  for (let s = 0; s < S; s++) {
    for (let j = a.callStart[s]; j < a.callStart[s + 1]; j++) {
      callOwner[j] = s;
      callDeps[a.callReturn[j]].push(j);
      callDeps[a.ruleStart[a.callRule[j]]].push(j);
    }
  }
  const heap = new MinHeap();
  for (let s = 0; s < S; s++) {
    if (a.accepting[s]) {
      dist[s] = 0;
      heap.push(0, s);
    }
  }
  const relax = (s: number, d: number) => {
    if (d < dist[s]) {
      dist[s] = d;
      heap.push(d, s);
    }
  };
  while (heap.size > 0) {
    const [d, x] = heap.pop();
    if (settled[x] || d !== dist[x]) continue;
    settled[x] = 1;
    for (let i = byteFromCount[x]; i < byteFromCount[x + 1]; i++) relax(byteFrom[i], d + 1);
    for (const j of callDeps[x]) {
      const ret = a.callReturn[j];
      const callee = a.ruleStart[a.callRule[j]];
      if (settled[ret] && settled[callee]) relax(callOwner[j], Math.min(UNREACHABLE, dist[ret] + dist[callee]));
    }
  }
  return dist;
}

// ---- 6. left recursion ------------------------------------------------------------------------------------

function checkLeftRecursion(a: Automaton): void {
  const R = a.ruleNames.length;
  const nullable = (r: number) => a.dist[a.ruleStart[r]] === 0;
  // leftCalls[r]: rules r calls before it has consumed a byte.
  const leftCalls: Set<number>[] = [];
  for (let r = 0; r < R; r++) {
    const calls = new Set<number>();
    const seen = new Set<number>([a.ruleStart[r]]);
    const todo = [a.ruleStart[r]];
    while (todo.length > 0) {
      const s = todo.pop() as number;
      for (let j = a.callStart[s]; j < a.callStart[s + 1]; j++) {
        calls.add(a.callRule[j]);
        const ret = a.callReturn[j];
        if (nullable(a.callRule[j]) && !seen.has(ret)) {
          seen.add(ret);
          todo.push(ret);
        }
      }
    }
    leftCalls.push(calls);
  }
  const color = new Uint8Array(R); // 0 new, 1 on the path, 2 done
  const path: number[] = [];
  const visit = (r: number): void => {
    color[r] = 1;
    path.push(r);
    for (const q of leftCalls[r]) {
      if (color[q] === 1) {
        const cycle = [...path.slice(path.indexOf(q)), q].map((i) => a.ruleNames[i]).join(" -> ");
        throw new GrammarError(`left recursion: rule ${a.ruleNames[q]} reaches itself before matching any character (${cycle}); rewrite it with repetition, e.g. expr ::= term ("+" term)*`);
      }
      if (color[q] === 0) visit(q);
    }
    path.pop();
    color[r] = 2;
  };
  // Depth is bounded by the number of rules; recursion is fine for the grammar sizes the budgets allow.
  for (let r = 0; r < R; r++) if (color[r] === 0) visit(r);
}

// ---- the compiler ---------------------------------------------------------------------------------------

export function compileGrammar(g: Grammar): Automaton {
  const recursive = recursiveRules(g);
  const { size, inlined } = sizer(g, recursive);
  const rootSize = size(g.rules.get(g.root) as Expr);
  for (const [name, e] of g.rules) {
    const s = size(e);
    if (s > MAX_NFA_STATES) throw new GrammarError(`rule ${name} expands to about ${s === Infinity ? "infinitely many" : Math.round(s)} automaton states, more than ${MAX_NFA_STATES} (large repetition counts multiply); simplify it`);
  }
  if (rootSize > MAX_NFA_STATES) throw new GrammarError(`the grammar expands to more than ${MAX_NFA_STATES} automaton states; simplify it`);

  const builder = new NfaBuilder(g, inlined);
  builder.buildAll();
  const { classOf, numClasses } = byteClasses(builder.nfa);
  const parts = minimize(determinize(builder, classOf, numClasses));

  const S = parts.ruleOf.length;
  const C = numClasses;
  const next = new Int32Array(S * C).fill(-1);
  parts.edges.forEach((e, s) => {
    for (let i = 0; i < e.length; i += 2) next[s * C + e[i]] = e[i + 1];
  });
  const callStart = new Int32Array(S + 1);
  parts.calls.forEach((c, s) => (callStart[s + 1] = callStart[s] + c.length / 2));
  const callRule = new Int32Array(callStart[S]);
  const callReturn = new Int32Array(callStart[S]);
  parts.calls.forEach((c, s) => {
    for (let i = 0; i < c.length; i += 2) {
      callRule[callStart[s] + i / 2] = c[i];
      callReturn[callStart[s] + i / 2] = c[i + 1];
    }
  });
  const base = {
    ruleNames: builder.ruleNames,
    ruleStart: Int32Array.from(parts.ruleStart),
    root: 0,
    numStates: S,
    ruleOf: Int32Array.from(parts.ruleOf),
    classOf,
    numClasses: C,
    next,
    accepting: Uint8Array.from(parts.accepting),
    callStart,
    callRule,
    callReturn,
  };
  const dist = shortestCompletions(base);
  if (dist[base.ruleStart[0]] >= UNREACHABLE) {
    throw new GrammarError(`the grammar matches nothing: rule ${g.root} can never be completed`);
  }

  // Cut every edge into a state that can never finish, and every call whose rule or return can't.
  for (let i = 0; i < next.length; i++) if (next[i] >= 0 && dist[next[i]] >= UNREACHABLE) next[i] = -1;
  const keptStart = new Int32Array(S + 1);
  const keptRule: number[] = [];
  const keptReturn: number[] = [];
  for (let s = 0; s < S; s++) {
    for (let j = callStart[s]; j < callStart[s + 1]; j++) {
      if (dist[callReturn[j]] < UNREACHABLE && dist[base.ruleStart[callRule[j]]] < UNREACHABLE) {
        keptRule.push(callRule[j]);
        keptReturn.push(callReturn[j]);
      }
    }
    keptStart[s + 1] = keptRule.length;
  }
  const returnSets = builder.ruleNames.map(() => new Set<number>());
  keptRule.forEach((r, j) => returnSets[r].add(keptReturn[j]));
  const plain = new Uint8Array(S);
  for (let s = 0; s < S; s++) plain[s] = keptStart[s] === keptStart[s + 1] && !base.accepting[s] ? 1 : 0;

  const a: Automaton = {
    ...base,
    callStart: keptStart,
    callRule: Int32Array.from(keptRule),
    callReturn: Int32Array.from(keptReturn),
    returnSites: returnSets.map((set) => Int32Array.from([...set].sort((x, y) => x - y))),
    dist,
    plain,
  };
  checkLeftRecursion(a);
  return a;
}
