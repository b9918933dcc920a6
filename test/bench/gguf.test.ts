// The GGUF writer (src/model/checkpoint/gguf-writer.ts) and the llama-architecture file behind `npm run
// bench:peer`: Q4_0 against a scalar reference of the format, and files read
// back through a small reader written here from the format description (not from the writer's code).
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import { f16BitsToF32 } from "../../src/kernels/dtype.js";
import { loadConfig } from "../../src/node/bundled.js";
import { resolveTensorNames } from "../../src/model/tensor-names.js";
import { llamaGguf, quantizeQ4_0 } from "../../bench/llama-gguf.js";
import {
  encodeGgufHeader,
  str,
  u32,
  f32,
  bool,
  u64,
  strings,
  f32s,
  i32s,
  type GgufTensorToWrite as GgufTensor,
  type GgufValue,
} from "../../src/model/checkpoint/gguf-writer.js";
import { writeGgufFile as writeGguf } from "../../src/node/gguf-files.js";
import { CheckpointError as GgufError } from "../../src/env/byte-source.js";
import { rng, gauss } from "../helpers/rng.js";
import { openCheckpoint } from "../../src/node/folder.js";

const tmp = mkdtempSync(join(tmpdir(), "gguf-test-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// ---------------------------------------------------------------------------------------------------------
// Scalar reference of Q4_0, with every intermediate held in a Float32Array (f32 as ggml computes it).

function refQ4_0Block(x: ArrayLike<number>): { d: number; q: number[] } {
  const f = new Float32Array(4); // 0: max, 1: d, 2: 1/d, 3: scratch
  let amax = 0;
  for (let j = 0; j < 32; j++) {
    if (Math.abs(x[j]) > amax) {
      amax = Math.abs(x[j]);
      f[0] = x[j];
    }
  }
  f[1] = f[0] / -8;
  f[2] = f[1] === 0 ? 0 : 1 / f[1];
  const q: number[] = [];
  for (let j = 0; j < 32; j++) {
    f[3] = x[j] * f[2];
    f[3] = f[3] + 8.5;
    q.push(Math.min(15, Math.floor(f[3]))); // non-negative, so floor is the C cast's truncation
  }
  return { d: f[1], q };
}

/** Decodes Q4_0 blocks: (nibble - 8) * d, nibble j low / j + 16 high. */
function dequantQ4_0(bytes: Uint8Array, n: number): { values: Float32Array; d: Float32Array; q: Uint8Array } {
  const values = new Float32Array(n);
  const d = new Float32Array(n / 32);
  const q = new Uint8Array(n);
  for (let b = 0; b < n / 32; b++) {
    const o = b * 18;
    d[b] = f16BitsToF32(bytes[o] | (bytes[o + 1] << 8));
    for (let j = 0; j < 16; j++) {
      q[b * 32 + j] = bytes[o + 2 + j] & 15;
      q[b * 32 + 16 + j] = bytes[o + 2 + j] >> 4;
    }
  }
  for (let i = 0; i < n; i++) values[i] = (q[i] - 8) * d[i >> 5];
  return { values, d, q };
}

describe("Q4_0", () => {
  it("matches the scalar reference and reconstructs within one step", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 31 - 1 }), fc.double({ min: 1e-3, max: 1e3, noNaN: true }) /* d stays a normal half */, fc.integer({ min: 1, max: 8 }), (seed, scale, blocks) => {
        const r = rng(seed);
        const x = new Float32Array(32 * blocks);
        for (let i = 0; i < x.length; i++) x[i] = gauss(r) * scale;
        const bytes = quantizeQ4_0(x);
        expect(bytes.length).toBe(18 * blocks);
        const { values, d, q } = dequantQ4_0(bytes, x.length);
        for (let b = 0; b < blocks; b++) {
          const ref = refQ4_0Block(x.subarray(b * 32, b * 32 + 32));
          expect(Math.abs(d[b] - ref.d)).toBeLessThanOrEqual(Math.abs(ref.d) * 2 ** -11);
          expect(Array.from(q.subarray(b * 32, b * 32 + 32))).toEqual(ref.q);
          // The largest magnitude maps to nibble 0 exactly; everything else is within one step |d|
          // (half a step unless clamped at 15 on the far side), plus the half-precision rounding of d.
          const step = Math.abs(d[b]);
          for (let j = 0; j < 32; j++) {
            const i = b * 32 + j;
            const bound = (q[i] === 15 ? 1 : 0.5) * Math.abs(ref.d) + 8 * Math.abs(d[b] - ref.d) + 1e-12;
            expect(Math.abs(values[i] - x[i])).toBeLessThanOrEqual(bound);
            expect(Math.abs(values[i] - x[i])).toBeLessThanOrEqual(step * 1.01 + 1e-12);
          }
        }
      }),
      { numRuns: 200 },
    );
  });

  it("handles zero blocks, a negative maximum and exact half steps", () => {
    const zeros = quantizeQ4_0(new Float32Array(32));
    expect(Array.from(zeros.subarray(0, 2))).toEqual([0, 0x80]); // d = 0 / -8 = -0, as in ggml
    expect(Array.from(zeros.subarray(2))).toEqual(new Array(16).fill(0x88));

    const neg = new Float32Array(32).fill(1);
    neg[5] = -8; // d = 1, so the value j maps to nibble j + 8 (clamped at 15)
    neg[20] = 0.5; // 0.5 + 8.5 = 9 exactly: nibble 9
    neg[21] = -0.5; // 8: nibble 8
    const { values, q } = dequantQ4_0(quantizeQ4_0(neg), 32);
    expect(q[5]).toBe(0);
    expect(values[5]).toBe(-8);
    expect(q[0]).toBe(9);
    expect(q[20]).toBe(9);
    expect(q[21]).toBe(8);

    const pos = new Float32Array(32);
    pos[0] = 4; // d = -0.5: +4 is nibble 0, -4 would be nibble 16 and clamps to 15 (-3.5)
    pos[1] = -4;
    const p = dequantQ4_0(quantizeQ4_0(pos), 32);
    expect(p.values[0]).toBe(4);
    expect(p.q[1]).toBe(15);
    expect(p.values[1]).toBe(-3.5);
  });

  it("rejects a length that is not whole blocks", () => {
    expect(() => quantizeQ4_0(new Float32Array(33))).toThrow(GgufError);
  });
});

