// `mobilellm synth`: a random-weight checkpoint folder that the real loading path accepts as it would the
// gated model (shapes, shards, config, tokenizer), reproducible from its seed.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadModel } from "../../src/api.js";
import { parseConfig, MOBILELLM_PRO_CONFIG_JSON, PRESETS } from "../../src/model/config.js";
import { bundledModelDir, loadText } from "../../src/node/bundled.js";
import { expectedShapes, resolveTensorNames } from "../../src/model/tensor-names.js";
import { specialBase, synthConfigJson, synthesizeCheckpoint, synthTokenizerFiles } from "../../src/node/synth.js";
import { TextTokenizer } from "../../src/text/tokenizer.js";
import { cli } from "../helpers/cli.js";
import { cosine } from "../helpers/compare.js";
import { allLogits, expectEngineNearInt4Reference, referenceModels } from "../helpers/int4-reference.js";
import { openCheckpoint } from "../../src/node/folder.js";


// Each folder is tens of MB: remove them all when the file is done.
const made: string[] = [];
const tmp = (prefix: string) => {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

/** Small synthetic models through the library: 1 layer, vocab 1024 (about 61 MB of bf16). */
async function tiny(outDir: string, seed: number, shardMb = 1000): Promise<void> {
  await synthesizeCheckpoint({
    presetJson: MOBILELLM_PRO_CONFIG_JSON,
    presetName: "mobilellm-pro",
    outDir,
    seed,
    layers: 1,
    vocab: 1024,
    maxShardBytes: shardMb * 1_000_000,
  });
}

function filesOf(dir: string): Map<string, Buffer> {
  return new Map(readdirSync(dir).map((f) => [f, readFileSync(join(dir, f))]));
}

function stats(a: Float32Array): { mean: number; std: number; finite: boolean } {
  let s = 0;
  let s2 = 0;
  let finite = true;
  for (const x of a) {
    if (!Number.isFinite(x)) finite = false;
    s += x;
    s2 += x * x;
  }
  const mean = s / a.length;
  return { mean, std: Math.sqrt(s2 / a.length - mean * mean), finite };
}

describe("synth --preset mobilellm-pro --layers 2 --vocab 4096 (CLI)", () => {
  let dir: string;
  let stdout: string;
  let stderr: string;

  beforeAll(async () => {
    dir = join(tmp("synth-"), "out");
    const r = await cli("synth", "--preset", "mobilellm-pro", "--out", dir, "--layers", "2", "--vocab", "4096", "--shard-mb", "50", "--seed", "7");
    expect(r.stderr).not.toMatch(/mobilellm synth:/);
    expect(r.code).toBe(0);
    ({ stdout, stderr } = r);
  });

  it("prints progress to stderr and a summary to stdout", () => {
    expect(stderr).toMatch(/synth: 100% of 121 MB/);
    expect(stdout).toMatch(/^9 files, [\d,]+ bytes in [\d.]+ s$/m);
    expect(stdout).toContain("model.safetensors.index.json");
  });

  it("holds every expected tensor with the right shape, sharded like Hugging Face", async () => {
    const config = parseConfig(JSON.parse(readFileSync(join(dir, "config.json"), "utf8")));
    expect(config.numLayers).toBe(2);
    expect(config.layers.map((l) => l.kind)).toEqual(["full_attention", "sliding_attention"]);
    expect(config.vocabSize).toBe(4096);
    expect(config.defaulted).not.toContain("rope_theta");
    expect(config.defaulted).not.toContain("rms_norm_eps");
    const shards = readdirSync(dir).filter((f) => f.endsWith(".safetensors")).sort();
    expect(shards).toEqual(["model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors"]);
    const ckpt = await openCheckpoint(dir);
    try {
      const names = resolveTensorNames(config, ckpt);
      const expected = expectedShapes(config, names);
      expect(ckpt.names().sort()).toEqual(expected.map(([n]) => n).sort());
      for (const [name, shape] of expected) {
        expect(ckpt.info(name).shape).toEqual(shape);
        expect(ckpt.info(name).dtype).toBe("BF16");
      }
    } finally {
      await ckpt.close();
    }
  });

  it("weights are finite with std 0.02 (matrices) and 1 + 0.02 noise (norms), within 10%", async () => {
    const ckpt = await openCheckpoint(dir);
    try {
      for (const name of ["model.embed_tokens.weight", "model.layers.0.self_attn.k_proj.weight", "model.layers.1.feed_forward.down_proj.weight"]) {
        const s = stats(await ckpt.readF32(name));
        expect(s.finite).toBe(true);
        expect(Math.abs(s.mean)).toBeLessThan(0.002);
        expect(s.std).toBeGreaterThan(0.018);
        expect(s.std).toBeLessThan(0.022);
      }
      for (const name of ["model.layers.0.input_layernorm.weight", "model.norm.weight"]) {
        const s = stats(await ckpt.readF32(name));
        expect(s.finite).toBe(true);
        expect(Math.abs(s.mean - 1)).toBeLessThan(0.005);
        expect(s.std).toBeGreaterThan(0.018);
        expect(s.std).toBeLessThan(0.022);
      }
    } finally {
      await ckpt.close();
    }
  });

  it("the tokenizer puts BOS at the top of the reduced vocabulary, as config.json says", () => {
    const { tokenizer } = loadText(dir);
    const ids = tokenizer.encode("ROMEO:");
    expect(ids[0]).toBe(4096 - 24);
    expect(tokenizer.decode(ids.slice(1))).toBe("ROMEO:");
    const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as Record<string, unknown>;
    expect(config["bos_token_id"]).toBe(4072);
    expect(config["eos_token_id"]).toEqual([4073, 4079, 4080]);
    expect(config["pad_token_id"]).toBe(4090);
    expect(tokenizer.tokenString(4090)).toBe("<|finetune_right_pad|>");
    expect(tokenizer.isPadding(2000)).toBe(true);
  });

  it("loads with the reference backend and gives finite, non-degenerate logits", async () => {
    const m = await loadModel(dir, { backend: "reference", contextLength: 16 });
    try {
      const logits = m.logits(m.encode("ROMEO:"))[0];
      const s = stats(logits);
      expect(logits.length).toBe(4096);
      expect(s.finite).toBe(true);
      expect(s.std).toBeGreaterThan(0.1);
    } finally {
      m.dispose();
    }
  });

  it("refuses the now non-empty folder unless --force", async () => {
    const r = await cli("synth", "--preset", "mobilellm-pro", "--out", dir, "--layers", "1", "--vocab", "1024");
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe(`mobilellm synth: ${dir} is not empty (use --force to write into it)`);
  });
});

describe("synth reproducibility", () => {
  it("the same seed gives byte-identical files; another seed other weights; shard size changes no value", async () => {
    const [a, b, c, d] = [tmp("synth-a-"), tmp("synth-b-"), tmp("synth-c-"), tmp("synth-d-")];
    await tiny(a, 1);
    await tiny(b, 1);
    await tiny(c, 2);
    await tiny(d, 1, 10);
    // Buffer.equals, not toEqual: a deep comparison of 60 MB element by element exhausts the heap.
    const [fa, fb, fc] = [filesOf(a), filesOf(b), filesOf(c)];
    expect([...fb.keys()].sort()).toEqual([...fa.keys()].sort());
    for (const [name, bytes] of fa) expect(bytes.equals(fb.get(name)!), name).toBe(true);
    const shard = "model-00001-of-00001.safetensors";
    expect(fc.get(shard)!.equals(fa.get(shard)!)).toBe(false);

    expect(readdirSync(d).filter((f) => f.endsWith(".safetensors")).length).toBeGreaterThan(1);
    const [ca, cd] = [await openCheckpoint(a), await openCheckpoint(d)];
    try {
      for (const name of ca.names()) {
        const [x, y] = [await ca.readF32(name), await cd.readF32(name)];
        expect(Buffer.from(y.buffer, y.byteOffset, y.byteLength).equals(Buffer.from(x.buffer, x.byteOffset, x.byteLength)), name).toBe(true);
      }
    } finally {
      await Promise.all([ca.close(), cd.close()]);
    }
  });

  it("--force replaces an earlier checkpoint, leaving no stale shard", async () => {
    const dir = tmp("synth-force-");
    await tiny(dir, 3, 10);
    writeFileSync(join(dir, "notes.txt"), "mine");
    await synthesizeCheckpoint({
      presetJson: MOBILELLM_PRO_CONFIG_JSON,
      presetName: "mobilellm-pro",
      outDir: dir,
      seed: 3,
      layers: 1,
      vocab: 1024,
      maxShardBytes: 1e9,
      force: true,
    });
    expect(readdirSync(dir).filter((f) => f.endsWith(".safetensors"))).toEqual(["model-00001-of-00001.safetensors"]);
    expect(readFileSync(join(dir, "notes.txt"), "utf8")).toBe("mine");
  });
});

describe("the full-vocabulary layout (no weights written)", () => {
  it("config.json keeps the Llama-4 ids and all 30 layers, with rope_theta and rms_norm_eps explicit", () => {
    const json = synthConfigJson(MOBILELLM_PRO_CONFIG_JSON, undefined, undefined);
    const c = parseConfig(json);
    expect([c.bosTokenId, c.eosTokenIds, c.padTokenId]).toEqual([200000, [200001, 200007, 200008], 200018]);
    expect(c.numLayers).toBe(30);
    expect(json["rope_theta"]).toBe(500000);
    expect(json["rms_norm_eps"]).toBe(1e-5);
    expect(specialBase(202048, 200000)).toBe(200000);
  });

  it("the tokenizer encodes ROMEO: after BOS 200000 and maps the 13 special tokens by name", () => {
    const files = synthTokenizerFiles(bundledModelDir(), 200000, 131072);
    const tok = new TextTokenizer(files);
    const ids = tok.encode("ROMEO:");
    expect(ids[0]).toBe(200000);
    const bundled = loadText(bundledModelDir()).tokenizer;
    expect(ids.slice(1)).toEqual(bundled.encode("ROMEO:").slice(1));
    const expected: Array<[number, string]> = [
      [200000, "<|begin_of_text|>"],
      [200001, "<|end_of_text|>"],
      [200005, "<|header_start|>"],
      [200007, "<|eom|>"],
      [200008, "<|eot|>"],
      [200016, "<|python_start|>"],
      [200018, "<|finetune_right_pad|>"],
    ];
    for (const [id, s] of expected) expect(tok.tokenString(id)).toBe(s);
    const added = (files.tokenizer["added_tokens"] as Array<{ id: number }>).map((t) => t.id);
    expect(added).toEqual([...Array.from({ length: 19 }, (_, i) => 200000 + i)]);
    expect(tok.tokenString(200012)).toBe("<|text_post_train_reserved_special_token_2|>");
    // Ids between the BPE ranks and the special block have no token string: padding rows.
    expect(tok.tokenString(1000)).toBeUndefined();
    expect(tok.isPadding(1000)).toBe(true);
    expect(tok.isPadding(200019)).toBe(true);
  });
});

describe("synth of the Llama presets", () => {
  it("config.json is the published one (theta, eps, no layer_types), BOS moved off the BPE ranks", () => {
    const smol = synthConfigJson(PRESETS["smollm2-135m"].json, 2, 2048);
    expect(smol["rope_theta"]).toBe(100000);
    expect(smol["layer_types"]).toBeUndefined();
    // SmolLM2's BOS and EOS are both id 0, which the bundled tokenizer uses for a BPE rank.
    expect([smol["bos_token_id"], smol["eos_token_id"]]).toEqual([2048 - 24, 2048 - 24]);
    const c = parseConfig(smol);
    expect([c.architecture, c.ropeStyle, c.numHeads, c.numKvHeads, c.headDim, c.hiddenSize]).toEqual(["llama", "rotate_half", 9, 3, 64, 576]);
    expect(c.layers.map((l) => l.kind)).toEqual(["full_attention", "full_attention"]);
    const llama = parseConfig(synthConfigJson(PRESETS["llama-3.2-1b"].json, undefined, undefined));
    expect([llama.bosTokenId, llama.eosTokenIds, llama.vocabSize, llama.rope.full_attention.theta]).toEqual([128000, [128001], 128256, 500000]);
    expect(llama.rope.full_attention.scaling).toMatchObject({ type: "llama3", factor: 32 });
  });

  it("an untied AMD-Llama folder loads in both backends; the engine matches the reference on its int4 weights", async () => {
    const dir = tmp("synth-amd-");
    await synthesizeCheckpoint({ presetJson: PRESETS["amd-llama-135m"].json, presetName: "amd-llama-135m", outDir: dir, seed: 5, layers: 1, vocab: 1024, maxShardBytes: 1e9 });
    const ckpt = await openCheckpoint(dir);
    try {
      expect(ckpt.has("lm_head.weight")).toBe(true);
    } finally {
      await ckpt.close();
    }
    const { int4 } = await referenceModels(dir, 16);
    const wasm = await loadModel(dir, { backend: "wasm", contextLength: 16, threads: 1 });
    try {
      const ids = wasm.encode("ROMEO:");
      expect(ids[0]).toBe(1000);
      const want = allLogits(int4, ids);
      const got = wasm.logits(ids, true);
      for (let t = 0; t < ids.length; t++) {
        expect(stats(got[t]).std).toBeGreaterThan(0.1);
        expect(cosine(want[t], got[t])).toBeGreaterThan(0.99);
      }
    } finally {
      await wasm.dispose();
    }
  });
});

describe("synth of the Gemma 3 presets", () => {
  it("config.json is the published one; EOS and pad, below Gemma's BOS, take the block's <|end_of_text|> and pad", () => {
    const g = synthConfigJson(PRESETS["gemma-3-270m"].json, 6, 2048);
    const base = 2048 - 24;
    expect([g["bos_token_id"], g["eos_token_id"], g["pad_token_id"]]).toEqual([base, base + 1, base + 18]);
    expect(g["layer_types"]).toEqual((PRESETS["gemma-3-270m"].json["layer_types"] as string[]).slice(0, 6));
    const c = parseConfig(g);
    expect([c.architecture, c.hiddenSize, c.intermediateSize, c.numHeads, c.numKvHeads, c.headDim, c.slidingWindow]).toEqual(["gemma3", 640, 2048, 4, 1, 256, 512]);
    const oneB = parseConfig(synthConfigJson(PRESETS["gemma-3-1b"].json, undefined, undefined));
    expect([oneB.numLayers, oneB.hiddenSize, oneB.intermediateSize, oneB.numHeads, oneB.vocabSize, oneB.eosTokenIds]).toEqual([26, 1152, 6912, 4, 262144, [262144 - 24 + 1]]);
  });

  it("a gemma-3-270m folder stores norm weights around 0 (w of 1 + w) and runs in the engine as in the reference on its int4 weights", async () => {
    const dir = tmp("synth-gemma3-");
    await synthesizeCheckpoint({ presetJson: PRESETS["gemma-3-270m"].json, presetName: "gemma-3-270m", outDir: dir, seed: 5, layers: 2, vocab: 1024, maxShardBytes: 1e9 });
    const ckpt = await openCheckpoint(dir);
    try {
      const norm = await ckpt.readF32("model.layers.0.post_feedforward_layernorm.weight");
      expect(Math.abs(stats(norm).mean)).toBeLessThan(0.01);
    } finally {
      await ckpt.close();
    }
    await expectEngineNearInt4Reference(dir, [1000, 17, 402, 999, 3, 511], 0.99);
  });
});

describe("synth usage errors", () => {
  it.each([
    [["--preset", "llama-9000", "--out", "/tmp/x"], /unknown preset "llama-9000"/],
    [["--out", "/tmp/x"], /--preset is required/],
    [["--preset", "mobilellm-pro"], /--out is required/],
    [["--preset", "mobilellm-pro", "--out", "/tmp/x", "--layers", "31"], /--layers must be 1\.\.30/],
    [["--preset", "mobilellm-pro", "--out", "/tmp/x", "--layers", "0"], /--layers must be an integer >= 1/],
    [["--preset", "mobilellm-pro", "--out", "/tmp/x", "--vocab", "1000"], /--vocab must be an integer >= 1024/],
  ])("%j exits 2 with one line", async (args, message) => {
    const r = await cli("synth", ...args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
  });
});
