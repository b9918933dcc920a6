// The WeightSource of a GGUF file and of a folder's checkpoint: a GGUF whose matrices are F32 (another
// writer's choice; ours writes Q4_0) is quantized at load exactly like the folder, and reads outside a
// tensor are refused with one line by both.
import { describe, expect, it } from "vitest";
import { CheckpointError, memorySource } from "../../src/env/byte-source.js";
import { GgufFile } from "../../src/model/checkpoint/gguf.js";
import { GgufWeights } from "../../src/model/checkpoint/gguf-weights.js";
import { writeGgufTo, type GgufTensorToWrite } from "../../src/model/checkpoint/gguf-writer.js";
import { expectedShapes, resolveTensorNames } from "../../src/model/tensor-names.js";
import { loadModel } from "../../src/api.js";
import { openCheckpoint, nodeFolder } from "../../src/node/folder.js";
import { nodePlatform } from "../../src/node/platform.js";
import { wasmBytes } from "../../src/node/wasm-files.js";
import { WasmKernels } from "../../src/kernels/wasm.js";
import { convertToGguf } from "../../src/session/convert.js";
import { ggufTensorNames, modelGguf } from "../../src/session/gguf-model.js";
import { openGgufModel } from "../../src/session/open.js";
import { memorySink } from "../checkpoint/gguf-helpers.js";
import { BUNDLED } from "../helpers/model-folder.js";
import { readFileSync } from "node:fs";
import { join } from "node:path";

const bits = (rows: Float32Array[]) => rows.map((r) => Array.from(new Uint32Array(r.buffer, r.byteOffset, r.length)));
const text = (f: string) => {
  try {
    return readFileSync(join(BUNDLED, f), "utf8");
  } catch {
    return null;
  }
};

describe("GgufWeights", () => {
  it("a GGUF with F32 matrices loads like its folder: the same logits, bit for bit", async () => {
    const ckpt = await openCheckpoint(BUNDLED);
    const sink = memorySink();
    try {
      const files = {
        configJson: text("config.json")!, tokenizerJson: text("tokenizer.json")!, tokenizerConfigJson: text("tokenizer_config.json"),
        generationConfigJson: text("generation_config.json"), chatTemplate: text("chat_template.jinja"),
      };
      const { metadata, config } = modelGguf(files, ckpt, { name: "f32", kernels: await WasmKernels.create("simd", wasmBytes("simd")) });
      const from = expectedShapes(config, resolveTensorNames(config, ckpt));
      const to = expectedShapes(config, ggufTensorNames(config));
      const tensors = from.map(([hf, shape], i): GgufTensorToWrite => ({
        name: to[i][0],
        dims: [...shape].reverse(),
        type: "F32",
        data: async function* () {
          const v = await ckpt.readF32(hf);
          yield new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
        },
      }));
      await writeGgufTo(sink, metadata, tensors);
      await sink.close();
    } finally {
      await ckpt.close();
    }
    const ids = [1000, 872, 266, 471, 300, 12, 99, 5];
    const opts = { threads: 1, contextLength: 32 } as const;
    const file = await openGgufModel(memorySource("f32.gguf", sink.bytes()), nodePlatform, opts);
    const folder = await loadModel(BUNDLED, opts);
    try {
      expect(bits(file.logits(ids, true))).toEqual(bits(folder.logits(ids, true)));
    } finally {
      await file.dispose();
      await folder.dispose();
    }
  });

  it("refuses rows outside a tensor, and a rows read of a 1-D tensor, in one line (GGUF and folder alike)", async () => {
    const sink = memorySink();
    await convertToGguf(nodeFolder(BUNDLED), sink, nodePlatform, { name: "t" });
    const file = await GgufFile.open(memorySource("t.gguf", sink.bytes()));
    const w = new GgufWeights(file);
    const ckpt = await openCheckpoint(BUNDLED);
    try {
      const out = new Uint8Array(1 << 20);
      expect(w.weight("blk.0.attn_q.weight")).toEqual({ name: "blk.0.attn_q.weight", shape: [320, 320], encoding: "Q4_0" });
      await expect(w.readRowsInto("blk.0.attn_q.weight", 300, 21, out, 0)).rejects.toThrow(/t\.gguf: tensor blk\.0\.attn_q\.weight: rows 300\.\.321 are outside its 320/);
      await expect(w.readRowsInto("blk.0.attn_norm.weight", 0, 1, out, 0)).rejects.toThrow(/rows of a 1-D tensor/);
      await expect(w.readRowsInto("blk.0.attn_q.weight", 0, 1, out, out.length - 10)).rejects.toThrow(CheckpointError);
      await expect(w.readF32("nope")).rejects.toThrow(/missing tensor nope/);
      const q = "model.layers.0.self_attn.q_proj.weight";
      await expect(ckpt.readRowsInto(q, -1, 2, out, 0)).rejects.toThrow(/rows -1\.\.1 are outside its 320/);
      await expect(ckpt.readRowsInto("model.norm.weight", 0, 1, out, 0)).rejects.toThrow(/rows of a 1-D tensor/);
      await expect(ckpt.readRowsInto(q, 0, 320, new Uint8Array(1000), 0)).rejects.toThrow(/do not fit the output/);
    } finally {
      await file.close();
      await ckpt.close();
    }
  });
});
