// Writing a GGUF file (layout in gguf-format.ts) through a ByteSink, streaming.
//
// The header (metadata, tensor infos) is laid out first, so every tensor's offset and the file's size are
// known before a tensor byte is produced; tensor data then comes from async iterables and is written as it
// arrives, so a multi-GB file never sits in memory. Each tensor must yield exactly the bytes its type and
// dims imply, or the write fails (and a file sink's `.partial` file is removed: src/node/gguf-files.ts).
import { CheckpointError, type ByteSink } from "../../env/byte-source.js";
import {
  GGML_TYPES,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_MAX_DIMS,
  GGUF_MAX_TENSOR_NAME,
  GGUF_VERSION,
  GgmlType,
  GgufValueType,
  alignUp,
  type GgmlTypeName,
  type GgufScalarType,
} from "./gguf-format.js";
import type { GgufArray, GgufValue } from "./gguf.js";

export type { GgufValue };

export const u8 = (value: number): GgufValue => ({ type: "u8", value });
export const u32 = (value: number): GgufValue => ({ type: "u32", value });
export const i32 = (value: number): GgufValue => ({ type: "i32", value });
export const f32 = (value: number): GgufValue => ({ type: "f32", value });
export const u64 = (value: number | bigint): GgufValue => ({ type: "u64", value: BigInt(value) });
export const bool = (value: boolean): GgufValue => ({ type: "bool", value });
export const str = (value: string): GgufValue => ({ type: "string", value });
export const strings = (value: readonly string[]): GgufValue => ({ type: "array", itemType: "string", value: [...value] });
export const u32s = (value: ArrayLike<number>): GgufValue => ({ type: "array", itemType: "u32", value: Uint32Array.from(value) });
export const i32s = (value: ArrayLike<number>): GgufValue => ({ type: "array", itemType: "i32", value: Int32Array.from(value) });
export const f32s = (value: ArrayLike<number>): GgufValue => ({ type: "array", itemType: "f32", value: Float32Array.from(value) });
/** A bool array; stored as a Uint8Array of 0s and 1s, as the reader returns it. */
export const bools = (value: readonly boolean[]): GgufValue => ({ type: "array", itemType: "bool", value: Uint8Array.from(value, (b) => (b ? 1 : 0)) });

export interface GgufTensorToWrite {
  name: string;
  /** ggml order: dims[0] is the contiguous axis (a PyTorch [out, in] matrix is [in, out] here). */
  dims: readonly number[];
  type: GgmlTypeName;
  /** The tensor's bytes, in order; together exactly tensorByteSize(type, dims). */
  data: () => AsyncIterable<Uint8Array>;
}

export function tensorByteSize(type: GgmlTypeName, dims: readonly number[]): number {
  const info = GGML_TYPES.get(GgmlType[type])!;
  if (dims[0] % info.blockSize !== 0) throw new CheckpointError(`${type} needs rows of a multiple of ${info.blockSize} values, got ${dims[0]}`);
  return (dims.reduce((a, b) => a * b, 1) / info.blockSize) * info.blockBytes;
}

/** Appends little-endian fields to a list of 64 KB chunks. */
class ByteWriter {
  private chunks: Uint8Array[] = [];
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  private pos = 0;
  length = 0;

