// Where the int4 x int8 kernels (assembly/matmul.ts) expect their operands in Wasm memory, and the
// load-time repack of int4 weights into that layout.
import { f16BitsToF32, f32ToF16Bits } from "./dtype.js";
import { GROUP } from "./numerics.js";
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
 * An int4 weight matrix repacked for the kernels ("il4": 4 rows interleaved per group, so a GEMV reads
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
export class Int4Matrix {
  constructor(
    readonly rows: number,
    readonly cols: number,
    readonly qsPtr: number,
    readonly scalesPtr: number,
    readonly wsumPtr: number,
  ) {}

  get groups(): number {
    return this.cols / GROUP;
  }

  get blocks(): number {
    return Math.ceil(this.rows / 4);
  }

  /** Bytes one GEMV reads from the three regions. */
  get streamBytes(): number {
    return this.blocks * (this.groups * (64 + 8) + 16);
  }

  /**
   * A matrix of `rows` rows whose three regions lie back to back from ptr (a multiple of 16), each on a
   * 16-byte boundary, within `Math.ceil(rows / 4) · int4BlockBytes(cols)` bytes: a thread's private copy of
   * a few blocks.
   */
  static packedAt(ptr: number, rows: number, cols: number): Int4Matrix {
    const cells = Math.ceil(rows / 4) * (cols / GROUP);
    return new Int4Matrix(rows, cols, ptr, ptr + cells * 64, ptr + cells * 64 + Math.ceil(cells / 2) * 16);
  }

  /**
   * Rows [row0, row0 + rows) as a matrix of their own (the same memory): what one thread computes of a
   * product split by rows. row0 must start a 4-row block, since blocks are interleaved.
   */
  rowBlock(row0: number, rows: number): Int4Matrix {
    if (!Number.isInteger(row0) || row0 < 0 || row0 % 4 !== 0 || !Number.isInteger(rows) || rows < 1 || row0 + rows > this.rows) {
      throw new RangeError(`Int4Matrix.rowBlock: rows [${row0}, ${row0 + rows}) are not whole 4-row blocks inside the matrix's ${this.rows}`);
    }
    const cells = (row0 / 4) * this.groups;
    return new Int4Matrix(rows, this.cols, this.qsPtr + cells * 64, this.scalesPtr + cells * 8, this.wsumPtr + 4 * row0);
  }
}

/**
 * Bytes one 4-row block of an il4 matrix of `cols` columns takes in a packed copy (Int4Matrix.packedAt):
 * 64 of nibbles and 8 of scales per group, the scales rounded up to 16 (an odd group count leaves 8 bytes of
 * alignment), and 16 of row sums.
 */
export function int4BlockBytes(cols: number): number {
  const groups = cols / GROUP;
  return groups * 64 + Math.ceil(groups / 2) * 16 + 16;
}

/**
 * Quantized activations of `tokens` tokens in kernel form (written by quantizeActivations or
 * setActivations in matmul.ts). With G = cols/32:
 *
 *   q      i8  [tokens][cols]  q = clamp(roundHalfEven(x / scale) + zero, -128, 127)
 *   wide   i16 [tokens][cols]  baseline build only: each run of 8 widened and reordered to
 *                              x[0,2,4,6,1,3,5,7] (the nibble order of il4 bytes read as i16 lanes); the
 *                              relaxed build neither writes nor reads it
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
function nibbleByte(qsPtr: number, slot: number, p: number, e: number): number {
  return qsPtr + (slot >> 2) * 64 + p * 16 + (slot & 3) * 4 + e;
}

/** Reserves an il4 matrix in the arena, padding rows already set; fill it with writeInt4Rows. */
export function allocInt4Matrix(k: WasmKernels, rows: number, cols: number): Int4Matrix {
  requireShape("allocInt4Matrix", rows, cols, "rows");
  const cells = Math.ceil(rows / 4) * (cols / GROUP);
  const qsPtr = k.alloc(cells * 64);
  const scalesPtr = k.alloc(cells * 8);
  const wsumPtr = k.alloc(Math.ceil(rows / 4) * 16);
  const m = new Int4Matrix(rows, cols, qsPtr, scalesPtr, wsumPtr);
  const u8 = k.u8;
  const u16 = k.u16;
  const f32 = k.f32;
  for (let r = rows; r < m.blocks * 4; r++) {
    for (let g = 0; g < m.groups; g++) {
      const slot = ((r >> 2) * m.groups + g) * 4 + (r & 3);
      for (let p = 0; p < 4; p++) u8.fill(0x88, nibbleByte(qsPtr, slot, p, 0), nibbleByte(qsPtr, slot, p, 4));
      u16[(scalesPtr >> 1) + slot] = 0;
    }
    f32[(wsumPtr >> 2) + r] = 0;
  }
  return m;
}

/**
 * Writes w (w.rows full rows of m.cols columns) as rows [row0, row0 + w.rows) of m, so a loader can stream a
 * large matrix in row chunks. Validates the shape, that every q lies in [-8, 7] and that every scale is an f16
 * value (the errors name the weight or the group).
 */
export function writeInt4Rows(k: WasmKernels, m: Int4Matrix, row0: number, w: Int4Weights): void {
  const { rows, cols, q, scales } = w;
  requireShape("writeInt4Rows", rows, cols, "rows");
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
          u8[nibbleByte(m.qsPtr, slot, p, e)] = (q[base + 8 * p + e] + 8) | ((q[base + 8 * p + 4 + e] + 8) << 4);
        }
      }
      u16[(m.scalesPtr >> 1) + slot] = h;
      wsum = Math.fround(wsum + Math.fround(sum * s));
    }
    f32[(m.wsumPtr >> 2) + r] = wsum;
  }
}

/** Copies int4 weights into a new arena matrix in the il4 layout (allocInt4Matrix + writeInt4Rows). */
export function repackInt4(k: WasmKernels, w: Int4Weights): Int4Matrix {
  requireShape("repackInt4", w.rows, w.cols, "rows");
  const m = allocInt4Matrix(k, w.rows, w.cols);
  writeInt4Rows(k, m, 0, w);
  return m;
}

/** Writes row `row` of m, dequantized (q · scale, f32), to f32 [m.cols] at ptr: the tied embedding lookup. */
export function dequantizeRowInto(k: WasmKernels, m: Int4Matrix, row: number, ptr: number): void {
  if (!Number.isInteger(row) || row < 0 || row >= m.rows) throw new RangeError(`dequantizeRowInto: row ${row} outside [0, ${m.rows})`);
  if (!Number.isInteger(ptr) || ptr < 0 || ptr % 4 !== 0 || ptr + 4 * m.cols > k.memory.buffer.byteLength) {
    throw new RangeError(`dequantizeRowInto: destination ${ptr} is not an aligned f32 [${m.cols}] inside the Wasm memory`);
  }
  const u8 = k.u8;
  const u16 = k.u16;
  const f32 = k.f32;
  const groups = m.groups;
  for (let g = 0; g < groups; g++) {
    const slot = ((row >> 2) * groups + g) * 4 + (row & 3);
    const s = f16BitsToF32(u16[(m.scalesPtr >> 1) + slot]);
    const dst = (ptr >> 2) + g * GROUP;
    for (let p = 0; p < 4; p++) {
      for (let e = 0; e < 4; e++) {
        const b = u8[nibbleByte(m.qsPtr, slot, p, e)];
        f32[dst + 8 * p + e] = ((b & 15) - 8) * s;
        f32[dst + 8 * p + 4 + e] = ((b >> 4) - 8) * s;
      }
    }
  }
}
