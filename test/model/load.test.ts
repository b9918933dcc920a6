// Loading a checkpoint folder: the layouts real checkpoints come in, and bad input failing clearly.
import { describe, expect, it } from "vitest";
import { loadModel } from "../../src/api.js";
import { BUNDLED, modelVariant } from "../helpers/model-folder.js";
import { tempDir } from "../helpers/temp-dir.js";
import { availableParallelism } from "node:os";

const PROMPT_TOKENS = [1000, 872, 266, 471];

async function lastLogits(dir: string): Promise<Float32Array> {
  const m = await loadModel(dir, { backend: "reference", contextLength: 16 });
  try {
    return m.logits(PROMPT_TOKENS)[0];
  } finally {
    m.dispose();
  }
}

describe("checkpoint folder layouts", () => {
  it("accepts mlp.* as well as feed_forward.* tensor names", async () => {
    const dir = await modelVariant({ tensor: (name, data, shape) => ({ name: name.replace(".feed_forward.", ".mlp."), data, shape }) });
    expect(await lastLogits(dir)).toEqual(await lastLogits(BUNDLED));
  });

  it("reads a sharded checkpoint through model.safetensors.index.json", async () => {
    const dir = await modelVariant({ maxShardBytes: 2_000_000 });
    expect(await lastLogits(dir)).toEqual(await lastLogits(BUNDLED));
  });

  it("uses lm_head.weight when the config unties it", async () => {
    const dir = await modelVariant({
      config: (c) => ({ ...c, tie_word_embeddings: false }),
      extra: [{ name: "lm_head.weight", dtype: "BF16", shape: [1024, 320], data: new Float32Array(1024 * 320).fill(0) }],
    });
    const logits = await lastLogits(dir);
    expect(logits.every((x) => x === 0)).toBe(true);
  });
});

describe("bad checkpoints and requests fail with a clear message", () => {
  it("bad load options, before any file is read (an empty folder still reports the option)", async () => {
    const empty = tempDir("mobilellm-empty-");
    const cores = availableParallelism();
    const limit = Math.min(64, 2 * cores);
    for (const [opts, message] of [
      [{ contextLength: 0 }, /^contextLength must be an integer >= 1, got 0$/],
      [{ contextLength: 1.5 }, /^contextLength must be an integer >= 1, got 1\.5$/],
      [{ backend: "gpu" }, /^backend must be one of reference, wasm, got "gpu"$/],
      [{ simd: "avx" }, /^simd must be one of auto, baseline, relaxed, got "avx"$/],
      [{ threads: 0 }, /^threads must be an integer >= 1, got 0$/],
      [{ threads: 4096 }, new RegExp(`^threads 4096 is more than this machine can use: at most ${limit} \\(twice the ${cores} available cores, and never more than 64\\)$`)],
      [{ onProgress: 5 }, /^onProgress must be a function$/],
    ] as const) {
      await expect(loadModel(empty, opts as never)).rejects.toThrow(message);
    }
    // Within the limit, threads load.
    const m = await loadModel(BUNDLED, { threads: limit, contextLength: 16 });
    expect(m.info.threads).toBe(limit);
    await m.dispose();
  });

  it("a missing tensor", async () => {
    const dir = await modelVariant({ tensor: (name, data, shape) => (name === "model.layers.2.self_attn.k_proj.weight" ? null : { name, data, shape }) });
    await expect(loadModel(dir)).rejects.toThrow(/model\.layers\.2\.self_attn\.k_proj\.weight/);
  });

  it("a tensor whose shape does not match the config", async () => {
    const dir = await modelVariant({ config: (c) => ({ ...c, intermediate_size: 512, intermediate_size_mlp: 512 }) });
    await expect(loadModel(dir)).rejects.toThrow(/tensor model\.layers\.0\.feed_forward\.gate_proj\.weight has shape \[768, 320\] but the config implies \[512, 320\]/);
  });

  it("NaN or Inf in weights", async () => {
    const dir = await modelVariant({
      tensor: (name, data, shape) => {
        if (name === "model.layers.1.self_attn.o_proj.weight") data[123] = Number.NaN;
        if (name === "model.norm.weight") data[5] = Number.POSITIVE_INFINITY;
        return { name, data, shape };
      },
    });
    await expect(loadModel(dir)).rejects.toThrow(/(o_proj|model\.norm).*(NaN|Inf)/);
  });

  it("a missing folder or config", async () => {
    await expect(loadModel("/nonexistent/model")).rejects.toThrow(/does not exist/);
  });

  it("a context above max_position_embeddings", async () => {
    await expect(loadModel(BUNDLED, { contextLength: 5000 })).rejects.toThrow(/exceeds max_position_embeddings 4096/);
  });

  it("token ids outside the vocabulary, an empty prompt, a prompt longer than the context", async () => {
    const m = await loadModel(BUNDLED, { contextLength: 8 });
    expect(() => m.logits([1000, 1024])).toThrow(/token id 1024 is outside the vocabulary \[0, 1024\)/);
    expect(() => m.logits([-1])).toThrow(/token id -1/);
    expect(() => m.generate("")).toThrow(/the prompt is empty/);
    expect(() => m.logits(Array.from({ length: 9 }, () => 5))).toThrow(/9 positions do not fit the context of 8 tokens/);
    expect(() => m.generate("ROMEO: ".repeat(20))).toThrow(/prompt has \d+ tokens but the context holds 8/);
  });
});
