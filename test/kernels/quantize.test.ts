import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { allocInt4Matrix, writeInt4Rows, type WeightMatrix, type Int4Weights } from "../../src/kernels/layout.js";
import { GROUP } from "../../src/kernels/numerics.js";
import {
  Q4_0_BLOCK_BYTES, quantizeRows, quantizeRowsQ4_0, quantizeRowsQ4_0Ref, quantizeRowsRef, repackQ4_0, repackQ4_0Ref,
} from "../../src/kernels/quantize.js";
import { acceptsRelaxedSimd, WasmKernels, type WasmVariant } from "../../src/kernels/wasm.js";
import { enableRelaxedSimd, wasmBytes } from "../../src/node/wasm-files.js";
import { decodeToF32, encodeFromF32, f16BitsToF32, f32ToF16Bits, type DType } from "../../src/kernels/dtype.js";
import { quantizeInt4 } from "../../src/model/quantize.js";
import { rng } from "../helpers/rng.js";

const RUNS = 60;
const DTYPES: DType[] = ["F32", "F16", "BF16"];
const SIZE: Record<DType, number> = { F32: 4, F16: 2, BF16: 2 };

/**
 * How a group of 32 weights is filled; the edge kinds are their own styles so every run can hit them.
 * tie: s a power of two and every w / s = k + 1/2, the rounding ties; tiny: max|w| below 7.5 · 2^-23, where
 * SCALE_MIN takes over; f16sub: scales in the f16 subnormal range, where f16(s) is coarse.
 */
const STYLES = ["random", "random", "zero", "negzero", "huge", "subnormal", "tie", "tiny", "f16sub", "extreme"] as const;
type Style = (typeof STYLES)[number];

/** Largest |w| a style may produce for a dtype (f16 holds up to 65504; an f16 scale needs max|w| < 491400). */
function limit(dtype: DType): number {
  // bf16 stores 8 significant bits: near 2^19 its values are 2048 apart, so 491000 would round up to 491520,
  // past the f16 limit; 489000 rounds to 489472 at most.
  if (dtype === "F16") return 65504;
  return dtype === "BF16" ? 489000 : 491000;
}

function fillGroup(r: () => number, s: Style, out: Float32Array, base: number, max: number): void {
  const exp = Math.floor(r() * 40) - 30;
  const mag = Math.min(2 ** exp, max / 8);
  for (let i = 0; i < GROUP; i++) {
    let v: number;
    switch (s) {
      case "random": v = (r() * 2 - 1) * mag; break;
      case "zero": v = 0; break;
      case "negzero": v = r() < 0.5 ? -0 : 0; break;
      case "huge": v = i === 0 ? (r() < 0.5 ? -1 : 1) * max * (0.5 + r() / 2) : (r() * 2 - 1) * 1e-3; break;
      case "subnormal": v = (r() * 2 - 1) * 2 ** -126 * (r() < 0.5 ? 1 : 2 ** -20); break;
      case "tie": v = i === 0 ? 7.5 * 2 ** -4 : (Math.floor(r() * 15) - 7 + 0.5) * 2 ** -4; break;
      case "tiny": v = (r() * 2 - 1) * 7.5 * 2 ** -23; break;
      case "f16sub": v = (r() * 2 - 1) * 7.5 * 2 ** -14 * r(); break;
      case "extreme": v = (r() < 0.5 ? -1 : 1) * mag; break;
    }
    out[base + i] = v;
  }
}

interface Case {
  dtype: DType;
  /** The matrix the rows go into and where. */
  matrixRows: number;
  row0: number;
  rows: number;
  cols: number;
  /** The weights as the file stores them, and their exact values. */
  bytes: Uint8Array;
  w: Float32Array;
}

const caseArb = (): fc.Arbitrary<Case> => fc.record({
  dtype: fc.constantFrom(...DTYPES),
  rows: fc.integer({ min: 1, max: 9 }),
  before: fc.integer({ min: 0, max: 6 }),
  after: fc.integer({ min: 0, max: 6 }),
  groups: fc.integer({ min: 1, max: 5 }),
  styles: fc.array(fc.constantFrom(...STYLES), { minLength: 45, maxLength: 45 }),
  seed: fc.integer(),
}).map(({ dtype, rows, before, after, groups, styles, seed }) => {
  const r = rng(seed);
  const cols = groups * GROUP;
  const values = new Float32Array(rows * cols);
  for (let g = 0; g < rows * groups; g++) fillGroup(r, styles[g % styles.length], values, g * GROUP, limit(dtype));
  const bytes = new Uint8Array(values.length * SIZE[dtype]);
  encodeFromF32(dtype, values, bytes, 0);
  const w = new Float32Array(values.length);
  decodeToF32(dtype, bytes, w, 0);
  return { dtype, matrixRows: before + rows + after, row0: before, rows, cols, bytes, w };
});

