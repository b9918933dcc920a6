// Where the matmul kernels expect their operands in Wasm memory: the weight layouts (one per kernel pair, named
// in the kernels' exports, wrappers and twins), the activation formats they take, and the load-time writers of
// the il4 layout. The other layouts are written by src/kernels/repack.ts; byte sizes live in strides.ts.
import { f16BitsToF32, f32ToF16Bits } from "./dtype.js";
import { GROUP } from "./numerics.js";
import {
  BLOCK_ROWS, F16_CELL_BYTES, F32_CELL_BYTES, FLOAT_CELL_BYTES, HALF_CELL_BYTES, INT8_CELL_BYTES, NIBBLE_CELL_BYTES,
  ROW_SUM_BLOCK_BYTES,
} from "./strides.js";
import type { WasmExports } from "./exports.js";
import type { WasmKernels } from "./wasm.js";

/**
 * An int4 weight matrix in its logical form, as a checkpoint loader produces it:
 * w[r][c] ≈ q[r·cols + c] · scales[r·(cols/32) + c/32], q in [-8, 7] (symmetric, group 32 along cols).
 * Every scale is an f16 value (a finite one, any sign, zero and subnormals included): il4 stores its f16 bits.
 */
export interface Int4Weights {
  rows: number;
  cols: number;
  q: Int8Array;
  scales: Float32Array;
}

/**
 * A matrix in the logical form of one of the quantized layouts other than il4 (the twins' and the repack's):
 * w[r][c] = q[r·cols + c] · scale + min, the scale scales[(r·G + c/32)·n + half] (n = layout.scalesPerGroup,
 * half = (c % 32) >> 4 when n = 2, else 0) and the min mins[r·G + c/32] (layouts with a min; null otherwise).
 * q as the layout's formula uses it (LayoutTag's table; qRange): q4_0 -8..7, q4_1 and q4_k 0..15, q8_0
 * -128..127, q5_0 -16..15, q5_1 and q5_k 0..31, q6_k -32..31. Scales and mins are finite; f16 ones are f16 values.
 */
export interface BlockWeights {
  layout: WeightLayout;
  rows: number;
  cols: number;
  q: Int8Array;
  scales: Float32Array;
  mins: Float32Array | null;
}

/** A matrix in the logical form of a float layout: its values, each exactly an element of the layout's type. */
export interface FloatWeights {
  layout: WeightLayout;
  rows: number;
  cols: number;
  values: Float32Array;
}

// ---- weight layouts ----------------------------------------------------------------------------------

/**
 * The weight layouts. Each cuts a matrix into cells of 4 rows (a block, interleaved so that a GEMV reads one
 * sequential stream: a row-major multi-row GEMV ran at about half the speed from DRAM) by 32 columns (a
 * group), and keeps up to three regions, each cell after cell in (block, group) order:
 *
 *   il4   the engine's own int4 recipe (MobileLLM-Pro folders, `mobilellm convert` files), times i8t
 *         activations. Values: 64 B of nibbles q+8, q in [-8, 7] (layout below). Scales: f16 per row (8 B).
 *         Aux: each row's dequantized weight sum, f32 (16 B per block; the il4 details below).
 *   q4_0  a llama.cpp Q4_0 matrix: il4's bytes (a Q4_0 block's nibbles and d, moved), times i8b activations.
 *
 *   The other layouts hold a llama.cpp file's values exactly (value = scale · q + min, in f32 as ggml
 *   dequantizes them) and take i8b activations:
 *
 *   layout  values               scales per row and group   min per row and group   holds
 *   q4_1    nibbles q in 0..15   f16 d                      f16 m                   Q4_1
 *   q4_k    nibbles q in 0..15   f32 d·sc (exact)           f32 -(dmin·m) (exact)   Q4_K
 *   q8_0    int8 q               f16 d                      -                       Q8_0
 *   q5_0    int8 q + 16 (0..31)  f16 d                      -                       Q5_0
 *   q5_1    int8 q in 0..31      f16 d                      f16 m                   Q5_1
 *   q5_k    int8 q in 0..31      f32 d·sc                   f32 -(dmin·m)           Q5_K
 *   q6_k    int8 q - 32          two f32 d·sc, one per 16   -                       Q6_K
 *
 *   Nibble cells are il4's 64 bytes (below). An int8 cell is 128 bytes: 8 vectors of 16, vector v holding 4
 *   values of each row (bytes 4i..4i+3: row i), the values 8k + h + {0, 2, 4, 6} of the group, k = v >> 1,
 *   h = v & 1: the order i8b's widened activations are in, so an 8-byte splat meets all 4 rows. Scales and
 *   mins: the 4 rows' values side by side (q6_k: the 4 rows' first-half scales, then their second-half ones).
 *
 *   f32, f16, bf16  a llama.cpp file's unquantized matrices, kept in their own element type, times f32
 *   activations. Values only: each block's columns in order, each column the 4 rows' values side by side.
 *
 * Rows past the matrix's last (rows not a multiple of 4) are padding: all zero bytes (il4's: nibble 8, scale 0,
 * row sum 0), so they add nothing; their outputs are never written. Each region starts on a 64-byte boundary.
 */
