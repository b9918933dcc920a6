// A bump region of Wasm memory for one property run, reset between runs so the arena does not grow
// without bound. Blocks are 64-byte aligned with a 64-byte gap after each, so a kernel that writes past
// its output lands in the gap instead of in the next operand.
import type { WasmKernels } from "../../src/kernels/wasm.js";

export class Scratch {
  private top = 0;
  private constructor(readonly wasm: WasmKernels, readonly base: number, readonly size: number) {}

  static create(wasm: WasmKernels, size: number): Scratch {
    return new Scratch(wasm, wasm.alloc(size), size);
  }

  take(bytes: number): number {
    const p = this.base + this.top;
    this.top += Math.ceil(bytes / 64) * 64 + 64;
    if (this.top > this.size) throw new Error("test scratch exhausted");
    return p;
  }

  putF32(values: Float32Array): number {
    const p = this.take(values.byteLength);
    this.wasm.f32.set(values, p >> 2);
    return p;
  }

  get(ptr: number, n: number): Float32Array {
    return this.wasm.f32.slice(ptr >> 2, (ptr >> 2) + n);
  }

  reset(): void {
    this.top = 0;
  }
}
