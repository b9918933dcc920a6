// Load-time writers of the layouts (layout.ts): a matrix's rows in logical form (BlockWeights, FloatWeights)
// written into its regions (the twins' side, and the tests'); the Wasm repack kernels that write a llama.cpp
// file's stored rows straight into the layout of their type, with their wrappers and twins; and
// `writeStoredRows`, the one entry the loader and the thread pool call, which writes a staged read's rows into a
// matrix of any layout. Into a layout that holds a file's values nothing is rounded: it holds exactly the values
// the file does (ggml-blocks.ts says how each type maps).
//
// Each row owns 4 bytes of every 16-byte vector of its block (and its own scale and min slots), so any row
// range can be written, and two threads writing different rows never touch the same bytes.
import { requireRegion } from "./checks.js";
import { decodeToF32, f16BitsToF32, f32ToF16Bits } from "./dtype.js";
import { GGML_BLOCKS, isGgmlQuantType, storedLayout, storedRowBytes, unpackGgmlRows, type GgmlQuantType, type RowSource, type WeightEncoding } from "./ggml-blocks.js";
import type { WasmExports } from "./exports.js";
import { LAYOUTS, nibbleByte, qRange, regionBytes, requireShape, type BlockWeights, type FloatWeights, type WeightMatrix } from "./layout.js";
import { GROUP } from "./numerics.js";
import { quantizeRows, repackQ4_0 } from "./quantize.js";
import { BLOCK_ROWS } from "./strides.js";
import type { WasmKernels } from "./wasm.js";

function requireRows(fn: string, k: WasmKernels, m: WeightMatrix, row0: number, rows: number, cols: number): void {
  requireShape(fn, rows, cols, "rows");
  if (cols !== m.cols) throw new RangeError(`${fn}: ${cols} columns given, the matrix has ${m.cols}`);
  if (!Number.isInteger(row0) || row0 < 0 || row0 + rows > m.rows) throw new RangeError(`${fn}: rows [${row0}, ${row0 + rows}) outside the matrix's ${m.rows}`);
  const r = regionBytes(m.layout, m.rows, m.cols);
  requireRegion(k, fn, "values", m.valuesPtr, r.values, 16);
  if (r.scales > 0) requireRegion(k, fn, "scales", m.scalesPtr, r.scales, 8);
  if (r.aux > 0) requireRegion(k, fn, "aux", m.auxPtr, r.aux, 8);
}

const isF16 = (x: number) => Number.isFinite(x) && Object.is(f16BitsToF32(f32ToF16Bits(x)), x);
const isF32 = (x: number) => Number.isFinite(x) && Object.is(Math.fround(x), x);

/**
 * Writes w (w.rows full rows) as rows [row0, row0 + w.rows) of m, a matrix of w's (quantized) layout other than
 * il4. Validates the shape, every q against the layout's range and every scale and min (finite, and an f16
 * value where the layout stores f16); the errors name the row.
 */
