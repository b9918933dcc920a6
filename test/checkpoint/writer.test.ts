import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { CheckpointError, memorySource, type ByteSink } from "../../src/env/byte-source.js";
import { openFileSource } from "../../src/node/file-source.js";
import { f16BitsToF32, f32ToBf16Bits, f32ToF16Bits, type DType } from "../../src/kernels/dtype.js";
import { parseSafetensors, readTensorF32 } from "../../src/model/checkpoint/safetensors.js";
import { writeSafetensors } from "../../src/node/safetensors-files.js";
import { writeSafetensorsTo, type TensorToWrite } from "../../src/model/checkpoint/safetensors-writer.js";
import { withTempDir } from "./helpers.js";

function memorySink(): ByteSink & { bytes(): Uint8Array } {
  const parts: Uint8Array[] = [];
  return {
    name: "memory.safetensors",
    async write(b) {
      parts.push(b.slice());
    },
    async close() {},
    async abort() {
      parts.length = 0;
    },
    bytes() {
      const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
      let o = 0;
      for (const p of parts) (out.set(p, o), (o += p.length));
      return out;
    },
  };
}

/** What a value should read back as after a trip through `dtype`. */
function expectedAfter(dtype: DType, x: number): number {
  if (dtype === "F32") return Math.fround(x);
  if (dtype === "F16") return f16BitsToF32(f32ToF16Bits(x));
  return new Float32Array(new Uint32Array([f32ToBf16Bits(x) << 16]).buffer)[0];
}

async function roundTrip(tensors: TensorToWrite[], checkFinite = true) {
  const sink = memorySink();
  await writeSafetensorsTo(sink, tensors, { format: "pt" });
  const parsed = await parseSafetensors(memorySource("rt.safetensors", sink.bytes()));
  const out = new Map<string, Float32Array>();
  for (const [name, info] of parsed.tensors) out.set(name, await readTensorF32(info, { checkFinite }));
  return { parsed, out, bytes: sink.bytes() };
}

describe("writer -> reader round trip", () => {
  it("writes a file the reader accepts, header padded to 8 bytes, values rounded per dtype", async () => {
    await withTempDir(async (dir) => {
      const values = new Float32Array([0, -0, 1, -1.5, 3.14159, 1e-6, 6e-8, 65504, 70000, 1 + 2 ** -8]);
      const tensors: TensorToWrite[] = (["F32", "F16", "BF16"] as const).map((dtype) => ({
        name: `t.${dtype}`,
        dtype,
        shape: [2, 5],
        data: values,
      }));
      const path = join(dir, "model.safetensors");
      await writeSafetensors(path, tensors, { format: "pt" });
      expect(await readdir(dir)).toEqual(["model.safetensors"]); // no .partial left behind
      const raw = await readFile(path);
      expect(Number(raw.readBigUInt64LE(0)) % 8).toBe(0);
      const src = await openFileSource(path);
      try {
        const { tensors: infos, metadata } = await parseSafetensors(src);
        expect(metadata).toEqual({ format: "pt" });
        for (const t of tensors) {
          const got = await readTensorF32(infos.get(t.name)!, { checkFinite: false });
          expect(Array.from(got)).toEqual(Array.from(values, (x) => expectedAfter(t.dtype, x)));
        }
        // F16 overflows 70000 to inf, which the default finite check then rejects.
        await expect(readTensorF32(infos.get("t.F16")!)).rejects.toThrow(/tensor t\.F16 contains NaN\/Inf at index 8/);
      } finally {
        await src.close();
      }
    });
  });

  it("round-trips random tensors in every dtype (property, incl. subnormals)", async () => {
    const dtype = fc.constantFrom<DType>("F32", "F16", "BF16");
    const tensor = fc
      .tuple(dtype, fc.integer({ min: 0, max: 6 }), fc.integer({ min: 1, max: 6 }))
      .chain(([d, r, c]) =>
        fc
          .oneof(
            fc.float32Array({ minLength: r * c, maxLength: r * c, noNaN: true, noDefaultInfinity: true }),
            fc.float32Array({ minLength: r * c, maxLength: r * c, min: -(2 ** -120), max: 2 ** -120, noNaN: true }),
          )
          .map((data) => ({ dtype: d, shape: [r, c], data })),
      );
    await fc.assert(
      fc.asyncProperty(fc.array(tensor, { minLength: 1, maxLength: 4 }), async (ts) => {
        const tensors = ts.map((t, i) => ({ ...t, name: `w${i}` }));
        const { out } = await roundTrip(tensors, false);
        for (const t of tensors) {
          const got = out.get(t.name)!;
          for (let i = 0; i < t.data.length; i++) {
            if (!Object.is(got[i], expectedAfter(t.dtype, t.data[i]))) return false;
          }
        }
        return true;
      }),
      { numRuns: 300 },
    );
  });

  it("rejects infinities on read after a faithful write", async () => {
    const { parsed, out } = await roundTrip([{ name: "w", dtype: "BF16", shape: [3], data: new Float32Array([1, -Infinity, 2]) }], false);
    expect(Array.from(out.get("w")!)).toEqual([1, -Infinity, 2]);
    await expect(readTensorF32(parsed.tensors.get("w")!)).rejects.toThrow(/tensor w contains NaN\/Inf at index 1/);
  });

  it("streams a producer's chunks of any size", async () => {
    const values = Float32Array.from({ length: 1000 }, (_, i) => i / 7);
    const { out } = await roundTrip([
      {
        name: "s",
        dtype: "F32",
        shape: [10, 100],
        data: async function* () {
          for (let i = 0; i < 1000; i += 333) yield values.slice(i, i + 333);
        },
      },
    ]);
    expect(out.get("s")).toEqual(values);
  });

  it("refuses producers that give the wrong count and leaves no file", async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, "bad.safetensors");
      const short: TensorToWrite = { name: "s", dtype: "F16", shape: [4], data: async function* () { yield new Float32Array(3); } };
      await expect(writeSafetensors(path, [short])).rejects.toThrow(/tensor s: producer gave 3 values, shape needs 4/);
      const long: TensorToWrite = { name: "l", dtype: "F16", shape: [2], data: async function* () { yield new Float32Array(3); } };
      await expect(writeSafetensors(path, [long])).rejects.toThrow(CheckpointError);
      expect(await readdir(dir)).toEqual([]);
    });
  });

  it("refuses duplicate names and data that does not match the shape", async () => {
    const a: TensorToWrite = { name: "a", dtype: "F32", shape: [1], data: new Float32Array(1) };
    await expect(writeSafetensorsTo(memorySink(), [a, a])).rejects.toThrow(/tensor a is given twice/);
    await expect(writeSafetensorsTo(memorySink(), [{ ...a, shape: [2] }])).rejects.toThrow(/1 values for shape \[2\]/);
  });
});
