// Safetensors checkpoints written to disk: the writers of src/model/checkpoint/safetensors-writer.ts over
// file sinks (each file goes to `name.partial` and is renamed when complete).
import { join } from "node:path";
import { shardedWriteTo, writeSafetensorsTo, type ShardedWriteOptions, type ShardedWriteResult, type TensorToWrite } from "../model/checkpoint/safetensors-writer.js";
import { openFileSink } from "./file-source.js";

/** Writes one safetensors file at `path`. */
export async function writeSafetensors(path: string, tensors: readonly TensorToWrite[], metadata?: Record<string, string>): Promise<void> {
  await writeSafetensorsTo(await openFileSink(path), tensors, metadata);
}

/** Writes `dir/model-0000i-of-0000n.safetensors` shards and `dir/model.safetensors.index.json`. */
export function shardedWrite(dir: string, tensors: readonly TensorToWrite[], opts: ShardedWriteOptions): Promise<ShardedWriteResult> {
  return shardedWriteTo((file) => openFileSink(join(dir, file)), tensors, opts);
}
