// Attention over the int8 KV cache, and the quantizer that fills it. Layouts (cache, state) are
// documented once, at the types in src/kernels/attention.ts; this file only follows them.
import { madd, hsum, hmax, exp4 } from "./simd-util";
import { ATTENTION_CHUNK, KV_Q_MAX, QUERY_Q_MAX, SOFTMAX_FLOOR as SOFTMAX_FLOOR_I32 } from "../src/kernels/numerics";

/** Keys scored per pass; the state's scratch (sized by attentionStateFloats) holds one such row of scores per query head. */
const CHUNK: i32 = ATTENTION_CHUNK;
/** The int8 clamp of the cache, as f32. */
const KV_LIM: f32 = <f32>KV_Q_MAX;

/**
 * Quantizes one token's K (or V), f32 [kvHeads][headDim], into cache slot `slot`: per KV head,
 * scale = max|x| / 127 and q = clamp(roundHalfEven(x / scale), -127, 127); a zero head stores scale 0
 * and zeros, and a head holding NaN or infinity stores scale NaN and zeros, so attention over it gives NaN
 * instead of a finite answer. data is [kvHeads][slots][headDim] i8, scales [kvHeads][slots] f32.
 * headDim % 16 == 0.
 */
export function kv_store(
  src: usize, kvHeads: i32, headDim: i32, data: usize, scales: usize, slots: i32, slot: i32,
): void {
  const headBytes = <usize>headDim << 2;
  const lim = f32x4.splat(KV_LIM);
  const nlim = f32x4.splat(-KV_LIM);
  for (let h = 0; h < kvHeads; h++) {
    const x = src + <usize>h * headBytes;
    const row = <usize>h * <usize>slots + <usize>slot;
    const dst = data + row * <usize>headDim;
    const mx = maxAbs(x, headBytes);
    const scale: f32 = mx < Infinity ? mx / KV_LIM : NaN;
    store<f32>(scales + (row << 2), scale);
    if (!(scale > 0)) {
      for (let d = 0; d < headDim; d += 16) v128.store(dst + <usize>d, i32x4.splat(0));
      continue;
    }
    const sv = f32x4.splat(scale);
    for (let d = 0; d < headDim; d += 16) {
      const p = x + (<usize>d << 2);
      const q0 = quantize4(v128.load(p), sv, lim, nlim);
      const q1 = quantize4(v128.load(p, 16), sv, lim, nlim);
      const q2 = quantize4(v128.load(p, 32), sv, lim, nlim);
      const q3 = quantize4(v128.load(p, 48), sv, lim, nlim);
      v128.store(dst + <usize>d, i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(q0, q1), i16x8.narrow_i32x4_s(q2, q3)));
    }
  }
}

/** max|x| over `bytes` bytes of f32 at x (a multiple of 16); NaN if any value is NaN (pmax would drop it). */
// @ts-ignore: decorator
@inline function maxAbs(x: usize, bytes: usize): f32 {
  let m = f32x4.splat(0);
  for (let d: usize = 0; d < bytes; d += 16) m = f32x4.max(m, f32x4.abs(v128.load(x + d)));
  const s = f32x4.max(m, v128.shuffle<f32>(m, m, 2, 3, 0, 1));
  return max<f32>(f32x4.extract_lane(s, 0), f32x4.extract_lane(s, 1));
}

/** True if any of the n f32 at p is NaN. */
function anyNaN(p: usize, n: i32): bool {
  const end = p + (<usize>n << 2);
  const quadEnd = p + (<usize>(n & ~3) << 2);
  let bad = i32x4.splat(0);
  let q = p;
  for (; q < quadEnd; q += 16) {
    const v = v128.load(q);
    bad = v128.or(bad, f32x4.ne(v, v));
  }
  let any = v128.any_true(bad);
  for (; q < end; q += 4) any = any || isNaN(load<f32>(q));
  return any;
}

// @ts-ignore: decorator
@inline function quantize4(x: v128, scale: v128, lim: v128, nlim: v128): v128 {
  const r = f32x4.nearest(f32x4.div(x, scale));
  return i32x4.trunc_sat_f32x4_s(f32x4.pmin(f32x4.pmax(r, nlim), lim));
}

