// Picks the next token from logits: transformers' order of processors (repetition penalty, then
// temperature, top-k, top-p, min-p) over the ids that may be sampled at all. Vocabulary padding rows (ids
// no text maps to) are never picked.
//
// A vocabulary of 202,048 makes a full sort per token cost more than a decode step, so candidate sets
// are found by threshold passes; only the (small) nucleus is ever sorted.
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
  private readonly scratch: Float32Array;
  private readonly weights: Float64Array;
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
    this.weights = new Float64Array(allowed.length);
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
    const x = this.scratch;
    x.set(logits);
    const p = this.params;
    for (const [id, bias] of p.logitBias) if (id < x.length) x[id] += bias;
    if (p.repetitionPenalty !== 1) applyRepetitionPenalty(x, context, p.repetitionPenalty, p.repetitionWindow);
    if (p.presencePenalty !== 0 || p.frequencyPenalty !== 0) applyOpenAIPenalties(x, generated, p.presencePenalty, p.frequencyPenalty);
    this.lastAllowed = allowed;
    if (p.temperature === 0) return argmax(x, allowed);
    const w = this.weights;
    const kept = keptIds(x, allowed, p, w);
    let mass = 0;
    for (const i of kept) mass += w[i];
    let u = uniformFloat64(this.rng) * mass;
    for (const i of kept) {
      u -= w[i];
      if (u < 0) return i;
    }
    return kept[kept.length - 1];
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
    const best = top > 0 ? topKIds(x, Float64Array.from(allowed), top) : [];
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
  if (best < 0) throw new Error("no token can be sampled: every allowed logit is -Infinity or NaN");
  return best;
}

/**
 * The tokens temperature, top-k, top-p and min-p keep, with their renormalized probabilities (summing
 * to 1): most likely first when top-k or top-p is on, in id order otherwise. Ties at a cut are broken towards the lower id, so the set is a function of
 * the logits alone. `w` is scratch of the vocabulary's length.
 */
export function candidates(
  x: Float32Array,
  allowed: Uint8Array,
  p: Pick<SamplingParams, "temperature" | "topK" | "topP" | "minP">,
  w: Float64Array = new Float64Array(x.length),
): Candidate[] {
  const ids = keptIds(x, allowed, p, w);
  let mass = 0;
  for (const i of ids) mass += w[i];
  return ids.map((id) => ({ id, p: w[id] / mass }));
}

/**
 * The kept ids (see candidates); `w` receives each id's weight relative to the best token, 0 where it is
 * not allowed. With neither top-k nor top-p, `w` is also zeroed below the min-p bound, so "every id with
 * w > 0" is the kept set and the sampler need not build a list of the whole vocabulary.
 */
function keptIds(x: Float32Array, allowed: Uint8Array, p: Pick<SamplingParams, "temperature" | "topK" | "topP" | "minP">, w: Float64Array): number[] {
  const t = p.temperature > 0 ? p.temperature : 1;
  let max = -Infinity;
  for (let i = 0; i < x.length; i++) if (allowed[i] && x[i] > max) max = x[i];
  if (max === -Infinity || Number.isNaN(max)) throw new Error("no token can be sampled: every allowed logit is -Infinity or NaN");

  // Unnormalized probabilities relative to the best token (which gets 1); 0 for ids never sampled.
  let total = 0;
  for (let i = 0; i < x.length; i++) {
    w[i] = allowed[i] ? Math.exp((x[i] - max) / t) : 0;
    total += w[i];
  }

  let pool: number[];
  if (p.topK > 0) pool = topKIds(x, w, p.topK);
  else if (p.topP < 1) pool = nucleusPool(x, w, total * p.topP);
  else {
    // Temperature (and min-p) alone: every id above the min-p bound, in id order (no sort needed).
    pool = [];
    for (let i = 0; i < x.length; i++) {
      if (w[i] < p.minP) w[i] = 0;
      if (w[i] > 0) pool.push(i);
    }
  }
  if (p.topP < 1) {
    // Measured on the distribution left by top-k, as transformers chains its warpers.
    let denom = total;
    if (p.topK > 0) {
      denom = 0;
      for (const i of pool) denom += w[i];
    }
    let acc = 0;
    let n = 0;
    while (n < pool.length) {
      acc += w[pool[n++]];
      if (acc >= p.topP * denom) break;
    }
    pool.length = n;
  }
  if (p.minP > 0 && (p.topK > 0 || p.topP < 1)) pool = pool.filter((i) => w[i] >= p.minP);
  return pool;
}

/** The k highest-weight ids, best first (ties: lower id first), in one pass with a small sorted buffer. */
function topKIds(x: Float32Array, w: Float64Array, k: number): number[] {
  const best: number[] = [];
  const worse = (a: number, b: number) => x[a] < x[b] || (x[a] === x[b] && a > b);
  for (let i = 0; i < x.length; i++) {
    if (w[i] === 0) continue;
    if (best.length === k && !worse(best[k - 1], i)) continue;
    let j = best.length < k ? best.length : k - 1;
    while (j > 0 && worse(best[j - 1], i)) {
      best[j] = best[j - 1];
      j--;
    }
    best[j] = i;
  }
  return best;
}

/**
 * The ids above a weight floor, best first, the floor lowered until they hold `mass`: a set certain to
 * contain the nucleus, usually a few hundred ids instead of the whole vocabulary.
 */
function nucleusPool(x: Float32Array, w: Float64Array, mass: number): number[] {
  let floor = 1e-4;
  for (;;) {
    const pool: number[] = [];
    let m = 0;
    for (let i = 0; i < x.length; i++) {
      if (w[i] > 0 && w[i] >= floor) {
        pool.push(i);
        m += w[i];
      }
    }
    if (m >= mass || floor === 0) return pool.sort((a, b) => x[b] - x[a] || a - b);
    floor = floor < 1e-30 ? 0 : floor * 1e-3;
  }
}