/** The three regions of m as bytes: nibbles, scales, row sums. */
function regions(k: WasmKernels, m: WeightMatrix): Uint8Array[] {
  const cells = m.blocks * m.groups;
  return [
    k.u8.slice(m.valuesPtr, m.valuesPtr + cells * 64),
    k.u8.slice(m.scalesPtr, m.scalesPtr + cells * 8),
    k.u8.slice(m.auxPtr, m.auxPtr + m.blocks * 16),
  ];
}

/** Two matrices of one shape holding the same random bytes, so a write outside the rows shows. */
function twinMatrices(k: WasmKernels, rows: number, cols: number, seed: number): [WeightMatrix, WeightMatrix] {
  const a = allocInt4Matrix(k, rows, cols);
  const b = allocInt4Matrix(k, rows, cols);
  const r = rng(seed);
  const junk = new Uint8Array(a.auxPtr + a.blocks * 16 - a.valuesPtr);
  for (let i = 0; i < junk.length; i++) junk[i] = Math.floor(r() * 256);
  k.u8.set(junk, a.valuesPtr);
  k.u8.set(junk, b.valuesPtr);
  return [a, b];
}

function expectSameMatrix(k: WasmKernels, got: WeightMatrix, want: WeightMatrix): void {
  const [gq, gs, gw] = regions(k, got);
  const [wq, ws, ww] = regions(k, want);
  expect(gq).toEqual(wq);
  expect(gs).toEqual(ws);
  expect(gw).toEqual(ww);
}

function put(k: WasmKernels, bytes: Uint8Array, align = 64): number {
  const p = k.alloc(bytes.length, align);
  k.u8.set(bytes, p);
  return p;
}

/**
 * A Q4_0 encoder written for the test alone: scales must already be f16 values; their bits are
 * found from the value by exponent and mantissa arithmetic, not by the library's converter.
 */
function encodeQ4_0(w: Int4Weights): Uint8Array {
  const groups = w.cols / GROUP;
  const out = new Uint8Array(w.rows * groups * Q4_0_BLOCK_BYTES);
  for (let r = 0; r < w.rows; r++) {
    for (let g = 0; g < groups; g++) {
      const s = w.scales[r * groups + g];
      const a = Math.abs(s);
      let bits: number;
      if (a < 2 ** -14) {
        bits = a / 2 ** -24;
      } else {
        const e = Math.floor(Math.log2(a));
        const e2 = 2 ** e <= a ? (2 ** (e + 1) <= a ? e + 1 : e) : e - 1;
        bits = ((e2 + 15) << 10) | (a / 2 ** e2 * 1024 - 1024);
      }
      if (!Number.isInteger(bits) || bits >= 0x7c00) throw new Error(`scale ${s} is not a finite f16`);
      if (s < 0 || Object.is(s, -0)) bits |= 0x8000;
      const o = (r * groups + g) * Q4_0_BLOCK_BYTES;
      out[o] = bits & 0xff;
      out[o + 1] = bits >> 8;
      for (let j = 0; j < 16; j++) {
        const base = r * w.cols + g * GROUP;
        out[o + 2 + j] = (w.q[base + j] + 8) | ((w.q[base + 16 + j] + 8) << 4);
      }
    }
  }
  return out;
}

const RELAXED = acceptsRelaxedSimd(wasmBytes("relaxed"), enableRelaxedSimd);
const VARIANTS: WasmVariant[] = RELAXED ? ["simd", "relaxed"] : ["simd"];

