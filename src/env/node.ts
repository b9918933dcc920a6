// Node's side of the environment seam: a checkpoint folder on disk as a ModelFolder, the cores this process
// may use, and (by leaving wasmBytes and spawn unset) build/*.wasm read from disk and worker_threads.
// loadModel (src/api.ts) is the shared openModel (src/env/folder.ts) over nodeFolder, so Node and the
// browser load a checkpoint with the same code.
import { readFile, stat } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { openFileSource } from "../model/checkpoint/byte-source.js";
import type { Checkpoint } from "../model/checkpoint/checkpoint.js";
import { openFolderCheckpoint } from "./folder.js";
import type { ModelFolder, Platform } from "./platform.js";

export const nodePlatform: Platform = {
  name: "node",
  defaultThreads: () => availableParallelism(),
};

const isFile = (path: string) =>
  stat(path).then(
    (s) => s.isFile(),
    () => false,
  );

export function nodeFolder(dir: string): ModelFolder {
  return {
    name: dir,
    async readText(file) {
      const path = join(dir, file);
      return (await isFile(path)) ? readFile(path, "utf8") : null;
    },
    async open(file) {
      const path = join(dir, file);
      return (await isFile(path)) ? openFileSource(path) : null;
    },
  };
}

/** The checkpoint of a folder on disk (model.safetensors, or an index and its shards). */
export function openCheckpoint(dir: string): Promise<Checkpoint> {
  return openFolderCheckpoint(nodeFolder(dir));
}
