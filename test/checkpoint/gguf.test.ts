// The GGUF container: writer -> reader round trips, and the reader against hand-built hostile headers, each
// refused with one line naming the problem.
import { describe, expect, it } from "vitest";
import { CheckpointError } from "../../src/env/byte-source.js";
import { openFileSource } from "../../src/node/file-source.js";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { GgufFile } from "../../src/model/checkpoint/gguf.js";
import { bool, bools, f32, f32s, i32, i32s, str, strings, u32, u32s, u64, u8, writeGgufTo, type GgufTensorToWrite, type GgufValue } from "../../src/model/checkpoint/gguf-writer.js";
import { counting, withTempDir } from "./helpers.js";
import { RawGguf, ggufSource, memorySink } from "./gguf-helpers.js";

async function* once(b: Uint8Array): AsyncIterable<Uint8Array> {
  yield b;
}

function bytesOf(n: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed * 17) & 0xff);
}

async function written(metadata: Array<[string, GgufValue]>, tensors: GgufTensorToWrite[]): Promise<Uint8Array> {
  const sink = memorySink();
  await writeGgufTo(sink, metadata, tensors);
  await sink.close();
  return sink.bytes();
}

async function refusal(bytes: Uint8Array): Promise<string> {
  try {
    await GgufFile.open(ggufSource(bytes));
  } catch (e) {
    expect(e).toBeInstanceOf(CheckpointError);
    const msg = (e as Error).message;
    expect(msg).not.toContain("\n");
    return msg;
  }
  throw new Error("the file was accepted");
}

