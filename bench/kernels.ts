// Matrix kernel throughput, one thread: the il4 x i8t kernels' GEMV weight-stream GB/s and GOPS for every
// MobileLLM-Pro shape with weights streaming from DRAM, beside the measured Wasm read bandwidth (the roofline);
// GEMM GOPS for blocks of tokens; the scalar TypeScript twin for scale; then every weight layout's kernels (the
// layouts a llama.cpp file's types are computed in) on SmolLM2's and MobileLLM-Pro's FFN shapes against il4's,
// and what quantizing activations per block of 32 (i8b) costs against per token (i8t).
// Run: npm run bench:kernels (-- --layouts for the layout tables alone)
//
// "From DRAM": every call reads the next matrix of a 1 GiB region (32 MiB L3), so no weight is cached.
// Bytes counted: nibbles + f16 scales + row sums (0.5625 B/weight + 4 B/row). GOPS = 2·rows·cols·tokens / time.
// Figures are tinybench medians (p50) of one run.
import { enableRelaxedSimd, kernelBytes, wasmBytes } from "../src/node/wasm-files.js";
import { Bench } from "tinybench";
import { cpus } from "node:os";
import {
  FloatActivations, Int8Activations, Int8BlockActivations, LAYOUTS, WeightMatrix, type Activations, type LayoutTag,
} from "../src/kernels/layout.js";
import { gemm, gemmIl4I8tRef, gemv, quantizeActivations, setActivations } from "../src/kernels/matmul.js";
import { quantizeActivationsI8b, setActivationsI8b } from "../src/kernels/matmul-i8b.js";
import type { Int8Tokens } from "../src/kernels/matmul.js";
import { GROUP } from "../src/kernels/numerics.js";
import { probeMatmul } from "../src/kernels/probe.js";
import { loadKernels, WasmKernels } from "../src/kernels/wasm.js";
import type { WasmVariant } from "../src/kernels/wasm.js";

// V8 starts every Wasm function in Liftoff and tiers up to TurboFan when it judges the function hot. In this
// script the GEMM could stay in Liftoff through the whole measurement (relaxed GEMM at 46-49 GOPS against
// 85-91 with TurboFan, in the same session), and setting --no-liftoff from inside the process did not change
// that. So `npm run bench:kernels` starts Node with --no-liftoff: it measures the code a long-running engine
// ends up executing.

const SHAPES: ReadonlyArray<{ name: string; rows: number; cols: number }> = [
  { name: "gate/up", rows: 6144, cols: 1280 },
  { name: "down", rows: 1280, cols: 6144 },
  { name: "q/o", rows: 1280, cols: 1280 },
  { name: "k/v", rows: 256, cols: 1280 },
  { name: "lm_head", rows: 202048, cols: 1280 },
];
const GEMM_SHAPES = SHAPES.slice(0, 2);
const GEMM_TOKENS = [1, 4, 16, 64];
const REGION = 1 << 30;

function p50(bench: Bench, name: string): number {
  const task = bench.getTask(name);
  const r = task?.result;
  if (!r || (r.state !== "completed" && r.state !== "aborted-with-statistics")) throw new Error(`benchmark ${name} did not complete`);
  return r.latency.p50;
}

function matrixBytes(rows: number, cols: number): number {
  return new WeightMatrix(LAYOUTS.il4, rows, cols, 0, 0, 0).streamBytes;
}

/** A matrix view at `offset` of the region: any bytes are a valid il4 matrix for timing purposes. */
function matrixAt(base: number, offset: number, rows: number, cols: number): WeightMatrix {
  return WeightMatrix.packedAt(LAYOUTS.il4, base + offset, rows, cols);
}

function randomTokens(tokens: number, cols: number): Int8Tokens {
  const q = new Int8Array(tokens * cols);
  for (let i = 0; i < q.length; i++) q[i] = Math.floor(Math.random() * 256) - 128;
  const scale = new Float32Array(tokens).fill(0.01);
  const zero = Int32Array.from({ length: tokens }, () => Math.floor(Math.random() * 256) - 128);
  return { tokens, cols, q, scale, zero };
}

