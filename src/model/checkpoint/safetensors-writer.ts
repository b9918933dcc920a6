// Streaming safetensors writer: the header is computed from shapes alone, then each tensor is converted
// and written a chunk at a time, so a multi-GB synthetic checkpoint never exists in memory.
// Also writes sharded checkpoints with model.safetensors.index.json, as Hugging Face lays them out.
import { CheckpointError, type ByteSink } from "../../env/byte-source.js";
import { bytesPerElement, encodeFromF32, type DType } from "../../kernels/dtype.js";
import { numel, showName } from "./safetensors.js";
import { INDEX_FILE } from "./checkpoint.js";

export interface TensorToWrite {
  name: string;
  dtype: DType;
  shape: number[];
  /** The values, or a producer called once that yields them in order in chunks of any size. */
  data: Float32Array | (() => AsyncIterable<Float32Array>);
}

/** Elements converted per write: 1M f32 = 4 MiB in, at most 4 MiB out. */
const CHUNK_ELEMENTS = 1 << 20;

function byteLength(t: TensorToWrite): number {
  return numel(t.shape) * bytesPerElement(t.dtype);
}

function checkTensors(tensors: readonly TensorToWrite[]): void {
  const seen = new Set<string>();
  for (const t of tensors) {
    if (t.name === "__metadata__") throw new CheckpointError(`tensor name __metadata__ is reserved`);
    if (seen.has(t.name)) throw new CheckpointError(`tensor ${showName(t.name)} is given twice`);
    seen.add(t.name);
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new CheckpointError(`tensor ${showName(t.name)}: shape ${JSON.stringify(t.shape)} is not non-negative integers`);
    }
    if (t.data instanceof Float32Array && t.data.length !== numel(t.shape)) {
      throw new CheckpointError(`tensor ${showName(t.name)}: ${t.data.length} values for shape ${JSON.stringify(t.shape)}`);
    }
  }
}

/** Header JSON padded with spaces to a multiple of 8, so the data section starts aligned (as HF writes it). */
function encodeHeader(tensors: readonly TensorToWrite[], metadata: Record<string, string> | undefined): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    const len = byteLength(t);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + len] };
    offset += len;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + padded).fill(0x20);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  return out;
}

async function* chunksOf(t: TensorToWrite): AsyncIterable<Float32Array> {
  if (t.data instanceof Float32Array) {
    for (let i = 0; i < t.data.length; i += CHUNK_ELEMENTS) yield t.data.subarray(i, i + CHUNK_ELEMENTS);
  } else {
    yield* t.data();
  }
}

async function writeTensor(sink: ByteSink, t: TensorToWrite): Promise<void> {
  const expected = numel(t.shape);
  const size = bytesPerElement(t.dtype);
  let written = 0;
  for await (const chunk of chunksOf(t)) {
    if (written + chunk.length > expected) {
      throw new CheckpointError(`tensor ${showName(t.name)}: producer gave more than the ${expected} values of its shape`);
    }
    // Producers may hand over huge chunks; convert in slices so the encoded copy stays bounded.
    for (let i = 0; i < chunk.length; i += CHUNK_ELEMENTS) {
      const part = chunk.subarray(i, i + CHUNK_ELEMENTS);
      const bytes = new Uint8Array(part.length * size);
      encodeFromF32(t.dtype, part, bytes, 0);
      await sink.write(bytes);
    }
    written += chunk.length;
  }
  if (written !== expected) {
    throw new CheckpointError(`tensor ${showName(t.name)}: producer gave ${written} values, shape needs ${expected}`);
  }
}

/** Writes one safetensors file to any sink; the sink is closed on success and aborted on failure. */
export async function writeSafetensorsTo(
  sink: ByteSink,
  tensors: readonly TensorToWrite[],
  metadata?: Record<string, string>,
): Promise<void> {
  try {
    checkTensors(tensors);
    await sink.write(encodeHeader(tensors, metadata));
    for (const t of tensors) await writeTensor(sink, t);
    await sink.close();
  } catch (e) {
    await sink.abort();
    throw e;
  }
}

export interface ShardedWriteOptions {
  /** Tensor bytes per shard; a tensor larger than this gets a shard of its own. */
  maxShardBytes: number;
  /** Per-file __metadata__, default {"format": "pt"} as transformers writes it. */
  metadata?: Record<string, string>;
}

export interface ShardedWriteResult {
  /** Shard file names, in order. */
  shards: string[];
  index: { metadata: { total_size: number }; weight_map: Record<string, string> };
}

/** Greedy in-order packing, the same policy as transformers' shard_checkpoint. */
function planShards(tensors: readonly TensorToWrite[], maxShardBytes: number): TensorToWrite[][] {
  const groups: TensorToWrite[][] = [];
  let current: TensorToWrite[] = [];
  let bytes = 0;
  for (const t of tensors) {
    const len = byteLength(t);
    if (current.length > 0 && bytes + len > maxShardBytes) {
      groups.push(current);
      current = [];
      bytes = 0;
    }
    current.push(t);
    bytes += len;
  }
  if (current.length > 0 || groups.length === 0) groups.push(current);
  return groups;
}

/**
 * Writes the shards `model-0000i-of-0000n.safetensors` and `model.safetensors.index.json`, each to the sink
 * `openSink(fileName)` gives (Node's shardedWrite in src/node/safetensors-files.ts opens files in a folder).
 */
export async function shardedWriteTo(
  openSink: (file: string) => Promise<ByteSink>,
  tensors: readonly TensorToWrite[],
  opts: ShardedWriteOptions,
): Promise<ShardedWriteResult> {
  if (!Number.isSafeInteger(opts.maxShardBytes) || opts.maxShardBytes < 1) {
    throw new CheckpointError(`maxShardBytes ${opts.maxShardBytes} is not a positive integer`);
  }
  checkTensors(tensors);
  const groups = planShards(tensors, opts.maxShardBytes);
  const pad = (i: number) => String(i).padStart(5, "0");
  const shards = groups.map((_, i) => `model-${pad(i + 1)}-of-${pad(groups.length)}.safetensors`);
  const weightMap: Record<string, string> = {};
  let total = 0;
  for (let i = 0; i < groups.length; i++) {
    await writeSafetensorsTo(await openSink(shards[i]), groups[i], opts.metadata ?? { format: "pt" });
    for (const t of groups[i]) {
      weightMap[t.name] = shards[i];
      total += byteLength(t);
    }
  }
  const index = { metadata: { total_size: total }, weight_map: weightMap };
  const sink = await openSink(INDEX_FILE);
  try {
    await sink.write(new TextEncoder().encode(JSON.stringify(index, null, 2) + "\n"));
    await sink.close();
  } catch (e) {
    await sink.abort();
    throw e;
  }
  return { shards, index };
}
