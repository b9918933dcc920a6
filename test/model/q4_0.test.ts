// The engine's int4 recipe as Q4_0 blocks (src/model/q4_0.ts), against an expectation written here from
// the recipe's description (f32 scale max|w| / 7.5 at least 2^-23, q = clamp(round-half-even(w / s), -8,
// 7), the scale rounded to the nearest half) and against the folder path's quantizer.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { decodeQ4_0, quantizeRowsQ4_0, q4_0RowBytes } from "../../src/model/q4_0.js";
import { quantizeInt4 } from "../../src/model/quantize.js";
import { f16BitsToF32 } from "../../src/model/checkpoint/dtype.js";

/** The nearest IEEE half to a positive finite x (ties to even), as a number; Infinity past the range. */
function nearestHalf(x: number): number {
  let e = Math.floor(Math.log2(x));
  if (2 ** e > x) e--;
  if (2 ** (e + 1) <= x) e++;
  const quantum = 2 ** (Math.max(e, -14) - 10); // subnormal halves are multiples of 2^-24
  const r = x / quantum;
  const f = Math.floor(r);
  const m = r - f > 0.5 ? f + 1 : r - f < 0.5 ? f : f % 2 === 0 ? f : f + 1;
  const v = m * quantum;
  return v > 65504 ? Infinity : v;
}

function halfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  return d > 0.5 ? f + 1 : d < 0.5 ? f : f % 2 === 0 ? f : f + 1;
}

/** Expected blocks of one row: the half scale and the 32 signed q per block. */
function expectRow(w: Float32Array): Array<{ d: number; q: number[] }> {
  const f = new Float32Array(2);
  const out = [];
  for (let b = 0; b < w.length / 32; b++) {
    const g = w.subarray(b * 32, b * 32 + 32);
    const amax = Math.max(...Array.from(g, Math.abs));
    f[0] = amax / 7.5; // one rounding of the exact quotient to f32, as an f32 division gives
    const s = Math.max(f[0], 2 ** -23);
    const q = Array.from(g, (x) => {
      f[1] = x / s;
      return Math.min(7, Math.max(-8, halfEven(f[1]))) + 0; // + 0: a nibble has no -0
    });
    out.push({ d: nearestHalf(s), q });
  }
  return out;
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

describe("quantizeRowsQ4_0", () => {
  it("matches the recipe written independently, and the folder path's q with its scale rounded to a half", () => {
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
        const want = Array.from({ length: rows }, (_, r) => expectRow(w.subarray(r * cols, (r + 1) * cols))).flat();
        expect(got).toEqual(want);
        const engine = quantizeInt4(w, rows, cols);
        got.forEach((block, b) => {
          expect(block.q).toEqual(Array.from(engine.q.subarray(b * 32, b * 32 + 32)));
          expect(block.d).toBe(nearestHalf(engine.scales[b]));
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

  it("decodes back to the folder path's q and its scales rounded to a half", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 3 }), fc.array(fc.float({ noNaN: true, noDefaultInfinity: true, min: -100, max: 100 }), { minLength: 32, maxLength: 32 }), (rows, groups, seed) => {
        const cols = 32 * groups;
        const w = Float32Array.from({ length: rows * cols }, (_, i) => seed[i % 32] * (1 + (i % 7)));
        const back = decodeQ4_0(quantizeRowsQ4_0(w, rows, cols), rows, cols);
        const engine = quantizeInt4(w, rows, cols);
        expect(back.rows).toBe(rows);
        expect(back.cols).toBe(cols);
        expect(Array.from(back.q)).toEqual(Array.from(engine.q));
        expect(Array.from(back.scales)).toEqual(Array.from(engine.scales, nearestHalf));
      }),
      { numRuns: 200 },
    );
    expect(() => decodeQ4_0(new Uint8Array(17), 1, 32)).toThrow(/17 bytes for 1 x 32 \(18 expected\)/);
  });

  it("refuses what a half scale or the format cannot hold", () => {
    const nan = new Float32Array(64);
    nan[40] = NaN;
    expect(() => quantizeRowsQ4_0(nan, 1, 64)).toThrow(/non-finite weight in row 0/);
    const inf = new Float32Array(64);
    inf[3] = -Infinity;
    expect(() => quantizeRowsQ4_0(inf, 2, 32)).toThrow(/non-finite weight in row 0/);
    const big = new Float32Array(32);
    big[0] = 5e5; // scale 66667 > 65504
    expect(() => quantizeRowsQ4_0(big, 1, 32)).toThrow(/overflows a half/);
    expect(() => quantizeRowsQ4_0(new Float32Array(30), 1, 30)).toThrow(/multiple of 32/);
    expect(() => quantizeRowsQ4_0(new Float32Array(64), 1, 32)).toThrow(/64 values for 1 x 32/);
  });
});
