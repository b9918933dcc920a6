// Memory accounting: the MobileLLM-Pro technical report's KV-cache figures (8k tokens, int8: 117 MB with
// every layer global, 40 MB with the 3:1 local/global layout) reproduced exactly, and
// the int4 weight bytes, each written out as arithmetic independent of the implementation.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { mobilellmPro } from "../../src/model/config.js";
import { checkWasmBudget, engineWeightBytes, int4WeightBytes, kvCacheBytes, mib, storedDtype } from "../../src/model/memory.js";
import { expectedShapes, tensorNamesFor } from "../../src/model/tensor-names.js";
import type { Quantization, WeightEncoding, WeightSource } from "../../src/model/weights.js";
import { smallConfig } from "../helpers/random-model.js";
import { cli } from "../helpers/cli.js";
import { BUNDLED } from "../helpers/model-folder.js";


// MobileLLM-Pro: 9 global and 21 sliding layers, window 512; int8 K+V = 2 x 4 KV heads x 64 = 512 B per
// position per layer; scales 2 x 4 heads x 4 B = 32 B per position per layer.
const SLIDING_PART = 21 * 512 * 512;

describe("KV cache bytes of the mobilellm-pro preset", () => {
  it("8000 tokens: 42,369,024 B (40.4 MiB) hybrid vs 122,880,000 B (117.2 MiB) all-global", () => {
    const hybrid = kvCacheBytes(mobilellmPro, 8000, "hybrid");
    const allGlobal = kvCacheBytes(mobilellmPro, 8000, "all-global");
    expect(hybrid.data).toBe(9 * 8000 * 512 + SLIDING_PART);
    expect(hybrid.data).toBe(42_369_024);
    expect(allGlobal.data).toBe(30 * 8000 * 512);
    expect(allGlobal.data).toBe(122_880_000);
    expect(mib(hybrid.data)).toBe("40.4");
    expect(mib(allGlobal.data)).toBe("117.2");
  });

  it("2000 and 4000 tokens: 14.0 and 22.8 MiB", () => {
    expect(kvCacheBytes(mobilellmPro, 2000).data).toBe(9 * 2000 * 512 + SLIDING_PART);
    expect(mib(kvCacheBytes(mobilellmPro, 2000).data)).toBe("14.0");
    expect(kvCacheBytes(mobilellmPro, 4000).data).toBe(9 * 4000 * 512 + SLIDING_PART);
    expect(mib(kvCacheBytes(mobilellmPro, 4000).data)).toBe("22.8");
  });

  it("lists the f32 scales separately: 32 B per cached position per layer", () => {
    expect(kvCacheBytes(mobilellmPro, 8000).scales).toBe((9 * 8000 + 21 * 512) * 2 * 4 * 4);
    expect(kvCacheBytes(mobilellmPro, 8000, "all-global").scales).toBe(30 * 8000 * 2 * 4 * 4);
  });

  it("below the window a sliding layer caches every token, so hybrid equals all-global", () => {
    for (const n of [1, 100, 511, 512]) {
      expect(kvCacheBytes(mobilellmPro, n).data).toBe(30 * n * 512);
      expect(kvCacheBytes(mobilellmPro, n).data).toBe(kvCacheBytes(mobilellmPro, n, "all-global").data);
    }
    // One past the window the ring buffer stops growing.
    expect(kvCacheBytes(mobilellmPro, 513).data).toBe(9 * 513 * 512 + SLIDING_PART);
  });

  it("a context beyond max_position_embeddings is refused", () => {
    expect(() => kvCacheBytes(mobilellmPro, 131_073)).toThrow(/exceeds max_position_embeddings 131072/);
    expect(() => kvCacheBytes(mobilellmPro, 0)).toThrow(RangeError);
  });
});

