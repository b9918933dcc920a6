// Fuzzing config.json's reader: thousands of structured mutations of the bundled config and of the
// MobileLLM-Pro preset. Each one parses, and then the memory figures `info` prints are computed without
// error, or is refused with one line naming the file; never an internal message, and all within a bound
// that rules out work proportional to a hostile count.
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import fc from "fast-check";
import { MOBILELLM_PRO_CONFIG_JSON, parameterCount, parseConfig } from "../../src/model/config.js";
import { int4WeightBytes, kvCacheBytes, wasmEngineBytes } from "../../src/model/memory.js";
import { ropeInverseFrequencies } from "../../src/model/rope.js";
import { classify, mutate, mutation } from "../helpers/json-mutation.js";

const tiny = JSON.parse(readFileSync("models/shakespeare-tiny/config.json", "utf8")) as unknown;

function exercise(json: unknown): string {
  return classify(() => {
    const c = parseConfig(json, "config.json");
    parameterCount(c);
    int4WeightBytes(c);
    const ctx = Math.min(c.maxPositions, 64);
    kvCacheBytes(c, ctx);
    wasmEngineBytes(c, ctx, int4WeightBytes(c).total);
    // What parsing promises the engine: finite RoPE frequencies no larger than 1. (The engine builds them
    // only after the checkpoint's tensor shapes have confirmed head_dim; here a fuzzed one is capped.)
    for (const rope of Object.values(c.rope)) {
      const omega = ropeInverseFrequencies(Math.min(c.headDim, 1024), rope);
      if (!omega.every((w) => Number.isFinite(w) && w >= 0 && w <= 1)) throw new Error(`RoPE frequencies out of range: ${omega.find((w) => !(w >= 0 && w <= 1))}`);
    }
  }, ["config.json: "]);
}

describe("fuzzing config.json", () => {
  for (const [name, base] of [["the bundled config", tiny], ["the MobileLLM-Pro preset", MOBILELLM_PRO_CONFIG_JSON]] as const) {
    it(`mutations of ${name}: every case parses or is refused cleanly, each within a second`, () => {
      expect(exercise(base)).toBe("ok");
      let refused = 0;
      fc.assert(
        fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (ms) => {
          const json = mutate(base, ms);
          const t0 = performance.now();
          const r = exercise(json);
          expect(performance.now() - t0).toBeLessThan(1000);
          if (r === "refused") refused++;
          expect(r === "ok" || r === "refused" ? "clean" : r).toBe("clean");
        }),
        { numRuns: 2000, seed: 18 },
      );
      expect(refused).toBeGreaterThan(200);
    });
  }
});
