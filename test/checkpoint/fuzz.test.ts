import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { CheckpointError } from "../../src/env/byte-source.js";
import { parseSafetensors, readRowsF32, readTensorF32 } from "../../src/model/checkpoint/safetensors.js";
import { f32Bytes, rawSafetensors, source } from "./helpers.js";

/** A small valid file touching every dtype, a 2-D tensor, an empty tensor and metadata. */
function validFile(): Uint8Array {
  const data = new Uint8Array(48);
  data.set(f32Bytes([1, 2, 3, 4, 5, 6]), 0); // m: F32 [2, 3]
  data.set(new Uint8Array([0x00, 0x3c, 0x00, 0xc0]), 24); // h: F16 [2] = 1, -2
  data.set(new Uint8Array([0x80, 0x3f, 0x00, 0x40, 0x40, 0x40, 0x80, 0x40]), 28); // b: BF16 [4]
  return rawSafetensors(
    {
      __metadata__: { format: "pt" },
      m: { dtype: "F32", shape: [2, 3], data_offsets: [0, 24] },
      h: { dtype: "F16", shape: [2], data_offsets: [24, 28] },
      b: { dtype: "BF16", shape: [2, 2], data_offsets: [28, 36] },
      e: { dtype: "F32", shape: [0, 4], data_offsets: [36, 36] },
    },
    data,
  );
}

/** Parses and reads everything; resolves to "ok" or the error's class name. */
async function exercise(bytes: Uint8Array): Promise<string> {
  try {
    const { tensors } = await parseSafetensors(source(bytes, "fuzz.safetensors"));
    for (const info of tensors.values()) {
      await readTensorF32(info);
      if (info.shape.length === 2) for await (const block of readRowsF32(info, 1)) void block;
    }
    return "ok";
  } catch (e) {
    if (e instanceof CheckpointError) return "CheckpointError";
    return `${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`;
  }
}

describe("fuzzing the reader", () => {
  const base = validFile();

  it("reads the unmutated file", async () => {
    expect(await exercise(base)).toBe("ok");
  });

  it("random byte mutations only ever raise CheckpointError", async () => {
    // Biased towards the length field and header, where the interesting failures live.
    const position = fc.oneof(fc.integer({ min: 0, max: 7 }), fc.integer({ min: 8, max: base.length - 49 }), fc.integer({ min: 0, max: base.length - 1 }));
    const edit = fc.oneof(
      fc.record({ kind: fc.constant("set" as const), at: position, byte: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ kind: fc.constant("digit" as const), at: position, byte: fc.integer({ min: 0x30, max: 0x39 }) }),
      fc.record({ kind: fc.constant("cut" as const), at: position, byte: fc.constant(0) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(edit, { minLength: 1, maxLength: 6 }), async (edits) => {
        let bytes = base.slice();
        for (const e of edits) {
          if (e.kind === "cut") bytes = bytes.slice(0, Math.min(e.at, bytes.length));
          else if (e.at < bytes.length) bytes[e.at] = e.byte;
        }
        const outcome = await exercise(bytes);
        return outcome === "ok" || outcome === "CheckpointError";
      }),
      { numRuns: 3000 },
    );
  });

  it("survives hostile but well-formed headers", async () => {
    const hostile = [
      { a: { dtype: "F32", shape: [2 ** 50, 0], data_offsets: [0, 0] } },
      { a: { dtype: "F32", shape: [0, 2 ** 50], data_offsets: [0, 0] } },
      { a: { dtype: "F32", shape: [2 ** 53, 2 ** 53], data_offsets: [0, 0] } },
      { a: { dtype: "F32", shape: [], data_offsets: [0, 4] } },
      { a: { dtype: "F32", shape: [1], data_offsets: [2 ** 60, 2 ** 60 + 4] } },
      { a: { dtype: null, shape: null, data_offsets: null } },
      { ["__proto__"]: { dtype: "F32", shape: [1], data_offsets: [0, 4] } },
    ];
    for (const h of hostile) {
      const outcome = await exercise(rawSafetensors(h, f32Bytes([1])));
      expect(["ok", "CheckpointError"]).toContain(outcome);
    }
    const deep = rawSafetensors(null, new Uint8Array(0), "[".repeat(200_000));
    expect(await exercise(deep)).toBe("CheckpointError");
  });
});
