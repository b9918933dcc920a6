// Loading a model in a browser (in a Web Worker, or on a page that may block): a ModelFolder from a URL
// base or picked files, or a GGUF file (a .gguf URL, a picked .gguf), the kernels fetched from a URL base
// (or given as bytes), threads as Web Workers when cross-origin isolated.
import { openGgufModel, openModel } from "../session/open.js";
import type { ModelFolder } from "../env/folder.js";
import { blobSource, type ByteSource } from "../env/byte-source.js";
import type { LoadOptions } from "../session/open.js";
import type { Model } from "../session/model.js";
import { folderFromFiles, folderFromUrl, ggufFromFiles, ggufFromUrl, isGgufName, type PickedFile } from "./folders.js";
import { browserPlatform, type WasmSource } from "./platform.js";
import type { ModelCache } from "./model-cache.js";
import { canUseThreads } from "./web-worker-spawn.js";

export interface BrowserLoadOptions extends LoadOptions {
  /** Kernel builds: a URL base with simd.wasm, relaxed.wasm, simd-shared.wasm, relaxed-shared.wasm, or bytes; default: the package's own. */
  wasm?: WasmSource;
  /** Keep the model's files (of a URL source) and the kernel builds (of a URL base) across visits. */
  cache?: ModelCache;
}

/**
 * Loads a checkpoint folder (a ModelFolder, a URL base as a string or URL, or the files of a picked or
 * dropped folder) or a GGUF file (a URL ending in .gguf, a picked or dropped .gguf file alone, a Blob, or
 * any ByteSource). Same checks, engine and generation as Node's loadModel, and the same logits for a folder
 * and the GGUF converted from it.
 */
export async function loadModelInBrowser(
  source: ModelFolder | ByteSource | Blob | string | URL | Iterable<File | PickedFile>,
  opts: BrowserLoadOptions,
): Promise<Model> {
  const { wasm, cache, ...rest } = opts;
  if (rest.threads !== undefined && rest.threads > 1 && !canUseThreads()) {
    throw new Error(
      `${rest.threads} threads need shared memory, which a browser gives only to a cross-origin isolated page (serve it with the headers Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp); use 1 thread here`,
    );
  }
  const platform = browserPlatform(wasm, { cache });
  // The kernel builds are fetched (or read from the cache) while the model's file opens and its header and
  // tokenizer are read, rather than after: the engine asks the platform for the same memoized bytes.
  if ((rest.backend ?? "wasm") === "wasm") platform.wasmBytes((rest.threads ?? platform.defaultThreads()) > 1).catch(() => undefined);
  if (typeof source === "string" || source instanceof URL) {
    const url = String(source);
    if (isGgufName(new URL(url, "http://x/").pathname)) return openGgufModel(await ggufFromUrl(url, { cache }), platform, rest);
    return openModel(folderFromUrl(source, { cache }), platform, rest);
  }
  if (isFolder(source)) return openModel(source, platform, rest);
  if (isByteSource(source)) return openGgufModel(source, platform, rest);
  if (source instanceof Blob) return openGgufModel(blobSource((source as File).name ?? "model.gguf", source), platform, rest);
  const gguf = ggufFromFiles(source);
  return gguf !== null ? openGgufModel(gguf, platform, rest) : openModel(folderFromFiles(source), platform, rest);
}

function isByteSource(s: unknown): s is ByteSource {
  return typeof s === "object" && s !== null && typeof (s as ByteSource).read === "function" && typeof (s as ByteSource).size === "number";
}

function isFolder(s: unknown): s is ModelFolder {
  return typeof s === "object" && s !== null && typeof (s as ModelFolder).readText === "function" && typeof (s as ModelFolder).open === "function";
}
