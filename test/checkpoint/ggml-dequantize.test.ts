// The Q8_0, Q4_K and Q6_K decoders against decodes written here from ggml's block layouts (ggml-common.h),
// value by value: each value's fields are located from its index, and the arithmetic is done in float64 and
// rounded once, which equals ggml's float32 steps because every intermediate product is exact.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { f16BitsToF32 } from "../../src/kernels/dtype.js";
import { DEQUANTIZED_TYPES, dequantizeGgml, type DequantizedType } from "../../src/model/checkpoint/ggml-dequantize.js";

const half = (b: Uint8Array, o: number) => f16BitsToF32(b[o] | (b[o + 1] << 8));
const signed = (x: number) => (x > 127 ? x - 256 : x);

/** Q8_0 block: f16 d, 32 int8. */
function q8_0Value(b: Uint8Array, e: number): number {
  return half(b, 0) * signed(b[2 + e]);
}

/** Q4_K block: f16 d, f16 dmin, 12 bytes of 6-bit scales/mins, 128 bytes of nibbles. */
function q4_KValue(b: Uint8Array, e: number): number {
  const d = half(b, 0);
  const dmin = half(b, 2);
  const packed = b.subarray(4, 16);
  // Eight 6-bit scales and eight 6-bit mins: the first four of each in the low 6 bits of bytes 0-3 (scales)
  // and 4-7 (mins); the last four take their low 4 bits from the nibbles of bytes 8-11 (scale low, min
  // high) and their top 2 bits from the top 2 bits of bytes 0-3 (scales) and 4-7 (mins).
  const sc: number[] = [];
  const mn: number[] = [];
  for (let s = 0; s < 8; s++) {
    if (s < 4) {
      sc.push(packed[s] % 64);
      mn.push(packed[4 + s] % 64);
    } else {
      sc.push((packed[8 + s - 4] % 16) + 16 * Math.floor(packed[s - 4] / 64));
      mn.push(Math.floor(packed[8 + s - 4] / 16) + 16 * Math.floor(packed[s] / 64));
    }
  }
  const sub = Math.floor(e / 32);
  const byte = b[16 + 32 * Math.floor(sub / 2) + (e % 32)];
  const q = sub % 2 === 0 ? byte % 16 : Math.floor(byte / 16);
  return d * sc[sub] * q - dmin * mn[sub];
}

/** Q6_K block: 128 bytes low nibbles, 64 bytes of 2-bit highs, 16 int8 scales (one per 16 values), f16 d. */
function q6_KValue(b: Uint8Array, e: number): number {
  const d = half(b, 208);
  const h = Math.floor(e / 128);
  const k = Math.floor((e % 128) / 32);
  const l = e % 32;
  const lowByte = b[64 * h + l + 32 * (k % 2)];
  const low = k < 2 ? lowByte % 16 : Math.floor(lowByte / 16);
  const high = Math.floor(b[128 + 32 * h + l] / 4 ** k) % 4;
  return d * signed(b[192 + Math.floor(e / 16)]) * (low + 16 * high - 32);
}

const VALUE: Record<DequantizedType, (b: Uint8Array, e: number) => number> = { Q8_0: q8_0Value, Q4_K: q4_KValue, Q6_K: q6_KValue };
/** Where each block's f16 fields sit (kept finite in the generated blocks). */
const HALVES: Record<DequantizedType, number[]> = { Q8_0: [0], Q4_K: [0, 2], Q6_K: [208] };

/** Random blocks of `type` whose halves are finite (exponent bits not all ones). */
function blocks(type: DequantizedType) {
  const { bytes } = DEQUANTIZED_TYPES[type];
  return fc.integer({ min: 1, max: 4 }).chain((n) =>
    fc.uint8Array({ minLength: n * bytes, maxLength: n * bytes }).map((raw) => {
      for (let b = 0; b < n; b++) for (const o of HALVES[type]) raw[b * bytes + o + 1] &= 0xbb; // clears an exponent bit
      return raw;
    }),
  );
}

describe("ggml block decoders", () => {
  for (const type of Object.keys(DEQUANTIZED_TYPES) as DequantizedType[]) {
    it(`${type} decodes every value as the block layout defines it`, () => {
      const { values, bytes } = DEQUANTIZED_TYPES[type];
      fc.assert(
        fc.property(blocks(type), (raw) => {
          const n = raw.length / bytes;
          const out = new Float32Array(n * values + 3).fill(7);
          dequantizeGgml(type, raw, out, 3);
          expect(Array.from(out.subarray(0, 3))).toEqual([7, 7, 7]);
          for (let b = 0; b < n; b++) {
            const block = raw.subarray(b * bytes, (b + 1) * bytes);
            for (let e = 0; e < values; e++) {
              const want = Math.fround(VALUE[type](block, e));
              if (!Object.is(out[3 + b * values + e], want)) expect([b, e, out[3 + b * values + e]]).toEqual([b, e, want]);
            }
          }
        }),
        { numRuns: 60 },
      );
    });

    it(`${type} refuses a partial block and an output too small`, () => {
      const { values, bytes } = DEQUANTIZED_TYPES[type];
      expect(() => dequantizeGgml(type, new Uint8Array(bytes + 1), new Float32Array(2 * values))).toThrow(RangeError);
      expect(() => dequantizeGgml(type, new Uint8Array(bytes), new Float32Array(values - 1))).toThrow(RangeError);
    });
  }

  it("known blocks: Q8_0 of d = 0.5, Q6_K of q = -32 and 31, Q4_K with a min", () => {
    const q8 = new Uint8Array(34);
    q8.set([0x00, 0x38]); // 0.5
    q8[2] = 0x80; // -128
    q8[3] = 3;
    const out = new Float32Array(32);
    dequantizeGgml("Q8_0", q8, out);
    expect(Array.from(out.subarray(0, 3))).toEqual([-64, 1.5, 0]);

    const q6 = new Uint8Array(210);
    q6.set([0x00, 0x3c], 208); // d = 1
    q6[192] = 2; // scale of values 0-15
    q6[0] = 0x0f; // value 0: low 15, high 3 -> 63 - 32 = 31; value 64: low 0
    q6[128] = 0x03;
    const y = new Float32Array(256);
    dequantizeGgml("Q6_K", q6, y);
    expect(y[0]).toBe(62);
    expect(y[1]).toBe(-64); // q 0 - 32, scale 2
    expect(Math.abs(y[16])).toBe(0); // scale 0 (d * 0 * -32 is -0)

    const q4 = new Uint8Array(144);
    q4.set([0x00, 0x3c, 0x00, 0x38]); // d = 1, dmin = 0.5
    q4[4] = 2; // scale of sub-block 0
    q4[8] = 3; // min of sub-block 0
    q4[16] = 0x5a; // value 0: 10; value 32: 5 (sub-block 1: scale 0, min 0)
    const z = new Float32Array(256);
    dequantizeGgml("Q4_K", q4, z);
    expect([z[0], z[32]]).toEqual([2 * 10 - 1.5, 0]);
  });
});
