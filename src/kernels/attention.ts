// Attention over the int8 KV cache: the layouts, the scalar TypeScript twins, and typed wrappers around
// the Wasm kernels of assembly/attention.ts.
//
// Quantization agrees exactly with the kernel (same f32 division, round half to even, clamp).
// Attention: each query head is quantized to i16 (q ≈ q16 · qScale, qScale = max|q| / 32767, an error of
// at most 2^-16 of max|q| per value, well under the int8 key's), so a score's dot with the int8 key is an
// exact integer and the twin computes every score bit for bit:
//   s = f32(f32(q16 · k) · f32(kScale · c)),   c = f32(qScale · scaleFactor)
// The twin keeps float64 for the softmax and the value sums inside a call and rounds the state to f32 at
// the end. Finalized outputs agree within
//   |kernel - twin| <= max|v| · (1e-5 + 4e-6 · E),   E = max_j |scaleFactor · kScale_j| · Σ_i |q_i k_ji|
// (E bounds the score magnitude; a score error δ moves the softmax-weighted mean by at most ~2δ·max|v|).
import { requireCount, requireRegion } from "./checks.js";
import { visibleSlots, windowStart } from "./kv-slots.js";
import { ATTENTION_CHUNK, KV_Q_MAX, QUERY_Q_MAX, roundHalfEven, SOFTMAX_FLOOR } from "./numerics.js";
import type { WasmKernels } from "./wasm.js";

/**
 * One layer's int8 KV cache.
 *
 *   kData, vData     i8  [kvHeads][slots][headDim]   q = clamp(roundHalfEven(x / scale), -127, 127)
 *   kScales, vScales f32 [kvHeads][slots]            scale = max|x| / 127 over that head's headDim values
 *                                                    (127 = KV_Q_MAX)
 *
 * One KV head's keys are one contiguous stream of slots·headDim bytes, which is what attention reads.
 * The caller picks the slot: global layers use slot = position, sliding layers a ring, slot = position %
 * window. Dequantized value: x ≈ q · scale; an all-zero head has scale 0 and q = 0, a head that held NaN or
 * infinity scale NaN and q = 0.
 */
export interface KvCacheShape {
  kvHeads: number;
  headDim: number;
  slots: number;
}

/** A KvCacheShape living in Wasm memory; the four fields are byte addresses. */
export interface KvCacheLayer extends KvCacheShape {
  kData: number;
  kScales: number;
  vData: number;
  vScales: number;
}

/** The same layout in plain typed arrays, for the twins. */
export interface KvCacheLayerArrays extends KvCacheShape {
  kData: Int8Array;
  kScales: Float32Array;
  vData: Int8Array;
  vScales: Float32Array;
}

export type KvPart = "k" | "v";

/**
 * Online-softmax state of nq query heads for the kernel (attention_rows' rows·nq: each row's GQA group in
 * turn), f32:
 *
 *   records  [nq][4 + headDim]   per head: m (running max score), l (running Σ e^(s - m)), 0, 0,
 *                                acc[headDim] (running Σ e^(s - m) · v)
 *   scratch  (nq + 1)·ATTENTION_CHUNK + headDim floats of scores and sinks, then the quantized queries
 *            (c: nq floats rounded up to 4; q16: nq·headDim i16), then one piece of ATTENTION_CHUNK keys
 *            widened to i16 and of values as f32 (1.5·ATTENTION_CHUNK·headDim floats), all for the kernel
 *            while it runs (no allocation in Wasm)
 *
 * Empty state: m = -inf, l = 0, acc = 0. The result is acc / l. The twin only reads the records.
 */
export function attentionRecordFloats(headDim: number): number {
  return 4 + headDim;
}

export function attentionStateFloats(nq: number, headDim: number): number {
  return (
    nq * attentionRecordFloats(headDim) + (nq + 1) * ATTENTION_CHUNK + headDim + ((nq + 3) & ~3) + (nq * headDim) / 2 +
    (3 * ATTENTION_CHUNK * headDim) / 2
  );
}

export function attentionStateBytes(nq: number, headDim: number): number {
  return 4 * attentionStateFloats(nq, headDim);
}

