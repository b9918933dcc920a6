// Fuzzing the readers of tokenizer.json and tokenizer_config.json (beside the safetensors fuzzing in
// test/checkpoint/fuzz.test.ts): thousands of structured mutations of the bundled files. Each one either
// loads, and then encodes and decodes without error, or is refused with one line naming the file; never
// an internal message, a hang or a crash.
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import fc from "fast-check";
import { TextTokenizer } from "../../src/text/tokenizer.js";
import { classify, mutate, mutation } from "../helpers/json-mutation.js";

const tokenizerJson = JSON.parse(readFileSync("models/shakespeare-tiny/tokenizer.json", "utf8")) as unknown;
const tokenizerConfig = JSON.parse(readFileSync("models/shakespeare-tiny/tokenizer_config.json", "utf8")) as unknown;
const TEXTS = ["ROMEO:\nWhat say you?", "", "<|begin_of_text|>x", "caf\u00e9 \u{1F600} 123 's 'll", "  \n\n\t"];
const PREFIXES = ["tokenizer.json: ", "tokenizer_config.json: "];

function exercise(tokenizer: unknown, config: unknown): string {
  return classify(() => {
    const t = new TextTokenizer({ tokenizer, tokenizerConfig: config as Record<string, unknown> });
    t.checkFitsVocabulary(1024);
    for (const text of TEXTS) {
      const ids = t.encode(text);
      t.decode(ids);
      t.encode(text, false);
    }
  }, PREFIXES);
}

describe("fuzzing the tokenizer files", () => {
  it("the unmutated files load", () => {
    expect(exercise(tokenizerJson, tokenizerConfig)).toBe("ok");
  });

  it("mutated tokenizer.json: every case loads or is refused cleanly", () => {
    const outcomes = new Map<string, number>();
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 3 }), (ms) => {
        const r = exercise(mutate(tokenizerJson, ms), tokenizerConfig);
        outcomes.set(r, (outcomes.get(r) ?? 0) + 1);
        expect(r === "ok" || r === "refused" ? "clean" : r).toBe("clean");
      }),
      { numRuns: 1000, seed: 16 },
    );
    // The mutations reach both outcomes.
    expect(outcomes.get("refused")).toBeGreaterThan(100);
    expect(outcomes.get("ok")).toBeGreaterThan(100);
  });

  it("mutated tokenizer_config.json: every case loads or is refused cleanly", () => {
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 3 }), (ms) => {
        const r = exercise(tokenizerJson, mutate(tokenizerConfig, ms));
        expect(r === "ok" || r === "refused" ? "clean" : r).toBe("clean");
      }),
      { numRuns: 600, seed: 17 },
    );
  });
});
