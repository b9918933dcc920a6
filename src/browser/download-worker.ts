// The model cache's download worker (started by model-cache.ts from the model's worker): it fetches a file
// and writes its body into the cache entry's .bin through a synchronous access handle of its own, so that
// neither the network reads nor the OPFS writes take the model worker's thread, which meanwhile prepares
// the weights from the bytes already written (read through its own handle on the same file; both are opened
// "readwrite-unsafe", the mode that lets two handles share a file).
//
// One worker serves every download of one ModelCache, each under its id. Per download, the model worker
// sends "fetch"; this worker answers "response" (status and headers, the body not yet read); the model
// worker then sends "write" (store the body) or "cancel" (a 404, a file too large for the quota). While
// writing it reports "written" after each chunk, then "done" once every byte is flushed, or "failed" (its
// handle already closed). Policy (what to cache, quota, validation, the entry's .json) stays in model-cache.ts.
import "./set-immediate.js";
import { BodyCopyError, copyBody } from "./stream-source.js";

/** Model worker -> download worker. */
export type DownloadRequest =
  | { type: "fetch"; id: number; url: string }
  | { type: "write"; id: number; directory: string; file: string; size: number | null }
  | { type: "cancel"; id: number };

/** Download worker -> model worker. */
export type DownloadReply =
  | { type: "response"; id: number; status: number; statusText: string; headers: Record<string, string>; body: boolean }
  | { type: "written"; id: number; bytes: number }
  | { type: "done"; id: number; bytes: number }
  | { type: "failed"; id: number; stage: "download" | "store"; name: string; message: string };

/** The response headers the model worker decides with (size, validators, an HTML fallback page). */
const HEADERS = ["content-length", "content-encoding", "content-type", "etag", "last-modified"];

interface SyncAccessHandle {
  write(buffer: Uint8Array, options: { at: number }): number;
  truncate(size: number): void;
  flush(): void;
  close(): void;
}
type SyncFileHandle = FileSystemFileHandle & { createSyncAccessHandle(options?: { mode?: string }): Promise<SyncAccessHandle> };

interface Scope {
  postMessage(m: DownloadReply): void;
  onmessage: ((e: MessageEvent<DownloadRequest>) => void) | null;
}

/** Fetched responses waiting for "write" or "cancel". */
const responses = new Map<number, Response>();

async function fetchOne(post: (m: DownloadReply) => void, id: number, url: string): Promise<void> {
  let r: Response;
  try {
    r = await fetch(url, { cache: "no-store" });
  } catch (e) {
    return post({ type: "failed", id, stage: "download", name: (e as Error).name ?? "Error", message: (e as Error).message ?? String(e) });
  }
  responses.set(id, r);
  const headers: Record<string, string> = {};
  for (const h of HEADERS) {
    const v = r.headers.get(h);
    if (v !== null) headers[h] = v;
  }
  post({ type: "response", id, status: r.status, statusText: r.statusText, headers, body: r.body !== null });
}

async function writeOne(post: (m: DownloadReply) => void, req: Extract<DownloadRequest, { type: "write" }>): Promise<void> {
  const { id } = req;
  const r = responses.get(id);
  responses.delete(id);
  let access: SyncAccessHandle | null = null;
  try {
    if (r?.body == null) throw new Error("no response body to write");
    const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle(req.directory);
    const handle = await ((await dir.getFileHandle(req.file)) as SyncFileHandle).createSyncAccessHandle({ mode: "readwrite-unsafe" });
    access = handle;
    handle.truncate(0);
    const written = await copyBody(r.body, req.size, (chunk, at) => void handle.write(chunk, { at }), (bytes) => post({ type: "written", id, bytes }));
    handle.flush();
    handle.close();
    access = null;
    post({ type: "done", id, bytes: written });
  } catch (e) {
    access?.close();
    const stage = e instanceof BodyCopyError ? e.stage : "store";
    const error = (e instanceof BodyCopyError ? e.error : e) as Error;
    post({ type: "failed", id, stage, name: error.name ?? "Error", message: error.message ?? String(error) });
  }
}

const scope = globalThis as unknown as Scope;
const post = (m: DownloadReply) => scope.postMessage(m);
scope.onmessage = (e: MessageEvent<DownloadRequest>) => {
  const req = e.data;
  if (req.type === "fetch") void fetchOne(post, req.id, req.url);
  else if (req.type === "write") void writeOne(post, req);
  else {
    void responses.get(req.id)?.body?.cancel().catch(() => undefined);
    responses.delete(req.id);
  }
};