function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

interface VariantResult {
  readGBs: number;
  gemv: Map<string, { ms: number; gbs: number; gops: number }>;
  gemm: Map<string, number>;
}

function benchVariant(k: WasmKernels): VariantResult {
  const e = k.exports;
  const region = k.alloc(REGION);
  // Every byte 0x30..0x3F: random low nibbles, any 2 aligned bytes read as a normal f16 scale and any 4 as
  // a normal f32 row sum (no NaN or subnormal can slow the float path), whichever matrix shape the region is
  // viewed as.
  const u8 = k.u8;
  const chunk = new Uint8Array(1 << 20);
  for (let i = 0; i < chunk.length; i++) chunk[i] = 0x30 | Math.floor(Math.random() * 16);
  for (let o = 0; o < REGION; o += chunk.length) u8.set(chunk, region + o);
  const acts = new Map<number, Int8Activations>();
  const maxT = Math.max(...GEMM_TOKENS);
  for (const cols of new Set(SHAPES.map((s) => s.cols))) {
    const a = Int8Activations.alloc(k, maxT, cols);
    setActivations(k, a, randomTokens(maxT, cols));
    acts.set(cols, a);
  }
  const y = k.alloc(4 * 202048 * maxT);

  const bench = new Bench({ time: 600, iterations: 10, warmupTime: 150, warmupIterations: 4 });
  const fns: Array<() => void> = [];
  const add = (name: string, fn: () => void): void => {
    fns.push(fn);
    bench.add(name, fn);
  };
  let sink = 0;
  add("read", () => {
    sink ^= e.read_bandwidth(region, REGION);
  });
  const rotation = (rows: number, cols: number): WeightMatrix[] => {
    const bytes = matrixBytes(rows, cols);
    const stride = Math.ceil(bytes / 4096) * 4096;
    const n = Math.max(1, Math.floor(REGION / stride));
    return Array.from({ length: n }, (_, i) => matrixAt(region, i * stride, rows, cols));
  };
  for (const s of SHAPES) {
    const ms = rotation(s.rows, s.cols);
    const act = acts.get(s.cols)!;
    let i = 0;
    add(`gemv ${s.name}`, () => {
      gemv(k, ms[i], act, y);
      i = (i + 1) % ms.length;
    });
  }
  for (const s of GEMM_SHAPES) {
    const ms = rotation(s.rows, s.cols);
    const act = acts.get(s.cols)!;
    for (const t of GEMM_TOKENS) {
      let i = 0;
      add(`gemm ${s.name} T=${t}`, () => {
        gemm(k, ms[i], act, y, t);
        i = (i + 1) % ms.length;
      });
    }
  }
  // Run every task before measuring, so page faults and first-touch costs are out of the figures.
  for (const fn of fns.slice(1)) for (let i = 0; i < 30; i++) fn();
  sleepMs(500);
  bench.runSync();
  if (sink === 0.5) console.log(sink);

  const readGBs = REGION / (p50(bench, "read") * 1e6);
  const gemvRes = new Map<string, { ms: number; gbs: number; gops: number }>();
  for (const s of SHAPES) {
    const ms = p50(bench, `gemv ${s.name}`);
    gemvRes.set(s.name, { ms, gbs: matrixBytes(s.rows, s.cols) / (ms * 1e6), gops: (2 * s.rows * s.cols) / (ms * 1e6) });
  }
  const gemmRes = new Map<string, number>();
  for (const s of GEMM_SHAPES) {
    for (const t of GEMM_TOKENS) {
      const ms = p50(bench, `gemm ${s.name} T=${t}`);
      gemmRes.set(`${s.name} T=${t}`, (2 * s.rows * s.cols * t) / (ms * 1e6));
    }
  }
  return { readGBs, gemv: gemvRes, gemm: gemmRes };
}

