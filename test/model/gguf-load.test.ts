// One answer whichever way the model came in: a folder and the GGUF `convert` writes from it load to the
// same int4 weights and give bit-identical logits (the folder path rounds its scales to f16 by default, as
// a Q4_0 block stores them). Covered on the bundled model, on a full-width MobileLLM-Pro cut to two layers,
// and on a Llama-shaped folder (rotate_half: its q and k rows are reordered on the way, for both inputs).
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadModel } from "../../src/api.js";
import { MOBILELLM_PRO_CONFIG_JSON, type ModelConfig } from "../../src/model/config.js";
import { GgufFile } from "../../src/model/checkpoint/gguf.js";
import { GgufWeights } from "../../src/model/checkpoint/gguf-weights.js";
import { WasmEngine } from "../../src/model/engine.js";
import { resolveTensorNames } from "../../src/model/tensor-names.js";
import { loadConfig } from "../../src/node/bundled.js";
import { openFileSource } from "../../src/node/file-source.js";
import { openCheckpoint } from "../../src/node/folder.js";
import { convertFolder } from "../../src/node/gguf-files.js";
import { synthesizeCheckpoint } from "../../src/node/synth.js";
import { readGgufModel } from "../../src/session/gguf-model.js";
import { allLogits, referenceModels } from "../helpers/int4-reference.js";
import { writeLlamaFolder } from "../helpers/llama-folder.js";
import { BUNDLED } from "../helpers/model-folder.js";
import { engineOptions } from "../helpers/node-kernels.js";
import { rng } from "../helpers/rng.js";

const made: string[] = [];
const tmp = (prefix: string) => {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
};
afterAll(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));

async function toGguf(dir: string): Promise<string> {
  const path = join(tmp("gguf-load-"), "model.gguf");
  await convertFolder(dir, path);
  return path;
}

const bits = (rows: Float32Array[]) => rows.map((r) => Array.from(new Uint32Array(r.buffer, r.byteOffset, r.length)));

/** Seeded token ids below `vocab`. */
function tokens(n: number, vocab: number, seed: number): number[] {
  const next = rng(seed);
  return Array.from({ length: n }, () => Math.floor(next() * Math.min(vocab, 1000)));
}

/** The engine's logits at every position of `ids` for a folder and for a GGUF file. */
async function engineLogits(input: { dir: string; config: ModelConfig } | { gguf: string }, ids: number[]): Promise<Float32Array[]> {
  const opts = engineOptions({ contextLength: ids.length, threads: 1, simd: "baseline" });
  let engine: WasmEngine;
  if ("dir" in input) {
    const ckpt = await openCheckpoint(input.dir);
    try {
      engine = await WasmEngine.load(input.config, ckpt, resolveTensorNames(input.config, ckpt), opts);
    } finally {
      await ckpt.close();
    }
  } else {
    const file = await GgufFile.open(await openFileSource(input.gguf));
    try {
      const m = readGgufModel(file);
      engine = await WasmEngine.load(m.config, new GgufWeights(file), m.names, opts);
    } finally {
      await file.close();
    }
  }
  try {
    return engine.forward(ids, 0, true);
  } finally {
    await engine.dispose();
  }
}

/** Folder vs its GGUF: the same bits. */
async function expectSameLogits(dir: string, config: ModelConfig, ids: number[]): Promise<void> {
  const gguf = await toGguf(dir);
  const fromGguf = await engineLogits({ gguf }, ids);
  const fromFolder = await engineLogits({ dir, config }, ids);
  expect(fromGguf.length).toBe(ids.length);
  expect(bits(fromFolder)).toEqual(bits(fromGguf));
}

describe("a GGUF converted from a folder gives the folder's logits, bit for bit", () => {
  it("the bundled model, through loadModel (wasm, one thread)", async () => {
    const gguf = await toGguf(BUNDLED);
    const ids = tokens(40, 1024, 1);
    const opts = { backend: "wasm", threads: 1, contextLength: 64 } as const;
    const folder = await loadModel(BUNDLED, opts);
    const file = await loadModel(gguf, opts);
    // With no path, loadModel loads the GGUF the build wrote beside the bundled folder.
    const bundled = await loadModel(undefined, opts);
    try {
      expect(file.dir).toBe(gguf);
      expect(bits(file.logits(ids, true))).toEqual(bits(folder.logits(ids, true)));
      expect(bundled.dir).toBe(resolve(`${BUNDLED}.gguf`));
      expect(bits(bundled.logits(ids, true))).toEqual(bits(folder.logits(ids, true)));
      // The text side comes from the file: the same ids and the same chat template.
      expect(file.encode("ROMEO: good night")).toEqual(folder.encode("ROMEO: good night"));
      expect(file.chatTemplate !== null).toBe(folder.chatTemplate !== null);
    } finally {
      await folder.dispose();
      await file.dispose();
      await bundled.dispose();
    }
    // The shipped file is what convert writes from the folder today (npm run build rewrites it each time).
    expect(existsSync(`${BUNDLED}.gguf`), `${BUNDLED}.gguf is missing: run "npm run build" (its build:model step writes it)`).toBe(true);
    expect(readFileSync(`${BUNDLED}.gguf`).equals(readFileSync(gguf))).toBe(true);
    await expectSameLogits(BUNDLED, loadConfig(BUNDLED), ids.slice(0, 24));
  });

  it("a full-width MobileLLM-Pro cut to two layers (hidden 1280, ffn 6144, 20 heads / 4 KV heads)", async () => {
    const dir = tmp("gguf-load-pro-");
    const { config } = await synthesizeCheckpoint({
      presetJson: MOBILELLM_PRO_CONFIG_JSON, presetName: "mobilellm-pro", outDir: dir, seed: 5, layers: 2, vocab: 1024, maxShardBytes: 1e9,
    });
    expect(config.hiddenSize).toBe(1280);
    await expectSameLogits(dir, config, tokens(24, config.vocabSize, 2));
  }, 120_000);

  it("a Llama-shaped folder (rotate_half RoPE: q and k rows reordered on the way for both)", async () => {
    const folder = await writeLlamaFolder("SmolLM2-135M", 2, 1024, 7);
    made.push(folder.dir);
    const config = loadConfig(folder.dir);
    expect(config.ropeStyle).toBe("rotate_half");
    await expectSameLogits(folder.dir, config, tokens(24, 1024, 3));
  }, 60_000);
});

describe("the reference backend reads a GGUF", () => {
  it("dequantizes its Q4_0 matrices: the float32 forward pass of the folder's weights through the f16-scale int4 recipe, bit for bit", async () => {
    const gguf = await toGguf(BUNDLED);
    const ids = tokens(16, 1024, 4);
    const model = await loadModel(gguf, { backend: "reference", contextLength: 32 });
    // The folder's weights rounded by the quantizer's scalar twin, not by the converter or decoder under test.
    const { int4 } = await referenceModels(BUNDLED, 32);
    try {
      const got = model.logits(ids, true);
      expect(got.every((row) => row.every(Number.isFinite))).toBe(true);
      expect(bits(got)).toEqual(bits(allLogits(int4, ids)));
    } finally {
      await model.dispose();
    }
  });
});
