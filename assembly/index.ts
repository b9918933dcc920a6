// The Wasm module's exports: one line per kernel file. Kernels take raw pointers and never allocate.
export { heapBase } from "./memory";
export * from "./matmul";
export * from "./attention";
export * from "./elementwise";
export * from "./quantize";