/** The scalar twin on logical arrays, 256x1280 (k/v shape; its 0.3 MB of weights stay in cache). */
function benchTwin(): { ms: number; gops: number } {
  const rows = 256;
  const cols = 1280;
  const q = new Int8Array(rows * cols);
  for (let i = 0; i < q.length; i++) q[i] = Math.floor(Math.random() * 16) - 8;
  const w = { rows, cols, q, scales: new Float32Array(rows * (cols / GROUP)).fill(2 ** -7) }; // an f16 value, as il4 stores scales
  const x = randomTokens(1, cols);
  const bench = new Bench({ time: 600, iterations: 5, warmupIterations: 2 });
  let sink = 0;
  bench.add("twin", () => {
    sink += gemmIl4I8tRef(w, x)[0];
  });
  bench.runSync();
  if (sink === 0.5) console.log(sink);
  const ms = p50(bench, "twin");
  return { ms, gops: (2 * rows * cols) / (ms * 1e6) };
}

// ---- every layout ---------------------------------------------------------------------------------------

const LAYOUT_SHAPES: ReadonlyArray<{ name: string; rows: number; cols: number }> = [
  { name: "SmolLM2 gate|up", rows: 3072, cols: 576 },
  { name: "SmolLM2 down", rows: 576, cols: 1536 },
  { name: "MobileLLM-Pro gate/up", rows: 6144, cols: 1280 },
];
/** What each layout holds (layout.ts). */
const HOLDS: Record<LayoutTag, string> = {
  il4: "the int4 recipe", q4_0: "Q4_0", q4_1: "Q4_1", q4_k: "Q4_K", q8_0: "Q8_0", q5_0: "Q5_0", q5_1: "Q5_1", q5_k: "Q5_K", q6_k: "Q6_K", f32: "F32", f16: "F16", bf16: "BF16",
};
const LAYOUT_REGION = 512 << 20;

interface LayoutResult {
  gemv: Map<string, { gbs: number; gops: number }>;
  gemm16: Map<string, number>;
  /** µs to quantize one token of 1536 values, and 32 tokens, per activation format. */
  quantize: Record<"i8t" | "i8b", { one: number; block: number }>;
}

function randomBytes(k: WasmKernels, ptr: number, bytes: number): void {
  // Every byte 0x30..0x3F: any 2 or 4 aligned bytes read as a normal f16, bf16 or f32 (scales, mins and
  // float weights), nibbles and int8 values random enough for timing.
  const chunk = new Uint8Array(1 << 20);
  for (let i = 0; i < chunk.length; i++) chunk[i] = 0x30 | Math.floor(Math.random() * 16);
  for (let o = 0; o < bytes; o += chunk.length) k.u8.set(chunk.subarray(0, Math.min(chunk.length, bytes - o)), ptr + o);
}