describe("KV cache bytes of other layouts", () => {
  it("a config without sliding layers is all-global either way", () => {
    const c = smallConfig({ layers: 3, hidden: 64, heads: 4, kvHeads: 2, headDim: 16, ffn: 96, vocab: 128 });
    expect(kvCacheBytes(c, 1000).data).toBe(3 * 1000 * 2 * 2 * 16);
    expect(kvCacheBytes(c, 1000).data).toBe(kvCacheBytes(c, 1000, "all-global").data);
    expect(kvCacheBytes(c, 1000).scales).toBe(3 * 1000 * 2 * 2 * 4);
  });

  it("hybrid never exceeds all-global, grows with N, and its sliding part is constant past the window", () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[GS]{1,12}$/), fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: 4000 }), (pattern, window, n) => {
        const c = smallConfig({ layers: pattern.length, hidden: 32, heads: 2, kvHeads: 1, headDim: 16, ffn: 48, vocab: 64, window, pattern });
        const h = kvCacheBytes(c, n).data;
        const perPosition = 2 * 1 * 16;
        const globals = [...pattern].filter((t) => t === "G").length;
        const slidings = pattern.length - globals;
        expect(h).toBe((globals * n + slidings * Math.min(n, window)) * perPosition);
        expect(h).toBeLessThanOrEqual(kvCacheBytes(c, n, "all-global").data);
        expect(kvCacheBytes(c, n + 1).data).toBeGreaterThanOrEqual(h);
      }),
    );
  });
});

