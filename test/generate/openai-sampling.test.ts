// The sampler's OpenAI parts (logit_bias, presence and frequency penalties, logprobs) and context shift.
import { describe, expect, it } from "vitest";
import { Sampler, applyOpenAIPenalties } from "../../src/generate/sampler.js";
import { shiftContext } from "../../src/generate/generate.js";
import { loadModel } from "../../src/api.js";

const allowed = Uint8Array.from([1, 1, 1, 1, 0, 1]);
const logits = Float32Array.from([1, 3, 2, -1, 50, 0.5]);

describe("OpenAI's sampling fields", () => {
  it("logit_bias shifts a logit before anything else: +100 forces a token, -100 bans one", () => {
    expect(new Sampler({ temperature: 0 }, allowed).next(logits, [])).toBe(1);
    expect(new Sampler({ temperature: 0, logitBias: new Map([[3, 100]]) }, allowed).next(logits, [])).toBe(3);
    expect(new Sampler({ temperature: 0, logitBias: new Map([[1, -100]]) }, allowed).next(logits, [])).toBe(2);
    expect(() => new Sampler({ logitBias: new Map([[1, 101]]) }, allowed)).toThrow(/logit bias must be a number in \[-100, 100\]/);
  });

  it("presence and frequency penalties follow OpenAI's formula over the generated tokens", () => {
    const x = Float32Array.from([1, 1, 1, 1]);
    applyOpenAIPenalties(x, [1, 2, 2, 2], 0.5, 0.25);
    // token 1: once -> 1 - 0.25 - 0.5; token 2: three times -> 1 - 0.75 - 0.5; others untouched.
    expect(Array.from(x)).toEqual([1, 0.25, -0.25, 1]);
    // Greedy with a frequency penalty turns away from a token generated often enough.
    const s = new Sampler({ temperature: 0, frequencyPenalty: 2 }, allowed);
    expect(s.next(logits, [], [])).toBe(1);
    expect(s.next(logits, [], [1])).toBe(2);
    expect(() => new Sampler({ presencePenalty: 3 }, allowed)).toThrow(/presence penalty must be a number in \[-2, 2\]/);
  });

  it("logprobs are a log-softmax over the ids that may be sampled, after bias and penalties", () => {
    const s = new Sampler({ temperature: 0, logitBias: new Map([[0, 2]]) }, allowed);
    const token = s.next(logits, []);
    const biased = [3, 3, 2, -1, 0.5];
    const ids = [0, 1, 2, 3, 5];
    const z = Math.log(biased.reduce((a, v) => a + Math.exp(v), 0));
    const lp = s.logprobs(token, 3);
    expect(token).toBe(0);
    expect(lp.logprob).toBeCloseTo(3 - z, 6);
    expect(lp.top.map((t) => t.id)).toEqual([0, 1, 2]);
    lp.top.forEach((t) => expect(t.logprob).toBeCloseTo(biased[ids.indexOf(t.id)] - z, 6));
    expect(lp.top.some((t) => t.id === 4)).toBe(false);
  });
});

describe("context shift", () => {
  it("drops the oldest half after the kept tokens", () => {
    expect(shiftContext([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 2)).toEqual([0, 1, 6, 7, 8, 9]);
    expect(() => shiftContext([0, 1, 2, 3], 2)).toThrow(/keep must be an integer in \[0, 1\]/);
  });

  it("only when asked: a full context ends generation, or shifts and goes on", async () => {
    const m = await loadModel(undefined, { contextLength: 48, threads: 1 });
    try {
      const ended = await m.generate("ROMEO:", { temperature: 0, maxNewTokens: 100 }).result;
      expect(ended.stopReason).toBe("context");
      const shifted = await m.generate("ROMEO:", { temperature: 0, maxNewTokens: 100, contextShift: { keep: 3 } }).result;
      expect(shifted.stopReason).toBe("length");
      expect(shifted.tokens).toHaveLength(100);
      // Until the first shift, the answer is the unshifted one.
      expect(shifted.tokens.slice(0, ended.tokens.length)).toEqual(ended.tokens);
    } finally {
      await m.dispose();
    }
  });
});