function benchLayouts(k: WasmKernels): LayoutResult {
  const region = k.alloc(LAYOUT_REGION);
  randomBytes(k, region, LAYOUT_REGION);
  const maxT = 32;
  const acts = new Map<string, Activations>();
  for (const cols of new Set(LAYOUT_SHAPES.map((s) => s.cols))) {
    const t8 = Int8Activations.alloc(k, maxT, cols);
    setActivations(k, t8, randomTokens(maxT, cols));
    const b8 = Int8BlockActivations.alloc(k, maxT, cols);
    const q = Int8Array.from({ length: maxT * cols }, () => Math.floor(Math.random() * 255) - 127);
    setActivationsI8b(k, b8, { tokens: maxT, cols, q, scale: new Float32Array((maxT * cols) / GROUP).fill(0.01) });
    const xf = k.alloc(4 * maxT * cols);
    k.f32.set(Float32Array.from({ length: maxT * cols }, () => Math.random() - 0.5), xf >> 2);
    acts.set(`i8t ${cols}`, t8).set(`i8b ${cols}`, b8).set(`f32 ${cols}`, new FloatActivations(maxT, cols, xf));
  }
  const y = k.alloc(4 * 6144 * maxT);
  const bench = new Bench({ time: 400, iterations: 10, warmupTime: 100, warmupIterations: 4 });
  const fns: Array<() => void> = [];
  const add = (name: string, fn: () => void): void => {
    fns.push(fn);
    bench.add(name, fn);
  };
  for (const layout of Object.values(LAYOUTS)) {
    for (const s of LAYOUT_SHAPES) {
      const bytes = new WeightMatrix(layout, s.rows, s.cols, 0, 0, 0).streamBytes;
      const stride = Math.ceil((bytes + 256) / 4096) * 4096;
      const ms = Array.from({ length: Math.max(1, Math.floor(LAYOUT_REGION / stride)) }, (_, i) => WeightMatrix.packedAt(layout, region + i * stride, s.rows, s.cols));
      const act = acts.get(`${layout.activations} ${s.cols}`)!;
      let i = 0;
      add(`gemv ${layout.tag} ${s.name}`, () => {
        gemv(k, ms[i], act, y);
        i = (i + 1) % ms.length;
      });
      let j = 0;
      add(`gemm ${layout.tag} ${s.name}`, () => {
        gemm(k, ms[j], act, y, 16);
        j = (j + 1) % ms.length;
      });
    }
  }
  const xq = k.alloc(4 * 32 * 1536);
  k.f32.set(Float32Array.from({ length: 32 * 1536 }, () => Math.random() - 0.5), xq >> 2);
  const q8t = Int8Activations.alloc(k, 32, 1536);
  const q8b = Int8BlockActivations.alloc(k, 32, 1536);
  add("quantize i8t 1", () => quantizeActivations(k, xq, q8t, 1));
  add("quantize i8t 32", () => quantizeActivations(k, xq, q8t, 32));
  add("quantize i8b 1", () => quantizeActivationsI8b(k, xq, q8b, 1));
  add("quantize i8b 32", () => quantizeActivationsI8b(k, xq, q8b, 32));
  for (const fn of fns) for (let i = 0; i < 20; i++) fn();
  sleepMs(300);
  bench.runSync();
  const gemvRes = new Map<string, { gbs: number; gops: number }>();
  const gemmRes = new Map<string, number>();
  for (const layout of Object.values(LAYOUTS)) {
    for (const s of LAYOUT_SHAPES) {
      const key = `${layout.tag} ${s.name}`;
      const ms = p50(bench, `gemv ${key}`);
      gemvRes.set(key, { gbs: new WeightMatrix(layout, s.rows, s.cols, 0, 0, 0).streamBytes / (ms * 1e6), gops: (2 * s.rows * s.cols) / (ms * 1e6) });
      gemmRes.set(key, (2 * s.rows * s.cols * 16) / (p50(bench, `gemm ${key}`) * 1e6));
    }
  }
  const us = (name: string) => 1000 * p50(bench, name);
  return {
    gemv: gemvRes,
    gemm16: gemmRes,
    quantize: { i8t: { one: us("quantize i8t 1"), block: us("quantize i8t 32") }, i8b: { one: us("quantize i8b 1"), block: us("quantize i8b 32") } },
  };
}

function printLayouts(variant: WasmVariant, r: LayoutResult): void {
  console.log(`
Every layout, ${variant === "simd" ? "baseline SIMD128" : "relaxed SIMD"} build: GEMV from DRAM (GB/s of the layout's bytes, GOPS, GOPS against il4's on the shape) and GEMM at T=16 (GOPS)`);
  console.table(
    Object.values(LAYOUTS).map((l) => {
      const row: Record<string, string> = { layout: `${l.tag} x ${l.activations}`, holds: HOLDS[l.tag], "B/weight": f3(new WeightMatrix(l, 4, 1536, 0, 0, 0).streamBytes / (4 * 1536)) };
      for (const s of LAYOUT_SHAPES) {
        const g = r.gemv.get(`${l.tag} ${s.name}`)!;
        const base = r.gemv.get(`il4 ${s.name}`)!;
        row[`${s.name} GEMV`] = `${f1(g.gbs)} GB/s, ${f1(g.gops)} GOPS (${f2(g.gops / base.gops)}x)`;
        row[`${s.name} GEMM T=16`] = f1(r.gemm16.get(`${l.tag} ${s.name}`)!);
      }
      return row;
    }),
  );
  const q = r.quantize;
  console.log(
    `activation quantization, 1536 values: i8t (per token) ${f2(q.i8t.one)} µs for 1 token, ${f1(q.i8t.block)} µs for 32; ` +
      `i8b (per block of 32) ${f2(q.i8b.one)} µs, ${f1(q.i8b.block)} µs (${f2(q.i8b.one / q.i8t.one)}x, ${f2(q.i8b.block / q.i8t.block)}x)`,
  );
}