// ---------------------------------------------------------------------------------------------------
// Validation

/** Up to this head size an i16 query times an int8 key sums exactly in i32 (512 · 32767 · 127 < 2^31). */
export const MAX_HEAD_DIM = 512;

function checkHeadDim(fn: string, headDim: number): void {
  if (!Number.isInteger(headDim) || headDim <= 0 || headDim % 16 !== 0 || headDim > MAX_HEAD_DIM) {
    throw new RangeError(`${fn}: headDim must be a multiple of 16 (one i8x16 vector) in [16, ${MAX_HEAD_DIM}], got ${headDim}`);
  }
}

function checkShape(fn: string, shape: KvCacheShape): void {
  checkHeadDim(fn, shape.headDim);
  requireCount(fn, "kvHeads", shape.kvHeads, 1);
  requireCount(fn, "slots", shape.slots, 1);
}

function checkSlot(fn: string, shape: KvCacheShape, slot: number): void {
  requireCount(fn, "slot", slot);
  if (slot >= shape.slots) throw new RangeError(`${fn}: slot ${slot} is outside the cache's ${shape.slots} slots`);
}

function checkRange(fn: string, shape: KvCacheShape, kvHead: number, nq: number, slot0: number, n: number, scaleFactor: number): void {
  checkShape(fn, shape);
  requireCount(fn, "nq", nq, 1);
  requireCount(fn, "kvHead", kvHead);
  if (kvHead >= shape.kvHeads) throw new RangeError(`${fn}: kvHead ${kvHead} is outside 0..${shape.kvHeads - 1}`);
  requireCount(fn, "slot0", slot0);
  requireCount(fn, "n", n);
  if (slot0 + n > shape.slots) {
    throw new RangeError(
      `${fn}: slots [${slot0}, ${slot0 + n}) run past the cache's ${shape.slots} slots (split a wrapped ring range in two calls)`,
    );
  }
  if (!Number.isFinite(scaleFactor)) throw new RangeError(`${fn}: scaleFactor must be finite, got ${scaleFactor}`);
}

// ---------------------------------------------------------------------------------------------------
// Allocation helpers

export function allocKvCacheLayer(wasm: WasmKernels, shape: KvCacheShape): KvCacheLayer {
  checkShape("allocKvCacheLayer", shape);
  const { kvHeads, headDim, slots } = shape;
  const dataBytes = kvHeads * slots * headDim;
  const scaleBytes = kvHeads * slots * 4;
  return {
    kvHeads, headDim, slots,
    kData: wasm.alloc(dataBytes),
    kScales: wasm.alloc(scaleBytes),
    vData: wasm.alloc(dataBytes),
    vScales: wasm.alloc(scaleBytes),
  };
}

export function kvCacheLayerArrays(shape: KvCacheShape): KvCacheLayerArrays {
  checkShape("kvCacheLayerArrays", shape);
  const { kvHeads, headDim, slots } = shape;
  return {
    kvHeads, headDim, slots,
    kData: new Int8Array(kvHeads * slots * headDim),
    kScales: new Float32Array(kvHeads * slots),
    vData: new Int8Array(kvHeads * slots * headDim),
    vScales: new Float32Array(kvHeads * slots),
  };
}

/** An attention state in Wasm memory, already reset. */
export function allocAttentionState(wasm: WasmKernels, nq: number, headDim: number): number {
  const ptr = wasm.alloc(attentionStateBytes(nq, headDim));
  attentionReset(wasm, ptr, nq, headDim);
  return ptr;
}

// ---------------------------------------------------------------------------------------------------
// KV quantization