export type LayoutTag = "il4" | "q4_0" | "q4_1" | "q4_k" | "q8_0" | "q5_0" | "q5_1" | "q5_k" | "q6_k" | "f32" | "f16" | "bf16";

/** The activation formats: i8t (int8 per token, asymmetric), i8b (int8 per block of 32, symmetric), f32. */
export type ActivationFormat = "i8t" | "i8b" | "f32";

export interface WeightLayout {
  readonly tag: LayoutTag;
  /** A small integer naming the layout where a number must (the thread pool's job codec). */
  readonly id: number;
  readonly activations: ActivationFormat;
  /** How a cell's values are stored. */
  readonly values: "nibble" | "int8" | "f32" | "f16" | "bf16";
  /** What a stored value v means as q (value = scale · q + min): q = v - offset (8 for il4's and q4_0's nibbles, 16 for q5_0). */
  readonly offset: number;
  /** Scale (and min) element type; null for the float layouts. */
  readonly scaleType: "f16" | "f32" | null;
  /** Scales per row and group: 2 in q6_k (one per 16 values). */
  readonly scalesPerGroup: 0 | 1 | 2;
  readonly hasMin: boolean;
  /** Bytes per cell of the values, scales and (layouts with a min) mins. */
  readonly valueBytes: number;
  readonly scaleBytes: number;
  readonly minBytes: number;
  /** Bytes per block of row sums (il4 and q4_0). */
  readonly rowSumBytes: number;
  /** The kernels' exports. */
  readonly gemv: keyof WasmExports;
  readonly gemm: keyof WasmExports;
}

type Quantized = Pick<WeightLayout, "tag" | "values" | "offset" | "scaleType" | "scalesPerGroup" | "hasMin">;

function layout(id: number, activations: ActivationFormat, l: Quantized): WeightLayout {
  const values = { nibble: NIBBLE_CELL_BYTES, int8: INT8_CELL_BYTES, f32: FLOAT_CELL_BYTES, f16: HALF_CELL_BYTES, bf16: HALF_CELL_BYTES }[l.values];
  const one = l.scaleType === "f32" ? F32_CELL_BYTES : l.scaleType === "f16" ? F16_CELL_BYTES : 0;
  return {
    ...l,
    id,
    activations,
    valueBytes: values,
    scaleBytes: one * l.scalesPerGroup,
    minBytes: l.hasMin ? one : 0,
    rowSumBytes: l.tag === "il4" || l.tag === "q4_0" ? ROW_SUM_BLOCK_BYTES : 0,
    gemv: `gemv_${l.tag}_${activations}` as keyof WasmExports,
    gemm: `gemm_${l.tag}_${activations}` as keyof WasmExports,
  };
}

const quantized = (tag: LayoutTag, values: "nibble" | "int8", offset: number, scaleType: "f16" | "f32", scalesPerGroup: 1 | 2, hasMin: boolean): Quantized =>
  ({ tag, values, offset, scaleType, scalesPerGroup, hasMin });
const float = (tag: "f32" | "f16" | "bf16"): Quantized => ({ tag, values: tag, offset: 0, scaleType: null, scalesPerGroup: 0, hasMin: false });

