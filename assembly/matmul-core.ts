// Inner loops of the int4 x int8 kernels (assembly/matmul.ts). Only ever imported, never re-exported from
// index.ts: these helpers take v128 parameters, which cannot be wasm exports (AS112, probe pitfall 8).
//
// The byte layout is documented once, at Int4Matrix and Int8Activations in src/kernels/layout.ts.
// One (4-row block, group) of weights is 64 bytes: row i of the block at +16·i, byte j holding element j
// in its low nibble and element j+16 in its high nibble, each stored as q+8 in 0..15.

/** Bytes of packed nibbles per (4-row block, group of 32). */
export const BLOCK_GROUP_BYTES: usize = 64;

// Masks live in memory rather than as v128 constants: Binaryen folds a constant splat into v128.const and
// V8 then re-materialises it inside the loop (probe pitfall 10). A load at function entry stays in a register.
const MASKS: usize = memory.data<u8>([
  0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f,
  0x0f, 0x00, 0x0f, 0x00, 0x0f, 0x00, 0x0f, 0x00, 0x0f, 0x00, 0x0f, 0x00, 0x0f, 0x00, 0x0f, 0x00,
  0x01, 0x00, 0x01, 0x00, 0x01, 0x00, 0x01, 0x00, 0x01, 0x00, 0x01, 0x00, 0x01, 0x00, 0x01, 0x00,
], 16);

/** 0x0F in every byte (relaxed build) or 0x000F in every i16 lane (baseline build). */
// @ts-ignore: decorator
@inline export function nibbleMask(): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return v128.load(MASKS);
  return v128.load(MASKS, 16);
}

/**
 * Exact integer group sums, corrected for the +8 nibble offset and the activation zero point:
 * dot + (xcorr[g] - z · wsum[row][g]) = Σ q_w · (q_x - z), one i32 lane per row of the block.
 */
// @ts-ignore: decorator
@inline export function correct(dot: v128, wsum: usize, xcorr: i32, z: v128): v128 {
  const ws = v128.load16x4_s(wsum);
  return i32x4.add(dot, i32x4.sub(i32x4.splat(xcorr), i32x4.mul(ws, z)));
}

/** acc + f32(isum) · scales; one rounding for the product and one for the sum, in every build. */
// @ts-ignore: decorator
@inline export function accumulate(acc: v128, isum: v128, scales: usize): v128 {
  return f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(isum), v128.load(scales)));
}

// ---- relaxed build: i16x8.relaxed_dot_i8x16_i7x16_s on raw int8 activations ----------------------------

/** Per-row i16x8 partial dots for one row of a group: the unsigned nibble is the 7-bit operand. */
// @ts-ignore: decorator
@inline export function rowDotRelaxed(lo: v128, hi: v128, x0: v128, x1: v128): v128 {
  // |lane| <= 2·15·128 per dot, 7680 after the add: no i16 overflow.
  return i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(x0, lo), i16x8.relaxed_dot_i8x16_i7x16_s(x1, hi));
}

/**
 * Reduces four rows' i16x8 partials (|lane| <= 7680) to one i32x4 of row sums. Pairs are added while still
 * i16 (four partials <= 30720 fit), every shuffle is an unpack V8 emits as a single instruction, and the
 * last step keeps each row's two i16 halves side by side so one pmaddwd against ones widens and adds them.
 */
// @ts-ignore: decorator
@inline export function reduceRows16(d0: v128, d1: v128, d2: v128, d3: v128): v128 {
  const t01 = i16x8.add(i32x4.shuffle(d0, d1, 0, 4, 1, 5), i32x4.shuffle(d0, d1, 2, 6, 3, 7));
  const t23 = i16x8.add(i32x4.shuffle(d2, d3, 0, 4, 1, 5), i32x4.shuffle(d2, d3, 2, 6, 3, 7));
  const u = i16x8.add(i64x2.shuffle(t01, t23, 0, 2), i64x2.shuffle(t01, t23, 1, 3));
  return i32x4.dot_i16x8_s(u, v128.load(MASKS, 32));
}

/** Σ nibble · x for the 4 rows of one (block, group): i32x4, one lane per row. x0 = x[0..16), x1 = x[16..32). */
// @ts-ignore: decorator
@inline export function groupDotRelaxed(w: usize, x0: v128, x1: v128, m: v128): v128 {
  const v0 = v128.load(w);
  const v1 = v128.load(w, 16);
  const v2 = v128.load(w, 32);
  const v3 = v128.load(w, 48);
  // i16x8.shr_u + and: V8 lowers i8x16.shr_u to five instructions (probe pitfall 10).
  return reduceRows16(
    rowDotRelaxed(v128.and(v0, m), v128.and(i16x8.shr_u(v0, 4), m), x0, x1),
    rowDotRelaxed(v128.and(v1, m), v128.and(i16x8.shr_u(v1, 4), m), x0, x1),
    rowDotRelaxed(v128.and(v2, m), v128.and(i16x8.shr_u(v2, 4), m), x0, x1),
    rowDotRelaxed(v128.and(v3, m), v128.and(i16x8.shr_u(v3, 4), m), x0, x1),
  );
}

