// The int4 recipe with f16 scales as Q4_0 blocks (quantizeRowsQ4_0Ref, the twin of the SIMD kernel convert
// writes with, src/kernels/quantize.ts) against the expectation written independently in
// test/helpers/q4_0-reference.ts and against the f32-scale recipe it rounds; decodeQ4_0 (src/model/q4_0.ts)
// reading them back.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { decodeQ4_0, q4_0RowBytes } from "../../src/model/q4_0.js";
import { quantizeRowsQ4_0Ref } from "../../src/kernels/quantize.js";
import { quantizeInt4 } from "../../src/model/quantize.js";
import { f16BitsToF32 } from "../../src/kernels/dtype.js";
import { expectedQ4_0, nearestHalf } from "../helpers/q4_0-reference.js";

/** The twin on f32 weights. */
function quantizeRowsQ4_0(w: Float32Array, rows: number, cols: number): Uint8Array {
  return quantizeRowsQ4_0Ref(new Uint8Array(w.buffer, w.byteOffset, w.byteLength), "F32", rows, cols);
}

/** Expected blocks of a matrix: the half scale and the 32 signed q per block. */
function expectRows(w: Float32Array, rows: number, cols: number): Array<{ d: number; q: number[] }> {
  const { q, d } = expectedQ4_0(w, rows, cols);
  return Array.from(d, (scale, b) => ({ d: scale, q: Array.from(q.subarray(b * 32, b * 32 + 32)) }));
}

/** Splits Q4_0 bytes into per-block half scales and signed q (nibble - 8; j low, j + 16 high). */
function decode(bytes: Uint8Array): Array<{ d: number; q: number[] }> {
  const out = [];
  for (let o = 0; o < bytes.length; o += 18) {
    const q = new Array<number>(32);
    for (let j = 0; j < 16; j++) {
      q[j] = (bytes[o + 2 + j] & 15) - 8;
      q[j + 16] = (bytes[o + 2 + j] >> 4) - 8;
    }
    out.push({ d: f16BitsToF32(bytes[o] | (bytes[o + 1] << 8)), q });
  }
  return out;
}

