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
  check(Number.isInteger(p.seed) && p.seed >= 0 && p.seed < 2 ** 32, "seed must be an integer in [0, 2^32)", p.seed);
  return p;
}

/** A token with its probability among the kept candidates. */
export interface Candidate {
  id: number;
  p: number;
}

export class Sampler {
  readonly params: SamplingParams;
  private readonly rng: ReturnType<typeof mersenne>;
  private readonly scratch: Float32Array;
  private readonly weights: Float64Array;

  /** `allowed[id]` is 1 for ids that may be sampled (0 for vocabulary padding rows). */
  constructor(
    options: SamplingOptions,
    private readonly allowed: Uint8Array,
  ) {
    this.params = samplingParams(options);
    this.rng = mersenne(this.params.seed);
    this.scratch = new Float32Array(allowed.length);
    this.weights = new Float64Array(allowed.length);
  }

  /** The next token after `context` (the ids seen so far: prompt and generated). */
  next(logits: Float32Array, context: readonly number[]): number {
    if (logits.length !== this.allowed.length) {
      throw new RangeError(`logits have ${logits.length} entries but the vocabulary has ${this.allowed.length}`);
    }
    const x = this.scratch;
    x.set(logits);
    const p = this.params;
    if (p.repetitionPenalty !== 1) applyRepetitionPenalty(x, context, p.repetitionPenalty, p.repetitionWindow);
    if (p.temperature === 0) return argmax(x, this.allowed);
    const kept = candidates(x, this.allowed, p, this.weights);
    let u = uniformFloat64(this.rng);
    for (const c of kept) {
      u -= c.p;
      if (u < 0) return c.id;
    }
    return kept[kept.length - 1].id;
  }
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
 * The tokens temperature, top-k, top-p and min-p keep, most likely first, with their renormalized
 * probabilities (summing to 1). Ties at a cut are broken towards the lower id, so the set is a function of
 * the logits alone. `w` is scratch of the vocabulary's length.
 */
export function candidates(
  x: Float32Array,
  allowed: Uint8Array,
  p: Pick<SamplingParams, "temperature" | "topK" | "topP" | "minP">,
  w: Float64Array = new Float64Array(x.length),
): Candidate[] {
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

  // A pool certain to contain the kept set: every id above a weight floor, the floor lowered until the
  // pool holds the k best ids (top-k) or enough mass (top-p). min-p comes last (it must not shrink what
  // top-p measures), so it bounds the floor only when it is the one filter.
  const needsPool = p.topK > 0 || p.topP < 1;
  let floor = needsPool ? 1e-4 : p.minP;
  let pool: number[];
  for (;;) {
    pool = [];
    let mass = 0;
    for (let i = 0; i < x.length; i++) {
      if (w[i] > 0 && w[i] >= floor) {
        pool.push(i);
        mass += w[i];
      }
    }
    if (!needsPool || floor === 0) break;
    if (p.topK > 0 ? pool.length >= p.topK : mass >= p.topP * total) break;
    floor = floor < 1e-30 ? 0 : floor * 1e-3;
  }

  pool.sort((a, b) => x[b] - x[a] || a - b);
  if (p.topK > 0 && pool.length > p.topK) pool.length = p.topK;
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
  if (p.minP > 0) pool = pool.filter((i) => w[i] >= p.minP);

  let mass = 0;
  for (const i of pool) mass += w[i];
  return pool.map((id) => ({ id, p: w[id] / mass }));
}
