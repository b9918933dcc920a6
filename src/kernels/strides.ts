// Byte strides of the weight layouts (src/kernels/layout.ts documents each layout; this file holds only their
// sizes), shared by the Wasm kernels (assembly/*.ts import this very file), their TypeScript wrappers and
// twins, the loaders and the thread pool's job codec: one place for each number.
//
// Every layout cuts a matrix into cells: a 4-row block (rows 4b..4b+3, interleaved so that a GEMV reads one
// sequential stream) times a group of GROUP = 32 consecutive columns. A layout's regions hold, cell after
// cell in (block, group) order, the cell's values, its scales and (for a layout with a min) its mins.
//
// AssemblyScript parses this file too: plain integer literals only (see numerics.ts).

/** Rows interleaved per block of every layout. */
export const BLOCK_ROWS = 4;

/** Bytes of a cell's values in the 4-bit layouts (il4, q4_0, q4_1, q4_k): 4 rows x 32 nibbles. */
export const NIBBLE_CELL_BYTES = 64;
/** Bytes of a cell's values in the 8-bit layouts (q8_0, q5_1, q5_k, q6_k): 4 rows x 32 int8. */
export const INT8_CELL_BYTES = 128;
/** Bytes of a cell's values in the f16 and bf16 layouts: 4 rows x 32 halves. */
export const HALF_CELL_BYTES = 256;
/** Bytes of a cell's values in the f32 layout: 4 rows x 32 floats. */
export const FLOAT_CELL_BYTES = 512;

/** Bytes of one scale (or min) per row of a cell: f16 in il4, q4_0, q4_1, q8_0 and q5_1. */
export const F16_CELL_BYTES = 8;
/** Bytes of one scale (or min) per row of a cell: f32 in q4_k and q5_k (two of them per row in q6_k). */
export const F32_CELL_BYTES = 16;

/** Bytes per block of il4's row sums: one f32 per row. */
export const ROW_SUM_BLOCK_BYTES = 16;

/** Tokens per tile of i8t activations: the relaxed build's GEMM reads 4 tokens at once (layout.ts, Int8Activations). */
export const TILE_TOKENS = 4;

/**
 * Bytes per group of a 4-token tile of i8t activations (the relaxed build's GEMM operand, written by
 * prepare_activations; src/kernels/layout.ts): the 4 tokens' correction words (16 bytes), then for each of
 * the group's 4 packed weight vectors the 4 tokens' 8 int8 activations that meet it (4 x 32 bytes).
 */
export const TILE_GROUP_BYTES = 144;