export const LAYOUTS: Readonly<Record<LayoutTag, WeightLayout>> = {
  il4: layout(0, "i8t", quantized("il4", "nibble", 8, "f16", 1, false)),
  q4_0: layout(1, "i8b", quantized("q4_0", "nibble", 8, "f16", 1, false)),
  q4_1: layout(2, "i8b", quantized("q4_1", "nibble", 0, "f16", 1, true)),
  q4_k: layout(3, "i8b", quantized("q4_k", "nibble", 0, "f32", 1, true)),
  q8_0: layout(4, "i8b", quantized("q8_0", "int8", 0, "f16", 1, false)),
  q5_1: layout(5, "i8b", quantized("q5_1", "int8", 0, "f16", 1, true)),
  q5_k: layout(6, "i8b", quantized("q5_k", "int8", 0, "f32", 1, true)),
  q6_k: layout(7, "i8b", quantized("q6_k", "int8", 0, "f32", 2, false)),
  f32: layout(8, "f32", float("f32")),
  f16: layout(9, "f32", float("f16")),
  bf16: layout(10, "f32", float("bf16")),
  // Q5_0's values stay q + 16 as its blocks hold them, so the relaxed build's byte dot can take them (0..31).
  q5_0: layout(11, "i8b", quantized("q5_0", "int8", 16, "f16", 1, false)),
};

/** The range of q in a quantized layout's formula (BlockWeights). */
export function qRange(l: WeightLayout): [number, number] {
  if (l.values === "nibble") return [-l.offset, 15 - l.offset];
  switch (l.tag) {
    case "q8_0":
      return [-128, 127];
    case "q5_0":
      return [-16, 15];
    case "q6_k":
      return [-32, 31];
    default:
      return [0, 31];
  }
}

/** The layout with this id (the job codec's number), or undefined. */
export function layoutById(id: number): WeightLayout | undefined {
  return Object.values(LAYOUTS).find((l) => l.id === id);
}

/**
 * A weight matrix in one of the layouts, in Wasm memory: the values, scales and aux regions (aux: il4's and
 * q4_0's row sums, or the mins of a layout with a min; unused pointers are 0).
 */
export class WeightMatrix {
  constructor(
    readonly layout: WeightLayout,
    readonly rows: number,
    readonly cols: number,
    readonly valuesPtr: number,
    readonly scalesPtr: number,
    readonly auxPtr: number,
  ) {}

  get groups(): number {
    return this.cols / GROUP;
  }

  get blocks(): number {
    return Math.ceil(this.rows / BLOCK_ROWS);
  }

  /** Bytes one GEMV reads from the regions. */
  get streamBytes(): number {
    return blockBytes(this.layout, this.cols) * this.blocks;
  }

  /**
   * A matrix of `rows` rows whose regions lie back to back from ptr (a multiple of 16), each on a 16-byte
   * boundary, within `Math.ceil(rows / 4) · packedBlockBytes(layout, cols)` bytes: a thread's private copy of
   * a few blocks.
   */
  static packedAt(layout: WeightLayout, ptr: number, rows: number, cols: number): WeightMatrix {
    const r = regionBytes(layout, rows, cols);
    const scales = ptr + up16(r.values);
    const aux = scales + up16(r.scales);
    return new WeightMatrix(layout, rows, cols, ptr, layout.scaleBytes > 0 ? scales : 0, r.aux > 0 ? aux : 0);
  }

  /**
   * Rows [row0, row0 + rows) as a matrix of their own (the same memory): what one thread computes of a
   * product split by rows. row0 must start a 4-row block, since blocks are interleaved.
   */
  rowBlock(row0: number, rows: number): WeightMatrix {
    if (!Number.isInteger(row0) || row0 < 0 || row0 % BLOCK_ROWS !== 0 || !Number.isInteger(rows) || rows < 1 || row0 + rows > this.rows) {
      throw new RangeError(`WeightMatrix.rowBlock: rows [${row0}, ${row0 + rows}) are not whole 4-row blocks inside the matrix's ${this.rows}`);
    }
    const l = this.layout;
    const cells = (row0 / BLOCK_ROWS) * this.groups;
    const aux = this.auxPtr === 0 ? 0 : this.auxPtr + (l.rowSumBytes > 0 ? (row0 / BLOCK_ROWS) * l.rowSumBytes : cells * l.minBytes);
    return new WeightMatrix(l, rows, this.cols, this.valuesPtr + cells * l.valueBytes, this.scalesPtr === 0 ? 0 : this.scalesPtr + cells * l.scaleBytes, aux);
  }
}

