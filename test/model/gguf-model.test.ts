// A checkpoint folder -> GGUF (convert) -> back: the file holds every key docs/gguf.md lists with the
// values the folder implies, the Q4_0 blocks hold the int4 recipe with f16 scales, and the reader gives back
// the folder's config, tokenizer, template and generation defaults. Files that break the layout are refused
// with one line.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CheckpointError, memorySource } from "../../src/env/byte-source.js";
import { f16BitsToF32 } from "../../src/kernels/dtype.js";
import { GgufFile, type GgufValue } from "../../src/model/checkpoint/gguf.js";
import { bools, str, u32, u32s, u64, writeGgufTo, type GgufTensorToWrite } from "../../src/model/checkpoint/gguf-writer.js";
import { convertToGguf } from "../../src/session/convert.js";
import { GGUF_ARCHITECTURE, ggufTensorNames, modelGguf, readGgufModel } from "../../src/session/gguf-model.js";
import { WasmKernels } from "../../src/kernels/wasm.js";
import { wasmBytes } from "../../src/node/wasm-files.js";
import { loadConfig, loadText } from "../../src/node/bundled.js";
import { expectedQ4_0 } from "../helpers/q4_0-reference.js";
import { PRESETS } from "../../src/model/config.js";
import { synthesizeCheckpoint } from "../../src/node/synth.js";
import { resolveTensorNames, expectedShapes } from "../../src/model/tensor-names.js";
import { parseGenerationConfig } from "../../src/generate/generation-config.js";
import { nodeFolder, openCheckpoint } from "../../src/node/folder.js";
import { nodePlatform } from "../../src/node/platform.js";
import { memorySink, rewriteGguf } from "../checkpoint/gguf-helpers.js";
import { BUNDLED, modelVariant } from "../helpers/model-folder.js";

