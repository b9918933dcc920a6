import { readdir, readFile, rm, writeFile, copyFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { CheckpointError, memorySource } from "../../src/env/byte-source.js";
import { Checkpoint, INDEX_FILE } from "../../src/model/checkpoint/checkpoint.js";
import { shardedWrite, writeSafetensors } from "../../src/node/safetensors-files.js";
import { type TensorToWrite } from "../../src/model/checkpoint/safetensors-writer.js";
import { openCheckpoint } from "../../src/node/folder.js";
import { rawSafetensors, withTempDir } from "./helpers.js";

const MODEL_DIR = fileURLToPath(new URL("../../models/shakespeare-tiny/", import.meta.url));

function tensors(): TensorToWrite[] {
  const out: TensorToWrite[] = [];
  for (let l = 0; l < 4; l++) {
    out.push({ name: `model.layers.${l}.w`, dtype: "F32", shape: [8, 16], data: Float32Array.from({ length: 128 }, (_, i) => l * 1000 + i) });
    out.push({ name: `model.layers.${l}.norm`, dtype: "BF16", shape: [16], data: new Float32Array(16).fill(l + 0.5) });
  }
  return out;
}

async function message(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CheckpointError);
  return (err as Error).message;
}

describe("openCheckpoint (a folder on disk)", () => {
  it("opens the bundled single-file model", async () => {
    const ckpt = await openCheckpoint(MODEL_DIR);
    try {
      expect(ckpt.names()).toHaveLength(2 + 6 * 9);
      expect(ckpt.has("model.embed_tokens.weight")).toBe(true);
      expect(ckpt.info("model.embed_tokens.weight").shape).toEqual([1024, 320]);
      expect((await ckpt.readF32("model.norm.weight")).length).toBe(320);
      let rows = 0;
      for await (const block of ckpt.readRowsF32("model.embed_tokens.weight", 100)) rows += block.rows;
      expect(rows).toBe(1024);
    } finally {
      await ckpt.close();
    }
  });

  it("names a missing tensor and suggests similar ones", async () => {
    const ckpt = await openCheckpoint(MODEL_DIR);
    try {
      expect(ckpt.has("lm_head.weight")).toBe(false);
      expect(() => ckpt.info("model.layers.0.mlp.gate_proj.weight")).toThrow(
        /missing tensor model\.layers\.0\.mlp\.gate_proj\.weight; similar names: model\.layers\.0\.feed_forward\.gate_proj\.weight/,
      );
      await expect(ckpt.readF32("nope")).rejects.toThrow(/missing tensor nope/);
    } finally {
      await ckpt.close();
    }
  });

  it("suggests similar names in bounded time and space, whatever the names in the header", async () => {
    const empty = { dtype: "F32", shape: [0], data_offsets: [0, 0] };
    const header: Record<string, unknown> = { ["model.layers.0." + "x".repeat(4_000_000)]: empty, "model.layers.0.feed_forward.up_proj.weight": empty };
    for (let i = 0; i < 200_000; i++) header[`model.layers.${i}.self_attn.q_proj.weight`] = empty;
    const ckpt = await Checkpoint.fromSources([memorySource("big.safetensors", rawSafetensors(header))]);
    const t0 = performance.now();
    let message = "";
    try {
      ckpt.info("model.layers.0.mlp.up_proj.weight");
    } catch (err) {
      message = (err as Error).message;
    }
    // Before: an edit distance over every name, the 4-million-character one included (tens of seconds).
    expect(performance.now() - t0).toBeLessThan(3000);
    expect(message).toMatch(/^missing tensor model\.layers\.0\.mlp\.up_proj\.weight; similar names: model\.layers\.0\.feed_forward\.up_proj\.weight, /);
    expect(message.length).toBeLessThan(1000);
  });

  it("cuts a very long tensor name in messages", async () => {
    const entry = { dtype: "F32", shape: [1], data_offsets: [0, 4] };
    const long = "w".repeat(1_000_000);
    const bytes = rawSafetensors({ [long]: entry }, new Uint8Array(4));
    const a = memorySource("a.safetensors", bytes);
    const b = memorySource("b.safetensors", bytes);
    const err = await Checkpoint.fromSources([a, b]).catch((e: Error) => e);
    expect((err as Error).message).toMatch(/^tensor "w{200}"\.\.\. \(1000000 characters\) is defined twice: in a\.safetensors and in b\.safetensors$/);
  });

  it("reports a folder with neither file", async () => {
    await withTempDir(async (dir) => {
      expect(await message(openCheckpoint(dir))).toBe(`no model.safetensors or model.safetensors.index.json in ${dir}`);
    });
  });

  it.runIf(process.platform === "linux")("closes a malformed single file it could not parse", async () => {
    await withTempDir(async (dir) => {
      await writeFile(join(dir, "model.safetensors"), Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 1, 2]));
      const openFiles = async () => (await readdir("/proc/self/fd")).length;
      const before = await openFiles();
      for (let i = 0; i < 5; i++) expect(await message(openCheckpoint(dir))).toMatch(/model\.safetensors/);
      expect(await openFiles()).toBe(before);
    });
  });
});

