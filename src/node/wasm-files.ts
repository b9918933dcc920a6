// The kernel builds on disk (build/*.wasm, written by `npm run build:wasm`) and Node 20's switch for
// relaxed SIMD.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { setFlagsFromString } from "node:v8";
import type { WasmVariant } from "../kernels/wasm.js";

/**
 * Finds `build/<variant>.wasm` (or `build/<variant>-shared.wasm`, the build importing a shared memory for
 * worker threads) from either `src/node` (tests, tsx) or `dist/src/node` (the installed package).
 */
export function wasmPath(variant: WasmVariant, shared = false): string {
  const file = `${variant}${shared ? "-shared" : ""}.wasm`;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, "build", file);
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  throw new Error(`build/${file} not found: run "npm run build:wasm" first`);
}

export function wasmBytes(variant: WasmVariant, shared = false): Uint8Array<ArrayBuffer> {
  return readFileSync(wasmPath(variant, shared));
}

/** Both builds, of the shared-memory kind when `shared`. */
export function kernelBytes(shared = false): Record<WasmVariant, Uint8Array> {
  return { simd: wasmBytes("simd", shared), relaxed: wasmBytes("relaxed", shared) };
}

/**
 * Node 20 (V8 11.3) validates relaxed SIMD only with --experimental-wasm-relaxed-simd, which NODE_OPTIONS
 * refuses but v8.setFlagsFromString accepts before the module is compiled. Later Node versions validate the
 * build without it, and then this is never called.
 */
export function enableRelaxedSimd(): void {
  setFlagsFromString("--experimental-wasm-relaxed-simd");
}