// ---- baseline build: i32x4.dot_i16x8_s on activations pre-widened to i16 -------------------------------
//
// Read as i16x8, lane k of a row's 16 bytes holds elements 2k (bits 0-3), 2k+16 (4-7), 2k+1 (8-11) and
// 2k+17 (12-15). Cutting nibbles straight into i16 lanes needs no extends when x is widened in the matching
// order: xw = x[0,2..14], x[16,18..30], x[1,3..15], x[17,19..31] (see prepare_act).

/** Σ nibble · x for one row of one group as i32x4 partials. */
// @ts-ignore: decorator
@inline export function rowDotBase(v: v128, xa: v128, xb: v128, xc: v128, xd: v128, m: v128): v128 {
  const a = v128.and(v, m);
  const b = v128.and(i16x8.shr_u(v, 4), m);
  const c = v128.and(i16x8.shr_u(v, 8), m);
  const d = i16x8.shr_u(v, 12);
  return i32x4.add(
    i32x4.add(i32x4.dot_i16x8_s(a, xa), i32x4.dot_i16x8_s(b, xb)),
    i32x4.add(i32x4.dot_i16x8_s(c, xc), i32x4.dot_i16x8_s(d, xd)),
  );
}

/** Transposes and adds four rows' i32x4 partials into one i32x4 of row sums. */
// @ts-ignore: decorator
@inline export function reduceRows32(e0: v128, e1: v128, e2: v128, e3: v128): v128 {
  const s01 = i32x4.add(i32x4.shuffle(e0, e1, 0, 4, 1, 5), i32x4.shuffle(e0, e1, 2, 6, 3, 7));
  const s23 = i32x4.add(i32x4.shuffle(e2, e3, 0, 4, 1, 5), i32x4.shuffle(e2, e3, 2, 6, 3, 7));
  return i32x4.add(i64x2.shuffle(s01, s23, 0, 2), i64x2.shuffle(s01, s23, 1, 3));
}

/** Σ nibble · x for the 4 rows of one (block, group), x pre-widened (xw, 64 bytes per group). */
// @ts-ignore: decorator
@inline export function groupDotBase(w: usize, xw: usize, m: v128): v128 {
  const xa = v128.load(xw);
  const xb = v128.load(xw, 16);
  const xc = v128.load(xw, 32);
  const xd = v128.load(xw, 48);
  return reduceRows32(
    rowDotBase(v128.load(w), xa, xb, xc, xd, m),
    rowDotBase(v128.load(w, 16), xa, xb, xc, xd, m),
    rowDotBase(v128.load(w, 32), xa, xb, xc, xd, m),
    rowDotBase(v128.load(w, 48), xa, xb, xc, xd, m),
  );
}

/** Σ nibble · x for one (block, group) in whichever form this build reads activations. */
// @ts-ignore: decorator
@inline export function groupDot(w: usize, xq: usize, xw: usize, m: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return groupDotRelaxed(w, v128.load(xq), v128.load(xq, 16), m);
  return groupDotBase(w, xw, m);
}

/** Stores the 4 outputs of a block, or only the first `n` when the block holds padding rows. */
// @ts-ignore: decorator
@inline export function storeRows(y: usize, v: v128, n: i32): void {
  if (n >= 4) {
    v128.store(y, v);
  } else {
    store<f32>(y, f32x4.extract_lane(v, 0));
    if (n > 1) store<f32>(y, f32x4.extract_lane(v, 1), 4);
    if (n > 2) store<f32>(y, f32x4.extract_lane(v, 2), 8);
  }
}

/**
 * Σ_g s[row][g] · Σ q_w · (q_x - z) for the 4 rows of one block and one token, accumulated over the groups
 * in order (the twin adds in the same order). One group per iteration: unrolled by two, V8 issued both
 * groups' loads and nibble cuts ahead of the dots and spilled most of them to the stack (the baseline
 * GEMV ran at 9.3 GB/s that way, 14.5 GB/s this way; relaxed about the same).
 */