/** Twin of kvStore: writes one token's K or V (f32 [kvHeads][headDim]) into `slot`. */
export function kvStoreRef(cache: KvCacheLayerArrays, part: KvPart, src: Float32Array, slot: number): void {
  const fn = "kvStoreRef";
  checkShape(fn, cache);
  checkSlot(fn, cache, slot);
  const { kvHeads, headDim, slots } = cache;
  if (src.length < kvHeads * headDim) throw new RangeError(`${fn}: src holds ${src.length} floats, need ${kvHeads * headDim}`);
  const data = part === "k" ? cache.kData : cache.vData;
  const scales = part === "k" ? cache.kScales : cache.vScales;
  for (let h = 0; h < kvHeads; h++) {
    const x = h * headDim;
    let m = 0;
    for (let d = 0; d < headDim; d++) m = Math.max(m, Math.abs(src[x + d])); // Math.max keeps a NaN
    // A head holding NaN or infinity gets scale NaN and zeros: attention over it then gives NaN.
    const scale = m < Infinity ? Math.fround(m / KV_Q_MAX) : NaN;
    const row = h * slots + slot;
    scales[row] = scale;
    const dst = row * headDim;
    for (let d = 0; d < headDim; d++) {
      // f64 division of two f32 values, rounded once to f32, is the correctly rounded f32 quotient.
      data[dst + d] = !(scale > 0) ? 0 : Math.min(KV_Q_MAX, Math.max(-KV_Q_MAX, roundHalfEven(Math.fround(src[x + d] / scale))));
    }
  }
}

/** Wasm kv_store: quantizes the f32 [kvHeads][headDim] at `src` into `slot` of the K or V part. */
export function kvStore(wasm: WasmKernels, cache: KvCacheLayer, part: KvPart, src: number, slot: number): void {
  const fn = "kvStore";
  checkShape(fn, cache);
  checkSlot(fn, cache, slot);
  const { kvHeads, headDim, slots } = cache;
  const data = part === "k" ? cache.kData : cache.vData;
  const scales = part === "k" ? cache.kScales : cache.vScales;
  requireRegion(wasm, fn, "src", src, kvHeads * headDim * 4);
  requireRegion(wasm, fn, `${part}Data`, data, kvHeads * slots * headDim);
  requireRegion(wasm, fn, `${part}Scales`, scales, kvHeads * slots * 4);
  wasm.exports.kv_store(src, kvHeads, headDim, data, scales, slots, slot);
}

// ---------------------------------------------------------------------------------------------------
// Attention: reset, accumulate a range of slots, finalize

export function attentionResetRef(state: Float32Array, nq: number, headDim: number): void {
  const rec = attentionRecordFloats(headDim);
  if (state.length < nq * rec) throw new RangeError(`attentionResetRef: state holds ${state.length} floats, need ${nq * rec}`);
  state.fill(0, 0, nq * rec);
  for (let h = 0; h < nq; h++) state[h * rec] = -Infinity;
}

/**
 * Twin of attentionAccumulate: folds slots [slot0, slot0 + n) of KV head `kvHead` into the state of the nq
 * query heads q (f32 [nq][headDim], RoPE applied).
 */
export function attentionAccumulateRef(
  cache: KvCacheLayerArrays, kvHead: number, q: Float32Array, nq: number,
  slot0: number, n: number, scaleFactor: number, state: Float32Array,
): void {
  const fn = "attentionAccumulateRef";
  checkRange(fn, cache, kvHead, nq, slot0, n, scaleFactor);
  const { headDim, slots } = cache;
  const rec = attentionRecordFloats(headDim);
  if (q.length < nq * headDim) throw new RangeError(`${fn}: q holds ${q.length} floats, need ${nq * headDim}`);
  if (state.length < nq * rec) throw new RangeError(`${fn}: state holds ${state.length} floats, need ${nq * rec}`);
  if (n === 0) return;
  const f = Math.fround;
  const base = kvHead * slots;
  const scores = new Float64Array(n);
  const acc = new Float64Array(headDim);
  for (let h = 0; h < nq; h++) {
    const { q16, c } = quantizeQueryRef(q.subarray(h * headDim, (h + 1) * headDim), scaleFactor);
    let cmax = -Infinity;
    for (let j = 0; j < n; j++) {
      const row = base + slot0 + j;
      let dot = 0;
      for (let d = 0; d < headDim; d++) dot += q16[d] * cache.kData[row * headDim + d];
      scores[j] = f(f(dot) * f(cache.kScales[row] * c));
      cmax = Math.max(cmax, scores[j]);
    }
    const r = h * rec;
    const m = state[r];
    const mNew = Math.max(m, cmax);
    const alpha = m === -Infinity ? 0 : softmaxWeight(m - mNew);
    let sum = 0;
    for (let d = 0; d < headDim; d++) acc[d] = state[r + 4 + d] * alpha;
    for (let j = 0; j < n; j++) {
      const row = base + slot0 + j;
      const p = softmaxWeight(f(scores[j] - mNew));
      sum += p;
      const w = p * cache.vScales[row];
      for (let d = 0; d < headDim; d++) acc[d] += w * cache.vData[row * headDim + d];
    }
    state[r] = mNew;
    state[r + 1] = state[r + 1] * alpha + sum;
    for (let d = 0; d < headDim; d++) state[r + 4 + d] = acc[d];
  }
}

