// Build selection (--simd baseline|relaxed|auto). Runs in its own forked process (vitest pool: forks), so
// the V8 flags set here affect only this file; the tier flags are set right before the compiles they target.
import { NODE_KERNELS } from "../helpers/node-kernels.js";
import { setFlagsFromString } from "node:v8";
import { describe, expect, it } from "vitest";
import { f16BitsToF32, f32ToF16Bits } from "../../src/kernels/dtype.js";
import { Int8Activations, repackInt4 } from "../../src/kernels/layout.js";
import type { WasmExports } from "../../src/kernels/exports.js";
import { gemm, setActivations } from "../../src/kernels/matmul.js";
import { firstBitDifference, probeMatmul } from "../../src/kernels/probe.js";
import { acceptsRelaxedSimd, loadKernels, WasmKernels } from "../../src/kernels/wasm.js";
import { enableRelaxedSimd, wasmBytes } from "../../src/node/wasm-files.js";

const relaxedOk = acceptsRelaxedSimd(wasmBytes("relaxed"), enableRelaxedSimd);

/** k with its gemm export replaced: how a miscompiled relaxed op would look from the outside. */
function withGemm(k: WasmKernels, gemm: WasmExports["gemm_il4_i8t"]): WasmKernels {
  const exports = { ...k.exports, gemm_il4_i8t: gemm };
  return Object.create(k, { exports: { value: exports } }) as WasmKernels;
}

describe("--simd selection", () => {
  it("baseline always runs the SIMD128 build, without probing", async () => {
    let probed = false;
    const r = await loadKernels("baseline", () => ((probed = true), null), NODE_KERNELS);
    expect(r.variant).toBe("simd");
    expect(r.reason).toMatch(/forced by --simd baseline/);
    expect(r.kernels.exports.kernel_variant()).toBe(0);
    expect(probed).toBe(false);
  });

  it("auto picks relaxed on this engine only because the probe passed", async () => {
    expect(relaxedOk).toBe(true); // Node 20 with the flag set from inside the process (probe §2)
    const r = await loadKernels("auto", probeMatmul, NODE_KERNELS);
    expect(r.variant).toBe("relaxed");
    expect(r.reason).toMatch(/start-up probe matched/);
    expect(r.kernels.exports.kernel_variant()).toBe(1);
  });

  it("auto falls back to SIMD128 and says why when the probe fails; forced relaxed throws", async () => {
    const probe = (): string => "gemm: y[0] = -8, expected 96";
    const r = await loadKernels("auto", probe, NODE_KERNELS);
    expect(r.variant).toBe("simd");
    expect(r.kernels.exports.kernel_variant()).toBe(0);
    expect(r.reason).toMatch(/relaxed SIMD computes wrong results.*y\[0\] = -8, expected 96/);
    await expect(loadKernels("relaxed", probe, NODE_KERNELS)).rejects.toThrow(/--simd relaxed: .*wrong results/);
  });

  it("auto falls back when the engine rejects the relaxed module", async () => {
    const notWasm = new Uint8Array([0, 97, 115, 109, 9, 9, 9, 9]);
    const r = await loadKernels("auto", probeMatmul, { ...NODE_KERNELS, bytes: { ...NODE_KERNELS.bytes, relaxed: notWasm } });
    expect(r.variant).toBe("simd");
    expect(r.reason).toMatch(/does not accept relaxed SIMD/);
  });

  it("the default probe catches a kernel that doubles its result (the Liftoff relaxed-dot bug's symptom)", async () => {
    const k = await WasmKernels.create("relaxed", wasmBytes("relaxed"));
    expect(probeMatmul(k)).toBeNull();
    const real = k.exports.gemm_il4_i8t;
    const doubled = withGemm(k, (...args) => {
      real(...args);
      const [, , , rows, , tokens, , , , , , y] = args;
      const f = k.f32;
      for (let i = 0; i < rows * tokens; i++) f[(y >> 2) + i] *= 2;
    });
    expect(probeMatmul(doubled)).toMatch(/^gemm: y\[\d+\] = /);
  });
});

