// A checkpoint folder wherever it lives: a directory on disk (src/node/folder.ts), files a user picked or
// a URL base (src/browser/folders.ts). Loading code reads a folder only through this interface.
import type { ByteSource } from "./byte-source.js";

export interface ModelFolder {
  /** Shown in messages and as Model.dir: a path, a folder name, a URL. */
  readonly name: string;
  /** A file's text, or null when the folder has no such file. */
  readText(file: string): Promise<string | null>;
  /** A file as random-access bytes, or null when the folder has no such file. The caller closes it. */
  open(file: string): Promise<ByteSource | null>;
}