describe("the twins", () => {
  it("quantizeRowsRef is quantizeInt4 (the model's recipe) on the decoded weights: the same q, each scale rounded to f16", () => {
    fc.assert(
      fc.property(caseArb(), (c) => {
        const got = quantizeRowsRef(c.bytes, c.dtype, c.rows, c.cols);
        const want = quantizeInt4(c.w, c.rows, c.cols);
        expect(Array.from(got.scales)).toEqual(Array.from(want.scales, (s) => f16BitsToF32(f32ToF16Bits(s))));
        expect(got.q).toEqual(want.q);
      }),
      { numRuns: 300 },
    );
  });

  it("f16 scales: q = clamp(round(w / s)) with the f32 s = max|w| / 7.5, and the stored scale f16(s)", () => {
    // max|w| = 1: s = f32(1 / 7.5) = 0.13333334 (rounded up), so 1 / s = 7.4999995 -> 7, -1 -> -7 and
    // 0.5 / s = 3.7499998 -> 4. The stored scale is s's nearest f16, 1092 · 2^-13 = 0.13330078125 (below s:
    // quantizing with it would have made -1 / 0.13330078125 = -7.5018 a -8).
    const w = new Float32Array(32);
    w.set([1, -1, 0.5, -0]);
    const bytes = new Uint8Array(w.buffer);
    const m = quantizeRowsRef(bytes, "F32", 1, 32);
    expect(m.scales[0]).toBe(0.13330078125);
    expect(Array.from(m.q.subarray(0, 4))).toEqual([7, -7, 4, 0]);
    // A subnormal f16 scale: max|w| = 18.75 · 2^-24 gives s = 2.5 · 2^-24 (w / s = ±7.5 -> 7, -8), stored as
    // 2 · 2^-24 (the tie goes to even). Below 7.5 · 2^-23 the scale is SCALE_MIN = 2^-23, an f16 itself.
    const t = new Float32Array(64);
    t.set([18.75 * 2 ** -24, -18.75 * 2 ** -24]);
    t.set([2 ** -30, -(2 ** -28)], 32);
    const sub = quantizeRowsRef(new Uint8Array(t.buffer), "F32", 1, 64);
    expect(Array.from(sub.scales)).toEqual([2 ** -23, 2 ** -23]);
    expect([sub.q[0], sub.q[1], sub.q[32], sub.q[33]]).toEqual([7, -8, 0, 0]);
  });

  it("a weight whose w / s sits just below a rounding boundary keeps the recipe's q, which w / f16(s) would step past", () => {
    // max|w| = 1 again (s = 0.13333334, f16(s) = 0.13330078125, 2^-11 below it). w = 3.4995 · s gives
    // w / s = 3.4995 -> 3, while w / f16(s) = 3.5004 -> 4: the recipe's q is 3.
    const w = new Float32Array(32);
    const s = Math.fround(1 / 7.5);
    w.set([1, Math.fround(3.4995 * s)]);
    expect(Math.round(w[1] / 0.13330078125)).toBe(4); // the rounded scale's answer, which the rule must not give
    const m = quantizeRowsRef(new Uint8Array(w.buffer), "F32", 1, 32);
    expect(m.q[1]).toBe(3);
  });

  it("quantizeRowsQ4_0Ref is quantizeRowsRef in ggml's block layout", () => {
    fc.assert(
      fc.property(caseArb(), (c) => {
        const got = quantizeRowsQ4_0Ref(c.bytes, c.dtype, c.rows, c.cols);
        expect(got).toEqual(encodeQ4_0(quantizeRowsRef(c.bytes, c.dtype, c.rows, c.cols)));
      }),
      { numRuns: 300 },
    );
  });

  it("repackQ4_0Ref reads ggml's nibble order: byte j holds element j (low) and j + 16 (high), value (n - 8) · d", () => {
    const block = new Uint8Array(18);
    block[0] = 0x00;
    block[1] = 0x40; // d = 2
    for (let j = 0; j < 16; j++) block[2 + j] = j | ((15 - j) << 4);
    const m = repackQ4_0Ref(block, 1, 32);
    expect(Array.from(m.scales)).toEqual([2]);
    expect(Array.from(m.q)).toEqual([...Array.from({ length: 16 }, (_, j) => j - 8), ...Array.from({ length: 16 }, (_, j) => 7 - j)]);
  });
});