// @ts-ignore: decorator
@inline export function blockDot(
  w: usize, s: usize, n: usize, groups: i32, xq: usize, xw: usize, xcorr: usize, z: v128, m: v128,
): v128 {
  let acc = f32x4.splat(0);
  for (let g = 0; g < groups; g++) {
    acc = accumulate(acc, correct(groupDot(w, xq, xw, m), n, load<i32>(xcorr), z), s);
    w += 64;
    s += 16;
    n += 8;
    xq += 32;
    xw += 64;
    xcorr += 4;
  }
  return acc;
}

// ---- GEMM: 4 tokens per pass over a block's weights, each unpacked group reused by all 4 -----------------

// @ts-ignore: decorator
@inline function stepRelaxed(
  acc: v128, l0: v128, h0: v128, l1: v128, h1: v128, l2: v128, h2: v128, l3: v128, h3: v128,
  xq: usize, n: usize, xcorr: i32, z: v128, s: usize,
): v128 {
  const x0 = v128.load(xq);
  const x1 = v128.load(xq, 16);
  const d = reduceRows16(
    rowDotRelaxed(l0, h0, x0, x1), rowDotRelaxed(l1, h1, x0, x1),
    rowDotRelaxed(l2, h2, x0, x1), rowDotRelaxed(l3, h3, x0, x1),
  );
  return accumulate(acc, correct(d, n, xcorr, z), s);
}

// @ts-ignore: decorator
@inline function dotUnpackedBase(a: v128, b: v128, c: v128, d: v128, xa: v128, xb: v128, xc: v128, xd: v128): v128 {
  return i32x4.add(
    i32x4.add(i32x4.dot_i16x8_s(a, xa), i32x4.dot_i16x8_s(b, xb)),
    i32x4.add(i32x4.dot_i16x8_s(c, xc), i32x4.dot_i16x8_s(d, xd)),
  );
}

// @ts-ignore: decorator
@inline function stepBase(
  acc: v128,
  a0: v128, b0: v128, c0: v128, d0: v128, a1: v128, b1: v128, c1: v128, d1: v128,
  a2: v128, b2: v128, c2: v128, d2: v128, a3: v128, b3: v128, c3: v128, d3: v128,
  xw: usize, n: usize, xcorr: i32, z: v128, s: usize,
): v128 {
  const xa = v128.load(xw);
  const xb = v128.load(xw, 16);
  const xc = v128.load(xw, 32);
  const xd = v128.load(xw, 48);
  const d = reduceRows32(
    dotUnpackedBase(a0, b0, c0, d0, xa, xb, xc, xd), dotUnpackedBase(a1, b1, c1, d1, xa, xb, xc, xd),
    dotUnpackedBase(a2, b2, c2, d2, xa, xb, xc, xd), dotUnpackedBase(a3, b3, c3, d3, xa, xb, xc, xd),
  );
  return accumulate(acc, correct(d, n, xcorr, z), s);
}

/** Loads what storeRows stored (lanes past `n` are 0), never reading beyond the block's real rows. */
// @ts-ignore: decorator
@inline function loadRows(y: usize, n: i32): v128 {
  if (n >= 4) return v128.load(y);
  let v = f32x4.splat(0);
  v = f32x4.replace_lane(v, 0, load<f32>(y));
  if (n > 1) v = f32x4.replace_lane(v, 1, load<f32>(y, 4));
  if (n > 2) v = f32x4.replace_lane(v, 2, load<f32>(y, 8));
  return v;
}

/**
 * One 4-row block times tokens t..t+3, over `groups` groups starting at the given pointers (a column chunk):
 * writes y[t+j][rows of the block] for j < 4. Chunks after the first continue from the unscaled sums left
 * in y, and only the last applies s_x, so chunking changes no rounding. Strides: xq cols bytes per token,
 * xw 2·cols, xcorr 4·(cols/32), y 4·ldy (ldy = the output's row stride in floats).
 */
