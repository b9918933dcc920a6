// The whole engine on every ggml type a llama.cpp file can hold, against the float32 reference reading the
// same file (which decodes each tensor to the values llama.cpp dequantizes it to: ggml-dequantize.test.ts).
// The files are a random 2-layer checkpoint in AMD-Llama-135m's published shape (hidden 768 and FFN 2048:
// whole 256-value super-blocks) written as llama.cpp's converter writes it, every matrix then stored in one
// type; and a Q4_K_M-like mix whose stacked products (q|k|v, gate|up) hold tensors of different layouts.
// The engine computes with the file's values times int8 activations per block of 32 and an int8 KV cache,
// so its logits are held to the reference within the error those add, not bit for bit.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadModel, type Model } from "../../src/api.js";
import { memorySource } from "../../src/env/byte-source.js";
import { f32ToF16Bits } from "../../src/kernels/dtype.js";
import { GGML_BLOCKS, type GgmlQuantType, type WeightEncoding } from "../../src/kernels/ggml-blocks.js";
import { GgufFile } from "../../src/model/checkpoint/gguf.js";
import { GgufWeights } from "../../src/model/checkpoint/gguf-weights.js";
import { dequantizeGgml } from "../../src/model/checkpoint/ggml-dequantize.js";
import type { GgufTensorToWrite } from "../../src/model/checkpoint/gguf-writer.js";
import { resolveTensorNames } from "../../src/model/tensor-names.js";
import { loadConfig } from "../../src/node/bundled.js";
import { openCheckpoint } from "../../src/node/folder.js";
import { writeGgufFile } from "../../src/node/gguf-files.js";
import type { WasmEngine } from "../../src/model/engine.js";
import { run as info } from "../../src/cli/commands/info.js";
import { llamaGguf } from "../../bench/llama-gguf.js";
import { rewriteGguf } from "../checkpoint/gguf-helpers.js";
import { argmax, cosine } from "../helpers/compare.js";
import { encodeGgml } from "../helpers/ggml-encode.js";
import { writeLlamaFolder } from "../helpers/llama-folder.js";
import { gauss, rng } from "../helpers/rng.js";

const made: string[] = [];
afterAll(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), "ggml-types-"));
  made.push(d);
  return d;
};

const TOKENS = [1000, 17, 402, 999, 3, 511, 77, 1023, 250, 640, 5, 900];

/** The base file: every matrix F32, as llama.cpp's converter writes an unquantized model. */
let base: Uint8Array;
/** Each 2-D tensor's f32 values, by GGUF name. */
const values = new Map<string, Float32Array>();

beforeAll(async () => {
  const folder = await writeLlamaFolder("AMD-Llama-135m", 2, 1024, 11);
  made.push(folder.dir);
  const config = loadConfig(folder.dir);
  const ckpt = await openCheckpoint(folder.dir);
  const path = join(tmp(), "f32.gguf");
  try {
    const { metadata, tensors } = llamaGguf({ ckpt, config, names: resolveTensorNames(config, ckpt), name: "test", matrices: "F32" });
    await writeGgufFile(path, metadata, tensors);
  } finally {
    await ckpt.close();
  }
  base = new Uint8Array(readFileSync(path));
  const file = await GgufFile.open(memorySource("f32.gguf", base));
  const weights = new GgufWeights(file, "file");
  for (const t of file.tensors) if (t.shape.length === 2) values.set(t.name, await weights.readF32(t.name));
  await file.close();
}, 120_000);

function once(b: Uint8Array): GgufTensorToWrite["data"] {
  return async function* () {
    yield b;
  };
}

/** The f32 values stored as `type`. */
function encode(type: WeightEncoding, v: Float32Array): Uint8Array {
  if (type === "F32") return new Uint8Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength));
  if (type === "F16" || type === "BF16") {
    const out = new Uint16Array(v.length);
    const bits = new Uint32Array(v.buffer, v.byteOffset, v.length);
    for (let i = 0; i < v.length; i++) out[i] = type === "F16" ? f32ToF16Bits(v[i]) : (bits[i] + 0x7fff + ((bits[i] >>> 16) & 1)) >>> 16;
    return new Uint8Array(out.buffer);
  }
  return encodeGgml(type, v);
}

/** The base file with each matrix stored as `typeOf(name)` (a name it returns null for stays F32). */
async function fileOf(typeOf: (name: string) => WeightEncoding | null): Promise<string> {
  const bytes = await rewriteGguf(base, {
    tensors: (ts) =>
      ts.forEach((t) => {
        const type = t.dims.length === 2 ? typeOf(t.name) : null;
        if (type !== null) Object.assign(t, { type, data: once(encode(type, values.get(t.name)!)) });
      }),
  });
  const path = join(tmp(), "model.gguf");
  writeFileSync(path, bytes);
  return path;
}

