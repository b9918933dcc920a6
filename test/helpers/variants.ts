// The Wasm builds this engine can run: always the SIMD128 build, plus the relaxed-SIMD build where the
// engine validates it. Node 20 runs relaxed SIMD only behind a V8 flag, which must be set before anything
// compiles (`--experimental-wasm-relaxed-simd` is refused in NODE_OPTIONS; v8.setFlagsFromString works).
import { setFlagsFromString } from "node:v8";
import { type WasmVariant } from "../../src/kernels/wasm.js";
import { wasmBytes } from "../../src/node/wasm-files.js";

setFlagsFromString("--experimental-wasm-relaxed-simd");

export const VARIANTS: WasmVariant[] = WebAssembly.validate(wasmBytes("relaxed")) ? ["simd", "relaxed"] : ["simd"];
