// Loading quantizes (a folder's float rows) or repacks (a GGUF's Q4_0 blocks) each staged read on every
// thread of the pool, whole 4-row blocks per chunk. A split that dropped, shifted or overlapped rows would
// change weights: the logits of every position, and every row of the tied head, must have the bits a
// one-thread load gives. Small staging regions make many reads per tensor, each cut into several chunks,
// and a vocabulary of 301 rows leaves a last block of one row (padding rows the split must not overwrite).
// Which thread runs which chunk is up to the machine; jobs.test.ts checks every chunk through a worker's
// path deterministically.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { GgufFile } from "../../src/model/checkpoint/gguf.js";
import { GgufWeights } from "../../src/model/checkpoint/gguf-weights.js";
import { WasmEngine, type EngineOptions } from "../../src/model/engine.js";
import { openFileSource } from "../../src/node/file-source.js";
import { convertFolder } from "../../src/node/gguf-files.js";
import { readGgufModel } from "../../src/session/gguf-model.js";
import { BUNDLED } from "../helpers/model-folder.js";
import { engineOptions } from "../helpers/node-kernels.js";
import { engineFor, firstDifferentRow, randomModelFolder } from "./helpers.js";
import { openCheckpoint } from "../../src/node/folder.js";
import { loadConfig } from "../../src/node/bundled.js";
import { resolveTensorNames } from "../../src/model/tensor-names.js";
import type { WeightSource } from "../../src/model/weights.js";
import type { SpawnWorker } from "../../src/threads/pool.js";

const cleanups: Array<() => void> = [];
afterAll(() => cleanups.forEach((c) => c()));

const spec = { layers: 2, hidden: 64, heads: 4, kvHeads: 2, headDim: 16, ffn: 96, vocab: 301, window: 8, pattern: "GS" };
const ids = Array.from({ length: 20 }, (_, i) => (i * 37 + 11) % spec.vocab);

/** All logits of `ids` from a fresh engine, and its pool's chunk count (the load's regions included). */
async function run(load: (opts: Omit<EngineOptions, "wasm">) => Promise<WasmEngine>, threads: number): Promise<{ logits: Float32Array[]; chunks: number }> {
  const e = await load({ contextLength: 32, threads, stagingBytes: 8 << 10, threadsFirst: true });
  try {
    const chunks = e.threadPool.stats.chunks;
    return { logits: e.forward(ids, 0, true), chunks };
  } finally {
    await e.dispose();
  }
}

describe("a load split across threads gives the weights of a one-thread load", () => {
  it("a float folder (quantized rows), threads 1, 2 and 3", async () => {
    const { config, dir, cleanup } = await randomModelFolder(spec, 17);
    cleanups.push(cleanup);
    const load = (opts: Omit<EngineOptions, "wasm">) => engineFor(dir, config, opts);
    const one = await run(load, 1);
    for (const threads of [2, 3]) {
      const many = await run(load, threads);
      // The load itself ran many chunks: 8 KiB reads of 256- and 384-byte rows, several chunks each.
      expect(many.chunks).toBeGreaterThan(100);
      expect(firstDifferentRow(many.logits, one.logits)).toBe(-1);
    }
    expect(one.logits.length).toBe(ids.length);
  });

  it("a GGUF file (repacked Q4_0 blocks), threads 1 and 2", async () => {
    const dir = mkdtempSync(join(tmpdir(), "load-split-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, "model.gguf");
    await convertFolder(BUNDLED, path);
    const load = async (opts: Omit<EngineOptions, "wasm">) => {
      const file = await GgufFile.open(await openFileSource(path));
      try {
        const m = readGgufModel(file);
        return await WasmEngine.load(m.config, new GgufWeights(file), m.names, engineOptions(opts));
      } finally {
        await file.close();
      }
    };
    const one = await run(load, 1);
    const two = await run(load, 2);
    expect(two.chunks).toBeGreaterThan(1000);
    expect(firstDifferentRow(two.logits, one.logits)).toBe(-1);
  });

  it("a NaN in a row a worker quantizes is refused, naming the tensor and row as a one-thread load does", async () => {
    // Row 201 of the embedding table (the first matrix read); 64 KiB reads hold the whole table, so the row
    // is far from either end of its read, in one of the pool's chunks.
    const { config, dir, cleanup } = await randomModelFolder(spec, 3, (name, data) => {
      if (name === "model.embed_tokens.weight") data[201 * spec.hidden + 5] = Number.NaN;
    });
    cleanups.push(cleanup);
    for (const threads of [1, 2]) {
      await expect(engineFor(dir, config, { contextLength: 8, threads, stagingBytes: 64 << 10, threadsFirst: true })).rejects.toThrow(
        /model\.safetensors: tensor "?model\.embed_tokens\.weight"?: row 201 contains NaN\/Inf at column 5 \(value NaN\)$/,
      );
    }
  });

  it("workers that fail to start fail the load with their message at the next read, not after all of them", async () => {
    const ckpt = await openCheckpoint(BUNDLED);
    let reads = 0;
    const counted: WeightSource = {
      quantization: "recipe",
      where: (name) => ckpt.where(name),
      weight: (name) => ckpt.weight(name),
      readF32: (name) => ckpt.readF32(name),
      readRowsInto: (...args) => {
        reads++;
        return ckpt.readRowsInto(...args);
      },
    };
    const failing: SpawnWorker = (_init, events) => {
      setTimeout(() => events.error("no threads here"), 0);
      return { terminate: () => undefined };
    };
    const config = loadConfig(BUNDLED);
    try {
      const opts = { ...engineOptions({ contextLength: 8, threads: 2, stagingBytes: 2 << 10 }), spawn: failing };
      await expect(WasmEngine.load(config, counted, resolveTensorNames(config, ckpt), opts)).rejects.toThrow(
        "worker thread 1 failed: no threads here",
      );
    } finally {
      await ckpt.close();
    }
    // 2 KiB reads of the bundled model: over 2,000 in all.
    expect(reads).toBeGreaterThan(0);
    expect(reads).toBeLessThan(100);
  });
});
