// The kernel module's exports (assembly/index.ts), declared once for TypeScript. Names: the Wasm export is
// snake_case `op`, its checked TypeScript wrapper camelCase `op`, and the wrapper's scalar twin `opRef`
// (kv_store / kvStore / kvStoreRef). Exports without a wrapper serve the loader, the thread pool or the
// benchmarks. Pointers are byte offsets into the Wasm memory; i32 and f32 arguments are plain numbers.

type GemvI8b = (
  wq: number, ws: number, wm: number, rows: number, cols: number,
  xq: number, xw: number, xcorr: number, xs: number, xsum: number, y: number,
) => void;
type GemmI8b = (
  wq: number, ws: number, wm: number, rows: number, cols: number, tokens: number,
  xq: number, xw: number, xcorr: number, xs: number, xsum: number, y: number, ldy: number,
) => void;
type GemvF32 = (w: number, rows: number, cols: number, x: number, y: number) => void;
type GemmF32 = (w: number, rows: number, cols: number, tokens: number, x: number, y: number, ldy: number) => void;

type RepackBlocks = (src: number, rows: number, cols: number, row0: number, values: number, scales: number, mins: number) => number;
type RepackFloats = (src: number, rows: number, cols: number, row0: number, values: number) => number;

export interface WasmExports {
  /** Where the module's static data ends: the arena starts above it (wasm.ts). */
  heap_base(): number;
  /** 1 in the relaxed-SIMD build, 0 in the baseline SIMD128 build. */
  kernel_variant(): number;

  // assembly/matmul.ts and quant-act.ts: il4 x i8t; operand layouts: WeightLayout il4, Int8Activations (layout.ts)
  gemv_il4_i8t(
    wq: number, ws: number, wsum: number, rows: number, cols: number,
    xq: number, xw: number, xcorr: number, xs: number, xz: number, y: number,
  ): void;
  /** Y[t][r] at y + 4·(t·ldy + r): ldy = rows for a whole product, larger for a thread's block of rows. */
  gemm_il4_i8t(
    wq: number, ws: number, wsum: number, rows: number, cols: number, tokens: number,
    xq: number, xw: number, xcorr: number, xs: number, xz: number, y: number, ldy: number,
  ): void;
  quantize_activations(
    x: number, tokens: number, cols: number, xq: number, xw: number, xcorr: number, xs: number, xz: number,
  ): void;
  /** Derives the widened copy and the group corrections from already-quantized activations. */
  prepare_activations(tokens: number, cols: number, xq: number, xw: number, xcorr: number): void;

  // assembly/matmul-i8b.ts: the q4_0 ... q6_k layouts x i8b (Int8BlockActivations); wm unused without a min
  gemv_q4_0_i8b: GemvI8b;
  gemm_q4_0_i8b: GemmI8b;
  gemv_q4_1_i8b: GemvI8b;
  gemm_q4_1_i8b: GemmI8b;
  gemv_q4_k_i8b: GemvI8b;
  gemm_q4_k_i8b: GemmI8b;
  gemv_q8_0_i8b: GemvI8b;
  gemm_q8_0_i8b: GemmI8b;
  gemv_q5_0_i8b: GemvI8b;
  gemm_q5_0_i8b: GemmI8b;
  gemv_q5_1_i8b: GemvI8b;
  gemm_q5_1_i8b: GemmI8b;
  gemv_q5_k_i8b: GemvI8b;
  gemm_q5_k_i8b: GemmI8b;
  gemv_q6_k_i8b: GemvI8b;
  gemm_q6_k_i8b: GemmI8b;
  quantize_activations_i8b(
    x: number, tokens: number, cols: number, xq: number, xw: number, xcorr: number, xs: number, xsum: number,
  ): void;
  /** Derives the widened copy, the correction words and the block sums from already-quantized activations. */
  prepare_activations_i8b(tokens: number, cols: number, xq: number, xw: number, xcorr: number, xsum: number): void;

  // assembly/matmul-float.ts: the f32, f16 and bf16 layouts x f32 activations
  gemv_f32_f32: GemvF32;
  gemm_f32_f32: GemmF32;
  gemv_f16_f32: GemvF32;
  gemm_f16_f32: GemmF32;
  gemv_bf16_f32: GemvF32;
  gemm_bf16_f32: GemmF32;

  /** Streams `bytes` from ptr: the memory roofline the GEMV figures are compared with. */
  read_bandwidth(ptr: number, bytes: number): number;
  /** `count` rows of `rowBytes` from src (stride srcStride) to dst (stride dstStride): a worker's commit. */
  copy_rows(dst: number, dstStride: number, src: number, srcStride: number, rowBytes: number, count: number): void;
  /** Returns -1, or the index (within the call) of the first row it refused. */
  quantize_rows(
    src: number, dtype: number, rows: number, cols: number, row0: number,
    qs: number, scales: number, wsum: number,
  ): number;
  /** Returns -1, or the index (within the call) of the first row with a non-finite scale. */
  repack_q4_0(src: number, rows: number, cols: number, row0: number, qs: number, scales: number, wsum: number): number;
  /** Returns -1, or the index (within the call) of the first row it refused. */
  quantize_rows_q4_0(src: number, dtype: number, rows: number, cols: number, out: number): number;

