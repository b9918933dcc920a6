import { wasmBytes } from "../../src/node/wasm-files.js";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import {
  allocAttentionState, allocKvCacheLayer, attentionAccumulate, attentionRecordFloats, attentionAccumulateRef, attentionFinalize,
  attentionFinalizeRef, attentionReset, attentionResetRef, attentionStateFloats, kvCacheLayerArrays, kvStore, kvStoreRef,
  quantizeQueryRef,
  type KvCacheLayer, type KvCacheLayerArrays, type KvPart,
} from "../../src/kernels/attention.js";
import { WasmKernels } from "../../src/kernels/wasm.js";
import { gauss, rng } from "../helpers/rng.js";
import { VARIANTS } from "../helpers/variants.js";
import { Scratch } from "../helpers/wasm-scratch.js";

const variants = VARIANTS;

const RUNS = 60;

type Style = "gauss" | "zero" | "constant" | "extreme" | "wide";

/** One token's K or V for all KV heads, in a given style. */
function fillToken(r: () => number, style: Style, count: number, magnitude: number): Float32Array {
  const x = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    if (style === "zero") x[i] = 0;
    else if (style === "constant") x[i] = magnitude;
    else if (style === "extreme") x[i] = (r() < 0.5 ? -1 : 1) * magnitude * (r() < 0.3 ? 1 : 0.5); // many ±127
    else if (style === "wide") x[i] = gauss(r) * magnitude * 10 ** Math.floor(r() * 4);
    else x[i] = gauss(r) * magnitude;
  }
  return x;
}


function cacheInWasm(s: Scratch, kvHeads: number, headDim: number, slots: number): KvCacheLayer {
  const data = kvHeads * slots * headDim;
  return {
    kvHeads, headDim, slots,
    kData: s.take(data), kScales: s.take(kvHeads * slots * 4), vData: s.take(data), vScales: s.take(kvHeads * slots * 4),
  };
}

/** Fills both caches token by token through the twin and the kernel. */
function fillCaches(s: Scratch, twin: KvCacheLayerArrays, cache: KvCacheLayer, seed: number, styles: Style[], magnitude: number): void {
  const r = rng(seed);
  const count = twin.kvHeads * twin.headDim;
  for (let slot = 0; slot < twin.slots; slot++) {
    for (const part of ["k", "v"] as KvPart[]) {
      const style = styles[(slot + (part === "v" ? 1 : 0)) % styles.length];
      const x = fillToken(r, style, count, magnitude);
      kvStoreRef(twin, part, x, slot);
      const src = s.putF32(x);
      kvStore(s.wasm, cache, part, src, slot);
    }
  }
}

function expectCachesEqual(wasm: WasmKernels, twin: KvCacheLayerArrays, cache: KvCacheLayer): void {
  const bytes = twin.kvHeads * twin.slots * twin.headDim;
  const scales = twin.kvHeads * twin.slots;
  expect(Array.from(wasm.i8.subarray(cache.kData, cache.kData + bytes))).toEqual(Array.from(twin.kData));
  expect(Array.from(wasm.i8.subarray(cache.vData, cache.vData + bytes))).toEqual(Array.from(twin.vData));
  expect(Array.from(wasm.f32.subarray(cache.kScales >> 2, (cache.kScales >> 2) + scales))).toEqual(Array.from(twin.kScales));
  expect(Array.from(wasm.f32.subarray(cache.vScales >> 2, (cache.vScales >> 2) + scales))).toEqual(Array.from(twin.vScales));
}

/** Splits [slot0, slot0 + n) at sorted cut points into pieces, in a shuffled order. */
function pieces(slot0: number, n: number, cuts: number[], reverse: boolean): Array<[number, number]> {
  const points = [...new Set(cuts.map((c) => c % (n + 1)))].sort((a, b) => a - b);
  const out: Array<[number, number]> = [];
  let prev = 0;
  for (const c of [...points, n]) {
    if (c > prev) out.push([slot0 + prev, c - prev]);
    prev = Math.max(prev, c);
  }
  return reverse ? out.reverse() : out;
}

