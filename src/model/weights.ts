// What loading reads of a model's weights, whatever file holds them: a tensor's shape and encoding, the
// bytes of some of its rows as stored, and the whole tensor as float32. A safetensors checkpoint
// (checkpoint/checkpoint.ts) and a GGUF file (checkpoint/gguf-weights.ts) implement it; the int4 engine
// and the float32 reference read weights only through it, so both load either kind of file with one code
// path.
import { storedRowBytes, type WeightEncoding } from "../kernels/ggml-blocks.js";
import { showName } from "./checkpoint/safetensors.js";

export type { WeightEncoding } from "../kernels/ggml-blocks.js";

export interface WeightInfo {
  name: string;
  /** Outermost axis first: a matrix is [rows, cols], each row contiguous. */
  shape: readonly number[];
  encoding: WeightEncoding;
}

/**
 * How the engine computes with a source's matrices: "recipe", MobileLLM-Pro's own int4 recipe (a folder's
 * float matrices quantized at load; this project's GGUF files, whose Q4_0 blocks are the recipe's), or "file",
 * the values a llama.cpp file holds, each matrix in the layout its ggml type maps to (src/kernels/layout.ts).
 */
export type Quantization = "recipe" | "file";

export interface WeightSource {
  readonly quantization: Quantization;
  /** The file holding tensor `name`, and the tensor, as a refusal names them: `model.gguf: tensor "x"`. */
  where(name: string): string;
  /** The tensor's shape and encoding; a missing tensor is a CheckpointError. */
  weight(name: string): WeightInfo;
  /** The whole tensor as float32 (Q4_0 blocks dequantized), NaN and infinity refused. */
  readF32(name: string): Promise<Float32Array>;
  /**
   * The stored bytes of rows [row0, row0 + rows) of a 2-D tensor (rowBytes(info) each, rows end to end),
   * written into `out` at `outOffset`: the caller's own memory (the engine's Wasm heap), with no copy of
   * the tensor in between where the file allows it. Not checked for NaN or infinity.
   */
  readRowsInto(name: string, row0: number, rows: number, out: Uint8Array, outOffset: number): Promise<void>;
}

/** Bytes one row of a 2-D tensor takes as stored (cols a multiple of 32 for Q4_0). */
export function rowBytes(info: WeightInfo): number {
  return storedRowBytes(info.encoding, info.shape[info.shape.length - 1]);
}

/**
 * Why rows [row0, row0 + rows) cannot be read from this tensor, or null when they can: the one check
 * behind every WeightSource's readRowsInto (each adds its own file prefix).
 */
export function rowRangeProblem(info: WeightInfo, row0: number, rows: number): string | null {
  if (info.shape.length !== 2) return `tensor ${showName(info.name)}: rows of a ${info.shape.length}-D tensor`;
  if (!Number.isSafeInteger(row0) || !Number.isSafeInteger(rows) || row0 < 0 || rows < 0 || row0 + rows > info.shape[0]) {
    return `tensor ${showName(info.name)}: rows ${row0}..${row0 + rows} are outside its ${info.shape[0]}`;
  }
  return null;
}
