// The Wasm module's exports: one line per kernel file. Kernels take raw pointers and never allocate.
// Their TypeScript signatures are declared once, in src/kernels/exports.ts (checked at instantiation).
export { heap_base } from "./memory";
export * from "./matmul";
export * from "./matmul-i8b";
export * from "./matmul-float";
export * from "./attention";
export * from "./elementwise";
export * from "./quantize";
export * from "./repack";
