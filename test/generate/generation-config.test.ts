import { describe, expect, it } from "vitest";
import { parseGenerationConfig } from "../../src/generate/generation-config.js";
import { progressBar } from "../../src/cli/progress.js";

describe("generation_config.json", () => {
  it("do_sample true samples with the file's values and transformers' top_k default of 50", () => {
    const g = parseGenerationConfig({ do_sample: true, temperature: 0.7, top_p: 0.95, eos_token_id: [1, 7], max_new_tokens: 99 });
    expect(g.sampling).toEqual({ temperature: 0.7, topK: 50, topP: 0.95, minP: 0 });
    expect(g.eosTokenIds).toEqual([1, 7]);
    expect(g.maxNewTokens).toBe(99);
  });

  it("do_sample false or absent is greedy whatever the temperature says", () => {
    expect(parseGenerationConfig({ temperature: 0.6 }).sampling).toEqual({ temperature: 0 });
    expect(parseGenerationConfig({ do_sample: false, top_k: 5, repetition_penalty: 1.2, eos_token_id: 3 })).toEqual({
      sampling: { temperature: 0, repetitionPenalty: 1.2 },
      maxNewTokens: undefined,
      eosTokenIds: [3],
    });
  });

  it("names the key of a bad value", () => {
    expect(() => parseGenerationConfig({ do_sample: true, top_p: 2 })).toThrow(/top_p has an invalid value 2/);
    expect(() => parseGenerationConfig({ temperature: "hot" })).toThrow(/temperature has an invalid value/);
    expect(() => parseGenerationConfig({ eos_token_id: ["x"] })).toThrow(/eos_token_id must be/);
    expect(() => parseGenerationConfig({ do_sample: "yes" })).toThrow(/do_sample must be true or false/);
    expect(() => parseGenerationConfig([])).toThrow(/expected a JSON object/);
  });
});

describe("load progress bar", () => {
  it("redraws one line on a terminal and clears it at the end", () => {
    let written = "";
    const tty = { isTTY: true, write: (s: string) => ((written += s), true) } as unknown as NodeJS.WriteStream;
    const bar = progressBar("loading", tty);
    for (let i = 1; i <= 44; i++) bar.update(i, 44);
    bar.end();
    // Each frame clears the line first (a shorter note must not leave the end of a longer one).
    const frames = written.split("\r").map((f) => f.replace(/^\x1b\[2K/, "")).filter((f) => f.startsWith("loading"));
    expect(frames.length).toBeGreaterThan(5);
    expect(frames.length).toBeLessThanOrEqual(31); // redrawn only when the bar moves
    expect(frames[frames.length - 1]).toBe(`loading [${"#".repeat(30)}] 100%`);
    expect(written.endsWith("\r\x1b[2K")).toBe(true);
  });

  it("writes nothing to a pipe", () => {
    let written = "";
    const pipe = { isTTY: false, write: (s: string) => ((written += s), true) } as unknown as NodeJS.WriteStream;
    const bar = progressBar("loading", pipe);
    bar.update(1, 2);
    bar.end();
    expect(written).toBe("");
  });
});
