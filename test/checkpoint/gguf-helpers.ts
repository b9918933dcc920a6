// Hand-built GGUF bytes for the reader's tests: every field is written exactly as given, with no
// validation, so a test can declare counts, lengths, types and offsets no writer would produce. Written
// from the format description, independently of src/model/checkpoint/gguf-writer.ts.
import { memorySource, type ByteSink, type ByteSource } from "../../src/env/byte-source.js";
import { GgufFile, type GgufValue } from "../../src/model/checkpoint/gguf.js";
import { writeGgufTo, type GgufTensorToWrite } from "../../src/model/checkpoint/gguf-writer.js";

export class RawGguf {
  private bytes: number[] = [];

  u8(v: number): this {
    this.bytes.push(v & 0xff);
    return this;
  }
  u32(v: number): this {
    for (let i = 0; i < 4; i++) this.bytes.push((v >>> (8 * i)) & 0xff);
    return this;
  }
  u64(v: number | bigint): this {
    let x = BigInt.asUintN(64, BigInt(v));
    for (let i = 0; i < 8; i++) {
      this.bytes.push(Number(x & 0xffn));
      x >>= 8n;
    }
    return this;
  }
  f32(v: number): this {
    const b = new Uint8Array(new Float32Array([v]).buffer);
    for (const x of b) this.bytes.push(x);
    return this;
  }
  raw(b: ArrayLike<number>): this {
    for (let i = 0; i < b.length; i++) this.bytes.push(b[i]);
    return this;
  }
  /** A string with its true length, or a declared one. */
  str(s: string, declaredLength?: number | bigint): this {
    const b = new TextEncoder().encode(s);
    this.u64(declaredLength ?? b.length);
    return this.raw(b);
  }
  /** "GGUF", version, tensor count, metadata count. */
  header(tensors: number | bigint, kvs: number | bigint, version = 3): this {
    return this.raw([0x47, 0x47, 0x55, 0x46]).u32(version).u64(tensors).u64(kvs);
  }
  /** A key with a u32 value. */
  kvU32(key: string, v: number): this {
    return this.str(key).u32(4).u32(v);
  }
  kvString(key: string, v: string): this {
    return this.str(key).u32(8).str(v);
  }
  /** A tensor info: name, dims (ne[0] first), ggml type, data offset. */
  tensor(name: string, dims: Array<number | bigint>, type: number, offset: number | bigint): this {
    this.str(name).u32(dims.length);
    for (const d of dims) this.u64(d);
    return this.u32(type).u64(offset);
  }
  get length(): number {
    return this.bytes.length;
  }
  /** Zero bytes up to a multiple of `alignment`. */
  pad(alignment = 32): this {
    while (this.bytes.length % alignment !== 0) this.bytes.push(0);
    return this;
  }
  zeros(n: number): this {
    for (let i = 0; i < n; i++) this.bytes.push(0);
    return this;
  }
  build(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }
}

export function ggufSource(bytes: Uint8Array, name = "test.gguf"): ByteSource {
  return memorySource(name, bytes);
}

/** A ByteSink collecting everything written; `bytes()` after close. */
export function memorySink(name = "memory.gguf"): ByteSink & { bytes(): Uint8Array } {
  const chunks: Uint8Array[] = [];
  let closed = false;
  return {
    name,
    async write(b) {
      chunks.push(b.slice());
    },
    async close() {
      closed = true;
    },
    async abort() {
      chunks.length = 0;
    },
    bytes() {
      if (!closed) throw new Error("memorySink: not closed");
      const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
      let o = 0;
      for (const c of chunks) {
        out.set(c, o);
        o += c.length;
      }
      return out;
    },
  };
}

export interface GgufEdit {
  /** Edits the metadata entries in place (order kept). */
  metadata?: (entries: Array<[string, GgufValue]>) => void;
  /** Edits the tensor list in place; each keeps its original bytes unless `data` is replaced. */
  tensors?: (tensors: GgufTensorToWrite[]) => void;
}

/** Reads a GGUF, applies `edit`, writes it again through the project's writer. */
export async function rewriteGguf(bytes: Uint8Array, edit: GgufEdit): Promise<Uint8Array> {
  const f = await GgufFile.open(memorySource("in.gguf", bytes));
  const entries: Array<[string, GgufValue]> = f.metadata.keys().map((k) => [k, f.metadata.get(k)!]);
  const tensors: GgufTensorToWrite[] = f.tensors.map((t) => ({
    name: t.name,
    dims: t.dims,
    type: t.type as GgufTensorToWrite["type"],
    data: async function* () {
      yield bytes.subarray(t.offset, t.offset + t.bytes);
    },
  }));
  edit.metadata?.(entries);
  edit.tensors?.(tensors);
  const sink = memorySink();
  await writeGgufTo(sink, entries, tensors);
  await sink.close();
  return sink.bytes();
}
