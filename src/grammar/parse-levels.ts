// The matcher's parse state and the step that moves it by one byte.
//
// A parse is a set of (state, frame) pairs: the automaton state of the innermost rule being matched, and
// the stack of places to resume in when it returns. Stacks share their tails: a frame is (return state,
// parent frame) in an append-only arena, so pushing is O(1), two parses that differ only in their top
// frame share the rest, and going back to an earlier set is just using the earlier pairs.
//
// Three frames are roots:
//   EMPTY  the real bottom: returning from here finishes the grammar (end-of-sequence may come next);
//   OPEN   an unknown caller (the per-state mask cache asks what a state accepts whatever its stack);
//   LEFT   below OPEN: the parse returned into a caller it guessed (any place that calls the rule), so
//          what it accepts there depends on the real stack.
//
// Levels hold the sets of a walk through a token trie, one per byte depth: level d + 1 is level d moved by
// one byte and closed (calls entered, returns taken), so moving to a sibling token starts from the level
// of the common prefix. Frames pushed below a level are dropped when the walk goes back above it.
import { GrammarError } from "./ast.js";
import type { Automaton } from "./automaton.js";

export const EMPTY = 0;
export const OPEN = 1;
export const LEFT = 2;

/** Frames at most in one arena: a step that needs more is refused rather than exhausting memory. */
export const MAX_FRAMES = 1 << 22;
/** Parses (state, frame pairs) at most in one set: more means the grammar is ambiguous beyond use. */
export const MAX_PARSES = 1024;

export class Frames {
  state: Int32Array;
  parent: Int32Array;
  /** Bytes that finish the frames from this one down (the return states' shortest completions). */
  dist: Int32Array;
  /** EMPTY, OPEN or LEFT: the root this frame sits on. */
  root: Uint8Array;
  length = 3;

  constructor(capacity = 256) {
    this.state = new Int32Array(capacity).fill(-1);
    this.parent = new Int32Array(capacity).fill(-1);
    this.dist = new Int32Array(capacity);
    this.root = new Uint8Array(capacity);
    this.root.set([EMPTY, OPEN, LEFT]);
  }

  push(returnState: number, parent: number, returnDist: number): number {
    if (this.length === this.state.length) this.grow();
    const id = this.length++;
    this.state[id] = returnState;
    this.parent[id] = parent;
    this.dist[id] = returnDist + this.dist[parent];
    this.root[id] = this.root[parent];
    return id;
  }

  private grow(): void {
    const n = this.state.length * 2;
    if (n > MAX_FRAMES) throw new GrammarError(`the grammar's parse needs more than ${MAX_FRAMES} stack frames`);
    const widen = <T extends Int32Array | Uint8Array>(a: T, make: (n: number) => T): T => {
      const b = make(n);
      b.set(a);
      return b;
    };
    this.state = widen(this.state, (k) => new Int32Array(k));
    this.parent = widen(this.parent, (k) => new Int32Array(k));
    this.dist = widen(this.dist, (k) => new Int32Array(k));
    this.root = widen(this.root, (k) => new Uint8Array(k));
  }
}

export class Levels {
  /** Per depth: states and frames of the parses (pairs at the same index), their count. */
  private st: Int32Array[] = [];
  private fr: Int32Array[] = [];
  readonly size: number[] = [];
  /** Parses that came from a byte (the rest were added by closing them: calls entered, returns taken). */
  readonly kernel: number[] = [];
  /** Whether a parse of the level can finish the grammar here (return from EMPTY). */
  readonly canEnd: boolean[] = [];
  /** Parses of the level not on LEFT: they took the bytes without leaving the frame they started in. */
  readonly inside: number[] = [];
  /** Frames arena length once the level was built: going back to it drops later frames. */
  readonly frameMark: number[] = [];
  /** Smallest completion (bytes) over the level's parses, and over those not on LEFT. */
  readonly minDist: number[] = [];
  readonly insideDist: number[] = [];

  constructor(
    private readonly a: Automaton,
    readonly frames: Frames,
  ) {}

  stateAt(d: number, i: number): number {
    return this.st[d][i];
  }

  frameAt(d: number, i: number): number {
    return this.fr[d][i];
  }

  private ensure(d: number): void {
    while (this.st.length <= d) {
      this.st.push(new Int32Array(16));
      this.fr.push(new Int32Array(16));
      this.size.push(0);
      this.kernel.push(0);
      this.canEnd.push(false);
      this.inside.push(0);
      this.frameMark.push(0);
      this.minDist.push(0);
      this.insideDist.push(0);
    }
  }

