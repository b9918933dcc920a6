import { wasmBytes } from "../../src/node/wasm-files.js";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import {
  addInto, addIntoRef, buildRopeTables, geglu, gegluRef, GELU_TANH, rmsnorm, rmsnormRef, rope, ropeRef, swiglu, swigluRef, uploadRopeTable, type RopeTable,
  type RopeTablePtr,
} from "../../src/kernels/elementwise.js";
import { WasmKernels } from "../../src/kernels/wasm.js";
import { gauss, rng } from "../helpers/rng.js";
import { VARIANTS } from "../helpers/variants.js";
import { Scratch } from "../helpers/wasm-scratch.js";

const variants = VARIANTS;

const RUNS = 80;

type Style = "gauss" | "zero" | "constant" | "wide" | "sparse";
const styleArb = fc.constantFrom<Style>("gauss", "zero", "constant", "wide", "sparse");

function values(seed: number, n: number, style: Style, scale: number): Float32Array {
  const r = rng(seed);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    if (style === "zero") x[i] = 0;
    else if (style === "constant") x[i] = scale;
    else if (style === "wide") x[i] = gauss(r) * scale * 10 ** Math.floor(r() * 6 - 3);
    else if (style === "sparse") x[i] = r() < 0.1 ? gauss(r) * scale : 0;
    else x[i] = gauss(r) * scale;
  }
  return x;
}


/** |a - b| <= rel·|b| + abs elementwise, with the worst element in the message. */
function expectWithin(a: Float32Array, b: Float32Array, rel: number, abs: number, what: string): void {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < a.length; i++) {
    const tol = rel * Math.abs(b[i]) + abs;
    if (!(Math.abs(a[i] - b[i]) <= tol)) throw new Error(`${what}[${i}]: ${a[i]} vs ${b[i]} (tolerance ${tol})`);
  }
}

function geometricInvFreq(headDim: number, theta: number): Float32Array {
  return Float32Array.from({ length: headDim / 2 }, (_, i) => theta ** ((-2 * i) / headDim));
}

