import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { Sampler, applyRepetitionPenalty, argmax, candidates } from "../../src/generate/sampler.js";

/** Random logits (ties likely: values on a coarse grid) with a random mask that allows at least one id. */
const logitsAndMask = fc
  .integer({ min: 2, max: 300 })
  .chain((n) =>
    fc.tuple(
      fc.array(fc.integer({ min: -40, max: 40 }).map((v) => v / 4), { minLength: n, maxLength: n }),
      fc.array(fc.boolean(), { minLength: n, maxLength: n }),
      fc.integer({ min: 0, max: n - 1 }),
    ),
  )
  .map(([values, mask, forced]) => {
    const allowed = Uint8Array.from(mask, (b) => (b ? 1 : 0));
    allowed[forced] = 1;
    return { logits: Float32Array.from(values), allowed };
  });

/** The allowed ids by descending logit (ties: lower id first), and their softmax at temperature t. */
function oracle(logits: Float32Array, allowed: Uint8Array, t: number) {
  const ids = [...logits.keys()].filter((i) => allowed[i] === 1).sort((a, b) => logits[b] - logits[a] || a - b);
  const max = logits[ids[0]];
  const w = ids.map((i) => Math.exp((logits[i] - max) / t));
  const total = w.reduce((a, b) => a + b, 0);
  return { ids, p: w.map((x) => x / total) };
}

/** The ids top-k, then top-p (on what top-k left), then min-p keep, most likely first, from the oracle's order. */
function oracleKept(logits: Float32Array, allowed: Uint8Array, opts: { topK: number; topP: number; minP: number; temperature: number }): number[] {
  const { ids, p } = oracle(logits, allowed, opts.temperature);
  let keep = opts.topK > 0 ? Math.min(opts.topK, ids.length) : ids.length;
  const massK = p.slice(0, keep).reduce((a, b) => a + b, 0);
  if (opts.topP < 1) {
    let acc = 0;
    let n = 0;
    while (n < keep) {
      acc += p[n++] / massK;
      if (acc >= opts.topP - 1e-12) break;
    }
    keep = n;
  }
  return ids.slice(0, keep).filter((_, j) => p[j] >= opts.minP * p[0] * (1 - 1e-12));
}

