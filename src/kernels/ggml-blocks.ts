// ggml's quantized block formats (ggml-common.h), read into the logical form of the layout that holds each
// exactly (BlockWeights, layout.ts): the one place in this code that knows where a block keeps its bits.
// The loaders repack these into Wasm memory (repack.ts); the float32 reference and `readF32` decode them
// (src/model/checkpoint/ggml-dequantize.ts, through layoutValue's formula).
//
// Every multi-byte field is little-endian; d, m and dmin are f16. A value's q and the layout's formula:
//
//   type   block: values, bytes  fields                                      value                layout
//   Q4_0   32, 18    d, 16 B nibbles                                          d · (n - 8)          q4_0
//   Q4_1   32, 20    d, m, 16 B nibbles                                       d · n + m            q4_1
//   Q5_0   32, 22    d, qh (u32: bit i = value i's 5th bit), 16 B nibbles     d · (n5 - 16)        q5_0
//   Q5_1   32, 24    d, m, qh, 16 B nibbles                                   d · n5 + m           q5_1
//   Q8_0   32, 34    d, 32 int8                                               d · q                q8_0
//   Q4_K   256, 144  d, dmin, 12 B of 6-bit scales sc and mins m, 128 B       (d·sc) · n - dmin·m  q4_k
//   Q5_K   256, 176  d, dmin, 12 B of scales and mins, qh 32 B, 128 B         (d·sc) · n5 - dmin·m q5_k
//   Q6_K   256, 210  ql 128 B, qh 64 B, 16 int8 scales sc, d                  (d·sc) · (n6 - 32)   q6_k
//
// Nibbles of the 32-value types: value i < 16 is byte i's low nibble, value 16 + i its high nibble. Q4_K and
// Q5_K: sub-block s < 8 holds values 32s..32s+31 with scale sc[s] and min m[s] (get_scale_min_k4 below); its
// value l is the low (s even) or high (s odd) nibble of byte 32·(s >> 1) + l, and Q5_K's 5th bit is bit s of
// qh[l]. Q6_K: value e's low 4 bits are nibble (e >> 6) & 1 of ql[64·(e >> 7) + (e & 63)], its top 2 bits are
// bits 2k..2k+1 of qh[32·(e >> 7) + (e & 31)] with k = (e >> 5) & 3, and sc[e >> 4] its scale.
//
// d·sc and dmin·m are exact in f32 (an f16 times an integer below 2^8), so each layout holds them as they are;
// a NaN or infinite d, m or dmin is refused, naming the row and block (a float element likewise).
import { bytesPerElement, f16BitsToF32, type DType } from "./dtype.js";
import { LAYOUTS, requireShape, type BlockWeights, type LayoutTag } from "./layout.js";
import { GROUP } from "./numerics.js";

/** The ggml quantized types read here: values and bytes per block, and the layout that holds them. */
export const GGML_BLOCKS = {
  Q4_0: { values: 32, bytes: 18, layout: "q4_0" },
  Q4_1: { values: 32, bytes: 20, layout: "q4_1" },
  Q5_0: { values: 32, bytes: 22, layout: "q5_0" },
  Q5_1: { values: 32, bytes: 24, layout: "q5_1" },
  Q8_0: { values: 32, bytes: 34, layout: "q8_0" },
  Q4_K: { values: 256, bytes: 144, layout: "q4_k" },
  Q5_K: { values: 256, bytes: 176, layout: "q5_k" },
  Q6_K: { values: 256, bytes: 210, layout: "q6_k" },
} as const satisfies Record<string, { values: number; bytes: number; layout: LayoutTag }>;

export type GgmlQuantType = keyof typeof GGML_BLOCKS;

export function isGgmlQuantType(type: string): type is GgmlQuantType {
  return Object.hasOwn(GGML_BLOCKS, type);
}

/** How a tensor's elements are stored in a file: plain floats, or one of the ggml block types. */
export type WeightEncoding = DType | GgmlQuantType;

/** Every encoding, in a fixed order (the thread pool's job codec numbers them by it). */
export const WEIGHT_ENCODINGS: readonly WeightEncoding[] = ["F32", "F16", "BF16", ...(Object.keys(GGML_BLOCKS) as GgmlQuantType[])];

/** Bytes one row of `cols` values takes as stored (cols a multiple of the block's values for a block type). */
export function storedRowBytes(encoding: WeightEncoding, cols: number): number {
  if (!isGgmlQuantType(encoding)) return cols * bytesPerElement(encoding);
  const b = GGML_BLOCKS[encoding];
  return (cols / b.values) * b.bytes;
}

/** The layout a llama.cpp file's matrix stored as `encoding` is computed in: never fewer bits than it holds. */
export function storedLayout(encoding: WeightEncoding): LayoutTag {
  if (isGgmlQuantType(encoding)) return GGML_BLOCKS[encoding].layout;
  return ({ F32: "f32", F16: "f16", BF16: "bf16" } as const)[encoding];
}

/** Where the rows come from, for error messages: a name ("tensor X") and the number of the first row. */
export interface RowSource {
  name: string;
  row0: number;
}

/** Scale and min of sub-block j of a K-type block's 12 packed bytes at s (ggml's get_scale_min_k4). */
function scaleMinK4(b: Uint8Array, s: number, j: number): [number, number] {
  if (j < 4) return [b[s + j] & 63, b[s + j + 4] & 63];
  return [(b[s + j + 4] & 0xf) | ((b[s + j - 4] >> 6) << 4), (b[s + j + 4] >> 4) | ((b[s + j] >> 6) << 4)];
}

