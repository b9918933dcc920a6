// End-to-end engine benchmark on a full-size synthetic MobileLLM-Pro (random bf16 weights in the real
// layout, written once into a temporary folder by `synth`): load time, peak RSS, prefill of a 512-token
// prompt, and decode at 512, 2k and 8k positions, one thread. Figures are printed, not asserted.
//
// To reach a position quickly the KV cache is filled with random int8 entries instead of being prefilled
// (the output says so): decode cost depends on how many cached positions attention reads, not on what
// they hold.
//
//   npm run bench                      # baseline and relaxed (where proven) builds
//   npm run bench -- --simd baseline   # one build
//   BENCH_MODEL_DIR=/path npm run bench  # reuse a folder written by `mobilellm synth`
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Bench } from "tinybench";
import { loadModel } from "../src/api.js";
import { PRESETS } from "../src/model/config.js";
import { synthesizeCheckpoint } from "../src/model/synth.js";
import type { WasmEngine } from "../src/model/engine.js";
import type { SimdMode } from "../src/kernels/wasm.js";

const CONTEXT = 8192 + 64;
const DECODE_AT = [512, 2048, 8192];

function p50(bench: Bench): number {
  const r = bench.tasks[0].result;
  if (!r || (r.state !== "completed" && r.state !== "aborted-with-statistics")) throw new Error(`benchmark ${bench.tasks[0].name} did not complete`);
  return r.latency.p50;
}

function rssMiB(): number {
  return process.memoryUsage().rss / 2 ** 20;
}

async function syntheticModel(): Promise<{ dir: string; cleanup: () => void }> {
  const given = process.env.BENCH_MODEL_DIR;
  if (given && existsSync(join(given, "config.json"))) return { dir: given, cleanup: () => {} };
  const dir = mkdtempSync(join(tmpdir(), "mobilellm-bench-"));
  const t0 = performance.now();
  await synthesizeCheckpoint({ presetJson: PRESETS["mobilellm-pro"].json, presetName: "mobilellm-pro", outDir: dir, seed: 1, maxShardBytes: 1e9 });
  console.log(`synthetic mobilellm-pro checkpoint written to ${dir} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Random int8 keys/values and small scales in every slot up to `positions`. */
function fillCache(engine: WasmEngine, positions: number): void {
  const k = engine.kernels;
  let seed = 12345;
  const next = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 24) - 128;
  for (const layer of engine.kv.layers) {
    const slots = Math.min(layer.slots, positions);
    for (const [data, scales] of [[layer.kData, layer.kScales], [layer.vData, layer.vScales]] as const) {
      const i8 = k.i8;
      for (let h = 0; h < layer.kvHeads; h++) {
        const base = data + h * layer.slots * layer.headDim;
        for (let j = 0; j < slots * layer.headDim; j++) i8[base + j] = next();
      }
      k.f32.fill(0.01, scales >> 2, (scales >> 2) + layer.kvHeads * layer.slots);
    }
  }
}

async function run(dir: string, simd: SimdMode): Promise<Record<string, string | number>[]> {
  const rss0 = rssMiB();
  const t0 = performance.now();
  const model = await loadModel(dir, { backend: "wasm", simd, contextLength: CONTEXT });
  const loadS = (performance.now() - t0) / 1000;
  const engine = model.backend as WasmEngine;
  console.log(`\n[${simd}] ${engine.simd.reason}`);
  console.log(`load + quantize: ${loadS.toFixed(1)} s, Wasm memory ${(engine.kernels.memory.buffer.byteLength / 2 ** 20).toFixed(0)} MiB, RSS ${rssMiB().toFixed(0)} MiB (was ${rss0.toFixed(0)})`);
  const rows: Record<string, string | number>[] = [];

  const prompt = Array.from({ length: 512 }, (_, i) => (i * 7919) % 200000);
  const bench = new Bench({ iterations: 3, warmupIterations: 1, time: 0 });
  bench.add("prefill 512 tokens", () => {
    engine.forward(prompt, 0, false);
  });
  bench.runSync();
  const prefillMs = p50(bench);
  rows.push({ build: engine.simd.variant, task: "prefill 512-token prompt", "p50 ms": +prefillMs.toFixed(1), "tokens/s": +((512 / prefillMs) * 1000).toFixed(1) });

  fillCache(engine, CONTEXT);
  for (const pos of DECODE_AT) {
    const b = new Bench({ iterations: 8, warmupIterations: 2, time: 0 });
    let p = pos;
    b.add(`decode at ${pos}`, () => {
      engine.forward([p % 200000], p, false);
      p = p + 1 < CONTEXT ? p + 1 : pos;
    });
    b.runSync();
    const ms = p50(b);
    rows.push({ build: engine.simd.variant, task: `decode at position ${pos} (cache filled with random int8)`, "p50 ms": +ms.toFixed(1), "tokens/s": +(1000 / ms).toFixed(1) });
  }
  rows.push({ build: engine.simd.variant, task: `load + quantize (s); peak RSS so far ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`, "p50 ms": +(loadS * 1000).toFixed(0), "tokens/s": "" });
  model.dispose();
  return rows;
}

const arg = process.argv.indexOf("--simd");
const modes: SimdMode[] = arg > 0 ? [process.argv[arg + 1] as SimdMode] : ["baseline", "auto"];
console.log(`node ${process.version}, one thread, context ${CONTEXT}; full-size synthetic MobileLLM-Pro`);
const { dir, cleanup } = await syntheticModel();
try {
  const rows: Record<string, string | number>[] = [];
  for (const m of modes) rows.push(...(await run(dir, m)));
  console.table(rows);
} finally {
  cleanup();
}