export function writeBlockRows(k: WasmKernels, m: WeightMatrix, row0: number, w: BlockWeights): void {
  const fn = "writeBlockRows";
  const l = m.layout;
  if (w.layout !== l || l.scaleType === null || l.tag === "il4") throw new RangeError(`${fn}: ${w.layout.tag} rows for a ${l.tag} matrix`);
  requireRows(fn, k, m, row0, w.rows, w.cols);
  const { rows, cols, q, scales, mins } = w;
  const groups = cols / GROUP;
  const n = l.scalesPerGroup;
  if (q.length !== rows * cols || scales.length !== rows * groups * n || (mins === null) === l.hasMin || (mins !== null && mins.length !== rows * groups)) {
    throw new RangeError(`${fn}: q, scales or mins do not fit ${rows} x ${cols} ${l.tag} rows`);
  }
  const [lo, hi] = qRange(l);
  const exact = l.scaleType === "f16" ? isF16 : isF32;
  const u8 = k.u8;
  const i8 = k.i8;
  const u16 = k.u16;
  const f32 = k.f32;
  const size = l.scaleType === "f32" ? 4 : 2;
  for (let lr = 0; lr < rows; lr++) {
    const r = row0 + lr;
    const slot = r % BLOCK_ROWS;
    for (let g = 0; g < groups; g++) {
      const cellIndex = Math.floor(r / BLOCK_ROWS) * groups + g;
      const base = lr * cols + g * GROUP;
      for (let j = 0; j < GROUP; j++) {
        const v = q[base + j];
        if (!(v >= lo && v <= hi)) throw new RangeError(`${fn}: q[${r}][${g * GROUP + j}] = ${v} is outside the ${l.tag} range [${lo}, ${hi}]`);
      }
      const cellValues = m.valuesPtr + cellIndex * l.valueBytes;
      if (l.values === "nibble") {
        const s4 = cellIndex * 4 + slot;
        for (let p = 0; p < 4; p++) {
          for (let e = 0; e < 4; e++) {
            u8[nibbleByte(m.valuesPtr, s4, p, e)] = (q[base + 8 * p + e] + l.offset) | ((q[base + 8 * p + 4 + e] + l.offset) << 4);
          }
        }
      } else {
        // Vector v = 2k + h holds values 8k + h + 2e (e < 4) of each row, row i at bytes 4i..4i+3.
        for (let v = 0; v < 8; v++) {
          for (let e = 0; e < 4; e++) i8[cellValues + 16 * v + 4 * slot + e] = q[base + 8 * (v >> 1) + (v & 1) + 2 * e] + l.offset;
        }
      }
      for (let h = 0; h < n; h++) {
        const s = scales[(lr * groups + g) * n + h];
        if (!exact(s)) throw new RangeError(`${fn}: the scale of row ${r}, group ${g} is ${s}, not a finite ${l.scaleType} value`);
        const at = m.scalesPtr + cellIndex * l.scaleBytes + h * BLOCK_ROWS * size + slot * size;
        if (size === 4) f32[at >> 2] = s;
        else u16[at >> 1] = f32ToF16Bits(s);
      }
      if (mins !== null) {
        const mn = mins[lr * groups + g];
        if (!exact(mn)) throw new RangeError(`${fn}: the min of row ${r}, group ${g} is ${mn}, not a finite ${l.scaleType} value`);
        const at = m.auxPtr + cellIndex * l.minBytes + slot * size;
        if (size === 4) f32[at >> 2] = mn;
        else u16[at >> 1] = f32ToF16Bits(mn);
      }
    }
  }
}

/** Writes w as rows [row0, row0 + w.rows) of m, a float layout's matrix; every value must be finite and exact in it. */
export function writeFloatRows(k: WasmKernels, m: WeightMatrix, row0: number, w: FloatWeights): void {
  const fn = "writeFloatRows";
  const l = m.layout;
  if (w.layout !== l || l.scaleType !== null) throw new RangeError(`${fn}: ${w.layout.tag} rows for a ${l.tag} matrix`);
  requireRows(fn, k, m, row0, w.rows, w.cols);
  if (w.values.length !== w.rows * w.cols) throw new RangeError(`${fn}: ${w.values.length} values for ${w.rows} x ${w.cols}`);
  const { rows, cols, values } = w;
  const size = l.values === "f32" ? 4 : 2;
  const u16 = k.u16;
  const f32 = k.f32;
  const blockBytes = cols * BLOCK_ROWS * size;
  for (let lr = 0; lr < rows; lr++) {
    const r = row0 + lr;
    const rowBase = m.valuesPtr + Math.floor(r / BLOCK_ROWS) * blockBytes + (r % BLOCK_ROWS) * size;
    for (let c = 0; c < cols; c++) {
      const x = values[lr * cols + c];
      const at = rowBase + c * BLOCK_ROWS * size;
      if (l.values === "f32") {
        if (!isF32(x)) throw new RangeError(`${fn}: value [${r}][${c}] is ${x}, not a finite f32`);
        f32[at >> 2] = x;
      } else {
        const bits = l.values === "f16" ? f32ToF16Bits(x) : bf16Bits(x);
        if (!Number.isFinite(x) || !Object.is(l.values === "f16" ? f16BitsToF32(bits) : bf16Value(bits), x)) {
          throw new RangeError(`${fn}: value [${r}][${c}] is ${x}, not a finite ${l.values}`);
        }
        u16[at >> 1] = bits;
      }
    }
  }
}