/**
 * One query head as the kernel scores it: q16 = roundHalfEven(q / qScale), qScale = f32(max|q| / QUERY_Q_MAX),
 * and c = f32(qScale · scaleFactor); q ≈ q16 · qScale. A zero head gives q16 = 0 and c = 0; NaN or infinity in
 * the head makes every score NaN (c is NaN or infinite and q16 = 0), as a float dot would have.
 */
export function quantizeQueryRef(q: Float32Array, scaleFactor: number): { q16: Int16Array; qScale: number; c: number } {
  const f = Math.fround;
  let m = 0;
  for (const x of q) m = Math.max(m, Math.abs(x)); // Math.max keeps a NaN
  const qScale = f(m / QUERY_Q_MAX);
  const q16 = new Int16Array(q.length);
  if (qScale > 0 && qScale < Infinity) {
    for (let d = 0; d < q.length; d++) q16[d] = Math.max(-32768, Math.min(32767, roundHalfEven(f(q[d] / qScale))));
  }
  return { q16, qScale, c: f(qScale * scaleFactor) };
}

/** Softmax weights below e^SOFTMAX_FLOOR are 0, as in the kernel (assembly/attention.ts: no subnormal products). */
function softmaxWeight(x: number): number {
  return x < SOFTMAX_FLOOR ? 0 : Math.exp(x);
}

/**
 * out (f32 [nq][headDim]) = acc / l per query head; a head that saw no key gives zeros, a head whose running
 * max is NaN (a NaN or infinite query or key) gives NaN.
 */
export function attentionFinalizeRef(state: Float32Array, nq: number, headDim: number, out: Float32Array): void {
  const rec = attentionRecordFloats(headDim);
  if (state.length < nq * rec || out.length < nq * headDim) throw new RangeError(`attentionFinalizeRef: arrays too short`);
  for (let h = 0; h < nq; h++) {
    const l = state[h * rec + 1];
    const bad = Number.isNaN(state[h * rec]);
    for (let d = 0; d < headDim; d++) out[h * headDim + d] = bad ? NaN : l > 0 ? state[h * rec + 4 + d] / l : 0;
  }
}

function checkState(wasm: WasmKernels, fn: string, state: number, nq: number, headDim: number): void {
  checkHeadDim(fn, headDim);
  requireCount(fn, "nq", nq, 1);
  requireRegion(wasm, fn, "state", state, attentionStateBytes(nq, headDim));
}

export function attentionReset(wasm: WasmKernels, state: number, nq: number, headDim: number): void {
  checkState(wasm, "attentionReset", state, nq, headDim);
  wasm.exports.attention_reset(state, nq, headDim);
}

/**
 * Twin of attentionRows: folds into `state` (f32 [rows·nq] records) the attention of `rows` query rows of KV
 * head `kvHead`, row r at position pos0 + r reading the last `window` positions (itself included) of the
 * cache (slot = position % slots), its nq query heads at q[r·qStride ..] (f32 [nq][headDim], RoPE applied).
 * Each row's visible slots (one run, or two where the ring wraps) go through attentionAccumulateRef.
 */
