// llama.cpp's GGUF files of Llama models (general.architecture "llama"), written here from random Llama
// checkpoint folders the way llama.cpp's converter writes them (q/k rows permuted for its adjacent-pairs
// RoPE, llama3 scaling as rope_freqs.weight, llama.cpp's key and tensor names), then loaded beside the
// folder: the float32 reference gives the folder's logits to float32 rounding from an F32 file, the engine
// (computing with the file's values) matches the reference on the same file, and a file whose rows were NOT
// permuted (or permuted twice) gives something else. Every ggml type on its own: ggml-types.test.ts.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import { loadModel, type Model } from "../../src/api.js";
import { CheckpointError, memorySource } from "../../src/env/byte-source.js";
import { GgufFile } from "../../src/model/checkpoint/gguf.js";
import { f32, str, u32, u32s, type GgufTensorToWrite, type GgufValue } from "../../src/model/checkpoint/gguf-writer.js";
import { quantizeRowsQ4_0Ref } from "../../src/kernels/quantize.js";
import { ropeInverseFrequencies } from "../../src/model/rope.js";
import { resolveTensorNames } from "../../src/model/tensor-names.js";
import { loadConfig } from "../../src/node/bundled.js";
import { openCheckpoint } from "../../src/node/folder.js";
import { writeGgufFile } from "../../src/node/gguf-files.js";
import { readLlamaCppGgufModel } from "../../src/session/llama-gguf-model.js";
import { readAnyGgufModel } from "../../src/session/open.js";
import { GgufWeights } from "../../src/model/checkpoint/gguf-weights.js";
import { WasmEngine } from "../../src/model/engine.js";
import { ReferenceBackend, loadReferenceWeights } from "../../src/reference/backend.js";
import { engineOptions } from "../helpers/node-kernels.js";
import { argmax, cosine, relativeError } from "../helpers/compare.js";
import { run as info } from "../../src/cli/commands/info.js";
import { llamaGguf, ropeFrequencyDivisors, type LlamaGgufOptions } from "../../bench/llama-gguf.js";
import { writeLlamaFolder, type LlamaShape } from "../helpers/llama-folder.js";
import { rewriteGguf } from "../checkpoint/gguf-helpers.js";
import { openFileSource } from "../../src/node/file-source.js";

const made: string[] = [];
const tmp = () => {
  const dir = mkdtempSync(join(tmpdir(), "llama-gguf-"));
  made.push(dir);
  return dir;
};
afterAll(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));

const TOKENS = [1000, 17, 402, 999, 3, 511, 77, 1023, 250, 640];


type WriteOptions = Pick<LlamaGgufOptions, "matrices" | "q4_0">;

/** The folder as a llama.cpp GGUF; `permute: false` writes q/k rows in Hugging Face's order instead. */
async function writeLlamaCppFile(dir: string, opts: WriteOptions & { permute?: boolean } = {}): Promise<string> {
  const folderConfig = loadConfig(dir);
  // Declaring the rows interleaved makes the writer store them as they are (no reordering).
  const config = opts.permute === false ? { ...folderConfig, ropeStyle: "interleaved" as const } : folderConfig;
  const ckpt = await openCheckpoint(dir);
  try {
    const { metadata, tensors } = llamaGguf({ ckpt, config, names: resolveTensorNames(folderConfig, ckpt), name: "test", ...opts });
    const path = join(tmp(), "model.gguf");
    await writeGgufFile(path, metadata, tensors);
    return path;
  } finally {
    await ckpt.close();
  }
}

/** Every position's logits of TOKENS from a folder or a file, on the int4 engine or the reference. */
async function logits(path: string, backend: "wasm" | "reference"): Promise<Float32Array[]> {
  const model: Model = await loadModel(path, { backend, threads: 1, contextLength: 16 });
  try {
    return model.logits(TOKENS, true);
  } finally {
    await model.dispose();
  }
}

/** Q4_0 blocks of the engine's own recipe (the scalar twin of convert's kernel), from the f32 values. */
const recipeQ4_0 = {
  matrices: "Q4_0",
  q4_0: (x: Float32Array, rows: number, cols: number) => quantizeRowsQ4_0Ref(new Uint8Array(x.buffer, x.byteOffset, x.byteLength), "F32", rows, cols),
} as const;

const folders = new Map<string, Promise<string>>();
/** A random 2-layer checkpoint folder of `shape` (one per shape and `extra`, shared by the tests). */
function folder(shape: LlamaShape, extra?: Record<string, unknown>): Promise<string> {
  const key = `${shape} ${JSON.stringify(extra ?? {})}`;
  if (!folders.has(key)) {
    folders.set(
      key,
      writeLlamaFolder(shape, 2, 1024, folders.size + 3, extra).then((f) => {
        made.push(f.dir);
        return f.dir;
      }),
    );
  }
  return folders.get(key)!;
}