describe("results identical across builds", () => {
  it("gemm on a model-sized row block: 9 rows x 1280, 6 tokens", async () => {
    const rows = 9;
    const cols = 1280;
    const q = Int8Array.from({ length: rows * cols }, (_, i) => ((i * 2654435761) >>> 28) - 8);
    const scales = Float32Array.from({ length: (rows * cols) / 32 }, (_, i) => f16BitsToF32(f32ToF16Bits(0.01 + (i % 7) * 0.003))); // f16 values, as il4 stores them
    const x = {
      tokens: 6, cols,
      q: Int8Array.from({ length: 6 * cols }, (_, i) => ((i * 40503) & 255) - 128),
      scale: Float32Array.from([0.1, 0.2, 0.05, 1, 0.3, 0.02]),
      zero: Int32Array.from([-128, 127, 0, 5, -7, 64]),
    };
    const run = async (variant: "simd" | "relaxed"): Promise<Float32Array> => {
      const k = variant === "simd" ? (await loadKernels("baseline", probeMatmul, NODE_KERNELS)).kernels : (await loadKernels("relaxed", probeMatmul, NODE_KERNELS)).kernels;
      const m = repackInt4(k, { rows, cols, q, scales });
      const act = Int8Activations.alloc(k, x.tokens, cols);
      setActivations(k, act, x);
      const y = k.alloc(4 * rows * x.tokens);
      for (let rep = 0; rep < 200; rep++) gemm(k, m, act, y); // long enough for V8 to tier up
      return k.f32.slice(y >> 2, (y >> 2) + rows * x.tokens);
    };
    const a = await run("simd");
    const b = await run("relaxed");
    expect(firstBitDifference(a, b)).toBe(-1);
    expect(a.some((v) => v !== 0)).toBe(true);
  });
});

/** Appends a custom section so V8's native-module cache (keyed by the bytes) cannot hand back code compiled by another tier. */
function tagged(bytes: Uint8Array, tag: string): Uint8Array<ArrayBuffer> {
  const name = new TextEncoder().encode(tag);
  return new Uint8Array([...bytes, 0, name.length + 1, name.length, ...name]);
}

/**
 * A one-function module computing lane 0 of i32x4.relaxed_dot_i8x16_i7x16_add_s(splat a, splat b, splat c):
 * 4ab + c by the spec, 8ab under Node 20's Liftoff bug. It shows which tier actually compiled the code.
 */
const CANARY = new Uint8Array([
  0, 0x61, 0x73, 0x6d, 1, 0, 0, 0,
  1, 8, 1, 0x60, 3, 0x7f, 0x7f, 0x7f, 1, 0x7f, // type (i32, i32, i32) -> i32
  3, 2, 1, 0, // one function
  7, 5, 1, 1, 0x74, 0, 0, // export "t"
  10, 22, 1, 20, 0,
  0x20, 0, 0xfd, 0x0f, 0x20, 1, 0xfd, 0x0f, 0x20, 2, 0xfd, 0x11, // splat a, splat b, splat c
  0xfd, 0x93, 0x02, 0xfd, 0x1b, 0, 0x0b, // relaxed_dot_add, extract_lane 0
]);

describe("both V8 tiers compute the kernels correctly", () => {
  // The start-up probe runs in whichever tier V8 starts with (Liftoff); pin each tier explicitly here.
  // Liftoff first: after --no-liftoff this process keeps optimizing eagerly.
  it.each([
    ["Liftoff only", ["--liftoff", "--no-wasm-tier-up"], -8],
    ["TurboFan only", ["--no-liftoff"], 96],
  ] as const)("%s", async (name, flags, canaryResult) => {
    for (const f of flags) setFlagsFromString(f);
    try {
      const canary = await WebAssembly.instantiate(await WebAssembly.compile(tagged(CANARY, name)));
      const t = canary.exports.t as (a: number, b: number, c: number) => number;
      expect(t(-1, 1, 100)).toBe(canaryResult); // proves the flags picked the tier
      for (const variant of ["simd", "relaxed"] as const) {
        const k = await WasmKernels.create(variant, await WebAssembly.compile(tagged(wasmBytes(variant), name)));
        expect(probeMatmul(k)).toBeNull();
      }
    } finally {
      setFlagsFromString("--liftoff");
      setFlagsFromString("--wasm-tier-up");
    }
  });
});
