// A sequence's state as bytes: its tokens and the KV cache entries of those tokens, so a prompt prefilled
// once (a long system prompt, a conversation so far) can be saved to a file and restored in a later run or
// another process, and the continuation is bit-identical to the uninterrupted one (the cache bytes are
// copied as they are; nothing is recomputed or re-quantized).
//
// Layout (version 1, little-endian):
//
//   offset      bytes          what
//   0           8              magic "MLKVSTAT"
//   8           4              u32 format version (1)
//   12          4              u32 H, bytes of the header (at most MAX_HEADER_BYTES)
//   16          H              header, UTF-8 JSON (KvStateHeader), then zero padding to a multiple of 4
//   ..          4 * tokens     u32 token ids, position 0 first
//   ..                         per layer, K then V, per KV head: int8 [count][headDim] values, then
//                              f32 [count] scales (the cache's own layout, kernels/attention.ts), for the
//                              layer's `count` last positions (header.positions[layer])
//   end - 8     8              checksum of every byte before it (two 32-bit lanes, see Checksum)
//
// A global layer saves every position; a sliding layer its last min(tokens, sliding_window): what its ring
// holds, and what any later request that resumes inside the state (prefix reuse) may read.
//
// A state file is hostile until checked, as any downloaded file: restoreKvState checks the magic, the
// version, the header's bound and fields, the model it was made for (a fingerprint of the config and of
// sampled weight bytes: another model of the same shape is refused), that the tokens fit this context,
// the exact size, the checksum, the token ids and the scales, all before it writes a byte into the cache.
// Every check fails with one line naming what is wrong; the work is linear in the file's size, and the only
// allocation is the token list (bounded by the context length).
import type { KvCache } from "./kv-cache.js";
import type { WasmKernels } from "../kernels/wasm.js";
import { slotRanges } from "../kernels/kv-slots.js";

export const KV_STATE_MAGIC = "MLKVSTAT";
export const KV_STATE_VERSION = 1;
/** The JSON header is a few hundred bytes for any model; a larger one is not a state file of ours. */
export const MAX_HEADER_BYTES = 1 << 16;
const FORMAT = "mobilellm-kv-state";
const CHECKSUM_BYTES = 8;

export interface KvStateHeader {
  format: typeof FORMAT;
  /** The model fingerprint (modelFingerprint): the state is refused by any other model. */
  model: string;
  layers: number;
  kvHeads: number;
  headDim: number;
  vocabSize: number;
  /** The context length of the engine that saved it (a state restores into any context that holds its tokens). */
  contextLength: number;
  tokens: number;
  /** Positions saved per layer: the last `positions[l]` of the tokens. */
  positions: number[];
}

export class KvStateError extends RangeError {
  constructor(message: string) {
    super(`not a usable KV state: ${message}`);
    this.name = "KvStateError";
  }
}

/**
 * A 64-bit checksum over 32-bit words in two lanes (murmur3's word mix, even words in one lane and odd
 * words in the other): tens of MB in tens of milliseconds in plain JavaScript, in a browser as in Node. It
 * finds a truncated, corrupted or edited file; it is not a signature (whoever edits a file can recompute
 * it, and a restored state can only change what the model says, never reach outside the cache).
 */
export class Checksum {
  private h1 = 0x9747b28c;
  private h2 = 0x5bd1e995;
  private words = 0;

  /** Adds `bytes`, whose length is a multiple of 4 (every part of a state file is). */
  update(bytes: Uint8Array): void {
    if (bytes.length % 4 !== 0) throw new RangeError("Checksum.update: a length that is not a multiple of 4");
    const n = bytes.length >> 2;
    const w =
      bytes.byteOffset % 4 === 0 ? new Uint32Array(bytes.buffer, bytes.byteOffset, n) : new Uint32Array(bytes.slice().buffer, 0, n);
    let h1 = this.h1;
    let h2 = this.h2;
    let i = 0;
    // Keep the lanes aligned to the global word index.
    if (this.words % 2 === 1 && n > 0) h2 = mixLane(h2, w[i++]);
    for (; i + 1 < n; i += 2) {
      h1 = mixLane(h1, w[i]);
      h2 = mixLane(h2, w[i + 1]);
    }
    if (i < n) h1 = mixLane(h1, w[i]);
    this.h1 = h1;
    this.h2 = h2;
    this.words += n;
  }