describe("llama.cpp GGUF files of Llama models", () => {
  for (const shape of ["SmolLM2-135M", "AMD-Llama-135m"] as const) {
    it(`${shape}: the engine on a Q4_0 file matches the reference on it and, to its int4 error, the folder; unpermuted rows do not`, async () => {
      const dir = await folder(shape);
      const file = await writeLlamaCppFile(dir, recipeQ4_0);
      const [got, want] = [await logits(file, "wasm"), await logits(file, "reference")];
      want.forEach((w, t) => {
        expect(cosine(w, got[t])).toBeGreaterThan(0.999);
        expect(argmax(got[t])).toBe(argmax(w));
      });
      // The recipe's Q4_0 blocks: the folder quantized as the engine quantizes it (il4 x int8 per token).
      const fromFolder = await logits(dir, "wasm");
      fromFolder.forEach((f, t) => expect(cosine(f, got[t])).toBeGreaterThan(0.999));
      // The rows as Hugging Face stores them, read as llama.cpp's order: RoPE then pairs the wrong dimensions.
      const unpermuted = await writeLlamaCppFile(dir, { ...recipeQ4_0, permute: false });
      expect(relativeError(await logits(unpermuted, "wasm"), got)).toBeGreaterThan(1e-2);
    }, 120_000);
  }

  it("ggml-rounded Q4_0 (as llama-quantize writes it): the engine matches the reference on the same blocks (cosine >= 0.999, same top-1)", async () => {
    const file = await writeLlamaCppFile(await folder("SmolLM2-135M"), { matrices: "Q4_0" });
    const [got, want] = [await logits(file, "wasm"), await logits(file, "reference")];
    want.forEach((w, t) => {
      expect(cosine(w, got[t])).toBeGreaterThan(0.999);
      expect(argmax(got[t])).toBe(argmax(w));
    });
  }, 120_000);

  it("the reference from an F32 file gives the folder's logits to float32 rounding (and from F16 nearly)", async () => {
    const dir = await folder("SmolLM2-135M");
    const fromFolder = await logits(dir, "reference");
    const f32 = await logits(await writeLlamaCppFile(dir, { matrices: "F32" }), "reference");
    expect(relativeError(f32, fromFolder)).toBeLessThan(1e-5);
    const f16 = await logits(await writeLlamaCppFile(dir, { matrices: "F16" }), "reference");
    expect(relativeError(f16, fromFolder)).toBeLessThan(1e-2);
    const unpermuted = await logits(await writeLlamaCppFile(dir, { matrices: "F32", permute: false }), "reference");
    expect(relativeError(unpermuted, fromFolder)).toBeGreaterThan(1e-2);
    // The engine computes the F32 file's matrices in f32 (never with fewer bits than the file): the reference's
    // logits but for its int8 KV cache.
    expect(relativeError(await logits(await writeLlamaCppFile(dir, { matrices: "F32" }), "wasm"), f32)).toBeLessThan(1e-2);
  }, 120_000);

  it("the file's q/k rows reordered once more at load (read as rotate_half) are far off, on both backends", async () => {
    const dir = await folder("SmolLM2-135M");
    const path = await writeLlamaCppFile(dir, { matrices: "F32" });
    const file = await GgufFile.open(await openFileSource(path));
    try {
      const m = await readLlamaCppGgufModel(file);
      const twice = { ...m.config, ropeStyle: "rotate_half" as const };
      const engine = await WasmEngine.load(twice, new GgufWeights(file), m.names, engineOptions({ contextLength: 16, threads: 1 }));
      try {
        expect(relativeError(engine.forward(TOKENS, 0, true), await logits(dir, "wasm"))).toBeGreaterThan(1e-2);
      } finally {
        await engine.dispose();
      }
      const reference = new ReferenceBackend(twice, await loadReferenceWeights(new GgufWeights(file), m.names), 16);
      expect(relativeError(reference.forward(TOKENS, 0, true), await logits(dir, "reference"))).toBeGreaterThan(1e-2);
    } finally {
      await file.close();
    }
  }, 120_000);

  it("reads the config a folder with model_type llama gives, but for the q/k row order", async () => {
    const dir = await folder("AMD-Llama-135m");
    const file = await GgufFile.open(memorySource("amd.gguf", readFileSync(await writeLlamaCppFile(dir, recipeQ4_0))));
    const m = await readLlamaCppGgufModel(file);
    const fromFolder = loadConfig(dir);
    expect(m.config).toEqual({ ...fromFolder, ropeStyle: "interleaved", defaulted: [] });
    expect(fromFolder.tieWordEmbeddings).toBe(false);
    expect(m.names.lmHead).toBe("output.weight");
    // The file carries no tokenizer.json: the tokenizer is built from its tokenizer.ggml.* vocabulary.
    expect(m.tokenizer?.bosTokenId).toBe(fromFolder.bosTokenId);
    expect(m.quantization).toBe("file");
  });

  it("llama3 RoPE scaling: rope_freqs.weight gives the folder's frequencies and logits", async () => {
    const scaling = { rope_type: "llama3", factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 };
    const dir = await folder("SmolLM2-135M", { rope_scaling: scaling });
    const folderConfig = loadConfig(dir);
    const path = await writeLlamaCppFile(dir, { matrices: "F32" });
    const file = await GgufFile.open(await openFileSource(path));
    let ggufConfig;
    try {
      ggufConfig = (await readLlamaCppGgufModel(file)).config;
    } finally {
      await file.close();
    }
    expect(ggufConfig.rope.full_attention.scaling?.type).toBe("factors");
    // All three bands of the llama3 rule occur: kept (1), blended, slowed by the factor (32).
    const divisors = Array.from(ropeFrequencyDivisors(folderConfig));
    expect(divisors[0]).toBe(1);
    expect(divisors[31]).toBe(32);
    expect(divisors.some((f) => f > 1 && f < 32)).toBe(true);
    const want = ropeInverseFrequencies(folderConfig.headDim, folderConfig.rope.full_attention);
    const got = ropeInverseFrequencies(ggufConfig.headDim, ggufConfig.rope.full_attention);
    got.forEach((w, i) => expect(Math.abs(w - want[i]) / want[i]).toBeLessThan(1e-6));
    const unscaled = ropeInverseFrequencies(folderConfig.headDim, { ...folderConfig.rope.full_attention, scaling: null });
    expect(unscaled[31] / got[31]).toBeCloseTo(32, 4);
    expect(relativeError(await logits(path, "reference"), await logits(dir, "reference"))).toBeLessThan(1e-5);
  }, 120_000);
});

