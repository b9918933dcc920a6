// il4 x i8t matrix kernels (the engine's own int4 recipe times per-token int8 activations): GEMV for decode,
// GEMM for prefill, and per-token activation quantization. Raw pointers in, nothing allocated. Layouts: il4
// and Int8Activations in src/kernels/layout.ts; scalar twins and typed wrappers: src/kernels/matmul.ts.
//
// Both builds compute y[t][r] = s_x[t] · (Σ_g s_w[r][g] · Σ_{i∈g} q_w[r][i] · q_x[t][i] - z[t] · wsum[r]) with
// exact i32 group sums and the same f32 operations in the same order, so they agree bit for bit
// (wsum[r] = Σ_g s_w[r][g] · Σ_{i∈g} q_w[r][i], the row's dequantized weight sum, computed at load).
import { BLOCK_GROUP_BYTES, BLOCK_GROUP_SCALE_BYTES, blockDot, blockTile4, finish, nibbleMask, storeRows } from "./matmul-core";
import { ROW_SUM_BLOCK_BYTES, TILE_GROUP_BYTES } from "../src/kernels/strides";
export { quantize_activations, prepare_activations } from "./quant-act";

/** 1 in the relaxed-SIMD build, 0 in the baseline SIMD128 build. */
export function kernel_variant(): i32 {
  return ASC_FEATURE_RELAXED_SIMD ? 1 : 0;
}

/**
 * y[r] for one token, r < rows. wq/ws/wsum: the matrix's nibble, scale and row-sum regions;
 * xq/xw/xcorr/xs/xz: the token's int8 values, widened copy, group corrections, scale and zero point.
 */
export function gemv_il4_i8t(
  wq: usize, ws: usize, wsum: usize, rows: i32, cols: i32,
  xq: usize, xw: usize, xcorr: usize, xs: usize, xz: usize, y: usize,
): void {
  const m = nibbleMask();
  const groups = cols >>> 5;
  const blocks = (rows + 3) >>> 2;
  for (let b = 0; b < blocks; b++) {
    const acc = blockDot(wq, ws, groups, xq, xw, xcorr, m);
    storeRows(y + (<usize>b << 4), finish(acc, wsum, xs, xz), rows - (b << 2));
    wq += <usize>groups * BLOCK_GROUP_BYTES;
    ws += <usize>groups * BLOCK_GROUP_SCALE_BYTES;
    wsum += ROW_SUM_BLOCK_BYTES;
  }
}

/** Groups per column chunk of gemm: 4 tokens' activations of one chunk (9 KiB of tile, 16 KiB widened) stay in L1. */
const CHUNK_GROUPS = 64;

/**
 * Y[t][r] for tokens t < tokens, stored at y + 4·(t·ldy + r), ldy >= rows: ldy = rows for a whole product;
 * a thread computing rows [r0, r0 + n) of a larger one passes the sub-matrix's pointers, rows = n and either
 * the full product's row count (writing in place) or n (a private scratch block). Walks the matrix one 4-row
 * block at a time (its weights stay in L2); within a block, one column chunk at a time, 4 tokens at a time,
 * so each unpacked group serves 4 tokens and their activations stay in L1. Leftover tokens go one by one
 * over the whole row. Token 0 must start a tile of the activations (prepare_activations writes the relaxed
 * build's tiles from the first token it prepares; gemmIl4I8t in src/kernels/matmul.ts keeps to that).
 */
export function gemm_il4_i8t(
  wq: usize, ws: usize, wsum: usize, rows: i32, cols: i32, tokens: i32,
  xq: usize, xw: usize, xcorr: usize, xs: usize, xz: usize, y: usize, ldy: i32,
): void {
  const m = nibbleMask();
  const groups = cols >>> 5;
  const blocks = (rows + 3) >>> 2;
  const ys = <usize>ldy << 2;
  // Where group g of a 4-token tile starts, from the wide row of the tile's first token.
  const wideGroupBytes: usize = ASC_FEATURE_RELAXED_SIMD ? TILE_GROUP_BYTES : 64;
  for (let b = 0; b < blocks; b++) {
    const rowsInBlock = rows - (b << 2);
    const yb = y + (<usize>b << 4);
    const tiled = tokens & ~3;
    for (let g0 = 0; g0 < groups; g0 += CHUNK_GROUPS) {
      const n = min(CHUNK_GROUPS, groups - g0);
      const g = <usize>g0;
      for (let t = 0; t < tiled; t += 4) {
        blockTile4(
          wq + g * BLOCK_GROUP_BYTES, ws + g * BLOCK_GROUP_SCALE_BYTES, wsum, n, cols, ldy, rowsInBlock,
          xw + (<usize>t * cols << 1) + g * wideGroupBytes, xcorr + (<usize>t * groups << 2) + (g << 2),
          xs + (<usize>t << 2), xz + (<usize>t << 2), yb + <usize>t * ys, g0 == 0, g0 + n >= groups,
        );
      }
    }
    for (let t = tiled; t < tokens; t++) {
      const acc = blockDot(
        wq, ws, groups, xq + <usize>t * cols, xw + (<usize>t * cols << 1), xcorr + (<usize>t * groups << 2), m,
      );
      storeRows(yb + <usize>t * ys, finish(acc, wsum, xs + (<usize>t << 2), xz + (<usize>t << 2)), rowsInBlock);
    }
    wq += <usize>groups * BLOCK_GROUP_BYTES;
    ws += <usize>groups * BLOCK_GROUP_SCALE_BYTES;
    wsum += ROW_SUM_BLOCK_BYTES;
  }
}

/**
 * Reads `bytes` (a multiple of 64) from ptr with v128 loads into 4 independent accumulators: the memory
 * roofline the GEMV figures are compared with. Returns a value derived from the data so nothing is elided.
 */
export function read_bandwidth(ptr: usize, bytes: usize): i32 {
  let a = i32x4.splat(0);
  let b = i32x4.splat(0);
  let c = i32x4.splat(0);
  let d = i32x4.splat(0);
  const end = ptr + bytes;
  for (let p = ptr; p < end; p += 64) {
    a = v128.xor(a, v128.load(p));
    b = v128.xor(b, v128.load(p, 16));
    c = v128.xor(c, v128.load(p, 32));
    d = v128.xor(d, v128.load(p, 48));
  }
  const r = v128.xor(v128.xor(a, b), v128.xor(c, d));
  return i32x4.extract_lane(r, 0) ^ i32x4.extract_lane(r, 1) ^ i32x4.extract_lane(r, 2) ^ i32x4.extract_lane(r, 3);
}

/**
 * Copies `count` rows of `rowBytes` bytes from src (stride srcStride) to dst (stride dstStride): a worker
 * thread commits the block it computed in private scratch (commitChunk in src/threads/chunks.ts).
 */
export function copy_rows(dst: usize, dstStride: i32, src: usize, srcStride: i32, rowBytes: i32, count: i32): void {
  for (let i = 0; i < count; i++) {
    memory.copy(dst + <usize>i * <usize>dstStride, src + <usize>i * <usize>srcStride, <usize>rowBytes);
  }
}