describe.each(VARIANTS)("weight quantization kernels, %s build", (variant) => {
  it("quantizeRows writes exactly writeInt4Rows(quantizeRowsRef): every dtype, any row range", async () => {
    const k = await WasmKernels.create(variant, wasmBytes(variant));
    fc.assert(
      fc.property(caseArb(), fc.integer(), (c, seed) => {
        const [got, want] = twinMatrices(k, c.matrixRows, c.cols, seed);
        quantizeRows(k, got, c.row0, put(k, c.bytes, SIZE[c.dtype]), c.rows, c.dtype);
        writeInt4Rows(k, want, c.row0, quantizeRowsRef(c.bytes, c.dtype, c.rows, c.cols));
        expectSameMatrix(k, got, want);
      }),
      { numRuns: RUNS },
    );
  });

  it("repackQ4_0 writes exactly writeInt4Rows(repackQ4_0Ref) for any block bytes with a finite scale", async () => {
    const k = await WasmKernels.create(variant, wasmBytes(variant));
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 9 }), fc.integer({ min: 0, max: 6 }), fc.integer({ min: 1, max: 5 }), fc.integer(),
        (rows, before, groups, seed) => {
          const r = rng(seed);
          const cols = groups * GROUP;
          const bytes = new Uint8Array(rows * groups * Q4_0_BLOCK_BYTES);
          for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(r() * 256);
          for (let b = 0; b < rows * groups; b++) {
            // every finite f16: normal, subnormal, ±0, negative
            if ((bytes[b * 18 + 1] & 0x7c) === 0x7c) bytes[b * 18 + 1] &= 0xbf;
          }
          const [got, want] = twinMatrices(k, before + rows + 3, cols, seed);
          repackQ4_0(k, got, before, put(k, bytes, 1), rows);
          writeInt4Rows(k, want, before, repackQ4_0Ref(bytes, rows, cols));
          expectSameMatrix(k, got, want);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("round trip: quantize, encode as Q4_0, repack: the same matrix bit for bit", async () => {
    const k = await WasmKernels.create(variant, wasmBytes(variant));
    fc.assert(
      fc.property(caseArb(), (c) => {
        const direct = allocInt4Matrix(k, c.matrixRows, c.cols);
        const viaQ4 = allocInt4Matrix(k, c.matrixRows, c.cols);
        quantizeRows(k, direct, c.row0, put(k, c.bytes, 4), c.rows, c.dtype, );
        const q4 = encodeQ4_0(quantizeRowsRef(c.bytes, c.dtype, c.rows, c.cols));
        repackQ4_0(k, viaQ4, c.row0, put(k, q4, 1), c.rows);
        expectSameMatrix(k, viaQ4, direct);
      }),
      { numRuns: RUNS },
    );
  });

  it("quantizeRowsQ4_0 writes exactly quantizeRowsQ4_0Ref's blocks (every dtype, edge groups) and nothing around them", async () => {
    const k = await WasmKernels.create(variant, wasmBytes(variant));
    fc.assert(
      fc.property(caseArb(), fc.integer({ min: 0, max: 17 }), (c, offset) => {
        const want = quantizeRowsQ4_0Ref(c.bytes, c.dtype, c.rows, c.cols);
        // The output at any byte offset (blocks are 18 bytes), between guard bytes that must survive.
        const guard = 64;
        const region = k.alloc(want.length + 2 * guard + offset);
        const out = region + guard + offset;
        k.u8.fill(0xa5, region, region + want.length + 2 * guard + offset);
        quantizeRowsQ4_0(k, put(k, c.bytes, SIZE[c.dtype]), c.rows, c.cols, c.dtype, out);
        expect(k.u8.slice(out, out + want.length)).toEqual(want);
        expect(k.u8.slice(region, out).every((b) => b === 0xa5)).toBe(true);
        expect(k.u8.slice(out + want.length, out + want.length + guard).every((b) => b === 0xa5)).toBe(true);
      }),
      { numRuns: RUNS },
    );
  });

  it("quantizeRowsQ4_0 blocks repack to quantizeRows' matrix, bit for bit", async () => {
    const k = await WasmKernels.create(variant, wasmBytes(variant));
    fc.assert(
      fc.property(caseArb(), (c) => {
        const direct = allocInt4Matrix(k, c.matrixRows, c.cols);
        const viaQ4 = allocInt4Matrix(k, c.matrixRows, c.cols);
        quantizeRows(k, direct, c.row0, put(k, c.bytes, 4), c.rows, c.dtype);
        const out = k.alloc(c.rows * (c.cols / GROUP) * Q4_0_BLOCK_BYTES);
        quantizeRowsQ4_0(k, put(k, c.bytes, 4), c.rows, c.cols, c.dtype, out);
        repackQ4_0(k, viaQ4, c.row0, out, c.rows);
        expectSameMatrix(k, viaQ4, direct);
      }),
      { numRuns: RUNS },
    );
  });

  it("refuses NaN and infinity in any dtype, naming the tensor, row and column, like the twin", async () => {
    const k = await WasmKernels.create(variant, wasmBytes(variant));
    const bad: Record<DType, number[]> = { F32: [0x7fc00000, 0x7f800000, 0xff800000, 0x7f800001], F16: [0x7e00, 0x7c00, 0xfc00, 0x7c01], BF16: [0x7fc0, 0x7f80, 0xff80, 0x7f81] };
    for (const dtype of DTYPES) {
      for (const bits of bad[dtype]) {
        const rows = 3;
        const cols = 64;
        const w = new Float32Array(rows * cols).fill(0.25);
        const bytes = new Uint8Array(rows * cols * SIZE[dtype]);
        encodeFromF32(dtype, w, bytes, 0);
        const at = 1 * cols + 37;
        if (dtype === "F32") new DataView(bytes.buffer).setUint32(at * 4, bits, true);
        else new DataView(bytes.buffer).setUint16(at * 2, bits, true);
        const source = { name: "tensor model.layers.0.mlp.down_proj.weight", row0: 100 };
        const m = allocInt4Matrix(k, 8, cols);
        const message = /^tensor model\.layers\.0\.mlp\.down_proj\.weight: row 101 contains NaN\/Inf at column 37 \(value (NaN|-?Infinity)\)$/;
        expect(() => quantizeRows(k, m, 2, put(k, bytes), rows, dtype, { source })).toThrow(message);
        expect(() => quantizeRowsRef(bytes, dtype, rows, cols, { source })).toThrow(message);
        expect(() => quantizeRowsQ4_0(k, put(k, bytes), rows, cols, dtype, k.alloc(rows * 2 * Q4_0_BLOCK_BYTES), { source })).toThrow(message);
        expect(() => quantizeRowsQ4_0Ref(bytes, dtype, rows, cols, { source })).toThrow(message);
      }
    }
  });

  it("refuses a group whose scale rounds to f16 infinity (max|w| >= 491400) and keeps 491399", async () => {
    const k = await WasmKernels.create(variant, wasmBytes(variant));
    // 491400 / 7.5 = 65520, the f16 rounding tie to infinity; the nearest bf16 is 491520 (s = 65536)
    for (const [dtype, max, scale] of [["F32", 491400, 65520], ["BF16", 491520, 65536]] as const) {
      const w = new Float32Array(2 * 64);
      w[64 + 40] = -max;
      const bytes = new Uint8Array(w.length * SIZE[dtype]);
      encodeFromF32(dtype, w, bytes, 0);
      const m = allocInt4Matrix(k, 2, 64);
      const message = new RegExp(`^tensor x: row 1, columns 32-63: max\\|w\\| = ${max} needs a scale of ${scale}, beyond f16`);
      expect(() => quantizeRows(k, m, 0, put(k, bytes), 2, dtype, { source: { name: "tensor x", row0: 0 } })).toThrow(message);
      expect(() => quantizeRowsRef(bytes, dtype, 2, 64, { source: { name: "tensor x", row0: 0 } })).toThrow(message);
      expect(() => quantizeRowsQ4_0(k, put(k, bytes), 2, 64, dtype, k.alloc(4 * Q4_0_BLOCK_BYTES), { source: { name: "tensor x", row0: 0 } })).toThrow(message);
      expect(() => quantizeRowsQ4_0Ref(bytes, dtype, 2, 64, { source: { name: "tensor x", row0: 0 } })).toThrow(message);
    }
    const ok = new Float32Array(32);
    ok[0] = 491399; // s = 65519.867 rounds down to the largest f16, 65504; 491399 / 65504 clamps to 7
    const m = allocInt4Matrix(k, 1, 32);
    quantizeRows(k, m, 0, put(k, new Uint8Array(ok.buffer)), 1, "F32");
    expect(k.u16[m.scalesPtr >> 1]).toBe(0x7bff); // 65504
    expect(k.u8[m.valuesPtr] & 15).toBe(7 + 8);
  });

  it("f16 scales round ties to even: s = 1 + 2^-11 -> 1, s = 1 + 3 · 2^-11 -> 1 + 2^-9, s = 2^-23 + 2^-25 -> 2^-23", async () => {
    const k = await WasmKernels.create(variant, wasmBytes(variant));
    // max|w| = 7.5 · s is exact in f32 for each, so f32(max|w| / 7.5) is exactly the tie
    const cases = [[1 + 2 ** -11, 1], [1 + 3 * 2 ** -11, 1 + 2 ** -9], [2 ** -23 + 2 ** -25, 2 ** -23], [3 * 2 ** -24 + 2 ** -25, 2 ** -22]];
    const w = new Float32Array(32 * cases.length);
    cases.forEach(([s], g) => (w[32 * g + 5] = -7.5 * s));
    const bytes = new Uint8Array(w.buffer);
    const m = allocInt4Matrix(k, 1, w.length);
    quantizeRows(k, m, 0, put(k, bytes), 1, "F32");
    const want = cases.map(([, s16]) => s16);
    // il4 holds the scales as f16 bits, row 0's at lane 0 of each group's 4: 1 = 0x3c00, 1 + 2^-9 = 0x3c02,
    // 2^-23 = 0x0002 and 2^-22 = 0x0004 (subnormals)
    expect(cases.map((_, g) => k.u16[(m.scalesPtr >> 1) + 4 * g])).toEqual([0x3c00, 0x3c02, 0x0002, 0x0004]);
    expect(Array.from(quantizeRowsRef(bytes, "F32", 1, w.length).scales)).toEqual(want);
  });

  it("repackQ4_0 refuses a NaN or infinite block scale, naming the row and block", async () => {
    const k = await WasmKernels.create(variant, wasmBytes(variant));
    for (const d of [0x7c00, 0xfc00, 0x7e00]) {
      const bytes = new Uint8Array(3 * 2 * Q4_0_BLOCK_BYTES);
      new DataView(bytes.buffer).setUint16((2 * 2 + 1) * Q4_0_BLOCK_BYTES, d, true);
      const m = allocInt4Matrix(k, 3, 64);
      const message = /^tensor t: row 7, block 1: the Q4_0 scale is (NaN|-?Infinity) \(f16 bits 0x[0-9a-f]+\)$/;
      expect(() => repackQ4_0(k, m, 0, put(k, bytes, 1), 3, { source: { name: "tensor t", row0: 5 } })).toThrow(message);
      expect(() => repackQ4_0Ref(bytes, 3, 64, { source: { name: "tensor t", row0: 5 } })).toThrow(message);
    }
  });
});

describe("wrapper validation", () => {
  it("rejects bad row ranges, element types and pointers with clear errors", async () => {
    const k = await WasmKernels.create("simd", wasmBytes("simd"));
    const m = allocInt4Matrix(k, 5, 64);
    const src = k.alloc(5 * 64 * 4);
    expect(() => quantizeRows(k, m, 3, src, 3, "F32")).toThrow(/rows \[3, 6\) outside the matrix's 5/);
    expect(() => quantizeRows(k, m, 0, src, 0, "F32")).toThrow(/rows must be a positive integer/);
    expect(() => quantizeRows(k, m, 0, src, 1, "F8" as DType)).toThrow(/unsupported element type F8/);
    expect(() => quantizeRows(k, m, 0, src, 1, "toString" as DType)).toThrow(/unsupported element type toString/);
    expect(() => quantizeRows(k, m, 0, src + 2, 1, "F32")).toThrow(/src pointer \d+ is not 4-byte aligned/);
    expect(() => quantizeRows(k, m, 0, k.memory.buffer.byteLength - 64, 1, "BF16")).toThrow(/src .* lies outside the Wasm memory/);
    expect(() => repackQ4_0(k, m, 0, k.memory.buffer.byteLength - 18, 1)).toThrow(/src .* lies outside the Wasm memory/);
    expect(() => repackQ4_0(k, m, 4, src, 2)).toThrow(/rows \[4, 6\) outside the matrix's 5/);
    expect(() => quantizeRowsRef(new Uint8Array(10), "BF16", 1, 32)).toThrow(/10 bytes for 1 x 32 BF16/);
    expect(() => repackQ4_0Ref(new Uint8Array(10), 1, 32)).toThrow(/10 bytes for 1 x 32 in Q4_0 blocks/);
    expect(() => quantizeRowsQ4_0(k, src, 1, 64, "F8" as DType, src)).toThrow(/unsupported element type F8/);
    expect(() => quantizeRowsQ4_0(k, src, 1, 48, "F32", src)).toThrow(/cols must be a positive multiple of 32, got 48/);
    expect(() => quantizeRowsQ4_0(k, src + 2, 1, 64, "F32", src)).toThrow(/src pointer \d+ is not 4-byte aligned/);
    expect(() => quantizeRowsQ4_0(k, src, 1, 64, "F32", k.memory.buffer.byteLength - 35)).toThrow(/out .* lies outside the Wasm memory/);
    expect(() => quantizeRowsQ4_0(k, k.memory.buffer.byteLength - 64, 1, 64, "BF16", src)).toThrow(/src .* lies outside the Wasm memory/);
  });
});