  /** The two lanes, finalized with the length. */
  digest(): [number, number] {
    const len = this.words >>> 0;
    let a = fmix(this.h1 ^ len);
    let b = fmix(this.h2 ^ Math.floor(this.words / 2 ** 32));
    a = (a + b) >>> 0;
    b = (b + a) >>> 0;
    return [a, b];
  }
}

function mixLane(h: number, word: number): number {
  let k = Math.imul(word, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function hex(words: readonly number[]): string {
  return words.map((w) => (w >>> 0).toString(16).padStart(8, "0")).join("");
}

/**
 * The model's fingerprint: a checksum of its config and of sample bytes from its weights in Wasm memory
 * (`samples`: [address, bytes] regions, e.g. the start of every matrix), so two models of the same shape
 * but different weights (a fine-tune, another quantization) get different fingerprints.
 */
export function modelFingerprint(configJson: string, memory: Uint8Array, samples: readonly [number, number][]): string {
  const c = new Checksum();
  const text = new TextEncoder().encode(configJson);
  const padded = new Uint8Array(Math.ceil(text.length / 4) * 4);
  padded.set(text);
  c.update(padded);
  for (const [ptr, bytes] of samples) c.update(memory.subarray(ptr, ptr + (bytes & ~3)));
  return hex(c.digest());
}

/** Positions a layer saves for a sequence of `tokens` tokens. */
function savedPositions(cache: KvCache, layer: number, tokens: number): number {
  return cache.isSliding(layer) ? Math.min(tokens, cache.config.slidingWindow as number) : tokens;
}

/** Bytes of one layer's saved positions (K and V). */
function layerBytes(cache: KvCache, count: number): number {
  const c = cache.config;
  return 2 * c.numKvHeads * count * (c.headDim + 4);
}

/**
 * Visits every region of the cache a state holds, in file order: (layer, part, head, data or scales) for the
 * sequence's last `count` positions, each as at most two runs of slots (a ring range may wrap). `f` gets the
 * Wasm address and the byte count of each run.
 */
function forEachRegion(cache: KvCache, tokens: number, f: (ptr: number, bytes: number) => void): void {
  const { numKvHeads: heads, headDim } = cache.config;
  cache.layers.forEach((layer, l) => {
    const count = savedPositions(cache, l, tokens);
    const runs = slotRanges(layer.slots, tokens - count, tokens);
    for (const [data, scales] of [[layer.kData, layer.kScales], [layer.vData, layer.vScales]]) {
      for (let h = 0; h < heads; h++) {
        for (const r of runs) f(data + (h * layer.slots + r.slot0) * headDim, r.n * headDim);
        for (const r of runs) f(scales + (h * layer.slots + r.slot0) * 4, r.n * 4);
      }
    }
  });
}

/** The state of a sequence whose cache holds `tokens` (positions 0 .. tokens.length - 1) as bytes. */
export function saveKvState(k: WasmKernels, cache: KvCache, tokens: readonly number[], model: string): Uint8Array {
  const c = cache.config;
  const n = tokens.length;
  if (n > cache.contextLength) throw new RangeError(`${n} tokens do not fit the context of ${cache.contextLength}`);
  const header: KvStateHeader = {
    format: FORMAT,
    model,
    layers: c.numLayers,
    kvHeads: c.numKvHeads,
    headDim: c.headDim,
    vocabSize: c.vocabSize,
    contextLength: cache.contextLength,
    tokens: n,
    positions: cache.layers.map((_, l) => savedPositions(cache, l, n)),
  };
  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerEnd = 16 + Math.ceil(json.length / 4) * 4;
  const payload = header.positions.reduce((s, count) => s + layerBytes(cache, count), 0);
  const out = new Uint8Array(headerEnd + 4 * n + payload + CHECKSUM_BYTES);
  const view = new DataView(out.buffer);
  out.set(new TextEncoder().encode(KV_STATE_MAGIC), 0);
  view.setUint32(8, KV_STATE_VERSION, true);
  view.setUint32(12, json.length, true);
  out.set(json, 16);
  for (let i = 0; i < n; i++) view.setUint32(headerEnd + 4 * i, tokens[i], true);
  let at = headerEnd + 4 * n;
  const mem = k.u8;
  forEachRegion(cache, n, (ptr, bytes) => {
    out.set(mem.subarray(ptr, ptr + bytes), at);
    at += bytes;
  });
  const sum = new Checksum();
  sum.update(out.subarray(0, at));
  const [a, b] = sum.digest();
  view.setUint32(at, a, true);
  view.setUint32(at + 4, b, true);
  return out;
}

/** What a state file says, checked against the model and cache it is to be restored into. */
function readHeader(bytes: Uint8Array, cache: KvCache, model: string): { header: KvStateHeader; headerEnd: number } {
  if (!(bytes instanceof Uint8Array)) throw new KvStateError("expected bytes (a Uint8Array)");
  if (bytes.length < 16 + CHECKSUM_BYTES) throw new KvStateError(`${bytes.length} bytes is too short to be a state file`);
  const magic = new TextDecoder().decode(bytes.subarray(0, 8));
  if (magic !== KV_STATE_MAGIC) throw new KvStateError(`the file does not start with ${KV_STATE_MAGIC} (not a mobilellm KV state)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(8, true);
  if (version !== KV_STATE_VERSION) throw new KvStateError(`format version ${version}, this build reads version ${KV_STATE_VERSION}`);
  const h = view.getUint32(12, true);
  if (h > MAX_HEADER_BYTES) throw new KvStateError(`a header of ${h} bytes (at most ${MAX_HEADER_BYTES})`);
  const headerEnd = 16 + Math.ceil(h / 4) * 4;
  if (headerEnd + CHECKSUM_BYTES > bytes.length) throw new KvStateError(`truncated: the header runs past the end of the ${bytes.length} bytes`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(16, 16 + h)));
  } catch {
    throw new KvStateError("the header is not valid UTF-8 JSON");
  }
  const header = checkHeaderFields(parsed);
  const c = cache.config;
  if (header.model !== model) {
    throw new KvStateError(`it was saved by another model (fingerprint ${header.model}; this model's is ${model})`);
  }
  const shape = { layers: c.numLayers, kvHeads: c.numKvHeads, headDim: c.headDim, vocabSize: c.vocabSize };
  for (const [key, want] of Object.entries(shape)) {
    const got = header[key as keyof typeof shape];
    if (got !== want) throw new KvStateError(`${key} ${got} in the header, the model has ${want}`);
  }
  if (header.tokens > cache.contextLength) {
    throw new KvStateError(`it holds ${header.tokens} tokens (saved with context ${header.contextLength}) but this context holds ${cache.contextLength}`);
  }
  if (header.positions.length !== c.numLayers) throw new KvStateError(`positions for ${header.positions.length} layers, the model has ${c.numLayers}`);
  header.positions.forEach((count, l) => {
    const want = savedPositions(cache, l, header.tokens);
    if (count !== want) throw new KvStateError(`layer ${l} holds ${count} positions, ${want} expected for ${header.tokens} tokens`);
  });
  const payload = header.positions.reduce((s, count) => s + layerBytes(cache, count), 0);
  const size = headerEnd + 4 * header.tokens + payload + CHECKSUM_BYTES;
  if (bytes.length !== size) {
    throw new KvStateError(`${bytes.length} bytes where the header says ${size}${bytes.length < size ? " (truncated)" : ""}`);
  }
  return { header, headerEnd };
}

function checkHeaderFields(v: unknown): KvStateHeader {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new KvStateError("the header is not a JSON object");
  const o = v as Record<string, unknown>;
  if (o.format !== FORMAT) throw new KvStateError(`the header's format is ${JSON.stringify(o.format)}, not "${FORMAT}"`);
  if (typeof o.model !== "string" || o.model.length > 64) throw new KvStateError("the header's model fingerprint is missing or too long");
  const count = (key: string): number => {
    const x = o[key];
    if (typeof x !== "number" || !Number.isSafeInteger(x) || x < 0) throw new KvStateError(`the header's ${key} is not an integer >= 0`);
    return x;
  };
  const fields = {
    layers: count("layers"),
    kvHeads: count("kvHeads"),
    headDim: count("headDim"),
    vocabSize: count("vocabSize"),
    contextLength: count("contextLength"),
    tokens: count("tokens"),
  };
  if (!Array.isArray(o.positions) || o.positions.length > 4096 || !o.positions.every((x) => Number.isSafeInteger(x) && x >= 0)) {
    throw new KvStateError("the header's positions are not a list of integers >= 0");
  }
  return { format: FORMAT, model: o.model, ...fields, positions: o.positions as number[] };
}

/**
 * Checks a state file (see the top of this file) and loads it into `cache`; returns its tokens, whose
 * positions the cache then holds. Throws a KvStateError, leaving the cache untouched, when any check fails.
 */
export function restoreKvState(k: WasmKernels, cache: KvCache, bytes: Uint8Array, model: string): number[] {
  const { header, headerEnd } = readHeader(bytes, cache, model);
  const n = header.tokens;
  const end = bytes.length - CHECKSUM_BYTES;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const sum = new Checksum();
  // A copy when the caller's bytes are not 4-aligned (a slice of a larger buffer): the checksum reads words.
  sum.update(bytes.byteOffset % 4 === 0 ? bytes.subarray(0, end) : bytes.slice(0, end));
  const [a, b] = sum.digest();
  if (view.getUint32(end, true) !== a || view.getUint32(end + 4, true) !== b) throw new KvStateError("the checksum does not match (a damaged or edited file)");
  const tokens: number[] = new Array(n);
  const vocab = cache.config.vocabSize;
  for (let i = 0; i < n; i++) {
    const t = view.getUint32(headerEnd + 4 * i, true);
    if (t >= vocab) throw new KvStateError(`token ${i} is ${t}, outside the vocabulary [0, ${vocab})`);
    tokens[i] = t;
  }
  // Scales must be finite and >= 0 (kv_store writes max|x| / 127); values may be any int8.
  checkScales(cache, bytes, headerEnd + 4 * n, n);
  let from = headerEnd + 4 * n;
  const mem = k.u8;
  forEachRegion(cache, n, (ptr, len) => {
    mem.set(bytes.subarray(from, from + len), ptr);
    from += len;
  });
  return tokens;
}

/** Every saved scale is a finite number >= 0, as kv_store writes them. */
function checkScales(cache: KvCache, bytes: Uint8Array, start: number, n: number): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const { numKvHeads: heads, headDim } = cache.config;
  let at = start;
  cache.layers.forEach((_, l) => {
    const count = savedPositions(cache, l, n);
    for (let part = 0; part < 2; part++) {
      for (let h = 0; h < heads; h++) {
        at += count * headDim;
        for (let i = 0; i < count; i++, at += 4) {
          const s = view.getFloat32(at, true);
          if (!(s >= 0 && s < Infinity)) throw new KvStateError(`layer ${l} ${part === 0 ? "K" : "V"} head ${h}: a scale ${s} (not a finite number >= 0)`);
        }
      }
    }
  });
}