// ---------------------------------------------------------------------------------------------------------
// An independent GGUF reader, from the format description.

interface ReadTensor {
  name: string;
  dims: number[];
  type: number;
  offset: number;
}

interface ReadFile {
  version: number;
  kv: Map<string, unknown>;
  tensors: ReadTensor[];
  dataStart: number;
  bytes: Uint8Array;
}

function readGguf(bytes: Uint8Array): ReadFile {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let p = 0;
  const u32 = () => ((p += 4), v.getUint32(p - 4, true));
  const u64 = () => ((p += 8), Number(v.getBigUint64(p - 8, true)));
  const string = () => {
    const n = u64();
    p += n;
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(p - n, p));
  };
  const value = (type: number): unknown => {
    switch (type) {
      case 0:
        return bytes[p++];
      case 1:
        return v.getInt8(p++);
      case 2:
        return (p += 2), v.getUint16(p - 2, true);
      case 3:
        return (p += 2), v.getInt16(p - 2, true);
      case 4:
        return u32();
      case 5:
        return (p += 4), v.getInt32(p - 4, true);
      case 6:
        return (p += 4), v.getFloat32(p - 4, true);
      case 7: {
        const b = bytes[p++];
        if (b > 1) throw new Error(`bool byte ${b}`);
        return b === 1;
      }
      case 8:
        return string();
      case 9: {
        const itemType = u32();
        const n = u64();
        return Array.from({ length: n }, () => value(itemType));
      }
      case 10:
        return u64();
      case 11:
        return (p += 8), Number(v.getBigInt64(p - 8, true));
      case 12:
        return (p += 8), v.getFloat64(p - 8, true);
      default:
        throw new Error(`unknown value type ${type} at ${p}`);
    }
  };
  expect(String.fromCharCode(...bytes.subarray(0, 4))).toBe("GGUF");
  p = 4;
  const version = u32();
  const nTensors = u64();
  const nKv = u64();
  const kv = new Map<string, unknown>();
  for (let i = 0; i < nKv; i++) {
    const key = string();
    kv.set(key, value(u32()));
  }
  const tensors: ReadTensor[] = [];
  for (let i = 0; i < nTensors; i++) {
    const name = string();
    const nd = u32();
    const dims = Array.from({ length: nd }, () => u64());
    tensors.push({ name, dims, type: u32(), offset: u64() });
  }
  const align = (kv.get("general.alignment") as number | undefined) ?? 32;
  const dataStart = Math.ceil(p / align) * align;
  expect(Array.from(bytes.subarray(p, dataStart)).every((b) => b === 0)).toBe(true);
  return { version, kv, tensors, dataStart, bytes };
}