describe("sharded checkpoints", () => {
  it("round-trips through shardedWrite and openCheckpoint", async () => {
    await withTempDir(async (dir) => {
      const ts = tensors();
      const { shards, index } = await shardedWrite(dir, ts, { maxShardBytes: 1200 });
      expect(shards.length).toBeGreaterThan(1);
      expect(shards[0]).toBe(`model-00001-of-${String(shards.length).padStart(5, "0")}.safetensors`);
      expect(index.metadata.total_size).toBe(4 * (512 + 32));
      const onDisk = JSON.parse(await readFile(join(dir, INDEX_FILE), "utf8")) as unknown;
      expect(onDisk).toEqual(index);

      const ckpt = await openCheckpoint(dir);
      try {
        expect(ckpt.names().sort()).toEqual(ts.map((t) => t.name).sort());
        expect(ckpt.indexMetadata).toEqual({ total_size: 4 * (512 + 32) });
        expect(ckpt.metadata).toEqual({ format: "pt" });
        for (const t of ts) {
          expect(ckpt.info(t.name).source.name.endsWith(index.weight_map[t.name])).toBe(true);
          expect(await ckpt.readF32(t.name)).toEqual(t.data);
        }
      } finally {
        await ckpt.close();
      }
    });
  });

  it("gives an oversized tensor a shard of its own", async () => {
    await withTempDir(async (dir) => {
      const { shards, index } = await shardedWrite(dir, tensors(), { maxShardBytes: 100 });
      expect(shards).toHaveLength(8);
      expect(new Set(Object.values(index.weight_map)).size).toBe(8);
    });
  });

  it("reports an index that points at a missing shard", async () => {
    await withTempDir(async (dir) => {
      const { shards } = await shardedWrite(dir, tensors(), { maxShardBytes: 1200 });
      await rm(join(dir, shards[1]));
      const msg = await message(openCheckpoint(dir));
      expect(msg).toMatch(new RegExp(`shard ${shards[1].replace(/\./g, "\\.")} \\(holding model\\.layers\\.\\d\\.\\w+\\) does not exist in`));
    });
  });

  it("reports a tensor the index puts in the wrong shard, or in no shard", async () => {
    await withTempDir(async (dir) => {
      const { shards, index } = await shardedWrite(dir, tensors(), { maxShardBytes: 1200 });
      const moved = { ...index, weight_map: { ...index.weight_map, "model.layers.0.w": shards[1] } };
      await writeFile(join(dir, INDEX_FILE), JSON.stringify(moved));
      expect(await message(openCheckpoint(dir))).toMatch(
        new RegExp(`tensor model\\.layers\\.0\\.w should be in ${shards[1].replace(/\./g, "\\.")} but is in .*${shards[0].replace(/\./g, "\\.")}`),
      );
      const ghost = { ...index, weight_map: { ...index.weight_map, "model.ghost": shards[0] } };
      await writeFile(join(dir, INDEX_FILE), JSON.stringify(ghost));
      expect(await message(openCheckpoint(dir))).toMatch(/tensor model\.ghost should be in .* but is in no shard/);
    });
  });

  it("reports a tensor defined in two shards", async () => {
    await withTempDir(async (dir) => {
      const ts = tensors();
      await writeSafetensors(join(dir, "a.safetensors"), ts.slice(0, 3));
      await writeSafetensors(join(dir, "b.safetensors"), ts.slice(2));
      const weightMap = Object.fromEntries([...ts.slice(0, 3).map((t) => [t.name, "a.safetensors"]), ...ts.slice(3).map((t) => [t.name, "b.safetensors"])]);
      await writeFile(join(dir, INDEX_FILE), JSON.stringify({ metadata: {}, weight_map: weightMap }));
      expect(await message(openCheckpoint(dir))).toMatch(
        /tensor model\.layers\.1\.w is defined twice: in .*a\.safetensors and in .*b\.safetensors/,
      );
    });
  });

  it("rejects malformed index files and shard names that leave the folder", async () => {
    await withTempDir(async (dir) => {
      await copyFile(join(MODEL_DIR, "model.safetensors"), join(dir, "x.safetensors"));
      await writeFile(join(dir, INDEX_FILE), "{ not json");
      expect(await message(openCheckpoint(dir))).toMatch(/model\.safetensors\.index\.json: not valid JSON/);
      await writeFile(join(dir, INDEX_FILE), JSON.stringify({ metadata: {} }));
      expect(await message(openCheckpoint(dir))).toMatch(/weight_map is missing or not an object/);
      await writeFile(join(dir, INDEX_FILE), JSON.stringify({ weight_map: { w: "../x.safetensors" } }));
      expect(await message(openCheckpoint(dir))).toMatch(/weight_map entry for w is not a plain file name: "\.\.\/x\.safetensors"/);
    });
  });
});

describe("Checkpoint.fromSources", () => {
  it("matches sources to the index by base name", async () => {
    await withTempDir(async (dir) => {
      const { shards, index } = await shardedWrite(dir, tensors(), { maxShardBytes: 1200 });
      const sources = await Promise.all(shards.map(async (s) => memorySource(`some/upload/${s}`, await readFile(join(dir, s)))));
      const ckpt = await Checkpoint.fromSources(sources, index);
      expect(await ckpt.readF32("model.layers.3.norm")).toEqual(new Float32Array(16).fill(3.5));
      expect(await message(Checkpoint.fromSources(sources.slice(1), index))).toMatch(/shard model-00001-of-\d+\.safetensors .* was not given/);
      await expect(Checkpoint.fromSources([])).rejects.toThrow(/no checkpoint files given/);
      await ckpt.close();
    });
  });
});
