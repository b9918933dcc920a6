// Properties the reference must have whatever the weights: each would catch a specific mistake in
// the mask, the GQA head mapping, RoPE or RMSNorm.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { ReferenceModel, rmsnorm } from "../../src/reference/model.js";
import { ropeInverseFrequencies } from "../../src/model/rope.js";
import { applyRope } from "../../src/reference/rope.js";
import { randomWeights, rng, smallConfig, type SmallModelSpec } from "../helpers/random-model.js";

function run(spec: SmallModelSpec, seed: number, tokens: number[], weights = randomWeights(smallConfig(spec), seed)): Float32Array[] {
  const m = new ReferenceModel(smallConfig(spec), weights, 64);
  return tokens.map((t, i) => m.forward(t, i).slice());
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const specArb = fc.record({
  layers: fc.integer({ min: 1, max: 3 }),
  kvHeads: fc.integer({ min: 1, max: 2 }),
  group: fc.integer({ min: 1, max: 3 }),
  headDim: fc.constantFrom(4, 8),
  vocab: fc.integer({ min: 5, max: 40 }),
  seed: fc.integer(),
});

describe("reference forward pass", () => {
  it("is causal: appending tokens never changes earlier logits", () => {
    fc.assert(
      fc.property(specArb, fc.array(fc.nat(), { minLength: 2, maxLength: 12 }), fc.integer({ min: 1, max: 6 }), (s, raw, extra) => {
        const spec = { layers: s.layers, hidden: 16, heads: s.kvHeads * s.group, kvHeads: s.kvHeads, headDim: s.headDim, ffn: 24, vocab: s.vocab, pattern: "GS".repeat(3).slice(0, s.layers), window: 3 };
        const tokens = raw.map((t) => t % s.vocab);
        const more = [...tokens, ...Array.from({ length: extra }, (_, i) => (i * 7) % s.vocab)];
        const a = run(spec, s.seed, tokens);
        const b = run(spec, s.seed, more);
        a.forEach((row, i) => expect(maxAbsDiff(row, b[i])).toBe(0));
      }),
      { numRuns: 25 },
    );
  });

  it("sliding layers see exactly the last `window` tokens (i - j < window)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 6 }), fc.integer(), fc.integer({ min: 0, max: 10 }), (window, seed, tail) => {
        // One sliding layer: the last position's receptive field is exactly `window` tokens.
        const spec = { layers: 1, hidden: 16, heads: 2, kvHeads: 1, headDim: 8, ffn: 24, vocab: 11, pattern: "S", window };
        const weights = randomWeights(smallConfig(spec), seed);
        const n = window + tail + 1;
        const base = Array.from({ length: n }, (_, i) => (i * 3 + 1) % 11);
        const last = n - 1;
        const changeAt = (p: number) => base.map((t, i) => (i === p ? (t + 5) % 11 : t));
        const ref = run(spec, seed, base, weights)[last];
        // distance window: invisible
        expect(maxAbsDiff(run(spec, seed, changeAt(last - window), weights)[last], ref)).toBe(0);
        // distance window - 1: visible
        expect(maxAbsDiff(run(spec, seed, changeAt(last - window + 1), weights)[last], ref)).toBeGreaterThan(0);
      }),
      { numRuns: 25 },
    );
  });

  it("with every layer sliding, nothing reaches further than layers * (window - 1) positions", () => {
    const window = 4;
    const spec = { layers: 3, hidden: 16, heads: 2, kvHeads: 1, headDim: 8, ffn: 24, vocab: 11, pattern: "SSS", window };
    const reach = spec.layers * (window - 1);
    const n = reach + 6;
    const base = Array.from({ length: n }, (_, i) => (i * 5 + 2) % 11);
    const changed = base.map((t, i) => (i === n - 1 - reach - 1 ? (t + 3) % 11 : t));
    const a = run(spec, 7, base);
    const b = run(spec, 7, changed);
    expect(maxAbsDiff(a[n - 1], b[n - 1])).toBe(0);
    const global = { ...spec, pattern: "SSG" };
    expect(maxAbsDiff(run(global, 7, base)[n - 1], run(global, 7, changed)[n - 1])).toBeGreaterThan(0);
  });

  it("GQA equals multi-head attention with each KV head repeated for its group", () => {
    fc.assert(
      fc.property(specArb, fc.array(fc.nat(), { minLength: 1, maxLength: 8 }), (s, raw) => {
        const spec = { layers: s.layers, hidden: 16, heads: s.kvHeads * s.group, kvHeads: s.kvHeads, headDim: s.headDim, ffn: 24, vocab: s.vocab };
        const tokens = raw.map((t) => t % s.vocab);
        const gqa = randomWeights(smallConfig(spec), s.seed);
        // repeat_kv: query head h reads KV head floor(h / group), so MHA gets row block h / group.
        const repeat = (w: Float32Array) => {
          const block = s.headDim * 16;
          const out = new Float32Array(w.length * s.group);
          for (let h = 0; h < spec.heads; h++) out.set(w.subarray(Math.floor(h / s.group) * block, (Math.floor(h / s.group) + 1) * block), h * block);
          return out;
        };
        const mha = { ...gqa, layers: gqa.layers.map((l) => ({ ...l, wk: repeat(l.wk), wv: repeat(l.wv) })) };
        const a = run(spec, s.seed, tokens, gqa);
        const b = run({ ...spec, kvHeads: spec.heads }, s.seed, tokens, mha);
        a.forEach((row, i) => expect(maxAbsDiff(row, b[i])).toBeLessThan(1e-5));
      }),
      { numRuns: 25 },
    );
  });
});