function tensorBytes(f: ReadFile, name: string): Uint8Array {
  const t = f.tensors.find((x) => x.name === name);
  if (!t) throw new Error(`no tensor ${name}`);
  const n = t.dims.reduce((a, b) => a * b, 1);
  const size = t.type === 0 ? 4 * n : t.type === 1 ? 2 * n : (n / 32) * 18;
  const start = f.dataStart + t.offset;
  return f.bytes.subarray(start, start + size);
}

async function* once(b: Uint8Array): AsyncIterable<Uint8Array> {
  yield b;
}

describe("GGUF files", () => {
  it("round-trips metadata of every kind and tensors through an independent reader", async () => {
    const norm = Float32Array.from({ length: 7 }, (_, i) => i - 3.25);
    const r = rng(7);
    const w = Float32Array.from({ length: 64 * 3 }, () => gauss(r));
    const metadata: Array<[string, GgufValue]> = [
      ["general.architecture", str("llama")],
      ["general.alignment", u32(64)],
      ["some.float", f32(1e-5)],
      ["some.bool", bool(true)],
      ["some.int", { type: "i32", value: -5 }],
      ["some.big", u64(2 ** 40 + 3)],
      ["some.text", str("héllo ▁ world")],
      ["some.strings", strings(["a", "", "<0x0A>", "ü"])],
      ["some.floats", f32s([0.5, -2])],
      ["some.ints", i32s([1, -1, 6])],
    ];
    const tensors: GgufTensor[] = [
      { name: "a_norm", dims: [7], type: "F32", data: () => once(new Uint8Array(norm.buffer)) },
      { name: "w", dims: [64, 3], type: "Q4_0", data: () => once(quantizeQ4_0(w)) },
      { name: "b_norm", dims: [7], type: "F32", data: () => once(new Uint8Array(norm.buffer)) },
    ];
    const path = join(tmp, "roundtrip.gguf");
    const layout = await writeGguf(path, metadata, tensors);
    const bytes = new Uint8Array(readFileSync(path));
    expect(bytes.length).toBe(layout.fileSize);
    expect(bytes.length % 64).toBe(0);
    const f = readGguf(bytes);
    expect(f.version).toBe(3);
    expect(f.dataStart).toBe(layout.header.length);
    expect(f.kv.get("general.architecture")).toBe("llama");
    expect(f.kv.get("some.float")).toBe(Math.fround(1e-5));
    expect(f.kv.get("some.bool")).toBe(true);
    expect(f.kv.get("some.int")).toBe(-5);
    expect(f.kv.get("some.big")).toBe(2 ** 40 + 3);
    expect(f.kv.get("some.text")).toBe("héllo ▁ world");
    expect(f.kv.get("some.strings")).toEqual(["a", "", "<0x0A>", "ü"]);
    expect(f.kv.get("some.floats")).toEqual([0.5, -2]);
    expect(f.kv.get("some.ints")).toEqual([1, -1, 6]);
    expect(f.tensors.map((t) => [t.name, t.dims, t.type])).toEqual([
      ["a_norm", [7], 0],
      ["w", [64, 3], 2],
      ["b_norm", [7], 0],
    ]);
    for (const t of f.tensors) expect(t.offset % 64).toBe(0);
    expect(new Float32Array(tensorBytes(f, "b_norm").slice().buffer)).toEqual(norm);
    expect(tensorBytes(f, "w")).toEqual(quantizeQ4_0(w));
    // the padding between tensors is zeros
    const aEnd = f.dataStart + 28;
    expect(Array.from(bytes.subarray(aEnd, f.dataStart + f.tensors[1].offset)).every((b) => b === 0)).toBe(true);
  });

  it("rejects tensor data of the wrong length and leaves no file behind", async () => {
    const path = join(tmp, "short.gguf");
    const t: GgufTensor = { name: "x", dims: [32, 2], type: "Q4_0", data: () => once(new Uint8Array(18)) };
    await expect(writeGguf(path, [], [t])).rejects.toThrow(/got 18 bytes of data, its type and dims imply 36/);
    const long: GgufTensor = { ...t, data: () => once(new Uint8Array(40)) };
    await expect(writeGguf(path, [], [long])).rejects.toThrow(/longer than the 36 bytes/);
    expect(readdirSync(tmp).filter((n) => n.startsWith("short"))).toEqual([]);
    expect(() => encodeGgufHeader([], [{ name: "q", dims: [30], type: "Q4_0" }])).toThrow(GgufError);
    expect(() => encodeGgufHeader([["k", u32(1)], ["k", u32(2)]], [])).toThrow(/twice/);
  });

  it("converts the bundled checkpoint into a llama-architecture GGUF", async () => {
    const dir = "models/shakespeare-tiny";
    const config = loadConfig(dir);
    const ckpt = await openCheckpoint(dir);
    try {
      const names = resolveTensorNames(config, ckpt);
      const { metadata, tensors } = llamaGguf({ ckpt, config, names, name: "shakespeare-tiny", rowsPerRead: 100 });
      const path = join(tmp, "tiny.gguf");
      await writeGguf(path, metadata, tensors);
      const f = readGguf(new Uint8Array(readFileSync(path)));

      expect(f.kv.get("general.architecture")).toBe("llama");
      expect(f.kv.get("llama.block_count")).toBe(6);
      expect(f.kv.get("llama.embedding_length")).toBe(320);
      expect(f.kv.get("llama.feed_forward_length")).toBe(768);
      expect(f.kv.get("llama.attention.head_count")).toBe(5);
      expect(f.kv.get("llama.attention.head_count_kv")).toBe(1);
      expect(f.kv.get("llama.rope.dimension_count")).toBe(64);
      expect(f.kv.get("llama.rope.freq_base")).toBe(10000);
      expect(f.kv.get("llama.attention.layer_norm_rms_epsilon")).toBe(Math.fround(1e-5));
      const tokens = f.kv.get("tokenizer.ggml.tokens") as string[];
      expect(tokens.length).toBe(1024);
      expect(new Set(tokens).size).toBe(1024);
      expect(tokens[11]).toBe("<0x0A>");
      expect(tokens[1000]).toBe("<|begin_of_text|>");
      expect(f.kv.get("tokenizer.ggml.bos_token_id")).toBe(1000);
      expect((f.kv.get("tokenizer.ggml.token_type") as number[]).length).toBe(1024);

      // 1 embedding + 9 per layer + final norm; tied, so no output.weight
      expect(f.tensors.length).toBe(2 + 9 * 6);
      expect(f.tensors.find((t) => t.name === "output.weight")).toBeUndefined();
      const byName = new Map(f.tensors.map((t) => [t.name, t]));
      expect(byName.get("token_embd.weight")).toMatchObject({ dims: [320, 1024], type: 2 });
      expect(byName.get("blk.5.attn_q.weight")).toMatchObject({ dims: [320, 320], type: 2 });
      expect(byName.get("blk.5.attn_k.weight")).toMatchObject({ dims: [320, 64], type: 2 });
      expect(byName.get("blk.0.ffn_down.weight")).toMatchObject({ dims: [768, 320], type: 2 });
      expect(byName.get("blk.0.ffn_gate.weight")).toMatchObject({ dims: [320, 768], type: 2 });
      expect(byName.get("output_norm.weight")).toMatchObject({ dims: [320], type: 0 });

      // Rows are written as the checkpoint holds them (no RoPE permutation), each within a Q4_0 step.
      const wk = await ckpt.readF32(names.layers[2].wk);
      const { values, d } = dequantQ4_0(tensorBytes(f, "blk.2.attn_k.weight"), wk.length);
      for (let i = 0; i < wk.length; i++) expect(Math.abs(values[i] - wk[i])).toBeLessThanOrEqual(Math.abs(d[i >> 5]) * 1.01 + 1e-12);
      const norm = await ckpt.readF32(names.layers[3].ffnNorm);
      expect(new Float32Array(tensorBytes(f, "blk.3.ffn_norm.weight").slice().buffer)).toEqual(norm);
    } finally {
      await ckpt.close();
    }
  });
});