describe("weight bytes", () => {
  it("int4 with f16 group-32 scales (the report counts f32 ones): every matrix once (tied table once), norms f32", () => {
    const matrices = 202048 * 1280 + 30 * (1280 * 1280 * 2 + 256 * 1280 * 2 + 6144 * 1280 * 3);
    const norms = (30 * 2 + 1) * 1280;
    expect(matrices + norms).toBe(1_084_453_120);
    const w = int4WeightBytes(mobilellmPro);
    expect(w.values).toBe(matrices / 2);
    expect(w.scales).toBe((matrices / 32) * 2);
    expect(w.norms).toBe(norms * 4);
    expect(w.recipe).toBe(matrices * 0.5625 + norms * 4);
    expect(w.recipeF32Scales).toBe(matrices * 0.625 + norms * 4);
    expect(w.recipeF32Scales).toBe(678_046_720);
    // the engine's il4 layout adds one f32 dequantized weight sum per row
    const rows = 202048 + 30 * (1280 * 2 + 256 * 2 + 6144 * 2 + 1280);
    expect(w.rowSums).toBe(rows * 4);
    expect(w.total).toBe(matrices * 0.5625 + rows * 4 + norms * 4);
  });

  it("the engine's: the recipe's il4 is int4's total; a file's Q8_0 or F32 matrices take their layouts' bytes, which the Wasm budget counts", () => {
    const matrices = 202048 * 1280 + 30 * (1280 * 1280 * 2 + 256 * 1280 * 2 + 6144 * 1280 * 3);
    const norms = (30 * 2 + 1) * 1280;
    const names = tensorNamesFor(mobilellmPro);
    const shapes = new Map(expectedShapes(mobilellmPro, names));
    /** The preset's tensors, its matrices stored as `encoding` (norms F32): only their headers are read. */
    const source = (quantization: Quantization, encoding: WeightEncoding): WeightSource => ({
      quantization,
      where: (name) => name,
      weight: (name) => ({ name, shape: shapes.get(name)!, encoding: shapes.get(name)!.length === 2 ? encoding : "F32" }),
      readF32: () => Promise.reject(new Error("not read")),
      readRowsInto: () => Promise.reject(new Error("not read")),
    });
    expect(engineWeightBytes(mobilellmPro, source("recipe", "BF16"), names).total).toBe(int4WeightBytes(mobilellmPro).total);
    // q8_0: 128 B of int8 values and 8 B of f16 scales per 4 rows x 32 columns; f32: 4 B a value.
    const q8 = engineWeightBytes(mobilellmPro, source("file", "Q8_0"), names);
    expect(q8.layouts).toEqual({ q8_0: { tensors: 1 + 30 * 7, bytes: (matrices / 128) * 136 } });
    expect(q8.norms).toBe(norms * 4);
    expect(q8.total).toBe((matrices / 128) * 136 + norms * 4);
    const f32 = engineWeightBytes(mobilellmPro, source("file", "F32"), names).total;
    expect(f32).toBe((matrices + norms) * 4);
    // F32 matrices do not fit in wasm32 memory; the int4 recipe's count of the same model would.
    expect(() => checkWasmBudget(mobilellmPro, 4096, int4WeightBytes(mobilellmPro).total)).not.toThrow();
    expect(() => checkWasmBudget(mobilellmPro, 4096, f32)).toThrow(/the wasm engine needs at least 41\d\d\.\d MiB for context 4096 \(weights 41\d\d\.\d/);
  });

  it("an untied head is a second matrix", () => {
    const tied = smallConfig({ layers: 1, hidden: 64, heads: 2, kvHeads: 1, headDim: 32, ffn: 96, vocab: 100 });
    const untied = smallConfig({ layers: 1, hidden: 64, heads: 2, kvHeads: 1, headDim: 32, ffn: 96, vocab: 100, extra: { tie_word_embeddings: false } });
    expect(int4WeightBytes(untied).recipe - int4WeightBytes(tied).recipe).toBe(100 * 32 + 100 * 2 * 2);
    expect(int4WeightBytes(untied).total - int4WeightBytes(tied).total).toBe(100 * 32 + 100 * 2 * 2 + 100 * 4);
  });

  it("the stored dtype comes from torch_dtype, bfloat16 when absent", () => {
    expect(storedDtype("float32")).toEqual({ name: "float32", bytes: 4, fromConfig: true });
    expect(storedDtype("bfloat16").bytes).toBe(2);
    expect(storedDtype(undefined)).toEqual({ name: "bfloat16", bytes: 2, fromConfig: false });
  });
});

describe("mobilellm info memory lines", () => {
  it("info --preset mobilellm-pro --ctx 8000 prints the published figures", async () => {
    const r = await cli("info", "--preset", "mobilellm-pro", "--ctx", "8000");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/kv cache .*42,369,024 B \(40\.4 MiB\) hybrid.*122,880,000 B \(117\.2 MiB\) all-global/);
    expect(r.stdout).toMatch(/kv scales .*2,648,064 B/);
    expect(r.stdout).toMatch(/stored .*2,168,906,240 B/);
    expect(r.stdout).toMatch(/int4 .*678,046,720 B/);
    expect(r.stdout).toMatch(/defaults .*rope_theta/);
  });

  it("--json carries the same numbers; the bundled model's stored bytes are its checkpoint's", async () => {
    const j = JSON.parse((await cli("info", "--preset", "mobilellm-pro", "--ctx", "2000", "--json")).stdout) as {
      layerMap: string;
      memory: { contextLength: number; kvCache: { hybrid: { data: number }; allGlobal: { data: number } } };
    };
    expect(j.layerMap).toBe("GSSSGSSSGSSSGSSSGSSSGSSSGSSSGG");
    expect(j.memory.contextLength).toBe(2000);
    expect(j.memory.kvCache.hybrid.data).toBe(9 * 2000 * 512 + SLIDING_PART);
    expect(j.memory.kvCache.allGlobal.data).toBe(30 * 2000 * 512);
    type Stored = { memory: { storedWeights: { bytes: number; dtype: string; from: string } } };
    const folder = JSON.parse((await cli("info", "--model", BUNDLED, "--json")).stdout) as Stored;
    expect(folder.memory.storedWeights).toMatchObject({ bytes: 6_230_080 * 2, dtype: "BF16", from: "checkpoint" });
    // By default info reads the bundled GGUF: its 6,225,920 matrix weights as Q4_0 (18 B per 32), 4,160 norm
    // weights as F32.
    const gguf = JSON.parse((await cli("info", "--json")).stdout) as Stored;
    expect(gguf.memory.storedWeights).toMatchObject({ bytes: (6_225_920 / 32) * 18 + 4_160 * 4, dtype: "Q4_0+F32", from: "checkpoint" });
  });

  it("--ctx beyond max_position_embeddings is a usage error", async () => {
    const r = await cli("info", "--ctx", "5000");
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe("mobilellm info: --ctx 5000 exceeds max_position_embeddings 4096");
  });
});
