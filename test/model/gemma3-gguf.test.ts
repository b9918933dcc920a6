// Gemma 3 as GGUF, both ways a file reaches a user: `mobilellm convert` of a folder (this project's layout,
// the folder's config.json carried) and llama.cpp's own gemma3 files (written here the way its converter
// writes them: llama.cpp's tensor names, norms stored as 1 + w, q/k rows left in rotate_half order,
// gemma3.* keys). Each gives the folder's logits on the reference, bit for bit where the weights are the same
// values (the folder's embedding factor is then sqrtf(hidden) as llama.cpp's, a float32 config); the engine
// gives a converted file's logits bit for bit and computes a llama.cpp file with the values it holds, as the
// reference on that file does; and the real gemma-3-270m file's header reads into the published config. Variants of the file (norms without the 1,
// q/k rows in another order, keys llama.cpp's gemma3 does not have) are caught.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadModel } from "../../src/api.js";
import { CheckpointError } from "../../src/env/byte-source.js";
import { GgufFile } from "../../src/model/checkpoint/gguf.js";
import { GgufWeights } from "../../src/model/checkpoint/gguf-weights.js";
import { f32, str, u32 } from "../../src/model/checkpoint/gguf-writer.js";
import type { GgufValue } from "../../src/model/checkpoint/gguf.js";
import { interleaveRopeRows } from "../../src/model/rope.js";
import { layerMap, PRESETS } from "../../src/model/config.js";
import { quantizeRowsQ4_0Ref } from "../../src/kernels/quantize.js";
import { expectedShapes, resolveTensorNames } from "../../src/model/tensor-names.js";
import { loadConfig } from "../../src/node/bundled.js";
import { openFileSource } from "../../src/node/file-source.js";
import { openCheckpoint } from "../../src/node/folder.js";
import { convertFolder, writeGgufFile } from "../../src/node/gguf-files.js";
import { readLlamaCppHeader } from "../../src/session/llama-gguf-model.js";
import { GEMMA3_GGUF } from "../../src/session/gemma3-gguf-model.js";
import { llamaCppKeys, type KeyReaders } from "../../src/session/llama-cpp-architecture.js";
import { llamaGguf, type LlamaGgufOptions } from "../../bench/llama-gguf.js";
import { writeGemma3Folder } from "../helpers/gemma3-folder.js";
import { rewriteGguf } from "../checkpoint/gguf-helpers.js";
import { argmax, cosine, relativeError } from "../helpers/compare.js";
import { GEMMA3_270M_Q4_K_M, hubFilesPresent, hubPath } from "../helpers/hub-files.js";

const made: string[] = [];
const tmp = () => {
  const dir = mkdtempSync(join(tmpdir(), "gemma3-gguf-"));
  made.push(dir);
  return dir;
};
afterAll(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));

const TOKENS = [1000, 17, 402, 999, 3, 511, 77, 1023, 250, 640];
const bits = (rows: Float32Array[]) => rows.map((r) => Array.from(new Uint32Array(r.buffer, r.byteOffset, r.length)));


async function logits(path: string, backend: "wasm" | "reference"): Promise<Float32Array[]> {
  const model = await loadModel(path, { backend, threads: 1, contextLength: 16 });
  try {
    return model.logits(TOKENS, true);
  } finally {
    await model.dispose();
  }
}

/** A 6-layer gemma-3-270m folder (layer 5 global), window 4, float32 config: llama.cpp's sqrtf(hidden) factor. */
let folderDir: Promise<string> | undefined;
function folder(): Promise<string> {
  folderDir ??= writeGemma3Folder("gemma-3-270m", 6, 1024, 21, { sliding_window: 4, torch_dtype: "float32" }).then((f) => {
    made.push(f.dir);
    return f.dir;
  });
  return folderDir;
}

/** The folder as llama.cpp's converter writes it; "no-norm-offset" writes the norms as Hugging Face stores them (w, without the 1). */
async function writeLlamaCppFile(dir: string, opts: Pick<LlamaGgufOptions, "matrices" | "q4_0"> & { variant?: "no-norm-offset" } = {}): Promise<string> {
  const config = loadConfig(dir);
  const ckpt = await openCheckpoint(dir);
  try {
    const names = resolveTensorNames(config, ckpt);
    const { metadata, tensors } = llamaGguf({ ckpt, config, names: opts.variant === "no-norm-offset" ? { ...names, normOffset: 0 } : names, name: "test", ...opts });
    const path = join(tmp(), "model.gguf");
    await writeGgufFile(path, metadata, tensors);
    return path;
  } finally {
    await ckpt.close();
  }
}

