// Malformed GGUF files, generated: byte mutations and cuts of valid files, headers built from hostile
// numbers (counts near 2^64, lengths past the end, unknown types, overflowing shapes, stray offsets), and
// this model's layout with keys dropped or retyped. Every case must end as "ok" or as one CheckpointError
// line, quickly; anything else (a RangeError from a huge allocation, a TypeError, a hang) fails the test.
import { beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import { CheckpointError } from "../../src/env/byte-source.js";
import { GgufFile, type GgufValue } from "../../src/model/checkpoint/gguf.js";
import { bool, bools, f32, i32s, str, strings, u32, u64, writeGgufTo, type GgufTensorToWrite } from "../../src/model/checkpoint/gguf-writer.js";
import { convertToGguf } from "../../src/session/convert.js";
import { readGgufModel } from "../../src/session/gguf-model.js";
import { nodeFolder } from "../../src/node/folder.js";
import { nodePlatform } from "../../src/node/platform.js";
import { BUNDLED } from "../helpers/model-folder.js";
import { RawGguf, ggufSource, memorySink, rewriteGguf } from "./gguf-helpers.js";

/** Slowest single case allowed: far above the few ms a case takes, far below a hang. */
const CASE_MS = 2000;

type Outcome = "ok" | "CheckpointError";

/** Opens, reads every tensor and (with `model`) reads the model layout; the outcome or the unexpected error. */
async function exercise(bytes: Uint8Array, model = false): Promise<Outcome | string> {
  const t0 = performance.now();
  try {
    const f = await GgufFile.open(ggufSource(bytes, "fuzz.gguf"));
    const out = new Uint8Array(Math.max(0, ...f.tensors.map((t) => t.bytes)));
    for (const t of f.tensors) await f.readTensorBytes(t, out);
    if (model) readGgufModel(f);
    return "ok";
  } catch (e) {
    if (e instanceof CheckpointError && !e.message.includes("\n") && e.message.length < 1000) return "CheckpointError";
    return `${(e as Error)?.constructor?.name}: ${(e as Error)?.message?.slice(0, 300)}`;
  } finally {
    const ms = performance.now() - t0;
    if (ms > CASE_MS) throw new Error(`a case took ${ms.toFixed(0)} ms`);
  }
}

async function* once(b: Uint8Array): AsyncIterable<Uint8Array> {
  yield b;
}

/** A small valid file with one key of most types and three tensors. */
async function smallFile(): Promise<Uint8Array> {
  const metadata: Array<[string, GgufValue]> = [
    ["general.architecture", str("fuzz")],
    ["general.alignment", u32(32)],
    ["a.f", f32(0.5)],
    ["a.b", bool(true)],
    ["a.big", u64(2n ** 40n)],
    ["a.strs", strings(["x", "yz", ""])],
    ["a.ints", i32s([1, -2])],
    ["a.flags", bools([true, false])],
  ];
  const tensors: GgufTensorToWrite[] = [
    { name: "m", dims: [32, 2], type: "Q4_0", data: () => once(new Uint8Array(36).fill(0x88)) },
    { name: "v", dims: [3], type: "F32", data: () => once(new Uint8Array(12)) },
    { name: "h", dims: [2, 2], type: "F16", data: () => once(new Uint8Array(8)) },
  ];
  const sink = memorySink();
  await writeGgufTo(sink, metadata, tensors);
  await sink.close();
  return sink.bytes();
}

/** Numbers that break naive size arithmetic, for any u32/u64 field. */
const EDGE_U64 = [0n, 1n, 2n, 3n, 4n, 5n, 8n, 9n, 12n, 13n, 31n, 32n, 33n, 64n, 255n, 2n ** 16n, 2n ** 31n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 61n, 2n ** 63n, 2n ** 64n - 32n, 2n ** 64n - 1n];

describe("fuzzing the GGUF reader", () => {
  let base: Uint8Array;
  beforeAll(async () => {
    base = await smallFile();
  });

  it("reads the unmutated file", async () => {
    expect(await exercise(base)).toBe("ok");
  });

  it("byte edits, u32/u64 overwrites and cuts anywhere only ever raise CheckpointError", async () => {
    const headerEnd = (await GgufFile.open(ggufSource(base))).dataOffset;
    const position = fc.oneof(fc.integer({ min: 0, max: 23 }), fc.integer({ min: 0, max: headerEnd - 1 }), fc.integer({ min: 0, max: base.length - 1 }));
    const edit = fc.oneof(
      fc.record({ kind: fc.constant("byte" as const), at: position, value: fc.integer({ min: 0, max: 255 }).map(BigInt) }),
      fc.record({ kind: fc.constant("u32" as const), at: position, value: fc.constantFrom(...EDGE_U64.map((v) => v & 0xffffffffn)) }),
      fc.record({ kind: fc.constant("u64" as const), at: position, value: fc.constantFrom(...EDGE_U64) }),
      fc.record({ kind: fc.constant("cut" as const), at: position, value: fc.constant(0n) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(edit, { minLength: 1, maxLength: 4 }), async (edits) => {
        let bytes = base.slice();
        for (const e of edits) {
          if (e.kind === "cut") {
            bytes = bytes.slice(0, Math.min(e.at, bytes.length));
            continue;
          }
          const width = e.kind === "byte" ? 1 : e.kind === "u32" ? 4 : 8;
          if (e.at + width > bytes.length) continue;
          const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
          if (width === 1) view.setUint8(e.at, Number(e.value));
          else if (width === 4) view.setUint32(e.at, Number(e.value), true);
          else view.setBigUint64(e.at, e.value, true);
        }
        const outcome = await exercise(bytes);
        expect(["ok", "CheckpointError"]).toContain(outcome);
      }),
      { numRuns: 3000 },
    );
  });

  it("headers built from hostile numbers only ever raise CheckpointError", async () => {
    const u64 = fc.oneof(fc.constantFrom(...EDGE_U64), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }));
    const key = fc.oneof(fc.constantFrom("general.alignment", "a", "general.architecture"), fc.string({ maxLength: 8 }));
    const kv = fc.record({
      key,
      keyLength: fc.option(u64, { freq: 4 }),
      type: fc.integer({ min: 0, max: 14 }),
      itemType: fc.integer({ min: 0, max: 14 }),
      count: fc.oneof(fc.integer({ min: 0, max: 4 }).map(BigInt), u64),
      scalar: u64,
    });
    const tensor = fc.record({
      name: fc.oneof(fc.constantFrom("t", "u"), fc.string({ maxLength: 70 })),
      dims: fc.array(fc.oneof(fc.integer({ min: 1, max: 64 }).map(BigInt), u64), { minLength: 0, maxLength: 6 }),
      type: fc.oneof(fc.constantFrom(0, 1, 2, 8, 12, 30), fc.integer({ min: 0, max: 40 })),
      offset: fc.oneof(fc.constantFrom(0n, 32n, 64n), u64),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(kv, { maxLength: 4 }),
        fc.array(tensor, { maxLength: 3 }),
        fc.option(u64, { freq: 3 }),
        fc.option(u64, { freq: 3 }),
        fc.integer({ min: 0, max: 300 }),
        async (kvs, tensors, kvCount, tensorCount, dataBytes) => {
          const r = new RawGguf().header(tensorCount ?? tensors.length, kvCount ?? kvs.length);
          for (const e of kvs) {
            r.str(e.key, e.keyLength ?? undefined).u32(e.type);
            if (e.type === 8) r.u64(e.count).zeros(Number(e.count < 16n ? e.count : 4n));
            else if (e.type === 9) {
              r.u32(e.itemType).u64(e.count);
              for (let i = 0; i < Math.min(Number(e.count < 8n ? e.count : 2n), 8); i++) r.u64(e.scalar);
            } else r.u64(e.scalar);
          }
          for (const t of tensors) r.tensor(t.name, t.dims, t.type, t.offset);
          const bytes = r.pad().zeros(dataBytes).build();
          expect(["ok", "CheckpointError"]).toContain(await exercise(bytes));
        },
      ),
      { numRuns: 3000 },
    );
  });
});

