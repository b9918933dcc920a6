// The shape of the weight layouts that hold a llama.cpp file's quantized values (src/kernels/layout.ts
// documents them), for the kernels that read them (matmul-i8b.ts) and the ones that write them (repack.ts).
// Only ever imported, never re-exported from index.ts. Ids are compile-time constants: each layout has exports
// of its own, and no id crosses into Wasm.
import { F16_CELL_BYTES, F32_CELL_BYTES, INT8_CELL_BYTES, NIBBLE_CELL_BYTES } from "../src/kernels/strides";

export const Q4_0: i32 = 0;
export const Q4_1: i32 = 1;
export const Q4_K: i32 = 2;
export const Q8_0: i32 = 3;
export const Q5_1: i32 = 4;
export const Q5_K: i32 = 5;
export const Q6_K: i32 = 6;
export const Q5_0: i32 = 7;

/** 4-bit cells (nibbles, unpacked as in il4); else int8 cells. */
// @ts-ignore: decorator
@inline export function nibbles(L: i32): bool {
  return L == Q4_0 || L == Q4_1 || L == Q4_K;
}

/** Nibbles hold q + 8 (q4_0, as a Q4_0 block stores them): a group's dot starts from -8 · Σ q_x. */
// @ts-ignore: decorator
@inline export function offset8(L: i32): bool {
  return L == Q4_0;
}

// @ts-ignore: decorator
@inline export function f32Scales(L: i32): bool {
  return L == Q4_K || L == Q5_K || L == Q6_K;
}

// @ts-ignore: decorator
@inline export function hasMin(L: i32): bool {
  return L == Q4_1 || L == Q4_K || L == Q5_1 || L == Q5_K;
}

/**
 * Int8 cells whose values are 0..31 (q5_0's q + 16, q5_1's and q5_k's q), so they fit the 7-bit operand of
 * the relaxed build's byte dot (i16x8.relaxed_dot_i8x16_i7x16_s) and 8 products of one row sum in an i16 lane.
 */
// @ts-ignore: decorator
@inline export function fiveBit(L: i32): bool {
  return L == Q5_0 || L == Q5_1 || L == Q5_K;
}

/** Values hold q + 16 (q5_0, as a Q5_0 block stores them): a group's dot is then less 16 · Σ q_x. */
// @ts-ignore: decorator
@inline export function offset16(L: i32): bool {
  return L == Q5_0;
}

/** Two scales per row and group, one per 16 values (q6_k). */
// @ts-ignore: decorator
@inline export function halves(L: i32): bool {
  return L == Q6_K;
}

// @ts-ignore: decorator
@inline export function valueBytes(L: i32): usize {
  return nibbles(L) ? <usize>NIBBLE_CELL_BYTES : <usize>INT8_CELL_BYTES;
}

// @ts-ignore: decorator
@inline export function scaleBytes(L: i32): usize {
  if (halves(L)) return <usize>(2 * F32_CELL_BYTES);
  return f32Scales(L) ? <usize>F32_CELL_BYTES : <usize>F16_CELL_BYTES;
}

// @ts-ignore: decorator
@inline export function minBytes(L: i32): usize {
  if (!hasMin(L)) return 0;
  return f32Scales(L) ? <usize>F32_CELL_BYTES : <usize>F16_CELL_BYTES;
}