describe("GGUF writer -> reader", () => {
  it("round-trips metadata of every type, tensor infos and tensor bytes", async () => {
    const q = bytesOf(36, 1);
    const norm = bytesOf(28, 2);
    const half = bytesOf(20, 3);
    const metadata: Array<[string, GgufValue]> = [
      ["general.architecture", str("test")],
      ["general.alignment", u32(64)],
      ["a.u8", u8(200)],
      ["a.i8", { type: "i8", value: -100 }],
      ["a.u16", { type: "u16", value: 65535 }],
      ["a.i16", { type: "i16", value: -32768 }],
      ["a.u32", u32(2 ** 32 - 1)],
      ["a.i32", i32(-(2 ** 31))],
      ["a.f32", f32(1e-5)],
      ["a.f64", { type: "f64", value: Math.PI }],
      ["a.bool", bool(true)],
      ["a.string", str("héllo ▁ wörld")],
      ["a.u64", u64(2n ** 64n - 1n)],
      ["a.i64", { type: "i64", value: -(2n ** 63n) }],
      ["a.strings", strings(["", "x", "<0x0A>"])],
      ["a.bools", bools([true, false, true])],
      ["a.u32s", u32s([1, 2, 2 ** 32 - 1])],
      ["a.i32s", i32s([-1, 0, 1])],
      ["a.f32s", f32s([0.5, -2])],
      ["a.empty", strings([])],
    ];
    const tensors: GgufTensorToWrite[] = [
      { name: "q", dims: [64, 1], type: "Q4_0", data: () => once(q) },
      { name: "norm", dims: [7], type: "F32", data: () => once(norm) },
      { name: "half", dims: [5, 2], type: "F16", data: () => once(half) },
    ];
    const bytes = await written(metadata, tensors);
    const f = await GgufFile.open(ggufSource(bytes));
    expect(f.version).toBe(3);
    expect(f.alignment).toBe(64);
    expect(f.dataOffset % 64).toBe(0);
    const md = f.metadata;
    expect(md.keys()).toEqual(metadata.map(([k]) => k));
    expect(md.string("general.architecture")).toBe("test");
    expect(md.number("a.u8", "u8")).toBe(200);
    expect(md.number("a.i8", "i8")).toBe(-100);
    expect(md.number("a.u16", "u16")).toBe(65535);
    expect(md.number("a.i16", "i16")).toBe(-32768);
    expect(md.number("a.u32", "u32")).toBe(2 ** 32 - 1);
    expect(md.number("a.i32", "i32")).toBe(-(2 ** 31));
    expect(md.number("a.f32", "f32")).toBe(Math.fround(1e-5));
    expect(md.number("a.f64", "f64")).toBe(Math.PI);
    expect(md.bool("a.bool")).toBe(true);
    expect(md.string("a.string")).toBe("héllo ▁ wörld");
    expect(md.get("a.u64")).toEqual({ type: "u64", value: 2n ** 64n - 1n });
    expect(md.get("a.i64")).toEqual({ type: "i64", value: -(2n ** 63n) });
    expect(() => md.number("a.u64", "u64")).toThrow(/too large/);
    expect(md.array("a.strings", "string")).toEqual(["", "x", "<0x0A>"]);
    expect(Array.from(md.array("a.bools", "bool") as Uint8Array)).toEqual([1, 0, 1]);
    expect(Array.from(md.array("a.u32s", "u32") as Uint32Array)).toEqual([1, 2, 2 ** 32 - 1]);
    expect(Array.from(md.array("a.i32s", "i32") as Int32Array)).toEqual([-1, 0, 1]);
    expect(Array.from(md.array("a.f32s", "f32") as Float32Array)).toEqual([0.5, -2]);
    expect(md.array("a.empty", "string")).toEqual([]);
    // typed accessors refuse a missing key and a key of another type, naming it
    expect(() => md.string("nope")).toThrow(/missing required metadata key nope/);
    expect(md.string("nope", "optional")).toBeUndefined();
    expect(() => md.string("a.u32")).toThrow(/a\.u32 is u32, expected string/);
    expect(() => md.number("a.u32", "u64")).toThrow(/a\.u32 is u32, expected u64/);
    expect(() => md.array("a.u32s", "i32")).toThrow(/a\.u32s is u32\[\], expected i32\[\]/);

    expect(f.tensors.map((t) => [t.name, t.type, t.dims, t.shape, t.elements, t.bytes])).toEqual([
      ["q", "Q4_0", [64, 1], [1, 64], 64, 36],
      ["norm", "F32", [7], [7], 7, 28],
      ["half", "F16", [5, 2], [2, 5], 10, 20],
    ]);
    for (const t of f.tensors) expect((t.offset - f.dataOffset) % 64).toBe(0);
    expect(bytes.subarray(f.tensor("q").offset, f.tensor("q").offset + 36)).toEqual(q);

    const out = new Uint8Array(40).fill(0xee);
    await f.readTensorBytes("norm", out, 4);
    expect(out.subarray(4, 32)).toEqual(norm);
    expect(out[3]).toBe(0xee);
    expect(out[32]).toBe(0xee);
    const part = new Uint8Array(6);
    await f.readTensorBytes(f.tensor("half"), part, 0, { begin: 10, length: 6 });
    expect(part).toEqual(half.subarray(10, 16));
    await expect(f.readTensorBytes("half", new Uint8Array(19))).rejects.toThrow(/do not fit/);
    await expect(f.readTensorBytes("half", part, 0, { begin: 16, length: 6 })).rejects.toThrow(/outside tensor half/);
    await expect(f.readTensorBytes("missing", part)).rejects.toThrow(/missing tensor missing/);
    await f.close();
  });

  it("keeps a string's leading U+FEFF (Llama 2's vocabulary has it as a token)", async () => {
    const sink = memorySink();
    await writeGgufTo(sink, [["k", str("\ufeff")], ["ks", strings(["\ufeffa", "b"])]], []);
    await sink.close();
    const md = (await GgufFile.open(ggufSource(sink.bytes()))).metadata;
    expect(md.string("k")).toBe("\ufeff");
    expect(md.array("ks", "string")).toEqual(["\ufeffa", "b"]);
  });

  it("reads the header in bounded chunks and never past what it needs", async () => {
    const big = "x".repeat(3 << 20); // a 3 MiB string: one read of exactly its size, not more
    const bytes = await written([["k.big", str(big)], ["k.small", u32(1)]], [{ name: "t", dims: [4], type: "F32", data: () => once(new Uint8Array(16)) }]);
    const src = counting(ggufSource(bytes));
    const f = await GgufFile.open(src);
    expect(f.metadata.string("k.big").length).toBe(3 << 20);
    expect(Math.max(...src.reads.map((r) => r.length))).toBeLessThanOrEqual(3 << 20);
    expect(src.reads.reduce((n, r) => n + r.length, 0)).toBeLessThanOrEqual(bytes.length);
  });

  it("copies tensor bytes the same way from a file (straight into the output) and from a source without readInto", async () => {
    const a = bytesOf(36 * 5, 4);
    const b = bytesOf(12, 5);
    const bytes = await written([], [
      { name: "a", dims: [32, 10], type: "Q4_0", data: () => once(a) },
      { name: "b", dims: [3], type: "F32", data: () => once(b) },
    ]);
    await withTempDir(async (dir) => {
      const path = join(dir, "x.gguf");
      writeFileSync(path, bytes);
      const fromFile = await GgufFile.open(await openFileSource(path));
      const plain = counting(ggufSource(bytes)); // counting() passes on read only, so readInto is absent
      const fromPlain = await GgufFile.open(plain);
      for (const f of [fromFile, fromPlain]) {
        const out = new Uint8Array(200);
        await f.readTensorBytes("a", out, 10);
        expect(out.subarray(10, 190)).toEqual(a);
        await f.readTensorBytes("b", out, 0, { begin: 4, length: 8 });
        expect(out.subarray(0, 8)).toEqual(b.subarray(4, 12));
      }
      expect(plain.reads.some((r) => r.length === 180)).toBe(true);
      await fromFile.close();
      // a file source refuses a range past the end before touching the output
      const src = await openFileSource(path);
      const out = new Uint8Array(8).fill(7);
      await expect(src.readInto!(bytes.length - 4, out)).rejects.toThrow(/goes past the end of the file/);
      expect(Array.from(out)).toEqual(new Array(8).fill(7));
      await src.close();
    });
  });

  it("refuses what the writer cannot represent", async () => {
    await expect(written([["k", u32(-1)]], [])).rejects.toThrow(/-1 is not a valid u32/);
    await expect(written([["k", u32(1)], ["k", u32(2)]], [])).rejects.toThrow(/twice/);
    await expect(written([["general.alignment", u32(24)]], [])).rejects.toThrow(/power of two/);
    await expect(written([], [{ name: "q", dims: [30], type: "Q4_0", data: () => once(new Uint8Array(0)) }])).rejects.toThrow(/multiple of 32/);
    await expect(written([], [{ name: "x".repeat(65), dims: [1], type: "F32", data: () => once(new Uint8Array(4)) }])).rejects.toThrow(/1 to 64 bytes/);
    await expect(written([], [{ name: "t", dims: [2], type: "F32", data: () => once(new Uint8Array(4)) }])).rejects.toThrow(/got 4 bytes of data, its type and dims imply 8/);
  });
});