/** An F32 file edited: its q and k rows reordered to adjacent pairs, as llama.cpp's converter does for llama (never for gemma3). */
async function withLlamaRows(path: string): Promise<string> {
  const bytes = readFileSync(path);
  const out = join(tmp(), "llama-rows.gguf");
  writeFileSync(out, await rewriteGguf(bytes, {
    tensors: (ts) => {
      for (const t of ts) {
        if (!/\.attn_[qk]\.weight$/.test(t.name)) continue;
        const data = t.data;
        t.data = async function* () {
          for await (const chunk of data()) yield interleaveRopeRows(chunk, t.dims[1], t.dims[0] * 4, 256);
        };
      }
    },
  }));
  return out;
}

describe("Gemma 3 GGUF files", () => {
  it("convert writes llama.cpp's tensor names with norms as 1 + w, and the engine gives the folder's logits bit for bit", async () => {
    const dir = await folder();
    const path = join(tmp(), "converted.gguf");
    await convertFolder(dir, path);
    const file = await GgufFile.open(await openFileSource(path));
    try {
      expect(file.metadata.string("general.architecture")).toBe("mobilellmpro");
      expect(file.has("blk.0.post_ffw_norm.weight") && file.has("blk.5.attn_q_norm.weight") && file.has("blk.0.post_attention_norm.weight")).toBe(true);
      const ckpt = await openCheckpoint(dir);
      try {
        const w = await ckpt.readF32("model.layers.0.post_feedforward_layernorm.weight");
        const stored = await new GgufWeights(file).readF32("blk.0.post_ffw_norm.weight");
        expect(Array.from(stored)).toEqual(Array.from(w, (x) => Math.fround(1 + x)));
      } finally {
        await ckpt.close();
      }
    } finally {
      await file.close();
    }
    expect(bits(await logits(path, "wasm"))).toEqual(bits(await logits(dir, "wasm")));
  }, 120_000);

  it("a llama.cpp gemma3 file of the same weights: F32 gives the folder's logits bit for bit on the reference; the engine computes F32 and Q4_0 files with their values, as the reference does", async () => {
    const dir = await folder();
    const f32File = await writeLlamaCppFile(dir, { matrices: "F32" });
    const model = await loadModel(f32File, { backend: "reference", contextLength: 16 });
    try {
      expect(model.config).toMatchObject({ architecture: "gemma3", ropeStyle: "rotate_half", slidingWindow: 4, embedScale: Math.fround(Math.sqrt(640)), queryScale: 1 / 16 });
      expect(layerMap(model.config)).toBe("SSSSSG");
    } finally {
      await model.dispose();
    }
    const f32 = await logits(f32File, "reference");
    expect(bits(f32)).toEqual(bits(await logits(dir, "reference")));
    // A llama.cpp file's matrices are computed with the values it holds (F32 in f32, never with fewer bits):
    // the reference's logits but for the engine's int8 KV cache.
    expect(relativeError(await logits(f32File, "wasm"), f32)).toBeLessThan(1e-2);
    const q4 = await writeLlamaCppFile(dir, {
      matrices: "Q4_0",
      q4_0: (x, rows, cols) => quantizeRowsQ4_0Ref(new Uint8Array(x.buffer, x.byteOffset, x.byteLength), "F32", rows, cols),
    });
    const [got, want] = [await logits(q4, "wasm"), await logits(q4, "reference")];
    want.forEach((w, t) => {
      expect(cosine(w, got[t])).toBeGreaterThan(0.999);
      expect(argmax(got[t])).toBe(argmax(w));
    });
  }, 180_000);

  it("norms stored without llama.cpp's 1, or q/k rows in llama's adjacent-pair order, give other logits", async () => {
    const dir = await folder();
    const want = await logits(dir, "reference");
    expect(relativeError(await logits(await writeLlamaCppFile(dir, { matrices: "F32", variant: "no-norm-offset" }), "reference"), want)).toBeGreaterThan(1e-2);
    expect(relativeError(await logits(await withLlamaRows(await writeLlamaCppFile(dir, { matrices: "F32" })), "reference"), want)).toBeGreaterThan(1e-2);
  }, 120_000);

  it("reads llama.cpp's gemma3 keys: linear scaling on global layers, no sliding window means all global, 27B's score scale", async () => {
    const path = await writeLlamaCppFile(await folder(), { matrices: "F16" });
    const header = async (edit: Parameters<typeof rewriteGguf>[1]) => {
      const out = join(tmp(), "edited.gguf");
      writeFileSync(out, await rewriteGguf(readFileSync(path), edit));
      const file = await GgufFile.open(await openFileSource(out));
      try {
        return (await readLlamaCppHeader(file)).config;
      } finally {
        await file.close();
      }
    };
    const add = (...entries: Array<[string, GgufValue]>) => ({ metadata: (md: Array<[string, GgufValue]>) => void md.push(...entries) });
    const drop = (key: string) => ({ metadata: (md: Array<[string, GgufValue]>) => void md.splice(md.findIndex(([k]) => k === key), 1) });
    const scaled = await header(add(["gemma3.rope.scaling.type", str("linear")], ["gemma3.rope.scaling.factor", f32(8)]));
    expect(scaled.rope).toEqual({ full_attention: { theta: 1e6, scaling: { type: "linear", factor: 8 } }, sliding_attention: { theta: 10000, scaling: null } });
    expect(layerMap(await header(drop("gemma3.attention.sliding_window")))).toBe("GGGGGG");
    expect((await header(add(["gemma3.rope.freq_base_swa", f32(20000)]))).rope.sliding_attention.theta).toBe(20000);
    // llama.cpp's score scale: 1/sqrt(key_length), but 1/sqrt(embedding / heads) for the 62-layer 27B
    const keys = (values: Record<string, number>): KeyReaders => ({
      int: (k) => values[k], float: (k) => values[k], string: () => undefined, fail: (m) => { throw new Error(m); },
    });
    const K = llamaCppKeys("gemma3");
    const sizes27b = { [K.blockCount]: 62, [K.embeddingLength]: 5376, [K.headCount]: 32, [K.keyLength]: 128, [K.slidingWindow]: 1024 };
    expect(GEMMA3_GGUF.configJson(keys(sizes27b), K)).toMatchObject({ query_pre_attn_scalar: 168, head_dim: 128, sliding_window_pattern: 6 });
    expect(GEMMA3_GGUF.configJson(keys({ ...sizes27b, [K.blockCount]: 48 }), K)).toMatchObject({ query_pre_attn_scalar: 128 });
    await expect(header(add(["gemma3.final_logit_softcapping", f32(30)]))).rejects.toThrow(/gemma3\.final_logit_softcapping is 30: logit soft-capping is not implemented/);
    await expect(header(add(["gemma3.rope.scaling.type", str("yarn")]))).rejects.toThrow(/gemma3\.rope\.scaling\.type "yarn" is not supported/);
    await expect(header(drop("gemma3.block_count"))).rejects.toThrow(/missing required metadata key gemma3\.block_count/);
    await expect(header({ metadata: (md) => void md.splice(md.findIndex(([k]) => k === "gemma3.attention.head_count_kv"), 1, ["gemma3.attention.head_count_kv", u32(3)]) })).rejects.toThrow(CheckpointError);
    await expect(header({ tensors: (ts) => void ts.splice(ts.findIndex((t) => t.name === "blk.3.attn_k_norm.weight"), 1) })).rejects.toThrow(/missing tensor blk\.3\.attn_k_norm\.weight/);
  }, 120_000);
});

