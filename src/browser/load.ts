// Loading a model in a browser (in a Web Worker, or on a page that may block): a ModelFolder from a URL
// base or picked files, the kernels fetched from a URL base (or given as bytes), threads as Web Workers
// when cross-origin isolated.
import { openModel } from "../session/open.js";
import type { ModelFolder } from "../env/folder.js";
import type { LoadOptions } from "../session/open.js";
import type { Model } from "../session/model.js";
import { folderFromFiles, folderFromUrl, type PickedFile } from "./folders.js";
import { browserPlatform, type WasmSource } from "./platform.js";
import type { ModelCache } from "./model-cache.js";
import { canUseThreads } from "./web-worker-spawn.js";

export interface BrowserLoadOptions extends LoadOptions {
  /** Kernel builds: a URL base with simd.wasm, relaxed.wasm, simd-shared.wasm, relaxed-shared.wasm, or bytes. */
  wasm: WasmSource;
  /** Keep the model's files (of a URL source) and the kernel builds (of a URL base) across visits. */
  cache?: ModelCache;
}

/**
 * Loads a checkpoint folder: a ModelFolder, a URL base (string or URL), or the files of a picked or dropped
 * folder. Same checks, engine and generation as Node's loadModel.
 */
export async function loadModelInBrowser(
  source: ModelFolder | string | URL | Iterable<File | PickedFile>,
  opts: BrowserLoadOptions,
): Promise<Model> {
  const folder =
    typeof source === "string" || source instanceof URL ? folderFromUrl(source, { cache: opts.cache }) : isFolder(source) ? source : folderFromFiles(source);
  const { wasm, cache, ...rest } = opts;
  if (rest.threads !== undefined && rest.threads > 1 && !canUseThreads()) {
    throw new Error(
      `${rest.threads} threads need shared memory, which a browser gives only to a cross-origin isolated page (serve it with the headers Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp); use 1 thread here`,
    );
  }
  return openModel(folder, browserPlatform(wasm, { cache }), rest);
}

function isFolder(s: unknown): s is ModelFolder {
  return typeof s === "object" && s !== null && typeof (s as ModelFolder).readText === "function" && typeof (s as ModelFolder).open === "function";
}