describe.each(variants)("element-wise kernels (%s build)", (variant) => {
  let wasm: WasmKernels;
  let scratch: Scratch;
  let table: RopeTable;
  let tablePtr: RopeTablePtr;
  beforeAll(async () => {
    wasm = await WasmKernels.create(variant, wasmBytes(variant));
    scratch = Scratch.create(wasm, 8 << 20);
    table = buildRopeTables(128, 4096, geometricInvFreq(128, 500000));
    tablePtr = uploadRopeTable(wasm, table);
  });

  it("rmsnorm matches the twin within 1e-5 relative, also in place", () => {
    fc.assert(
      fc.property(
        fc.record({
          rows: fc.integer({ min: 1, max: 4 }),
          dim: fc.oneof(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 2100 }), fc.constant(1280)),
          eps: fc.constantFrom(1e-5, 1e-6, 1),
          style: styleArb,
          scale: fc.constantFrom(1e-6, 1, 1000, 1e12, 1e30), // 1e30: the f32 sum of squares overflows
          seed: fc.integer(),
          inPlace: fc.boolean(),
        }),
        (c) => {
          scratch.reset();
          const x = values(c.seed, c.rows * c.dim, c.style, c.scale);
          const w = values(c.seed + 1, c.dim, "gauss", 1);
          const want = new Float32Array(x.length);
          rmsnormRef(x, w, want, c.rows, c.dim, c.eps);
          const xp = scratch.putF32(x);
          const wp = scratch.putF32(w);
          const op = c.inPlace ? xp : scratch.putF32(new Float32Array(x.length));
          rmsnorm(wasm, xp, wp, op, c.rows, c.dim, c.eps);
          expectWithin(scratch.get(op, x.length), want, 1e-5, 1e-30, "rmsnorm");
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("rope matches the twin (bit-exact in the simd build) for any rows, heads and positions", () => {
    fc.assert(
      fc.property(
        fc.record({
          rows: fc.integer({ min: 1, max: 5 }),
          nHeads: fc.integer({ min: 1, max: 24 }),
          headDim: fc.constantFrom(4, 8, 16, 64, 128),
          pos: fc.nat(),
          style: styleArb,
          scale: fc.constantFrom(1e-3, 1, 100),
          seed: fc.integer(),
        }),
        (c) => {
          scratch.reset();
          const t = c.headDim === 128 ? table : buildRopeTables(c.headDim, 4096, geometricInvFreq(c.headDim, 10000));
          const tp = c.headDim === 128 ? tablePtr : { ...tablePtr, ptr: scratch.putF32(t.data), headDim: c.headDim };
          const pos0 = c.pos % (t.positions - c.rows + 1);
          const x = values(c.seed, c.rows * c.nHeads * c.headDim, c.style, c.scale);
          const want = x.slice();
          ropeRef(want, c.rows, c.nHeads, t, pos0);
          const xp = scratch.putF32(x);
          rope(wasm, xp, c.rows, c.nHeads, tp, pos0);
          const got = scratch.get(xp, x.length);
          if (variant === "simd") {
            expect(Array.from(got)).toEqual(Array.from(want));
          } else {
            for (let i = 0; i < x.length; i += 2) {
              const tol = 2 ** -22 * (Math.abs(x[i]) + Math.abs(x[i + 1]));
              expect(Math.abs(got[i] - want[i])).toBeLessThanOrEqual(tol);
              expect(Math.abs(got[i + 1] - want[i + 1])).toBeLessThanOrEqual(tol);
            }
          }
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("the residual add gives the twin's f32 sums bit for bit, tails and infinities included", () => {
    fc.assert(
      fc.property(
        fc.record({
          n: fc.oneof(fc.integer({ min: 0, max: 9 }), fc.integer({ min: 0, max: 3000 })),
          style: styleArb,
          scale: fc.constantFrom(1, 1e-30, 3e38), // 3e38 + 3e38 overflows to infinity
          seed: fc.integer(),
        }),
        (c) => {
          scratch.reset();
          const a = values(c.seed, c.n, c.style, c.scale);
          const b = values(c.seed + 3, c.n, "constant", c.scale);
          const want = a.slice();
          addIntoRef(want, b, c.n);
          const ap = scratch.putF32(a);
          addInto(wasm, ap, scratch.putF32(b), c.n);
          const got = scratch.get(ap, c.n);
          for (let i = 0; i < c.n; i++) expect(Object.is(got[i], want[i]) || (Number.isNaN(got[i]) && Number.isNaN(want[i]))).toBe(true);
        },
      ),
      { numRuns: RUNS },
    );
  });

  // Each gated kernel with its twin, its stated bound, and the gates where its e^x saturates or bends.
  const gated = [
    { name: "swiglu", kernel: swiglu, twin: swigluRef, special: [88.5, -88.5, -100, 0], tolerance: (_g: number, want: number) => 1e-6 * Math.abs(want) + 1e-30 },
    {
      name: "geglu", kernel: geglu, twin: gegluRef,
      // around e^x's clamp (-2z = 88 near g = -5.9), GELU's knee, and far out on both sides
      special: [-5.9, -6, 5.9, -0.5, 1e6, -1e6, -1e30, 0],
      tolerance: (g: number, want: number, up: number) => {
        const z2 = Math.abs(2 * GELU_TANH.c * (g + GELU_TANH.a * g * g * g));
        return (1e-6 + 4e-7 * Math.min(z2, 1e30)) * Math.abs(want) + 1e-30 + 1e-37 * Math.abs(g * up);
      },
    },
  ] as const;

  it.each(gated)("$name matches the twin within its stated bound, including saturated and tail elements", ({ name, kernel, twin, special, tolerance }) => {
    fc.assert(
      fc.property(
        fc.record({
          n: fc.oneof(fc.integer({ min: 0, max: 9 }), fc.integer({ min: 0, max: 7000 }), fc.constantFrom(2048, 6144)),
          gateScale: fc.constantFrom(0.01, 1, 3, 10, 60, 200),
          style: styleArb,
          seed: fc.integer(),
          alias: fc.constantFrom("none", "gate", "up"),
        }),
        (c) => {
          scratch.reset();
          const gate = values(c.seed, c.n, c.style, c.gateScale);
          const up = values(c.seed + 7, c.n, "wide", 1);
          if (c.n >= special.length) gate.set(special, 0);
          const want = new Float32Array(c.n);
          twin(gate, up, want, c.n);
          const gp = scratch.putF32(gate);
          const upp = scratch.putF32(up);
          const op = c.alias === "gate" ? gp : c.alias === "up" ? upp : scratch.putF32(new Float32Array(c.n));
          kernel(wasm, gp, upp, op, c.n);
          const got = scratch.get(op, c.n);
          for (let i = 0; i < c.n; i++) {
            const tol = tolerance(gate[i], want[i], up[i]);
            if (!(Math.abs(got[i] - want[i]) <= tol)) throw new Error(`${name}[${i}] (gate ${gate[i]}): ${got[i]} vs ${want[i]} (tolerance ${tol})`);
          }
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("rejects bad arguments with clear errors", () => {
    const p = scratch.putF32(new Float32Array(64));
    expect(() => rmsnorm(wasm, p, p, p, 1, 64, 0)).toThrow(/eps must be a finite number > 0/);
    expect(() => rmsnorm(wasm, p, p, p, 1, 0, 1e-5)).toThrow(/dim must be an integer >= 1/);
    expect(() => swiglu(wasm, p + 1, p, p, 4)).toThrow(/not 4-byte aligned/);
    expect(() => swiglu(wasm, p, p, wasm.memory.buffer.byteLength - 8, 4)).toThrow(/outside the/);
    expect(() => rope(wasm, p, 1, 1, tablePtr, 4096)).toThrow(/exceed the table's 4096 positions/);
    expect(() => rope(wasm, p, 1, 1, { ...tablePtr, headDim: 6 }, 0)).toThrow(/multiple of 4/);
  });
});

describe("element-wise twins", () => {
  it("rmsnorm is scale invariant: x·c with eps·c² gives the same output", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 600 }), fc.integer(), fc.double({ min: 0.01, max: 100, noNaN: true }), (dim, seed, c) => {
        const x = values(seed, dim, "gauss", 1);
        const w = values(seed + 1, dim, "gauss", 1);
        const cx = Float32Array.from(x, (v) => v * c);
        const a = new Float32Array(dim);
        const b = new Float32Array(dim);
        rmsnormRef(x, w, a, 1, dim, 1e-5);
        rmsnormRef(cx, w, b, 1, dim, 1e-5 * c * c);
        expectWithin(b, a, 1e-6, 1e-30, "scaled");
      }),
      { numRuns: RUNS },
    );
  });

  it("rmsnorm output has RMS 1 before the weight (eps negligible), and a zero row stays zero", () => {
    const x = values(3, 1280, "gauss", 5);
    const out = new Float32Array(1280);
    rmsnormRef(x, new Float32Array(1280).fill(1), out, 1, 1280, 1e-12);
    const rms = Math.sqrt(out.reduce((s, v) => s + v * v, 0) / 1280);
    expect(rms).toBeCloseTo(1, 6);
    rmsnormRef(new Float32Array(8), new Float32Array(8).fill(1), out, 1, 8, 1e-5);
    expect(Array.from(out.subarray(0, 8))).toEqual(new Array(8).fill(0));
  });

  it("rope preserves each pair's norm and q·k depends only on the position difference", () => {
    const headDim = 64;
    const t = buildRopeTables(headDim, 20000, geometricInvFreq(headDim, 500000));
    fc.assert(
      fc.property(fc.integer(), fc.nat(9000), fc.nat(9000), fc.nat(1000), (seed, p1, p2, shift) => {
        const q = values(seed, headDim, "gauss", 1);
        const k = values(seed + 1, headDim, "gauss", 1);
        const rot = (v: Float32Array, p: number): Float32Array => {
          const c = v.slice();
          ropeRef(c, 1, 1, t, p);
          return c;
        };
        const q1 = rot(q, p1);
        for (let i = 0; i < headDim; i += 2) {
          const before = Math.hypot(q[i], q[i + 1]);
          expect(Math.abs(Math.hypot(q1[i], q1[i + 1]) - before)).toBeLessThanOrEqual(1e-6 * before + 1e-30);
        }
        const dot = (a: Float32Array, b: Float32Array): number => a.reduce((s, v, i) => s + v * b[i], 0);
        const norm = Math.sqrt(dot(q, q) * dot(k, k));
        const d0 = dot(rot(q, p1), rot(k, p2));
        const d1 = dot(rot(q, p1 + shift), rot(k, p2 + shift));
        expect(Math.abs(d0 - d1)).toBeLessThanOrEqual(1e-5 * norm);
        if (p1 === p2) expect(Math.abs(d0 - dot(q, k))).toBeLessThanOrEqual(1e-5 * norm);
      }),
      { numRuns: RUNS },
    );
  });

  it("rope at position 0 is the identity, and the table holds (cos, sin) pairs of p·ω", () => {
    const inv = new Float32Array([1, 0.5, 0.25, 0.125]);
    const t = buildRopeTables(8, 3, inv);
    expect(t.data[2 * 8 + 2 * 1]).toBe(Math.fround(Math.cos(2 * 0.5)));
    expect(t.data[2 * 8 + 2 * 1 + 1]).toBe(Math.fround(Math.sin(2 * 0.5)));
    const x = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
    const y = x.slice();
    ropeRef(y, 1, 1, t, 0);
    expect(Array.from(y)).toEqual(Array.from(x));
    expect(() => buildRopeTables(8, 3, new Float32Array(3))).toThrow(/expected 4 inverse frequencies/);
  });

  it("gelu_tanh is the tanh formula, is 0 at 0, tends to x for large x and to 0 for large -x", () => {
    fc.assert(
      fc.property(fc.float({ min: -30, max: 30, noNaN: true }), (g) => {
        const gate = new Float32Array([g, 0, 40, -40]);
        const out = new Float32Array(4);
        gegluRef(gate, new Float32Array(4).fill(1), out, 4);
        const x = Math.fround(g);
        const tanhForm = 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
        expect(Math.abs(out[0] - tanhForm)).toBeLessThanOrEqual(1e-6 * Math.abs(tanhForm) + 1e-12);
        expect(out[1]).toBe(0);
        expect(out[2]).toBe(40);
        expect(Math.abs(out[3])).toBeLessThan(1e-40);
      }),
      { numRuns: RUNS },
    );
  });

  it("silu behaves: silu(0) = 0, silu(x) - silu(-x) = x, silu(-100) ≈ 0, silu(100) = 100", () => {
    fc.assert(
      fc.property(fc.float({ min: -80, max: 80, noNaN: true }), (g) => {
        const gate = new Float32Array([g, -g, 0, -100, 100]);
        const out = new Float32Array(5);
        swigluRef(gate, new Float32Array(5).fill(1), out, 5);
        expect(Math.abs(out[0] - out[1] - Math.fround(g))).toBeLessThanOrEqual(1e-6 * Math.abs(g) + 1e-30);
        expect(out[2]).toBe(0);
        expect(Math.abs(out[3])).toBeLessThan(1e-40);
        expect(out[4]).toBe(100);
      }),
      { numRuns: RUNS },
    );
  });
});
