import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { CheckpointError } from "../../src/env/byte-source.js";
import { openFileSource } from "../../src/node/file-source.js";
import { parseSafetensors, readRowsF32, readTensorF32, type TensorInfo } from "../../src/model/checkpoint/safetensors.js";
import fc from "fast-check";
import { firstDuplicateKey } from "../../src/model/checkpoint/duplicate-keys.js";
import { counting, f32Bytes, rawSafetensors, source } from "./helpers.js";

const MODEL_DIR = fileURLToPath(new URL("../../models/shakespeare-tiny/", import.meta.url));

async function parseBytes(bytes: Uint8Array) {
  return parseSafetensors(source(bytes));
}

/** Rejects with a CheckpointError whose message matches every pattern. */
async function rejects(p: Promise<unknown>, ...patterns: RegExp[]): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CheckpointError);
  for (const re of patterns) expect((err as Error).message).toMatch(re);
}

describe("bundled shakespeare-tiny checkpoint", () => {
  it("parses every tensor with the shapes config.json implies, and reads them all finite", async () => {
    const config = JSON.parse(await readFile(`${MODEL_DIR}config.json`, "utf8")) as Record<string, number>;
    const h = config.hidden_size;
    const hd = config.head_dim;
    const kv = config.num_key_value_heads * hd;
    const ff = config.intermediate_size;
    const expected = new Map<string, number[]>([
      ["model.embed_tokens.weight", [config.vocab_size, h]],
      ["model.norm.weight", [h]],
    ]);
    for (let l = 0; l < config.num_hidden_layers; l++) {
      const p = `model.layers.${l}.`;
      expected.set(`${p}input_layernorm.weight`, [h]);
      expected.set(`${p}post_attention_layernorm.weight`, [h]);
      expected.set(`${p}self_attn.q_proj.weight`, [config.num_attention_heads * hd, h]);
      expected.set(`${p}self_attn.k_proj.weight`, [kv, h]);
      expected.set(`${p}self_attn.v_proj.weight`, [kv, h]);
      expected.set(`${p}self_attn.o_proj.weight`, [h, config.num_attention_heads * hd]);
      expected.set(`${p}feed_forward.gate_proj.weight`, [ff, h]);
      expected.set(`${p}feed_forward.up_proj.weight`, [ff, h]);
      expected.set(`${p}feed_forward.down_proj.weight`, [h, ff]);
    }

    const src = await openFileSource(`${MODEL_DIR}model.safetensors`);
    try {
      const { tensors } = await parseSafetensors(src);
      expect(new Map([...tensors].map(([n, t]) => [n, t.shape]))).toEqual(expected);
      expect(tensors.get("model.embed_tokens.weight")!.shape).toEqual([1024, 320]);
      for (const t of tensors.values()) {
        expect(t.dtype).toBe("BF16");
        const data = await readTensorF32(t);
        expect(data.length).toBe(t.shape.reduce((a, b) => a * b, 1));
      }
      // Spot-check decoding against the raw bytes: bf16 is the top half of an f32.
      const norm = tensors.get("model.norm.weight")!;
      const raw = await src.read(norm.begin, 4);
      const f = new Float32Array(await readTensorF32(norm));
      expect(f[0]).toBe(new Float32Array(new Uint32Array([(raw[0] | (raw[1] << 8)) << 16]).buffer)[0]);
    } finally {
      await src.close();
    }
  });
});

describe("readRowsF32", () => {
  it("concatenates to readTensorF32 and never reads more than one block", async () => {
    const src = counting(await openFileSource(`${MODEL_DIR}model.safetensors`));
    try {
      const { tensors } = await parseSafetensors(src);
      const info = tensors.get("model.layers.0.feed_forward.gate_proj.weight")!; // [768, 320] bf16
      const whole = await readTensorF32(info);
      for (const rowsPerBlock of [1, 7, 64, 768, 1000]) {
        src.reads.length = 0;
        const joined = new Float32Array(whole.length);
        let nextRow = 0;
        for await (const block of readRowsF32(info, rowsPerBlock)) {
          expect(block.row0).toBe(nextRow);
          expect(block.data.length).toBe(block.rows * 320);
          joined.set(block.data, block.row0 * 320);
          nextRow += block.rows;
        }
        expect(nextRow).toBe(768);
        // toEqual on 245k floats is slow; a first-mismatch scan says the same thing.
        expect(joined.findIndex((v, i) => !Object.is(v, whole[i]))).toBe(-1);
        const bound = rowsPerBlock * 320 * 2;
        expect(Math.max(...src.reads.map((r) => r.length))).toBeLessThanOrEqual(bound);
        expect(src.reads.reduce((a, r) => a + r.length, 0)).toBe(768 * 320 * 2);
      }
    } finally {
      await src.close();
    }
  });

  it("bounds readTensorF32's reads by maxReadBytes", async () => {
    const src = counting(await openFileSource(`${MODEL_DIR}model.safetensors`));
    try {
      const { tensors } = await parseSafetensors(src);
      src.reads.length = 0;
      const info = tensors.get("model.embed_tokens.weight")!;
      await readTensorF32(info, { maxReadBytes: 10_000 });
      expect(Math.max(...src.reads.map((r) => r.length))).toBeLessThanOrEqual(10_000);
    } finally {
      await src.close();
    }
  });

  it("stops cleanly when the consumer breaks early", async () => {
    const values = Array.from({ length: 40 }, (_, i) => i);
    const { tensors } = await parseBytes(rawSafetensors({ w: { dtype: "F32", shape: [10, 4], data_offsets: [0, 160] } }, f32Bytes(values)));
    for await (const block of readRowsF32(tensors.get("w")!, 3)) {
      expect(Array.from(block.data)).toEqual(values.slice(0, 12));
      break;
    }
  });

  it("refuses non-2-D tensors and bad block sizes", async () => {
    const { tensors } = await parseBytes(rawSafetensors({ v: { dtype: "F32", shape: [2], data_offsets: [0, 8] } }, f32Bytes([1, 2])));
    await rejects(readRowsF32(tensors.get("v")!, 1).next(), /tensor v: readRowsF32 needs a 2-D tensor/);
    const m: TensorInfo = { ...tensors.get("v")!, shape: [2, 1] };
    await rejects(readRowsF32(m, 0).next(), /rowsPerBlock 0/);
  });
});