describe("sampler", () => {
  it("top-k only ever picks one of the k most likely allowed tokens", () => {
    fc.assert(
      fc.property(logitsAndMask, fc.integer({ min: 1, max: 10 }), fc.integer({ min: 0, max: 2 ** 32 - 1 }), ({ logits, allowed }, k, seed) => {
        const s = new Sampler({ temperature: 1.5, topK: k, seed }, allowed);
        const { ids } = oracle(logits, allowed, 1);
        const kth = logits[ids[Math.min(k, ids.length) - 1]];
        for (let i = 0; i < 20; i++) {
          const t = s.next(logits, []);
          expect(allowed[t]).toBe(1);
          expect(logits[t]).toBeGreaterThanOrEqual(kth);
        }
      }),
      { numRuns: 100 },
    );
  });

  it("top-p only picks tokens whose more likely predecessors hold less than p of the mass", () => {
    fc.assert(
      fc.property(logitsAndMask, fc.double({ min: 0.05, max: 0.99, noNaN: true }), fc.integer({ min: 0, max: 2 ** 32 - 1 }), ({ logits, allowed }, p, seed) => {
        const { ids, p: probs } = oracle(logits, allowed, 0.7);
        const before = new Map<number, number>();
        let acc = 0;
        ids.forEach((id, j) => {
          before.set(id, acc);
          acc += probs[j];
        });
        const s = new Sampler({ temperature: 0.7, topP: p, seed }, allowed);
        for (let i = 0; i < 20; i++) {
          const t = s.next(logits, []);
          expect(before.has(t)).toBe(true);
          expect(before.get(t)!).toBeLessThan(p + 1e-9);
        }
      }),
      { numRuns: 100 },
    );
  });

  it("min-p only picks tokens at least min-p times as likely as the best", () => {
    fc.assert(
      fc.property(logitsAndMask, fc.double({ min: 0.01, max: 1, noNaN: true }), fc.integer({ min: 0, max: 2 ** 32 - 1 }), ({ logits, allowed }, minP, seed) => {
        const { ids, p } = oracle(logits, allowed, 1);
        const s = new Sampler({ temperature: 1, minP, seed }, allowed);
        for (let i = 0; i < 20; i++) {
          const t = s.next(logits, []);
          expect(p[ids.indexOf(t)]).toBeGreaterThanOrEqual(minP * p[0] * (1 - 1e-9));
        }
      }),
      { numRuns: 100 },
    );
  });

  it("keeps exactly the oracle's set with renormalized probabilities (top-k then top-p then min-p)", () => {
    fc.assert(
      fc.property(
        logitsAndMask,
        fc.record({ topK: fc.integer({ min: 0, max: 20 }), topP: fc.constantFrom(1, 0.5, 0.9), minP: fc.constantFrom(0, 0.05, 0.3), temperature: fc.constantFrom(0.5, 1, 2) }),
        ({ logits, allowed }, opts) => {
          const got = candidates(logits, allowed, opts).sort((a, b) => logits[b.id] - logits[a.id] || a.id - b.id);
          let want = oracleKept(logits, allowed, opts);
          // A top-p cut that lands within rounding of the boundary may keep one token more or less.
          expect(Math.abs(got.length - want.length)).toBeLessThanOrEqual(opts.topP < 1 ? 1 : 0);
          want = want.slice(0, got.length);
          expect(got.map((c) => c.id).slice(0, want.length)).toEqual(want);
          expect(got.reduce((a, c) => a + c.p, 0)).toBeCloseTo(1, 9);
        },
      ),
      { numRuns: 200 },
    );
  });

  it("finds the same sets over thousands of ids, where top-p sorts only the bucket its cut falls in (fast-check)", () => {
    // Logits on a fine grid: many ids per weight bucket (1/32 of a unit of ln(weight)) and many ties, so the
    // cut lands inside a crowded bucket; k up to the whole vocabulary exercises the heap of top-k.
    const big = fc
      .integer({ min: 1000, max: 4000 })
      .chain((n) => fc.tuple(fc.array(fc.integer({ min: -2000, max: 200 }).map((v) => v / 100), { minLength: n, maxLength: n }), fc.integer({ min: 0, max: 2 ** 31 - 1 })))
      .map(([values, seed]) => {
        const allowed = Uint8Array.from(values, (_, i) => ((i * 2654435761 + seed) >>> 0) % 17 === 0 ? 0 : 1);
        allowed[seed % values.length] = 1;
        return { logits: Float32Array.from(values), allowed };
      });
    fc.assert(
      fc.property(
        big,
        fc.record({ topK: fc.constantFrom(0, 0, 1, 50, 999, 5000), topP: fc.constantFrom(1, 0.3, 0.9, 0.999), minP: fc.constantFrom(0, 0.01), temperature: fc.constantFrom(0.3, 0.7, 1.5) }),
        ({ logits, allowed }, opts) => {
          const got = candidates(logits, allowed, opts);
          const want = oracleKept(logits, allowed, opts);
          expect(Math.abs(got.length - want.length)).toBeLessThanOrEqual(opts.topP < 1 ? 1 : 0);
          const n = Math.min(got.length, want.length);
          expect(got.map((c) => c.id).slice(0, n)).toEqual(want.slice(0, n));
          expect(got.reduce((a, c) => a + c.p, 0)).toBeCloseTo(1, 9);
        },
      ),
      { numRuns: 60 },
    );
  });

  it("samples in proportion to the probabilities", () => {
    const logits = Float32Array.from([Math.log(0.5), Math.log(0.3), Math.log(0.15), Math.log(0.05)]);
    const s = new Sampler({ temperature: 1, seed: 7 }, new Uint8Array(4).fill(1));
    const counts = [0, 0, 0, 0];
    const n = 20000;
    for (let i = 0; i < n; i++) counts[s.next(logits, [])]++;
    [0.5, 0.3, 0.15, 0.05].forEach((p, i) => expect(Math.abs(counts[i] / n - p)).toBeLessThan(0.015));
  });

  it("is reproducible with a seed and differs between seeds", () => {
    const logits = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i) * 3);
    const allowed = new Uint8Array(1000).fill(1);
    const draw = (seed: number) => {
      const s = new Sampler({ temperature: 1, topP: 0.95, seed }, allowed);
      return Array.from({ length: 50 }, () => s.next(logits, []));
    };
    expect(draw(42)).toEqual(draw(42));
    expect(draw(42)).not.toEqual(draw(43));
  });

  it("never picks a disallowed id (vocabulary padding), even the most likely one", () => {
    const logits = Float32Array.from([0, 1, 50, 2]);
    const allowed = Uint8Array.from([1, 1, 0, 1]);
    expect(argmax(logits, allowed)).toBe(3);
    const s = new Sampler({ temperature: 5, seed: 1 }, allowed);
    for (let i = 0; i < 500; i++) expect(s.next(logits, [])).not.toBe(2);
    expect(() => new Sampler({ temperature: 1 }, new Uint8Array(4)).next(logits, [])).toThrow(/no token can be sampled/);
  });

  it("temperature 0 is the argmax, ties to the lowest id", () => {
    fc.assert(
      fc.property(logitsAndMask, ({ logits, allowed }) => {
        const s = new Sampler({ temperature: 0 }, allowed);
        expect(s.next(logits, [])).toBe(oracle(logits, allowed, 1).ids[0]);
      }),
      { numRuns: 100 },
    );
  });

  it("repetition penalty lowers a repeated token's probability against every other token", () => {
    fc.assert(
      fc.property(
        // transformers' rule divides positive logits and multiplies negative ones: a logit of exactly 0 is
        // left alone, so the property is stated for non-zero logits.
        fc.array(fc.double({ min: -5, max: 5, noNaN: true }).filter((v) => Math.abs(v) > 1e-3), { minLength: 3, maxLength: 40 }),
        fc.double({ min: 1.05, max: 3, noNaN: true }),
        fc.array(fc.nat(), { minLength: 1, maxLength: 10 }),
        (values, penalty, picks) => {
          const logits = Float64Array.from(values, Math.fround);
          const context = picks.map((p) => p % values.length);
          const repeated = new Set(context);
          if (repeated.size === values.length) return; // everything repeated: nothing to compare against
          const x = Float32Array.from(logits);
          applyRepetitionPenalty(x, context, penalty);
          const before = probabilities(Float32Array.from(logits));
          const after = probabilities(x);
          for (const i of repeated) {
            expect(x[i]).toBeLessThan(logits[i]);
            for (let j = 0; j < values.length; j++) {
              if (!repeated.has(j)) expect(after[i] / after[j]).toBeLessThan(before[i] / before[j]);
            }
          }
          // One repeated token: its probability itself goes down.
          if (repeated.size === 1) {
            const [i] = repeated;
            expect(after[i]).toBeLessThan(before[i]);
          }
          // Through the sampler: greedy picks the best of the penalized logits.
          const all = new Uint8Array(values.length).fill(1);
          const s = new Sampler({ temperature: 0, repetitionPenalty: penalty }, all);
          expect(s.next(Float32Array.from(logits), context)).toBe(argmax(x, all));
        },
      ),
      { numRuns: 200 },
    );
  });

  it("rejects invalid options with a clear error", () => {
    const a = new Uint8Array(2).fill(1);
    expect(() => new Sampler({ temperature: -1 }, a)).toThrow(/temperature must be/);
    expect(() => new Sampler({ topP: 0 }, a)).toThrow(/top-p must be in \(0, 1\]/);
    expect(() => new Sampler({ topK: 1.5 }, a)).toThrow(/top-k must be an integer/);
    expect(() => new Sampler({ minP: 2 }, a)).toThrow(/min-p/);
    expect(() => new Sampler({ seed: -3 }, a)).toThrow(/seed/);
    expect(() => new Sampler({ repetitionPenalty: 0 }, a)).toThrow(/repetition penalty/);
    expect(() => new Sampler({}, a).next(new Float32Array(3), [])).toThrow(/logits have 3 entries but the vocabulary has 2/);
  });
});

function probabilities(x: Float32Array): number[] {
  const max = Math.max(...x);
  const w = [...x].map((v) => Math.exp(v - max));
  const t = w.reduce((a, b) => a + b, 0);
  return w.map((v) => v / t);
}