/** One valid tensor after `kvs` metadata entries: name t, F32 [4] at offset 0. */
function withTensor(build: (r: RawGguf) => RawGguf, kvs: number, data = 16): Uint8Array {
  const r = build(new RawGguf().header(1, kvs));
  r.tensor("t", [4], 0, 0).pad();
  return r.zeros(data).build();
}

describe("GGUF reader on hostile headers", () => {
  const cases: Array<[string, () => Uint8Array, RegExp]> = [
    ["a file shorter than the header", () => new RawGguf().raw([0x47, 0x47, 0x55, 0x46]).u32(3).build(), /too short for a GGUF header/],
    ["another format", () => new RawGguf().raw([0x50, 0x4b, 3, 4]).u32(3).u64(0).u64(0).build(), /not a GGUF file/],
    ["version 1", () => new RawGguf().header(0, 0, 1).build(), /version 1 is not supported/],
    ["a big-endian file", () => new RawGguf().header(0, 0, 0x03000000).build(), /big-endian/],
    ["a metadata count near 2^64", () => new RawGguf().header(0, 2n ** 64n - 1n).zeros(64).build(), /18446744073709551615 metadata entries, more than the 65536 this reader accepts/],
    ["a tensor count near 2^63", () => new RawGguf().header(2n ** 63n, 0).zeros(64).build(), /9223372036854775808 tensors, more than the 65536/],
    ["more entries than the file can hold", () => new RawGguf().header(1000, 1000).zeros(64).build(), /1000 metadata entries and 1000 tensors cannot fit in the 64 bytes after the header/],
    ["a key length near 2^64", () => new RawGguf().header(0, 1).u64(2n ** 64n - 1n).zeros(16).build(), /metadata key 0 at offset 24 declares 18446744073709551615 bytes, past the end/],
    ["a key length one past the end", () => new RawGguf().header(0, 1).u64(14).raw(new TextEncoder().encode("abcdefghijklm")).build(), /declares 14 bytes, past the end of the file \(13 bytes left\)/],
    ["a key of invalid UTF-8", () => new RawGguf().header(0, 1).u64(2).raw([0xc3, 0x28]).u32(4).u32(1).build(), /metadata key 0 at offset 24 is not valid UTF-8/],
    ["an empty key", () => new RawGguf().header(0, 1).str("").u32(4).u32(1).zeros(8).build(), /metadata key 0 is empty/],
    ["a key given twice", () => new RawGguf().header(0, 2).kvU32("a.b", 1).kvU32("a.b", 2).build(), /metadata key a\.b appears twice/],
    ["an unknown value type", () => new RawGguf().header(0, 1).str("a.b").u32(13).u32(0).build(), /metadata key a\.b has unknown value type 13/],
    ["an array of arrays", () => new RawGguf().header(0, 1).str("a.b").u32(9).u32(9).u64(0).build(), /array of arrays/],
    ["an array of an unknown type", () => new RawGguf().header(0, 1).str("a.b").u32(9).u32(77).u64(0).build(), /array of unknown value type 77/],
    ["an array count near 2^64", () => new RawGguf().header(0, 1).str("a.b").u32(9).u32(0).u64(2n ** 64n - 1n).zeros(8).build(), /declares 18446744073709551615 u8 items, more than the 8 bytes left/],
    ["a string array whose count times 8 wraps 2^64", () => new RawGguf().header(0, 1).str("a.b").u32(9).u32(8).u64(2n ** 61n).zeros(8).build(), /declares 2305843009213693952 string items/],
    ["a string item past the end", () => new RawGguf().header(0, 1).str("a.b").u32(9).u32(8).u64(1).u64(1000).zeros(4).build(), /item 0 of metadata key a\.b at offset \d+ declares 1000 bytes, past the end/],
    ["a string value past the end", () => new RawGguf().header(0, 1).str("a.b").u32(8).u64(2n ** 62n).zeros(8).build(), /metadata key a\.b at offset \d+ declares 4611686018427387904 bytes, past the end/],
    ["a bool of value 2", () => new RawGguf().header(0, 1).str("a.b").u32(7).u8(2).zeros(13).build(), /bool of value 2/],
    ["a value cut off by the end of the file", () => new RawGguf().header(0, 1).str("a.b").u32(12).zeros(4).build(), /the file ends inside metadata key a\.b at offset \d+ \(8 bytes needed, 4 left\)/],
    ["an alignment that is not a power of two", () => withTensor((r) => r.kvU32("general.alignment", 48), 1), /general\.alignment 48 is not a power of two/],
    ["an alignment of zero", () => withTensor((r) => r.kvU32("general.alignment", 0), 1), /general\.alignment 0 is not a power of two/],
    ["an alignment of the wrong type", () => withTensor((r) => r.kvString("general.alignment", "32"), 1), /general\.alignment is string, expected u32/],
    ["a tensor with no dimensions", () => new RawGguf().header(1, 0).tensor("t", [], 0, 0).pad().zeros(16).build(), /tensor t has 0 dimensions/],
    ["a tensor with five dimensions", () => new RawGguf().header(1, 0).tensor("t", [1, 1, 1, 1, 1], 0, 0).pad().zeros(16).build(), /tensor t has 5 dimensions/],
    ["a dimension count near 2^32", () => new RawGguf().header(1, 0).str("t").u32(2 ** 32 - 1).zeros(64).build(), /tensor t has 4294967295 dimensions/],
    ["a zero dimension", () => new RawGguf().header(1, 0).tensor("t", [4, 0], 0, 0).pad().zeros(16).build(), /tensor t has a zero dimension/],
    ["a dimension near 2^64", () => new RawGguf().header(1, 0).tensor("t", [2n ** 64n - 1n], 0, 0).pad().zeros(16).build(), /tensor t: its element count overflows/],
    ["dimensions whose product overflows 2^53", () => new RawGguf().header(1, 0).tensor("t", [2 ** 27, 2 ** 27], 0, 0).pad().zeros(16).build(), /tensor t: its element count overflows \(dimension 1 is 134217728\)/],
    ["dimensions whose product wraps 2^64", () => new RawGguf().header(1, 0).tensor("t", [2 ** 32, 2 ** 32], 0, 0).pad().zeros(16).build(), /element count overflows/],
    ["a byte size past the file", () => new RawGguf().header(1, 0).tensor("t", [2 ** 40, 2 ** 12], 0, 0).pad().zeros(16).build(), /tensor t needs 18014398509481984 bytes, more than the whole file/],
    ["an unknown tensor type", () => new RawGguf().header(1, 0).tensor("t", [4], 99, 0).pad().zeros(16).build(), /tensor t has unknown or unsupported ggml type 99/],
    ["a removed tensor type (Q4_2)", () => new RawGguf().header(1, 0).tensor("t", [32], 4, 0).pad().zeros(32).build(), /unsupported ggml type 4/],
    ["a Q4_0 row that is not whole blocks", () => new RawGguf().header(1, 0).tensor("t", [30, 2], 2, 0).pad().zeros(64).build(), /row length 30 is not a multiple of the Q4_0 block size 32/],
    ["an offset that is not aligned", () => new RawGguf().header(1, 0).tensor("t", [4], 0, 4).pad().zeros(32).build(), /offset 4 is not a multiple of the alignment 32/],
    ["an offset near 2^64", () => new RawGguf().header(1, 0).tensor("t", [4], 0, 2n ** 64n - 32n).pad().zeros(32).build(), /starts at data offset 18446744073709551584, past the end/],
    ["a tensor past the end", () => new RawGguf().header(1, 0).tensor("t", [8], 0, 0).pad().zeros(31).build(), /tensor t \(32 bytes at offset 64\) runs past the end of the file \(95 bytes\)/],
    [
      "overlapping tensors",
      () => new RawGguf().header(2, 0).tensor("a", [16], 0, 0).tensor("b", [8], 0, 32).pad().zeros(64).build(),
      /tensors a and b overlap/,
    ],
    ["a tensor name given twice", () => new RawGguf().header(2, 0).tensor("a", [8], 0, 0).tensor("a", [8], 0, 32).pad().zeros(64).build(), /tensor a appears twice/],
    ["a tensor name longer than 64 bytes", () => new RawGguf().header(1, 0).tensor("n".repeat(65), [4], 0, 0).pad().zeros(16).build(), /is 65 bytes long, more than the format's 64/],
    ["an empty tensor name", () => new RawGguf().header(1, 0).tensor("", [4], 0, 0).pad().zeros(16).build(), /tensor 0 has an empty name/],
    ["a file cut inside the tensor infos", () => new RawGguf().header(1, 0).str("t".repeat(20)).u32(2).u64(32).build(), /the file ends inside dimension 1 of tensor t{20} at offset 64 \(8 bytes needed, 0 left\)/],
  ];
  for (const [what, build, message] of cases) {
    it(`refuses ${what}`, async () => {
      expect(await refusal(build())).toMatch(message);
    });
  }

  it("names the file in every message", async () => {
    try {
      await GgufFile.open(ggufSource(new RawGguf().header(0, 60).build(), "/models/x.gguf"));
      throw new Error("accepted");
    } catch (e) {
      expect((e as Error).message).toMatch(/^\/models\/x\.gguf: /);
    }
  });

  it("accepts what the format allows: GGUF v2, tensors in any order with gaps, no tensors at all", async () => {
    const v2 = await GgufFile.open(ggufSource(new RawGguf().header(0, 1, 2).kvU32("a", 7).build()));
    expect(v2.version).toBe(2);
    expect(v2.metadata.number("a", "u32")).toBe(7);
    const f = await GgufFile.open(ggufSource(new RawGguf().header(2, 0).tensor("late", [8], 0, 64).tensor("early", [8], 0, 0).pad().zeros(96).build()));
    expect(f.tensors.map((t) => [t.name, t.offset - f.dataOffset])).toEqual([
      ["late", 64],
      ["early", 0],
    ]);
  });
});
