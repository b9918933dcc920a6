import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  Int8Activations, allocInt4Matrix, dequantizeRowInto, repackInt4, writeInt4Rows, type Int4Weights,
} from "../../src/kernels/layout.js";
import {
  TOLERANCE, gemm, gemmIl4ExactRef, gemmIl4MagnitudeRef, gemmIl4I8tRef, gemv, gemvIl4I8tRef, quantizeActivations,
  quantizeActivationsRef, readActivations, setActivations, type Int8Tokens,
} from "../../src/kernels/matmul.js";
import { GROUP, roundHalfEven, SCALE_MIN } from "../../src/kernels/numerics.js";
import { firstBitDifference } from "../../src/kernels/probe.js";
import { acceptsRelaxedSimd, WasmKernels, type WasmVariant } from "../../src/kernels/wasm.js";
import { enableRelaxedSimd, wasmBytes } from "../../src/node/wasm-files.js";
import { f16BitsToF32, f32ToF16Bits } from "../../src/kernels/dtype.js";
import { rng } from "../helpers/rng.js";
import { fillInts, style } from "../helpers/int-fill.js";

const RUNS = 40;



/** x rounded to the nearest f16 value: il4 stores its scales as f16. */
const f16 = (x: number): number => f16BitsToF32(f32ToF16Bits(x));

/**
 * A weight scale as il4 holds it, an f16 value of either sign: mostly normal (2^-8..2^4), sometimes zero
 * (either sign) or subnormal (below 2^-14), so the kernels' f16 -> f32 conversion meets every kind.
 */
function weightScale(r: () => number): number {
  const sign = r() < 0.3 ? 0x8000 : 0;
  const kind = r();
  if (kind < 0.08) return f16BitsToF32(sign);
  if (kind < 0.2) return f16BitsToF32(sign | (1 + Math.floor(r() * 0x3ff)));
  return f16BitsToF32(sign | ((7 + Math.floor(r() * 12)) << 10) | Math.floor(r() * 0x400));
}

interface Case {
  w: Int4Weights;
  x: Int8Tokens;
}

/** rows 1..13 (often not a multiple of 4), 1..6 groups, 1..9 tokens (both the 4-token tile and the tail). */
const caseArb = (unitScales: boolean, maxGroups = 6, minGroups = 1): fc.Arbitrary<Case> =>
  fc.record({
    rows: fc.integer({ min: 1, max: 13 }),
    groups: fc.integer({ min: minGroups, max: maxGroups }),
    tokens: fc.integer({ min: 1, max: 9 }),
    seed: fc.integer(),
    wStyles: fc.array(style, { minLength: 13, maxLength: 13 }),
    xStyles: fc.array(style, { minLength: 9, maxLength: 9 }),
  }).map(({ rows, groups, tokens, seed, wStyles, xStyles }) => {
    const r = rng(seed);
    const cols = groups * GROUP;
    const q = new Int8Array(rows * cols);
    for (let i = 0; i < rows; i++) fillInts(r, wStyles[i], q, i * cols, cols, -8, 7);
    const scales = new Float32Array(rows * groups);
    for (let i = 0; i < scales.length; i++) scales[i] = unitScales ? 1 : weightScale(r);
    const xq = new Int8Array(tokens * cols);
    for (let t = 0; t < tokens; t++) fillInts(r, xStyles[t], xq, t * cols, cols, -128, 127);
    const scale = new Float32Array(tokens);
    const zero = new Int32Array(tokens);
    for (let t = 0; t < tokens; t++) {
      scale[t] = unitScales ? 1 : r() * 0.1;
      const z = r();
      zero[t] = z < 0.2 ? -128 : z < 0.4 ? 127 : Math.floor(r() * 256) - 128;
    }
    return { w: { rows, cols, q, scales }, x: { tokens, cols, q: xq, scale, zero } };
  });

/**
 * A row whose range makes s = 0.25 exactly, so every x / s is m + 0.5: each value is a rounding tie
 * (round half to even vs Math.round), and the zero point -0.5 is one too.
 */
function tie(i: number, r: () => number): number {
  if (i === 0) return -31.875;
  if (i === 1) return 31.875;
  return (Math.floor(r() * 256) - 128 + 0.5) * 0.25;
}

const SENTINEL = -12345.5;

