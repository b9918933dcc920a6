// A checkpoint folder on disk as a ModelFolder, and its weights as a Checkpoint.
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import type { ModelFolder } from "../env/folder.js";
import type { Checkpoint } from "../model/checkpoint/checkpoint.js";
import { openFolderCheckpoint } from "../model/checkpoint/folder.js";
import { openFileSource } from "./file-source.js";

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
