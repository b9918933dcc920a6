// The job codec and the chunks: a job survives the trip through the control block field for field, every
// chunk (in place, or into a worker's scratch and then committed) writes exactly the bits the scalar twin
// or the unsplit kernel calls give, and the pool's production path refuses regions outside the memory.
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WasmKernels } from "../../src/kernels/wasm.js";
import {
  allocMatrix, FloatActivations, Int8Activations, Int8BlockActivations, LAYOUTS, regionBytes, repackInt4, WeightMatrix,
  type Int4Weights,
} from "../../src/kernels/layout.js";
import { GGML_BLOCKS, isGgmlQuantType, storedLayout, storedRowBytes, WEIGHT_ENCODINGS, type WeightEncoding } from "../../src/kernels/ggml-blocks.js";
import { writeStoredRows } from "../../src/kernels/repack.js";
import { randomGgmlRows } from "../helpers/ggml-rows.js";
import { f16BitsToF32, f32ToF16Bits } from "../../src/kernels/dtype.js";
import { gemmIl4I8tRef, setActivations, type Int8Tokens } from "../../src/kernels/matmul.js";
import { firstBitDifference } from "../../src/kernels/probe.js";
import { wasmBytes } from "../../src/node/wasm-files.js";
import {
  allocAttentionState, allocKvCacheLayer, attentionFinalize, attentionReset, attentionRows, kvStore,
  type KvCacheLayer,
} from "../../src/kernels/attention.js";
import { commitChunk, runChunk } from "../../src/threads/chunks.js";
import {
  chunkCount, chunkOutputBytes, decodeJob, encodeJob, type AttentionJob, type Job, type MatmulJob, type QuantizeJob,
} from "../../src/threads/jobs.js";
import { JOB_WORDS } from "../../src/threads/protocol.js";
import { ThreadPool } from "../../src/threads/pool.js";
import { spawnNodeWorker } from "../../src/node/worker-thread.js";
import { gauss, rng } from "../helpers/rng.js";

const u32 = fc.integer({ min: 0, max: 2 ** 32 - 1 });
/** Plain objects, as the engine builds them (fast-check's records may otherwise lack a prototype). */
const plain = { noNullPrototype: true } as const;

/** Any layout, any numbers: the codec carries them as they are. */
const matrixArb = fc.tuple(fc.constantFrom(...Object.values(LAYOUTS)), u32, u32, u32, u32, u32)
  .map(([l, a, b, c, d, e]) => new WeightMatrix(l, a, b, c, d, e));

const jobArb: fc.Arbitrary<Job> = fc.oneof(
  fc.record({
    matrix: matrixArb,
    act: fc.oneof(
      fc.tuple(u32, u32, u32, u32, u32, u32, u32).map(([a, b, c, d, e, f, g]) => new Int8Activations(a, b, c, d, e, f, g)),
      fc.tuple(u32, u32, u32, u32, u32, u32, u32).map(([a, b, c, d, e, f, g]) => new Int8BlockActivations(a, b, c, d, e, f, g)),
      fc.tuple(u32, u32, u32).map(([a, b, c]) => new FloatActivations(a, b, c)),
    ),
    first: u32, tokens: u32, y: u32, ldy: u32, chunkRows: u32,
  }, plain).map((j): Job => ({ kind: "matmul", ...j })),
  fc.record({
    cache: fc.record({ kvHeads: u32, headDim: u32, slots: u32, kData: u32, kScales: u32, vData: u32, vScales: u32 }, plain),
    window: u32, position: u32, tokens: u32,
    queries: fc.record({ ptr: u32, stride: u32 }, plain),
    group: u32,
    scale: fc.float({ noNaN: true }),
    out: fc.record({ ptr: u32, stride: u32 }, plain),
    tileRows: u32,
  }, plain).map((j): Job => ({ kind: "attention", ...j })),
  fc.record({ ptr: u32, bytes: u32, chunkBytes: u32 }, plain).map((j): Job => ({ kind: "read", ...j })),
  fc.record({
    matrix: matrixArb,
    row0: u32, rows: u32, src: u32, encoding: fc.constantFrom(...WEIGHT_ENCODINGS), chunkRows: u32,
  }, plain).map((j): Job => ({ kind: "quantize", ...j })),
);

describe("job codec", () => {
  it("decodes every field of every kind as encoded, addresses above 2^31 included (fast-check)", () => {
    fc.assert(
      fc.property(jobArb, (job) => {
        const words = new Int32Array(JOB_WORDS).fill(-1);
        encodeJob(job, words);
        expect(decodeJob(words)).toStrictEqual(job);
      }),
      { numRuns: 300 },
    );
  });

  it("refuses a control block that holds no job it knows", () => {
    expect(() => decodeJob(new Int32Array(JOB_WORDS))).toThrow(/unknown job kind 0/);
  });
});