const tmp = mkdtempSync(join(tmpdir(), "gguf-model-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function convert(dir: string): Promise<Uint8Array> {
  const sink = memorySink();
  await convertToGguf(nodeFolder(dir), sink, nodePlatform, { name: "test" });
  return sink.bytes();
}

async function open(bytes: Uint8Array): Promise<GgufFile> {
  return GgufFile.open(memorySource("model.gguf", bytes));
}

/** Signed q (nibble - 8) and half scales of Q4_0 bytes. */
function q4_0(bytes: Uint8Array): { q: Int8Array; d: Float64Array } {
  const blocks = bytes.length / 18;
  const q = new Int8Array(blocks * 32);
  const d = new Float64Array(blocks);
  for (let b = 0; b < blocks; b++) {
    d[b] = f16BitsToF32(bytes[b * 18] | (bytes[b * 18 + 1] << 8));
    for (let j = 0; j < 16; j++) {
      q[b * 32 + j] = (bytes[b * 18 + 2 + j] & 15) - 8;
      q[b * 32 + 16 + j] = (bytes[b * 18 + 2 + j] >> 4) - 8;
    }
  }
  return { q, d };
}

/** Index of the first element where two arrays differ (-1 when equal): vitest's toEqual walks typed
 * arrays element by element through its generic comparison, which takes minutes on MB-sized tensors. */
function firstDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

function value(f: GgufFile, key: string): unknown {
  const v = f.metadata.get(key);
  if (v === undefined) return undefined;
  return v.type === "array" ? Array.from(v.value as ArrayLike<unknown>) : v.value;
}

describe("the bundled model as GGUF", () => {
  let bytes: Uint8Array;
  let file: GgufFile;
  beforeAll(async () => {
    bytes = await convert(BUNDLED);
    file = await open(bytes);
  });

  it("holds the keys of docs/gguf.md with the folder's values", () => {
    const text = (f: string) => readFileSync(join(BUNDLED, f), "utf8");
    const A = "mobilellmpro";
    expect(GGUF_ARCHITECTURE).toBe(A);
    const expected: Record<string, unknown> = {
      "general.architecture": A,
      "general.name": "test",
      "general.alignment": 32,
      "general.file_type": 2,
      "general.quantization_version": 2,
      [`${A}.vocab_size`]: 1024,
      [`${A}.context_length`]: 4096,
      [`${A}.embedding_length`]: 320,
      [`${A}.block_count`]: 6,
      [`${A}.feed_forward_length`]: 768,
      [`${A}.attention.head_count`]: 5,
      [`${A}.attention.head_count_kv`]: 1,
      [`${A}.attention.key_length`]: 64,
      [`${A}.attention.value_length`]: 64,
      [`${A}.attention.layer_norm_rms_epsilon`]: Math.fround(1e-5),
      [`${A}.attention.use_qk_norm`]: false,
      [`${A}.attention.temperature_tuning`]: false,
      [`${A}.attention.temperature_scale`]: Math.fround(0.1),
      [`${A}.attention.temperature_length`]: 8192,
      [`${A}.attention.sliding_window`]: 64,
      [`${A}.attention.sliding_window_pattern`]: [0, 1, 1, 1, 0, 0],
      [`${A}.attention.rope_pattern`]: [1, 1, 1, 1, 1, 1],
      [`${A}.rope.dimension_count`]: 64,
      [`${A}.rope.freq_base`]: 10000,
      [`${A}.rope.scaling.type`]: "none",
      "tokenizer.ggml.bos_token_id": 1000,
      "tokenizer.ggml.eos_token_id": 1001,
      [`${A}.eos_token_ids`]: [1001, 1007, 1008],
      "tokenizer.ggml.padding_token_id": 1012,
      "general.sampling.temp": Math.fround(0.8),
      "general.sampling.top_k": 50,
      "general.sampling.top_p": Math.fround(0.95),
      "general.sampling.min_p": 0,
      "tokenizer.huggingface.json": text("tokenizer.json"),
      [`${A}.source.config_json`]: text("config.json"),
      [`${A}.source.tokenizer_config_json`]: text("tokenizer_config.json"),
      [`${A}.source.generation_config_json`]: text("generation_config.json"),
    };
    for (const [k, v] of Object.entries(expected)) expect([k, value(file, k)]).toEqual([k, v]);
    // nothing else: no chat template (the folder has none), no rope scaling keys
    expect(file.metadata.keys().sort()).toEqual(Object.keys(expected).sort());
    expect(file.metadata.get(`${A}.block_count`)?.type).toBe("u32");
    expect(file.metadata.get(`${A}.rope.freq_base`)?.type).toBe("f32");
    expect(file.metadata.get(`${A}.attention.sliding_window_pattern`)).toMatchObject({ type: "array", itemType: "bool" });
  });

  it("reads back as the folder's config, tokenizer and generation defaults", () => {
    const m = readGgufModel(file);
    expect(m.config).toEqual(loadConfig(BUNDLED));
    expect(m.configJson).toEqual(JSON.parse(readFileSync(join(BUNDLED, "config.json"), "utf8")));
    const folderText = loadText(BUNDLED);
    const sample = "ROMEO:\nBut soft, what light through yonder window breaks?";
    expect(m.tokenizer!.encode(sample)).toEqual(folderText.tokenizer.encode(sample));
    expect(m.tokenizer!.decode(m.tokenizer!.encode(sample), true)).toBe(folderText.tokenizer.decode(folderText.tokenizer.encode(sample), true));
    expect(m.chatTemplate).toBeNull();
    expect(m.generation).toEqual(parseGenerationConfig(JSON.parse(readFileSync(join(BUNDLED, "generation_config.json"), "utf8"))));
    expect(m.names).toEqual(ggufTensorNames(m.config));
  });

  it("stores the int4 recipe with f16 scales (as the folder path computes it), and the norms as F32", async () => {
    const config = loadConfig(BUNDLED);
    const ckpt = await openCheckpoint(BUNDLED);
    try {
      const from = expectedShapes(config, resolveTensorNames(config, ckpt));
      const to = expectedShapes(config, ggufTensorNames(config));
      expect(file.tensors.map((t) => t.name)).toEqual(to.map(([n]) => n));
      for (let i = 0; i < from.length; i++) {
        const [hf, shape] = from[i];
        const t = file.tensor(to[i][0]);
        const w = await ckpt.readF32(hf);
        const got = bytes.subarray(t.offset, t.offset + t.bytes);
        if (shape.length === 1) {
          expect(t.type).toBe("F32");
          expect(firstDifference(new Float32Array(got.slice().buffer), w)).toBe(-1);
          continue;
        }
        expect(t.type).toBe("Q4_0");
        expect(t.dims).toEqual([shape[1], shape[0]]);
        const want = expectedQ4_0(w, shape[0], shape[1]);
        const { q, d } = q4_0(got);
        expect([hf, firstDifference(q, want.q)]).toEqual([hf, -1]);
        expect([hf, firstDifference(d, want.d)]).toEqual([hf, -1]);
      }
    } finally {
      await ckpt.close();
    }
  });

  it("writes the same bytes every time", async () => {
    expect(firstDifference(await convert(BUNDLED), bytes)).toBe(-1);
  });

  it("writes the same bytes whatever the rows per read: 1, 3 and 1000 rows (reads ending mid-matrix, at its end, or past it)", async () => {
    const text = (f: string) => {
      try {
        return readFileSync(join(BUNDLED, f), "utf8");
      } catch {
        return null;
      }
    };
    const files = {
      configJson: text("config.json")!, tokenizerJson: text("tokenizer.json")!, tokenizerConfigJson: text("tokenizer_config.json"),
      generationConfigJson: text("generation_config.json"), chatTemplate: text("chat_template.jinja"),
    };
    const kernels = await WasmKernels.create("simd", wasmBytes("simd"));
    for (const rowsPerRead of [1, 3, 1000]) {
      const ckpt = await openCheckpoint(BUNDLED);
      try {
        const sink = memorySink();
        const { metadata, tensors } = modelGguf(files, ckpt, { name: "test", kernels, rowsPerRead });
        await writeGgufTo(sink, metadata, tensors);
        await sink.close();
        expect([rowsPerRead, firstDifference(sink.bytes(), bytes)]).toEqual([rowsPerRead, -1]);
      } finally {
        await ckpt.close();
      }
    }
  });

  it("a read that fails while the rows before it are written fails the conversion with its own error", async () => {
    const files = {
      configJson: readFileSync(join(BUNDLED, "config.json"), "utf8"), tokenizerJson: readFileSync(join(BUNDLED, "tokenizer.json"), "utf8"),
      tokenizerConfigJson: null, generationConfigJson: null, chatTemplate: null,
    };
    const ckpt = await openCheckpoint(BUNDLED);
    try {
      // The fourth read is started ahead while the third one's blocks are written, and fails meanwhile.
      let reads = 0;
      const readRowsInto = ckpt.readRowsInto.bind(ckpt);
      ckpt.readRowsInto = async (...a) => {
        if (++reads === 4) throw new CheckpointError("disk on fire");
        return readRowsInto(...a);
      };
      const kernels = await WasmKernels.create("simd", wasmBytes("simd"));
      const { metadata, tensors } = modelGguf(files, ckpt, { name: "test", kernels, rowsPerRead: 100 });
      const sink = memorySink();
      const write = sink.write;
      sink.write = async (chunk) => {
        await new Promise((r) => setTimeout(r, 5)); // the failed read settles while this write is under way
        await write(chunk);
      };
      await expect(writeGgufTo(sink, metadata, tensors)).rejects.toThrow(/^disk on fire$/);
    } finally {
      await ckpt.close();
    }
  });
});

describe("a variant with every optional feature", () => {
  it("carries rope scaling, NoPE layers, QK-norm, temperature tuning, an untied head and a chat template", async () => {
    const dir = await modelVariant({
      config: (c) => ({
        ...c,
        rope_scaling: { rope_type: "llama3", factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 1024 },
        no_rope_layers: [1, 0, 1, 1, 0, 1],
        use_qk_norm: true,
        attn_temperature_tuning: true,
        floor_scale: 4096,
        tie_word_embeddings: false,
      }),
      extra: [{ name: "lm_head.weight", dtype: "BF16", shape: [1024, 320], data: Float32Array.from({ length: 1024 * 320 }, (_, i) => Math.sin(i) * 0.05) }],
    });
    try {
      const template = readFileSync("test/fixtures/llama4-chat-template.jinja", "utf8");
      writeFileSync(join(dir, "chat_template.jinja"), template);
      const f = await open(await convert(dir));
      const A = GGUF_ARCHITECTURE;
      expect(value(f, `${A}.rope.scaling.type`)).toBe("llama3");
      expect(value(f, `${A}.rope.scaling.factor`)).toBe(8);
      expect(value(f, `${A}.rope.scaling.low_freq_factor`)).toBe(1);
      expect(value(f, `${A}.rope.scaling.high_freq_factor`)).toBe(4);
      expect(value(f, `${A}.rope.scaling.original_context_length`)).toBe(1024);
      expect(value(f, `${A}.attention.rope_pattern`)).toEqual([1, 0, 1, 1, 0, 1]);
      expect(value(f, `${A}.attention.use_qk_norm`)).toBe(true);
      expect(value(f, `${A}.attention.temperature_tuning`)).toBe(true);
      expect(value(f, `${A}.attention.temperature_length`)).toBe(4096);
      expect(value(f, "tokenizer.chat_template")).toBe(template);
      expect(f.tensor("output.weight")).toMatchObject({ type: "Q4_0", shape: [1024, 320] });
      const m = readGgufModel(f);
      expect(m.config).toEqual(loadConfig(dir));
      expect(m.names.lmHead).toBe("output.weight");
      expect(m.chatTemplateSource).toBe(template);
      expect(m.chatTemplate!.render([{ role: "user", content: "hi" }])).toBe(loadText(dir).chatTemplate!.render([{ role: "user", content: "hi" }]));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("convert refuses weights the file could not hold as the folder path computes them", () => {
  it("a NaN weight or a scale past the largest half fails the conversion and leaves nothing behind", async () => {
    for (const [poison, message] of [
      [NaN, /^tensor model\.layers\.2\.self_attn\.v_proj\.weight: row 0 contains NaN\/Inf at column 7 \(value NaN\)$/],
      [6e5, /^tensor model\.layers\.2\.self_attn\.v_proj\.weight: row 0, columns 0-31: max\|w\| = 598016 needs a scale of [\d.]+, beyond f16 \(65504\)/],
    ] as const) {
      const dir = await modelVariant({ tensor: (name, data, shape) => (name === "model.layers.2.self_attn.v_proj.weight" ? (data.set([poison], 7), { name, data, shape }) : { name, data, shape }) });
      try {
        const sink = memorySink();
        let aborted = false;
        const abort = sink.abort;
        sink.abort = async () => {
          aborted = true;
          await abort();
        };
        await expect(convertToGguf(nodeFolder(dir), sink, nodePlatform, { name: "x" })).rejects.toThrow(message);
        expect(aborted).toBe(true);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  });
});

describe("a full-width synthetic checkpoint", () => {
  it("round-trips the preset's widths and special ids", async () => {
    const dir = join(tmp, "synth");
    await synthesizeCheckpoint({ presetJson: PRESETS["mobilellm-pro"].json, presetName: "mobilellm-pro", outDir: dir, seed: 5, layers: 1, vocab: 1024, maxShardBytes: 30e6 });
    const bytes = await convert(dir);
    const f = await open(bytes);
    const m = readGgufModel(f);
    const config = loadConfig(dir);
    expect(m.config).toEqual(config);
    expect(value(f, `${GGUF_ARCHITECTURE}.embedding_length`)).toBe(1280);
    expect(value(f, `${GGUF_ARCHITECTURE}.feed_forward_length`)).toBe(6144);
    expect(value(f, `${GGUF_ARCHITECTURE}.attention.head_count_kv`)).toBe(4);
    expect(value(f, `${GGUF_ARCHITECTURE}.attention.sliding_window`)).toBe(512);
    expect(f.tensor("blk.0.ffn_down.weight")).toMatchObject({ type: "Q4_0", dims: [6144, 1280], bytes: 1280 * (6144 / 32) * 18 });
    // one matrix checked value by value against the folder path
    const ckpt = await openCheckpoint(dir);
    try {
      const wk = await ckpt.readF32("model.layers.0.self_attn.k_proj.weight");
      const t = f.tensor("blk.0.attn_k.weight");
      const { q, d } = q4_0(bytes.subarray(t.offset, t.offset + t.bytes));
      const want = expectedQ4_0(wk, 256, 1280);
      expect(firstDifference(q, want.q)).toBe(-1);
      expect(firstDifference(d, want.d)).toBe(-1);
    } finally {
      await ckpt.close();
    }
  });
});

describe("files that break the layout", () => {
  let base: Uint8Array;
  beforeAll(async () => {
    base = await convert(BUNDLED);
  });
  const A = GGUF_ARCHITECTURE;
  const setKey = (key: string, v: GgufValue) => (e: Array<[string, GgufValue]>) => {
    const i = e.findIndex(([k]) => k === key);
    if (i >= 0) e[i] = [key, v];
    else e.push([key, v]);
  };
  const dropKey = (key: string) => (e: Array<[string, GgufValue]>) => {
    e.splice(
      e.findIndex(([k]) => k === key),
      1,
    );
  };
  const source = (f: string) => readFileSync(join(BUNDLED, f), "utf8");
  const cases: Array<[string, { metadata?: (e: Array<[string, GgufValue]>) => void; tensors?: (t: GgufTensorToWrite[]) => void }, RegExp]> = [
    ["no architecture", { metadata: dropKey("general.architecture") }, /missing required metadata key general\.architecture/],
    ["another architecture", { metadata: setKey("general.architecture", str("llama")) }, /general\.architecture is "llama", expected "mobilellmpro"/],
    ["no block count", { metadata: dropKey(`${A}.block_count`) }, /missing required metadata key mobilellmpro\.block_count/],
    ["a block count of the wrong type", { metadata: setKey(`${A}.block_count`, u64(6)) }, /mobilellmpro\.block_count is u64, expected u32/],
    ["a block count that disagrees", { metadata: setKey(`${A}.block_count`, u32(7)) }, /mobilellmpro\.block_count is 7 but the carried config\.json implies 6/],
    ["a layer pattern of the wrong type", { metadata: setKey(`${A}.attention.sliding_window_pattern`, u32s([0, 1, 1, 1, 0, 0])) }, /sliding_window_pattern is u32\[\], expected bool\[\]/],
    ["a layer pattern that disagrees", { metadata: setKey(`${A}.attention.sliding_window_pattern`, bools([true, true, true, true, false, false])) }, /sliding_window_pattern is \[1, 1, 1, 1, 0, 0\] but the carried config\.json implies \[0, 1, 1, 1, 0, 0\]/],
    ["a key the config rules out", { metadata: setKey(`${A}.rope.scaling.factor`, u32(8)) }, /mobilellmpro\.rope\.scaling\.factor does not fit the carried config\.json/],
    ["no config.json", { metadata: dropKey(`${A}.source.config_json`) }, /missing required metadata key mobilellmpro\.source\.config_json/],
    ["a config.json that is not JSON", { metadata: setKey(`${A}.source.config_json`, str("{ nope")) }, /mobilellmpro\.source\.config_json is not valid JSON/],
    ["a config.json the config parser refuses", { metadata: setKey(`${A}.source.config_json`, str(source("config.json").replace('"hidden_size"', '"hidden"'))) }, /missing required key "hidden_size"/],
    ["a config.json of the wrong type", { metadata: setKey(`${A}.source.config_json`, u32(1)) }, /mobilellmpro\.source\.config_json is u32, expected string/],
    ["no tokenizer", { metadata: dropKey("tokenizer.huggingface.json") }, /missing required metadata key tokenizer\.huggingface\.json/],
    ["a tokenizer that is not JSON", { metadata: setKey("tokenizer.huggingface.json", str(source("tokenizer.json").slice(0, 500))) }, /tokenizer\.huggingface\.json is not valid JSON/],
    ["a tokenizer that does not parse", { metadata: setKey("tokenizer.huggingface.json", str('{"version": "1.0"}')) }, /tokenizer\.huggingface\.json: .*not a Hugging Face tokenizer/],
    ["a tokenizer_config.json that is not an object", { metadata: setKey(`${A}.source.tokenizer_config_json`, str("[1]")) }, /tokenizer_config_json is not a JSON object/],
    ["a chat template that does not parse", { metadata: setKey("tokenizer.chat_template", str("{% if messages %}never closed")) }, /tokenizer\.chat_template: chat template does not parse/],
    ["a chat template of the wrong type", { metadata: setKey("tokenizer.chat_template", u32(3)) }, /tokenizer\.chat_template is u32, expected string/],
    ["generation defaults the parser refuses", { metadata: setKey(`${A}.source.generation_config_json`, str('{"temperature": -1}')) }, /temperature has an invalid value -1/],
    ["a missing tensor", { tensors: (t) => void t.splice(3, 1) }, /missing tensor blk\.0\.attn_k\.weight/],
    ["an extra tensor", { tensors: (t) => void t.push({ name: "rope_freqs.weight", dims: [32], type: "F32", data: async function* () { yield new Uint8Array(128); } }) }, /unexpected tensor "rope_freqs\.weight"/],
    [
      "a norm stored as F16",
      { tensors: (t) => void t.splice(1, 1, { name: "blk.0.attn_norm.weight", dims: [320], type: "F16", data: async function* () { yield new Uint8Array(640); } }) },
      /tensor blk\.0\.attn_norm\.weight is F16, expected F32/,
    ],
    [
      "a matrix of the wrong shape",
      { tensors: (t) => void t.splice(3, 1, { name: "blk.0.attn_k.weight", dims: [320, 32], type: "Q4_0", data: async function* () { yield new Uint8Array(32 * 10 * 18); } }) },
      /tensor blk\.0\.attn_k\.weight has shape \[32, 320\] but the config implies \[64, 320\]/,
    ],
  ];
  for (const [what, edit, message] of cases) {
    it(`refuses ${what}`, async () => {
      const f = await open(await rewriteGguf(base, edit));
      let err: unknown;
      try {
        readGgufModel(f);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(CheckpointError);
      expect((err as Error).message).not.toContain("\n");
      expect((err as Error).message).toMatch(message);
    });
  }
});
