// Batch invariance: a sequence's logits are bit-identical whatever else runs in the same forward pass
// (sequences joining and leaving, prefill chunks beside decode steps, blocks split anywhere), and equal to
// the logits of the sequence run alone.
import { describe, expect, it, afterAll, beforeAll } from "vitest";
import fc from "fast-check";
import { loadModel, type Model } from "../../src/api.js";
import type { BatchToken } from "../../src/model/backend.js";

interface Plan {
  /** Prompt tokens, then the tokens fed one a step (decode). */
  prompt: number[];
  decode: number[];
  /** Step at which the sequence joins. */
  join: number;
}

const token = fc.integer({ min: 0, max: 999 });
const plan = fc.record({
  prompt: fc.array(token, { minLength: 1, maxLength: 90 }),
  decode: fc.array(token, { minLength: 0, maxLength: 25 }),
  join: fc.nat(12),
});

function sameBits(a: Float32Array, b: Float32Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/** The logits a sequence gets alone: its prompt as one forward call, then one call per decode token. */
function solo(m: Model, p: Plan, sequence: number): Float32Array[] {
  const b = m.backend;
  const out = [b.forward(p.prompt, 0, false, sequence)[0]];
  p.decode.forEach((t, i) => out.push(b.forward([t], p.prompt.length + i, false, sequence)[0]));
  return out;
}

/**
 * All plans in batched steps: from its join step, each sequence adds its next prefill chunk (`chunk` tokens
 * at most) or its next decode token to every step, until it is done; the logits per sequence in order.
 */
function batched(m: Model, plans: Plan[], chunk: number): Float32Array[][] {
  const done = plans.map(() => 0);
  const out: Float32Array[][] = plans.map(() => []);
  for (let step = 0; plans.some((p, s) => done[s] < p.prompt.length + p.decode.length); step++) {
    const batch: BatchToken[] = [];
    const owners: number[] = [];
    plans.forEach((p, s) => {
      if (step < p.join) return;
      const all = [...p.prompt, ...p.decode];
      const n = done[s] < p.prompt.length ? Math.min(chunk, p.prompt.length - done[s]) : Math.min(1, all.length - done[s]);
      for (let i = 0; i < n; i++) {
        const position = done[s] + i;
        const logits = position >= p.prompt.length - 1;
        batch.push({ sequence: s, token: all[position], position, logits });
        if (logits) owners.push(s);
      }
      done[s] += n;
    });
    if (batch.length === 0) continue;
    const logits = m.backend.forwardBatch(batch);
    expect(logits.length).toBe(owners.length);
    logits.forEach((l, i) => out[owners[i]].push(l));
  }
  return out;
}

describe("batched forward passes", () => {
  let m: Model;
  beforeAll(async () => {
    // Context 160: sliding rings (window 64) wrap; 4 sequences with their own caches.
    m = await loadModel(undefined, { contextLength: 160, sequences: 4, threads: 1 });
  });
  afterAll(() => m.dispose());

  it("property: each sequence's logits are bit-identical to its solo run, whoever joins or leaves", () => {
    fc.assert(
      fc.property(fc.array(plan, { minLength: 1, maxLength: 4 }), fc.integer({ min: 1, max: 40 }), (plans, chunk) => {
        const alone = plans.map((p, s) => solo(m, p, s));
        const together = batched(m, plans, chunk);
        plans.forEach((p, s) => {
          expect(together[s].length).toBe(p.decode.length + 1);
          together[s].forEach((l, i) => expect(sameBits(l, alone[s][i]), `sequence ${s}, logits ${i}`).toBe(true));
        });
      }),
      { numRuns: 12, seed: 2026 },
    );
  });

  it("the same with two threads", async () => {
    const two = await loadModel(undefined, { contextLength: 160, sequences: 3, threads: 2 });
    try {
      const plans: Plan[] = [
        { prompt: Array.from({ length: 70 }, (_, i) => (i * 37) % 1000), decode: [5, 6, 7, 8, 9, 10], join: 0 },
        { prompt: [11, 12, 13], decode: Array.from({ length: 20 }, (_, i) => 100 + i), join: 1 },
        { prompt: Array.from({ length: 33 }, (_, i) => (i * 11) % 1000), decode: [1, 2], join: 4 },
      ];
      const alone = plans.map((p, s) => solo(m, p, s));
      const together = batched(two, plans, 16);
      plans.forEach((_, s) => together[s].forEach((l, i) => expect(sameBits(l, alone[s][i]), `sequence ${s}, logits ${i}`).toBe(true)));
    } finally {
      await two.dispose();
    }
  });

  it("refuses a batch whose rows of one sequence are not consecutive positions, and unknown sequences", () => {
    const b = m.backend;
    expect(() => b.forwardBatch([{ sequence: 0, token: 1, position: 0, logits: true }, { sequence: 0, token: 2, position: 2, logits: true }])).toThrow(/sequence 0: position 2 follows position 0/);
    expect(() => b.forwardBatch([{ sequence: 4, token: 1, position: 0, logits: true }])).toThrow(/sequence 4 is outside 0..3/);
    expect(() => b.forward([1], 0, false, -1)).toThrow(/sequence -1 is outside/);
    expect(() => b.forwardBatch([])).toThrow(/no tokens/);
  });
});
