// Argument checks shared by the kernel wrappers. A kernel handed a bad pointer or size would read or
// write the wrong bytes silently, so the wrappers refuse anything they cannot prove in bounds.
import type { WasmKernels } from "./wasm.js";

export function requireCount(fn: string, name: string, value: number, min = 0): void {
  if (!Number.isInteger(value) || value < min) {
    throw new RangeError(`${fn}: ${name} must be an integer >= ${min}, got ${value}`);
  }
}

/** [ptr, ptr + bytes) must be an `alignment`-aligned region inside the Wasm memory. */
export function requireRegion(wasm: WasmKernels, fn: string, name: string, ptr: number, bytes: number, alignment = 4): void {
  if (!Number.isInteger(ptr) || ptr < 0) throw new RangeError(`${fn}: ${name} pointer ${ptr} is not a valid address`);
  if (ptr % alignment !== 0) throw new RangeError(`${fn}: ${name} pointer ${ptr} is not ${alignment}-byte aligned`);
  const size = wasm.memory.buffer.byteLength;
  if (ptr + bytes > size) {
    throw new RangeError(`${fn}: ${name} [${ptr}, ${ptr + bytes}) lies outside the Wasm memory (${size} bytes)`);
  }
}

/** Tokens [first, first + count) must lie inside the `tokens` an activation buffer holds. */
export function requireTokens(fn: string, held: number, first: number, count: number): void {
  if (!Number.isInteger(first) || !Number.isInteger(count) || first < 0 || count < 1 || first + count > held) {
    throw new RangeError(`${fn}: tokens [${first}, ${first + count}) outside the ${held} held by the activations`);
  }
}