async function logits(path: string, backend: "wasm" | "reference", threads = 1): Promise<Float32Array[]> {
  const model: Model = await loadModel(path, { backend, threads, contextLength: 32 });
  try {
    return model.logits(TOKENS, true);
  } finally {
    await model.dispose();
  }
}

/** Each position's cosine and whether the two agree on the top token. */
function agreement(got: Float32Array[], want: Float32Array[]): { minCosine: number; top1: number } {
  let minCosine = 1;
  let same = 0;
  want.forEach((w, t) => {
    minCosine = Math.min(minCosine, cosine(got[t], w));
    if (argmax(got[t]) === argmax(w)) same++;
  });
  return { minCosine, top1: same / want.length };
}

/**
 * A Q4_K_M-like mix: q, k Q4_K and v Q6_K (one stacked q|k|v, two parts); gate Q4_K and up Q5_0; down Q6_K;
 * Q8_0 table, Q6_K output head.
 */
function mixFile(): Promise<string> {
  const mix: Record<string, WeightEncoding> = {
    attn_q: "Q4_K", attn_k: "Q4_K", attn_v: "Q6_K", attn_output: "Q4_K", ffn_gate: "Q4_K", ffn_up: "Q5_0", ffn_down: "Q6_K",
  };
  return fileOf((name) => (name === "token_embd.weight" ? "Q8_0" : name === "output.weight" ? "Q6_K" : mix[name.split(".")[2]] ?? null));
}

const TYPES: WeightEncoding[] = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q4_K", "Q5_K", "Q6_K", "F16", "BF16", "F32"];

describe("the test encoder", () => {
  it.each(Object.keys(GGML_BLOCKS) as GgmlQuantType[])("%s blocks decode to the values they encode, within the type's step", (type) => {
    const r = rng(3);
    const x = Float32Array.from({ length: 4096 }, () => gauss(r) * 0.05);
    const y = new Float32Array(x.length);
    dequantizeGgml(type, encodeGgml(type, x), y);
    let err = 0;
    let norm = 0;
    for (let i = 0; i < x.length; i++) {
      err += (x[i] - y[i]) ** 2;
      norm += x[i] ** 2;
    }
    // 4-bit types sit near 10% relative RMS error on Gaussian blocks, 5-bit near 5%, 6- and 8-bit below 3%.
    const bits = { Q4_0: 4, Q4_1: 4, Q4_K: 4, Q5_0: 5, Q5_1: 5, Q5_K: 5, Q6_K: 6, Q8_0: 8 }[type];
    expect(Math.sqrt(err / norm)).toBeLessThan(2 ** (2.4 - bits / 1.2));
  });
});

describe("the engine on every ggml type, against the float32 reference on the same file", () => {
  it.each(TYPES)("%s matrices (the embedding and head too): cosine >= 0.999 at every position, the same top-1 at 11 of 12", async (type) => {
    const path = await fileOf(() => type);
    const [got, want] = [await logits(path, "wasm"), await logits(path, "reference")];
    const a = agreement(got, want);
    expect(a.minCosine).toBeGreaterThan(0.999);
    expect(a.top1).toBeGreaterThanOrEqual(11 / 12);
  }, 120_000);

  it("a Q4_K_M-like mix: stacked products of tensors in different layouts, 1 and 2 threads bit for bit, prefill = decode", async () => {
    const path = await mixFile();
    const [one, two, want] = [await logits(path, "wasm", 1), await logits(path, "wasm", 2), await logits(path, "reference")];
    const a = agreement(one, want);
    expect(a.minCosine).toBeGreaterThan(0.999);
    expect(a.top1).toBeGreaterThanOrEqual(11 / 12);
    expect(two.map((r) => Array.from(r))).toEqual(one.map((r) => Array.from(r)));
    const model = await loadModel(path, { backend: "wasm", threads: 1, contextLength: 32 });
    try {
      const engine = model.backend as WasmEngine;
      const stepped = TOKENS.map((t, p) => engine.forward([t], p, false)[0]);
      expect(stepped.map((r) => Array.from(r))).toEqual(one.map((r) => Array.from(r)));
    } finally {
      await model.dispose();
    }
    const lines: string[] = [];
    await info(["--model", path], (s) => lines.push(s));
    const text = lines.join("\n");
    expect(text).toMatch(/tensors +Q8_0 1 tensor, .*; F32 5 tensors, .*; Q4_K 8 tensors, .*; Q6_K 5 tensors, .*; Q5_0 2 tensors, /);
    expect(text).toMatch(/computed +with the values the file holds/);
  }, 180_000);
});

