// The Wasm repack kernels (assembly/repack.ts) against their twins: a llama.cpp file's rows of each stored type
// written into the layout of the type by the kernel hold the same bytes as the twin's logical form written by
// writeBlockRows / writeFloatRows, at any row offset and with a partial last block; a NaN or infinite field is
// refused, and the error (the twin's) names the row and block. What the values mean is held to llama.cpp's own
// decoder in test/checkpoint/ggml-dequantize.test.ts.
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { f32ToF16Bits } from "../../src/kernels/dtype.js";
import { GGML_BLOCKS, storedLayout, storedRowBytes, type GgmlQuantType, type WeightEncoding } from "../../src/kernels/ggml-blocks.js";
import { allocMatrix, LAYOUTS, regionBytes, type WeightMatrix } from "../../src/kernels/layout.js";
import * as repack from "../../src/kernels/repack.js";
import { writeBlockRows, writeFloatRows } from "../../src/kernels/repack.js";
import { WasmKernels, acceptsRelaxedSimd, type WasmVariant } from "../../src/kernels/wasm.js";
import { enableRelaxedSimd, wasmBytes } from "../../src/node/wasm-files.js";
import { randomGgmlRows } from "../helpers/ggml-rows.js";
import { gauss, rng } from "../helpers/rng.js";

const VARIANTS: WasmVariant[] = acceptsRelaxedSimd(wasmBytes("relaxed"), enableRelaxedSimd) ? ["simd", "relaxed"] : ["simd"];
const TYPES: Array<Exclude<WeightEncoding, "Q4_0">> = ["Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q4_K", "Q5_K", "Q6_K", "F32", "F16", "BF16"];
const name = (t: string) => t.replace("_K", "K").replace("BF16", "Bf16");
type Fn = (...a: unknown[]) => unknown;
const fns = repack as unknown as Record<string, Fn>;

function randomRows(type: WeightEncoding, rows: number, cols: number, r: () => number): Uint8Array {
  if (type in GGML_BLOCKS) return randomGgmlRows(type as GgmlQuantType, rows, cols, r);
  const spread = type === "F16" ? 24 : 40;
  const f = Float32Array.from({ length: rows * cols }, () => (r() < 0.05 ? -0 : gauss(r) * 2 ** (Math.floor(r() * spread) - spread / 2)));
  if (type === "F32") return new Uint8Array(f.buffer);
  const bits = new Uint32Array(f.buffer);
  return new Uint8Array(Uint16Array.from(f, (x, i) => (type === "F16" ? f32ToF16Bits(x) : bits[i] >>> 16)).buffer);
}

function regions(k: WasmKernels, m: WeightMatrix): Uint8Array[] {
  const b = regionBytes(m.layout, m.rows, m.cols);
  return [k.u8.slice(m.valuesPtr, m.valuesPtr + b.values), k.u8.slice(m.scalesPtr, m.scalesPtr + b.scales), k.u8.slice(m.auxPtr, m.auxPtr + b.aux)];
}

describe.each(VARIANTS)("the repack kernels, %s build", (variant) => {
  let k: WasmKernels;
  beforeAll(async () => {
    k = await WasmKernels.create(variant, wasmBytes(variant));
  });

  it.each(TYPES)("%s: the kernel writes the twin's values, at any row offset, padding rows untouched", (type) => {
    const per = type in GGML_BLOCKS ? GGML_BLOCKS[type as GgmlQuantType].values : 32;
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 11 }), fc.integer({ min: 0, max: 5 }), fc.integer({ min: 1, max: 3 }), fc.integer(), (rows, row0, units, seed) => {
        const cols = per * units;
        const bytes = randomRows(type, rows, cols, rng(seed));
        const layout = LAYOUTS[storedLayout(type)];
        const total = row0 + rows + (seed & 3);
        const got = allocMatrix(k, layout, total, cols);
        const want = allocMatrix(k, layout, total, cols);
        const src = k.alloc(bytes.length, 16);
        k.u8.set(bytes, src);
        fns[`repack${name(type)}`](k, got, row0, src, rows);
        const twin = fns[`repack${name(type)}Ref`](bytes, rows, cols) as never;
        if (layout.scaleType === null) writeFloatRows(k, want, row0, twin);
        else writeBlockRows(k, want, row0, twin);
        expect(regions(k, got)).toEqual(regions(k, want));
      }),
      { numRuns: 30 },
    );
  });

  it.each(TYPES)("%s: a row holding NaN or infinity is refused with the row (and block) named", (type) => {
    const per = type in GGML_BLOCKS ? GGML_BLOCKS[type as GgmlQuantType].values : 32;
    const cols = 2 * per;
    const bytes = randomRows(type, 3, cols, rng(5));
    const rowBytes = storedRowBytes(type, cols);
    // Row 1's second block (or element) made infinite: d's f16 bits, or the element's exponent all ones.
    const at =
      type in GGML_BLOCKS
        ? rowBytes + GGML_BLOCKS[type as GgmlQuantType].bytes + (type === "Q6_K" ? 208 : 0)
        : rowBytes + (type === "F32" ? 4 * 33 : 2 * 33);
    if (type === "F32") bytes.set([0, 0, 0x80, 0x7f], at);
    else bytes.set([0, 0x7c], at);
    if (type === "BF16") bytes.set([0x80, 0x7f], at);
    const m = allocMatrix(k, LAYOUTS[storedLayout(type)], 3, cols);
    const src = k.alloc(bytes.length, 16);
    k.u8.set(bytes, src);
    const message = type in GGML_BLOCKS ? /^tensor t: row 8, block 1: the \w+ d is Infinity/ : /^tensor t: row 8 contains NaN\/Inf at column 33/;
    expect(() => fns[`repack${name(type)}`](k, m, 0, src, 3, { source: { name: "tensor t", row0: 7 } })).toThrow(message);
  });
});
