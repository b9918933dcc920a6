// Every ggml type a hub GGUF uses, decoded two ways here, against llama.cpp's own gguf Python package
// (gguf.quants.dequantize, an independent decoder), bit for bit in f32:
//   - the values the engine computes with: the rows repacked into the type's layout as the loader does it
//     (writeStoredRows) and read back through the layout's formula (dequantizeRowInto, the embedding lookup);
//   - what the float32 reference and readF32 get (dequantizeGgml).
// Random blocks (fast-check, seeded) with every kind of f16 field (normal, subnormal, ±0, ±65504, the smallest
// normals) and random nibbles, int8, 6-bit scales and mins and high bits; floats with subnormals, -0 and the
// extremes. A NaN or infinite d, m, dmin or element is refused, naming the row and block.
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { f32ToF16Bits } from "../../src/kernels/dtype.js";
import { GGML_BLOCKS, storedLayout, storedRowBytes, type GgmlQuantType, type WeightEncoding } from "../../src/kernels/ggml-blocks.js";
import { allocMatrix, dequantizeRowInto, LAYOUTS } from "../../src/kernels/layout.js";
import { firstBitDifference } from "../../src/kernels/probe.js";
import { writeStoredRows } from "../../src/kernels/repack.js";
import { WasmKernels } from "../../src/kernels/wasm.js";
import { dequantizeGgml } from "../../src/model/checkpoint/ggml-dequantize.js";
import { wasmBytes } from "../../src/node/wasm-files.js";
import { ggufDequantize, ggufPythonAvailable } from "../helpers/gguf-python.js";
import { F16_FIELDS, randomGgmlRows } from "../helpers/ggml-rows.js";
import { gauss, rng } from "../helpers/rng.js";

const QUANT_TYPES = Object.keys(GGML_BLOCKS) as GgmlQuantType[];
const FLOAT_TYPES = ["F32", "F16", "BF16"] as const;
const havePython = ggufPythonAvailable();

interface Case {
  type: WeightEncoding;
  rows: number;
  cols: number;
  bytes: Uint8Array;
}

/** Random floats of `type`: subnormals, ±0, the largest finite values, ordinary values of any scale. */
function randomFloatRows(type: "F32" | "F16" | "BF16", n: number, r: () => number): Uint8Array {
  const f = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const kind = r();
    if (kind < 0.05) f[i] = r() < 0.5 ? 0 : -0;
    else if (kind < 0.1) f[i] = (r() < 0.5 ? -1 : 1) * (type === "F16" ? 65504 : 3.3e38);
    else if (kind < 0.2) f[i] = gauss(r) * (type === "F16" ? 2 ** -20 : 1e-40);
    else f[i] = gauss(r) * 2 ** (Math.floor(r() * 30) - 15);
  }
  if (type === "F32") return new Uint8Array(f.buffer);
  const out = new Uint8Array(2 * n);
  const bits = new Uint32Array(f.buffer);
  for (let i = 0; i < n; i++) {
    const h = type === "F16" ? f32ToF16Bits(f[i]) : bits[i] >>> 16;
    out[2 * i] = h & 0xff;
    out[2 * i + 1] = h >>> 8;
  }
  return out;
}

/** Seeded cases: 1..9 rows of 1..3 blocks (256-value types) or 1..8 blocks (the others) per row. */
function cases(type: WeightEncoding, runs: number, seed: number): Case[] {
  const per = type in GGML_BLOCKS ? GGML_BLOCKS[type as GgmlQuantType].values : 32;
  const arb = fc.record({ rows: fc.integer({ min: 1, max: 9 }), units: fc.integer({ min: 1, max: per === 256 ? 3 : 8 }), seed: fc.integer() });
  return fc.sample(arb, { numRuns: runs, seed }).map(({ rows, units, seed: s }) => {
    const cols = per * units;
    const r = rng(s);
    const bytes = type in GGML_BLOCKS ? randomGgmlRows(type as GgmlQuantType, rows, cols, r) : randomFloatRows(type as "F32", rows * cols, r);
    return { type, rows, cols, bytes };
  });
}

/** The rows as the engine holds them: written into the type's layout, read back row by row. */
function engineValues(k: WasmKernels, c: Case): Float32Array {
  const m = allocMatrix(k, LAYOUTS[storedLayout(c.type)], c.rows, c.cols);
  const src = k.alloc(c.bytes.length, 16);
  k.u8.set(c.bytes, src);
  writeStoredRows(k, m, 0, src, c.rows, c.type);
  const out = new Float32Array(c.rows * c.cols);
  const row = k.alloc(4 * c.cols);
  for (let r = 0; r < c.rows; r++) {
    dequantizeRowInto(k, m, r, row);
    out.set(k.f32.subarray(row >> 2, (row >> 2) + c.cols), r * c.cols);
  }
  return out;
}