/**
 * Bytes a cell of 4 rows x 32 columns takes in the layout holding each type, from the layout table of
 * src/kernels/layout.ts: values (nibbles 64, int8 128, f32 512, f16 and bf16 256) + scales (an f16 per row
 * 8, an f32 per row 16, q6_k's two f32 per row 32) + mins (like the scales). Q4_0, Q4_1 and Q8_0 take their
 * 32-value blocks' bytes (18, 20, 34 per row); Q5_0 widens to Q8_0's, Q5_1 to int8 values, the K types to
 * int8 values and f32 scales and mins.
 */
const CELL_BYTES: Record<WeightEncoding, number> = {
  Q4_0: 4 * 18, Q4_1: 4 * 20, Q8_0: 4 * 34, Q5_0: 4 * 34, Q5_1: 128 + 8 + 8,
  Q4_K: 64 + 16 + 16, Q5_K: 128 + 16 + 16, Q6_K: 128 + 32, F32: 512, F16: 256, BF16: 256,
};
/** q4_0 also keeps one f32 row sum per row: 16 B per 4-row block. */
const Q4_0_ROW_SUMS = 16;

describe("info on a llama.cpp file: the weight bytes the engine allocates, each matrix in its type's layout", () => {
  it("the engine line and --json's engineWeights are the sum of the layouts' cells and the f32 norms; the engine's arena holds that plus alignment", async () => {
    const path = await mixFile();
    const file = await GgufFile.open(memorySource("mix.gguf", new Uint8Array(readFileSync(path))));
    let want = 0;
    const byType = new Map<string, number>();
    let matrices = 0;
    for (const t of file.tensors) {
      const elements = t.shape.reduce((a, b) => a * b, 1);
      if (t.shape.length === 1) {
        want += elements * 4;
        continue;
      }
      matrices++;
      // Every matrix here has rows a multiple of 4 and columns a multiple of 32: elements / 128 cells.
      const b = (elements / 128) * CELL_BYTES[t.type as WeightEncoding] + (t.type === "Q4_0" ? (t.shape[0] / 4) * Q4_0_ROW_SUMS : 0);
      byType.set(t.type, (byType.get(t.type) ?? 0) + b);
      want += b;
    }
    await file.close();
    expect(byType.get("Q8_0")).toBeGreaterThan(0);

    const lines: string[] = [];
    await info(["--model", path], (s) => lines.push(s));
    const text = lines.join("\n");
    expect(text).toContain(`engine       ${want.toLocaleString("en-US")} B (`);
    for (const [layout, b] of [["q8_0", byType.get("Q8_0")!], ["q5_0", byType.get("Q5_0")!], ["q4_k", byType.get("Q4_K")!], ["q6_k", byType.get("Q6_K")!]] as const) {
      expect(text).toMatch(new RegExp(`[(; ]${layout} \\d+ matri(x|ces) ${b.toLocaleString("en-US")}[;)]`));
    }
    // The int4 recipe's lines are not this file's.
    expect(text).not.toMatch(/^int4 /m);
    expect(text.match(/^engine /gm)).toHaveLength(1);

    const json: string[] = [];
    await info(["--model", path, "--json"], (s) => json.push(s));
    const memory = JSON.parse(json[0]).memory;
    expect(memory.engineWeights.total).toBe(want);
    expect(memory.int4Weights).toBeUndefined();

    const model = await loadModel(path, { backend: "wasm", threads: 1, contextLength: 32 });
    try {
      const allocated = (model.backend as WasmEngine).weightBytes;
      // The arena aligns each region (up to 3 per matrix) and each norm to 64 bytes.
      expect(allocated).toBeGreaterThanOrEqual(want);
      expect(allocated - want).toBeLessThan(64 * (3 * matrices + (file.tensors.length - matrices)));
    } finally {
      await model.dispose();
    }
  }, 120_000);
});

/** `bytes` with tensor `name`'s two dims in the header replaced (its info: the name, u32 dim count, u64 dims). */
function withDims(bytes: Uint8Array, name: string, dims: [number, number]): Uint8Array {
  const out = bytes.slice();
  const key = new TextEncoder().encode(name);
  const view = new DataView(out.buffer);
  for (let i = 8; i + key.length + 12 < out.length; i++) {
    if (view.getUint32(i - 8, true) !== key.length || !key.every((b, j) => out[i + j] === b)) continue;
    const at = i + key.length;
    if (view.getUint32(at, true) !== 2) continue;
    view.setBigUint64(at + 4, BigInt(dims[0]), true);
    view.setBigUint64(at + 12, BigInt(dims[1]), true);
    return out;
  }
  throw new Error(`tensor ${name} not found in the header`);
}

