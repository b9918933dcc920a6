// Checkpoint folders in a browser, as ModelFolders (src/env/platform.ts): the files a user picked with
// <input type=file webkitdirectory> or dropped on the page, or a URL base on a web server. A GGUF file
// (one .gguf picked, dropped or served) is a ByteSource instead.
import { blobSource, openHttpSource, type ByteSource } from "../env/byte-source.js";
import type { ModelFolder } from "../env/folder.js";
import type { ModelCache } from "./model-cache.js";
import { openStreamedSource } from "./stream-source.js";

/** A file and its path inside what was picked ("folder/config.json"). */
export interface PickedFile {
  path: string;
  file: Blob;
}

/** A File's path as the picker or a drop gave it (webkitRelativePath when a folder was picked). */
function pathOf(f: File | PickedFile): PickedFile {
  if ("path" in f && "file" in f) return f;
  const file = f as File;
  return { path: file.webkitRelativePath || file.name, file };
}

/**
 * The folder holding config.json (the shallowest one, when the user picked a parent folder), or else the
 * top folder: its files by name. Files in sub-folders of it are ignored, like a checkpoint loader on disk.
 */
export function folderFromFiles(files: Iterable<File | PickedFile>, label?: string): ModelFolder {
  const all = [...files].map(pathOf).map((p) => ({ parts: p.path.split("/").filter((s) => s.length > 0), file: p.file }));
  if (all.length === 0) throw new Error("no files were given: pick a model folder (config.json, tokenizer.json, model.safetensors)");
  const dirOf = (parts: string[]) => parts.slice(0, -1).join("/");
  const configs = all.filter((f) => f.parts[f.parts.length - 1] === "config.json").sort((a, b) => a.parts.length - b.parts.length);
  const dir = configs.length > 0 ? dirOf(configs[0].parts) : all.map((f) => dirOf(f.parts)).sort((a, b) => a.split("/").length - b.split("/").length)[0];
  const byName = new Map<string, Blob>();
  for (const f of all) if (dirOf(f.parts) === dir) byName.set(f.parts[f.parts.length - 1], f.file);
  const name = label ?? (dir === "" ? "the dropped files" : dir);
  return {
    name,
    async readText(file) {
      const blob = byName.get(file);
      return blob === undefined ? null : blob.text();
    },
    async open(file) {
      const blob = byName.get(file);
      return blob === undefined ? null : blobSource(`${name}/${file}`, blob);
    },
  };
}

