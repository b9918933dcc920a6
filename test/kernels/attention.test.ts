import { wasmBytes } from "../../src/node/wasm-files.js";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import {
  allocAttentionState, allocKvCacheLayer, attentionRecordFloats, attentionAccumulateRef, attentionFinalize,
  attentionFinalizeRef, attentionReset, attentionResetRef, attentionRows, attentionRowsRef, attentionStateFloats, kvCacheLayerArrays,
  kvStore, kvStoreRef, quantizeQueryRef,
  type KvCacheLayer, type KvCacheLayerArrays, type KvPart,
} from "../../src/kernels/attention.js";
import { visibleSlots } from "../../src/kernels/kv-slots.js";
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

/** What a case's cache and queries hold: the seed, the value styles and sizes, and which KV head is read. */
const contentArbs = {
  seed: fc.integer(),
  styles: fc.array(styleArb, { minLength: 1, maxLength: 3 }),
  magnitude: fc.constantFrom(1e-3, 1, 7.5, 300),
  qScale: fc.constantFrom(0.1, 1, 4),
  integerQ: fc.boolean(),
  kvHeadPick: fc.nat(),
};

const caseArb = fc
  .record({
    kvHeads: fc.integer({ min: 1, max: 4 }),
    // up to Gemma 3's 256 (one KV head) and the kernels' limit, 512
    headDim: fc.constantFrom(16, 32, 48, 64, 128, 256, 512),
    nq: fc.integer({ min: 1, max: 11 }),
    slots: fc.oneof(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 300 })),
    ...contentArbs,
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

const SF = 0.125;

/**
 * Cases for attention_rows: `rows` query rows at positions pos0.. of either a global layer (a slot per
 * position, the window the whole cache) or a sliding one whose ring holds the window plus room for the
 * rows (as the engine's KvCache does), at positions crossing the window's edge and several wraps.
 */
const rowsCaseArb = fc
  .record({
    kvHeads: fc.integer({ min: 1, max: 4 }),
    headDim: fc.constantFrom(16, 32, 64, 128),
    nq: fc.integer({ min: 1, max: 7 }),
    rows: fc.integer({ min: 1, max: 10 }),
    ring: fc.boolean(),
    window: fc.oneof(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 200 })),
    extra: fc.integer({ min: 0, max: 70 }),
    at: fc.nat(),
    nearEdge: fc.boolean(),
    ...contentArbs,
  })
  .map((c) => {
    const kvHead = c.kvHeadPick % c.kvHeads;
    if (!c.ring) {
      // Global: every position up to the last row's is a slot; rows anywhere in it.
      const slots = c.rows + c.extra + (c.at % 130);
      const pos0 = c.nearEdge ? slots - c.rows : c.at % (slots - c.rows + 1);
      return { ...c, kvHead, slots, window: slots, pos0 };
    }
    // Ring: window + rows - 1 + extra slots; positions up to three wraps on, or just around the window's edge.
    const slots = c.window + c.rows - 1 + (c.extra % 9);
    const pos0 = c.nearEdge ? Math.max(0, c.window - c.rows + (c.at % 5) - 2) : c.at % (3 * slots);
    return { ...c, kvHead, slots, pos0 };
  });

type RowsCase = typeof rowsCaseArb extends fc.Arbitrary<infer T> ? T : never;

/** The kernel's outputs (f32 [rows][nq][headDim]) for rows whose queries are q (same layout). */
function kernelRows(s: Scratch, cache: KvCacheLayer, kvHead: number, q: Float32Array, rows: number, nq: number, pos0: number, window: number, sf: number): Float32Array {
  const headDim = cache.headDim;
  const state = s.take(attentionStateFloats(rows * nq, headDim) * 4);
  const qPtr = s.putF32(q);
  const out = s.take(rows * nq * headDim * 4);
  attentionReset(s.wasm, state, rows * nq, headDim);
  attentionRows(s.wasm, cache, kvHead, qPtr, nq * headDim * 4, rows, nq, pos0, window, sf, state);
  attentionFinalize(s.wasm, state, rows * nq, headDim, out);
  return s.get(out, rows * nq * headDim);
}

function kernelRowsAt(wasm: WasmKernels, cache: KvCacheLayer, kvHead: number, q: Float32Array, rows: number, nq: number, pos0: number, window: number): Float32Array {
  return kernelRows(Scratch.create(wasm, 1 << 20), cache, kvHead, q, rows, nq, pos0, window, SF);
}