/** Runs gemm (or gemv per token) on one instance; returns y plus the sentinel written just past it. */
function runKernel(k: WasmKernels, c: Case, op: "gemm" | "gemv"): { y: Float32Array; after: number } {
  const m = repackInt4(k, c.w);
  const act = Int8Activations.alloc(k, c.x.tokens, c.x.cols);
  setActivations(k, act, c.x);
  const n = c.x.tokens * c.w.rows;
  const y = k.alloc(4 * (n + 4));
  k.f32.fill(SENTINEL, y >> 2, (y >> 2) + n + 4);
  if (op === "gemm") gemm(k, m, act, y);
  else for (let t = 0; t < c.x.tokens; t++) gemv(k, m, act, y + 4 * t * c.w.rows, t);
  return { y: k.f32.slice(y >> 2, (y >> 2) + n), after: k.f32[(y >> 2) + n] };
}

function expectWithinTolerance(got: Float32Array, c: Case): void {
  const want = gemmIl4I8tRef(c.w, c.x);
  const mag = gemmIl4MagnitudeRef(c.w, c.x);
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    if (!(err <= TOLERANCE * mag[i])) {
      throw new Error(`y[${i}] = ${got[i]}, twin ${want[i]}, |diff| ${err} > ${TOLERANCE} x ${mag[i]}`);
    }
  }
}

// Relaxed runs whenever the engine accepts it; it is loaded directly, not through the start-up probe, so a
// wrong relaxed kernel fails these tests instead of quietly falling back.
const RELAXED = acceptsRelaxedSimd(wasmBytes("relaxed"), enableRelaxedSimd);
const VARIANTS: WasmVariant[] = RELAXED ? ["simd", "relaxed"] : ["simd"];