describe.runIf(hubFilesPresent(GEMMA3_270M_Q4_K_M))("the real gemma-3-270m Q4_K_M file", () => {
  it("its header reads into the published gemma-3-270m config, every tensor under llama.cpp's name with its shape", async () => {
    const file = await GgufFile.open(await openFileSource(hubPath(GEMMA3_270M_Q4_K_M)));
    try {
      const { config, names } = await readLlamaCppHeader(file);
      const published = PRESETS["gemma-3-270m"].config;
      for (const key of ["architecture", "ropeStyle", "norms", "activation", "qkNorm", "hiddenSize", "intermediateSize", "numLayers", "numHeads", "numKvHeads", "headDim", "vocabSize", "maxPositions", "rmsNormEps", "slidingWindow", "queryScale", "tieWordEmbeddings", "layers", "rope"] as const) {
        expect([key, config[key]]).toEqual([key, published[key]]);
      }
      // llama.cpp multiplies by sqrtf(640), transformers by its bfloat16 rounding (25.25).
      expect(config.embedScale).toBe(Math.fround(Math.sqrt(640)));
      expect([config.bosTokenId, config.padTokenId]).toEqual([2, 0]);
      expect(expectedShapes(config, names).length).toBe(file.tensors.length);
      const types = new Set(file.tensors.map((t) => t.type));
      expect([...types].sort()).toEqual(["F32", "Q4_K", "Q5_0", "Q6_K", "Q8_0"]);
    } finally {
      await file.close();
    }
  });
});
