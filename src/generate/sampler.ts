// Picks the next token from logits: transformers' order of processors (repetition penalty, then
// temperature, top-k, top-p, min-p) over the ids that may be sampled at all. Vocabulary padding rows (ids
// no text maps to) are never picked.
//
// A vocabulary of 202,048 makes a full sort per token cost more than a decode step, so nothing of that
// size is ever sorted: greedy is one pass, top-k one pass with a heap of k, top-p a pass that sums the
// weights into buckets by size and then sorts only the bucket where the nucleus ends.
import { mersenne } from "pure-rand/generator/mersenne";
import { uniformFloat64 } from "pure-rand/distribution/uniformFloat64";

export interface SamplingOptions {
  /** 0 picks the most likely token (greedy); higher flattens the distribution. Default 1 when sampling. */
  temperature?: number;
  /** Keep only the k most likely tokens (0: off). */
  topK?: number;
  /** Keep the smallest set of most likely tokens whose probability reaches p (1: off). */
  topP?: number;
  /** Drop tokens less likely than minP times the most likely one (0: off). */
  minP?: number;
  /** > 1 discourages tokens already in the context, as transformers does (logit / p if positive, * p if not). */
  repetitionPenalty?: number;
  /** How many of the latest context tokens the penalty looks at (default: all of them). */
  repetitionWindow?: number;
  /** OpenAI's presence penalty: subtracted once from the logit of every token already generated ([-2, 2]). */
  presencePenalty?: number;
  /** OpenAI's frequency penalty: subtracted from a token's logit once per time it was generated ([-2, 2]). */
  frequencyPenalty?: number;
  /** Added to the logits of the given token ids before anything else ([-100, 100]; OpenAI's logit_bias). */
  logitBias?: ReadonlyMap<number, number>;
  /** Makes sampling reproducible; without one, each run differs. */
  seed?: number;
}

/** The options after defaults and validation. */
export interface SamplingParams {
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  repetitionPenalty: number;
  repetitionWindow: number;
  presencePenalty: number;
  frequencyPenalty: number;
  logitBias: ReadonlyMap<number, number>;
  seed: number;
}

export function samplingParams(o: SamplingOptions = {}): SamplingParams {
  const p: SamplingParams = {
    temperature: o.temperature ?? 1,
    topK: o.topK ?? 0,
    topP: o.topP ?? 1,
    minP: o.minP ?? 0,
    repetitionPenalty: o.repetitionPenalty ?? 1,
    repetitionWindow: o.repetitionWindow ?? Infinity,
    presencePenalty: o.presencePenalty ?? 0,
    frequencyPenalty: o.frequencyPenalty ?? 0,
    logitBias: o.logitBias ?? new Map(),
    seed: o.seed ?? Math.floor(Math.random() * 2 ** 32),
  };
  const check = (ok: boolean, what: string, v: number) => {
    if (!ok) throw new RangeError(`${what}, got ${v}`);
  };
  check(Number.isFinite(p.temperature) && p.temperature >= 0, "temperature must be a finite number >= 0", p.temperature);
  check(Number.isInteger(p.topK) && p.topK >= 0, "top-k must be an integer >= 0", p.topK);
  check(p.topP > 0 && p.topP <= 1, "top-p must be in (0, 1]", p.topP);
  check(p.minP >= 0 && p.minP <= 1, "min-p must be in [0, 1]", p.minP);
  check(Number.isFinite(p.repetitionPenalty) && p.repetitionPenalty > 0, "repetition penalty must be a finite number > 0", p.repetitionPenalty);
  check(p.repetitionWindow === Infinity || (Number.isInteger(p.repetitionWindow) && p.repetitionWindow >= 0), "repetition window must be an integer >= 0", p.repetitionWindow);
  check(Number.isFinite(p.presencePenalty) && Math.abs(p.presencePenalty) <= 2, "presence penalty must be a number in [-2, 2]", p.presencePenalty);
  check(Number.isFinite(p.frequencyPenalty) && Math.abs(p.frequencyPenalty) <= 2, "frequency penalty must be a number in [-2, 2]", p.frequencyPenalty);
  for (const [id, bias] of p.logitBias) {
    check(Number.isInteger(id) && id >= 0, "a logit bias key must be a token id", id);
    check(Number.isFinite(bias) && Math.abs(bias) <= 100, "a logit bias must be a number in [-100, 100]", bias);
  }
  check(Number.isInteger(p.seed) && p.seed >= 0 && p.seed < 2 ** 32, "seed must be an integer in [0, 2^32)", p.seed);
  return p;
}