const up16 = (n: number) => Math.ceil(n / 16) * 16;

/** Bytes of each region of a `rows` x `cols` matrix in `layout`. */
export function regionBytes(layout: WeightLayout, rows: number, cols: number): { values: number; scales: number; aux: number } {
  const blocks = Math.ceil(rows / BLOCK_ROWS);
  const cells = blocks * (cols / GROUP);
  return {
    values: cells * layout.valueBytes,
    scales: cells * layout.scaleBytes,
    aux: layout.rowSumBytes > 0 ? blocks * layout.rowSumBytes : cells * layout.minBytes,
  };
}

/** Bytes one 4-row block of `cols` columns takes in `layout`, all regions together. */
export function blockBytes(layout: WeightLayout, cols: number): number {
  const r = regionBytes(layout, BLOCK_ROWS, cols);
  return r.values + r.scales + r.aux;
}

/**
 * Bytes one 4-row block of `cols` columns takes in a packed copy (WeightMatrix.packedAt): the regions each
 * rounded up to 16 bytes (an odd group count leaves 8 bytes of f16 scales).
 */
export function packedBlockBytes(layout: WeightLayout, cols: number): number {
  const r = regionBytes(layout, BLOCK_ROWS, cols);
  return up16(r.values) + up16(r.scales) + up16(r.aux);
}

/** Reserves a matrix in the arena, its padding rows zero (il4's: q = 0); fill it with a writer of its layout. */
export function allocMatrix(k: WasmKernels, layout: WeightLayout, rows: number, cols: number): WeightMatrix {
  requireShape("allocMatrix", rows, cols, "rows");
  const r = regionBytes(layout, rows, cols);
  const valuesPtr = k.alloc(r.values);
  const scalesPtr = r.scales > 0 ? k.alloc(r.scales) : 0;
  const auxPtr = r.aux > 0 ? k.alloc(r.aux) : 0;
  const m = new WeightMatrix(layout, rows, cols, valuesPtr, scalesPtr, auxPtr);
  // Padding rows: zero bytes everywhere (the arena may hand out memory that held something), then il4's
  // and q4_0's nibbles 8 (q = 0).
  if (rows % BLOCK_ROWS !== 0) {
    const last = m.rowBlock(rows - (rows % BLOCK_ROWS), rows % BLOCK_ROWS);
    const lr = regionBytes(layout, BLOCK_ROWS, cols);
    k.u8.fill(0, last.valuesPtr, last.valuesPtr + lr.values);
    if (last.scalesPtr !== 0) k.u8.fill(0, last.scalesPtr, last.scalesPtr + lr.scales);
    if (last.auxPtr !== 0) k.u8.fill(0, last.auxPtr, last.auxPtr + lr.aux);
    if (layout.values === "nibble" && layout.offset === 8) {
      for (let rr = rows; rr < m.blocks * BLOCK_ROWS; rr++) {
        for (let g = 0; g < m.groups; g++) {
          const slot = ((rr >> 2) * m.groups + g) * 4 + (rr & 3);
          for (let p = 0; p < 4; p++) k.u8.fill(0x88, nibbleByte(valuesPtr, slot, p, 0), nibbleByte(valuesPtr, slot, p, 4));
        }
      }
    }
  }
  return m;
}