const scratch = new Float32Array(1);
const scratchBits = new Uint32Array(scratch.buffer);
/** The top half of x's f32 bits (x is a bf16 value when the low half is 0; writeFloatRows checks that). */
function bf16Bits(x: number): number {
  scratch[0] = x;
  return scratchBits[0] >>> 16;
}
function bf16Value(bits: number): number {
  scratchBits[0] = bits << 16;
  return scratch[0];
}

// ---- the Wasm repacks (assembly/repack.ts) and their twins ----------------------------------------------
//
// One wrapper and one twin per stored type, named after the kernel (repack_q4_1: repackQ4_1, repackQ4_1Ref).
// The wrapper writes rows [row0, row0 + rows) of m (a matrix of the type's layout) from `rows` stored rows at
// srcPtr in Wasm memory; on a refused row it reads that row with the twin, whose error names the row and block.
// The twin reads the stored rows into logical form; writeBlockRows / writeFloatRows of it gives the kernel's bytes.

type Repack = (k: WasmKernels, m: WeightMatrix, row0: number, srcPtr: number, rows: number, opts?: { source?: RowSource }) => void;

function blockRepack(type: GgmlQuantType, kernel: keyof WasmExports): { repack: Repack; ref: (bytes: Uint8Array, rows: number, cols: number, source?: RowSource) => BlockWeights } {
  const fn = `repack${type}`;
  const ref = (bytes: Uint8Array, rows: number, cols: number, source?: RowSource) => unpackGgmlRows(type, bytes, rows, cols, source);
  const repack: Repack = (k, m, row0, srcPtr, rows, opts = {}) => {
    requireRows(fn, k, m, row0, rows, m.cols);
    if (m.layout !== LAYOUTS[storedLayout(type)]) throw new RangeError(`${fn}: a ${m.layout.tag} matrix, not ${storedLayout(type)}`);
    if (m.cols % GGML_BLOCKS[type].values !== 0) throw new RangeError(`${fn}: ${m.cols} columns are not whole ${GGML_BLOCKS[type].values}-value ${type} blocks`);
    const rowBytes = storedRowBytes(type, m.cols);
    requireRegion(k, fn, "src", srcPtr, rows * rowBytes, 1);
    const bad = (k.exports[kernel] as WasmExports["repack_q4_1"])(srcPtr, rows, m.cols, row0, m.valuesPtr, m.scalesPtr, m.auxPtr);
    if (bad >= 0) {
      const where = opts.source ?? { name: fn, row0 };
      ref(k.u8.slice(srcPtr + bad * rowBytes, srcPtr + (bad + 1) * rowBytes), 1, m.cols, { name: where.name, row0: where.row0 + bad });
      throw new RangeError(`${where.name}: row ${where.row0 + bad} refused`);
    }
  };
  return { repack, ref };
}

function floatRepack(type: "F32" | "F16" | "BF16", kernel: keyof WasmExports): { repack: Repack; ref: (bytes: Uint8Array, rows: number, cols: number, source?: RowSource) => FloatWeights } {
  const fn = `repack${type === "BF16" ? "Bf16" : type}`;
  const ref = (bytes: Uint8Array, rows: number, cols: number, source: RowSource = { name: `${fn}Ref`, row0: 0 }): FloatWeights => {
    requireShape(`${fn}Ref`, rows, cols, "rows");
    if (bytes.length !== rows * storedRowBytes(type, cols)) throw new RangeError(`${fn}Ref: ${bytes.length} bytes for ${rows} x ${cols} ${type}`);
    const values = new Float32Array(rows * cols);
    decodeToF32(type, bytes, values, 0);
    const bad = values.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) throw new RangeError(`${source.name}: row ${source.row0 + Math.floor(bad / cols)} contains NaN/Inf at column ${bad % cols} (value ${values[bad]})`);
    return { layout: LAYOUTS[storedLayout(type)], rows, cols, values };
  };
  const repack: Repack = (k, m, row0, srcPtr, rows, opts = {}) => {
    requireRows(fn, k, m, row0, rows, m.cols);
    if (m.layout !== LAYOUTS[storedLayout(type)]) throw new RangeError(`${fn}: a ${m.layout.tag} matrix, not ${storedLayout(type)}`);
    const rowBytes = storedRowBytes(type, m.cols);
    requireRegion(k, fn, "src", srcPtr, rows * rowBytes, 1);
    const bad = (k.exports[kernel] as WasmExports["repack_f32"])(srcPtr, rows, m.cols, row0, m.valuesPtr);
    if (bad >= 0) {
      const where = opts.source ?? { name: fn, row0 };
      ref(k.u8.slice(srcPtr + bad * rowBytes, srcPtr + (bad + 1) * rowBytes), 1, m.cols, { name: where.name, row0: where.row0 + bad });
      throw new RangeError(`${where.name}: row ${where.row0 + bad} refused`);
    }
  };
  return { repack, ref };
}