/** A token with its probability among the kept candidates. */
export interface Candidate {
  id: number;
  p: number;
}

/** A token's log-probability, and the most likely tokens' at the same step. */
export interface TokenLogprob {
  id: number;
  logprob: number;
  top: { id: number; logprob: number }[];
}

export class Sampler {
  readonly params: SamplingParams;
  private readonly rng: ReturnType<typeof mersenne>;
  /** The logits of the last next() call after the logit bias and the penalties (the caller's array is never written). */
  private readonly scratch: Float32Array;
  private readonly keepScratch: KeepScratch;
  /** The ids the last next() could pick from (for logprobs). */
  private lastAllowed: Uint8Array;

  /** `allowed[id]` is 1 for ids that may be sampled (0 for vocabulary padding rows). */
  constructor(
    options: SamplingOptions,
    private readonly allowed: Uint8Array,
  ) {
    this.params = samplingParams(options);
    this.rng = mersenne(this.params.seed);
    this.scratch = new Float32Array(allowed.length);
    this.keepScratch = new KeepScratch(this.params.temperature > 0 ? allowed.length : 0);
    this.lastAllowed = allowed;
  }

  /**
   * The next token after `context` (the ids seen so far: prompt and generated), among the ids `allowed`
   * marks (by default the constructor's: every id but vocabulary padding; a grammar passes its mask);
   * `generated`, the ids generated so far, is what the presence and frequency penalties count.
   */
  next(logits: Float32Array, context: readonly number[], generated: readonly number[] = [], allowed: Uint8Array = this.allowed): number {
    if (logits.length !== this.allowed.length || allowed.length !== this.allowed.length) {
      throw new RangeError(`logits have ${logits.length} entries but the vocabulary has ${this.allowed.length}`);
    }
    const p = this.params;
    const x = this.scratch;
    x.set(logits);
    for (const [id, bias] of p.logitBias) if (id < x.length) x[id] += bias;
    if (p.repetitionPenalty !== 1) applyRepetitionPenalty(x, context, p.repetitionPenalty, p.repetitionWindow);
    if (p.presencePenalty !== 0 || p.frequencyPenalty !== 0) applyOpenAIPenalties(x, generated, p.presencePenalty, p.frequencyPenalty);
    this.lastAllowed = allowed;
    if (p.temperature === 0) return argmax(x, allowed);
    const w = this.keepScratch.w;
    const { ids, mass } = keep(x, allowed, p, this.keepScratch);
    let u = uniformFloat64(this.rng) * mass;
    if (ids !== null) {
      for (const i of ids) {
        u -= w[i];
        if (u < 0) return i;
      }
      return ids[ids.length - 1];
    }
    let last = -1;
    for (let i = 0; i < w.length; i++) {
      if (w[i] > 0) {
        u -= w[i];
        last = i;
        if (u < 0) return i;
      }
    }
    return last;
  }

  /**
   * The log-probability of `id` and of the `top` most likely tokens, under the distribution of the last
   * next() call after the logit bias and the penalties and before temperature and truncation (as OpenAI
   * reports logprobs): a log-softmax over the ids that could be sampled at that step (a grammar's mask included).
   */
  logprobs(id: number, top: number): TokenLogprob {
    const x = this.scratch;
    const allowed = this.lastAllowed;
    let max = -Infinity;
    for (let i = 0; i < x.length; i++) if (allowed[i] && x[i] > max) max = x[i];
    let sum = 0;
    for (let i = 0; i < x.length; i++) if (allowed[i]) sum += Math.exp(x[i] - max);
    const logZ = max + Math.log(sum);
    const best = top > 0 ? topKIds(x, allowed, top) : [];
    return { id, logprob: x[id] - logZ, top: best.map((i) => ({ id: i, logprob: x[i] - logZ })) };
  }
}

/**
 * OpenAI's penalties: logit[j] -= count[j] * frequency + (count[j] > 0 ? presence : 0), count[j] being how
 * often j was generated so far.
 */