/*
 * The il4 layout (and q4_0's, the same bytes) in detail ("il4": 4 rows interleaved per group, so a GEMV reads
 * one sequential stream; a row-major multi-row GEMV runs at about half the speed when weights stream
 * from DRAM: 3.4-6.0 GB/s against 8.2-9.6 for il4 in the first SIMD128 kernels, one thread). With
 * G = cols/32 and B = ceil(rows/4) blocks:
 *
 *   qs     u8  [B][G][4][4][4]  per (block b, group g), packed vector p < 4, row-slot i < 4, byte e < 4:
 *                               q[4b+i][32g+8p+e] + 8 in the low nibble, q[4b+i][32g+8p+4+e] + 8 in the high
 *                               one (64 B per block and group). Each 16-byte vector holds 4 bytes of every
 *                               row, so the kernels' dots leave each row's sum in its own lanes (no shuffles)
 *   scales f16 [B][G][4]        s[4b+i][g] as IEEE half bits (8 B per block and group): what a GGUF Q4_0
 *                               block stores, read by the kernels into f32 lanes exactly
 *   wsum   f32 [B][4]           the row's dequantized weight sum, acc = 0; for g in order:
 *                               acc = f32(acc + f32(s[r][g] · Σ_{j<32} q[r][32g+j])). The kernels take the
 *                               activation zero point out with it once per output (z · wsum), not per group
 *
 * Padding rows (rows not a multiple of 4) hold q = 0 (nibble 8), scale 0 and wsum 0; their outputs are
 * never written. Each region starts on a 64-byte boundary. A GEMV streams 0.5625 bytes per weight (plus
 * 4 bytes per row), as many as the weights' Q4_0 blocks take in a GGUF file.
 */

/**
 * i8t activations (int8 per token, asymmetric: il4's) of `tokens` tokens in kernel form (written by quantizeActivations or
 * setActivations in matmul.ts). With G = cols/32:
 *
 *   q      i8  [tokens][cols]  q = clamp(roundHalfEven(x / scale) + zero, -128, 127)
 *   wide   i16 [tokens][cols]  baseline build: each run of 8 widened and reordered to
 *                              x[0,2,4,6,1,3,5,7] (the nibble order of il4 bytes read as i16 lanes).
 *                              Relaxed build: the GEMM's 4-token tiles. Tokens 4τ..4τ+3 (whole tiles of
 *                              the tokens prepared, counted from the first) sit interleaved at the wide
 *                              row of token 4τ, per group: the 4 tokens' corr words (16 bytes), then for
 *                              packed vector p = 0..3 the 4 tokens' q[8p..8p+8) (4 x 8 bytes):
 *                              TILE_GROUP_BYTES = 144 per group (strides.ts), 4.5·cols bytes of the 8·cols
 *                              the tile's wide rows span; tokens past the last whole tile have none
 *   corr   u32 [tokens][G]     what a group's partial sums start from: -8 · Σ q over the group, taking the
 *                              weights' +8 nibble offset back out. Baseline build: one i32; relaxed build:
 *                              two i16 halves, the sums over the elements j with j % 4 < 2 (low) and the rest
 *                              (see prepare_activations). Only the kernels read it
 *   scale  f32 [tokens]
 *   zero   i32 [tokens]        in [-128, 127]
 *
 * x ≈ (q - zero) · scale. Each region starts on a 64-byte boundary.
 */
export class Int8Activations {
  readonly format = "i8t";

  constructor(
    readonly tokens: number,
    readonly cols: number,
    readonly qPtr: number,
    readonly widePtr: number,
    readonly corrPtr: number,
    readonly scalePtr: number,
    readonly zeroPtr: number,
  ) {}

  /** Reserves arena memory for `tokens` x `cols` activations (cols a positive multiple of 32). */
  static alloc(k: WasmKernels, tokens: number, cols: number): Int8Activations {
    requireShape("Int8Activations.alloc", tokens, cols, "tokens");
    const n = tokens * cols;
    const q = k.alloc(n);
    const wide = k.alloc(2 * n);
    const corr = k.alloc(4 * (n / GROUP));
    const scale = k.alloc(4 * tokens);
    const zero = k.alloc(4 * tokens);
    return new Int8Activations(tokens, cols, q, wide, corr, scale, zero);
  }
}

