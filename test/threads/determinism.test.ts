// Threads change who computes an output row or an attention head, never how: the logits must be
// bit-identical for 1, 2 and 3 threads, for prefill in uneven blocks, decode, and ring buffers that wrap.
import { afterAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import { readFileSync } from "node:fs";
import type { SimdMode } from "../../src/kernels/wasm.js";
import type { WasmEngine } from "../../src/model/engine.js";
import { loadModel } from "../../src/api.js";
import { CHOICE_WARMUP_STEPS, PROBE_STEPS } from "../../src/threads/choice.js";
import { BUNDLED } from "../helpers/model-folder.js";
import { bundledEngine, engineFor, firstDifferentRow, randomModelFolder } from "./helpers.js";

const cleanups: Array<() => void> = [];
afterAll(() => cleanups.forEach((c) => c()));

/** Runs `tokens` as [prefill of `pieces[0]` tokens, then pieces of the given sizes], all logits. */
function runPieces(e: WasmEngine, tokens: number[], pieces: number[]): Float32Array[] {
  const out: Float32Array[] = [];
  let pos = 0;
  for (const n of pieces) {
    if (pos >= tokens.length) break;
    const chunk = tokens.slice(pos, Math.min(tokens.length, pos + n));
    out.push(...e.forward(chunk, pos, true));
    pos += chunk.length;
  }
  if (pos < tokens.length) out.push(...e.forward(tokens.slice(pos), pos, true));
  return out;
}

const specArb = fc.record({
  layers: fc.integer({ min: 1, max: 3 }),
  pattern: fc.constantFrom("G", "S", "GS", "SGS", "SSG"),
  hidden: fc.constantFrom(32, 64),
  kvHeads: fc.constantFrom(1, 2, 4),
  group: fc.integer({ min: 1, max: 3 }),
  headDim: fc.constantFrom(16, 32),
  ffn: fc.constantFrom(32, 96, 160),
  vocab: fc.integer({ min: 33, max: 301 }),
  window: fc.integer({ min: 3, max: 9 }),
  block: fc.constantFrom(2, 5, 32),
  seed: fc.integer(),
  length: fc.integer({ min: 6, max: 40 }),
  pieces: fc.array(fc.integer({ min: 1, max: 12 }), { minLength: 1, maxLength: 6 }),
});

describe("bit-identical logits for threads 1, 2 and 3", () => {
  it("random small models: prefill in uneven pieces and decode, sliding rings wrapping (fast-check)", async () => {
    await fc.assert(
      fc.asyncProperty(specArb, async (s) => {
        const heads = s.kvHeads * s.group;
        const headDim = (heads * s.headDim) % 32 === 0 ? s.headDim : 32;
        const pattern = s.pattern.padEnd(s.layers, "G").slice(0, s.layers);
        const spec = { layers: s.layers, hidden: s.hidden, heads, kvHeads: s.kvHeads, headDim, ffn: s.ffn, vocab: s.vocab, window: s.window, pattern };
        const { config, dir, cleanup } = await randomModelFolder(spec, s.seed);
        cleanups.push(cleanup);
        const tokens = Array.from({ length: s.length }, (_, i) => (i * 7 + (s.seed >>> 3)) % s.vocab);
        const results: Float32Array[][] = [];
        for (const threads of [1, 2, 3]) {
          const e = await engineFor(dir, config, { contextLength: 48, blockSize: s.block, threads });
          try {
            expect(e.threads).toBe(threads);
            results.push(runPieces(e, tokens, s.pieces));
          } finally {
            await e.dispose();
          }
        }
        expect(results[0].length).toBe(s.length);
        expect(firstDifferentRow(results[1], results[0])).toBe(-1);
        expect(firstDifferentRow(results[2], results[0])).toBe(-1);
      }),
      { numRuns: 12 },
    );
  });

  for (const simd of ["auto", "baseline"] as SimdMode[]) {
    it(`the trained model (${simd} build): 300 tokens past four ring wraps, prefill and decode`, async () => {
      const text = readFileSync(`${BUNDLED}/heldout-short.txt`, "utf8");
      const m = await loadModel(BUNDLED, { backend: "wasm", contextLength: 8 });
      const ids = m.encode(text).slice(0, 300);
      await m.backend.dispose();
      const results: Float32Array[][] = [];
      for (const threads of [1, 2, 3]) {
        const e = await bundledEngine({ contextLength: 320, threads, simd });
        try {
          const prefill = e.forward(ids.slice(0, 260), 0, true);
          const decode = ids.slice(260).map((t, i) => e.forward([t], 260 + i, false)[0]);
          results.push([...prefill, ...decode]);
        } finally {
          await e.dispose();
        }
      }
      expect(firstDifferentRow(results[1], results[0])).toBe(-1);
      expect(firstDifferentRow(results[2], results[0])).toBe(-1);
    });
  }

  it("is unchanged when workers are too slow and the main thread recomputes their chunks", async () => {
    const text = readFileSync(`${BUNDLED}/heldout-short.txt`, "utf8");
    const m = await loadModel(BUNDLED, { backend: "wasm", contextLength: 8 });
    const ids = m.encode(text).slice(0, 80);
    await m.backend.dispose();
    const one = await bundledEngine({ contextLength: 96, threads: 1 });
    const want = [...one.forward(ids.slice(0, 70), 0, true), ...ids.slice(70).map((t, i) => one.forward([t], 70 + i, false)[0])];
    await one.dispose();
    // soloPolicy 0: the workers stay in every region and most of their chunks are stolen (their commits
    // must fail harmlessly); 1: the pool notices and runs regions on the main thread alone for a while.
    for (const soloPolicy of [0, 1]) {
      // Workers that spin instead of sleeping: the policy ignores regions in which a worker slept (on a busy
      // machine that was most of them, and the spell this test expects then depended on the scheduler).
      const e = await bundledEngine({ contextLength: 96, threads: 3, spinMicros: 10_000_000 });
      try {
        e.threadPool.soloPolicy = soloPolicy;
        e.threadPool.soloWarmupRegions = 0;
        // 20 ms: far beyond any steal deadline (twice the main thread's average chunk time), even when the
        // machine is loaded and that average grows; with 300 µs a loaded CI run once saw every commit land in time.
        e.threadPool.delayWorkerCommits(20_000);
        const got = [...e.forward(ids.slice(0, 70), 0, true), ...ids.slice(70).map((t, i) => e.forward([t], 70 + i, false)[0])];
        expect(e.threadPool.stats.stolen).toBeGreaterThan(0);
        if (soloPolicy === 1) expect(e.threadPool.stats.soloSpells).toBeGreaterThan(0);
        expect(firstDifferentRow(got, want)).toBe(-1);
      } finally {
        await e.dispose();
      }
    }
  });

  it("decode steps run through the timed choice of split or solo, both modes in turn, bits unchanged", async () => {
    const text = readFileSync(`${BUNDLED}/heldout-short.txt`, "utf8");
    const m = await loadModel(BUNDLED, { backend: "wasm", contextLength: 8 });
    const ids = m.encode(text).slice(0, 70);
    await m.backend.dispose();
    const steps = ids.length - 10;
    const one = await bundledEngine({ contextLength: 96, threads: 1 });
    const want = [...one.forward(ids.slice(0, 10), 0, true), ...ids.slice(10).map((t, i) => one.forward([t], 10 + i, false)[0])];
    await one.dispose();
    const e = await bundledEngine({ contextLength: 96, threads: 2 });
    try {
      const got = [...e.forward(ids.slice(0, 10), 0, true), ...ids.slice(10).map((t, i) => e.forward([t], 10 + i, false)[0])];
      const st = e.threadPool.stats;
      // Every one-token pass is a timed step (the prefill is not); whichever mode wins, the warm-up and the
      // first 3 timed steps run split and the first probe runs PROBE_STEPS steps solo.
      expect(st.splitSteps + st.soloSteps).toBe(steps);
      expect(st.splitSteps).toBeGreaterThanOrEqual(CHOICE_WARMUP_STEPS + 3);
      expect(st.soloSteps).toBeGreaterThanOrEqual(PROBE_STEPS);
      expect(e.threadPool.choice.probes).toBeGreaterThanOrEqual(1);
      expect(firstDifferentRow(got, want)).toBe(-1);
    } finally {
      await e.dispose();
    }
  });
});
