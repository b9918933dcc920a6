// The environment layer of the checkpoint reader: random-access byte sources and sequential byte sinks.
//
// Everything else in checkpoint/ talks to bytes only through these interfaces, so a browser Blob/File
// source (and a stream sink) can slot in later. The Node implementations load node:fs lazily, which keeps
// this module importable from a browser bundle.

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
    async close() {
      closed = true;
    },
  };
}

/** Node: positional reads through one FileHandle, so concurrent reads need no seek bookkeeping. */
export async function openFileSource(path: string): Promise<ByteSource> {
  const fs = await import("node:fs/promises");
  let handle: Awaited<ReturnType<typeof fs.open>>;
  try {
    handle = await fs.open(path, "r");
  } catch (e) {
    throw new CheckpointError(`cannot open ${path}: ${(e as Error).message}`);
  }
  const stat = await handle.stat();
  if (!stat.isFile()) {
    await handle.close();
    throw new CheckpointError(`${path} is not a regular file`);
  }
  const where = { name: path, size: stat.size };
  let closed = false;
  return {
    ...where,
    async read(offset, length) {
      if (closed) throw new CheckpointError(`${path}: read after close`);
      checkRange(where, offset, length);
      const out = new Uint8Array(length);
      let got = 0;
      // A regular file only returns fewer bytes at end of file, so a zero-byte read means the file shrank
      // after it was opened; loop rather than trust one call to fill the buffer.
      while (got < length) {
        const { bytesRead } = await handle.read(out, got, length - got, offset + got);
        if (bytesRead === 0) {
          throw new CheckpointError(
            `${path}: short read, got ${got} of ${length} bytes at offset ${offset} (file truncated while open?)`,
          );
        }
        got += bytesRead;
      }
      return out;
    },
    async close() {
      if (closed) return;
      closed = true;
      await handle.close();
    },
  };
}

/**
 * Node: writes to `path.partial` and renames on close, so a crash or an aborted synth never leaves a file
 * that looks complete. Creates missing parent folders.
 */
export async function openFileSink(path: string): Promise<ByteSink> {
  const fs = await import("node:fs/promises");
  const { dirname } = await import("node:path");
  await fs.mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.partial`;
  const handle = await fs.open(tmp, "w");
  let done = false;
  return {
    name: path,
    async write(bytes) {
      let written = 0;
      while (written < bytes.length) {
        const { bytesWritten } = await handle.write(bytes, written, bytes.length - written);
        written += bytesWritten;
      }
    },
    async close() {
      if (done) return;
      done = true;
      await handle.close();
      await fs.rename(tmp, path);
    },
    async abort() {
      if (done) return;
      done = true;
      await handle.close().catch(() => undefined);
      await fs.rm(tmp, { force: true });
    },
  };
}
