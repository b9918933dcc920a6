// Bytes a model occupies: its weights as a checkpoint stores them, under the int4 recipe, and as the engine
// holds them (each matrix in its layout: engineWeightBytes, which the load's budget check and reserve use), and
// the KV cache for a context length; and, from the same slot layout, when a cache can be resumed
// (canResumeAt, the pure policy generate/sequence.ts applies without touching the cache itself).
//
// The conventions are the ones that reproduce the technical report's figures (test/model/memory.test.ts):
// - int4 weights are symmetric with one scale per (row, group of 32 inputs), for every linear layer AND for
//   the embedding table; a tied table is one tensor serving as input embedding and output head, so it is
//   counted once. Norm weights stay float32. The report counts float32 scales (recipeF32Scales); the engine
//   and a GGUF Q4_0 file keep them as float16.
// - The KV cache holds K and V as int8 (1 byte per value) plus one float32 scale per (token, KV head) for
//   each of K and V. Global layers keep every position; a sliding layer keeps a ring buffer of
//   sliding_window slots, so min(N, window) positions.
// - "MiB" is 2^20 bytes; the published "8k" is 8000 tokens.
import { GROUP } from "../kernels/numerics.js";
import { checkContextLength, type ModelConfig } from "./config.js";
import { expectedShapes, tensorNamesFor } from "./tensor-names.js";
import { windowStart } from "../kernels/kv-slots.js";
import { regionBytes, type LayoutTag } from "../kernels/layout.js";
import { distinctRopes } from "./rope.js";
import { layoutOf } from "./load-weights.js";
import type { TensorNames } from "./tensor-names.js";
import type { WeightSource } from "./weights.js";

export interface QuantizedWeightBytes {
  /** int4 values, two per byte. */
  values: number;
  /** One float16 scale per (row, group of 32 inputs), as the engine and a GGUF Q4_0 block store them. */
  scales: number;
  /** One float32 per row, its dequantized weight sum: the engine's kernels take the activation zero point
   * out with it once per output (src/kernels/layout.ts). */
  rowSums: number;
  /** Norm weights, kept as float32. */
  norms: number;
  /** values + scales + norms: the recipe's own size (int4 + f16 group scales), what a GGUF file holds. */
  recipe: number;
  /** The recipe with float32 scales (4 bytes per group instead of 2): the technical report's count. */
  recipeF32Scales: number;
  /** values + scales + rowSums + norms: what the engine holds in Wasm memory. */
  total: number;
}

/** Weight bytes once every matrix (linear layers, embedding/output table) is int4 with group-32 scales. */
export function int4WeightBytes(c: ModelConfig): QuantizedWeightBytes {
  let values = 0;
  let groups = 0;
  let rows = 0;
  let normElements = 0;
  // expectedShapes lists each stored tensor once, so a tied head is not counted twice.
  for (const [, shape] of expectedShapes(c, tensorNamesFor(c))) {
    if (shape.length === 2) {
      const [outputs, inputs] = shape;
      values += outputs * Math.ceil(inputs / 2);
      groups += outputs * Math.ceil(inputs / GROUP);
      rows += outputs;
    } else {
      normElements += shape.reduce((a, b) => a * b, 1);
    }
  }
  const norms = normElements * 4;
  return {
    values,
    scales: groups * 2,
    rowSums: rows * 4,
    norms,
    recipe: values + groups * 2 + norms,
    recipeF32Scales: values + groups * 4 + norms,
    total: values + groups * 2 + rows * 4 + norms,
  };
}

export interface EngineWeightBytes {
  /** matrices + norms: the bytes the engine allocates for its weights (before each region's 64-byte alignment). */
  total: number;
  /** Layout -> the matrices held in it (a tied table counted once) and the bytes of their regions. */
  layouts: Partial<Record<LayoutTag, { tensors: number; bytes: number }>>;
  /** Norm weights, kept as float32. */
  norms: number;
}

/**
 * Weight bytes the engine holds for this source's tensors `names`: each matrix in the layout load-weights.ts
 * gives it (layoutOf: il4 under the int4 recipe, its ggml type's layout in a llama.cpp file), the regions
 * of that layout for its shape (padding rows included); each norm as float32. Under the recipe this is
 * int4WeightBytes(c).total whenever every matrix's rows are whole 4-row blocks.
 */
export function engineWeightBytes(c: ModelConfig, weights: WeightSource, names: TensorNames): EngineWeightBytes {
  const out: EngineWeightBytes = { total: 0, layouts: {}, norms: 0 };
  for (const [name] of expectedShapes(c, names)) {
    const info = weights.weight(name);
    if (info.shape.length !== 2) {
      out.norms += info.shape.reduce((a, b) => a * b, 1) * 4;
      continue;
    }
    const layout = layoutOf(weights, info);
    const r = regionBytes(layout, info.shape[0], info.shape[1]);
    const entry = (out.layouts[layout.tag] ??= { tensors: 0, bytes: 0 });
    entry.tensors++;
    entry.bytes += r.values + r.scales + r.aux;
    out.total += r.values + r.scales + r.aux;
  }
  out.total += out.norms;
  return out;
}

export interface StoredDtype {
  /** torch_dtype spelling, e.g. "bfloat16". */
  name: string;
  bytes: number;
  /** False when config.json does not say and bfloat16 (what MobileLLM-Pro ships) was assumed. */
  fromConfig: boolean;
}