/**
 * i8b activations (int8 per block of 32 values, symmetric: the q4_0 ... q6_k layouts') of `tokens` tokens in
 * kernel form (written by quantizeActivationsI8b or setActivationsI8b in matmul-i8b.ts). With G = cols/32:
 *
 *   q      i8  [tokens][cols]  q = round_half_even(x / a), |q| <= 127 (a block of zeros: a = 0, q = 0)
 *   wide   i16 [tokens][cols]  q widened, each run of 8 in the order 0,2,4,6,1,3,5,7 (as i8t's), in both builds
 *   corr   u32 [tokens][G]     -8 · Σ q over the block, in i8t's per-build format: q4_0's start value
 *   scale  f32 [tokens][G]     a = f32(max|x| / 127) (NaN for a block holding NaN or infinity)
 *   sum    f32 [tokens][G]     Σ q over the block, exact: the min term's X
 *
 * x ≈ q · a. Each region starts on a 64-byte boundary.
 */
export class Int8BlockActivations {
  readonly format = "i8b";

  constructor(
    readonly tokens: number,
    readonly cols: number,
    readonly qPtr: number,
    readonly widePtr: number,
    readonly corrPtr: number,
    readonly scalePtr: number,
    readonly sumPtr: number,
  ) {}

  /** Reserves arena memory for `tokens` x `cols` activations (cols a positive multiple of 32). */
  static alloc(k: WasmKernels, tokens: number, cols: number): Int8BlockActivations {
    requireShape("Int8BlockActivations.alloc", tokens, cols, "tokens");
    const n = tokens * cols;
    const blocks = n / GROUP;
    return new Int8BlockActivations(tokens, cols, k.alloc(n), k.alloc(2 * n), k.alloc(4 * blocks), k.alloc(4 * blocks), k.alloc(4 * blocks));
  }
}

/** f32 activations (the float layouts'): `tokens` rows of `cols` f32 from ptr, end to end. */
export class FloatActivations {
  readonly format = "f32";

  constructor(
    readonly tokens: number,
    readonly cols: number,
    readonly ptr: number,
  ) {}
}

/** Activations in one of the formats. */
export type Activations = Int8Activations | Int8BlockActivations | FloatActivations;

/** Throws unless count is a positive integer and cols a positive multiple of 32. */
export function requireShape(fn: string, count: number, cols: number, countName: string): void {
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`${fn}: ${countName} must be a positive integer, got ${count}`);
  if (!Number.isInteger(cols) || cols < GROUP || cols % GROUP !== 0) {
    throw new RangeError(`${fn}: cols must be a positive multiple of ${GROUP}, got ${cols}`);
  }
}

/**
 * Address of byte e of packed vector p for one (block, group, row-slot): slot = (block·G + group)·4 + row-slot.
 * It holds the row's elements 8p+e (low nibble) and 8p+4+e (high nibble) of the group.
 */
export function nibbleByte(qsPtr: number, slot: number, p: number, e: number): number {
  return qsPtr + (slot >> 2) * NIBBLE_CELL_BYTES + p * 16 + (slot & 3) * 4 + e;
}

/** Reserves an il4 matrix in the arena, padding rows already set; fill it with writeInt4Rows. */
export function allocInt4Matrix(k: WasmKernels, rows: number, cols: number): WeightMatrix {
  return allocMatrix(k, LAYOUTS.il4, rows, cols);
}

/**
 * Writes w (w.rows full rows of m.cols columns) as rows [row0, row0 + w.rows) of m, so a loader can stream a
 * large matrix in row chunks. Validates the shape, that every q lies in [-8, 7] and that every scale is an f16
 * value (the errors name the weight or the group).
 */