/** True for a file name or URL path ending in .gguf (any query or fragment of a URL aside). */
export function isGgufName(nameOrUrl: string): boolean {
  return /\.gguf$/i.test(nameOrUrl.replace(/[?#].*$/, ""));
}

/**
 * The picked or dropped GGUF file, when that is what was given: exactly one file ending in .gguf and no
 * config.json (else the files are a folder, and a stray .gguf in it is ignored). Null otherwise.
 */
export function ggufFromFiles(files: Iterable<File | PickedFile>): ByteSource | null {
  const all = [...files].map(pathOf);
  const name = (p: PickedFile) => p.path.split("/").filter((s) => s.length > 0).pop() ?? "";
  if (all.some((p) => name(p) === "config.json")) return null;
  const gguf = all.filter((p) => isGgufName(name(p)));
  return gguf.length === 1 ? blobSource(name(gguf[0]), gguf[0].file) : null;
}

/**
 * A GGUF file behind a URL, fetched with one streamed GET whose bytes the loader reads as they arrive
 * (stream-source.ts), or through the cache (the same GET, stored as it arrives, and kept). A 404 is an
 * error naming the URL, and so is an HTML page where the file should be (what a dev server answers for a
 * path it does not have), as for a folder's config.json.
 */
export async function ggufFromUrl(url: string | URL, options: UrlFolderOptions = {}): Promise<ByteSource> {
  const href = new URL(String(url), (globalThis as { location?: { href: string } }).location?.href).href;
  const source = options.cache ? await options.cache.open(href) : await openStreamedSource(href);
  if (source === null) throw new Error(`cannot fetch ${href}: not found (HTTP 404)`);
  // A GGUF starts with its magic; only a file that does not is looked at as text (the loader reads these
  // first bytes again from what the source keeps).
  const head = await source.read(0, Math.min(source.size, 512)).catch(async (e: unknown) => {
    await source.close();
    throw e;
  });
  if (new TextDecoder().decode(head.subarray(0, 4)) !== "GGUF" && isHtmlPage(new TextDecoder().decode(head))) {
    await source.close();
    throw new Error(`cannot fetch ${href}: not found (${HTML_FALLBACK})`);
  }
  return source;
}

export interface UrlFolderOptions {
  /** Keep the files across visits (src/browser/model-cache.ts): each is then fetched whole, once, with one GET. */
  cache?: ModelCache;
}

/** Why a file a server answered for is taken as missing: an HTML page where no HTML file was asked for. */
const HTML_FALLBACK = "the server answered with an HTML page, as a dev server does for a path it does not have";

/**
 * True when a file's text is an HTML document: what a dev server or a single-page app's host answers for a
 * path it does not have (its index.html, with status 200). JSON never starts with "<", and a chat template
 * that starts with an HTML doctype or <html> tag is not one.
 */
function isHtmlPage(text: string): boolean {
  return /^\s*<(!doctype\s+html|html[\s>])/i.test(text.slice(0, 512));
}

/**
 * True when tokenizer_config.json has a `chat_template` key (a template, a list of them, or null for a
 * model without one). Checkpoints written by transformers carry the template either there or in
 * chat_template.jinja, never both, so a URL folder whose tokenizer_config.json has the key spares the
 * chat_template.jinja request, which would otherwise be a 404 (logged in the console) on every load.
 */
function declaresChatTemplate(tokenizerConfig: string | null): boolean {
  if (tokenizerConfig === null) return false;
  try {
    const c = JSON.parse(tokenizerConfig) as unknown;
    return typeof c === "object" && c !== null && Object.hasOwn(c, "chat_template");
  } catch {
    return false; // the loader reports the bad JSON itself when it parses the file
  }
}

/**
 * A folder served over HTTP (e.g. "/models/shakespeare-tiny/" or a Hugging Face "resolve/main/" URL). Files
 * are fetched by name; a 404, or an HTML page where a JSON or template file should be, means absent, except
 * for config.json, whose absence means no model folder is at that URL: that is an error saying what the
 * server answered. Weights are read with Range requests, a tensor block at a time, unless a cache is given.
 */
export function folderFromUrl(base: string | URL, options: UrlFolderOptions = {}): ModelFolder {
  const href = (globalThis as { location?: { href: string } }).location?.href;
  const root = new URL(String(base).endsWith("/") ? String(base) : `${String(base)}/`, href);
  const name = root.href.replace(/\/$/, "");
  const cache = options.cache;
  const notAFolder = (url: URL, answer: string) => new Error(`no model folder at ${name}: ${url} was not found (${answer})`);
  /** The file's text, null on 404 or 410; throws (with the URL) on another failure. */
  const fetchText = async (file: string): Promise<string | null> => {
    const url = new URL(file, root);
    if (cache) {
      const bytes = await cache.bytes(url.href);
      if (bytes === null && file === "config.json") throw notAFolder(url, "HTTP 404");
      return bytes === null ? null : new TextDecoder().decode(bytes);
    }
    let r: Response;
    try {
      r = await fetch(url);
    } catch (e) {
      throw new Error(`cannot fetch ${url}: ${(e as Error).message}`);
    }
    if (r.status === 404 || r.status === 410) {
      if (file === "config.json") throw notAFolder(url, `HTTP ${r.status}`);
      return null;
    }
    if (!r.ok) throw new Error(`cannot fetch ${url}: HTTP ${r.status} ${r.statusText}`);
    return r.text();
  };
  const texts = new Map<string, Promise<string | null>>();
  const readText = (file: string): Promise<string | null> => {
    let p = texts.get(file);
    if (!p) {
      p = (async () => {
        if (file === "chat_template.jinja" && declaresChatTemplate(await readText("tokenizer_config.json"))) return null;
        const text = await fetchText(file);
        if (text === null || file.endsWith(".html") || !isHtmlPage(text)) return text;
        if (file === "config.json") throw notAFolder(new URL(file, root), HTML_FALLBACK);
        return null;
      })();
      // Each file is read once (tokenizer_config.json is read by the loader and by the check above); a
      // failed read is not kept, so a retry asks the server again.
      texts.set(file, p);
      p.catch(() => texts.delete(file));
    }
    return p;
  };
  return {
    name,
    readText,
    open: (file) => (cache ? cache.open(new URL(file, root).href) : openHttpSource(new URL(file, root).href)),
  };
}

/** The files of a drag and drop (folders walked recursively), with their paths. */
export async function filesFromDrop(data: DataTransfer): Promise<PickedFile[]> {
  const out: PickedFile[] = [];
  const walk = async (entry: FileSystemEntry): Promise<void> => {
    if (entry.isFile) {
      const file = await new Promise<File>((ok, fail) => (entry as FileSystemFileEntry).file(ok, fail));
      out.push({ path: entry.fullPath.replace(/^\//, ""), file });
    } else if (entry.isDirectory) {
      const reader = (entry as FileSystemDirectoryEntry).createReader();
      // readEntries returns the entries in batches until an empty one.
      for (;;) {
        const batch = await new Promise<FileSystemEntry[]>((ok, fail) => reader.readEntries(ok, fail));
        if (batch.length === 0) break;
        for (const e of batch) await walk(e);
      }
    }
  };
  // The entries must be taken synchronously, while the drop event is being dispatched.
  const entries: FileSystemEntry[] = [];
  for (let i = 0; i < data.items.length; i++) {
    const entry = data.items[i].webkitGetAsEntry?.();
    if (entry) entries.push(entry);
  }
  if (entries.length === 0) return Array.from({ length: data.files.length }, (_, i) => ({ path: data.files[i].name, file: data.files[i] }));
  for (const e of entries) await walk(e);
  return out;
}
