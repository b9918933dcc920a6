// Files on disk as ByteSources and ByteSinks (the interfaces of src/env/byte-source.ts).
import * as fs from "node:fs/promises";
import { dirname } from "node:path";
import { CheckpointError, checkRange, type ByteSink, type ByteSource } from "../env/byte-source.js";

/** Node: positional reads through one FileHandle, so concurrent reads need no seek bookkeeping. */
export async function openFileSource(path: string): Promise<ByteSource> {
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
  const readInto = async (offset: number, out: Uint8Array): Promise<void> => {
    if (closed) throw new CheckpointError(`${path}: read after close`);
    const length = out.length;
    checkRange(where, offset, length);
    let got = 0;
    // A regular file only returns fewer bytes at end of file, so a zero-byte read means the file shrank
    // after it was opened; loop rather than trust one call to fill the buffer.
    while (got < length) {
      const { bytesRead } = await handle.read(out, got, length - got, offset + got);
      if (bytesRead === 0) {
        throw new CheckpointError(`${path}: short read, got ${got} of ${length} bytes at offset ${offset} (file truncated while open?)`);
      }
      got += bytesRead;
    }
  };
  return {
    ...where,
    async read(offset, length) {
      if (closed) throw new CheckpointError(`${path}: read after close`);
      checkRange(where, offset, length); // before the allocation
      const out = new Uint8Array(length);
      await readInto(offset, out);
      return out;
    },
    readInto,
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
