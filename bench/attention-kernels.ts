// Attention and element-wise kernels: median time per call on MobileLLM-Pro shapes, for both Wasm builds
// and the scalar TypeScript twins. Run: npx tsx bench/attention-kernels.ts
//
// "attention" is one layer's work for one decode token: 4 KV heads x 5 query heads, headDim 64, over
// the given number of cached positions (reset + attention_rows of one row + finalize per KV head);
// "attention, 8-token tile" the same for a prefill tile of 8 consecutive tokens (one attention_rows call
// of 8 rows per KV head), per token.
import { setFlagsFromString } from "node:v8";
import { Bench, type Task } from "tinybench";
import {
  allocAttentionState, allocKvCacheLayer, attentionFinalize, attentionFinalizeRef, attentionRecordFloats, attentionReset, attentionResetRef,
  attentionRows, attentionRowsRef, attentionStateFloats, kvCacheLayerArrays,
  type KvCacheLayer, type KvCacheLayerArrays,
} from "../src/kernels/attention.js";
import {
  buildRopeTables, rmsnorm, rmsnormRef, rope, ropeRef, swiglu, swigluRef, uploadRopeTable,
} from "../src/kernels/elementwise.js";
import { WasmKernels, type WasmVariant } from "../src/kernels/wasm.js";
import { wasmBytes } from "../src/node/wasm-files.js";
import { rng } from "../test/helpers/rng.js";

setFlagsFromString("--experimental-wasm-relaxed-simd");

const KV_HEADS = 4;
const GROUP = 5;
const HEAD_DIM = 64;
const HIDDEN = 1280;
const FFN = 6144;
const LENGTHS = [512, 2048, 8192];
/** Tokens of the prefill tile. */
const TILE = 8;
const MAX_SLOTS = 8192;


/** Random int8 cache contents and positive scales, written identically into Wasm memory and arrays. */
function fillCache(wasm: WasmKernels, cache: KvCacheLayer, twin: KvCacheLayerArrays): void {
  const r = rng(1);
  for (const a of [twin.kData, twin.vData]) for (let i = 0; i < a.length; i++) a[i] = Math.floor(r() * 255) - 127;
  for (const a of [twin.kScales, twin.vScales]) for (let i = 0; i < a.length; i++) a[i] = 0.01 + r() * 0.05;
  wasm.i8.set(twin.kData, cache.kData);
  wasm.i8.set(twin.vData, cache.vData);
  wasm.f32.set(twin.kScales, cache.kScales >> 2);
  wasm.f32.set(twin.vScales, cache.vScales >> 2);
}

function randomF32(n: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => r() * 2 - 1);
}

function median(task: Task | undefined): number {
  const res = task?.result;
  if (!res || res.state !== "completed") throw new Error(`benchmark ${task?.name} did not complete`);
  return res.latency.p50;
}

type Row = { kernel: string; shape: string; times: Map<string, number> };
const rows: Row[] = [];
function record(kernel: string, shape: string, column: string, ms: number): void {
  let row = rows.find((r) => r.kernel === kernel && r.shape === shape);
  if (!row) rows.push((row = { kernel, shape, times: new Map() }));
  row.times.set(column, ms);
}

const attnShape = (n: number): string => `${KV_HEADS} kv x ${GROUP} q x ${HEAD_DIM}, ${n} pos`;
const ropeTable = buildRopeTables(HEAD_DIM, MAX_SLOTS, Float32Array.from({ length: HEAD_DIM / 2 }, (_, i) => 500000 ** (-i / 32)));
const twinCache = kvCacheLayerArrays({ kvHeads: KV_HEADS, headDim: HEAD_DIM, slots: MAX_SLOTS });
const q = randomF32(TILE * KV_HEADS * GROUP * HEAD_DIM, 2);
const norm = randomF32(HIDDEN, 3);
const normW = randomF32(HIDDEN, 4);
const gate = randomF32(FFN, 5);
const up = randomF32(FFN, 6);
const qk = randomF32((KV_HEADS * GROUP + KV_HEADS) * HEAD_DIM, 7);

const variants: WasmVariant[] = ["simd"];
if (WebAssembly.validate(wasmBytes("relaxed"))) variants.push("relaxed");