export function blockTile4(
  w: usize, s: usize, n: usize, groups: i32, cols: i32, ldy: i32, rowsInBlock: i32,
  xq: usize, xw: usize, xcorr: usize, xs: usize, xz: usize, y: usize, first: bool, last: bool,
): void {
  const m = nibbleMask();
  const z0 = v128.load32_splat(xz);
  const z1 = v128.load32_splat(xz, 4);
  const z2 = v128.load32_splat(xz, 8);
  const z3 = v128.load32_splat(xz, 12);
  const qs = <usize>cols;
  const ws = <usize>cols << 1;
  const cs = <usize>(cols >>> 5) << 2;
  const ys = <usize>ldy << 2;
  let acc0 = f32x4.splat(0);
  let acc1 = f32x4.splat(0);
  let acc2 = f32x4.splat(0);
  let acc3 = f32x4.splat(0);
  if (!first) {
    acc0 = loadRows(y, rowsInBlock);
    acc1 = loadRows(y + ys, rowsInBlock);
    acc2 = loadRows(y + 2 * ys, rowsInBlock);
    acc3 = loadRows(y + 3 * ys, rowsInBlock);
  }
  for (let g = 0; g < groups; g++) {
    const v0 = v128.load(w);
    const v1 = v128.load(w, 16);
    const v2 = v128.load(w, 32);
    const v3 = v128.load(w, 48);
    if (ASC_FEATURE_RELAXED_SIMD) {
      const l0 = v128.and(v0, m);
      const h0 = v128.and(i16x8.shr_u(v0, 4), m);
      const l1 = v128.and(v1, m);
      const h1 = v128.and(i16x8.shr_u(v1, 4), m);
      const l2 = v128.and(v2, m);
      const h2 = v128.and(i16x8.shr_u(v2, 4), m);
      const l3 = v128.and(v3, m);
      const h3 = v128.and(i16x8.shr_u(v3, 4), m);
      acc0 = stepRelaxed(acc0, l0, h0, l1, h1, l2, h2, l3, h3, xq, n, load<i32>(xcorr), z0, s);
      acc1 = stepRelaxed(acc1, l0, h0, l1, h1, l2, h2, l3, h3, xq + qs, n, load<i32>(xcorr + cs), z1, s);
      acc2 = stepRelaxed(acc2, l0, h0, l1, h1, l2, h2, l3, h3, xq + 2 * qs, n, load<i32>(xcorr + 2 * cs), z2, s);
      acc3 = stepRelaxed(acc3, l0, h0, l1, h1, l2, h2, l3, h3, xq + 3 * qs, n, load<i32>(xcorr + 3 * cs), z3, s);
    } else {
      const a0 = v128.and(v0, m);
      const b0 = v128.and(i16x8.shr_u(v0, 4), m);
      const c0 = v128.and(i16x8.shr_u(v0, 8), m);
      const d0 = i16x8.shr_u(v0, 12);
      const a1 = v128.and(v1, m);
      const b1 = v128.and(i16x8.shr_u(v1, 4), m);
      const c1 = v128.and(i16x8.shr_u(v1, 8), m);
      const d1 = i16x8.shr_u(v1, 12);
      const a2 = v128.and(v2, m);
      const b2 = v128.and(i16x8.shr_u(v2, 4), m);
      const c2 = v128.and(i16x8.shr_u(v2, 8), m);
      const d2 = i16x8.shr_u(v2, 12);
      const a3 = v128.and(v3, m);
      const b3 = v128.and(i16x8.shr_u(v3, 4), m);
      const c3 = v128.and(i16x8.shr_u(v3, 8), m);
      const d3 = i16x8.shr_u(v3, 12);
      acc0 = stepBase(acc0, a0, b0, c0, d0, a1, b1, c1, d1, a2, b2, c2, d2, a3, b3, c3, d3,
        xw, n, load<i32>(xcorr), z0, s);
      acc1 = stepBase(acc1, a0, b0, c0, d0, a1, b1, c1, d1, a2, b2, c2, d2, a3, b3, c3, d3,
        xw + ws, n, load<i32>(xcorr + cs), z1, s);
      acc2 = stepBase(acc2, a0, b0, c0, d0, a1, b1, c1, d1, a2, b2, c2, d2, a3, b3, c3, d3,
        xw + 2 * ws, n, load<i32>(xcorr + 2 * cs), z2, s);
      acc3 = stepBase(acc3, a0, b0, c0, d0, a1, b1, c1, d1, a2, b2, c2, d2, a3, b3, c3, d3,
        xw + 3 * ws, n, load<i32>(xcorr + 3 * cs), z3, s);
    }
    w += 64;
    s += 16;
    n += 8;
    xq += 32;
    xw += 64;
    xcorr += 4;
  }
  if (!last) {
    storeRows(y, acc0, rowsInBlock);
    storeRows(y + ys, acc1, rowsInBlock);
    storeRows(y + 2 * ys, acc2, rowsInBlock);
    storeRows(y + 3 * ys, acc3, rowsInBlock);
    return;
  }
  storeRows(y, f32x4.mul(acc0, v128.load32_splat(xs)), rowsInBlock);
  storeRows(y + ys, f32x4.mul(acc1, v128.load32_splat(xs, 4)), rowsInBlock);
  storeRows(y + 2 * ys, f32x4.mul(acc2, v128.load32_splat(xs, 8)), rowsInBlock);
  storeRows(y + 3 * ys, f32x4.mul(acc3, v128.load32_splat(xs, 12)), rowsInBlock);
}
