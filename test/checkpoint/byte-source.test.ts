import { readdir, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { memorySource } from "../../src/env/byte-source.js";
import { openFileSink, openFileSource } from "../../src/node/file-source.js";
import { withTempDir } from "./helpers.js";

describe("openFileSource", () => {
  it("reads exact ranges with positional reads", async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, "f.bin");
      await writeFile(path, Uint8Array.from({ length: 100 }, (_, i) => i));
      const src = await openFileSource(path);
      try {
        expect(src.size).toBe(100);
        const [a, b] = await Promise.all([src.read(10, 3), src.read(97, 3)]);
        expect(Array.from(a)).toEqual([10, 11, 12]);
        expect(Array.from(b)).toEqual([97, 98, 99]);
        expect((await src.read(100, 0)).length).toBe(0);
        await expect(src.read(98, 3)).rejects.toThrow(/f\.bin: read of 3 bytes at offset 98 goes past the end of the file \(100 bytes\)/);
        await expect(src.read(-1, 1)).rejects.toThrow(/invalid read/);
      } finally {
        await src.close();
      }
      await expect(src.read(0, 1)).rejects.toThrow(/read after close/);
    });
  });

  it("reports a short read naming the file when it shrinks while open", async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, "shrinks.safetensors");
      await writeFile(path, new Uint8Array(1000));
      const src = await openFileSource(path);
      try {
        await truncate(path, 500);
        await expect(src.read(400, 200)).rejects.toThrow(/shrinks\.safetensors: short read, got 100 of 200 bytes at offset 400/);
      } finally {
        await src.close();
      }
    });
  });

  it("names a file that cannot be opened", async () => {
    await withTempDir(async (dir) => {
      await expect(openFileSource(join(dir, "absent.safetensors"))).rejects.toThrow(/cannot open .*absent\.safetensors/);
      await expect(openFileSource(dir)).rejects.toThrow(/is not a regular file/);
    });
  });
});

describe("sinks and memory sources", () => {
  it("commits on close and leaves nothing on abort", async () => {
    await withTempDir(async (dir) => {
      const ok = await openFileSink(join(dir, "sub", "a.bin"));
      await ok.write(new Uint8Array([1, 2]));
      await ok.close();
      const bad = await openFileSink(join(dir, "sub", "b.bin"));
      await bad.write(new Uint8Array([3]));
      await bad.abort();
      expect(await readdir(join(dir, "sub"))).toEqual(["a.bin"]);
    });
  });

  it("memory sources return copies", async () => {
    const bytes = new Uint8Array([1, 2, 3]);
    const src = memorySource("m", bytes);
    const r = await src.read(0, 3);
    r[0] = 9;
    expect(bytes[0]).toBe(1);
  });
});
