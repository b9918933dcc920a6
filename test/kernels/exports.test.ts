// The Wasm exports against their one TypeScript declaration (src/kernels/exports.ts), and the naming scheme
// from export to wrapper to twin: Wasm `op_name`, checked wrapper `opName`, scalar twin `opNameRef`.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import * as attention from "../../src/kernels/attention.js";
import * as elementwise from "../../src/kernels/elementwise.js";
import * as quantize from "../../src/kernels/quantize.js";
import * as repack from "../../src/kernels/repack.js";
import { checkExports, WASM_EXPORT_ARITY } from "../../src/kernels/exports.js";
import * as matmul from "../../src/kernels/matmul.js";
import * as matmulI8b from "../../src/kernels/matmul-i8b.js";
import * as matmulFloat from "../../src/kernels/matmul-float.js";
import * as numerics from "../../src/kernels/numerics.js";
import { acceptsRelaxedSimd, MAX_PAGES, WasmKernels, type WasmVariant } from "../../src/kernels/wasm.js";
import { enableRelaxedSimd, wasmBytes } from "../../src/node/wasm-files.js";

const BUILDS: Array<{ variant: WasmVariant; shared: boolean }> = [
  { variant: "simd", shared: false },
  { variant: "relaxed", shared: false },
  { variant: "simd", shared: true },
  { variant: "relaxed", shared: true },
];
const DECLARED = Object.keys(WASM_EXPORT_ARITY).sort();
/** Exports that serve the loader or the activations' layout, not a wrapper of their own. */
const UNWRAPPED = ["heap_base", "kernel_variant", "prepare_activations", "prepare_activations_i8b"];
/** Exports with a checked wrapper but no twin: a row copy and a memory-read probe compute nothing to mirror. */
const NO_TWIN = ["read_bandwidth", "copy_rows"];

describe("Wasm exports", () => {
  expect(acceptsRelaxedSimd(wasmBytes("relaxed"), enableRelaxedSimd)).toBe(true);

  it.each(BUILDS)("the $variant build (shared: $shared) exports exactly the declared functions, with their arity", async ({ variant, shared }) => {
    const module = await WebAssembly.compile(wasmBytes(variant, shared));
    const exported = WebAssembly.Module.exports(module);
    expect(exported.filter((e) => e.kind !== "function")).toEqual([{ name: "memory", kind: "memory" }]);
    expect(exported.filter((e) => e.kind === "function").map((e) => e.name).sort()).toEqual(DECLARED);
    const memory = new WebAssembly.Memory(shared ? { initial: 1, maximum: MAX_PAGES, shared: true } : { initial: 1 });
    const { exports } = await WebAssembly.instantiate(module, { env: { memory } });
    for (const [name, arity] of Object.entries(WASM_EXPORT_ARITY)) {
      expect([name, (exports[name] as (...args: number[]) => unknown).length]).toEqual([name, arity]);
    }
  });

  it("a module whose export is missing or takes other parameters is refused with the export's name", async () => {
    const { exports } = await WasmKernels.create("simd", wasmBytes("simd"));
    const { gemv_il4_i8t: _gemv, ...withoutGemv } = exports;
    expect(() => checkExports(withoutGemv)).toThrow(/^Wasm module lacks export gemv_il4_i8t: rebuild/);
    expect(() => checkExports({ ...exports, kv_store: (a: number) => a })).toThrow(
      /^Wasm export kv_store takes 1 parameters, src\/kernels\/exports.ts declares 7/,
    );
    expect(checkExports({ ...exports })).toBeTruthy();
  });

  it("every export but the listed few has a wrapper named in camelCase and a twin with Ref appended", () => {
    const modules: Record<string, unknown> = { ...matmul, ...matmulI8b, ...matmulFloat, ...attention, ...elementwise, ...quantize, ...repack };
    for (const name of DECLARED) {
      const wrapper = name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
      const found = [typeof modules[wrapper], typeof modules[`${wrapper}Ref`]];
      const want = UNWRAPPED.includes(name) ? ["undefined", "undefined"] : NO_TWIN.includes(name) ? ["function", "undefined"] : ["function", "function"];
      expect([name, ...found]).toEqual([name, ...want]);
    }
  });
});

describe("numerics shared with AssemblyScript", () => {
  it("holds only plain numeric literals, which AssemblyScript reads as TypeScript does", () => {
    // The kernels import these constants from the same file; an expression (2 ** -23 is integer arithmetic,
    // 0, in AssemblyScript) or a type annotation would compile differently on the two sides or not at all.
    const source = readFileSync(new URL("../../src/kernels/numerics.ts", import.meta.url), "utf8");
    const constants = [...source.matchAll(/^export const (\w+)(.*);$/gm)];
    expect(constants.map((m) => m[1]).sort()).toEqual(
      Object.keys(numerics).filter((k) => typeof (numerics as Record<string, unknown>)[k] === "number").sort(),
    );
    for (const [, name, rest] of constants) expect([name, rest]).toEqual([name, expect.stringMatching(/^ = -?\d+(\.\d+)?(e-?\d+)?$/)]);
    expect(numerics.SCALE_MIN).toBe(2 ** -23);
    expect(Math.fround(numerics.SCALE_MIN)).toBe(numerics.SCALE_MIN);
  });
});