  /** Sets level d to the given parses (closed here), e.g. the matcher's current ones at depth 0. */
  start(d: number, states: ArrayLike<number>, frames: ArrayLike<number>, count: number): void {
    this.ensure(d);
    this.clear(d);
    for (let i = 0; i < count; i++) this.add(d, states[i], frames[i], Infinity);
    this.kernel[d] = this.size[d];
    this.close(d, Infinity);
    this.frameMark[d] = this.frames.length;
  }

  /**
   * Level d + 1 = level d after `byte`, closed. With `maxDist`, parses whose completion is longer are
   * dropped (the budgeted walks). Returns whether any parse survives.
   */
  advance(d: number, byte: number, maxDist = Infinity): boolean {
    const a = this.a;
    const e = d + 1;
    this.ensure(e);
    this.frames.length = this.frameMark[d];
    this.clear(e);
    const c = a.classOf[byte];
    const C = a.numClasses;
    const n = this.size[d];
    const st = this.st[d];
    const fr = this.fr[d];
    // The common case, one plain parse: a table lookup, nothing to close.
    if (n === 1 && maxDist === Infinity) {
      const t = a.next[st[0] * C + c];
      if (t < 0) return false;
      const f = fr[0];
      this.st[e][0] = t;
      this.fr[e][0] = f;
      this.size[e] = 1;
      this.kernel[e] = 1;
      const inside = this.frames.root[f] !== LEFT;
      this.inside[e] = inside ? 1 : 0;
      this.minDist[e] = a.dist[t] + this.frames.dist[f];
      this.insideDist[e] = inside ? this.minDist[e] : Infinity;
      if (!a.plain[t]) this.close(e, maxDist);
      this.frameMark[e] = this.frames.length;
      return true;
    }
    for (let i = 0; i < n; i++) {
      const t = a.next[st[i] * C + c];
      if (t >= 0) this.add(e, t, fr[i], maxDist);
    }
    this.kernel[e] = this.size[e];
    if (this.size[e] > 0) this.close(e, maxDist);
    this.frameMark[e] = this.frames.length;
    return this.size[e] > 0;
  }

  private clear(d: number): void {
    this.size[d] = 0;
    this.canEnd[d] = false;
    this.inside[d] = 0;
    this.minDist[d] = Infinity;
    this.insideDist[d] = Infinity;
  }

  private add(d: number, s: number, f: number, maxDist: number): void {
    const dist = this.a.dist[s] + this.frames.dist[f];
    if (dist > maxDist) return;
    let st = this.st[d];
    let fr = this.fr[d];
    const n = this.size[d];
    for (let i = 0; i < n; i++) if (st[i] === s && fr[i] === f) return;
    if (n === st.length) {
      if (n >= MAX_PARSES) throw new GrammarError(`the grammar is too ambiguous: more than ${MAX_PARSES} parses of the same text at once`);
      const st2 = new Int32Array(n * 2);
      st2.set(st);
      const fr2 = new Int32Array(n * 2);
      fr2.set(fr);
      this.st[d] = st = st2;
      this.fr[d] = fr = fr2;
    }
    st[n] = s;
    fr[n] = f;
    this.size[d] = n + 1;
    if (dist < this.minDist[d]) this.minDist[d] = dist;
    if (this.frames.root[f] !== LEFT) {
      this.inside[d]++;
      if (dist < this.insideDist[d]) this.insideDist[d] = dist;
    }
  }

  /** Adds what the parses of level d reach without a byte: the rules they may call, the frames they may return to. */
  private close(d: number, maxDist: number): void {
    const a = this.a;
    const frames = this.frames;
    for (let i = 0; i < this.size[d]; i++) {
      const s = this.st[d][i];
      if (a.plain[s]) continue;
      const f = this.fr[d][i];
      for (let j = a.callStart[s]; j < a.callStart[s + 1]; j++) {
        const ret = a.callReturn[j];
        const callee = a.ruleStart[a.callRule[j]];
        if (a.dist[callee] + a.dist[ret] + frames.dist[f] > maxDist) continue;
        this.add(d, callee, frames.push(ret, f, a.dist[ret]), maxDist);
      }
      if (!a.accepting[s]) continue;
      if (f === EMPTY) this.canEnd[d] = true;
      else if (f === OPEN || f === LEFT) {
        const sites = a.returnSites[a.ruleOf[s]];
        for (let k = 0; k < sites.length; k++) this.add(d, sites[k], LEFT, maxDist);
      } else {
        this.add(d, frames.state[f], frames.parent[f], maxDist);
      }
    }
  }
}