let k: WasmKernels;
beforeAll(async () => {
  k = await WasmKernels.create("simd", wasmBytes("simd"));
});

function randomWeights(r: () => number, rows: number, cols: number): Int4Weights {
  const q = Int8Array.from({ length: rows * cols }, () => Math.floor(r() * 16) - 8);
  // f16 values, as il4 stores its scales
  const scales = Float32Array.from({ length: (rows * cols) / 32 }, () => f16BitsToF32(f32ToF16Bits(0.01 + r())));
  return { rows, cols, q, scales };
}

function randomTokens(r: () => number, tokens: number, cols: number): Int8Tokens {
  return {
    tokens, cols,
    q: Int8Array.from({ length: tokens * cols }, () => Math.floor(r() * 256) - 128),
    scale: Float32Array.from({ length: tokens }, () => 0.001 + r()),
    zero: Int32Array.from({ length: tokens }, () => Math.floor(r() * 256) - 128),
  };
}

/** Runs every chunk of `job`: in place on even chunks, and through a worker's scratch and commit on odd ones. */
function runAllChunks(job: Job, state: number, scratch: number): void {
  for (let c = 0; c < chunkCount(job); c++) {
    if (c % 2 === 0) {
      runChunk(k, job, c, "in place", state);
    } else {
      runChunk(k, job, c, scratch, state);
      commitChunk(k, job, c, scratch);
    }
  }
}

