// The kernel module's exports (assembly/index.ts), declared once for TypeScript. Names: the Wasm export is
// snake_case `op`, its checked TypeScript wrapper camelCase `op`, and the wrapper's scalar twin `opRef`
// (kv_store / kvStore / kvStoreRef). Exports without a wrapper serve the loader, the thread pool or the
// benchmarks. Pointers are byte offsets into the Wasm memory; i32 and f32 arguments are plain numbers.

export interface WasmExports {
  /** Where the module's static data ends: the arena starts above it (wasm.ts). */
  heap_base(): number;
  /** 1 in the relaxed-SIMD build, 0 in the baseline SIMD128 build. */
  kernel_variant(): number;

  // assembly/matmul.ts and quant-act.ts; operand layouts: Int4Matrix, Int8Activations (layout.ts)
  gemv(
    wq: number, ws: number, wsum: number, rows: number, cols: number,
    xq: number, xw: number, xcorr: number, xs: number, xz: number, y: number,
  ): void;
  /** Y[t][r] at y + 4·(t·ldy + r): ldy = rows for a whole product, larger for a thread's block of rows. */
  gemm(
    wq: number, ws: number, wsum: number, rows: number, cols: number, tokens: number,
    xq: number, xw: number, xcorr: number, xs: number, xz: number, y: number, ldy: number,
  ): void;
  quantize_activations(
    x: number, tokens: number, cols: number, xq: number, xw: number, xcorr: number, xs: number, xz: number,
  ): void;
  /** Derives the widened copy and the group corrections from already-quantized activations. */
  prepare_activations(tokens: number, cols: number, xq: number, xw: number, xcorr: number): void;
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

  // assembly/attention.ts; layouts: KvCacheLayer and the attention state (attention.ts)
  kv_store(src: number, kvHeads: number, headDim: number, data: number, scales: number, slots: number, slot: number): void;
  attention_reset(state: number, nq: number, headDim: number): void;
  attention_accumulate(
    q: number, nq: number, headDim: number, k: number, kScales: number, v: number, vScales: number,
    slot0: number, n: number, scaleFactor: number, state: number,
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
  gemv: 11,
  gemm: 13,
  quantize_activations: 8,
  prepare_activations: 5,
  read_bandwidth: 2,
  copy_rows: 6,
  quantize_rows: 8,
  repack_q4_0: 7,
  quantize_rows_q4_0: 5,
  kv_store: 7,
  attention_reset: 3,
  attention_accumulate: 11,
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
