// The model card's held-out perplexity was computed in float64 by an implementation outside this repo;
// the float32 reference must reproduce it within 0.5%.
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { loadModel } from "../../src/api.js";

function modelCardPerplexity(file: string): number {
  const card = readFileSync("models/shakespeare-tiny/README.md", "utf8");
  const row = card.split("\n").find((l) => l.startsWith(`| ${file} |`));
  if (!row) throw new Error(`no row for ${file} in the model card`);
  return Number(row.split("|")[3].trim());
}

describe("reference vs the model card", () => {
  it("reproduces the float64 perplexity of heldout-short.txt at context 256 within 0.5%", async () => {
    const expected = modelCardPerplexity("heldout-short.txt");
    expect(expected).toBeCloseTo(25.4096, 4);
    const model = await loadModel("models/shakespeare-tiny", { backend: "reference", contextLength: 257 });
    const r = model.perplexity(readFileSync("models/shakespeare-tiny/heldout-short.txt", "utf8"), 256);
    expect(r.tokens).toBe(2270);
    expect(Math.abs(r.perplexity / expected - 1)).toBeLessThan(0.005);
  });
});