  private room(n: number): number {
    if (this.pos + n > this.buf.length) {
      this.flush();
      if (n > this.buf.length) {
        this.buf = new Uint8Array(n);
        this.view = new DataView(this.buf.buffer);
      }
    }
    const at = this.pos;
    this.pos += n;
    this.length += n;
    return at;
  }
  private flush(): void {
    if (this.pos > 0) this.chunks.push(this.buf.slice(0, this.pos));
    this.pos = 0;
  }
  scalar(type: Exclude<GgufScalarType, "string">, v: number | bigint | boolean): void {
    // room() may swap the buffer, so it runs before this.view is read.
    switch (type) {
      case "u8":
        return this.view.setUint8(this.room(1), v as number);
      case "i8":
        return this.view.setInt8(this.room(1), v as number);
      case "bool":
        return this.view.setUint8(this.room(1), v ? 1 : 0);
      case "u16": {
        const at = this.room(2);
        return this.view.setUint16(at, v as number, true);
      }
      case "i16": {
        const at = this.room(2);
        return this.view.setInt16(at, v as number, true);
      }
      case "u32": {
        const at = this.room(4);
        return this.view.setUint32(at, v as number, true);
      }
      case "i32": {
        const at = this.room(4);
        return this.view.setInt32(at, v as number, true);
      }
      case "f32": {
        const at = this.room(4);
        return this.view.setFloat32(at, v as number, true);
      }
      case "f64": {
        const at = this.room(8);
        return this.view.setFloat64(at, v as number, true);
      }
      case "u64": {
        const at = this.room(8);
        return this.view.setBigUint64(at, BigInt(v as number | bigint), true);
      }
      case "i64": {
        const at = this.room(8);
        return this.view.setBigInt64(at, BigInt(v as number | bigint), true);
      }
    }
  }
  bytes(b: Uint8Array): void {
    const at = this.room(b.length);
    this.buf.set(b, at);
  }
  string(s: string): void {
    const b = new TextEncoder().encode(s);
    this.scalar("u64", b.length);
    this.bytes(b);
  }
  zeros(n: number): void {
    const at = this.room(n);
    this.buf.fill(0, at, at + n);
  }
  finish(): Uint8Array {
    this.flush();
    const out = new Uint8Array(this.length);
    let o = 0;
    for (const c of this.chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }
}

const TYPE_ID: Record<GgufScalarType, number> = {
  u8: GgufValueType.UINT8,
  i8: GgufValueType.INT8,
  u16: GgufValueType.UINT16,
  i16: GgufValueType.INT16,
  u32: GgufValueType.UINT32,
  i32: GgufValueType.INT32,
  f32: GgufValueType.FLOAT32,
  bool: GgufValueType.BOOL,
  string: GgufValueType.STRING,
  u64: GgufValueType.UINT64,
  i64: GgufValueType.INT64,
  f64: GgufValueType.FLOAT64,
};

const INT_RANGE: Partial<Record<GgufScalarType, [number | bigint, number | bigint]>> = {
  u8: [0, 255],
  i8: [-128, 127],
  u16: [0, 65535],
  i16: [-32768, 32767],
  u32: [0, 2 ** 32 - 1],
  i32: [-(2 ** 31), 2 ** 31 - 1],
  u64: [0n, 2n ** 64n - 1n],
  i64: [-(2n ** 63n), 2n ** 63n - 1n],
};

function checkScalar(key: string, type: GgufScalarType, v: unknown): void {
  const range = INT_RANGE[type];
  const ok =
    range !== undefined
      ? (typeof v === "bigint" || Number.isInteger(v)) && (v as number) >= range[0] && (v as number) <= range[1]
      : type === "bool"
        ? typeof v === "boolean" || v === 0 || v === 1
        : type === "string"
          ? typeof v === "string"
          : typeof v === "number";
  if (!ok) throw new CheckpointError(`metadata ${key}: ${String(v)} is not a valid ${type}`);
}

function writeValue(w: ByteWriter, key: string, v: GgufValue): void {
  if (v.type === "array") {
    if (v.itemType === ("array" as string)) throw new CheckpointError(`metadata ${key}: arrays of arrays are not supported`);
    w.scalar("u32", GgufValueType.ARRAY);
    w.scalar("u32", TYPE_ID[v.itemType]);
    const items = v.value as GgufArray;
    w.scalar("u64", items.length);
    for (let i = 0; i < items.length; i++) {
      const item = items[i];
      checkScalar(`${key}[${i}]`, v.itemType, item);
      if (v.itemType === "string") w.string(item as string);
      else w.scalar(v.itemType, item as number | bigint);
    }
    return;
  }
  checkScalar(key, v.type, v.value);
  w.scalar("u32", TYPE_ID[v.type]);
  if (v.type === "string") w.string(v.value);
  else w.scalar(v.type, v.value);
}

export type GgufMetadataToWrite = ReadonlyArray<readonly [string, GgufValue]>;

export interface GgufLayout {
  /** Everything before the first tensor byte, alignment padding included. */
  header: Uint8Array;
  /** Offset of each tensor in the data section (multiples of the alignment), in the given order. */
  offsets: number[];
  sizes: number[];
  /** Size of the whole file. */
  fileSize: number;
  alignment: number;
}

/** Lays out the file: header bytes (magic, metadata, tensor infos, padding) and where each tensor goes. */
export function encodeGgufHeader(metadata: GgufMetadataToWrite, tensors: ReadonlyArray<Pick<GgufTensorToWrite, "name" | "dims" | "type">>): GgufLayout {
  const seenKeys = new Set<string>();
  let alignment = GGUF_DEFAULT_ALIGNMENT;
  for (const [k, v] of metadata) {
    if (k.length === 0) throw new CheckpointError("a metadata key is empty");
    if (seenKeys.has(k)) throw new CheckpointError(`metadata key ${k} is given twice`);
    seenKeys.add(k);
    if (k === "general.alignment") {
      if (v.type !== "u32" || v.value <= 0 || v.value % 8 !== 0 || (v.value & (v.value - 1)) !== 0) {
        throw new CheckpointError("general.alignment must be a u32 power of two, at least 8");
      }
      alignment = v.value;
    }
  }
  const seenTensors = new Set<string>();
  const offsets: number[] = [];
  const sizes: number[] = [];
  let offset = 0;
  for (const t of tensors) {
    if (seenTensors.has(t.name)) throw new CheckpointError(`tensor ${t.name} is given twice`);
    seenTensors.add(t.name);
    if (t.name.length === 0 || new TextEncoder().encode(t.name).length > GGUF_MAX_TENSOR_NAME) {
      throw new CheckpointError(`tensor name ${JSON.stringify(t.name)} must be 1 to ${GGUF_MAX_TENSOR_NAME} bytes`);
    }
    if (t.dims.length < 1 || t.dims.length > GGUF_MAX_DIMS || t.dims.some((d) => !Number.isSafeInteger(d) || d <= 0)) {
      throw new CheckpointError(`tensor ${t.name}: dims ${JSON.stringify(t.dims)} must be 1 to ${GGUF_MAX_DIMS} positive integers`);
    }
    offset = alignUp(offset, alignment);
    offsets.push(offset);
    const size = tensorByteSize(t.type, t.dims);
    sizes.push(size);
    offset += size;
  }

  const w = new ByteWriter();
  w.scalar("u32", GGUF_MAGIC);
  w.scalar("u32", GGUF_VERSION);
  w.scalar("u64", tensors.length);
  w.scalar("u64", metadata.length);
  for (const [k, v] of metadata) {
    w.string(k);
    writeValue(w, k, v);
  }
  tensors.forEach((t, i) => {
    w.string(t.name);
    w.scalar("u32", t.dims.length);
    for (const d of t.dims) w.scalar("u64", d);
    w.scalar("u32", GgmlType[t.type]);
    w.scalar("u64", offsets[i]);
  });
  w.zeros(alignUp(w.length, alignment) - w.length);
  const header = w.finish();
  const last = tensors.length - 1;
  const dataEnd = last >= 0 ? offsets[last] + sizes[last] : 0;
  return { header, offsets, sizes, fileSize: header.length + alignUp(dataEnd, alignment), alignment };
}

export interface WriteGgufOptions {
  /** Called after each chunk of tensor data: bytes of tensor data written so far, of the total. */
  onProgress?: (done: number, total: number) => void;
}

/** Writes header and tensors through `sink`, checking every tensor yields exactly its declared size. */
export async function writeGgufTo(sink: ByteSink, metadata: GgufMetadataToWrite, tensors: readonly GgufTensorToWrite[], opts: WriteGgufOptions = {}): Promise<GgufLayout> {
  const layout = encodeGgufHeader(metadata, tensors);
  const total = layout.sizes.reduce((a, b) => a + b, 0);
  let done = 0;
  await sink.write(layout.header);
  let pos = 0; // within the data section
  for (let i = 0; i < tensors.length; i++) {
    const t = tensors[i];
    if (layout.offsets[i] > pos) {
      await sink.write(new Uint8Array(layout.offsets[i] - pos));
      pos = layout.offsets[i];
    }
    let n = 0;
    for await (const chunk of t.data()) {
      n += chunk.length;
      if (n > layout.sizes[i]) throw new CheckpointError(`tensor ${t.name}: data is longer than the ${layout.sizes[i]} bytes its type and dims imply`);
      await sink.write(chunk);
      done += chunk.length;
      opts.onProgress?.(done, total);
    }
    if (n !== layout.sizes[i]) throw new CheckpointError(`tensor ${t.name}: got ${n} bytes of data, its type and dims imply ${layout.sizes[i]}`);
    pos += n;
  }
  const end = layout.fileSize - layout.header.length;
  if (end > pos) await sink.write(new Uint8Array(end - pos));
  return layout;
}