describe("quantizeRowsQ4_0Ref", () => {
  it("matches the recipe written independently; the scale is the f32 recipe's rounded to a half", () => {
    const weight = fc.oneof(
      fc.float({ noNaN: true, noDefaultInfinity: true, min: -4, max: 4 }),
      fc.float({ noNaN: true, noDefaultInfinity: true, min: Math.fround(-1e-6), max: Math.fround(1e-6) }),
      fc.constantFrom(0, -0, 1e-40, -1e-40, 7.5, -7.5, 2.5, 3.5),
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 4 }), fc.double({ min: 1e-6, max: 1e4, noNaN: true }), fc.array(weight, { minLength: 384, maxLength: 384 }), (rows, groups, scale, values) => {
        const cols = 32 * groups;
        const w = Float32Array.from({ length: rows * cols }, (_, i) => values[i % values.length] * scale);
        const bytes = quantizeRowsQ4_0(w, rows, cols);
        expect(bytes.length).toBe(rows * q4_0RowBytes(cols));
        const got = decode(bytes);
        expect(got).toEqual(expectRows(w, rows, cols));
        const engine = quantizeInt4(w, rows, cols);
        got.forEach((block, b) => {
          expect(block.d).toBe(nearestHalf(engine.scales[b]));
          // q is the f32-scale recipe's, exactly
          for (let j = 0; j < 32; j++) expect(block.q[j]).toBe(engine.q[b * 32 + j]);
        });
      }),
      { numRuns: 300 },
    );
  });

  it("stores edge groups exactly", () => {
    // s = 7.5 / 7.5 = 1: half steps round to even, +-7.5 clamp to 7 and -8
    const w = new Float32Array(32);
    w.set([7.5, -7.5, 2.5, 3.5, -2.5, 0.49, -0, 1e-40]);
    const [b] = decode(quantizeRowsQ4_0(w, 1, 32));
    expect(b.d).toBe(1);
    expect(b.q.slice(0, 9)).toEqual([7, -8, 2, 4, -2, 0, 0, 0, 0]);

    // all zero: the scale floor 2^-23 (a half subnormal, bits 0x0002) and nibbles 8
    const zero = quantizeRowsQ4_0(new Float32Array(32), 1, 32);
    expect(Array.from(zero.subarray(0, 2))).toEqual([0x02, 0x00]);
    expect(Array.from(zero.subarray(2))).toEqual(new Array(16).fill(0x88));

    // a scale that is a half subnormal: max|w| = 1e-5 gives s = 1.33e-6, stored as d = 22 * 2^-24 = 1.31e-6;
    // q comes from s, so the largest weights' w / s = +-7.5 give 7 and -8
    const small = new Float32Array(32);
    small[5] = 1e-5;
    small[6] = -1e-5;
    small[7] = (6.4 * 1e-5) / 7.5; // 6.4 steps of s but 6.51 of d: q is 6, the recipe's (7 against d)
    const [sub] = decode(quantizeRowsQ4_0(small, 1, 32));
    expect(sub.d).toBe(22 * 2 ** -24);
    expect([sub.q[5], sub.q[6], sub.q[7]]).toEqual([7, -8, 6]);

    // one huge value among tiny ones: it takes q 7, the rest 0; its scale 60000 / 7.5 = 8000 is a half
    const huge = new Float32Array(32).fill(1e-3);
    huge[17] = 60000;
    const [h] = decode(quantizeRowsQ4_0(huge, 1, 32));
    expect(h.d).toBe(8000);
    expect(h.q[17]).toBe(7);
    expect(h.q.filter((q, j) => j !== 17 && q !== 0)).toEqual([]);

    // low nibbles hold elements 0..15, high nibbles 16..31
    const order = new Float32Array(32);
    order[0] = 7.5;
    order[16] = -7.5;
    const bytes = quantizeRowsQ4_0(order, 1, 32);
    expect(bytes[2]).toBe(15 | (0 << 4));
  });

  it("decodes back to the recipe's q and half scales", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 3 }), fc.array(fc.float({ noNaN: true, noDefaultInfinity: true, min: -100, max: 100 }), { minLength: 32, maxLength: 32 }), (rows, groups, seed) => {
        const cols = 32 * groups;
        const w = Float32Array.from({ length: rows * cols }, (_, i) => seed[i % 32] * (1 + (i % 7)));
        const back = decodeQ4_0(quantizeRowsQ4_0(w, rows, cols), rows, cols);
        const want = expectedQ4_0(w, rows, cols);
        expect(back.rows).toBe(rows);
        expect(back.cols).toBe(cols);
        expect(Array.from(back.q)).toEqual(Array.from(want.q));
        expect(Array.from(back.scales)).toEqual(Array.from(want.d));
      }),
      { numRuns: 200 },
    );
    expect(() => decodeQ4_0(new Uint8Array(17), 1, 32)).toThrow(/17 bytes for 1 x 32 \(18 expected\)/);
  });

  it("refuses what a half scale or the format cannot hold", () => {
    const nan = new Float32Array(64);
    nan[40] = NaN;
    expect(() => quantizeRowsQ4_0(nan, 1, 64)).toThrow(/row 0 contains NaN\/Inf at column 40/);
    const inf = new Float32Array(64);
    inf[3] = -Infinity;
    expect(() => quantizeRowsQ4_0(inf, 2, 32)).toThrow(/row 0 contains NaN\/Inf at column 3/);
    const big = new Float32Array(32);
    big[0] = 5e5; // scale 66667 > 65504
    expect(() => quantizeRowsQ4_0(big, 1, 32)).toThrow(/row 0, columns 0-31: max\|w\| = 500000 needs a scale of 66666.6\d+, beyond f16/);
    expect(() => quantizeRowsQ4_0(new Float32Array(30), 1, 30)).toThrow(/multiple of 32/);
    expect(() => quantizeRowsQ4_0(new Float32Array(64), 1, 32)).toThrow(/256 bytes for 1 x 32 F32/);
  });
});