/** Floats of one query head's record in the state: m, l, two pad lanes, acc[headDim]. */
// @ts-ignore: decorator
@inline function recordFloats(headDim: i32): i32 {
  return 4 + headDim;
}

/** Sets every query head's record to the empty state (m = -inf, l = 0, acc = 0). */
export function attention_reset(state: usize, nq: i32, headDim: i32): void {
  const rec = <usize>recordFloats(headDim) << 2;
  for (let h = 0; h < nq; h++) {
    const p = state + <usize>h * rec;
    store<f32>(p, -Infinity);
    store<f32>(p, 0, 4);
    store<f32>(p, 0, 8);
    store<f32>(p, 0, 12);
    for (let d: usize = 16; d < rec; d += 16) v128.store(p + d, f32x4.splat(0));
  }
}

/**
 * out[h] = acc[h] / l[h] for the nq query heads, out f32 [nq][headDim]; a head that saw no key gives 0, a
 * head marked bad (m = NaN: a NaN or infinite query or key) gives NaN.
 */
export function attention_finalize(state: usize, nq: i32, headDim: i32, out: usize): void {
  const rec = <usize>recordFloats(headDim) << 2;
  const headBytes = <usize>headDim << 2;
  for (let h = 0; h < nq; h++) {
    const p = state + <usize>h * rec;
    const o = out + <usize>h * headBytes;
    const l = load<f32>(p, 4);
    if (isNaN(load<f32>(p))) {
      for (let d: usize = 0; d < headBytes; d += 16) v128.store(o + d, f32x4.splat(NaN));
    } else if (l > 0) {
      const lv = f32x4.splat(l);
      for (let d: usize = 0; d < headBytes; d += 16) v128.store(o + d, f32x4.div(v128.load(p + 16 + d), lv));
    } else {
      for (let d: usize = 0; d < headBytes; d += 16) v128.store(o + d, f32x4.splat(0));
    }
  }
}

/**
 * Folds the keys and values of ONE KV head into the online-softmax state of `rows` query rows: row r is
 * the token at position pos0 + r and sees positions [max(0, pos0 + r - window + 1), pos0 + r], at slot
 * position % slots. Its nq query heads (one GQA group, f32 [nq][headDim]) are at q + r·qStride; the state
 * holds rows·nq records, row r's heads at record r·nq + h (attentionStateFloats(rows·nq, headDim)).
 *
 * Every row walks its positions in pieces cut at multiples of CHUNK and of `slots` (where a ring wraps),
 * the same pieces whichever rows it is computed with: each piece updates each head as flash attention does
 * (scores s = (q16 · k_j) · (kScale_j · c), then m, l and acc), with each query head first quantized to i16
 * (quantizeQuery: q ≈ q16 · qScale, c = qScale · scaleFactor), so the dot with the int8 key is an exact
 * integer. The rows share the passes over a piece's keys and values (the tile of prefill): their scores
 * are computed over the piece's whole span, a row's softmax only over its own part of it, and its value
 * weights are 0 elsewhere, which adds exact zeros. So a row's result is bit-identical to the one it gets
 * alone (decode), and to any other tiling of the rows. Each piece's keys are widened to i16 and its values
 * converted to f32 once, for all the heads; then each head scores 4 keys at a time (scoreHead) and the heads
 * sum values in pairs (valuePair).
 * k and v point at this head's [slots][headDim] i8 block, kScales / vScales at its [slots] f32 row.
 */