export function writeInt4Rows(k: WasmKernels, m: WeightMatrix, row0: number, w: Int4Weights): void {
  const { rows, cols, q, scales } = w;
  requireShape("writeInt4Rows", rows, cols, "rows");
  if (m.layout.rowSumBytes === 0) throw new RangeError(`writeInt4Rows: the matrix is ${m.layout.tag}, not il4 or q4_0`);
  if (cols !== m.cols) throw new RangeError(`writeInt4Rows: ${cols} columns given, the matrix has ${m.cols}`);
  if (!Number.isInteger(row0) || row0 < 0 || row0 + rows > m.rows) {
    throw new RangeError(`writeInt4Rows: rows [${row0}, ${row0 + rows}) outside the matrix's ${m.rows}`);
  }
  const groups = cols / GROUP;
  if (q.length !== rows * cols) throw new RangeError(`writeInt4Rows: q has ${q.length} values, expected rows·cols = ${rows * cols}`);
  if (scales.length !== rows * groups) {
    throw new RangeError(`writeInt4Rows: scales has ${scales.length} values, expected rows·cols/32 = ${rows * groups}`);
  }
  const u8 = k.u8;
  const u16 = k.u16;
  const f32 = k.f32;
  for (let lr = 0; lr < rows; lr++) {
    const r = row0 + lr;
    let wsum = 0;
    for (let g = 0; g < groups; g++) {
      const slot = ((r >> 2) * groups + g) * 4 + (r & 3);
      const base = lr * cols + g * GROUP;
      const s = scales[lr * groups + g];
      const h = f32ToF16Bits(s);
      if (!Number.isFinite(s) || !Object.is(f16BitsToF32(h), s)) {
        throw new RangeError(`writeInt4Rows: the scale of row ${r}, group ${g} is ${s}, not a finite f16 value (il4 stores f16 scales)`);
      }
      let sum = 0;
      for (let j = 0; j < GROUP; j++) {
        const v = q[base + j];
        if (v < -8 || v > 7) throw new RangeError(`writeInt4Rows: q[${r}][${g * GROUP + j}] = ${v} is outside the int4 range [-8, 7]`);
        sum += v;
      }
      for (let p = 0; p < 4; p++) {
        for (let e = 0; e < 4; e++) {
          u8[nibbleByte(m.valuesPtr, slot, p, e)] = (q[base + 8 * p + e] + 8) | ((q[base + 8 * p + 4 + e] + 8) << 4);
        }
      }
      u16[(m.scalesPtr >> 1) + slot] = h;
      wsum = Math.fround(wsum + Math.fround(sum * s));
    }
    f32[(m.auxPtr >> 2) + r] = wsum;
  }
}

/** Copies int4 weights into a new arena matrix in the il4 layout (allocInt4Matrix + writeInt4Rows). */
export function repackInt4(k: WasmKernels, w: Int4Weights): WeightMatrix {
  requireShape("repackInt4", w.rows, w.cols, "rows");
  const m = allocInt4Matrix(k, w.rows, w.cols);
  writeInt4Rows(k, m, 0, w);
  return m;
}

// ---- addressing and decoding any layout ---------------------------------------------------------------

/** The cell (block, group) of row r and column c: its index in the regions, and the row's slot in the block. */
function cell(m: WeightMatrix, r: number, c: number): { index: number; slot: number } {
  return { index: Math.floor(r / BLOCK_ROWS) * m.groups + Math.floor(c / GROUP), slot: r % BLOCK_ROWS };
}

/**
 * The byte holding value (r, c) of m and, for a nibble layout, its shift (0: low nibble, 4: high). The value
 * layouts are documented at LayoutTag; this is their one definition in TypeScript.
 */
export function valueAddress(m: WeightMatrix, r: number, c: number): { byte: number; shift: number } {
  const l = m.layout;
  const { index, slot } = cell(m, r, c);
  const j = c % GROUP;
  const base = m.valuesPtr + index * l.valueBytes;
  if (l.values === "nibble") {
    const p = j >> 3;
    const e = j & 3;
    return { byte: base + p * 16 + slot * 4 + e, shift: (j & 7) < 4 ? 0 : 4 };
  }
  if (l.values === "int8") {
    const run = j & 7;
    return { byte: base + (2 * (j >> 3) + (run & 1)) * 16 + slot * 4 + (run >> 1), shift: 0 };
  }
  const size = l.values === "f32" ? 4 : 2;
  return { byte: base + j * BLOCK_ROWS * size + slot * size, shift: 0 };
}

/** The byte of the scale of row r for column c (q6_k: of its half of the group). */
export function scaleAddress(m: WeightMatrix, r: number, c: number): number {
  const l = m.layout;
  const { index, slot } = cell(m, r, c);
  const size = l.scaleType === "f32" ? 4 : 2;
  const half = l.scalesPerGroup === 2 && c % GROUP >= GROUP / 2 ? 1 : 0;
  return m.scalesPtr + index * l.scaleBytes + half * BLOCK_ROWS * size + slot * size;
}