for (const variant of variants) {
  const wasm = await WasmKernels.create(variant, wasmBytes(variant));
  const cache = allocKvCacheLayer(wasm, { kvHeads: KV_HEADS, headDim: HEAD_DIM, slots: MAX_SLOTS });
  fillCache(wasm, cache, twinCache);
  const state = allocAttentionState(wasm, TILE * GROUP, HEAD_DIM);
  const ptr = (a: Float32Array): number => {
    const p = wasm.alloc(a.byteLength);
    wasm.f32.set(a, p >> 2);
    return p;
  };
  const qPtr = ptr(q);
  const outPtr = wasm.alloc(q.byteLength);
  const xPtr = ptr(norm);
  const wPtr = ptr(normW);
  const normOut = wasm.alloc(HIDDEN * 4);
  const gPtr = ptr(gate);
  const uPtr = ptr(up);
  const ffnOut = wasm.alloc(FFN * 4);
  const qkPtr = ptr(qk);
  const table = uploadRopeTable(wasm, ropeTable);
  const groupBytes = GROUP * HEAD_DIM * 4;
  const rowBytes = KV_HEADS * groupBytes;

  const bench = new Bench({ time: 400, warmupTime: 100 });
  for (const n of LENGTHS) {
    bench.add(`attention ${n}`, () => {
      for (let h = 0; h < KV_HEADS; h++) {
        attentionReset(wasm, state, GROUP, HEAD_DIM);
        attentionRows(wasm, cache, h, qPtr + h * groupBytes, rowBytes, 1, GROUP, n - 1, MAX_SLOTS, 0.125, state);
        attentionFinalize(wasm, state, GROUP, HEAD_DIM, outPtr + h * groupBytes);
      }
    });
    bench.add(`tile ${n}`, () => {
      for (let h = 0; h < KV_HEADS; h++) {
        attentionReset(wasm, state, TILE * GROUP, HEAD_DIM);
        attentionRows(wasm, cache, h, qPtr + h * groupBytes, rowBytes, TILE, GROUP, n - TILE, MAX_SLOTS, 0.125, state);
        for (let t = 0; t < TILE; t++) attentionFinalize(wasm, state + 4 * t * GROUP * attentionRecordFloats(HEAD_DIM), GROUP, HEAD_DIM, outPtr + t * rowBytes + h * groupBytes);
      }
    });
  }
  bench.add("rmsnorm", () => rmsnorm(wasm, xPtr, wPtr, normOut, 1, HIDDEN, 1e-5));
  // In place, so each call rotates again; the cost does not depend on the values.
  bench.add("rope", () => rope(wasm, qkPtr, 1, KV_HEADS * GROUP + KV_HEADS, table, 1000));
  bench.add("swiglu", () => swiglu(wasm, gPtr, uPtr, ffnOut, FFN));
  const tasks = bench.runSync();
  const byName = (name: string): Task | undefined => tasks.find((t) => t.name === name);
  for (const n of LENGTHS) record("attention", attnShape(n), variant, median(byName(`attention ${n}`)));
  for (const n of LENGTHS) record(`attention, ${TILE}-token tile, per token`, attnShape(n), variant, median(byName(`tile ${n}`)) / TILE);
  record("rmsnorm", `1 x ${HIDDEN}`, variant, median(byName("rmsnorm")));
  record("rope", `${KV_HEADS * GROUP}+${KV_HEADS} heads x ${HEAD_DIM}`, variant, median(byName("rope")));
  record("swiglu", `${FFN}`, variant, median(byName("swiglu")));
}

{
  const state = new Float32Array(attentionStateFloats(GROUP, HEAD_DIM));
  const out = new Float32Array(q.length);
  const normOut = new Float32Array(HIDDEN);
  const ffnOut = new Float32Array(FFN);
  const qkCopy = qk.slice();
  const bench = new Bench({ time: 400, warmupTime: 100 });
  for (const n of LENGTHS) {
    bench.add(`attention ${n}`, () => {
      for (let h = 0; h < KV_HEADS; h++) {
        attentionResetRef(state, GROUP, HEAD_DIM);
        attentionRowsRef(twinCache, h, q.subarray(h * GROUP * HEAD_DIM), KV_HEADS * GROUP * HEAD_DIM, 1, GROUP, n - 1, MAX_SLOTS, 0.125, state);
        attentionFinalizeRef(state, GROUP, HEAD_DIM, out.subarray(h * GROUP * HEAD_DIM));
      }
    });
  }
  bench.add("rmsnorm", () => rmsnormRef(norm, normW, normOut, 1, HIDDEN, 1e-5));
  bench.add("rope", () => ropeRef(qkCopy, 1, KV_HEADS * GROUP + KV_HEADS, ropeTable, 1000));
  bench.add("swiglu", () => swigluRef(gate, up, ffnOut, FFN));
  const tasks = bench.runSync();
  const byName = (name: string): Task | undefined => tasks.find((t) => t.name === name);
  for (const n of LENGTHS) record("attention", attnShape(n), "twin", median(byName(`attention ${n}`)));
  record("rmsnorm", `1 x ${HIDDEN}`, "twin", median(byName("rmsnorm")));
  record("rope", `${KV_HEADS * GROUP}+${KV_HEADS} heads x ${HEAD_DIM}`, "twin", median(byName("rope")));
  record("swiglu", `${FFN}`, "twin", median(byName("swiglu")));
}

const columns = [...variants, "twin"];
const us = (ms: number | undefined): string => (ms === undefined ? "-" : (ms * 1000).toFixed(ms < 0.01 ? 2 : 1));
console.log(`Median time per call in µs (tinybench p50), Node ${process.versions.node}, V8 ${process.versions.v8}`);
console.log(`| kernel | shape | ${columns.map((c) => (c === "twin" ? "TS twin" : `wasm ${c}`)).join(" | ")} |`);
console.log(`|---|---|${columns.map(() => "---:").join("|")}|`);
for (const r of rows) console.log(`| ${r.kernel} | ${r.shape} | ${columns.map((c) => us(r.times.get(c))).join(" | ")} |`);
