// KV state save/restore (src/model/kv-state.ts): a restored sequence continues bit for bit as the
// uninterrupted one, in another engine too; truncated, foreign-model, tampered and hostile files are refused
// with one line before anything is written, and the cache is left as it was.
import { describe, expect, it, beforeAll, afterAll } from "vitest";
import fc from "fast-check";
import { rmSync } from "node:fs";
import { loadModel, type Model } from "../../src/api.js";
import { CachedSequence } from "../../src/generate/sequence.js";
import { Checksum, KvStateError } from "../../src/model/kv-state.js";
import { kvCacheBytes } from "../../src/model/memory.js";
import { BUNDLED, modelVariant } from "../helpers/model-folder.js";

const noop = async () => {};

/** Deterministic token ids of the bundled vocabulary (ids 0..999 are text). */
function tokens(n: number, seed: number): number[] {
  let s = seed;
  return Array.from({ length: n }, () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 8) % 1000);
}

function sameBits(a: Float32Array, b: Float32Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/** Prefills `prompt` on a fresh sequence of `m`, then appends `next` one at a time; the logits of each step. */
async function run(m: Model, prompt: number[], next: number[], restore?: Uint8Array): Promise<{ logits: Float32Array[]; seq: CachedSequence }> {
  const seq = new CachedSequence(m.backend);
  const out: Float32Array[] = [];
  if (restore) seq.restore(restore);
  else out.push((await seq.prefill(prompt, noop)).logits);
  for (const t of next) out.push(seq.append(t));
  return { logits: out, seq };
}

describe("KV state save and restore", () => {
  let a: Model;
  let b: Model;
  // 150 tokens: past the bundled model's sliding window of 64, so the rings have wrapped.
  const prompt = tokens(150, 7);
  const next = tokens(40, 99);
  let state: Uint8Array;
  let uninterrupted: Float32Array[];

  beforeAll(async () => {
    a = await loadModel(BUNDLED, { contextLength: 256 });
    b = await loadModel(BUNDLED, { contextLength: 512 });
    const seq = new CachedSequence(a.backend);
    await seq.prefill(prompt, noop);
    state = seq.save();
    uninterrupted = (await run(a, prompt, next)).logits.slice(1);
  });
  afterAll(async () => {
    await a.dispose();
    await b.dispose();
  });

  it("a restored sequence continues bit-identically, in another engine with another context length", async () => {
    // Dirty b's cache first, so nothing of the continuation can come from what it held before.
    await run(b, tokens(300, 3), []);
    const restored = await run(b, prompt, next, state);
    expect(restored.seq.tokens.length).toBe(prompt.length + next.length);
    expect(restored.logits.length).toBe(next.length);
    restored.logits.forEach((l, i) => expect(sameBits(l, uninterrupted[i]), `step ${i}`).toBe(true));
  });

  it("a prompt extending the restored tokens prefills only its new tokens, and gives the cold run's logits", async () => {
    const seq = new CachedSequence(b.backend);
    seq.restore(state);
    const longer = [...prompt, ...next.slice(0, 10)];
    const warm = await seq.prefill(longer, noop);
    expect(warm.reused).toBe(prompt.length);
    expect(warm.prefilled).toBe(10);
    const cold = await new CachedSequence(a.backend).prefill(longer, noop);
    expect(sameBits(warm.logits, cold.logits)).toBe(true);
  });

  it("the file is the cached positions' KV bytes plus the tokens and a small header", () => {
    const c = a.config;
    // Global layers hold all 150 positions, sliding ones the last 64.
    let positions = 0;
    for (let l = 0; l < c.numLayers; l++) positions += c.layers[l].kind === "sliding_attention" ? 64 : 150;
    const kv = positions * 2 * c.numKvHeads * (c.headDim + 4);
    expect(state.length).toBeGreaterThan(kv + 4 * prompt.length);
    expect(state.length).toBeLessThan(kv + 4 * prompt.length + 1024);
    expect(kv).toBeLessThan(kvCacheBytes(c, 256).data + kvCacheBytes(c, 256).scales);
  });

  it("refuses truncated files, at every kind of cut", () => {
    for (const n of [0, 7, 12, 20, 100, state.length >> 1, state.length - 9, state.length - 1]) {
      expect(() => new CachedSequence(b.backend).restore(state.slice(0, n)), `cut at ${n}`).toThrow(KvStateError);
    }
    expect(() => new CachedSequence(b.backend).restore(state.slice(0, state.length - 1))).toThrow(/truncated/);
  });

  it("refuses a state of another model with the same shape, naming both fingerprints", async () => {
    // The bundled model with the last rows of one matrix scaled: same config, same shapes, other weights.
    const scaled = (data: Float32Array) => data.map((x, i) => (i >= data.length - 2048 ? x * 1.5 : x));
    const dir = await modelVariant({ tensor: (name, data, shape) => ({ name, shape, data: name.endsWith("layers.5.feed_forward.down_proj.weight") ? scaled(data) : data }) });
    const other = await loadModel(dir, { contextLength: 256 });
    try {
      expect(() => new CachedSequence(other.backend).restore(state)).toThrow(/saved by another model \(fingerprint [0-9a-f]{16}; this model's is [0-9a-f]{16}\)/);
    } finally {
      await other.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("refuses a state that does not fit the context, and a tampered byte anywhere", async () => {
    const small = await loadModel(BUNDLED, { contextLength: 100 });
    try {
      expect(() => new CachedSequence(small.backend).restore(state)).toThrow(/holds 150 tokens \(saved with context 256\) but this context holds 100/);
    } finally {
      await small.dispose();
    }
    const seq = new CachedSequence(b.backend);
    for (const at of [0, 9, 13, 40, state.length - 5000, state.length - 100, state.length - 3]) {
      const bad = state.slice();
      bad[at] ^= 0x10;
      expect(() => seq.restore(bad), `byte ${at}`).toThrow(KvStateError);
    }
  });

  it("refuses a NaN scale and an out-of-vocabulary token even under a valid checksum, leaving the cache as it was", async () => {
    const seq = new CachedSequence(b.backend);
    await seq.prefill(prompt.slice(0, 20), noop);
    const before = Buffer.from(b.backend.saveState!(0, seq.tokens));
    const resum = (bytes: Uint8Array) => {
      const c = new Checksum();
      c.update(bytes.subarray(0, bytes.length - 8));
      const [x, y] = c.digest();
      const v = new DataView(bytes.buffer);
      v.setUint32(bytes.length - 8, x, true);
      v.setUint32(bytes.length - 4, y, true);
      return bytes;
    };
    const headerEnd = 16 + Math.ceil(new DataView(state.buffer).getUint32(12, true) / 4) * 4;
    const badToken = state.slice();
    new DataView(badToken.buffer).setUint32(headerEnd + 4 * 3, 5000, true);
    expect(() => seq.restore(resum(badToken))).toThrow(/token 3 is 5000, outside the vocabulary/);
    // The first scale of layer 0's K head 0 follows its 150 x 64 int8 values.
    const badScale = state.slice();
    new DataView(badScale.buffer).setFloat32(headerEnd + 4 * 150 + 150 * 64, NaN, true);
    expect(() => seq.restore(resum(badScale))).toThrow(/layer 0 K head 0: a scale NaN/);
    expect(seq.tokens.length).toBe(20);
    expect(Buffer.from(b.backend.saveState!(0, seq.tokens)).equals(before)).toBe(true);
  });

  it("hostile bytes (random edits and cuts of a real state, random headers) are refused with one line, quickly", () => {
    const seq = new CachedSequence(b.backend);
    const magicAndVersion = state.slice(0, 12);
    fc.assert(
      fc.property(
        fc.oneof(
          fc.record({ kind: fc.constant("edit" as const), at: fc.nat(state.length - 1), xor: fc.integer({ min: 1, max: 255 }) }),
          fc.record({ kind: fc.constant("cut" as const), at: fc.nat(state.length - 1), xor: fc.constant(0) }),
          fc.record({ kind: fc.constant("header" as const), at: fc.nat(1 << 20), xor: fc.nat(255) }),
        ),
        ({ kind, at, xor }) => {
          let bytes: Uint8Array;
          if (kind === "edit") {
            bytes = state.slice();
            bytes[at] ^= xor;
          } else if (kind === "cut") {
            bytes = state.slice(0, at);
          } else {
            // A valid start, then a header length and garbage.
            bytes = new Uint8Array(64 + (xor << 4));
            bytes.set(magicAndVersion);
            new DataView(bytes.buffer).setUint32(12, at, true);
            bytes.fill(xor, 16);
          }
          const t0 = performance.now();
          let message = "";
          try {
            seq.restore(bytes);
          } catch (err) {
            expect(err).toBeInstanceOf(KvStateError);
            message = (err as Error).message;
          }
          expect(message).toMatch(/^not a usable KV state: [^\n]+$/);
          expect(performance.now() - t0).toBeLessThan(1000);
        },
      ),
      { numRuns: 150, seed: 26 },
    );
  });

  it("the reference backend says it cannot save its state", async () => {
    const ref = await loadModel(BUNDLED, { backend: "reference", contextLength: 32 });
    try {
      expect(() => ref.saveState()).toThrow(/the reference backend cannot save its KV state/);
    } finally {
      await ref.dispose();
    }
  });
});