export function applyOpenAIPenalties(x: Float32Array, generated: readonly number[], presence: number, frequency: number): void {
  const counts = new Map<number, number>();
  for (const id of generated) counts.set(id, (counts.get(id) ?? 0) + 1);
  for (const [id, n] of counts) if (id >= 0 && id < x.length) x[id] -= n * frequency + presence;
}

/** transformers' RepetitionPenaltyLogitsProcessor: each distinct id of the window once. */
export function applyRepetitionPenalty(x: Float32Array, context: readonly number[], penalty: number, window = Infinity): void {
  const seen = new Set<number>();
  for (let i = Math.max(0, context.length - window); i < context.length; i++) {
    const id = context[i];
    if (seen.has(id) || id < 0 || id >= x.length) continue;
    seen.add(id);
    x[id] = x[id] > 0 ? x[id] / penalty : x[id] * penalty;
  }
}

/** The highest-scoring allowed id; ties go to the lowest id. */
export function argmax(x: Float32Array, allowed: Uint8Array): number {
  let best = -1;
  let bestScore = -Infinity;
  for (let i = 0; i < x.length; i++) {
    if (x[i] > bestScore && allowed[i]) {
      best = i;
      bestScore = x[i];
    }
  }
  if (best < 0) throw noToken();
  return best;
}

function noToken(): Error {
  return new Error("no token can be sampled: every allowed logit is -Infinity or NaN");
}

/**
 * The tokens temperature, top-k, top-p and min-p keep, with their renormalized probabilities (summing to
 * 1), most likely first (ties: the lower id first). Ties at a cut are broken towards the lower id, so the
 * set is a function of the logits alone.
 */
export function candidates(x: Float32Array, allowed: Uint8Array, p: Pick<SamplingParams, "temperature" | "topK" | "topP" | "minP">): Candidate[] {
  const s = new KeepScratch(x.length);
  const kept = keep(x, allowed, p, s);
  const ids = kept.ids ?? [...s.w.keys()].filter((i) => s.w[i] > 0);
  return ids.sort((a, b) => x[b] - x[a] || a - b).map((id) => ({ id, p: s.w[id] / kept.mass }));
}

/** Buckets per unit of ln(weight) in the top-p pass: a bucket spans weights within a factor e^(1/32). */
const BUCKETS_PER_UNIT = 32;
/** Buckets down to weights of e^-64 relative to the best token; lighter ones share the last bucket. */
const BUCKETS = 64 * BUCKETS_PER_UNIT;

/** Scratch of keep(), allocated once per sampler: a weight and a bucket per id, a mass per bucket. */
class KeepScratch {
  readonly w: Float64Array;
  readonly bucket: Uint16Array;
  readonly bucketMass = new Float64Array(BUCKETS);

  constructor(vocab: number) {
    this.w = new Float64Array(vocab);
    this.bucket = new Uint16Array(vocab);
  }
}

/**
 * What keep() leaves to draw from: `ids`, most likely first, or (null) every id whose weight in the
 * scratch is > 0, in id order; `mass` is the sum of their weights.
 */
interface Kept {
  ids: number[] | null;
  mass: number;
}

/**
 * The ids temperature, top-k, top-p and min-p keep. Each kept id's weight relative to the best token (which
 * gets 1) is left in `s.w`; with top-k the kept ids come as a list and only their weights are written,
 * without it `s.w` holds a weight for every id, 0 for those not kept.
 */