describe("non-finite values", () => {
  const header = { w: { dtype: "F32", shape: [2, 3], data_offsets: [0, 24] } };
  it.each([
    ["NaN", NaN, 4],
    ["Inf", Infinity, 2],
    ["-Inf", -Infinity, 5],
  ])("rejects %s with the tensor name and index", async (_label, bad, at) => {
    const values = [1, 2, 3, 4, 5, 6];
    values[at] = bad;
    const { tensors } = await parseBytes(rawSafetensors(header, f32Bytes(values)));
    const info = tensors.get("w")!;
    await rejects(readTensorF32(info), new RegExp(`tensor w contains NaN/Inf at index ${at}`));
    const drain = async () => {
      for await (const block of readRowsF32(info, 1)) void block;
    };
    await rejects(drain(), new RegExp(`tensor w contains NaN/Inf at index ${at}`));
    const unchecked = await readTensorF32(info, { checkFinite: false });
    expect(unchecked[at]).toBe(bad);
  });
});

describe("header validation", () => {
  const ok = { a: { dtype: "F32", shape: [2], data_offsets: [0, 8] } };
  const data = f32Bytes([1, 2]);

  it("accepts a minimal file, metadata and gaps", async () => {
    const parsed = await parseBytes(
      rawSafetensors(
        { __metadata__: { format: "pt" }, a: { dtype: "F32", shape: [1], data_offsets: [4, 8] }, e: { dtype: "BF16", shape: [0, 3], data_offsets: [2, 2] } },
        data,
      ),
    );
    expect(parsed.metadata).toEqual({ format: "pt" });
    expect(Array.from(await readTensorF32(parsed.tensors.get("a")!))).toEqual([2]);
    expect((await readTensorF32(parsed.tensors.get("e")!)).length).toBe(0);
  });

  it("rejects a file shorter than 8 bytes", async () => {
    await rejects(parseBytes(new Uint8Array(5)), /test\.safetensors: file is 5 bytes, shorter than the 8-byte header length/);
  });

  it("rejects a truncated file", async () => {
    const full = rawSafetensors(ok, data);
    await rejects(parseBytes(full.subarray(0, 20)), /header length \d+ is larger than the rest of the file/);
    await rejects(parseBytes(full.subarray(0, full.length - 1)), /tensor a: data_offsets end 8 is beyond the data section \(7 bytes\)/);
  });

  it("rejects a header length larger than the file, or absurdly large", async () => {
    const bytes = rawSafetensors(ok, data);
    new DataView(bytes.buffer).setBigUint64(0, 1n << 62n, true);
    await rejects(parseBytes(bytes), /header length 4611686018427387904 is larger than the rest of the file/);
    const big = { name: "big.safetensors", size: 300 * 1024 * 1024, read: async () => {
      const b = new Uint8Array(8);
      new DataView(b.buffer).setBigUint64(0, 200n * 1024n * 1024n, true);
      return b;
    }, close: async () => undefined };
    await rejects(parseSafetensors(big), /big\.safetensors: header length 209715200 exceeds the 104857600-byte cap/);
  });

  it("rejects a tensor or an entry field given twice (JSON.parse would keep the last copy)", async () => {
    const entry = '{"dtype":"F32","shape":[2],"data_offsets":[0,8]}';
    await rejects(parseBytes(rawSafetensors(null, data, `{"a":${entry},"a":${entry}}`)), /^test\.safetensors: tensor a is defined twice in the header$/);
    // Escapes spell the same key: "\u0061" is "a".
    await rejects(parseBytes(rawSafetensors(null, data, `{"a":${entry},"\\u0061":${entry}}`)), /tensor a is defined twice/);
    await rejects(
      parseBytes(rawSafetensors(null, data, '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"data_offsets":[0,4]}}')),
      /^test\.safetensors: header entry a gives data_offsets twice$/,
    );
    // Keys inside strings and arrays, and the same key in different objects, are not duplicates.
    const fine = `{"__metadata__":{"a":"\\"a\\":","b":"x"},"a":${entry},"b":{"dtype":"F32","shape":[0],"data_offsets":[8,8]}}`;
    expect([...(await parseBytes(rawSafetensors(null, data, fine))).tensors.keys()]).toEqual(["a", "b"]);
  });

  it("finds duplicate keys in one pass: a 10 MB header within twice JSON.parse's time", () => {
    const n = 150_000;
    const parts = Array.from({ length: n }, (_, i) => `"model.layers.${i}.w":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}`);
    const text = `{${parts.join(",")},"model.layers.7.w":{}}`;
    expect(text.length).toBeGreaterThan(10_000_000);
    let t0 = performance.now();
    JSON.parse(text);
    const parse = performance.now() - t0;
    t0 = performance.now();
    expect(firstDuplicateKey(text)).toEqual({ key: "model.layers.7.w", path: "" });
    expect(performance.now() - t0).toBeLessThan(2 * parse + 100);
  });

  it("agrees with a reference on random JSON: no duplicate in what JSON.stringify writes, one found where a key is repeated", () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.string(), (v, k) => {
        expect(firstDuplicateKey(JSON.stringify(v))).toBeNull();
        const doubled = `{${JSON.stringify(k)}:${JSON.stringify(v)},${JSON.stringify(k)}:1}`;
        expect(firstDuplicateKey(doubled)).toEqual({ key: k, path: "" });
      }),
      { numRuns: 300 },
    );
  });

  it("rejects headers that are not a UTF-8 JSON object", async () => {
    await rejects(parseBytes(rawSafetensors(null, data, '{"a": ')), /header is not valid JSON/);
    await rejects(parseBytes(rawSafetensors(null, data, "[1, 2]")), /header is not a JSON object/);
    const bad = rawSafetensors(null, data, '{"\u00e9": 1}');
    bad[10] = 0xff; // inside the key: invalid UTF-8
    await rejects(parseBytes(bad), /header is not valid UTF-8/);
  });

  it.each([
    [{ a: 1 }, /tensor a: entry is not an object/],
    [{ a: { shape: [2], data_offsets: [0, 8] } }, /tensor a: missing dtype/],
    [{ a: { dtype: "F32", data_offsets: [0, 8] } }, /tensor a: missing shape/],
    [{ a: { dtype: "F32", shape: [2] } }, /tensor a: missing data_offsets/],
    [{ a: { dtype: "I8", shape: [8], data_offsets: [0, 8] } }, /tensor a: unsupported dtype I8/],
    [{ a: { dtype: "F64", shape: [1], data_offsets: [0, 8] } }, /tensor a: unsupported dtype F64/],
    [{ a: { dtype: "F32", shape: [-2], data_offsets: [0, 8] } }, /tensor a: shape \[-2\] has an entry that is not a non-negative integer/],
    [{ a: { dtype: "F32", shape: [1.5], data_offsets: [0, 8] } }, /tensor a: shape \[1\.5\]/],
    [{ a: { dtype: "F32", shape: "2", data_offsets: [0, 8] } }, /tensor a: shape is not an array/],
    [{ a: { dtype: "F32", shape: [2], data_offsets: [0] } }, /tensor a: data_offsets \[0\] is not \[begin, end\]/],
    [{ a: { dtype: "F32", shape: [2], data_offsets: [8, 0] } }, /tensor a: data_offsets \[8, 0\] has begin > end/],
    [{ a: { dtype: "F32", shape: [2], data_offsets: [0, 16] } }, /tensor a: data_offsets end 16 is beyond the data section \(8 bytes\)/],
    [{ a: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }, /tensor a: byte length 8 does not match shape \[3\] x F32 \(12 bytes\)/],
    [{ a: { dtype: "BF16", shape: [2], data_offsets: [0, 8] } }, /tensor a: byte length 8 does not match shape \[2\] x BF16 \(4 bytes\)/],
    [{ a: { dtype: "F32", shape: [2 ** 40, 2 ** 20], data_offsets: [0, 8] } }, /tensor a: shape .* is too large/],
    [{ __metadata__: { n: 1 }, ...ok }, /__metadata__ value for n is not a string/],
    [{ __metadata__: [], ...ok }, /__metadata__ is not an object/],
    [
      { a: { dtype: "F32", shape: [1], data_offsets: [0, 4] }, b: { dtype: "F32", shape: [1], data_offsets: [2, 6] } },
      /tensor b \[2, 6\] overlaps tensor a \[0, 4\]/,
    ],
    [
      { a: { dtype: "F32", shape: [2], data_offsets: [0, 8] }, b: { dtype: "F32", shape: [1], data_offsets: [4, 8] } },
      /tensor b \[4, 8\] overlaps tensor a \[0, 8\]/,
    ],
  ])("rejects %j", async (header, message) => {
    await rejects(parseBytes(rawSafetensors(header, data)), /test\.safetensors/, message);
  });
});