const F = Math.fround;

/**
 * Reads `rows` rows of `cols` values stored as `type` (bytes: rows end to end) into the logical form of the
 * type's layout. Throws a RangeError naming the row and block of the first NaN or infinite d, m or dmin.
 */
export function unpackGgmlRows(type: GgmlQuantType, bytes: Uint8Array, rows: number, cols: number, source: RowSource = { name: type, row0: 0 }): BlockWeights {
  const fn = `unpackGgmlRows(${type})`;
  requireShape(fn, rows, cols, "rows");
  const { values: per, bytes: size, layout: tag } = GGML_BLOCKS[type];
  if (cols % per !== 0) throw new RangeError(`${fn}: ${cols} columns are not whole ${per}-value ${type} blocks`);
  const rowBytes = (cols / per) * size;
  if (bytes.length !== rows * rowBytes) throw new RangeError(`${fn}: ${bytes.length} bytes for ${rows} rows of ${cols} ${type} values`);
  const layout = LAYOUTS[tag];
  const groups = cols / GROUP;
  const q = new Int8Array(rows * cols);
  const scales = new Float32Array(rows * groups * layout.scalesPerGroup);
  const mins = layout.hasMin ? new Float32Array(rows * groups) : null;
  const half = (o: number, what: string, r: number, blk: number): number => {
    const h = bytes[o] | (bytes[o + 1] << 8);
    if ((h & 0x7c00) === 0x7c00) {
      throw new RangeError(`${source.name}: row ${source.row0 + r}, block ${blk}: the ${type} ${what} is ${f16BitsToF32(h)} (f16 bits 0x${h.toString(16)})`);
    }
    return f16BitsToF32(h);
  };
  const blocks = cols / per;
  for (let r = 0; r < rows; r++) {
    for (let blk = 0; blk < blocks; blk++) {
      const o = r * rowBytes + blk * size;
      const v = r * cols + blk * per; // the block's first value
      const g = v / GROUP; // its first group, counted over the whole matrix (row-major)
      switch (type) {
        case "Q4_0":
        case "Q4_1": {
          scales[g] = half(o, "d", r, blk);
          const qs = o + (type === "Q4_1" ? 4 : 2);
          if (mins !== null) mins[g] = half(o + 2, "m", r, blk);
          const off = type === "Q4_0" ? 8 : 0;
          for (let i = 0; i < 16; i++) {
            q[v + i] = (bytes[qs + i] & 15) - off;
            q[v + 16 + i] = (bytes[qs + i] >> 4) - off;
          }
          break;
        }
        case "Q5_0":
        case "Q5_1": {
          scales[g] = half(o, "d", r, blk);
          const at = o + (type === "Q5_1" ? 4 : 2);
          if (mins !== null) mins[g] = half(o + 2, "m", r, blk);
          const qh = (bytes[at] | (bytes[at + 1] << 8) | (bytes[at + 2] << 16) | (bytes[at + 3] << 24)) >>> 0;
          const off = type === "Q5_0" ? 16 : 0;
          for (let i = 0; i < 16; i++) {
            q[v + i] = ((bytes[at + 4 + i] & 15) | (((qh >>> i) & 1) << 4)) - off;
            q[v + 16 + i] = ((bytes[at + 4 + i] >> 4) | (((qh >>> (16 + i)) & 1) << 4)) - off;
          }
          break;
        }
        case "Q8_0": {
          scales[g] = half(o, "d", r, blk);
          for (let i = 0; i < 32; i++) q[v + i] = (bytes[o + 2 + i] << 24) >> 24;
          break;
        }
        case "Q4_K":
        case "Q5_K": {
          const d = half(o, "d", r, blk);
          const dmin = half(o + 2, "dmin", r, blk);
          const qh = o + 16;
          const qs = type === "Q5_K" ? o + 48 : o + 16;
          for (let s = 0; s < 8; s++) {
            const [sc, m] = scaleMinK4(bytes, o + 4, s);
            scales[g + s] = F(d * sc);
            mins![g + s] = -F(dmin * m);
            const shift = (s & 1) * 4;
            for (let l = 0; l < 32; l++) {
              const n = (bytes[qs + 32 * (s >> 1) + l] >> shift) & 15;
              q[v + 32 * s + l] = type === "Q5_K" ? n | (((bytes[qh + l] >> s) & 1) << 4) : n;
            }
          }
          break;
        }
        case "Q6_K": {
          const d = half(o + 208, "d", r, blk);
          for (let e = 0; e < 256; e++) {
            const lo = (bytes[o + 64 * (e >> 7) + (e & 63)] >> (((e >> 6) & 1) * 4)) & 15;
            const hi = (bytes[o + 128 + 32 * (e >> 7) + (e & 31)] >> (2 * ((e >> 5) & 3))) & 3;
            q[v + e] = (lo | (hi << 4)) - 32;
          }
          // Two scales per group of 32 (one per 16), the group's first half first.
          for (let i = 0; i < 16; i++) scales[2 * g + i] = F(d * ((bytes[o + 192 + i] << 24) >> 24));
          break;
        }
      }
    }
  }
  return { layout, rows, cols, q, scales, mins };
}