export function attention_rows(
  q: usize, qStride: i32, rows: i32, nq: i32, headDim: i32,
  k: usize, kScales: usize, v: usize, vScales: usize, slots: i32,
  pos0: i32, window: i32, scaleFactor: f32, state: usize,
): void {
  const heads = rows * nq;
  const rec = <usize>recordFloats(headDim) << 2;
  const rowBytes = <usize>CHUNK << 2;
  const scores = state + <usize>heads * rec;
  // For an odd head out of the value pairs (valuePair): an all-zero weight row and an accumulator nobody
  // reads, so it never aliases a real head.
  const zeroWeights = scores + <usize>heads * rowBytes;
  const sinkAcc = zeroWeights + rowBytes;
  const qScaled = sinkAcc + (<usize>headDim << 2);
  const q16 = qScaled + (<usize>((heads + 3) & ~3) << 2);
  const q16Bytes = <usize>headDim << 1;
  // The piece's keys widened to i16 and its values as f32, converted once per piece for all the heads.
  const kWide = q16 + <usize>heads * q16Bytes;
  const vFloat = kWide + <usize>CHUNK * q16Bytes;
  for (let j: usize = 0; j < rowBytes; j += 16) v128.store(zeroWeights + j, f32x4.splat(0));
  for (let r = 0; r < rows; r++) {
    quantizeQuery(q + <usize>r * <usize>qStride, nq, headDim, scaleFactor, q16 + <usize>(r * nq) * q16Bytes, qScaled + (<usize>(r * nq) << 2));
  }
  // A head is marked bad (m = NaN) for good when its query held NaN or infinity (c not finite), and every
  // head of a row when a key it reads did (a NaN key scale, see kv_store): the output is then NaN.
  for (let h = 0; h < heads; h++) {
    if (!(abs<f32>(load<f32>(qScaled + (<usize>h << 2))) < Infinity)) store<f32>(state + <usize>h * rec, NaN);
  }

  const last = pos0 + rows - 1;
  let x = max(0, pos0 - window + 1);
  while (x <= last) {
    const xEnd = min(last + 1, min((x / CHUNK + 1) * CHUNK, (x / slots + 1) * slots));
    // Rows reading part of [x, xEnd): their positions reach x, their windows start before xEnd.
    const rA = max(0, x - pos0);
    const rB = min(rows - 1, xEnd + window - 2 - pos0);
    if (rA <= rB) {
      const a = max(x, pos0 + rA - window + 1);
      const b = min(xEnd, pos0 + rB + 1);
      const s0 = <usize>(a % slots);
      const n = b - a;
      const kc = k + s0 * <usize>headDim;
      const vc = v + s0 * <usize>headDim;
      const hA = rA * nq;
      const hB = (rB + 1) * nq;
      widenKeys(kc, n, headDim, kWide);
      for (let h = hA; h < hB; h++) {
        scoreHead(q16 + <usize>h * q16Bytes, load<f32>(qScaled + (<usize>h << 2)), kWide, kScales + (s0 << 2), n, headDim, scores + <usize>h * rowBytes);
      }
      for (let r = rA; r <= rB; r++) {
        const ar = max(a, pos0 + r - window + 1);
        const br = min(b, pos0 + r + 1);
        const off = <usize>(ar - a) << 2;
        const badKeys = anyNaN(kScales + (s0 << 2) + off, br - ar);
        for (let h = r * nq; h < (r + 1) * nq; h++) {
          const row = scores + <usize>h * rowBytes;
          if (badKeys) store<f32>(state + <usize>h * rec, NaN);
          softmaxUpdate(state + <usize>h * rec, row + off, vScales + (s0 << 2) + off, br - ar, headDim);
          // Outside its own part the row's value weights are 0.
          for (let j: usize = 0; j < off; j += 4) store<f32>(row + j, 0);
          for (let j = <usize>(br - a) << 2; j < <usize>n << 2; j += 4) store<f32>(row + j, 0);
        }
      }
      floatValues(vc, n, headDim, vFloat);
      for (let h = hA; h < hB; h += 2) {
        const wA = scores + <usize>h * rowBytes;
        const accA = state + <usize>h * rec + 16;
        // An odd head out pairs with the all-zero weight row and writes the sink accumulator.
        const wB = h + 1 < hB ? wA + rowBytes : zeroWeights;
        const accB = h + 1 < hB ? accA + rec : sinkAcc;
        valuePair(wA, wB, accA, accB, vFloat, n, headDim);
      }
    }
    x = xEnd;
  }
}

