// The kernels of the layouts that hold a llama.cpp file's values (q4_0 ... q6_k times i8b activations; f32, f16
// and bf16 times f32) against their scalar twins, bit for bit in both Wasm builds, and the twins against the
// exact f64 value within the bound each twin's file states; the i8b quantizer against its twin; and the
// layouts' writer and reader (writeBlockRows / writeFloatRows, layoutValue) against the logical form.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { f16BitsToF32, f32ToF16Bits } from "../../src/kernels/dtype.js";
import {
  allocMatrix, dequantizeRowInto, FloatActivations, Int8BlockActivations, LAYOUTS, formulaValue,
  type BlockWeights, type FloatWeights, type LayoutTag, type WeightLayout, type WeightMatrix,
} from "../../src/kernels/layout.js";
import { gemm, gemv } from "../../src/kernels/matmul.js";
import {
  gemmI8bExactRef, gemmI8bMagnitudeRef, gemmI8bRef, gemvI8bRef, quantizeActivationsI8b, quantizeActivationsI8bRef,
  readActivationsI8b, setActivationsI8b, type Int8BlockTokens,
} from "../../src/kernels/matmul-i8b.js";
import * as i8b from "../../src/kernels/matmul-i8b.js";
import * as float from "../../src/kernels/matmul-float.js";
import { gemmFloatMagnitudeRef, gemmFloatRef, gemvFloatRef } from "../../src/kernels/matmul-float.js";
import { GROUP } from "../../src/kernels/numerics.js";
import { firstBitDifference } from "../../src/kernels/probe.js";
import { writeBlockRows, writeFloatRows } from "../../src/kernels/repack.js";
import { acceptsRelaxedSimd, WasmKernels, type WasmVariant } from "../../src/kernels/wasm.js";
import { enableRelaxedSimd, wasmBytes } from "../../src/node/wasm-files.js";
import { randomF16Bits } from "../helpers/ggml-rows.js";
import { gauss, rng } from "../helpers/rng.js";
import { fillInts, style } from "../helpers/int-fill.js";

const RELAXED = acceptsRelaxedSimd(wasmBytes("relaxed"), enableRelaxedSimd);
const VARIANTS: WasmVariant[] = RELAXED ? ["simd", "relaxed"] : ["simd"];
const BLOCK_LAYOUTS: LayoutTag[] = ["q4_0", "q4_1", "q4_k", "q8_0", "q5_0", "q5_1", "q5_k", "q6_k"];
const FLOAT_LAYOUTS: LayoutTag[] = ["f32", "f16", "bf16"];
const SENTINEL = -12345.5;

/** The q range of a layout's formula (layout.ts). */
function qRange(l: WeightLayout): [number, number] {
  if (l.values === "nibble") return [-l.offset, 15 - l.offset];
  return l.tag === "q8_0" ? [-128, 127] : l.tag === "q5_0" ? [-16, 15] : l.tag === "q6_k" ? [-32, 31] : [0, 31];
}


/**
 * A scale or min as the layout stores it: f16 values of every kind (normal, subnormal, ±0, ±65504) for f16
 * layouts; for f32 ones what a K-type's d·sc or -(dmin·m) can be (an f16 times 0..63 or -128..127), or any
 * f32 (the kernels take whatever the layout holds).
 */
function layoutFloat(l: WeightLayout, r: () => number): number {
  const h = f16BitsToF32(randomF16Bits(r));
  if (l.scaleType === "f16") return h;
  return r() < 0.7 ? Math.fround(h * (Math.floor(r() * 256) - 128)) : Math.fround(gauss(r) * 2 ** (Math.floor(r() * 40) - 20));
}

interface BlockCase {
  w: BlockWeights;
  x: Int8BlockTokens;
}