export function attentionRowsRef(
  cache: KvCacheLayerArrays, kvHead: number, q: Float32Array, qStride: number, rows: number, nq: number,
  pos0: number, window: number, scaleFactor: number, state: Float32Array,
): void {
  const fn = "attentionRowsRef";
  checkRows(fn, cache, kvHead, rows, nq, pos0, window, scaleFactor);
  const rec = attentionRecordFloats(cache.headDim);
  if (q.length < (rows - 1) * qStride + nq * cache.headDim) throw new RangeError(`${fn}: q holds ${q.length} floats, too few for ${rows} rows`);
  if (state.length < rows * nq * rec) throw new RangeError(`${fn}: state holds ${state.length} floats, need ${rows * nq * rec}`);
  for (let r = 0; r < rows; r++) {
    const qr = q.subarray(r * qStride, r * qStride + nq * cache.headDim);
    const st = state.subarray(r * nq * rec, (r + 1) * nq * rec);
    for (const run of visibleSlots(cache.slots, window, pos0 + r)) attentionAccumulateRef(cache, kvHead, qr, nq, run.slot0, run.n, scaleFactor, st);
  }
}

function checkRows(fn: string, cache: KvCacheShape, kvHead: number, rows: number, nq: number, pos0: number, window: number, scaleFactor: number): void {
  checkShape(fn, cache);
  requireCount(fn, "rows", rows, 1);
  requireCount(fn, "nq", nq, 1);
  requireCount(fn, "kvHead", kvHead);
  if (kvHead >= cache.kvHeads) throw new RangeError(`${fn}: kvHead ${kvHead} is outside 0..${cache.kvHeads - 1}`);
  requireCount(fn, "pos0", pos0);
  requireCount(fn, "window", window, 1);
  // The cache holds the last `slots` positions up to the last row's: every position a row reads must be among them.
  const span = pos0 + rows - windowStart(window, pos0);
  if (span > cache.slots) throw new RangeError(`${fn}: rows at positions ${pos0}..${pos0 + rows - 1} with window ${window} read ${span} positions, more than the cache's ${cache.slots} slots hold`);
  if (!Number.isFinite(scaleFactor)) throw new RangeError(`${fn}: scaleFactor must be finite, got ${scaleFactor}`);
}

/**
 * Wasm attention_rows: folds the attention of `rows` query rows of KV head `kvHead` into `state`
 * (attentionStateBytes(rows·nq, headDim) bytes, rows·nq records, reset before the first call): row r is
 * the token at position pos0 + r, reads the last `window` positions of the cache and has its nq query heads
 * at q + r·qStride (bytes; f32 [nq][headDim], RoPE applied). A row's result does not depend on the rows
 * computed with it (see assembly/attention.ts).
 */
export function attentionRows(
  wasm: WasmKernels, cache: KvCacheLayer, kvHead: number, q: number, qStride: number, rows: number, nq: number,
  pos0: number, window: number, scaleFactor: number, state: number,
): void {
  const fn = "attentionRows";
  checkRows(fn, cache, kvHead, rows, nq, pos0, window, scaleFactor);
  const { headDim, slots } = cache;
  checkState(wasm, fn, state, rows * nq, headDim);
  requireCount(fn, "qStride", qStride);
  requireRegion(wasm, fn, "q", q, (rows - 1) * qStride + nq * headDim * 4);
  requireRegion(wasm, fn, "kData", cache.kData, cache.kvHeads * slots * headDim);
  requireRegion(wasm, fn, "vData", cache.vData, cache.kvHeads * slots * headDim);
  requireRegion(wasm, fn, "kScales", cache.kScales, cache.kvHeads * slots * 4);
  requireRegion(wasm, fn, "vScales", cache.vScales, cache.kvHeads * slots * 4);
  const dataOff = kvHead * slots * headDim;
  const scaleOff = kvHead * slots * 4;
  wasm.exports.attention_rows(
    q, qStride, rows, nq, headDim, cache.kData + dataOff, cache.kScales + scaleOff, cache.vData + dataOff, cache.vScales + scaleOff,
    slots, pos0, window, scaleFactor, state,
  );
}

export function attentionFinalize(wasm: WasmKernels, state: number, nq: number, headDim: number, out: number): void {
  const fn = "attentionFinalize";
  checkState(wasm, fn, state, nq, headDim);
  requireRegion(wasm, fn, "out", out, nq * headDim * 4);
  wasm.exports.attention_finalize(state, nq, headDim, out);
}