function once(b: Uint8Array): GgufTensorToWrite["data"] {
  return async function* () {
    yield b;
  };
}

// ---------------------------------------------------------------------------------------------------------
// Hostile and unsupported files

describe("a llama.cpp file this loader cannot run is refused with one line", () => {
  let base: Uint8Array;
  beforeAll(async () => {
    base = new Uint8Array(readFileSync(await writeLlamaCppFile(await folder("SmolLM2-135M"), recipeQ4_0)));
  }, 60_000);

  /** The CheckpointError message of reading `bytes`, or "ok". */
  async function outcome(bytes: Uint8Array): Promise<string> {
    try {
      await readAnyGgufModel(await GgufFile.open(memorySource("bad.gguf", bytes)));
      return "ok";
    } catch (err) {
      if (!(err instanceof CheckpointError)) throw err;
      expect(err.message).not.toContain("\n");
      return err.message;
    }
  }
  const setKey = (key: string, v: GgufValue | null) => (entries: Array<[string, GgufValue]>) => {
    const i = entries.findIndex(([k]) => k === key);
    if (v === null) entries.splice(i, 1);
    else if (i < 0) entries.push([key, v]);
    else entries[i] = [key, v];
  };
  const withKey = async (key: string, v: GgufValue | null) => outcome(await rewriteGguf(base, { metadata: setKey(key, v) }));

  it("reads the unedited file", async () => {
    expect(await outcome(base)).toBe("ok");
  });

  it("keys: missing, wrongly typed, out of range, disagreeing", async () => {
    expect(await withKey("llama.block_count", null)).toMatch(/missing required metadata key llama\.block_count$/);
    expect(await withKey("llama.attention.head_count", str("9"))).toMatch(/llama\.attention\.head_count is string, expected an integer/);
    expect(await withKey("llama.attention.head_count", u32s([9, 9]))).toMatch(/llama\.attention\.head_count is an array \(per-layer values are not supported\)/);
    expect(await withKey("llama.attention.head_count_kv", u32(4))).toMatch(/num_attention_heads 9 is not divisible by num_key_value_heads 4/);
    expect(await withKey("llama.attention.layer_norm_rms_epsilon", u32(1))).toMatch(/layer_norm_rms_epsilon is u32, expected f32/);
    expect(await withKey("llama.attention.layer_norm_rms_epsilon", f32(0))).toMatch(/"rms_norm_eps" must be a positive number/);
    expect(await withKey("llama.vocab_size", u32(999))).toMatch(/llama\.vocab_size is 999 but token_embd\.weight has 1024 rows/);
    expect(await withKey("llama.block_count", u32(1e9))).toMatch(/"num_hidden_layers" is 1000000000, more than the 1024/);
    expect(await withKey("llama.feed_forward_length", u32(1024))).toMatch(/tensor blk\.0\.ffn_gate\.weight has shape \[1536, 576\] but the file's keys imply \[1024, 576\]/);
    expect(await withKey("llama.attention.value_length", u32(32))).toMatch(/value_length 32 differs from the key length 64/);
    expect(await withKey("llama.rope.dimension_count", u32(32))).toMatch(/partial RoPE is not supported/);
    expect(await withKey("tokenizer.ggml.bos_token_id", u32(5000))).toMatch(/bos_token_id 5000 is not a token id \(the vocabulary has 1024 tokens\)/);
    // An out-of-range padding id is ignored, as llama.cpp ignores it.
    expect(await withKey("tokenizer.ggml.padding_token_id", u32(2 ** 32 - 1))).toBe("ok");
  });

  it("models of another kind: mixture of experts, unsupported RoPE scaling, another architecture", async () => {
    expect(await withKey("llama.expert_count", u32(8))).toMatch(/llama\.expert_count is 8: mixture-of-experts models are not supported/);
    expect(await withKey("llama.rope.scaling.type", str("yarn"))).toMatch(/llama\.rope\.scaling\.type "yarn" is not supported/);
    expect(await withKey("llama.expert_count", u32(0))).toBe("ok");
    expect(await withKey("general.architecture", str("qwen2"))).toMatch(/general\.architecture is "qwen2"; this loader reads "mobilellmpro" \(mobilellm convert\), "llama" \(llama.cpp.s llama files\), "gemma3" \(llama.cpp.s gemma3 files\)/);
  });

  it("tensors: missing, unexpected, misshapen, of an unreadable type, a bad rope_freqs", async () => {
    const edit = async (f: (ts: GgufTensorToWrite[]) => void) => outcome(await rewriteGguf(base, { tensors: f }));
    expect(await edit((ts) => ts.splice(ts.findIndex((t) => t.name === "blk.1.ffn_up.weight"), 1))).toMatch(/missing tensor blk\.1\.ffn_up\.weight$/);
    expect(await edit((ts) => ts.splice(ts.findIndex((t) => t.name === "token_embd.weight"), 1))).toMatch(/missing tensor token_embd\.weight$/);
    const bias = { name: "blk.0.attn_q.bias", dims: [576], type: "F32" as const, data: once(new Uint8Array(576 * 4)) };
    expect(await edit((ts) => ts.push(bias))).toMatch(/unexpected tensor "blk\.0\.attn_q\.bias"/);
    // ffn_down's rows (1536 values) are whole 256-value super-blocks, so it can be declared Q2_K.
    const q2 = (ts: GgufTensorToWrite[]) => {
      const t = ts.find((x) => x.name === "blk.0.ffn_down.weight")!;
      Object.assign(t, { type: "Q2_K", data: once(new Uint8Array((1536 / 256) * 84 * 576)) });
    };
    expect(await edit(q2)).toMatch(/tensor blk\.0\.ffn_down\.weight is Q2_K; this loader reads F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K$/);
    const norm = (ts: GgufTensorToWrite[]) => Object.assign(ts.find((x) => x.name === "output_norm.weight")!, { type: "Q4_0", dims: [576], data: once(new Uint8Array(18 * 18)) });
    expect(await edit(norm)).toMatch(/tensor output_norm\.weight is Q4_0; this loader reads F32, F16 and BF16 vectors/);
    const freqs = (values: number[]) => (ts: GgufTensorToWrite[]) =>
      ts.push({ name: "rope_freqs.weight", dims: [values.length], type: "F32", data: once(new Uint8Array(Float32Array.from(values).buffer)) });
    expect(await edit(freqs(new Array(16).fill(2)))).toMatch(/tensor rope_freqs\.weight is F32 \[16\], expected F32 \[32\]/);
    expect(await edit(freqs([...new Array(31).fill(2), 0.5]))).toMatch(/rope_freqs\.weight\[31\] is 0\.5: every RoPE frequency divisor must be at least 1/);
    expect(await edit(freqs([...new Array(31).fill(2), NaN]))).toMatch(/tensor rope_freqs\.weight contains NaN\/Inf at index 31/);
    expect(await edit(freqs(new Array(32).fill(1)))).toBe("ok");
  });

  it("mutated headers end as ok or one CheckpointError line, quickly", async () => {
    const headerBytes = (await GgufFile.open(memorySource("h.gguf", base))).dataOffset;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.nat(headerBytes - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), async (edits) => {
        const bytes = base.slice();
        for (const [at, v] of edits) bytes[at] = v;
        const t0 = performance.now();
        await outcome(bytes);
        expect(performance.now() - t0).toBeLessThan(2000);
      }),
      { numRuns: 40 },
    );
  }, 120_000);
});