/** rows 1..13 (often not a multiple of 4), groups minGroups..maxGroups, 1..9 tokens (the 4-token tile and the tail). */
const blockCaseArb = (tag: LayoutTag, unitScales: boolean, maxGroups = 6, minGroups = 1): fc.Arbitrary<BlockCase> =>
  fc.record({
    rows: fc.integer({ min: 1, max: 13 }),
    groups: fc.integer({ min: minGroups, max: maxGroups }),
    tokens: fc.integer({ min: 1, max: 9 }),
    seed: fc.integer(),
    wStyles: fc.array(style, { minLength: 13, maxLength: 13 }),
    xStyles: fc.array(style, { minLength: 9, maxLength: 9 }),
  }).map(({ rows, groups, tokens, seed, wStyles, xStyles }) => {
    const l = LAYOUTS[tag];
    const r = rng(seed);
    const cols = groups * GROUP;
    const [lo, hi] = qRange(l);
    const q = new Int8Array(rows * cols);
    for (let i = 0; i < rows; i++) fillInts(r, wStyles[i], q, i * cols, cols, lo, hi);
    const scales = Float32Array.from({ length: rows * groups * l.scalesPerGroup }, () => (unitScales ? 1 : layoutFloat(l, r)));
    const mins = l.hasMin ? Float32Array.from({ length: rows * groups }, () => (unitScales ? (r() < 0.5 ? -1 : 1) : layoutFloat(l, r))) : null;
    const xq = new Int8Array(tokens * cols);
    for (let t = 0; t < tokens; t++) fillInts(r, xStyles[t], xq, t * cols, cols, -127, 127);
    const scale = Float32Array.from({ length: tokens * groups }, () => (unitScales ? 1 : r() < 0.1 ? 0 : r() * 0.05));
    return { w: { layout: l, rows, cols, q, scales, mins }, x: { tokens, cols, q: xq, scale } };
  });

function runBlockKernel(k: WasmKernels, c: BlockCase, op: "gemm" | "gemv"): { y: Float32Array; after: number } {
  const m = allocMatrix(k, c.w.layout, c.w.rows, c.w.cols);
  writeBlockRows(k, m, 0, c.w);
  const act = Int8BlockActivations.alloc(k, c.x.tokens, c.x.cols);
  setActivationsI8b(k, act, c.x);
  const n = c.x.tokens * c.w.rows;
  const y = k.alloc(4 * (n + 4));
  k.f32.fill(SENTINEL, y >> 2, (y >> 2) + n + 4);
  if (op === "gemm") gemm(k, m, act, y);
  else for (let t = 0; t < c.x.tokens; t++) gemv(k, m, act, y + 4 * t * c.w.rows, t);
  return { y: k.f32.slice(y >> 2, (y >> 2) + n), after: k.f32[(y >> 2) + n] };
}

const camel = (tag: LayoutTag) => tag.replace(/_([a-z])/g, (_, ch: string) => ch.toUpperCase()).replace(/^./, (ch) => ch.toUpperCase());

describe.each(VARIANTS)("the layouts of llama.cpp's quantized types x i8b activations, %s build", (variant) => {
  describe.each(BLOCK_LAYOUTS)("%s", (tag) => {
    it("gemm and gemv equal the twin bit for bit, and never write past the rows", async () => {
      const k = await WasmKernels.create(variant, wasmBytes(variant));
      fc.assert(
        fc.property(blockCaseArb(tag, false), (c) => {
          const want = gemmI8bRef(c.w, c.x);
          const g = runBlockKernel(k, c, "gemm");
          expect(firstBitDifference(g.y, want)).toBe(-1);
          expect(g.after).toBe(SENTINEL);
          const v = runBlockKernel(k, c, "gemv");
          expect(firstBitDifference(v.y, want)).toBe(-1);
          expect(v.after).toBe(SENTINEL);
          for (let t = 0; t < c.x.tokens; t++) expect(firstBitDifference(gemvI8bRef(c.w, c.x, t), want.slice(t * c.w.rows, (t + 1) * c.w.rows))).toBe(-1);
        }),
        { numRuns: 25 },
      );
    });

    it("with unit scales (and mins of ±1) gives the exact integer sums", async () => {
      const k = await WasmKernels.create(variant, wasmBytes(variant));
      fc.assert(
        fc.property(blockCaseArb(tag, true), (c) => {
          const exact = Float32Array.from(gemmI8bExactRef(c.w, c.x));
          for (const v of exact) expect(Number.isInteger(v) && Math.abs(v) < 2 ** 24).toBe(true);
          expect(firstBitDifference(runBlockKernel(k, c, "gemm").y, exact)).toBe(-1);
        }),
        { numRuns: 15 },
      );
    });

    it("over several 64-group column chunks (cols 2080..4160) equals the twin", async () => {
      const k = await WasmKernels.create(variant, wasmBytes(variant));
      fc.assert(
        fc.property(blockCaseArb(tag, false, 130, 65), (c) => {
          expect(firstBitDifference(runBlockKernel(k, c, "gemm").y, gemmI8bRef(c.w, c.x))).toBe(-1);
        }),
        { numRuns: 3 },
      );
    });
  });
});