/** Largest |x| an i16 query lane holds: the integer dot with a key stays below headDim·32767·127 < 2^31 for
 * headDim <= 512 (MAX_HEAD_DIM in src/kernels/attention.ts). */
const Q16_MAX: f32 = <f32>QUERY_Q_MAX;

/**
 * Quantizes each query head of q (f32 [nq][headDim]) to i16: qScale = max|q| / 32767, q16 =
 * roundHalfEven(q / qScale) (|q16| <= 32767), and c = qScale · scaleFactor per head (f32 [nq]). A zero head
 * gets q16 = 0 and c = 0. NaN or infinity in a head leaves q16 = 0 with c NaN or infinite, which
 * attention_rows turns into a NaN output for that head.
 */
// @ts-ignore: decorator
@inline function quantizeQuery(q: usize, nq: i32, headDim: i32, scaleFactor: f32, q16: usize, c: usize): void {
  const headBytes = <usize>headDim << 2;
  for (let h = 0; h < nq; h++) {
    const x = q + <usize>h * headBytes;
    const dst = q16 + <usize>h * (<usize>headDim << 1);
    const qScale: f32 = maxAbs(x, headBytes) / Q16_MAX;
    store<f32>(c + (<usize>h << 2), qScale * scaleFactor);
    if (!(qScale > 0 && qScale < Infinity)) {
      for (let d = 0; d < headDim; d += 8) v128.store(dst + (<usize>d << 1), i32x4.splat(0));
      continue;
    }
    const sv = f32x4.splat(qScale);
    for (let d = 0; d < headDim; d += 8) {
      const p = x + (<usize>d << 2);
      const a = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.div(v128.load(p), sv)));
      const b = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.div(v128.load(p, 16), sv)));
      v128.store(dst + (<usize>d << 1), i16x8.narrow_i32x4_s(a, b));
    }
  }
}

/** The cn int8 keys at k ([cn][headDim]) widened to i16 at out ([cn][headDim]). */
function widenKeys(k: usize, cn: i32, headDim: i32, out: usize): void {
  const end = k + <usize>cn * <usize>headDim;
  for (let p = k; p < end; p += 16) {
    const kv = v128.load(p);
    v128.store(out, i16x8.extend_low_i8x16_s(kv));
    v128.store(out, i16x8.extend_high_i8x16_s(kv), 16);
    out += 32;
  }
}

/**
 * Scores of keys [0, cn) of the piece for one query head (q16 at q, c = qScale · scaleFactor), written to
 * out: f32(f32(q16 · k) · f32(kScale · c)), the dot exact in i32 (pmaddwd against the widened keys kw). Four
 * keys at a time share each load of the query and leave their four dots in one vector's lanes.
 */