/** E of the tolerance: the largest |score| any summation order could reach. */
function scoreBound(twin: KvCacheLayerArrays, kvHead: number, q: ArrayLike<number>, nq: number, slot0: number, n: number, sf: number): number {
  const { headDim, slots } = twin;
  let e = 0;
  for (let h = 0; h < nq; h++) {
    for (let j = slot0; j < slot0 + n; j++) {
      const row = kvHead * slots + j;
      let s = 0;
      for (let d = 0; d < headDim; d++) s += Math.abs(q[h * headDim + d] * twin.kData[row * headDim + d]);
      e = Math.max(e, Math.abs(sf * twin.kScales[row]) * s);
    }
  }
  return e;
}

function maxAbsV(twin: KvCacheLayerArrays, kvHead: number, slot0: number, n: number): number {
  const { headDim, slots } = twin;
  let m = 0;
  for (let j = slot0; j < slot0 + n; j++) {
    const row = kvHead * slots + j;
    for (let d = 0; d < headDim; d++) m = Math.max(m, Math.abs(twin.vData[row * headDim + d] * twin.vScales[row]));
  }
  return m;
}

function expectClose(actual: Float32Array, expected: Float32Array, tol: number, what: string): void {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < actual.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    if (!(d <= worst)) {
      worst = d;
      at = i;
    }
  }
  if (!(worst <= tol)) {
    throw new Error(`${what}: |diff| ${worst} at ${at} (${actual[at]} vs ${expected[at]}) exceeds ${tol}`);
  }
}

/** Plain float64 attention over the dequantized cache: the textbook formula, no online softmax. */
function plainAttention(twin: KvCacheLayerArrays, kvHead: number, q: ArrayLike<number>, nq: number, slot0: number, n: number, sf: number): Float64Array {
  const { headDim, slots } = twin;
  const out = new Float64Array(nq * headDim);
  for (let h = 0; h < nq; h++) {
    const s = new Float64Array(n);
    for (let j = 0; j < n; j++) {
      const row = kvHead * slots + slot0 + j;
      let dot = 0;
      for (let d = 0; d < headDim; d++) dot += q[h * headDim + d] * twin.kData[row * headDim + d] * twin.kScales[row];
      s[j] = dot * sf;
    }
    const m = Math.max(...s);
    let z = 0;
    for (let j = 0; j < n; j++) z += Math.exp(s[j] - m);
    for (let j = 0; j < n; j++) {
      const row = kvHead * slots + slot0 + j;
      const p = Math.exp(s[j] - m) / z;
      for (let d = 0; d < headDim; d++) out[h * headDim + d] += p * twin.vData[row * headDim + d] * twin.vScales[row];
    }
  }
  return out;
}

const styleArb = fc.constantFrom<Style>("gauss", "zero", "constant", "extreme", "wide");

const caseArb = fc
  .record({
    kvHeads: fc.integer({ min: 1, max: 4 }),
    // up to Gemma 3's 256 (one KV head) and the kernels' limit, 512
    headDim: fc.constantFrom(16, 32, 48, 64, 128, 256, 512),
    nq: fc.integer({ min: 1, max: 11 }),
    slots: fc.oneof(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 300 })),
    seed: fc.integer(),
    styles: fc.array(styleArb, { minLength: 1, maxLength: 3 }),
    magnitude: fc.constantFrom(1e-3, 1, 7.5, 300),
    qScale: fc.constantFrom(0.1, 1, 4),
    integerQ: fc.boolean(),
    kvHeadPick: fc.nat(),
    rangeA: fc.nat(),
    rangeB: fc.nat(),
    cuts: fc.array(fc.nat(), { maxLength: 2 }),
    reverse: fc.boolean(),
  })
  .map((c) => {
    const slot0 = c.rangeA % c.slots;
    const n = 1 + (c.rangeB % (c.slots - slot0));
    return { ...c, kvHead: c.kvHeadPick % c.kvHeads, slot0, n };
  });

