import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { dequantizeInt4, quantizeInt4 } from "../../src/model/quantize.js";

const groupArb = fc.array(fc.float({ min: -4, max: 4, noNaN: true, noDefaultInfinity: true }), { minLength: 32, maxLength: 32 });

describe("int4 g32 weight quantization (the QAT recipe)", () => {
  it("uses s = max|w| / 7.5 and keeps every weight within half a step", () => {
    fc.assert(
      fc.property(fc.array(groupArb, { minLength: 1, maxLength: 4 }), (groups) => {
        const w = Float32Array.from(groups.flat());
        const m = quantizeInt4(w, 1, w.length);
        const back = dequantizeInt4(m);
        groups.forEach((g, gi) => {
          const max = Math.max(...g.map(Math.abs));
          const s = m.scales[gi];
          if (max > 0) expect(s).toBeCloseTo(max / 7.5, 6);
          for (let i = 0; i < 32; i++) {
            const k = gi * 32 + i;
            expect(m.q[k]).toBeGreaterThanOrEqual(-8);
            expect(m.q[k]).toBeLessThanOrEqual(7);
            // half a step, plus the f32 rounding of s and of the product q * s
            expect(Math.abs(back[k] - w[k])).toBeLessThanOrEqual(s * 0.5 + 1e-6 * Math.abs(w[k]) + 1e-30);
          }
        });
      }),
      { numRuns: 300 },
    );
  });

  it("clamps the positive extreme to 7 and keeps the negative one at -8 (7.5 rounds half-to-even to 8)", () => {
    const w = new Float32Array(32);
    w[0] = 1.5;
    w[1] = -1.5;
    w[2] = 0.1; // 0.1 / 0.2 = 0.5 -> 0 (half to even)
    w[3] = 0.3; // 1.5 -> 2
    const m = quantizeInt4(w, 1, 32);
    expect(m.scales[0]).toBeCloseTo(0.2, 7);
    expect([m.q[0], m.q[1], m.q[2], m.q[3]]).toEqual([7, -8, 0, 2]);
  });

  it("gives an all-zero group zero values and a tiny positive scale", () => {
    const m = quantizeInt4(new Float32Array(64), 2, 32);
    expect(Array.from(m.q).every((v) => v === 0)).toBe(true);
    expect(m.scales.every((s) => s > 0 && s < 1e-6)).toBe(true);
  });

  it("rejects widths that are not a multiple of 32", () => {
    expect(() => quantizeInt4(new Float32Array(48), 1, 48)).toThrow(/multiple of 32/);
  });
});