function scoreHead(q: usize, c: f32, kw: usize, kScales: usize, cn: i32, headDim: i32, out: usize): void {
  const rowBytes = <usize>headDim << 1;
  const cv = f32x4.splat(c);
  const quads = cn & ~3;
  let j = 0;
  for (; j < quads; j += 4) {
    let a0 = i32x4.splat(0);
    let a1 = i32x4.splat(0);
    let a2 = i32x4.splat(0);
    let a3 = i32x4.splat(0);
    let pq = q;
    let p0 = kw;
    const qEnd = q + rowBytes;
    while (pq < qEnd) {
      const lo = v128.load(pq);
      const hi = v128.load(pq, 16);
      a0 = i32x4.add(a0, i32x4.add(i32x4.dot_i16x8_s(lo, v128.load(p0)), i32x4.dot_i16x8_s(hi, v128.load(p0, 16))));
      a1 = i32x4.add(a1, i32x4.add(i32x4.dot_i16x8_s(lo, v128.load(p0 + rowBytes)), i32x4.dot_i16x8_s(hi, v128.load(p0 + rowBytes, 16))));
      a2 = i32x4.add(a2, i32x4.add(i32x4.dot_i16x8_s(lo, v128.load(p0 + 2 * rowBytes)), i32x4.dot_i16x8_s(hi, v128.load(p0 + 2 * rowBytes, 16))));
      a3 = i32x4.add(a3, i32x4.add(i32x4.dot_i16x8_s(lo, v128.load(p0 + 3 * rowBytes)), i32x4.dot_i16x8_s(hi, v128.load(p0 + 3 * rowBytes, 16))));
      pq += 32;
      p0 += 32;
    }
    // Lane i: the sum of a_i's four lanes (exact: the callers' sums fit in i32).
    const t01 = i32x4.add(v128.shuffle<i32>(a0, a1, 0, 4, 1, 5), v128.shuffle<i32>(a0, a1, 2, 6, 3, 7));
    const t23 = i32x4.add(v128.shuffle<i32>(a2, a3, 0, 4, 1, 5), v128.shuffle<i32>(a2, a3, 2, 6, 3, 7));
    const dots = i32x4.add(v128.shuffle<i32>(t01, t23, 0, 1, 4, 5), v128.shuffle<i32>(t01, t23, 2, 3, 6, 7));
    const o = <usize>j << 2;
    v128.store(out + o, f32x4.mul(f32x4.convert_i32x4_s(dots), f32x4.mul(v128.load(kScales + o), cv)));
    kw += rowBytes << 2;
  }
  for (; j < cn; j++) {
    let a = i32x4.splat(0);
    for (let d: usize = 0; d < rowBytes; d += 32) {
      a = i32x4.add(a, i32x4.add(i32x4.dot_i16x8_s(v128.load(q + d), v128.load(kw + d)), i32x4.dot_i16x8_s(v128.load(q + d, 16), v128.load(kw + d, 16))));
    }
    store<f32>(out + (<usize>j << 2), <f32>isum(a) * (load<f32>(kScales + (<usize>j << 2)) * c));
    kw += rowBytes;
  }
}

/** Sum of the four i32 lanes (exact: the callers' sums fit in i32). */
// @ts-ignore: decorator
@inline function isum(v: v128): i32 {
  const s = i32x4.add(v, v128.shuffle<i32>(v, v, 2, 3, 0, 1));
  return i32x4.extract_lane(s, 0) + i32x4.extract_lane(s, 1);
}

/**
 * Softmax weights e^(s - m) below e^-64 are flushed to 0. The exponential itself clamps at -87 and returns
 * ~1.6e-38 there, and that weight times a small V scale is a subnormal float: x86 handles subnormals in
 * microcode, and a decode step over a cache whose scores spread by more than ~87 ran 20-40% slower
 * (measured with random cache contents). A weight below e^-64 (1.6e-28) changes no output in f32.
 */
const SOFTMAX_FLOOR: f32 = <f32>SOFTMAX_FLOOR_I32;

/** e^x, or 0 where x < SOFTMAX_FLOOR (see above). */
// @ts-ignore: decorator
@inline function softmaxWeight4(x: v128): v128 {
  return v128.and(exp4(x), f32x4.ge(x, f32x4.splat(SOFTMAX_FLOOR)));
}

/**
 * One head's online-softmax step over a chunk: m' = max(m, max s), rescale l and acc by e^(m - m'),
 * add Σ e^(s - m'), and overwrite the score row with the value weights e^(s - m') · vScale_j.
 */