function makeQ(seed: number, nq: number, headDim: number, qScale: number, integerQ: boolean): Float32Array {
  const r = rng(seed ^ 0x5bd1e995);
  const q = new Float32Array(nq * headDim);
  // Integer-valued queries (times a power of two) make every f32 dot product exact, so kernel and twin
  // see bit-identical scores however large they are: the tight check of the stable softmax.
  for (let i = 0; i < q.length; i++) q[i] = integerQ ? Math.round(gauss(r) * 20) * 2 ** Math.round(Math.log2(qScale)) : gauss(r) * qScale;
  return q;
}

describe.each(variants)("attention kernels (%s build)", (variant) => {
  let wasm: WasmKernels;
  let scratch: Scratch;
  beforeAll(async () => {
    wasm = await WasmKernels.create(variant, wasmBytes(variant));
    scratch = Scratch.create(wasm, 16 << 20);
  });

  it("kvStore quantizes exactly like the twin, with ±127 at each head's max and scale 0 for zero heads", () => {
    fc.assert(
      fc.property(caseArb, (c) => {
        scratch.reset();
        const twin = kvCacheLayerArrays(c);
        const cache = cacheInWasm(scratch, c.kvHeads, c.headDim, c.slots);
        fillCaches(scratch, twin, cache, c.seed, c.styles, c.magnitude);
        expectCachesEqual(wasm, twin, cache);
        for (let row = 0; row < c.kvHeads * c.slots; row++) {
          const head = twin.kData.subarray(row * c.headDim, (row + 1) * c.headDim);
          const peak = Math.max(...Array.from(head, Math.abs));
          expect(peak).toBe(twin.kScales[row] === 0 ? 0 : 127);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it("attention over a range split in pieces, in any order, matches the twin over the whole range", () => {
    fc.assert(
      fc.property(caseArb, (c) => {
        scratch.reset();
        const twin = kvCacheLayerArrays(c);
        const cache = cacheInWasm(scratch, c.kvHeads, c.headDim, c.slots);
        fillCaches(scratch, twin, cache, c.seed, c.styles, c.magnitude);
        const q = makeQ(c.seed, c.nq, c.headDim, c.qScale, c.integerQ);
        const sf = 0.125;

        const state = scratch.take(attentionStateFloats(c.nq, c.headDim) * 4);
        const qPtr = scratch.putF32(q);
        const outPtr = scratch.take(c.nq * c.headDim * 4);
        attentionReset(wasm, state, c.nq, c.headDim);
        for (const [s0, len] of pieces(c.slot0, c.n, c.cuts, c.reverse)) {
          attentionAccumulate(wasm, cache, c.kvHead, qPtr, c.nq, s0, len, sf, state);
        }
        attentionFinalize(wasm, state, c.nq, c.headDim, outPtr);
        const got = wasm.f32.slice(outPtr >> 2, (outPtr >> 2) + c.nq * c.headDim);

        const tState = new Float32Array(attentionStateFloats(c.nq, c.headDim));
        attentionResetRef(tState, c.nq, c.headDim);
        attentionAccumulateRef(twin, c.kvHead, q, c.nq, c.slot0, c.n, sf, tState);
        const want = new Float32Array(c.nq * c.headDim);
        attentionFinalizeRef(tState, c.nq, c.headDim, want);

        expect(got.every(Number.isFinite)).toBe(true);
        const vmax = maxAbsV(twin, c.kvHead, c.slot0, c.n);
        const e = c.integerQ ? 0 : scoreBound(twin, c.kvHead, q, c.nq, c.slot0, c.n, sf);
        expectClose(got, want, vmax * (1e-5 + 4e-6 * e), `out (E=${e.toExponential(2)})`);
      }),
      { numRuns: RUNS },
    );
  });

  it("handles many slots: a 2500-slot ring read as three wrapped pieces equals the twin's single range", () => {
    scratch.reset();
    const shape = { kvHeads: 4, headDim: 64, slots: 2500 };
    const nq = 5;
    const twin = kvCacheLayerArrays(shape);
    const cache = cacheInWasm(scratch, shape.kvHeads, shape.headDim, shape.slots);
    fillCaches(scratch, twin, cache, 11, ["gauss", "wide"], 1);
    const q = makeQ(11, nq, shape.headDim, 1, false);
    const state = scratch.take(attentionStateFloats(nq, shape.headDim) * 4);
    const qPtr = scratch.putF32(q);
    const outPtr = scratch.take(nq * shape.headDim * 4);
    attentionReset(wasm, state, nq, shape.headDim);
    for (const [s0, len] of [[1700, 800], [0, 1000], [1000, 700]]) {
      attentionAccumulate(wasm, cache, 2, qPtr, nq, s0, len, 0.125, state);
    }
    attentionFinalize(wasm, state, nq, shape.headDim, outPtr);
    const got = wasm.f32.slice(outPtr >> 2, (outPtr >> 2) + nq * shape.headDim);
    const tState = new Float32Array(attentionStateFloats(nq, shape.headDim));
    attentionResetRef(tState, nq, shape.headDim);
    attentionAccumulateRef(twin, 2, q, nq, 0, shape.slots, 0.125, tState);
    const want = new Float32Array(nq * shape.headDim);
    attentionFinalizeRef(tState, nq, shape.headDim, want);
    const e = scoreBound(twin, 2, q, nq, 0, shape.slots, 0.125);
    expectClose(got, want, maxAbsV(twin, 2, 0, shape.slots) * (1e-5 + 4e-6 * e), "2500 slots");
  });

  it("keeps the softmax stable for huge scores: the output is the value of the dominant key", () => {
    const headDim = 64;
    const nq = 5;
    const slots = 700; // crosses several 64-key chunks
    const cache = allocKvCacheLayer(wasm, { kvHeads: 1, headDim, slots });
    const twin = kvCacheLayerArrays({ kvHeads: 1, headDim, slots });
    const r = rng(7);
    const keys = new Float32Array(slots * headDim);
    for (let j = 0; j < slots; j++) {
      for (let d = 0; d < headDim; d++) keys[j * headDim + d] = gauss(r);
    }
    const hot = 613;
    for (let d = 0; d < headDim; d++) keys[hot * headDim + d] = 1; // q = 1000·1: score ~8000 above the rest
    for (let j = 0; j < slots; j++) {
      const k = keys.subarray(j * headDim, (j + 1) * headDim);
      const v = new Float32Array(headDim).fill(j);
      kvStore(wasm, cache, "k", allocF32(wasm, k), j);
      kvStore(wasm, cache, "v", allocF32(wasm, v), j);
      kvStoreRef(twin, "k", k, j);
      kvStoreRef(twin, "v", v, j);
    }
    const q = new Float32Array(nq * headDim).fill(1000);
    const state = allocAttentionState(wasm, nq, headDim);
    const qPtr = allocF32(wasm, q);
    const outPtr = wasm.alloc(nq * headDim * 4);
    attentionAccumulate(wasm, cache, 0, qPtr, nq, 0, slots, 0.125, state);
    attentionFinalize(wasm, state, nq, headDim, outPtr);
    const got = wasm.f32.slice(outPtr >> 2, (outPtr >> 2) + nq * headDim);
    for (const x of got) expect(x).toBeCloseTo(hot, 3);
  });

  it("flushes softmax weights below e^-64 to zero: no subnormal value weight, whatever the score spread", () => {
    const headDim = 64;
    const nq = 5;
    const slots = 64; // one chunk: the weights row the kernel leaves behind covers every key
    const cache = allocKvCacheLayer(wasm, { kvHeads: 1, headDim, slots });
    for (let j = 0; j < slots; j++) {
      // Key j is j in every dimension: with q = 1.1 the score is 8.8j, so the gaps below the top key run
      // 8.8..554 and none lies near the 64 cut-off.
      kvStore(wasm, cache, "k", allocF32(wasm, new Float32Array(headDim).fill(j)), j);
      // Small values give small V scales (1e-3 / 127): e^-87 times such a scale is subnormal.
      kvStore(wasm, cache, "v", allocF32(wasm, new Float32Array(headDim).fill(1e-3)), j);
    }
    const state = allocAttentionState(wasm, nq, headDim);
    attentionAccumulate(wasm, cache, 0, allocF32(wasm, new Float32Array(nq * headDim).fill(1.1)), nq, 0, slots, 0.125, state);
    // The kernel overwrites each head's score row (after the nq records) with the value weights.
    const row = (state >> 2) + nq * attentionRecordFloats(headDim);
    const weights = wasm.f32.slice(row, row + slots);
    let zeros = 0;
    for (let j = 0; j < slots; j++) {
      const w = Math.abs(weights[j]);
      if (w === 0) zeros++;
      else expect(w).toBeGreaterThanOrEqual(2 ** -126);
      // Zero exactly where the key's score is 64 or more below the top key's.
      expect(w === 0).toBe(8.8 * (slots - 1 - j) > 64);
    }
    expect(zeros).toBe(slots - 8);
  });

  it("a key or value holding NaN or infinity is stored as scale NaN, and attention over it gives NaN", () => {
    const headDim = 16;
    const shape = { kvHeads: 2, headDim, slots: 3 };
    for (const part of ["k", "v"] as const) {
      for (const bad of [NaN, Infinity]) {
        const twin = kvCacheLayerArrays(shape);
        const cache = allocKvCacheLayer(wasm, shape);
        const r = rng(5);
        for (let j = 0; j < shape.slots; j++) {
          for (const p of ["k", "v"] as const) {
            const x = Float32Array.from({ length: 2 * headDim }, () => r() * 2 - 1);
            if (p === part && j === 1) x[headDim + 3] = bad; // KV head 1, slot 1
            kvStoreRef(twin, p, x, j);
            kvStore(wasm, cache, p, allocF32(wasm, x), j);
          }
        }
        expectCachesEqual(wasm, twin, cache);
        const scales = part === "k" ? twin.kScales : twin.vScales;
        expect(Number.isNaN(scales[1 * shape.slots + 1])).toBe(true);
        const q = Float32Array.from({ length: headDim }, () => r() - 0.5);
        for (const kvHead of [0, 1]) {
          const state = allocAttentionState(wasm, 1, headDim);
          const outPtr = wasm.alloc(headDim * 4);
          attentionAccumulate(wasm, cache, kvHead, allocF32(wasm, q), 1, 0, shape.slots, 0.125, state);
          attentionFinalize(wasm, state, 1, headDim, outPtr);
          const got = wasm.f32.slice(outPtr >> 2, (outPtr >> 2) + headDim);
          const tState = new Float32Array(attentionStateFloats(1, headDim));
          attentionResetRef(tState, 1, headDim);
          attentionAccumulateRef(twin, kvHead, q, 1, 0, shape.slots, 0.125, tState);
          const want = new Float32Array(headDim);
          attentionFinalizeRef(tState, 1, headDim, want);
          for (const out of [got, want]) expect(out.every(kvHead === 1 ? Number.isNaN : Number.isFinite)).toBe(true);
        }
      }
    }
  });

  it("a query head holding NaN or infinity gives NaN for that head only, in the kernel and the twin", () => {
    const headDim = 32;
    const nq = 3;
    const shape = { kvHeads: 1, headDim, slots: 5 };
    const twin = kvCacheLayerArrays(shape);
    const cache = allocKvCacheLayer(wasm, shape);
    const r = rng(3);
    for (let j = 0; j < shape.slots; j++) {
      for (const part of ["k", "v"] as const) {
        const x = Float32Array.from({ length: headDim }, () => r() * 2 - 1);
        kvStoreRef(twin, part, x, j);
        kvStore(wasm, cache, part, allocF32(wasm, x), j);
      }
    }
    for (const bad of [NaN, Infinity, -Infinity]) {
      const q = Float32Array.from({ length: nq * headDim }, () => r() - 0.5);
      q[headDim + 7] = bad;
      const state = allocAttentionState(wasm, nq, headDim);
      const outPtr = wasm.alloc(nq * headDim * 4);
      attentionAccumulate(wasm, cache, 0, allocF32(wasm, q), nq, 0, shape.slots, 0.125, state);
      attentionFinalize(wasm, state, nq, headDim, outPtr);
      const got = wasm.f32.slice(outPtr >> 2, (outPtr >> 2) + nq * headDim);
      const tState = new Float32Array(attentionStateFloats(nq, headDim));
      attentionResetRef(tState, nq, headDim);
      attentionAccumulateRef(twin, 0, q, nq, 0, shape.slots, 0.125, tState);
      const want = new Float32Array(nq * headDim);
      attentionFinalizeRef(tState, nq, headDim, want);
      for (const out of [got, want]) {
        expect(out.subarray(headDim, 2 * headDim).every(Number.isNaN)).toBe(true);
        expect(out.subarray(0, headDim).every(Number.isFinite)).toBe(true);
        expect(out.subarray(2 * headDim).every(Number.isFinite)).toBe(true);
      }
    }
  });

  it("gives zeros for a state that saw no key, and an empty range changes nothing", () => {
    const headDim = 32;
    const nq = 3;
    const cache = allocKvCacheLayer(wasm, { kvHeads: 2, headDim, slots: 4 });
    const state = allocAttentionState(wasm, nq, headDim);
    const qPtr = allocF32(wasm, new Float32Array(nq * headDim).fill(1));
    const outPtr = wasm.alloc(nq * headDim * 4);
    wasm.f32.fill(7, outPtr >> 2, (outPtr >> 2) + nq * headDim);
    attentionAccumulate(wasm, cache, 1, qPtr, nq, 2, 0, 0.125, state);
    attentionFinalize(wasm, state, nq, headDim, outPtr);
    expect(Array.from(wasm.f32.subarray(outPtr >> 2, (outPtr >> 2) + nq * headDim))).toEqual(new Array(nq * headDim).fill(0));
  });

  it("rejects bad shapes and ranges with clear errors", () => {
    const cache = allocKvCacheLayer(wasm, { kvHeads: 1, headDim: 64, slots: 8 });
    const state = allocAttentionState(wasm, 5, 64);
    const q = wasm.alloc(5 * 64 * 4);
    expect(() => attentionAccumulate(wasm, { ...cache, headDim: 40 }, 0, q, 5, 0, 1, 0.125, state)).toThrow(/multiple of 16/);
    expect(() => attentionAccumulate(wasm, cache, 0, q, 5, 6, 3, 0.125, state)).toThrow(/run past the cache's 8 slots/);
    expect(() => attentionAccumulate(wasm, cache, 1, q, 5, 0, 1, 0.125, state)).toThrow(/kvHead 1/);
    expect(() => attentionAccumulate(wasm, cache, 0, q, 0, 0, 1, 0.125, state)).toThrow(/nq must be an integer >= 1/);
    expect(() => kvStore(wasm, cache, "k", q, 8)).toThrow(/slot 8 is outside/);
    expect(() => attentionFinalize(wasm, state, 5, 64, wasm.memory.buffer.byteLength - 16)).toThrow(/outside the/);
  });
});

function allocF32(wasm: WasmKernels, values: Float32Array): number {
  const p = wasm.alloc(values.byteLength);
  wasm.f32.set(values, p >> 2);
  return p;
}

describe("attention twin", () => {
  it("equals plain float64 softmax attention over the dequantized cache, ranges in any order", () => {
    fc.assert(
      fc.property(caseArb, (c) => {
        const twin = kvCacheLayerArrays(c);
        const r = rng(c.seed);
        for (let slot = 0; slot < c.slots; slot++) {
          kvStoreRef(twin, "k", fillToken(r, c.styles[slot % c.styles.length], c.kvHeads * c.headDim, c.magnitude), slot);
          kvStoreRef(twin, "v", fillToken(r, c.styles[(slot + 1) % c.styles.length], c.kvHeads * c.headDim, c.magnitude), slot);
        }
        const q = makeQ(c.seed, c.nq, c.headDim, c.qScale, c.integerQ);
        const state = new Float32Array(attentionStateFloats(c.nq, c.headDim));
        attentionResetRef(state, c.nq, c.headDim);
        for (const [s0, len] of pieces(c.slot0, c.n, c.cuts, c.reverse)) {
          attentionAccumulateRef(twin, c.kvHead, q, c.nq, s0, len, 0.125, state);
        }
        const got = new Float32Array(c.nq * c.headDim);
        attentionFinalizeRef(state, c.nq, c.headDim, got);
        // The twin scores the i16 query: against textbook attention on that query it is exact up to float
        // rounding, and against the f32 query the quantization moves each score by at most E' / 65534.
        const scored = new Float64Array(c.nq * c.headDim);
        for (let h = 0; h < c.nq; h++) {
          const { q16, qScale } = quantizeQueryRef(q.subarray(h * c.headDim, (h + 1) * c.headDim), 0.125);
          for (let d = 0; d < c.headDim; d++) scored[h * c.headDim + d] = q16[d] * qScale;
        }
        const vmax = maxAbsV(twin, c.kvHead, c.slot0, c.n);
        const want = Float32Array.from(plainAttention(twin, c.kvHead, scored, c.nq, c.slot0, c.n, 0.125));
        const e = scoreBound(twin, c.kvHead, scored, c.nq, c.slot0, c.n, 0.125);
        expectClose(got, want, vmax * (2e-6 + 1e-6 * e), "twin vs float64 on the i16 query");
        let qmax = 0;
        for (const x of q) qmax = Math.max(qmax, Math.abs(x));
        const flat = new Float32Array(c.nq * c.headDim).fill(qmax);
        const ePrime = scoreBound(twin, c.kvHead, flat, c.nq, c.slot0, c.n, 0.125);
        const exact = Float32Array.from(plainAttention(twin, c.kvHead, q, c.nq, c.slot0, c.n, 0.125));
        expectClose(got, exact, vmax * (2e-6 + 1e-6 * e + (2 * ePrime) / 65534), "twin vs float64 on the f32 query");
      }),
      { numRuns: RUNS },
    );
  });

  it("quantizes with round half to even and clamps to ±127", () => {
    const twin = kvCacheLayerArrays({ kvHeads: 1, headDim: 16, slots: 1 });
    // scale = 127/127 = 1, so x/scale = x: 2.5 -> 2, 3.5 -> 4, -0.5 -> -0, -1.5 -> -2.
    const x = new Float32Array([127, 2.5, 3.5, -0.5, -1.5, 0.49, -127, 126.5, 0, 1, 0, 0, 0, 0, 0, 0]);
    kvStoreRef(twin, "k", x, 0);
    expect(twin.kScales[0]).toBe(1);
    expect(Array.from(twin.kData.subarray(0, 10))).toEqual([127, 2, 4, 0, -2, 0, -127, 126, 0, 1]);
  });
});