describe("fuzzing the model layout", () => {
  let model: Uint8Array;
  let dataOffset: number;
  let entries: Array<[string, GgufValue]>;
  beforeAll(async () => {
    const sink = memorySink();
    await convertToGguf(nodeFolder(BUNDLED), sink, nodePlatform, { name: "fuzz" });
    model = sink.bytes();
    const f = await GgufFile.open(ggufSource(model));
    dataOffset = f.dataOffset;
    entries = f.metadata.keys().map((k) => [k, f.metadata.get(k)!]);
  });

  it("reads the unmutated file", async () => {
    expect(await exercise(model, true)).toBe("ok");
  });

  it("a required key dropped or given another type or value is refused", async () => {
    const required = entries.map(([k]) => k).filter((k) => !k.startsWith("general.") || k === "general.architecture").filter((k) => !k.endsWith("_config_json") && k !== "tokenizer.ggml.eos_token_id");
    const replacement: fc.Arbitrary<GgufValue | null> = fc.oneof(
      fc.constant(null),
      fc.integer({ min: 0, max: 2 ** 32 - 1 }).map(u32),
      fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map(u64),
      fc.float({ noNaN: true }).map(f32),
      fc.boolean().map(bool),
      fc.string({ maxLength: 20 }).map(str),
      fc.array(fc.boolean(), { maxLength: 8 }).map(bools),
      fc.array(fc.string({ maxLength: 4 }), { maxLength: 3 }).map(strings),
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...required), replacement, async (key, v) => {
        const original = entries.find(([k]) => k === key)![1];
        if (v !== null && JSON.stringify(v, (_, x) => (typeof x === "bigint" ? String(x) : x instanceof Uint8Array ? [...x] : x)) === JSON.stringify(original, (_, x) => (typeof x === "bigint" ? String(x) : x instanceof Uint8Array ? [...x] : x))) return;
        const bytes = await rewriteGguf(model, {
          metadata: (e) => {
            const i = e.findIndex(([k]) => k === key);
            if (v === null) e.splice(i, 1);
            else e[i] = [key, v];
          },
        });
        expect(await exercise(bytes, true)).toBe("CheckpointError");
      }),
      { numRuns: 200 },
    );
  });

  it("byte edits of the header (keys, tokenizer, config, tensor infos) only ever raise CheckpointError", async () => {
    const edit = fc.record({ at: fc.integer({ min: 0, max: dataOffset - 1 }), value: fc.integer({ min: 0, max: 255 }) });
    await fc.assert(
      fc.asyncProperty(fc.array(edit, { minLength: 1, maxLength: 3 }), async (edits) => {
        const bytes = model.slice();
        for (const e of edits) bytes[e.at] = e.value;
        expect(["ok", "CheckpointError"]).toContain(await exercise(bytes, true));
      }),
      { numRuns: 300 },
    );
  });
});