// @ts-ignore: decorator
@inline function softmaxUpdate(rec: usize, row: usize, vScales: usize, cn: i32, headDim: i32): void {
  const end = <usize>cn << 2;
  const quadEnd = <usize>(cn & ~3) << 2;
  if (isNaN(load<f32>(rec))) {
    // A bad head (see attention_rows) stays NaN; its value weights are zeroed so nothing is summed for it.
    for (let j: usize = 0; j < end; j += 4) store<f32>(row + j, 0);
    return;
  }
  let mv = f32x4.splat(-Infinity);
  let j: usize = 0;
  for (; j < quadEnd; j += 16) mv = f32x4.pmax(mv, v128.load(row + j));
  let cmax = hmax(mv);
  for (; j < end; j += 4) cmax = max<f32>(cmax, load<f32>(row + j));

  const m = load<f32>(rec);
  const mNew = max<f32>(m, cmax);
  const mSplat = f32x4.splat(mNew);
  let sv = f32x4.splat(0);
  j = 0;
  for (; j < quadEnd; j += 16) {
    const p = softmaxWeight4(f32x4.sub(v128.load(row + j), mSplat));
    sv = f32x4.add(sv, p);
    v128.store(row + j, f32x4.mul(p, v128.load(vScales + j)));
  }
  let sum = hsum(sv);
  for (; j < end; j += 4) {
    const p = f32x4.extract_lane(softmaxWeight4(f32x4.splat(load<f32>(row + j) - mNew)), 0);
    sum += p;
    store<f32>(row + j, p * load<f32>(vScales + j));
  }

  // An empty record (m = -inf) has l = 0 and acc = 0: nothing to rescale, and e^(-inf) must be exactly 0.
  if (m == -Infinity) {
    store<f32>(rec, mNew);
    store<f32>(rec, sum, 4);
    return;
  }
  const alpha = f32x4.extract_lane(softmaxWeight4(f32x4.splat(m - mNew)), 0);
  store<f32>(rec, mNew);
  store<f32>(rec, load<f32>(rec, 4) * alpha + sum, 4);
  if (alpha != 1) {
    const av = f32x4.splat(alpha);
    const accEnd = <usize>(headDim + 4) << 2;
    for (let d: usize = 16; d < accEnd; d += 16) v128.store(rec + d, f32x4.mul(v128.load(rec + d), av));
  }
}

/** The cn int8 values at v ([cn][headDim]) as f32 at out ([cn][headDim]), exactly. */
function floatValues(v: usize, cn: i32, headDim: i32, out: usize): void {
  const end = v + <usize>cn * <usize>headDim;
  for (let p = v; p < end; p += 8) {
    const x = v128.load8x8_s(p);
    v128.store(out, f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(x)));
    v128.store(out, f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(x)), 16);
    out += 32;
  }
}

/**
 * accA += Σ_j wA[j] · v_j and accB += Σ_j wB[j] · v_j over the piece's cn keys, v_j the f32 values at vf
 * ([cn][headDim], floatValues): two query heads, 16 dims at a time. Each lane's sum runs over the keys in
 * order from 0 and is then added to the record, as the twin does. Eight chains of multiply-adds keep both
 * FMA ports busy without spilling (14 live vectors); five heads at 8 dims at a time needed 17 and spilled two
 * accumulators to the stack on every key.
 */
function valuePair(wA: usize, wB: usize, accA: usize, accB: usize, vf: usize, cn: i32, headDim: i32): void {
  const stride = <usize>headDim << 2;
  const wEnd = wA + (<usize>cn << 2);
  for (let d: usize = 0; d < stride; d += 64) {
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
    let p = vf + d;
    let pa = wA;
    let pb = wB;
    while (pa < wEnd) {
      const x0 = v128.load(p);
      const x1 = v128.load(p, 16);
      const x2 = v128.load(p, 32);
      const x3 = v128.load(p, 48);
      const wa = v128.load32_splat(pa);
      const wb = v128.load32_splat(pb);
      a0 = madd(wa, x0, a0);
      a1 = madd(wa, x1, a1);
      a2 = madd(wa, x2, a2);
      a3 = madd(wa, x3, a3);
      b0 = madd(wb, x0, b0);
      b1 = madd(wb, x1, b1);
      b2 = madd(wb, x2, b2);
      b3 = madd(wb, x3, b3);
      p += stride;
      pa += 4;
      pb += 4;
    }
    addTo(accA + d, a0, a1);
    addTo(accA + d + 32, a2, a3);
    addTo(accB + d, b0, b1);
    addTo(accB + d + 32, b2, b3);
  }
}

// @ts-ignore: decorator
@inline function addTo(p: usize, a: v128, b: v128): void {
  v128.store(p, f32x4.add(v128.load(p), a));
  v128.store(p, f32x4.add(v128.load(p, 16), b), 16);
}
