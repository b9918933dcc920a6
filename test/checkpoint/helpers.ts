// Shared by the checkpoint tests: hand-built safetensors bytes (for headers no writer would produce),
// temp folders, and a ByteSource that records every read.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { memorySource, type ByteSource } from "../../src/env/byte-source.js";

/** u64 LE header length + JSON header + data, exactly as given (no padding, no validation). */
export function rawSafetensors(header: unknown, data: Uint8Array = new Uint8Array(0), headerText?: string): Uint8Array {
  const json = new TextEncoder().encode(headerText ?? JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

export function source(bytes: Uint8Array, name = "test.safetensors"): ByteSource {
  return memorySource(name, bytes);
}

/** Little-endian f32 bytes of `values`. */
export function f32Bytes(values: number[]): Uint8Array {
  return new Uint8Array(new Float32Array(values).buffer);
}

export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), "mobilellm-ckpt-"));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export interface CountingSource extends ByteSource {
  reads: Array<{ offset: number; length: number }>;
}

export function counting(inner: ByteSource): CountingSource {
  const reads: Array<{ offset: number; length: number }> = [];
  return {
    name: inner.name,
    size: inner.size,
    reads,
    read(offset, length) {
      reads.push({ offset, length });
      return inner.read(offset, length);
    },
    close: () => inner.close(),
  };
}
