import { describe, expect, it } from "vitest";
import fc from "fast-check";
import {
  bytesPerElement,
  decodeToF32,
  encodeFromF32,
  f16BitsToF32,
  f32ToBf16Bits,
  f32ToF16Bits,
  firstNonFinite,
  parseDType,
} from "../../src/kernels/dtype.js";

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const bitsOf = (x: number) => ((f32[0] = x), u32[0]);
const fromBits = (b: number) => ((u32[0] = b >>> 0), f32[0]);

/** Reference bf16 rounding by distance to the two neighbouring bf16 values, independent of the bit trick. */
function refBf16(x: number): number {
  const b = bitsOf(x);
  const lo = b & 0xffff0000;
  const hi = (lo + 0x10000) >>> 0;
  const loVal = fromBits(lo);
  // Past the largest finite bf16 the upper neighbour is +-2^128 for rounding purposes (it encodes as inf).
  const hiVal = (hi & 0x7f800000) === 0x7f800000 ? Math.sign(loVal || 1) * 2 ** 128 : fromBits(hi);
  const dLo = Math.abs(x - loVal);
  const dHi = Math.abs(hiVal - x);
  if (dLo < dHi) return lo >>> 16;
  if (dHi < dLo) return hi >>> 16;
  return ((lo >>> 16) & 1) === 0 ? lo >>> 16 : hi >>> 16;
}

describe("dtype sizes and names", () => {
  it("knows the element sizes", () => {
    expect([bytesPerElement("F32"), bytesPerElement("F16"), bytesPerElement("BF16")]).toEqual([4, 2, 2]);
  });
  it("names the tensor and dtype when the dtype is unsupported", () => {
    expect(() => parseDType("I8", "f.safetensors: tensor w")).toThrow(/tensor w: unsupported dtype I8/);
    expect(() => parseDType("F64", "x")).toThrow(/F64.*supported: F32, F16, BF16/);
  });
});

describe("f16", () => {
  it("decodes known bit patterns exactly, incl. subnormals, zeros, inf and nan", () => {
    const cases: Array<[number, number]> = [
      [0x3c00, 1],
      [0xc000, -2],
      [0x0001, 2 ** -24],
      [0x03ff, 1023 * 2 ** -24],
      [0x0400, 2 ** -14],
      [0x7bff, 65504],
      [0x7c00, Infinity],
      [0xfc00, -Infinity],
      [0x3555, 0.333251953125],
    ];
    for (const [h, v] of cases) expect(f16BitsToF32(h)).toBe(v);
    expect(Object.is(f16BitsToF32(0x8000), -0)).toBe(true);
    expect(f16BitsToF32(0x7e00)).toBeNaN();
    expect(f16BitsToF32(0xfc01)).toBeNaN();
  });

  it("round-trips every non-NaN half through f32 and back", () => {
    const wrong: number[] = [];
    for (let h = 0; h < 65536; h++) {
      if ((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0) continue;
      if (f32ToF16Bits(f16BitsToF32(h)) !== h) wrong.push(h);
    }
    expect(wrong).toEqual([]);
  });

  it("encodes to the nearest half, ties to even (property, incl. subnormals and overflow)", () => {
    fc.assert(
      fc.property(fc.float({ noNaN: true }), (x) => {
        const h = f32ToF16Bits(x);
        const v = f16BitsToF32(h);
        if (Math.abs(x) >= 65520) return v === Math.sign(x) * Infinity; // halfway to 2^16 and beyond
        const d = Math.abs(v - x);
        const mag = h & 0x7fff;
        const sign = h & 0x8000;
        for (const n of [mag - 1, mag + 1]) {
          if (n < 0 || n >= 0x7c00) continue;
          const dn = Math.abs(f16BitsToF32(sign | n) - x);
          if (dn < d) return false;
          if (dn === d && (mag & 1) === 1) return false;
        }
        return true;
      }),
      { numRuns: 20000 },
    );
  });

  it("turns NaN into a NaN half", () => {
    expect(f16BitsToF32(f32ToF16Bits(NaN))).toBeNaN();
  });
});

describe("bf16", () => {
  it("rounds to nearest even exactly as the reference (property, incl. subnormals, inf, max)", () => {
    fc.assert(
      fc.property(fc.float({ noNaN: true }), (x) => f32ToBf16Bits(x) === refBf16(x)),
      { numRuns: 50000 },
    );
    // f32 subnormals explicitly: the generic generator rarely lands below 2^-126.
    const tiny = 2 ** -126;
    fc.assert(
      fc.property(fc.float({ min: Math.fround(-tiny), max: Math.fround(tiny), noNaN: true }), (x) => f32ToBf16Bits(x) === refBf16(x)),
      { numRuns: 20000 },
    );
    // Ties: bf16 keeps 7 mantissa bits, so 1 + 2^-8 is halfway between 1 and 1 + 2^-7.
    expect(f32ToBf16Bits(1 + 2 ** -8)).toBe(0x3f80);
    expect(f32ToBf16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82);
    expect(f32ToBf16Bits(3.4028234663852886e38)).toBe(0x7f80); // rounds up past the largest bf16
  });

  it("the array encoder agrees with the scalar one and keeps NaN a NaN", () => {
    fc.assert(
      fc.property(fc.float32Array({ maxLength: 64 }), (a) => {
        const out = new Uint8Array(a.length * 2);
        encodeFromF32("BF16", a, out, 0);
        const halves = new Uint16Array(out.buffer);
        for (let i = 0; i < a.length; i++) {
          if (Number.isNaN(a[i])) {
            if ((halves[i] & 0x7f80) !== 0x7f80 || (halves[i] & 0x7f) === 0) return false;
          } else if (halves[i] !== f32ToBf16Bits(a[i])) return false;
        }
        return true;
      }),
    );
  });
});

describe("decodeToF32", () => {
  it("decodes all three dtypes from unaligned bytes at an output offset", () => {
    const values = [1.5, -2, 0.25, 65504];
    for (const dtype of ["F32", "F16", "BF16"] as const) {
      const enc = new Uint8Array(values.length * bytesPerElement(dtype) + 1);
      encodeFromF32(dtype, new Float32Array(values), enc, 1);
      const out = new Float32Array(6);
      decodeToF32(dtype, enc.subarray(1), out, 2);
      const expected = dtype === "BF16" ? [1.5, -2, 0.25, 65536] : values;
      expect(Array.from(out)).toEqual([0, 0, ...expected]);
    }
  });

  it("refuses partial elements and outputs that are too small", () => {
    expect(() => decodeToF32("F16", new Uint8Array(3), new Float32Array(2), 0)).toThrow(/whole number of elements/);
    expect(() => decodeToF32("F32", new Uint8Array(8), new Float32Array(2), 1)).toThrow(/do not fit/);
  });

  it("finds the first non-finite value", () => {
    expect(firstNonFinite(new Float32Array([1, 2, 3]))).toBe(-1);
    expect(firstNonFinite(new Float32Array([1, Infinity, NaN]))).toBe(1);
    expect(firstNonFinite(new Float32Array([0, -0, NaN]))).toBe(2);
  });
});