describe.each(VARIANTS)("int4 x int8 kernels, %s build", (variant) => {

  it("gemm with unit scales gives the exact integer sums Σ q_w · (q_x - z), bit for bit", async () => {
    const k = await WasmKernels.create(variant, wasmBytes(variant));
    fc.assert(
      fc.property(caseArb(true), (c) => {
        const { y, after } = runKernel(k, c, "gemm");
        const want = Float32Array.from(gemmIl4ExactRef(c.w, c.x));
        for (const v of want) expect(Number.isInteger(v) && Math.abs(v) < 2 ** 24).toBe(true);
        expect(firstBitDifference(y, want)).toBe(-1);
        expect(firstBitDifference(gemmIl4I8tRef(c.w, c.x), want)).toBe(-1);
        expect(after).toBe(SENTINEL);
      }),
      { numRuns: RUNS },
    );
  });

  it("gemm stays within (2G + 4)·2^-24 of the magnitude from the exact f64 value (the zero point split off)", async () => {
    const k = await WasmKernels.create(variant, wasmBytes(variant));
    fc.assert(
      fc.property(caseArb(false, 200, 1), (c) => {
        const { y } = runKernel(k, c, "gemm");
        const exact = gemmIl4ExactRef(c.w, c.x);
        const mag = gemmIl4MagnitudeRef(c.w, c.x);
        const bound = (2 * (c.w.cols / GROUP) + 4) * 2 ** -24;
        for (let i = 0; i < y.length; i++) {
          const err = Math.abs(y[i] - exact[i]);
          if (!(err <= bound * mag[i])) throw new Error(`y[${i}] = ${y[i]}, exact ${exact[i]}, |diff| ${err} > ${bound} x ${mag[i]}`);
        }
      }),
      { numRuns: 12 },
    );
  });

  it("gemm matches the twin within the stated tolerance, never writing past the rows", async () => {
    const k = await WasmKernels.create(variant, wasmBytes(variant));
    fc.assert(
      fc.property(caseArb(false), (c) => {
        const { y, after } = runKernel(k, c, "gemm");
        expectWithinTolerance(y, c);
        expect(after).toBe(SENTINEL);
      }),
      { numRuns: RUNS },
    );
  });

  it("gemm over several 64-group column chunks (cols 2080..6400) matches the twin", async () => {
    const k = await WasmKernels.create(variant, wasmBytes(variant));
    fc.assert(
      fc.property(caseArb(false, 200, 65), (c) => {
        const { y, after } = runKernel(k, c, "gemm");
        expectWithinTolerance(y, c);
        expect(after).toBe(SENTINEL);
      }),
      { numRuns: 8 },
    );
  });

  it("gemm over any token range [first, first + count) gives each token's gemv result, bit for bit", async () => {
    // The relaxed build's GEMM reads 4-token tiles that prepare_activations copies from q; gemv reads q
    // itself. A range starting inside a tile goes one by one up to the next tile (gemmIl4I8t).
    const k = await WasmKernels.create(variant, wasmBytes(variant));
    fc.assert(
      fc.property(caseArb(false, 70), fc.nat(), fc.nat(), (c, a, b) => {
        const m = repackInt4(k, c.w);
        const act = Int8Activations.alloc(k, c.x.tokens, c.x.cols);
        setActivations(k, act, c.x);
        const first = a % c.x.tokens;
        const count = 1 + (b % (c.x.tokens - first));
        const rows = c.w.rows;
        const ldy = rows + 3;
        const y = k.alloc(4 * ldy * count);
        gemm(k, m, act, y, count, first, ldy);
        const one = k.alloc(4 * rows);
        for (let i = 0; i < count; i++) {
          gemv(k, m, act, one, first + i);
          const got = k.f32.slice((y >> 2) + i * ldy, (y >> 2) + i * ldy + rows);
          expect(firstBitDifference(got, k.f32.slice(one >> 2, (one >> 2) + rows))).toBe(-1);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it("quantizeActivations starts at a tile boundary (a multiple of 4 tokens) or refuses", async () => {
    const k = await WasmKernels.create(variant, wasmBytes(variant));
    const act = Int8Activations.alloc(k, 8, 32);
    const x = k.alloc(4 * 8 * 32);
    expect(() => quantizeActivations(k, x, act, 2, 2)).toThrow(/first token 2 is not a multiple of 4/);
    expect(() => quantizeActivations(k, x, act, 4, 4)).not.toThrow();
  });

  it("gemv matches its twin per token, exact with unit scales, within tolerance otherwise", async () => {
    const k = await WasmKernels.create(variant, wasmBytes(variant));
    const gemvRefAll = (c: Case): Float32Array => {
      const y = new Float32Array(c.x.tokens * c.w.rows);
      for (let t = 0; t < c.x.tokens; t++) y.set(gemvIl4I8tRef(c.w, c.x, t), t * c.w.rows);
      return y;
    };
    fc.assert(
      fc.property(caseArb(true), caseArb(false), (unit, scaled) => {
        const u = runKernel(k, unit, "gemv");
        expect(firstBitDifference(u.y, gemvRefAll(unit))).toBe(-1);
        expect(firstBitDifference(gemvRefAll(unit), Float32Array.from(gemmIl4ExactRef(unit.w, unit.x)))).toBe(-1);
        expect(u.after).toBe(SENTINEL);
        const s = runKernel(k, scaled, "gemv");
        expectWithinTolerance(s.y, scaled);
        expect(firstBitDifference(gemvRefAll(scaled), gemmIl4I8tRef(scaled.w, scaled.x))).toBe(-1);
        expect(s.after).toBe(SENTINEL);
      }),
      { numRuns: RUNS },
    );
  });

  it("reads every finite f16 scale, both signs, subnormals and zeros, as its exact value", async () => {
    const k = await WasmKernels.create(variant, wasmBytes(variant));
    // One row per finite f16 bit pattern (63,488 of them), q = 1 at column 0 and 0 elsewhere, against a
    // token that is 1 at column 0: y[r] = f32(0 + f32(1 · s)) = s exactly (a zero of either sign gives +0).
    const bits = Array.from({ length: 65536 }, (_, h) => h).filter((h) => (h & 0x7c00) !== 0x7c00);
    const rows = bits.length;
    const cols = 32;
    const q = new Int8Array(rows * cols);
    for (let r = 0; r < rows; r++) q[r * cols] = 1;
    const w: Int4Weights = { rows, cols, q, scales: Float32Array.from(bits, f16BitsToF32) };
    const xq = new Int8Array(2 * cols);
    xq[0] = 1;
    xq[cols] = 1;
    const x: Int8Tokens = { tokens: 2, cols, q: xq, scale: new Float32Array(2).fill(1), zero: new Int32Array(2) };
    const want = Float32Array.from(bits, (h) => f16BitsToF32(h) + 0);
    for (const op of ["gemv", "gemm"] as const) {
      const { y } = runKernel(k, { w, x }, op);
      expect(firstBitDifference(y.subarray(0, rows), want)).toBe(-1);
      expect(firstBitDifference(y.subarray(rows), want)).toBe(-1);
    }
    expect(firstBitDifference(gemmIl4I8tRef(w, x).subarray(0, rows), want)).toBe(-1);
  });

  it("keeps the largest sums exact: 6144 columns of -8 x (-128 - 127), 5 rows", async () => {
    const k = await WasmKernels.create(variant, wasmBytes(variant));
    const rows = 5;
    const cols = 6144;
    const w: Int4Weights = { rows, cols, q: new Int8Array(rows * cols).fill(-8), scales: new Float32Array(rows * cols / GROUP).fill(1) };
    w.q.fill(7, 4 * cols);
    const x: Int8Tokens = { tokens: 5, cols, q: new Int8Array(5 * cols).fill(-128), scale: new Float32Array(5).fill(1), zero: new Int32Array(5).fill(127) };
    const { y } = runKernel(k, { w, x }, "gemm");
    expect(y[0]).toBe(-8 * -255 * cols);
    expect(y[4]).toBe(7 * -255 * cols);
    expect(firstBitDifference(y, gemmIl4I8tRef(w, x))).toBe(-1);
  });

  it("quantize_activations agrees exactly with the twin on q, scale and zero point", async () => {
    const k = await WasmKernels.create(variant, wasmBytes(variant));
    // "huge": finite values whose f32 sum overflows (the kernel's screen flags the row, its check clears it);
    // "nan" and "inf": one non-finite value among ordinary ones.
    const rowStyle = fc.constantFrom("gauss", "zero", "constant", "positive", "negative", "outlier", "ties", "huge", "nan", "inf");
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 5 }), fc.integer(),
        fc.array(rowStyle, { minLength: 6, maxLength: 6 }),
        (tokens, groups, seed, styles) => {
          const r = rng(seed);
          const cols = groups * GROUP;
          const xs = new Float32Array(tokens * cols);
          for (let t = 0; t < tokens; t++) {
            const c = (r() - 0.5) * 10;
            for (let i = 0; i < cols; i++) {
              const g = (r() - 0.5) * 4;
              const s = styles[t];
              xs[t * cols + i] =
                s === "zero" ? 0 : s === "constant" ? c : s === "positive" ? Math.abs(g) : s === "negative" ? -Math.abs(g)
                : s === "outlier" ? (i === 3 ? 80 : g * 0.01) : s === "ties" ? tie(i, r) : s === "huge" ? 1e37 * (1 + r())
                : s === "nan" ? (i === cols - 2 ? NaN : g) : s === "inf" ? (i === 5 ? -Infinity : g) : g;
            }
          }
          const act = Int8Activations.alloc(k, tokens, cols);
          const xPtr = k.alloc(4 * xs.length);
          k.f32.set(xs, xPtr >> 2);
          quantizeActivations(k, xPtr, act);
          const got = readActivations(k, act);
          const want = quantizeActivationsRef(xs, tokens, cols);
          expect(got.q).toEqual(want.q);
          expect(got.zero).toEqual(want.zero);
          expect(firstBitDifference(got.scale, want.scale)).toBe(-1);
          for (let t = 0; t < tokens; t++) expect(Number.isNaN(got.scale[t])).toBe(styles[t] === "nan" || styles[t] === "inf");
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("a token holding NaN or infinity gives NaN outputs in gemm and gemv, the other tokens are untouched", async () => {
    const k = await WasmKernels.create(variant, wasmBytes(variant));
    const rows = 6;
    const cols = 64;
    const tokens = 5;
    const r = rng(11);
    const w: Int4Weights = {
      rows, cols,
      q: Int8Array.from({ length: rows * cols }, () => Math.floor(r() * 16) - 8),
      scales: Float32Array.from({ length: rows * 2 }, () => f16(0.01 + r() * 0.1)),
    };
    const m = repackInt4(k, w);
    const xs = Float32Array.from({ length: tokens * cols }, () => r() * 2 - 1);
    xs[1 * cols + 40] = NaN;
    xs[3 * cols + 7] = Infinity;
    const act = Int8Activations.alloc(k, tokens, cols);
    const xPtr = k.alloc(4 * xs.length);
    k.f32.set(xs, xPtr >> 2);
    quantizeActivations(k, xPtr, act);
    const y = k.alloc(4 * rows * tokens);
    gemm(k, m, act, y);
    const got = k.f32.slice(y >> 2, (y >> 2) + rows * tokens);
    const yv = k.alloc(4 * rows);
    for (let t = 0; t < tokens; t++) {
      const bad = t === 1 || t === 3;
      expect(got.subarray(t * rows, (t + 1) * rows).every(bad ? Number.isNaN : Number.isFinite)).toBe(true);
      gemv(k, m, act, yv, t);
      expect(Array.from(k.f32.subarray(yv >> 2, (yv >> 2) + rows)).every(bad ? Number.isNaN : Number.isFinite)).toBe(true);
    }
  });
});

describe.skipIf(!RELAXED)("builds agree", () => {
  it("relaxed and baseline give bit-identical gemm, gemv and quantization results", async () => {
    const a = await WasmKernels.create("simd", wasmBytes("simd"));
    const b = await WasmKernels.create("relaxed", wasmBytes("relaxed"));
    fc.assert(
      fc.property(caseArb(false), (c) => {
        expect(firstBitDifference(runKernel(a, c, "gemm").y, runKernel(b, c, "gemm").y)).toBe(-1);
        expect(firstBitDifference(runKernel(a, c, "gemv").y, runKernel(b, c, "gemv").y)).toBe(-1);
      }),
      { numRuns: RUNS },
    );
    const xs = Float32Array.from({ length: 3 * 96 }, (_, i) => Math.sin(i) * 3 - 1);
    const quantize = (k: WasmKernels): Int8Tokens => {
      const act = Int8Activations.alloc(k, 3, 96);
      const p = k.alloc(4 * xs.length);
      k.f32.set(xs, p >> 2);
      quantizeActivations(k, p, act);
      return readActivations(k, act);
    };
    const qa = quantize(a);
    const qb = quantize(b);
    expect(qb.q).toEqual(qa.q);
    expect(qb.zero).toEqual(qa.zero);
    expect(firstBitDifference(qb.scale, qa.scale)).toBe(-1);
  });
});

describe("scalar twins", () => {
  it("roundHalfEven rounds ties to even, unlike Math.round", () => {
    expect([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4999, -2.5001, 3].map(roundHalfEven)).toEqual([0, 2, 2, -0, -2, -2, 2, -3, 3]);
    fc.assert(
      fc.property(fc.integer({ min: -1e6, max: 1e6 }), fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }), (n, f) => {
        const v = roundHalfEven(n + f);
        expect(Number.isInteger(v)).toBe(true);
        expect(Math.abs(v - (n + f))).toBeLessThanOrEqual(0.5);
        if (f === 0.5) expect(Math.abs(v) % 2).toBe(0);
      }),
      { numRuns: 200 },
    );
  });

  it("quantization reconstructs every input to within half a step, and all-zero rows give zero output", () => {
    fc.assert(
      fc.property(fc.array(fc.float({ min: -100, max: 100, noNaN: true }), { minLength: 32, maxLength: 32 }), (vals) => {
        const x = Float32Array.from(vals);
        const { q, scale, zero } = quantizeActivationsRef(x, 1, 32);
        expect(zero[0]).toBeGreaterThanOrEqual(-128);
        expect(zero[0]).toBeLessThanOrEqual(127);
        for (let i = 0; i < 32; i++) expect(Math.abs((q[i] - zero[0]) * scale[0] - x[i])).toBeLessThanOrEqual(scale[0] * 0.5001);
      }),
      { numRuns: 200 },
    );
    const z = quantizeActivationsRef(new Float32Array(64), 2, 32);
    expect(Array.from(z.scale)).toEqual([SCALE_MIN, SCALE_MIN]);
    expect(Array.from(z.zero)).toEqual([127, 127]);
    const w: Int4Weights = { rows: 3, cols: 32, q: new Int8Array(96).fill(7), scales: new Float32Array(3).fill(2) };
    expect(Array.from(gemmIl4I8tRef(w, z))).toEqual([0, 0, 0, 0, 0, 0]);
  });
});

describe("il4 repack", () => {
  it("streams rows in uneven chunks to the same bytes as one repack, and dequantizes any row back to q·s", async () => {
    const k = await WasmKernels.create("simd", wasmBytes("simd"));
    fc.assert(
      fc.property(caseArb(false), fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 13, maxLength: 13 }), (c, chunks) => {
        const { rows, cols } = c.w;
        const groups = cols / GROUP;
        const whole = repackInt4(k, c.w);
        const parts = allocInt4Matrix(k, rows, cols);
        for (let r0 = 0, i = 0; r0 < rows; i++) {
          const n = Math.min(chunks[i], rows - r0);
          writeInt4Rows(k, parts, r0, {
            rows: n, cols,
            q: c.w.q.subarray(r0 * cols, (r0 + n) * cols),
            scales: c.w.scales.subarray(r0 * groups, (r0 + n) * groups),
          });
          r0 += n;
        }
        const bytes = whole.auxPtr + 16 * whole.blocks - whole.valuesPtr; // nibbles, scales and row sums
        expect(parts.auxPtr - parts.valuesPtr).toBe(whole.auxPtr - whole.valuesPtr);
        expect(k.u8.slice(parts.valuesPtr, parts.valuesPtr + bytes)).toEqual(k.u8.slice(whole.valuesPtr, whole.valuesPtr + bytes));
        const out = k.alloc(4 * cols);
        for (let r = 0; r < rows; r++) {
          dequantizeRowInto(k, parts, r, out);
          const got = k.f32.slice(out >> 2, (out >> 2) + cols);
          const want = Float32Array.from({ length: cols }, (_, i) => c.w.q[r * cols + i] * c.w.scales[r * groups + Math.floor(i / GROUP)]);
          expect(firstBitDifference(got, want)).toBe(-1);
        }
      }),
      { numRuns: RUNS },
    );
  });
});

describe("wrapper validation", () => {
  it("rejects bad shapes, out-of-range weights and pointers with clear errors", async () => {
    const k = await WasmKernels.create("simd", wasmBytes("simd"));
    const w = (rows: number, cols: number): Int4Weights => ({ rows, cols, q: new Int8Array(rows * cols), scales: new Float32Array((rows * cols) / GROUP) });
    expect(() => repackInt4(k, w(4, 48))).toThrow(/cols must be a positive multiple of 32, got 48/);
    const bad = w(2, 32);
    bad.q[33] = 8;
    expect(() => repackInt4(k, bad)).toThrow(/q\[1\]\[1\] = 8 is outside the int4 range/);
    expect(() => repackInt4(k, { ...w(2, 32), scales: new Float32Array(1) })).toThrow(/scales has 1 values/);
    // il4 stores f16 scales: a value f16 cannot hold exactly is refused, not rounded behind the caller's back
    expect(() => repackInt4(k, { ...w(2, 32), scales: Float32Array.of(1, 0.1) })).toThrow(/the scale of row 1, group 0 is 0\.10000000149011612, not a finite f16 value/);
    expect(() => repackInt4(k, { ...w(2, 32), scales: Float32Array.of(NaN, 1) })).toThrow(/the scale of row 0, group 0 is NaN/);
    expect(() => repackInt4(k, { ...w(2, 32), scales: Float32Array.of(1, 65536) })).toThrow(/row 1, group 0 is 65536, not a finite f16/);
    expect(() => Int8Activations.alloc(k, 1, 40)).toThrow(/multiple of 32/);
    const m = repackInt4(k, w(5, 64));
    const act = Int8Activations.alloc(k, 2, 32);
    expect(() => gemv(k, m, act, k.alloc(64))).toThrow(/matrix has 64 columns, activations have 32/);
    const act64 = Int8Activations.alloc(k, 2, 64);
    expect(() => gemv(k, m, act64, k.memory.buffer.byteLength - 8)).toThrow(/outside the Wasm memory/);
    expect(() => gemv(k, m, act64, 2)).toThrow(/4-byte aligned/);
    expect(() => gemm(k, m, act64, k.alloc(64), 3)).toThrow(/tokens \[0, 3\) outside the 2/);
    expect(() => gemv(k, m, act64, k.alloc(64), 2)).toThrow(/tokens \[2, 3\)/);
  });
});
