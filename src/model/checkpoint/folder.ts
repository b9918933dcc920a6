// The weights of a checkpoint folder: model.safetensors, or the shards a model.safetensors.index.json
// names, opened as one Checkpoint.
import type { ModelFolder } from "../../env/folder.js";
import { CheckpointError, type ByteSource } from "../../env/byte-source.js";
import { Checkpoint, INDEX_FILE, SINGLE_FILE, parseIndex } from "./checkpoint.js";
import { showName } from "./safetensors.js";

/**
 * Opens the folder's model.safetensors, or else the shards its model.safetensors.index.json names
 * (transformers prefers the single file when both are present; so does this). Every source it opened is
 * closed again when the checkpoint cannot be built.
 */
export async function openFolderCheckpoint(folder: ModelFolder): Promise<Checkpoint> {
  const single = await folder.open(SINGLE_FILE);
  if (single !== null) {
    try {
      return await Checkpoint.fromSources([single]);
    } catch (err) {
      await single.close().catch(() => undefined);
      throw err;
    }
  }
  const indexText = await folder.readText(INDEX_FILE);
  if (indexText === null) throw new CheckpointError(`no ${SINGLE_FILE} or ${INDEX_FILE} in ${folder.name}`);
  const where = `${folder.name}/${INDEX_FILE}`;
  let raw: unknown;
  try {
    raw = JSON.parse(indexText);
  } catch (err) {
    throw new CheckpointError(`${where}: not valid JSON (${(err as Error).message})`);
  }
  const index = parseIndex(raw, where);
  const shards = new Map<string, string>(); // shard -> first tensor naming it, for the message
  for (const [tensor, shard] of index.weightMap) if (!shards.has(shard)) shards.set(shard, tensor);
  const sources: ByteSource[] = [];
  try {
    for (const [shard, tensor] of shards) {
      const source = await folder.open(shard);
      if (source === null) {
        throw new CheckpointError(`${where}: shard ${shard} (holding ${showName(tensor)}) does not exist in ${folder.name}`);
      }
      sources.push(source);
    }
    return await Checkpoint.fromSources(sources, raw as object);
  } catch (err) {
    await Promise.all(sources.map((s) => s.close().catch(() => undefined)));
    throw err;
  }
}
