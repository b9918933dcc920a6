// GGUF files on disk: the writer of src/model/checkpoint/gguf-writer.ts over a file sink, and `convert`
// (a checkpoint folder into one GGUF file) from a folder on disk to a file.
import { basename } from "node:path";
import {
  writeGgufTo,
  type GgufLayout,
  type GgufMetadataToWrite,
  type GgufTensorToWrite,
  type WriteGgufOptions,
} from "../model/checkpoint/gguf-writer.js";
import { convertToGguf, type ConvertResult } from "../session/convert.js";
import { openFileSink } from "./file-source.js";
import { nodeFolder } from "./folder.js";
import { nodePlatform } from "./platform.js";

/** Writes a GGUF file through `path.partial`, renamed when complete and removed on failure. */
export async function writeGgufFile(path: string, metadata: GgufMetadataToWrite, tensors: readonly GgufTensorToWrite[], opts: WriteGgufOptions = {}): Promise<GgufLayout> {
  const sink = await openFileSink(path);
  try {
    const layout = await writeGgufTo(sink, metadata, tensors, opts);
    await sink.close();
    return layout;
  } catch (e) {
    await sink.abort();
    throw e;
  }
}

/**
 * Converts the checkpoint folder `dir` into the GGUF file `path` (written as `path.partial`, renamed when
 * complete); general.name is the folder's name.
 */
export async function convertFolder(dir: string, path: string, onProgress?: (done: number, total: number) => void): Promise<ConvertResult> {
  return convertToGguf(nodeFolder(dir), await openFileSink(path), nodePlatform, { name: basename(dir), onProgress });
}
