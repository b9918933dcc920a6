// Load-time weight kernels, one thread: MB/s of bf16 rows quantized to il4 by quantize_rows, against its
// scalar twin; and weights/s of the Q4_0 repack. Run: node --no-liftoff --import tsx bench/quantize-kernels.ts
// (--no-liftoff: measure the TurboFan code a loader runs after its first few calls, as bench/kernels.ts does.)
// One matrix of 2048 x 1280 (the size of one 4 MiB staging block of the embedding), medians of REPS calls.
import { allocInt4Matrix, writeInt4Rows } from "../src/kernels/layout.js";
import { Q4_0_BLOCK_BYTES, quantizeRows, quantizeRowsRef, repackQ4_0 } from "../src/kernels/quantize.js";
import { acceptsRelaxedSimd, WasmKernels, type WasmVariant } from "../src/kernels/wasm.js";
import { enableRelaxedSimd, wasmBytes } from "../src/node/wasm-files.js";
import { decodeToF32, encodeFromF32 } from "../src/kernels/dtype.js";

const ROWS = 2048;
const COLS = 1280;
const REPS = 15;

const weights = new Float32Array(ROWS * COLS);
for (let i = 0; i < weights.length; i++) weights[i] = (Math.random() - 0.5) * 0.1;
const bf16 = new Uint8Array(weights.length * 2);
encodeFromF32("BF16", weights, bf16, 0);

/** Median milliseconds of `reps` calls after one warm-up call. */
function medianMs(reps: number, fn: () => void): number {
  fn();
  const t: number[] = [];
  for (let i = 0; i < reps; i++) {
    const a = performance.now();
    fn();
    t.push(performance.now() - a);
  }
  return t.sort((a, b) => a - b)[t.length >> 1];
}

const mbps = (bytes: number, ms: number): string => `${((bytes / 1e6) / (ms / 1000)).toFixed(0)} MB/s`;

const variants: WasmVariant[] = acceptsRelaxedSimd(wasmBytes("relaxed"), enableRelaxedSimd) ? ["simd", "relaxed"] : ["simd"];
for (const variant of variants) {
  const k = await WasmKernels.create(variant, wasmBytes(variant));
  const m = allocInt4Matrix(k, ROWS, COLS);
  const src = k.alloc(bf16.length);
  k.u8.set(bf16, src);
  const quantize = medianMs(REPS, () => quantizeRows(k, m, 0, src, ROWS, "BF16"));
  const copy = medianMs(REPS, () => {
    k.u8.set(bf16, src);
    quantizeRows(k, m, 0, src, ROWS, "BF16");
  });
  console.log(`${variant}: quantize_rows ${mbps(bf16.length, quantize)} of bf16, with the copy into Wasm memory ${mbps(bf16.length, copy)}`);
  const q4 = new Uint8Array(ROWS * (COLS / 32) * Q4_0_BLOCK_BYTES);
  for (let i = 0; i < q4.length; i++) q4[i] = i % Q4_0_BLOCK_BYTES === 1 ? 0x30 : Math.floor(Math.random() * 256);
  const q4p = k.alloc(q4.length);
  k.u8.set(q4, q4p);
  const rep = medianMs(REPS, () => repackQ4_0(k, m, 0, q4p, ROWS));
  console.log(`${variant}: repack_q4_0 ${mbps(q4.length, rep)} of Q4_0 (${((ROWS * COLS) / 1e6 / (rep / 1000)).toFixed(0)} M weights/s)`);
  if (variant === "simd") {
    const twin = medianMs(3, () => writeInt4Rows(k, m, 0, quantizeRowsRef(bf16, "BF16", ROWS, COLS)));
    console.log(`scalar TypeScript: twin quantizeRowsRef + writeInt4Rows ${mbps(bf16.length, twin)}`);
  }
}
