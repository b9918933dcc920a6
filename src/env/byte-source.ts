// Random-access byte sources and sequential byte sinks: the only way the checkpoint readers and writers
// (src/model/checkpoint/) touch bytes. Memory, a Blob/File slice reader and HTTP Range reads work anywhere
// and live here; files on disk are Node's (src/node/file-source.ts).

/** Every error the checkpoint reader raises on purpose; anything else escaping it is a bug. */
export class CheckpointError extends Error {
  override name = "CheckpointError";
}

/** Random-access, read-only bytes (a file, a Blob, a buffer). */
export interface ByteSource {
  /** Shown in error messages: a path, a file name or a label. */
  readonly name: string;
  readonly size: number;
  /** Exactly `length` bytes starting at `offset`, or a CheckpointError. The result is never shared. */
  read(offset: number, length: number): Promise<Uint8Array>;
  /**
   * Optional: exactly `out.length` bytes starting at `offset` written into `out` (a view of the caller's
   * memory, a Wasm heap), with no buffer of its own in between. Readers fall back to `read` without it.
   */
  readInto?(offset: number, out: Uint8Array): Promise<void>;
  /**
   * Optional, for a file still downloading: how many bytes from its start have arrived (reads past them
   * wait). Absent when every byte is there. Load progress (src/session/load-progress.ts) reports it.
   */
  arrived?(): number;
  close(): Promise<void>;
}

/** Sequential writes; `close` commits, `abort` discards. */
export interface ByteSink {
  readonly name: string;
  write(bytes: Uint8Array): Promise<void>;
  close(): Promise<void>;
  abort(): Promise<void>;
}

/** Rejects offsets that would read outside the source, before any I/O. */
export function checkRange(source: { name: string; size: number }, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new CheckpointError(`${source.name}: invalid read (offset ${offset}, length ${length})`);
  }
  if (offset + length > source.size) {
    throw new CheckpointError(
      `${source.name}: read of ${length} bytes at offset ${offset} goes past the end of the file (${source.size} bytes)`,
    );
  }
}

/** An in-memory source: tests, fuzzing, and bytes that already arrived (fetch, drag-and-drop). */
export function memorySource(name: string, bytes: Uint8Array): ByteSource {
  let closed = false;
  const where = { name, size: bytes.length };
  return {
    ...where,
    async read(offset, length) {
      if (closed) throw new CheckpointError(`${name}: read after close`);
      checkRange(where, offset, length);
      return bytes.slice(offset, offset + length);
    },
    async readInto(offset, out) {
      if (closed) throw new CheckpointError(`${name}: read after close`);
      checkRange(where, offset, out.length);
      out.set(bytes.subarray(offset, offset + out.length));
    },
    async close() {
      closed = true;
    },
  };
}

/**
 * A Blob or File (a file the user picked or dropped): each read is one slice, so a multi-GB checkpoint is
 * never held in memory whole.
 */
export function blobSource(name: string, blob: Blob): ByteSource {
  let closed = false;
  const where = { name, size: blob.size };
  return {
    ...where,
    async read(offset, length) {
      if (closed) throw new CheckpointError(`${name}: read after close`);
      checkRange(where, offset, length);
      let buf: ArrayBuffer;
      try {
        buf = await blob.slice(offset, offset + length).arrayBuffer();
      } catch (e) {
        throw new CheckpointError(`${name}: cannot read ${length} bytes at offset ${offset} (${(e as Error).message})`);
      }
      if (buf.byteLength !== length) {
        throw new CheckpointError(`${name}: short read, got ${buf.byteLength} of ${length} bytes at offset ${offset} (file changed?)`);
      }
      return new Uint8Array(buf);
    },
    async close() {
      closed = true;
    },
  };
}

/**
 * A file behind a URL, read with HTTP Range requests, or null when the server answers 404. A server that
 * ignores Range (200 instead of 206) gets the whole file downloaded once and served from memory.
 */
export async function openHttpSource(url: string, init: { fetch?: typeof fetch } = {}): Promise<ByteSource | null> {
  const get = init.fetch ?? fetch;
  const request = async (headers: Record<string, string>): Promise<Response> => {
    try {
      return await get(url, { headers });
    } catch (e) {
      throw new CheckpointError(`cannot fetch ${url}: ${(e as Error).message}`);
    }
  };
  const probe = await request({ Range: "bytes=0-0" });
  if (probe.status === 404 || probe.status === 410) {
    await probe.body?.cancel();
    return null;
  }
  if (probe.status === 200) return memorySource(url, new Uint8Array(await probe.arrayBuffer()));
  if (probe.status === 416) {
    await probe.body?.cancel();
    return memorySource(url, new Uint8Array(0)); // an empty file: no byte 0 to ask for
  }
  if (probe.status !== 206) throw new CheckpointError(`cannot fetch ${url}: HTTP ${probe.status} ${probe.statusText}`);
  await probe.body?.cancel();
  const total = /\/(\d+)\s*$/.exec(probe.headers.get("content-range") ?? "");
  if (!total) throw new CheckpointError(`${url}: the server answered a Range request without the file size (Content-Range)`);
  const where = { name: url, size: Number(total[1]) };
  let closed = false;
  return {
    ...where,
    async read(offset, length) {
      if (closed) throw new CheckpointError(`${url}: read after close`);
      checkRange(where, offset, length);
      if (length === 0) return new Uint8Array(0);
      const r = await request({ Range: `bytes=${offset}-${offset + length - 1}` });
      if (r.status !== 206 && r.status !== 200) throw new CheckpointError(`cannot fetch ${url}: HTTP ${r.status} ${r.statusText}`);
      const all = new Uint8Array(await r.arrayBuffer());
      // 200: the server sent the whole file after all; take the slice asked for.
      const bytes = r.status === 200 ? all.slice(offset, offset + length) : all;
      if (bytes.length !== length) {
        throw new CheckpointError(`${url}: short read, got ${bytes.length} of ${length} bytes at offset ${offset} (file changed on the server?)`);
      }
      return bytes;
    },
    async close() {
      closed = true;
    },
  };
}
