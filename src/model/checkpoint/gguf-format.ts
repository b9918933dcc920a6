// The GGUF container format, shared by its reader (gguf.ts) and writer (gguf-writer.ts).
//
// GGUF v3, little-endian:
//   "GGUF" | u32 version | u64 tensor count | u64 metadata count | metadata | tensor infos | pad | data
// A metadata entry is a string key, a u32 value type and the value. A string is a u64 byte length and that
// many UTF-8 bytes (no terminator). An array is a u32 item type, a u64 count and the items. A tensor info is
// its name, a u32 dimension count, the dimensions as u64 with ne[0] (the contiguous, innermost axis) first,
// a u32 ggml type and a u64 offset into the data section. The data section starts at the first multiple of
// general.alignment (32 when the key is absent) after the tensor infos, and every tensor's offset is a
// multiple of it too.

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;
/** The format's limit on a tensor's dimensions (ggml's GGML_MAX_DIMS). */
export const GGUF_MAX_DIMS = 4;
/** The format's limit on a tensor name's length in bytes (ggml's GGML_MAX_NAME). */
export const GGUF_MAX_TENSOR_NAME = 64;
/** Keys are at most 65535 bytes in the format's description. */
export const GGUF_MAX_KEY = 65535;

/** The type tag of a metadata value. */
export const GgufValueType = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const;

/** The name a metadata value type goes by in this code and in error messages. */
export type GgufScalarType = "u8" | "i8" | "u16" | "i16" | "u32" | "i32" | "f32" | "bool" | "string" | "u64" | "i64" | "f64";

/** Value type tag -> name; ARRAY (9) is not a scalar and has no entry. */
export const SCALAR_TYPES: ReadonlyMap<number, GgufScalarType> = new Map([
  [0, "u8"],
  [1, "i8"],
  [2, "u16"],
  [3, "i16"],
  [4, "u32"],
  [5, "i32"],
  [6, "f32"],
  [7, "bool"],
  [8, "string"],
  [10, "u64"],
  [11, "i64"],
  [12, "f64"],
]);

/** Bytes one value takes in the file; a string takes at least its 8-byte length. */
export const SCALAR_BYTES: Record<GgufScalarType, number> = {
  u8: 1,
  i8: 1,
  u16: 2,
  i16: 2,
  u32: 4,
  i32: 4,
  f32: 4,
  bool: 1,
  string: 8,
  u64: 8,
  i64: 8,
  f64: 8,
};

export interface GgmlTypeInfo {
  name: string;
  /** Values per block: a tensor's ne[0] must be a multiple of it. */
  blockSize: number;
  /** Bytes per block. */
  blockBytes: number;
}

/**
 * The ggml tensor types whose byte size this code knows (type id -> layout). A file using any other type
 * is refused: without the layout its tensors' extents cannot be checked.
 */
export const GGML_TYPES: ReadonlyMap<number, GgmlTypeInfo> = new Map(
  (
    [
      [0, "F32", 1, 4],
      [1, "F16", 1, 2],
      [2, "Q4_0", 32, 18],
      [3, "Q4_1", 32, 20],
      [6, "Q5_0", 32, 22],
      [7, "Q5_1", 32, 24],
      [8, "Q8_0", 32, 34],
      [9, "Q8_1", 32, 36],
      [10, "Q2_K", 256, 84],
      [11, "Q3_K", 256, 110],
      [12, "Q4_K", 256, 144],
      [13, "Q5_K", 256, 176],
      [14, "Q6_K", 256, 210],
      [15, "Q8_K", 256, 292],
      [24, "I8", 1, 1],
      [25, "I16", 1, 2],
      [26, "I32", 1, 4],
      [27, "I64", 1, 8],
      [28, "F64", 1, 8],
      [30, "BF16", 1, 2],
    ] as const
  ).map(([id, name, blockSize, blockBytes]) => [id, { name, blockSize, blockBytes }]),
);

/**
 * The ggml types the writer writes, by name: this project's files use F32, F16 and Q4_0; the others let
 * tests build files as llama.cpp's tools write them (every type the engine reads, and Q2_K to be refused).
 */
export const GgmlType = { F32: 0, F16: 1, Q4_0: 2, Q4_1: 3, Q5_0: 6, Q5_1: 7, Q8_0: 8, Q2_K: 10, Q4_K: 12, Q5_K: 13, Q6_K: 14, BF16: 30 } as const;
export type GgmlTypeName = keyof typeof GgmlType;

/**
 * Q4_0: 32 values per block (the int4 group), an f16 scale d and 16 bytes of nibbles; the value is
 * (nibble - 8) * d. The kernels that read these blocks (src/kernels/quantize.ts) own the byte count.
 */
export { GROUP as Q4_0_BLOCK } from "../../kernels/numerics.js";
export { Q4_0_BLOCK_BYTES } from "../../kernels/quantize.js";

export function alignUp(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}