describe("the i8b twins", () => {
  it.each(BLOCK_LAYOUTS)("%s: within (G + 5)·2^-24 of the magnitude from the exact f64 value", (tag) => {
    fc.assert(
      fc.property(blockCaseArb(tag, false, 40), (c) => {
        const got = gemmI8bRef(c.w, c.x);
        const exact = gemmI8bExactRef(c.w, c.x);
        const mag = gemmI8bMagnitudeRef(c.w, c.x);
        const bound = (c.w.cols / GROUP + 5) * 2 ** -24;
        for (let i = 0; i < got.length; i++) {
          const err = Math.abs(got[i] - exact[i]);
          // A magnitude past f32's range overflows the twin as it would the kernel; only finite ones are bounded.
          if (Number.isFinite(got[i]) && !(err <= bound * mag[i])) throw new Error(`y[${i}] = ${got[i]}, exact ${exact[i]}, |diff| ${err} > ${bound} x ${mag[i]}`);
        }
      }),
      { numRuns: 20 },
    );
  });

  it.each(BLOCK_LAYOUTS)("%s: the per-layout wrappers and twins refuse a matrix of another layout", async (tag) => {
    const k = await WasmKernels.create("simd", wasmBytes("simd"));
    const other = tag === "q8_0" ? "q4_1" : "q8_0";
    const m = allocMatrix(k, LAYOUTS[other], 4, 32);
    const act = Int8BlockActivations.alloc(k, 1, 32);
    const fns = i8b as unknown as Record<string, (...a: unknown[]) => unknown>;
    expect(() => fns[`gemv${camel(tag)}I8b`](k, m, act, k.alloc(16))).toThrow(`a ${other} matrix, not ${tag}`);
    expect(() => fns[`gemm${camel(tag)}I8b`](k, m, act, k.alloc(16))).toThrow(`a ${other} matrix, not ${tag}`);
  });
});

describe.each(VARIANTS)("quantize_activations_i8b, %s build", (variant) => {
  it("equals its twin bit for bit: q, scales, and blocks of zeros, subnormals, NaN and infinity", async () => {
    const k = await WasmKernels.create(variant, wasmBytes(variant));
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 6 }), fc.integer(), (tokens, groups, seed) => {
        const r = rng(seed);
        const cols = groups * GROUP;
        const x = new Float32Array(tokens * cols);
        for (let b = 0; b < x.length / GROUP; b++) {
          const kind = r();
          for (let i = 0; i < GROUP; i++) {
            const at = b * GROUP + i;
            if (kind < 0.1) x[at] = 0;
            else if (kind < 0.2) x[at] = gauss(r) * 1e-40; // subnormal
            else if (kind < 0.3) x[at] = (i % 7) * 0.5; // ties: x / a lands on halves
            else x[at] = gauss(r) * 2 ** (Math.floor(r() * 20) - 10);
          }
          if (kind > 0.95) x[b * GROUP + Math.floor(r() * GROUP)] = [NaN, Infinity, -Infinity][Math.floor(r() * 3)];
        }
        const act = Int8BlockActivations.alloc(k, tokens, cols);
        const xp = k.alloc(4 * x.length, 16);
        k.f32.set(x, xp >> 2);
        quantizeActivationsI8b(k, xp, act);
        const got = readActivationsI8b(k, act);
        const want = quantizeActivationsI8bRef(x, tokens, cols);
        expect(Array.from(got.q)).toEqual(Array.from(want.q));
        expect(firstBitDifference(got.scale, want.scale)).toBe(-1);
        for (const q of got.q) expect(q >= -127 && q <= 127).toBe(true);
      }),
      { numRuns: 60 },
    );
  });

  it("quantizing then multiplying equals the twin on the twin's activations (the engine's path)", async () => {
    const k = await WasmKernels.create(variant, wasmBytes(variant));
    fc.assert(
      fc.property(blockCaseArb("q4_1", false), fc.integer(), (c, seed) => {
        const r = rng(seed);
        const x = Float32Array.from({ length: c.x.tokens * c.w.cols }, () => gauss(r));
        const m = allocMatrix(k, c.w.layout, c.w.rows, c.w.cols);
        writeBlockRows(k, m, 0, c.w);
        const act = Int8BlockActivations.alloc(k, c.x.tokens, c.x.cols);
        const xp = k.alloc(4 * x.length, 16);
        k.f32.set(x, xp >> 2);
        quantizeActivationsI8b(k, xp, act);
        const y = k.alloc(4 * c.x.tokens * c.w.rows);
        gemm(k, m, act, y);
        const want = gemmI8bRef(c.w, quantizeActivationsI8bRef(x, c.x.tokens, c.w.cols));
        expect(firstBitDifference(k.f32.slice(y >> 2, (y >> 2) + want.length), want)).toBe(-1);
      }),
      { numRuns: 20 },
    );
  });
});