const f1 = (n: number): string => n.toFixed(1);
const f2 = (n: number): string => n.toFixed(2);
const f3 = (n: number): string => n.toFixed(3);

async function main(): Promise<void> {
  console.log(`Node ${process.version}, V8 ${process.versions.v8}, ${cpus()[0]?.model ?? "?"} x${cpus().length}, one thread`);
  if (process.argv.includes("--layouts")) {
    const simd = await WasmKernels.create("simd", wasmBytes("simd"));
    printLayouts("simd", benchLayouts(simd));
    const relaxed = await loadKernels("auto", probeMatmul, { bytes: kernelBytes(false), enableRelaxedSimd });
    if (relaxed.variant === "relaxed") printLayouts("relaxed", benchLayouts(relaxed.kernels));
    return;
  }
  const results = new Map<WasmVariant, VariantResult>();
  results.set("simd", benchVariant(await WasmKernels.create("simd", wasmBytes("simd"))));
  const relaxed = await loadKernels("auto", probeMatmul, { bytes: kernelBytes(false), enableRelaxedSimd });
  console.log(`relaxed selection: ${relaxed.variant} (${relaxed.reason})`);
  if (relaxed.variant === "relaxed") results.set("relaxed", benchVariant(relaxed.kernels));
  const twin = benchTwin();

  for (const [variant, r] of results) {
    console.log(`\nGEMV, ${variant === "simd" ? "baseline SIMD128" : "relaxed SIMD"} build; Wasm read bandwidth (v128 loads, 4 accumulators, 1 GiB): ${f1(r.readGBs)} GB/s`);
    console.table(
      SHAPES.map((s) => {
        const g = r.gemv.get(s.name)!;
        return {
          shape: `${s.name} ${s.rows}x${s.cols}`,
          "p50 ms": f3(g.ms),
          "GB/s": f1(g.gbs),
          GOPS: f1(g.gops),
          "of read bw": `${Math.round((100 * g.gbs) / r.readGBs)}%`,
        };
      }),
    );
  }
  // One decoded token: per layer q, o (1280x1280), k, v (256x1280), gate, up (6144x1280), down; then lm_head.
  for (const [variant, r] of results) {
    const ms = (name: string): number => r.gemv.get(name)!.ms;
    const token = 30 * (2 * ms("q/o") + 2 * ms("k/v") + 2 * ms("gate/up") + ms("down")) + ms("lm_head");
    console.log(`${variant}: GEMVs of one decoded token (30 x 7 + lm_head) ${f1(token)} ms, at most ${f1(1000 / token)} tok/s`);
  }
  console.log(`\nScalar TS twin (gemmIl4I8tRef on JS arrays), k/v 256x1280 only, weights in cache: p50 ${f2(twin.ms)} ms, ${f3(twin.gops)} GOPS`);

  console.log("\nGEMM GOPS (weights from DRAM; T tokens per call)");
  const rows: Array<Record<string, string>> = [];
  for (const s of GEMM_SHAPES) {
    for (const [variant, r] of results) {
      const row: Record<string, string> = { shape: `${s.name} ${s.rows}x${s.cols}`, build: variant === "simd" ? "baseline" : "relaxed" };
      for (const t of GEMM_TOKENS) row[`T=${t}`] = f1(r.gemm.get(`${s.name} T=${t}`)!);
      rows.push(row);
    }
  }
  console.table(rows);
  for (const [variant, r] of results) {
    const k = variant === "simd" ? await WasmKernels.create("simd", wasmBytes("simd")) : relaxed.kernels;
    void r;
    printLayouts(variant, benchLayouts(k));
  }
}

await main();