  // assembly/repack.ts: a llama.cpp file's rows into the layout of their type; -1, or the first row refused
  repack_q4_1: RepackBlocks;
  repack_q5_0: RepackBlocks;
  repack_q5_1: RepackBlocks;
  repack_q8_0: RepackBlocks;
  repack_q4_k: RepackBlocks;
  repack_q5_k: RepackBlocks;
  repack_q6_k: RepackBlocks;
  repack_f32: RepackFloats;
  repack_f16: RepackFloats;
  repack_bf16: RepackFloats;

  // assembly/attention.ts; layouts: KvCacheLayer and the attention state (attention.ts)
  kv_store(src: number, kvHeads: number, headDim: number, data: number, scales: number, slots: number, slot: number): void;
  attention_reset(state: number, nq: number, headDim: number): void;
  attention_rows(
    q: number, qStride: number, rows: number, nq: number, headDim: number, k: number, kScales: number, v: number, vScales: number,
    slots: number, pos0: number, window: number, scaleFactor: number, state: number,
  ): void;
  attention_finalize(state: number, nq: number, headDim: number, out: number): void;

  // assembly/elementwise.ts
  rmsnorm(x: number, w: number, out: number, rows: number, dim: number, eps: number): void;
  rope(x: number, rows: number, nHeads: number, headDim: number, table: number, pos0: number): void;
  swiglu(gate: number, up: number, out: number, n: number): void;
  geglu(gate: number, up: number, out: number, n: number): void;
  add_into(dst: number, src: number, n: number): void;
}

/**
 * Every export's parameter count, typed from WasmExports (an entry that disagrees with the declaration, or a
 * missing one, is a type error), so the module can be checked against the declaration when it is loaded.
 */
export const WASM_EXPORT_ARITY: { readonly [K in keyof WasmExports]: Parameters<WasmExports[K]>["length"] } = {
  heap_base: 0,
  kernel_variant: 0,
  gemv_il4_i8t: 11,
  gemm_il4_i8t: 13,
  quantize_activations: 8,
  prepare_activations: 5,
  gemv_q4_0_i8b: 11,
  gemm_q4_0_i8b: 13,
  gemv_q4_1_i8b: 11,
  gemm_q4_1_i8b: 13,
  gemv_q4_k_i8b: 11,
  gemm_q4_k_i8b: 13,
  gemv_q8_0_i8b: 11,
  gemm_q8_0_i8b: 13,
  gemv_q5_0_i8b: 11,
  gemm_q5_0_i8b: 13,
  gemv_q5_1_i8b: 11,
  gemm_q5_1_i8b: 13,
  gemv_q5_k_i8b: 11,
  gemm_q5_k_i8b: 13,
  gemv_q6_k_i8b: 11,
  gemm_q6_k_i8b: 13,
  quantize_activations_i8b: 8,
  prepare_activations_i8b: 6,
  gemv_f32_f32: 5,
  gemm_f32_f32: 7,
  gemv_f16_f32: 5,
  gemm_f16_f32: 7,
  gemv_bf16_f32: 5,
  gemm_bf16_f32: 7,
  read_bandwidth: 2,
  copy_rows: 6,
  quantize_rows: 8,
  repack_q4_0: 7,
  quantize_rows_q4_0: 5,
  repack_q4_1: 7,
  repack_q5_0: 7,
  repack_q5_1: 7,
  repack_q8_0: 7,
  repack_q4_k: 7,
  repack_q5_k: 7,
  repack_q6_k: 7,
  repack_f32: 5,
  repack_f16: 5,
  repack_bf16: 5,
  kv_store: 7,
  attention_reset: 3,
  attention_rows: 14,
  attention_finalize: 4,
  rmsnorm: 6,
  rope: 6,
  swiglu: 4,
  geglu: 4,
  add_into: 3,
};

/**
 * The instance's exports as WasmExports, or a clear error naming the first export that is missing or takes
 * a different number of parameters (a stale build/*.wasm, or a kernel changed on one side only).
 */
export function checkExports(exports: Record<string, unknown>): WasmExports {
  for (const [name, arity] of Object.entries(WASM_EXPORT_ARITY)) {
    const fn = exports[name];
    if (typeof fn !== "function") throw new Error(`Wasm module lacks export ${name}: rebuild with "npm run build:wasm"`);
    if (fn.length !== arity) {
      throw new Error(
        `Wasm export ${name} takes ${fn.length} parameters, src/kernels/exports.ts declares ${arity}: rebuild with "npm run build:wasm"`,
      );
    }
  }
  return exports as unknown as WasmExports;
}