// ---- float layouts ----------------------------------------------------------------------------------

function floatOf(l: WeightLayout, x: number): number {
  if (l.values === "f32") return Math.fround(x);
  if (l.values === "f16") return f16BitsToF32(f32ToF16Bits(x));
  const b = new Uint32Array(Float32Array.of(x).buffer)[0] & 0xffff0000;
  return new Float32Array(Uint32Array.of(b).buffer)[0];
}

interface FloatCase {
  w: FloatWeights;
  x: Float32Array;
  tokens: number;
}

const floatCaseArb = (tag: LayoutTag, maxGroups = 4): fc.Arbitrary<FloatCase> =>
  fc.record({ rows: fc.integer({ min: 1, max: 13 }), groups: fc.integer({ min: 1, max: maxGroups }), tokens: fc.integer({ min: 1, max: 9 }), seed: fc.integer() })
    .map(({ rows, groups, tokens, seed }) => {
      const l = LAYOUTS[tag];
      const r = rng(seed);
      const cols = groups * GROUP;
      const values = Float32Array.from({ length: rows * cols }, () => {
        const kind = r();
        if (kind < 0.05) return 0;
        if (kind < 0.1) return floatOf(l, l.values === "f16" ? 65504 * (r() < 0.5 ? -1 : 1) : gauss(r) * 1e-5);
        return floatOf(l, gauss(r) * 2 ** (Math.floor(r() * 8) - 4));
      });
      const x = Float32Array.from({ length: tokens * cols }, () => Math.fround(gauss(r)));
      return { w: { layout: l, rows, cols, values }, x, tokens };
    });

function runFloatKernel(k: WasmKernels, c: FloatCase, op: "gemm" | "gemv"): { y: Float32Array; after: number } {
  const m = allocMatrix(k, c.w.layout, c.w.rows, c.w.cols);
  writeFloatRows(k, m, 0, c.w);
  const xp = k.alloc(4 * c.x.length, 16);
  k.f32.set(c.x, xp >> 2);
  const act = new FloatActivations(c.tokens, c.w.cols, xp);
  const n = c.tokens * c.w.rows;
  const y = k.alloc(4 * (n + 4));
  k.f32.fill(SENTINEL, y >> 2, (y >> 2) + n + 4);
  if (op === "gemm") gemm(k, m, act, y);
  else for (let t = 0; t < c.tokens; t++) gemv(k, m, act, y + 4 * t * c.w.rows, t);
  return { y: k.f32.slice(y >> 2, (y >> 2) + n), after: k.f32[(y >> 2) + n] };
}

describe.each(VARIANTS)("the float layouts x f32 activations, %s build", (variant) => {
  it.each(FLOAT_LAYOUTS)("%s: gemm and gemv equal the twin bit for bit, and never write past the rows", async (tag) => {
    const k = await WasmKernels.create(variant, wasmBytes(variant));
    fc.assert(
      fc.property(floatCaseArb(tag), (c) => {
        const want = gemmFloatRef(c.w, c.x, c.tokens);
        for (const op of ["gemm", "gemv"] as const) {
          const got = runFloatKernel(k, c, op);
          expect(firstBitDifference(got.y, want)).toBe(-1);
          expect(got.after).toBe(SENTINEL);
        }
        for (let t = 0; t < c.tokens; t++) expect(firstBitDifference(gemvFloatRef(c.w, c.x, c.tokens, t), want.slice(t * c.w.rows, (t + 1) * c.w.rows))).toBe(-1);
      }),
      { numRuns: 25 },
    );
  });
});

describe("the float twins", () => {
  it.each(FLOAT_LAYOUTS)("%s: within (cols + 1)·2^-24 of Σ|w x| from the exact f64 value", (tag) => {
    fc.assert(
      fc.property(floatCaseArb(tag, 20), (c) => {
        const got = gemmFloatRef(c.w, c.x, c.tokens);
        const mag = gemmFloatMagnitudeRef(c.w, c.x, c.tokens);
        const bound = (c.w.cols + 1) * 2 ** -24;
        for (let t = 0; t < c.tokens; t++) {
          for (let r = 0; r < c.w.rows; r++) {
            let exact = 0;
            for (let j = 0; j < c.w.cols; j++) exact += c.w.values[r * c.w.cols + j] * c.x[t * c.w.cols + j];
            const i = t * c.w.rows + r;
            expect(Math.abs(got[i] - exact) <= bound * mag[i]).toBe(true);
          }
        }
      }),
      { numRuns: 20 },
    );
  });

  it.each(FLOAT_LAYOUTS)("%s: the per-layout wrappers refuse a matrix of another layout", async (tag) => {
    const k = await WasmKernels.create("simd", wasmBytes("simd"));
    const other = tag === "f32" ? "f16" : "f32";
    const m = allocMatrix(k, LAYOUTS[other], 4, 32);
    const act = new FloatActivations(1, 32, k.alloc(128));
    const fns = float as unknown as Record<string, (...a: unknown[]) => unknown>;
    expect(() => fns[`gemv${camel(tag)}F32`](k, m, act, k.alloc(16))).toThrow(`a ${other} matrix, not ${tag}`);
  });
});

