// The real hub files answer as language models: a greedy chat answer of SmolLM2-135M-Instruct (its ChatML
// template, stopping at its end of turn) and a greedy continuation of Gemma 3 270M (the base model: no
// template), checked for what they say. The arithmetic is held to llama.cpp's next-token distributions
// elsewhere (hub-llama-cpp.test.ts); this is what a user sees. Both
// answers were read against llama.cpp's greedy output on the same files (node-llama-cpp 3.22.1): the same
// words until a near-tie, then the same kind of answer.
import { afterAll, describe, expect, it } from "vitest";
import { loadModel, type Model } from "../../src/api.js";
import { GEMMA3_270M_Q4_K_M, hubFilesPresent, hubPath, SMOLLM2_135M_INSTRUCT_Q4_1 } from "../helpers/hub-files.js";

describe.skipIf(!hubFilesPresent(SMOLLM2_135M_INSTRUCT_Q4_1))("SmolLM2-135M-Instruct Q4_1 in a chat", () => {
  let model: Model | undefined;
  afterAll(async () => model?.dispose());

  it("gives three health tips and ends its turn by itself", async () => {
    model = await loadModel(hubPath(SMOLLM2_135M_INSTRUCT_Q4_1), { contextLength: 512 });
    const r = await model.chat([{ role: "user", content: "Give me three tips for staying healthy." }], { temperature: 0, maxNewTokens: 200 }).result;
    expect(r.stopReason).toBe("eos");
    const text = r.text.toLowerCase();
    expect(text).toMatch(/^1\./);
    expect(text).toMatch(/\n\s*2\./);
    expect(text).toMatch(/\n\s*3\./);
    const topics = [/water|hydrat/, /sleep/, /diet|eat/, /exercise|active/].filter((t) => t.test(text));
    expect(topics.length, r.text).toBeGreaterThanOrEqual(3);
  }, 120_000);
});

describe.skipIf(!hubFilesPresent(GEMMA3_270M_Q4_K_M))("Gemma 3 270M Q4_K_M continuing a text", () => {
  let model: Model | undefined;
  afterAll(async () => model?.dispose());

  it("says water boils at 100 degrees Celsius", async () => {
    model = await loadModel(hubPath(GEMMA3_270M_Q4_K_M), { contextLength: 256 });
    const r = await model.generate("Water boils at", { temperature: 0, maxNewTokens: 12 }).result;
    expect(r.text).toMatch(/^ 100 degrees Celsius/);
  }, 120_000);
});