function keep(x: Float32Array, allowed: Uint8Array, p: Pick<SamplingParams, "temperature" | "topK" | "topP" | "minP">, s: KeepScratch): Kept {
  const t = p.temperature > 0 ? p.temperature : 1;
  const w = s.w;
  if (p.topK > 0) {
    // The k best by logit, then weights for those alone (an id whose weight underflows to 0 is dropped).
    const top = topKIds(x, allowed, p.topK);
    if (top.length === 0) throw noToken();
    const max = x[top[0]];
    let ids: number[] = [];
    let mass = 0;
    for (const i of top) {
      w[i] = Math.exp((x[i] - max) / t);
      if (w[i] > 0) {
        ids.push(i);
        mass += w[i];
      }
    }
    if (p.topP < 1) {
      // Measured on the distribution top-k left, as transformers chains its warpers.
      let acc = 0;
      let n = 0;
      while (n < ids.length) {
        acc += w[ids[n++]];
        if (acc >= p.topP * mass) break;
      }
      ids.length = n;
    }
    if (p.minP > 0) ids = ids.filter((i) => w[i] >= p.minP);
    mass = 0;
    for (const i of ids) mass += w[i];
    return { ids, mass };
  }

  let max = -Infinity;
  for (let i = 0; i < x.length; i++) if (allowed[i] && x[i] > max) max = x[i];
  if (max === -Infinity) throw noToken();
  // Without top-p nothing lighter than min-p is kept, so its exponential need not be computed: ids below
  // ln(min-p) (less a margin for the rounding of exp) are 0 at once, the rest compared exactly.
  const skipBelow = p.topP < 1 || p.minP === 0 ? -Infinity : Math.log(p.minP) - 1e-6;
  const buckets = p.topP < 1;
  const bucket = s.bucket;
  const bucketMass = s.bucketMass;
  if (buckets) bucketMass.fill(0);
  let total = 0;
  for (let i = 0; i < x.length; i++) {
    const y = (x[i] - max) / t;
    // NaN logits and disallowed ids get no weight.
    if (!allowed[i] || !(y >= skipBelow)) {
      w[i] = 0;
      continue;
    }
    const wi = Math.exp(y);
    w[i] = wi;
    total += wi;
    if (buckets) {
      const b = Math.min(BUCKETS - 1, Math.trunc(-y * BUCKETS_PER_UNIT));
      bucket[i] = b;
      bucketMass[b] += wi;
    }
  }
  let mass = buckets ? nucleus(x, s, p.topP * total) : total;
  if (p.minP > 0) {
    mass = 0;
    for (let i = 0; i < w.length; i++) {
      if (w[i] < p.minP) w[i] = 0;
      mass += w[i];
    }
  }
  return { ids: null, mass };
}

/**
 * Top-p over the whole vocabulary: keeps the most likely ids until their weights reach `target`, zeroing
 * every other weight; returns the weights kept. The buckets say where the nucleus ends (buckets hold ids
 * in order of weight, the heaviest first); only the ids of that bucket are sorted, to find the exact cut
 * inside it.
 */
function nucleus(x: Float32Array, s: KeepScratch, target: number): number {
  const { w, bucket, bucketMass } = s;
  let acc = 0;
  let last = 0;
  while (last < BUCKETS - 1 && acc + bucketMass[last] < target) acc += bucketMass[last++];
  const edge: number[] = [];
  for (let i = 0; i < w.length; i++) {
    if (w[i] === 0) continue;
    if (bucket[i] > last) w[i] = 0;
    else if (bucket[i] === last) edge.push(i);
  }
  edge.sort((a, b) => x[b] - x[a] || a - b);
  let n = 0;
  while (n < edge.length) {
    acc += w[edge[n++]];
    if (acc >= target) break;
  }
  for (let j = n; j < edge.length; j++) w[edge[j]] = 0;
  return acc;
}

/**
 * The k allowed ids of highest logit, best first (ties: lower id first), in one pass with a heap of k
 * whose root is the worst one kept. NaN and -Infinity logits are never kept.
 */
function topKIds(x: Float32Array, allowed: Uint8Array, k: number): number[] {
  const heap = new Int32Array(Math.min(k, x.length));
  const worse = (a: number, b: number) => x[a] < x[b] || (x[a] === x[b] && a > b);
  let size = 0;
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (!allowed[i] || !(v > -Infinity)) continue;
    if (size < heap.length) {
      // Sift up: a new id is worse than every one before it with the same logit.
      let j = size++;
      while (j > 0 && worse(i, heap[(j - 1) >> 1])) {
        heap[j] = heap[(j - 1) >> 1];
        j = (j - 1) >> 1;
      }
      heap[j] = i;
      continue;
    }
    // Full: an id with the root's logit comes later, so it is worse; only a higher logit gets in.
    if (!(v > x[heap[0]])) continue;
    let j = 0;
    for (;;) {
      const l = 2 * j + 1;
      if (l >= size) break;
      const c = l + 1 < size && worse(heap[l + 1], heap[l]) ? l + 1 : l;
      if (!worse(heap[c], i)) break;
      heap[j] = heap[c];
      j = c;
    }
    heap[j] = i;
  }
  return Array.from(heap.subarray(0, size)).sort((a, b) => x[b] - x[a] || a - b);
}