/** The twin's outputs, same layout. */
function twinRows(twin: KvCacheLayerArrays, kvHead: number, q: Float32Array, rows: number, nq: number, pos0: number, window: number, sf: number): Float32Array {
  const state = new Float32Array(attentionStateFloats(rows * nq, twin.headDim));
  attentionResetRef(state, rows * nq, twin.headDim);
  attentionRowsRef(twin, kvHead, q, nq * twin.headDim, rows, nq, pos0, window, sf, state);
  const out = new Float32Array(rows * nq * twin.headDim);
  attentionFinalizeRef(state, rows * nq, twin.headDim, out);
  return out;
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

  /** A case's cache, filled the same in Wasm memory and in the twin's arrays, and its rows' queries. */
  function rowsSetup(c: RowsCase): { twin: KvCacheLayerArrays; cache: KvCacheLayer; q: Float32Array } {
    scratch.reset();
    const twin = kvCacheLayerArrays(c);
    const cache = cacheInWasm(scratch, c.kvHeads, c.headDim, c.slots);
    fillCaches(scratch, twin, cache, c.seed, c.styles, c.magnitude);
    return { twin, cache, q: makeQ(c.seed, c.rows * c.nq, c.headDim, c.qScale, c.integerQ) };
  }

  it("attention_rows matches the twin: rows of a tile at any position, global or in a ring that wraps (fast-check)", () => {
    fc.assert(
      fc.property(rowsCaseArb, (c) => {
        const { twin, cache, q } = rowsSetup(c);
        const got = kernelRows(scratch, cache, c.kvHead, q, c.rows, c.nq, c.pos0, c.window, SF);
        const want = twinRows(twin, c.kvHead, q, c.rows, c.nq, c.pos0, c.window, SF);
        expect(got.every(Number.isFinite)).toBe(true);
        for (let r = 0; r < c.rows; r++) {
          const seen = visibleSlots(c.slots, c.window, c.pos0 + r);
          const qr = q.subarray(r * c.nq * c.headDim, (r + 1) * c.nq * c.headDim);
          const vmax = Math.max(...seen.map((s) => maxAbsV(twin, c.kvHead, s.slot0, s.n)));
          const e = c.integerQ ? 0 : Math.max(...seen.map((s) => scoreBound(twin, c.kvHead, qr, c.nq, s.slot0, s.n, SF)));
          const w = c.nq * c.headDim;
          expectClose(got.subarray(r * w, (r + 1) * w), want.subarray(r * w, (r + 1) * w), vmax * (1e-5 + 4e-6 * e), `row ${r} at ${c.pos0 + r} (E=${e.toExponential(2)})`);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it("a row gets the same bits whichever rows it is computed with: the tile, each row alone, any split (fast-check)", () => {
    fc.assert(
      fc.property(rowsCaseArb, fc.array(fc.nat(), { maxLength: 3 }), (c, cuts) => {
        const { twin, cache, q } = rowsSetup(c);
        const whole = kernelRows(scratch, cache, c.kvHead, q, c.rows, c.nq, c.pos0, c.window, SF);
        const w = c.nq * c.headDim;
        const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));
        for (let r = 0; r < c.rows; r++) {
          const alone = kernelRows(scratch, cache, c.kvHead, q.subarray(r * w, (r + 1) * w), 1, c.nq, c.pos0 + r, c.window, SF);
          expect(bits(alone)).toEqual(bits(whole.subarray(r * w, (r + 1) * w)));
        }
        const points = [...new Set(cuts.map((x) => x % c.rows))].filter((x) => x > 0).sort((a, b) => a - b);
        let from = 0;
        for (const to of [...points, c.rows]) {
          const part = kernelRows(scratch, cache, c.kvHead, q.subarray(from * w, to * w), to - from, c.nq, c.pos0 + from, c.window, SF);
          expect(bits(part)).toEqual(bits(whole.subarray(from * w, to * w)));
          from = to;
        }
      }),
      { numRuns: RUNS },
    );
  });

  it("handles many slots: rows of a 2500-slot ring read as two wrapped runs, as the twin", () => {
    scratch.reset();
    const shape = { kvHeads: 4, headDim: 64, slots: 2500 };
    const nq = 5;
    const rows = 9;
    const twin = kvCacheLayerArrays(shape);
    const cache = cacheInWasm(scratch, shape.kvHeads, shape.headDim, shape.slots);
    fillCaches(scratch, twin, cache, 11, ["gauss", "wide"], 1);
    const q = makeQ(11, rows * nq, shape.headDim, 1, false);
    // Window 2400 at positions 5996..6004: each row's window wraps the ring once (slot 0 is position 5000).
    const got = kernelRows(scratch, cache, 2, q, rows, nq, 5996, 2400, SF);
    const want = twinRows(twin, 2, q, rows, nq, 5996, 2400, SF);
    const e = scoreBound(twin, 2, q, rows * nq, 0, shape.slots, SF);
    expectClose(got, want, maxAbsV(twin, 2, 0, shape.slots) * (1e-5 + 4e-6 * e), "2500 slots");
  });

  it("keeps the softmax stable for huge scores: the output is the value of the dominant key", () => {
    const headDim = 64;
    const nq = 5;
    const slots = 700; // crosses several 64-key chunks
    const cache = allocKvCacheLayer(wasm, { kvHeads: 1, headDim, slots });
    const r = rng(7);
    const hot = 613;
    for (let j = 0; j < slots; j++) {
      // q = 1000·1 against key 613 = 1: its score is ~8000 above the rest.
      const k = j === hot ? new Float32Array(headDim).fill(1) : Float32Array.from({ length: headDim }, () => gauss(r));
      kvStore(wasm, cache, "k", allocF32(wasm, k), j);
      kvStore(wasm, cache, "v", allocF32(wasm, new Float32Array(headDim).fill(j)), j);
    }
    const rows = 3;
    const q = new Float32Array(rows * nq * headDim).fill(1000);
    const state = allocAttentionState(wasm, rows * nq, headDim);
    attentionRows(wasm, cache, 0, allocF32(wasm, q), nq * headDim * 4, rows, nq, slots - rows, slots, SF, state);
    const outPtr = wasm.alloc(rows * nq * headDim * 4);
    attentionFinalize(wasm, state, rows * nq, headDim, outPtr);
    for (const x of wasm.f32.slice(outPtr >> 2, (outPtr >> 2) + rows * nq * headDim)) expect(x).toBeCloseTo(hot, 3);
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
    attentionRows(wasm, cache, 0, allocF32(wasm, new Float32Array(nq * headDim).fill(1.1)), nq * headDim * 4, 1, nq, slots - 1, slots, SF, state);
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

  it("a key or value holding NaN or infinity is stored as scale NaN: the rows that read it give NaN, the others not", () => {
    const headDim = 16;
    const shape = { kvHeads: 2, headDim, slots: 6 };
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
        // Window 4, rows at positions 1..5: positions 1..4 read slot 1, position 5 does not.
        const rows = 5;
        const q = Float32Array.from({ length: rows * headDim }, () => r() - 0.5);
        for (const kvHead of [0, 1]) {
          const got = kernelRowsAt(wasm, cache, kvHead, q, rows, 1, 1, 4);
          const want = twinRows(twin, kvHead, q, rows, 1, 1, 4, SF);
          for (const out of [got, want]) {
            for (let row = 0; row < rows; row++) {
              const reads = kvHead === 1 && row + 1 <= 4;
              expect(out.subarray(row * headDim, (row + 1) * headDim).every(reads ? Number.isNaN : Number.isFinite)).toBe(true);
            }
          }
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
      const rows = 2;
      const q = Float32Array.from({ length: rows * nq * headDim }, () => r() - 0.5);
      q[nq * headDim + headDim + 7] = bad; // row 1, head 1
      const got = kernelRowsAt(wasm, cache, 0, q, rows, nq, 3, 5);
      const want = twinRows(twin, 0, q, rows, nq, 3, 5, SF);
      for (const out of [got, want]) {
        for (let i = 0; i < rows * nq; i++) {
          expect(out.subarray(i * headDim, (i + 1) * headDim).every(i === nq + 1 ? Number.isNaN : Number.isFinite)).toBe(true);
        }
      }
    }
  });

  it("gives zeros for a state that saw no key", () => {
    const headDim = 32;
    const nq = 3;
    const state = allocAttentionState(wasm, nq, headDim);
    const outPtr = wasm.alloc(nq * headDim * 4);
    wasm.f32.fill(7, outPtr >> 2, (outPtr >> 2) + nq * headDim);
    attentionReset(wasm, state, nq, headDim);
    attentionFinalize(wasm, state, nq, headDim, outPtr);
    expect(Array.from(wasm.f32.subarray(outPtr >> 2, (outPtr >> 2) + nq * headDim))).toEqual(new Array(nq * headDim).fill(0));
  });

  it("rejects bad shapes and ranges with clear errors", () => {
    const cache = allocKvCacheLayer(wasm, { kvHeads: 1, headDim: 64, slots: 8 });
    const state = allocAttentionState(wasm, 2 * 5, 64);
    const q = wasm.alloc(2 * 5 * 64 * 4);
    const rows = (c: KvCacheLayer, kvHead: number, n: number, nq: number, pos0: number, window: number) => attentionRows(wasm, c, kvHead, q, 5 * 64 * 4, n, nq, pos0, window, SF, state);
    expect(() => rows({ ...cache, headDim: 40 }, 0, 1, 5, 0, 8)).toThrow(/multiple of 16/);
    // Window 8 at positions 7 and 8: 9 positions, the ring holds 8.
    expect(() => rows(cache, 0, 2, 5, 7, 8)).toThrow(/read 9 positions, more than the cache's 8 slots hold/);
    expect(() => rows(cache, 1, 1, 5, 0, 8)).toThrow(/kvHead 1/);
    expect(() => rows(cache, 0, 1, 0, 0, 8)).toThrow(/nq must be an integer >= 1/);
    expect(() => rows(cache, 0, 0, 5, 0, 8)).toThrow(/rows must be an integer >= 1/);
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
