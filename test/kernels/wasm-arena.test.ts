import { wasmBytes } from "../../src/node/wasm-files.js";
import { describe, expect, it } from "vitest";
import { WasmKernels } from "../../src/kernels/wasm.js";

describe("wasm arena", () => {
  it("hands out aligned, non-overlapping blocks above the static data", async () => {
    const k = await WasmKernels.create("simd", wasmBytes("simd"));
    const a = k.alloc(100);
    const b = k.alloc(3, 16);
    const c = k.alloc(70000);
    expect(a).toBeGreaterThanOrEqual(k.exports.heap_base());
    expect(a % 64).toBe(0);
    expect(b % 16).toBe(0);
    expect(b).toBeGreaterThanOrEqual(a + 100);
    expect(c).toBeGreaterThanOrEqual(b + 3);
    expect(k.memory.buffer.byteLength).toBeGreaterThanOrEqual(c + 70000);
  });

  it("re-derives views after memory.grow", async () => {
    const k = await WasmKernels.create("simd", wasmBytes("simd"));
    const p = k.alloc(16);
    k.f32[p >> 2] = 1.5;
    const before = k.f32;
    k.alloc(4 << 20);
    expect(k.f32 === before).toBe(false);
    expect(before.byteLength).toBe(0); // the old view is detached
    expect(k.f32[p >> 2]).toBe(1.5);
    expect(k.f32.length * 4).toBe(k.memory.buffer.byteLength);
  });

  it("refuses more than the 4 GiB wasm32 limit with a clear error", async () => {
    const k = await WasmKernels.create("simd", wasmBytes("simd"));
    expect(() => k.alloc(5 * 2 ** 30)).toThrow(/4 GiB wasm32 limit/);
  });
});