describe("chunks", () => {
  it("matmul: every row block, in place or committed from scratch, has the twin's bits (fast-check)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 37 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 5 }), fc.integer({ min: 0, max: 5 }), fc.integer(),
        (rows, groups, held, blocks, firstPick, seed) => {
          const r = rng(seed);
          const cols = 32 * groups;
          const first = firstPick % held;
          const tokens = 1 + ((seed >>> 0) % (held - first));
          const w = randomWeights(r, rows, cols);
          const x = randomTokens(r, held, cols);
          const matrix = repackInt4(k, w);
          const act = Int8Activations.alloc(k, held, cols);
          setActivations(k, act, x);
          const y = k.alloc(4 * rows * tokens);
          k.f32.fill(Number.NaN, y >> 2, (y >> 2) + rows * tokens);
          const job: MatmulJob = { kind: "matmul", matrix, act, first, tokens, y, ldy: rows, chunkRows: 4 * blocks };
          runAllChunks(job, 0, k.alloc(4 * 4 * blocks * tokens));
          const want = gemmIl4I8tRef(w, x).subarray(first * rows, (first + tokens) * rows);
          expect(firstBitDifference(k.f32.slice(y >> 2, (y >> 2) + rows * tokens), want)).toBe(-1);
        },
      ),
      { numRuns: 60 },
    );
  });

  it("quantize: every block of rows of every layout, in place or committed from scratch, has the unsplit call's bytes, padding rows kept (fast-check)", () => {
    // The recipe (il4) from float and Q4_0 rows, and every layout holding a file's rows as they are.
    const targets = [
      ...(["F32", "F16", "BF16", "Q4_0"] as const).map((e) => ({ encoding: e as WeightEncoding, layout: LAYOUTS.il4 })),
      ...WEIGHT_ENCODINGS.map((e) => ({ encoding: e, layout: LAYOUTS[storedLayout(e)] })),
    ];
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 30 }), fc.integer({ min: 0, max: 12 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 4 }),
        fc.constantFrom(...targets), fc.integer(),
        (blocksPick, firstPick, units, chunkBlocks, { encoding, layout }, seed) => {
          const r = rng(seed);
          const cols = (isGgmlQuantType(encoding) ? GGML_BLOCKS[encoding].values : 32) * units;
          // A matrix whose last block may be partial: the job covers whole blocks from a block boundary.
          const rows = 4 * blocksPick + (seed >>> 0) % 4;
          const wholeBlocks = Math.floor(rows / 4);
          const first = Math.min(firstPick, wholeBlocks - 1);
          const jobRows = 4 * (1 + ((seed >>> 4) % (wholeBlocks - first)));
          const row0 = 4 * first;
          const rowBytes = storedRowBytes(encoding, cols);
          const src = k.alloc(jobRows * rowBytes, 16);
          const bytes = k.u8.subarray(src, src + jobRows * rowBytes);
          if (isGgmlQuantType(encoding)) {
            bytes.set(randomGgmlRows(encoding, jobRows, cols, r));
          } else {
            const w = Float32Array.from({ length: jobRows * cols }, () => gauss(r));
            if (encoding === "F32") bytes.set(new Uint8Array(w.buffer));
            else for (let i = 0; i < w.length; i++) {
              const h = encoding === "F16" ? f32ToF16Bits(w[i]) : new Uint32Array(Float32Array.of(w[i]).buffer)[0] >>> 16;
              bytes[2 * i] = h & 255;
              bytes[2 * i + 1] = h >> 8;
            }
          }
          const regions = (m: WeightMatrix) => {
            const b = regionBytes(m.layout, m.rows, m.cols);
            return [k.u8.slice(m.valuesPtr, m.valuesPtr + b.values), k.u8.slice(m.scalesPtr, m.scalesPtr + b.scales), k.u8.slice(m.auxPtr, m.auxPtr + b.aux)];
          };
          const want = allocMatrix(k, layout, rows, cols);
          writeStoredRows(k, want, row0, src, jobRows, encoding);
          const matrix = allocMatrix(k, layout, rows, cols);
          const job: QuantizeJob = { kind: "quantize", matrix, row0, rows: jobRows, src, encoding, chunkRows: 4 * chunkBlocks };
          runAllChunks(job, 0, k.alloc(chunkOutputBytes(job), 16));
          expect(regions(matrix)).toEqual(regions(want));
        },
      ),
      { numRuns: 120 },
    );
  });

  it("attention: every (tile of tokens, KV head), in place or committed, writes each token's heads as that token alone gets them (fast-check)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 12 }), fc.integer({ min: 0, max: 4 }),
        fc.integer({ min: 0, max: 40 }), fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 4 }), fc.boolean(), fc.integer(),
        (kvHeads, group, windowPick, extra, position, tokens, tileRows, ring, seed) => {
          const r = rng(seed);
          const headDim = 16;
          // A sliding layer's ring holds its window and room for the block's tokens (KvCache's headroom); a
          // global layer a slot per position.
          const window = ring ? windowPick : 1000;
          const slots = ring ? window + tokens - 1 + extra : position + tokens + extra;
          const cache: KvCacheLayer = allocKvCacheLayer(k, { kvHeads, headDim, slots });
          const src = k.alloc(4 * kvHeads * headDim);
          for (let slot = 0; slot < slots; slot++) {
            for (const part of ["k", "v"] as const) {
              k.f32.set(Float32Array.from({ length: kvHeads * headDim }, () => gauss(r)), src >> 2);
              kvStore(k, cache, part, src, slot);
            }
          }
          const width = kvHeads * group * headDim;
          const queries = { ptr: k.alloc(4 * width * tokens), stride: 4 * width };
          k.f32.set(Float32Array.from({ length: width * tokens }, () => gauss(r)), queries.ptr >> 2);
          const out = { ptr: k.alloc(4 * width * tokens), stride: 4 * width };
          const state = allocAttentionState(k, tileRows * group, headDim);
          const job: AttentionJob = { kind: "attention", cache, window, position, tokens, queries, group, scale: Math.fround(0.25), out, tileRows };
          expect(chunkCount(job)).toBe(Math.ceil(tokens / tileRows) * kvHeads);
          runAllChunks(job, state, k.alloc(chunkOutputBytes(job)));
          const got = k.f32.slice(out.ptr >> 2, (out.ptr >> 2) + width * tokens);
          // Expected: each token alone (one row) against each KV head, its heads in its own out row.
          const want = new Float32Array(width * tokens);
          const wantPtr = k.alloc(4 * group * headDim);
          for (let t = 0; t < tokens; t++) {
            for (let g = 0; g < kvHeads; g++) {
              const q = queries.ptr + t * queries.stride + 4 * g * group * headDim;
              attentionReset(k, state, group, headDim);
              attentionRows(k, cache, g, q, queries.stride, 1, group, position + t, window, 0.25, state);
              attentionFinalize(k, state, group, headDim, wantPtr);
              want.set(k.f32.subarray(wantPtr >> 2, (wantPtr >> 2) + group * headDim), t * width + g * group * headDim);
            }
          }
          expect(firstBitDifference(got, want)).toBe(-1);
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe("region checks on the pool's path", () => {
  const pools: ThreadPool[] = [];
  afterAll(async () => {
    for (const p of pools) await p.terminate();
  });

  for (const threads of [1, 2]) {
    it(`a product whose output runs past the Wasm memory is refused, not computed (${threads} thread(s))`, async () => {
      const kernels = await WasmKernels.create("simd", wasmBytes("simd", true), { shared: true });
      const w = randomWeights(rng(7), 64, 64);
      const matrix = repackInt4(kernels, w);
      const act = Int8Activations.alloc(kernels, 1, 64);
      setActivations(kernels, act, randomTokens(rng(8), 1, 64));
      const states = [allocAttentionState(kernels, 1, 16), allocAttentionState(kernels, 1, 16)];
      const pool = await ThreadPool.start({
        threads, kernels, states, scratch: [kernels.alloc(4096)], scratchBytes: 4096, spawn: spawnNodeWorker,
      });
      pools.push(pool);
      const size = kernels.memory.buffer.byteLength;
      const y = size - 4 * 32; // room for 32 of the 64 outputs
      expect(() => pool.matmul(matrix, act, y, 1)).toThrow(/lies outside the Wasm memory/);
    });
  }
});