describe("RoPE", () => {
  it("makes q.k depend on the position difference only, in either pairing", () => {
    fc.assert(
      fc.property(fc.integer(), fc.integer({ min: 0, max: 3000 }), fc.integer({ min: 0, max: 3000 }), fc.integer({ min: 1, max: 5000 }), fc.constantFrom("interleaved" as const, "rotate_half" as const), (seed, i, j, shift, style) => {
        const omega = ropeInverseFrequencies(16, { theta: 10000, scaling: null });
        const next = rng(seed);
        const q = Float32Array.from({ length: 16 }, () => next() - 0.5);
        const k = Float32Array.from({ length: 16 }, () => next() - 0.5);
        const score = (pq: number, pk: number) => {
          const a = q.slice();
          const b = k.slice();
          applyRope(a, 1, 16, pq, omega, style);
          applyRope(b, 1, 16, pk, omega, style);
          return a.reduce((s, x, n) => s + x * b[n], 0);
        };
        expect(score(i + shift, j + shift)).toBeCloseTo(score(i, j), 4);
      }),
      { numRuns: 100 },
    );
  });

  it("rotates adjacent pairs (interleaved form), not halves", () => {
    const omega = ropeInverseFrequencies(4, { theta: 10000, scaling: null });
    const v = Float32Array.from([1, 0, 0, 0]);
    applyRope(v, 1, 4, 1, omega, "interleaved");
    // pair (0, 1) turns by 1 radian (omega_0 = 1); element 2 (the other half's first) stays 0.
    expect(v[0]).toBeCloseTo(Math.cos(1), 6);
    expect(v[1]).toBeCloseTo(Math.sin(1), 6);
    expect(v[2]).toBe(0);
  });

  it("rotate_half pairs dimension i with i + headDim/2 (Hugging Face Llama's layout)", () => {
    const omega = ropeInverseFrequencies(4, { theta: 10000, scaling: null });
    const v = Float32Array.from([1, 0, 0, 0]);
    applyRope(v, 1, 4, 1, omega, "rotate_half");
    // pair (0, 2) turns by 1 radian; element 1 belongs to pair (1, 3) and stays 0.
    expect(v[0]).toBeCloseTo(Math.cos(1), 6);
    expect(v[2]).toBeCloseTo(Math.sin(1), 6);
    expect(v[1]).toBe(0);
  });

  it("llama3 scaling slows long wavelengths by the factor and keeps short ones", () => {
    const base = ropeInverseFrequencies(64, { theta: 500000, scaling: null });
    const scaled = ropeInverseFrequencies(64, {
      theta: 500000,
      scaling: { type: "llama3", factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 },
    });
    expect(scaled[0]).toBe(base[0]); // wavelength 2*pi < 8192 / 4
    expect(scaled[31]).toBeCloseTo(base[31] / 8, 12); // wavelength far above 8192
    for (let i = 0; i < 32; i++) {
      expect(scaled[i]).toBeLessThanOrEqual(base[i]);
      expect(scaled[i]).toBeGreaterThanOrEqual(base[i] / 8 - 1e-18);
    }
  });
});

describe("RMSNorm", () => {
  it("is invariant to scaling its input", () => {
    fc.assert(
      fc.property(fc.integer(), fc.integer({ min: 1, max: 64 }), fc.double({ min: 0.01, max: 100, noNaN: true }), (seed, n, c) => {
        const next = rng(seed);
        // |x| >= 0.1 keeps mean(x^2) far above eps, where the invariance is exact up to rounding.
        const x = Float32Array.from({ length: n }, () => (next() < 0.5 ? -1 : 1) * (0.1 + next()));
        const w = Float32Array.from({ length: n }, () => next());
        const a = new Float32Array(n);
        const b = new Float32Array(n);
        rmsnorm(a, x, w, 1e-12);
        rmsnorm(b, x.map((v) => v * c), w, 1e-12);
        for (let i = 0; i < n; i++) expect(b[i]).toBeCloseTo(a[i], 4);
      }),
      { numRuns: 100 },
    );
  });
});
