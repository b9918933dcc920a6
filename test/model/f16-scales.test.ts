import { describe, expect, it } from "vitest";
import { bundledEngine } from "../threads/helpers.js";
import { cosine } from "../helpers/compare.js";


describe("EngineOptions.f16Scales", () => {
  it("rounds the weight scales to f16: logits move by the rounding (close, not the same bits), and f16 is the default", async () => {
    const tokens = [1, 20, 300, 42, 7, 99];
    const run = async (f16Scales?: boolean) => {
      const e = await bundledEngine({ contextLength: 16, simd: "baseline", f16Scales });
      try {
        return e.forward(tokens, 0, true);
      } finally {
        await e.dispose();
      }
    };
    const byDefault = await run();
    const f32 = await run(false);
    const f16 = await run(true);
    const bits = (rows: Float32Array[]) => rows.flatMap((r) => Array.from(new Uint32Array(r.buffer, r.byteOffset, r.length)));
    expect(bits(byDefault)).toEqual(bits(f16));
    expect(bits(f16)).not.toEqual(bits(f32));
    // f16 keeps 11 significant bits of each scale, so only weights within ~2^-11 of a rounding boundary
    // change their int4 value (measured on this model: cosine >= 0.998 per position)
    f16.forEach((row, i) => expect(cosine(row, f32[i])).toBeGreaterThan(0.995));
  });
});