// ---- writing and reading the layouts ------------------------------------------------------------------

describe("the layouts' writers and reader", () => {
  it.each(BLOCK_LAYOUTS)("%s: every value reads back as the layout's formula on the logical form", async (tag) => {
    const k = await WasmKernels.create("simd", wasmBytes("simd"));
    fc.assert(
      fc.property(blockCaseArb(tag, false), (c) => {
        const m: WeightMatrix = allocMatrix(k, c.w.layout, c.w.rows, c.w.cols);
        writeBlockRows(k, m, 0, c.w);
        const row = k.alloc(4 * c.w.cols);
        const groups = c.w.cols / GROUP;
        const n = c.w.layout.scalesPerGroup;
        for (let r = 0; r < c.w.rows; r++) {
          dequantizeRowInto(k, m, r, row);
          const got = k.f32.slice(row >> 2, (row >> 2) + c.w.cols);
          const want = Float32Array.from({ length: c.w.cols }, (_, col) => {
            const g = r * groups + Math.floor(col / GROUP);
            const s = c.w.scales[g * n + (n === 2 && col % GROUP >= 16 ? 1 : 0)];
            return formulaValue(c.w.q[r * c.w.cols + col], s, c.w.mins === null ? null : c.w.mins[g]);
          });
          expect(firstBitDifference(got, want)).toBe(-1);
        }
      }),
      { numRuns: 15 },
    );
  });

  it.each(FLOAT_LAYOUTS)("%s: every value reads back as written", async (tag) => {
    const k = await WasmKernels.create("simd", wasmBytes("simd"));
    fc.assert(
      fc.property(floatCaseArb(tag), (c) => {
        const m = allocMatrix(k, c.w.layout, c.w.rows, c.w.cols);
        writeFloatRows(k, m, 0, c.w);
        const row = k.alloc(4 * c.w.cols);
        for (let r = 0; r < c.w.rows; r++) {
          dequantizeRowInto(k, m, r, row);
          expect(firstBitDifference(k.f32.slice(row >> 2, (row >> 2) + c.w.cols), c.w.values.subarray(r * c.w.cols, (r + 1) * c.w.cols))).toBe(-1);
        }
      }),
      { numRuns: 10 },
    );
  });

  it("refuses what a layout cannot hold exactly: q out of range, a scale that is not an f16, NaN, infinity", async () => {
    const k = await WasmKernels.create("simd", wasmBytes("simd"));
    const l = LAYOUTS.q4_1;
    const base = (): BlockWeights => ({ layout: l, rows: 1, cols: 32, q: new Int8Array(32), scales: Float32Array.of(1), mins: Float32Array.of(0) });
    const m = allocMatrix(k, l, 1, 32);
    expect(() => writeBlockRows(k, m, 0, { ...base(), q: Int8Array.from({ length: 32 }, (_, i) => (i === 3 ? 16 : 0)) })).toThrow(/q\[0\]\[3\] = 16 is outside the q4_1 range \[0, 15\]/);
    expect(() => writeBlockRows(k, m, 0, { ...base(), scales: Float32Array.of(0.1) })).toThrow(/scale of row 0, group 0 is 0\.1.*not a finite f16/);
    expect(() => writeBlockRows(k, m, 0, { ...base(), mins: Float32Array.of(NaN) })).toThrow(/min of row 0, group 0 is NaN/);
    const f = allocMatrix(k, LAYOUTS.f16, 1, 32);
    expect(() => writeFloatRows(k, f, 0, { layout: LAYOUTS.f16, rows: 1, cols: 32, values: new Float32Array(32).fill(Infinity) })).toThrow(/value \[0\]\[0\] is Infinity/);
    expect(() => writeFloatRows(k, f, 0, { layout: LAYOUTS.f16, rows: 1, cols: 32, values: new Float32Array(32).fill(0.1) })).toThrow(/not a finite f16/);
  });
});