export const { repack: repackQ4_1, ref: repackQ4_1Ref } = blockRepack("Q4_1", "repack_q4_1");
export const { repack: repackQ5_0, ref: repackQ5_0Ref } = blockRepack("Q5_0", "repack_q5_0");
export const { repack: repackQ5_1, ref: repackQ5_1Ref } = blockRepack("Q5_1", "repack_q5_1");
export const { repack: repackQ8_0, ref: repackQ8_0Ref } = blockRepack("Q8_0", "repack_q8_0");
export const { repack: repackQ4K, ref: repackQ4KRef } = blockRepack("Q4_K", "repack_q4_k");
export const { repack: repackQ5K, ref: repackQ5KRef } = blockRepack("Q5_K", "repack_q5_k");
export const { repack: repackQ6K, ref: repackQ6KRef } = blockRepack("Q6_K", "repack_q6_k");
export const { repack: repackF32, ref: repackF32Ref } = floatRepack("F32", "repack_f32");
export const { repack: repackF16, ref: repackF16Ref } = floatRepack("F16", "repack_f16");
export const { repack: repackBf16, ref: repackBf16Ref } = floatRepack("BF16", "repack_bf16");

/** The repack kernel of each stored type but Q4_0 (repackQ4_0, quantize.ts). */
const REPACKS: Record<Exclude<WeightEncoding, "Q4_0">, Repack> = {
  Q4_1: repackQ4_1, Q5_0: repackQ5_0, Q5_1: repackQ5_1, Q8_0: repackQ8_0, Q4_K: repackQ4K, Q5_K: repackQ5K, Q6_K: repackQ6K,
  F32: repackF32, F16: repackF16, BF16: repackBf16,
};

/**
 * Rows [row0, row0 + rows) of m from `rows` rows stored as `encoding` at srcPtr in Wasm memory (one staged
 * read of a checkpoint), by m's layout: an il4 matrix gets the engine's int4 recipe (float rows quantized by
 * quantizeRows, Q4_0 blocks repacked by repackQ4_0: this project's own files hold the recipe's blocks); any
 * other layout holds the file's values as they are, `encoding` being one it holds (storedLayout), by the
 * type's repack kernel. Throws, naming `source`'s row (and block), on NaN or infinity.
 */
export function writeStoredRows(
  k: WasmKernels, m: WeightMatrix, row0: number, srcPtr: number, rows: number, encoding: WeightEncoding, opts: { source?: RowSource } = {},
): void {
  const source = opts.source;
  if (m.layout.tag === "il4") {
    if (encoding === "Q4_0") return repackQ4_0(k, m, row0, srcPtr, rows, { source });
    if (isGgmlQuantType(encoding)) throw new RangeError(`writeStoredRows: ${encoding} rows cannot be written as il4 (the recipe quantizes float rows)`);
    return quantizeRows(k, m, row0, srcPtr, rows, encoding, { source });
  }
  if (m.layout !== LAYOUTS[storedLayout(encoding)]) throw new RangeError(`writeStoredRows: ${encoding} rows for a ${m.layout.tag} matrix`);
  if (encoding === "Q4_0") return repackQ4_0(k, m, row0, srcPtr, rows, { source });
  REPACKS[encoding](k, m, row0, srcPtr, rows, { source });
}