const TORCH_DTYPE_BYTES: Record<string, number> = { bfloat16: 2, float16: 2, float32: 4 };

/** Element size named by config.json's torch_dtype; bfloat16 when the key is absent or unknown. */
export function storedDtype(torchDtype: unknown): StoredDtype {
  if (typeof torchDtype === "string" && torchDtype in TORCH_DTYPE_BYTES) {
    return { name: torchDtype, bytes: TORCH_DTYPE_BYTES[torchDtype], fromConfig: true };
  }
  return { name: "bfloat16", bytes: 2, fromConfig: false };
}

export type KvLayout = "hybrid" | "all-global";

export interface KvCacheBytes {
  contextLength: number;
  layout: KvLayout;
  /** Cached positions summed over layers. */
  positions: number;
  /** int8 K and V values. */
  data: number;
  /** float32 scales, one per (cached position, KV head) for K and one for V. */
  scales: number;
}

/**
 * Positions layer `layer` keeps in its KV cache: the whole context on a global layer, a ring of
 * `sliding_window` slots (or the context, if shorter) on a sliding one; "all-global" treats every layer as
 * global. `headroom` more ring slots let a block of that many new tokens be stored before any of them
 * attends (the engine's KvCache passes its prefill block, as llama.cpp sizes its sliding-window cache as
 * the window plus a batch); the published figures (kvCacheBytes) count none.
 */
export function layerSlots(c: ModelConfig, layer: number, contextLength: number, layout: KvLayout = "hybrid", headroom = 0): number {
  const sliding = layout === "hybrid" && c.layers[layer].kind === "sliding_attention" && c.slidingWindow !== null;
  return sliding ? Math.min(contextLength, (c.slidingWindow as number) + headroom) : contextLength;
}

/**
 * KV cache bytes for `contextLength` tokens. "hybrid" follows the config's layer_types; "all-global" is the
 * same model with every layer global, the comparison the model card makes.
 */
export function kvCacheBytes(c: ModelConfig, contextLength: number, layout: KvLayout = "hybrid"): KvCacheBytes {
  checkContextLength(c, contextLength);
  let positions = 0;
  for (let l = 0; l < c.numLayers; l++) positions += layerSlots(c, l, contextLength, layout);
  return {
    contextLength,
    layout,
    positions,
    data: positions * 2 * c.numKvHeads * c.headDim,
    scales: positions * 2 * c.numKvHeads * 4,
  };
}

/** Bytes as MiB with one decimal, the precision the published figures use. */
export function mib(bytes: number): string {
  return (bytes / 2 ** 20).toFixed(1);
}

/**
 * True when a cache holding positions [0, filled) can resume at position `pos` <= filled, i.e. drop
 * positions pos.. and run new tokens from there. Global layers keep every position, but a ring has
 * overwritten its oldest slots: the positions `pos` still needs (its window) must not be among them.
 * `intactFrom` is the oldest position every ring still holds, as the cache tracks it (KvCache.intactFrom:
 * a ring with headroom beyond its window reaches further back); without it, rings of the window alone
 * filled up to `filled`.
 */
export function canResumeAt(c: ModelConfig, contextLength: number, filled: number, pos: number, intactFrom?: number): boolean {
  if (pos > filled || pos < 0) return false;
  let sliding = false;
  for (let l = 0; l < c.numLayers; l++) sliding ||= c.layers[l].kind === "sliding_attention";
  if (!sliding || c.slidingWindow === null) return true;
  const oldestHeld = intactFrom ?? Math.max(0, filled - Math.min(contextLength, c.slidingWindow));
  return windowStart(c.slidingWindow, pos) >= oldestHeld;
}

/** wasm32 addresses 4 GiB: the int4 engine's weights, KV cache and tables all live in one such memory. */
export const WASM_MEMORY_BYTES = 2 ** 32;

/**
 * Wasm memory the engine needs at least for `contextLength`: its weights (`weights` bytes: engineWeightBytes'
 * total), the KV caches of its `sequences` (one each) and the RoPE tables (f32 cos and sin per position and
 * rotation pair, one table per distinct RoPE: Gemma's local and global layers have two). Scratch buffers
 * come on top.
 */
export function wasmEngineBytes(c: ModelConfig, contextLength: number, weights: number, sequences = 1): { weights: number; kvCache: number; ropeTable: number; total: number } {
  const kv = kvCacheBytes(c, contextLength);
  const kvCache = sequences * (kv.data + kv.scales);
  const ropeTable = contextLength * c.headDim * 4 * distinctRopes(c).length;
  return { weights, kvCache, ropeTable, total: weights + kvCache + ropeTable };
}

/**
 * Throws before anything is read or allocated when the engine could not fit in Wasm memory, its weights
 * taking `weights` bytes (engineWeightBytes' total).
 */
export function checkWasmBudget(c: ModelConfig, contextLength: number, weights: number, sequences = 1): void {
  const b = wasmEngineBytes(c, contextLength, weights, sequences);
  if (b.total > WASM_MEMORY_BYTES) {
    const caches = sequences === 1 ? "KV cache" : `KV caches of ${sequences} sequences`;
    throw new RangeError(
      `the wasm engine needs at least ${mib(b.total)} MiB for context ${contextLength} (weights ${mib(b.weights)}, ${caches} ${mib(b.kvCache)}, RoPE table ${mib(b.ropeTable)}), more than the 4096 MiB of wasm32 memory; lower the context length${sequences === 1 ? "" : " or the sequences"}`,
    );
  }
}