describe("hostile files of these types are refused with one line naming the file and tensor, quickly", () => {
  /** The first line of what loading `bytes` throws (or "ok"), and how long it took. */
  async function outcome(bytes: Uint8Array): Promise<{ message: string; ms: number }> {
    const path = join(tmp(), "bad.gguf");
    writeFileSync(path, bytes);
    const t0 = performance.now();
    try {
      const model = await loadModel(path, { backend: "wasm", threads: 1, contextLength: 32 });
      await model.dispose();
      return { message: "ok", ms: performance.now() - t0 };
    } catch (err) {
      const message = (err as Error).message;
      expect(message).not.toContain("\n");
      return { message, ms: performance.now() - t0 };
    }
  }
  const edit = async (f: (ts: GgufTensorToWrite[]) => void) =>
    outcome(await rewriteGguf(base, { tensors: (ts) => f(ts) }));
  const as = (name: string, type: WeightEncoding) => (ts: GgufTensorToWrite[]) => {
    const t = ts.find((x) => x.name === name)!;
    Object.assign(t, { type, data: once(encode(type, values.get(name)!)) });
    return t;
  };

  it("a row that is not whole blocks of its type (the shape lies about the row)", async () => {
    // 768 x 768 Q4_K values declared 760 x 776 in the header (the writer refuses to write it): the same
    // bytes, rows of 760 values, which no Q4_K block count makes.
    const good = await rewriteGguf(base, { tensors: (ts) => void as("blk.0.attn_q.weight", "Q4_K")(ts) });
    const r = await outcome(withDims(good, "blk.0.attn_q.weight", [760, 776]));
    expect(r.message).toMatch(/blk\.0\.attn_q\.weight.*row length 760 is not a multiple of the Q4_K block size 256/);
    expect(r.ms).toBeLessThan(5000);
  });

  it("super-blocks cut short at the end of the file", async () => {
    const whole = await rewriteGguf(base, { tensors: (ts) => void as("output.weight", "Q6_K")(ts) });
    const file = await GgufFile.open(memorySource("whole.gguf", whole));
    const last = file.tensors.reduce((a, b) => (a.offset > b.offset ? a : b));
    await file.close();
    const r = await outcome(whole.subarray(0, last.offset + Math.floor(last.bytes / 2) + 7));
    expect(r.message).toMatch(new RegExp(`${last.name.replace(/\./g, "\\.")}.*(beyond|past|outside|exceed|end of)`));
    expect(r.ms).toBeLessThan(5000);
  });

  it("a matrix whose dims are swapped (the same bytes, the wrong shape)", async () => {
    const r = await edit((ts) => {
      const t = as("blk.1.ffn_gate.weight", "Q8_0")(ts);
      Object.assign(t, { dims: [...t.dims].reverse() });
    });
    expect(r.message).toMatch(/bad\.gguf: tensor blk\.1\.ffn_gate\.weight has shape \[768, 2048\] but the file's keys imply \[2048, 768\]$/);
  });

  it.each([
    ["Q4_1", 0, "d"],
    ["Q4_1", 2, "m"],
    ["Q5_0", 0, "d"],
    ["Q8_0", 0, "d"],
    ["Q4_K", 2, "dmin"],
    ["Q5_K", 0, "d"],
    ["Q6_K", 208, "d"],
  ] as const)("%s with an infinite f16 at byte %i of a block: refused naming the tensor, row, block and field", async (type, at, field) => {
    const { bytes: size, values: per } = GGML_BLOCKS[type];
    const r = await edit((ts) => {
      const t = ts.find((x) => x.name === "blk.1.ffn_down.weight")!;
      const data = encode(type, values.get(t.name)!);
      // Row 5 (of 768 rows of 2048 values), its third block.
      const o = (5 * (2048 / per) + 2) * size + at;
      data[o] = 0x00;
      data[o + 1] = 0x7c;
      Object.assign(t, { type, data: once(data) });
    });
    expect(r.message).toMatch(new RegExp(`bad\\.gguf: tensor blk\\.1\\.ffn_down\\.weight: row 5, block 2: the ${type} ${field} is Infinity`));
    expect(r.ms).toBeLessThan(5000);
  });

  it.each(["F16", "BF16", "F32"] as const)("%s with a NaN element: refused naming the tensor, row and column", async (type) => {
    const r = await edit((ts) => {
      const t = ts.find((x) => x.name === "blk.0.attn_v.weight")!;
      const v = values.get(t.name)!.slice();
      v[3 * 768 + 100] = NaN;
      Object.assign(t, { type, data: once(encode(type, v)) });
    });
    expect(r.message).toMatch(/bad\.gguf: tensor blk\.0\.attn_v\.weight: row 3 contains NaN\/Inf at column 100/);
  });
});
