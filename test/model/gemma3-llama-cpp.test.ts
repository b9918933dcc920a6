// Gemma 3 held against llama.cpp itself: the float32 reference and llama.cpp (node-llama-cpp, its CPU
// backend) read the same llama.cpp-layout gemma3 GGUF of a random gemma-3-270m-shaped checkpoint (F32
// matrices, so neither side quantizes weights), and their next-token distributions must agree past the
// sliding window, on local and global layers, with and without the linear RoPE scaling llama.cpp applies to
// global layers only. A mistake in any Gemma fact both must share (norm offset, QK-norm placement, RoPE
// pairing or base per layer kind, score scale, embedding scale, window) moves the distribution far more
// than llama.cpp's own rounding (f16 KV cache, its f16 GELU table): KL of a few 1e-6 when right.
import { rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadModel } from "../../src/api.js";
import { resolveTensorNames } from "../../src/model/tensor-names.js";
import { loadConfig } from "../../src/node/bundled.js";
import { openCheckpoint } from "../../src/node/folder.js";
import { writeGgufFile } from "../../src/node/gguf-files.js";
import { llamaGguf } from "../../bench/llama-gguf.js";
import { cpuLlama, importNodeLlamaCpp } from "../../bench/node-llama-cpp.js";
import { writeGemma3Folder } from "../helpers/gemma3-folder.js";
import { peerLlamaCppPresent, peerNlcDir } from "../helpers/peer-llama-cpp.js";
import { argmax } from "../helpers/compare.js";

const made: string[] = [];
afterAll(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));

const IDS = Array.from({ length: 20 }, (_, i) => 300 + ((i * 7919) % 1600));

/** A 6-layer gemma-3-270m-shaped folder (window 5, float32 config) as a llama.cpp gemma3 F32 GGUF. */
async function gguf(extra: Record<string, unknown>): Promise<string> {
  const f = await writeGemma3Folder("gemma-3-270m", 6, 2048, 5, { sliding_window: 5, torch_dtype: "float32", ...extra });
  made.push(f.dir);
  const c = loadConfig(f.dir);
  const ckpt = await openCheckpoint(f.dir);
  try {
    const { metadata, tensors } = llamaGguf({ ckpt, config: c, names: resolveTensorNames(c, ckpt), name: "gemma3 test", matrices: "F32" });
    const path = join(f.dir, "model.gguf");
    await writeGgufFile(path, metadata, tensors);
    return path;
  } finally {
    await ckpt.close();
  }
}

describe.runIf(peerLlamaCppPresent())("Gemma 3 against llama.cpp on the same file", () => {
  it.each([
    ["no RoPE scaling", {}],
    ["linear RoPE scaling x8 (global layers only)", { rope_scaling: { rope_type: "linear", factor: 8 } }],
  ])("%s: the reference's next-token distributions match llama.cpp's (KL < 1e-4, same top-1) at positions 1 to 20", async (_, extra) => {
    const path = await gguf(extra);
    const ours = await loadModel(path, { backend: "reference", contextLength: 32 });
    const llama = await cpuLlama(await importNodeLlamaCpp(peerNlcDir()));
    const lm = await llama.loadModel({ modelPath: path, gpuLayers: 0, useMmap: false });
    const ctx = await lm.createContext({ contextSize: 32, batchSize: 32, threads: 1, sequences: 1, flashAttention: false });
    const seq = ctx.getSequence();
    try {
      const logits = ours.logits(IDS, true);
      for (const n of [1, 5, 6, 11, 20]) {
        await seq.clearHistory();
        if (n > 1) await seq.evaluateWithoutGeneratingNewTokens(IDS.slice(0, n - 1));
        const out = await seq.controlledEvaluate([[IDS[n - 1], { generateNext: { token: true, probabilities: true, options: { temperature: 1, topK: 0, topP: 1, minP: 0 } } }]]);
        const p = out[0]?.next.probabilities;
        if (!p) throw new Error("llama.cpp returned no probabilities");
        const row = logits[n - 1];
        let max = -Infinity;
        for (const x of row) max = Math.max(max, x);
        let sum = 0;
        for (const x of row) sum += Math.exp(x - max);
        let kl = 0;
        let top = -1;
        for (const [id, pr] of p) {
          if (top < 0 || pr > (p.get(top) as number)) top = id;
          if (pr > 0) kl += pr * (Math.log(pr) - (row[id] - max - Math.log(sum)));
        }
        expect([n, Math.abs(kl) < 1e-4]).toEqual([n, true]);
        expect([n, argmax(row)]).toEqual([n, top]);
      }
    } finally {
      await ctx.dispose();
      await lm.dispose();
      await llama.dispose();
      await ours.dispose();
    }
  }, 180_000);
});