describe.skipIf(!havePython)("every ggml type against gguf.quants.dequantize (llama.cpp's Python package), bit for bit", () => {
  const TYPES = [...QUANT_TYPES, ...FLOAT_TYPES];
  const random = new Map(TYPES.map((type) => [type, cases(type, 40, 0x5eed + type.length * 97 + type.charCodeAt(1))]));
  const edges = new Map(QUANT_TYPES.map((type) => [type, edgeCase(type)]));
  let k: WasmKernels;
  /** The package's values for every case, from one python3 run. */
  let want: Map<Case, Float32Array>;
  beforeAll(async () => {
    k = await WasmKernels.create("simd", wasmBytes("simd"));
    const all = [...[...random.values()].flat(), ...edges.values()];
    const values = ggufDequantize(all);
    want = new Map(all.map((c, i) => [c, values[i]]));
  }, 120_000);

  it.each(TYPES)("%s: the engine's layout and the reference's decoder both give the package's values", (type) => {
    random.get(type)!.forEach((c, i) => {
      const expected = want.get(c)!;
      expect(expected.length).toBe(c.rows * c.cols);
      const got = engineValues(k, c);
      const at = firstBitDifference(got, expected);
      expect(at < 0 ? "same" : `${type} case ${i}: value ${at} is ${got[at]}, gguf gives ${expected[at]}`).toBe("same");
      if (type in GGML_BLOCKS) {
        const decoded = new Float32Array(c.rows * c.cols);
        dequantizeGgml(type as GgmlQuantType, c.bytes, decoded);
        expect(firstBitDifference(decoded, expected)).toBe(-1);
      }
    });
  });

  it.each(QUANT_TYPES)("%s: all-zero blocks, -0 and subnormal scales, and the extremes, value for value", (type) => {
    const c = edges.get(type)!;
    expect(firstBitDifference(engineValues(k, c), want.get(c)!)).toBe(-1);
  });
});

/** Six blocks: all zero; then d (and m, dmin) -0, the smallest subnormal, -(largest subnormal), ±65504, the rest all ones or a pattern. */
function edgeCase(type: GgmlQuantType): Case {
  const { values, bytes } = GGML_BLOCKS[type];
  const rows = 6;
  const raw = new Uint8Array(rows * bytes);
  const halves = [0x0000, 0x8000, 0x0001, 0x83ff, 0x7bff, 0xfbff];
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < bytes; i++) raw[r * bytes + i] = r === 0 ? 0 : r % 2 === 0 ? 0xff : (i * 37 + r) & 0xff;
    for (const o of F16_FIELDS[type]) {
      raw[r * bytes + o] = halves[r] & 0xff;
      raw[r * bytes + o + 1] = halves[r] >>> 8;
    }
  }
  return { type, rows, cols: values, bytes: raw };
}

describe("NaN and infinity in a block or a float row are refused, naming the row and block", () => {
  let k: WasmKernels;
  beforeAll(async () => {
    k = await WasmKernels.create("simd", wasmBytes("simd"));
  });

  it.each(QUANT_TYPES.flatMap((type) => F16_FIELDS[type].flatMap((o) => [0x7c00, 0xfc00, 0x7e00].map((h) => ({ type, o, h })))))(
    "$type: the f16 field at byte $o set to 0x$h",
    ({ type, o, h }) => {
      const { values, bytes } = GGML_BLOCKS[type];
      const cols = 2 * values;
      const raw = randomGgmlRows(type, 3, cols, rng(7));
      // Row 2, block 1.
      const at = (2 * 2 + 1) * bytes + o;
      raw[at] = h & 0xff;
      raw[at + 1] = h >>> 8;
      const m = allocMatrix(k, LAYOUTS[storedLayout(type)], 3, cols);
      const src = k.alloc(raw.length, 16);
      k.u8.set(raw, src);
      const message = new RegExp(`^tensor w: row 12, block 1: the ${type} \\w+ is (NaN|-?Infinity)`);
      expect(() => writeStoredRows(k, m, 0, src, 3, type, { source: { name: "tensor w", row0: 10 } })).toThrow(
        type === "Q4_0" ? /^tensor w: row 12, block 1: the Q4_0 scale is/ : message,
      );
      expect(() => dequantizeGgml(type, raw, new Float32Array(3 * cols))).toThrow(/row 0, block 5|block 5/);
    },
  );

  it.each(FLOAT_TYPES)("%s: a NaN or infinite element", (type) => {
    for (const bad of [NaN, Infinity, -Infinity]) {
      const cols = 64;
      const f = new Float32Array(2 * cols).fill(1);
      f[cols + 5] = bad;
      const bytes = type === "F32" ? new Uint8Array(f.buffer) : new Uint8Array(new Uint16Array(Array.from(f, (x) => (type === "F16" ? f32ToF16Bits(x) : new Uint32Array(Float32Array.of(x).buffer)[0] >>> 16))).buffer);
      expect(bytes.length).toBe(2 * storedRowBytes(type, cols));
      const m = allocMatrix(k, LAYOUTS[storedLayout(type)], 2, cols);
      const src = k.alloc(bytes.length, 16);
      k.u8.set(bytes, src);
      expect(() => writeStoredRows(k, m, 0, src, 2, type, { source: { name: "tensor w", row0: 0 } })).toThrow(/^tensor w: row 1 contains NaN\/Inf at column 5/);
    }
  });
});