/** The byte of the min of row r for column c (layouts with a min). */
export function minAddress(m: WeightMatrix, r: number, c: number): number {
  const l = m.layout;
  const { index, slot } = cell(m, r, c);
  return m.auxPtr + index * l.minBytes + slot * (l.scaleType === "f32" ? 4 : 2);
}

/** A stored scale or min (f16 bits or an f32) as a number. */
function storedFloat(k: WasmKernels, l: WeightLayout, byte: number): number {
  return l.scaleType === "f32" ? k.f32[byte >> 2] : f16BitsToF32(k.u16[byte >> 1]);
}

/** Stored value (r, c) as the integer q of the layout's formula (value - offset), or the float itself. */
export function storedQ(k: WasmKernels, m: WeightMatrix, r: number, c: number): number {
  const { byte, shift } = valueAddress(m, r, c);
  switch (m.layout.values) {
    case "nibble":
      return ((k.u8[byte] >> shift) & 15) - m.layout.offset;
    case "int8":
      return k.i8[byte] - m.layout.offset;
    case "f32":
      return k.f32[byte >> 2];
    case "f16":
      return f16BitsToF32(k.u16[byte >> 1]);
    case "bf16":
      return bf16ToF32(k.u16[byte >> 1]);
  }
}

const F = Math.fround;

function bf16ToF32(bits: number): number {
  scratch32[0] = bits << 16;
  return scratchF32[0];
}
const scratch32 = new Uint32Array(1);
const scratchF32 = new Float32Array(scratch32.buffer);

/**
 * Value (r, c) of m as the kernels compute with it, in f32: q · s (il4, q4_0, q8_0, q6_k), f32(q · s) + m
 * (the layouts with a min), or the float itself: the order ggml's dequantization rounds in, so a layout
 * holding a llama.cpp file's blocks gives their dequantized values bit for bit.
 */
export function layoutValue(k: WasmKernels, m: WeightMatrix, r: number, c: number): number {
  const l = m.layout;
  const q = storedQ(k, m, r, c);
  if (l.scaleType === null) return q;
  return formulaValue(q, storedFloat(k, l, scaleAddress(m, r, c)), l.hasMin ? storedFloat(k, l, minAddress(m, r, c)) : null);
}

/**
 * A quantized layout's value for q, scale s and min m (null: the layout has none), in f32: f32(q · s), then
 * f32(· + m). ggml dequantizes in this order (d · q + m), and d·sc, dmin·m and q · s are all exact in f32, so
 * only the min's add rounds.
 */
export function formulaValue(q: number, s: number, m: number | null): number {
  const v = F(q * s);
  return m === null ? v : F(v + m);
}

/** Writes row `row` of m, as the kernels compute with it (layoutValue), to f32 [m.cols] at ptr: the embedding lookup. */
export function dequantizeRowInto(k: WasmKernels, m: WeightMatrix, row: number, ptr: number): void {
  if (!Number.isInteger(row) || row < 0 || row >= m.rows) throw new RangeError(`dequantizeRowInto: row ${row} outside [0, ${m.rows})`);
  if (!Number.isInteger(ptr) || ptr < 0 || ptr % 4 !== 0 || ptr + 4 * m.cols > k.memory.buffer.byteLength) {
    throw new RangeError(`dequantizeRowInto: destination ${ptr} is not an aligned f32 [${m.cols}] inside the Wasm memory`);
  }
  // layoutValue per value, with the scale and min read once per run of values that share them: decoding an
  // f16 scale for every value made this lookup 0.2 ms a token on MobileLLM-Pro (the main thread's, in every
  // decode step).
  const l = m.layout;
  const f32 = k.f32;
  const out = ptr >> 2;
  if (l.scaleType === null) {
    for (let c = 0; c < m.cols; c++) f32[out + c] = storedQ(k, m, row, c);
    return;
  }
  const span = GROUP / l.scalesPerGroup;
  for (let c0 = 0; c0 < m.cols; c0 += span) {
    const scale = storedFloat(k, l, scaleAddress(m, row, c0));
    const min = l.hasMin ? storedFloat(k, l, minAddress(m, row, c0)) : null;
    for (let c = c0; c < c0 + span; c++) f32[out + c] = formulaValue(storedQ(k, m, row, c), scale, min);
  }
}
