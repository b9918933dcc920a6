// Reading a GGUF file (layout in gguf-format.ts) from a ByteSource, treating every byte as hostile.
//
// GGUF readers have been exploited through the numbers a file declares: counts near 2^64 that wrap a size
// computation, string lengths past the end of the file, tensors whose element count or byte size
// overflows, tensors past the end or on top of each other. So every count, length, type, shape and offset
// is checked against the file's size before anything proportional to it is allocated, numbers are kept as
// BigInt until they are known to be small, and the header is read in bounded chunks. The first problem
// found ends the read with one CheckpointError line naming it.
//
// Public surface: GgufFile.open(source) -> { metadata (typed accessors), tensors: [{ name, type, dims,
// shape, offset, bytes }] }, and readTensorBytes(...) into a caller-provided Uint8Array.
import { CheckpointError, type ByteSource } from "../../env/byte-source.js";
import {
  GGML_TYPES,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_MAX_DIMS,
  GGUF_MAX_KEY,
  GGUF_MAX_TENSOR_NAME,
  GgufValueType,
  SCALAR_BYTES,
  SCALAR_TYPES,
  alignUp,
  type GgufScalarType,
} from "./gguf-format.js";
import { showName } from "./safetensors.js";

export type GgufNumberType = "u8" | "i8" | "u16" | "i16" | "u32" | "i32" | "f32" | "f64";

/** Arrays keep the file's element type; a bool array is a Uint8Array of 0s and 1s. */
export type GgufArray =
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | Float32Array
  | Float64Array
  | BigUint64Array
  | BigInt64Array
  | string[];

export type GgufValue =
  | { type: GgufNumberType; value: number }
  | { type: "u64" | "i64"; value: bigint }
  | { type: "bool"; value: boolean }
  | { type: "string"; value: string }
  | { type: "array"; itemType: GgufScalarType; value: GgufArray };

export interface GgufTensorInfo {
  name: string;
  /** The ggml type's name ("Q4_0", "F32", ...). */
  type: string;
  typeId: number;
  /** As the file lists them: dims[0] is the contiguous axis (a [rows, cols] matrix is [cols, rows] here). */
  dims: number[];
  /** Outermost axis first, as PyTorch and safetensors write shapes: dims reversed. */
  shape: number[];
  elements: number;
  /** Absolute byte offset of the tensor's first byte in the file. */
  offset: number;
  bytes: number;
}

/** Bytes read from the source per refill while parsing the header; bounds memory for any header. */
const HEADER_CHUNK = 1 << 20;
/** Bytes per read when copying a tensor out. */
const TENSOR_CHUNK = 8 << 20;
/**
 * Entries this reader accepts. Each becomes a JS object or Map entry several times its smallest size in the
 * file, so without a cap a file of tiny entries would cost many times its own size; real files have tens of
 * keys and hundreds to a few thousand tensors (this model at full size: 273).
 */
export const MAX_METADATA_ENTRIES = 1 << 16;
export const MAX_TENSORS = 1 << 16;
/** The fewest bytes a metadata entry (1-byte key, type, 1-byte value) and a tensor info can take. */
const MIN_KV_BYTES = 8 + 1 + 4 + 1;
const MIN_TENSOR_INFO_BYTES = 8 + 1 + 4 + 8 + 4 + 8;

// ignoreBOM: a string may start with U+FEFF (Llama 2's vocabulary has it as a token), which the
// decoder would otherwise drop.
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function describe(v: GgufValue): string {
  return v.type === "array" ? `${v.itemType}[]` : v.type;
}

/** Typed, checked access to a file's metadata: a missing or wrongly typed key is one CheckpointError line. */
export class GgufMetadata {
  constructor(
    private readonly where: string,
    private readonly entries: ReadonlyMap<string, GgufValue>,
  ) {}

  has(key: string): boolean {
    return this.entries.has(key);
  }

  get(key: string): GgufValue | undefined {
    return this.entries.get(key);
  }

  keys(): string[] {
    return [...this.entries.keys()];
  }

  get size(): number {
    return this.entries.size;
  }

  private fail(msg: string): never {
    throw new CheckpointError(`${this.where}: ${msg}`);
  }

  private find(key: string, required: boolean): GgufValue | undefined {
    const v = this.entries.get(key);
    if (v === undefined && required) this.fail(`missing required metadata key ${showName(key)}`);
    return v;
  }

  private wrong(key: string, v: GgufValue, wanted: string): never {
    this.fail(`metadata key ${showName(key)} is ${describe(v)}, expected ${wanted}`);
  }

  string(key: string): string;
  string(key: string, optional: "optional"): string | undefined;
  string(key: string, optional?: "optional"): string | undefined {
    const v = this.find(key, optional === undefined);
    if (v === undefined) return undefined;
    if (v.type !== "string") this.wrong(key, v, "string");
    return v.value;
  }

  bool(key: string): boolean;
  bool(key: string, optional: "optional"): boolean | undefined;
  bool(key: string, optional?: "optional"): boolean | undefined {
    const v = this.find(key, optional === undefined);
    if (v === undefined) return undefined;
    if (v.type !== "bool") this.wrong(key, v, "bool");
    return v.value;
  }

  /** A number of exactly `type`; u64 and i64 must also fit a double exactly. */
  number(key: string, type: GgufNumberType | "u64" | "i64"): number;
  number(key: string, type: GgufNumberType | "u64" | "i64", optional: "optional"): number | undefined;
  number(key: string, type: GgufNumberType | "u64" | "i64", optional?: "optional"): number | undefined {
    const v = this.find(key, optional === undefined);
    if (v === undefined) return undefined;
    if (v.type !== type) this.wrong(key, v, type);
    if (v.type === "u64" || v.type === "i64") {
      const n = Number(v.value);
      if (!Number.isSafeInteger(n)) this.fail(`metadata key ${showName(key)}: ${v.value} is too large`);
      return n;
    }
    return v.value as number;
  }

  /** An array of exactly `itemType` items. */
  array(key: string, itemType: GgufScalarType): GgufArray;
  array(key: string, itemType: GgufScalarType, optional: "optional"): GgufArray | undefined;
  array(key: string, itemType: GgufScalarType, optional?: "optional"): GgufArray | undefined {
    const v = this.find(key, optional === undefined);
    if (v === undefined) return undefined;
    if (v.type !== "array" || v.itemType !== itemType) this.wrong(key, v, `${itemType}[]`);
    return v.value;
  }
}

/**
 * Sequential little-endian reads over a ByteSource through one bounded buffer. Every read first checks
 * that the bytes exist in the file, so a declared length never becomes an allocation beyond the file.
 */
class HeaderCursor {
  pos = 0;
  private buf: Uint8Array = new Uint8Array(0);
  private view = new DataView(this.buf.buffer);
  private bufStart = 0;

  constructor(private readonly source: ByteSource) {}

  private fail(msg: string): never {
    throw new CheckpointError(`${this.source.name}: ${msg}`);
  }

  get remaining(): number {
    return this.source.size - this.pos;
  }

  /** Makes [pos, pos + n) readable from the buffer; `what` names the field for the truncation message. */
  async need(n: number, what: string): Promise<void> {
    if (this.pos >= this.bufStart && this.pos + n <= this.bufStart + this.buf.length) return;
    if (n > this.remaining) {
      this.fail(`the file ends inside ${what} at offset ${this.pos} (${n} bytes needed, ${this.remaining} left)`);
    }
    const length = Math.max(n, Math.min(HEADER_CHUNK, this.remaining));
    // The unread tail of the buffer is kept, so no byte of the file is read twice.
    const keep = Math.max(0, this.bufStart + this.buf.length - this.pos);
    const rest = await this.source.read(this.pos + keep, length - keep);
    if (keep === 0) this.buf = rest;
    else {
      const next = new Uint8Array(length);
      next.set(this.buf.subarray(this.pos - this.bufStart), 0);
      next.set(rest, keep);
      this.buf = next;
    }
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
    this.bufStart = this.pos;
  }

  private at(n: number): number {
    const o = this.pos - this.bufStart;
    this.pos += n;
    return o;
  }

  async u32(what: string): Promise<number> {
    await this.need(4, what);
    return this.view.getUint32(this.at(4), true);
  }

  async u64(what: string): Promise<bigint> {
    await this.need(8, what);
    return this.view.getBigUint64(this.at(8), true);
  }

  /** A u64 that must not exceed `max` (itself below 2^53), as a number. */
  async u64Upto(what: string, max: number, tooLarge: (v: bigint) => string): Promise<number> {
    const v = await this.u64(what);
    if (v > BigInt(max)) this.fail(tooLarge(v));
    return Number(v);
  }

  /** Whether [pos, pos + n) is already in the buffer (then reading it needs no await). */
  private buffered(n: number): boolean {
    return this.pos >= this.bufStart && this.pos + n <= this.bufStart + this.buf.length;
  }

  /** A length-prefixed UTF-8 string of at most `maxBytes` bytes. */
  async string(what: string, maxBytes = Number.MAX_SAFE_INTEGER): Promise<string> {
    return (await this.strings(1, () => what, maxBytes))[0];
  }

  /**
   * `n` length-prefixed strings in a row (a vocabulary holds hundreds of thousands): awaits only when the
   * buffer runs out, and names an item (`what(i)`) only in an error message.
   */
  async strings(n: number, what: (i: number) => string, maxBytes = Number.MAX_SAFE_INTEGER): Promise<string[]> {
    const out: string[] = [];
    for (let i = 0; i < n; i++) {
      const start = this.pos;
      if (!this.buffered(8)) await this.need(8, `the length of ${what(i)}`);
      const len64 = this.view.getBigUint64(this.at(8), true);
      if (len64 > BigInt(this.remaining)) {
        this.fail(`${what(i)} at offset ${start} declares ${len64} bytes, past the end of the file (${this.remaining} bytes left)`);
      }
      const len = Number(len64);
      if (len > maxBytes) this.fail(`${what(i)} at offset ${start} is ${len} bytes long, more than the format's ${maxBytes}`);
      if (!this.buffered(len)) await this.need(len, what(i));
      const o = this.at(len);
      try {
        out.push(utf8.decode(this.buf.subarray(o, o + len)));
      } catch {
        this.fail(`${what(i)} at offset ${start} is not valid UTF-8`);
      }
    }
    return out;
  }

  /** One scalar of `type` (not a string); `what` names it for messages. */
  async scalar(type: Exclude<GgufScalarType, "string">, what: string): Promise<number | bigint | boolean> {
    await this.need(SCALAR_BYTES[type], what);
    return this.bufferedScalar(type, what);
  }

  /**
   * `n` scalars of `type` into `out`: one read of all their bytes (the caller has checked the file holds
   * them), then no await per item. `what(i)` names an item for messages.
   */
  async scalars(type: Exclude<GgufScalarType, "string">, n: number, out: { [i: number]: number | bigint | boolean }, what: (i: number) => string): Promise<void> {
    await this.need(n * SCALAR_BYTES[type], what(0));
    if (type === "bool") {
      for (let i = 0; i < n; i++) out[i] = this.bufferedScalar(type, what(i)) ? 1 : 0;
      return;
    }
    for (let i = 0; i < n; i++) out[i] = this.bufferedScalar(type, "");
  }

  /** The scalar at pos, whose bytes are in the buffer. */
  private bufferedScalar(type: Exclude<GgufScalarType, "string">, what: string): number | bigint | boolean {
    const size = SCALAR_BYTES[type];
    const o = this.at(size);
    const v = this.view;
    switch (type) {
      case "u8":
        return v.getUint8(o);
      case "i8":
        return v.getInt8(o);
      case "u16":
        return v.getUint16(o, true);
      case "i16":
        return v.getInt16(o, true);
      case "u32":
        return v.getUint32(o, true);
      case "i32":
        return v.getInt32(o, true);
      case "f32":
        return v.getFloat32(o, true);
      case "f64":
        return v.getFloat64(o, true);
      case "u64":
        return v.getBigUint64(o, true);
      case "i64":
        return v.getBigInt64(o, true);
      case "bool": {
        const b = v.getUint8(o);
        if (b > 1) this.fail(`${what} at offset ${o + this.bufStart} is a bool of value ${b} (must be 0 or 1)`);
        return b === 1;
      }
    }
  }
}

function newArray(type: Exclude<GgufScalarType, "string">, n: number): GgufArray {
  switch (type) {
    case "u8":
    case "bool":
      return new Uint8Array(n);
    case "i8":
      return new Int8Array(n);
    case "u16":
      return new Uint16Array(n);
    case "i16":
      return new Int16Array(n);
    case "u32":
      return new Uint32Array(n);
    case "i32":
      return new Int32Array(n);
    case "f32":
      return new Float32Array(n);
    case "f64":
      return new Float64Array(n);
    case "u64":
      return new BigUint64Array(n);
    case "i64":
      return new BigInt64Array(n);
  }
}

async function readValue(c: HeaderCursor, typeId: number, what: string, fail: (msg: string) => never): Promise<GgufValue> {
  if (typeId === GgufValueType.ARRAY) {
    const itemId = await c.u32(`the item type of ${what}`);
    if (itemId === GgufValueType.ARRAY) fail(`${what} is an array of arrays, which is not supported`);
    const itemType = SCALAR_TYPES.get(itemId);
    if (itemType === undefined) fail(`${what} is an array of unknown value type ${itemId}`);
    const count = await c.u64(`the item count of ${what}`);
    // Checked before anything of `count` items is allocated: every item takes at least SCALAR_BYTES.
    if (count * BigInt(SCALAR_BYTES[itemType]) > BigInt(c.remaining)) {
      fail(`${what} declares ${count} ${itemType} items, more than the ${c.remaining} bytes left in the file can hold`);
    }
    const n = Number(count);
    const item = (i: number) => `item ${i} of ${what}`;
    if (itemType === "string") return { type: "array", itemType, value: await c.strings(n, item) };
    const out = newArray(itemType, n);
    await c.scalars(itemType, n, out as unknown as { [i: number]: number | bigint }, item);
    return { type: "array", itemType, value: out };
  }
  const type = SCALAR_TYPES.get(typeId);
  if (type === undefined) fail(`${what} has unknown value type ${typeId}`);
  if (type === "string") return { type, value: await c.string(what) };
  const value = await c.scalar(type, what);
  return { type, value } as GgufValue;
}

export interface ReadTensorOptions {
  /** Byte offset inside the tensor to start at (default 0). */
  begin?: number;
  /** Bytes to copy (default: from `begin` to the tensor's end). */
  length?: number;
}

export class GgufFile {
  private readonly byName: Map<string, GgufTensorInfo>;

  private constructor(
    readonly source: ByteSource,
    readonly version: number,
    readonly metadata: GgufMetadata,
    /** In the order the file lists them. */
    readonly tensors: readonly GgufTensorInfo[],
    readonly alignment: number,
    /** Absolute offset of the data section (tensor offsets in the file are relative to it). */
    readonly dataOffset: number,
  ) {
    this.byName = new Map(tensors.map((t) => [t.name, t]));
  }

  /** Parses and validates the header: metadata, tensor infos, and every tensor's extent in the file. */
  static async open(source: ByteSource): Promise<GgufFile> {
    const where = source.name;
    const fail: (msg: string) => never = (msg) => {
      throw new CheckpointError(`${where}: ${msg}`);
    };
    const c = new HeaderCursor(source);
    if (source.size < 24) fail(`${source.size} bytes is too short for a GGUF header (24 bytes)`);
    const magic = await c.u32("the magic number");
    if (magic !== GGUF_MAGIC) fail(`not a GGUF file (it does not start with "GGUF")`);
    const version = await c.u32("the version");
    if (version !== 2 && version !== 3) {
      // A big-endian file's version 3 reads as 0x03000000 here.
      fail(version === 0x03000000 || version === 0x02000000 ? `a big-endian GGUF, which is not supported` : `GGUF version ${version} is not supported (2 and 3 are)`);
    }
    const tensorCount = await c.u64("the tensor count");
    const kvCount = await c.u64("the metadata count");
    // Both counts checked before either drives a loop or an allocation.
    if (kvCount > BigInt(MAX_METADATA_ENTRIES)) fail(`${kvCount} metadata entries, more than the ${MAX_METADATA_ENTRIES} this reader accepts`);
    if (tensorCount > BigInt(MAX_TENSORS)) fail(`${tensorCount} tensors, more than the ${MAX_TENSORS} this reader accepts`);
    const minBytes = kvCount * BigInt(MIN_KV_BYTES) + tensorCount * BigInt(MIN_TENSOR_INFO_BYTES);
    if (minBytes > BigInt(c.remaining)) {
      fail(`${kvCount} metadata entries and ${tensorCount} tensors cannot fit in the ${c.remaining} bytes after the header`);
    }

    const entries = new Map<string, GgufValue>();
    for (let i = 0, n = Number(kvCount); i < n; i++) {
      const key = await c.string(`metadata key ${i}`, GGUF_MAX_KEY);
      if (key.length === 0) fail(`metadata key ${i} is empty`);
      if (entries.has(key)) fail(`metadata key ${showName(key)} appears twice`);
      const typeId = await c.u32(`the value type of metadata key ${showName(key)}`);
      entries.set(key, await readValue(c, typeId, `metadata key ${showName(key)}`, fail));
    }
    const metadata = new GgufMetadata(where, entries);

    let alignment = GGUF_DEFAULT_ALIGNMENT;
    if (metadata.has("general.alignment")) {
      alignment = metadata.number("general.alignment", "u32");
      if (alignment === 0 || (alignment & (alignment - 1)) !== 0) fail(`general.alignment ${alignment} is not a power of two`);
    }

    const tensors: GgufTensorInfo[] = [];
    const names = new Set<string>();
    const relative: number[] = [];
    for (let i = 0, n = Number(tensorCount); i < n; i++) {
      const name = await c.string(`the name of tensor ${i}`, GGUF_MAX_TENSOR_NAME);
      if (name.length === 0) fail(`tensor ${i} has an empty name`);
      const shown = `tensor ${showName(name)}`;
      if (names.has(name)) fail(`${shown} appears twice`);
      names.add(name);
      const nDims = await c.u32(`the dimension count of ${shown}`);
      if (nDims < 1 || nDims > GGUF_MAX_DIMS) fail(`${shown} has ${nDims} dimensions (1 to ${GGUF_MAX_DIMS} are allowed)`);
      const dims: number[] = [];
      let elements = 1;
      for (let d = 0; d < nDims; d++) {
        const dim = await c.u64(`dimension ${d} of ${shown}`);
        if (dim === 0n) fail(`${shown} has a zero dimension`);
        // The element count must stay exact in a double: dims near 2^64 or a product past 2^53 are refused.
        if (dim > BigInt(Number.MAX_SAFE_INTEGER) || elements * Number(dim) > Number.MAX_SAFE_INTEGER) {
          fail(`${shown}: its element count overflows (dimension ${d} is ${dim})`);
        }
        dims.push(Number(dim));
        elements *= Number(dim);
      }
      const typeId = await c.u32(`the type of ${shown}`);
      const type = GGML_TYPES.get(typeId);
      if (type === undefined) fail(`${shown} has unknown or unsupported ggml type ${typeId}`);
      if (dims[0] % type.blockSize !== 0) {
        fail(`${shown}: its row length ${dims[0]} is not a multiple of the ${type.name} block size ${type.blockSize}`);
      }
      // elements / blockSize is exact; the product may round past 2^53, but then it exceeds the file.
      const bytes = (elements / type.blockSize) * type.blockBytes;
      if (bytes > source.size) fail(`${shown} needs ${bytes} bytes, more than the whole file (${source.size})`);
      const offset = await c.u64(`the offset of ${shown}`);
      if (offset > BigInt(source.size)) fail(`${shown} starts at data offset ${offset}, past the end of the file`);
      if (Number(offset) % alignment !== 0) fail(`${shown}: its offset ${offset} is not a multiple of the alignment ${alignment}`);
      relative.push(Number(offset));
      tensors.push({ name, type: type.name, typeId, dims, shape: [...dims].reverse(), elements, offset: 0, bytes });
    }

    const dataOffset = alignUp(c.pos, alignment);
    for (let i = 0; i < tensors.length; i++) {
      const t = tensors[i];
      t.offset = dataOffset + relative[i];
      if (t.offset + t.bytes > source.size) {
        fail(`tensor ${showName(t.name)} (${t.bytes} bytes at offset ${t.offset}) runs past the end of the file (${source.size} bytes)`);
      }
    }
    const byOffset = [...tensors].sort((a, b) => a.offset - b.offset);
    for (let i = 1; i < byOffset.length; i++) {
      const prev = byOffset[i - 1];
      if (byOffset[i].offset < prev.offset + prev.bytes) {
        fail(`tensors ${showName(prev.name)} and ${showName(byOffset[i].name)} overlap`);
      }
    }
    return new GgufFile(source, version, metadata, tensors, alignment, dataOffset);
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  tensor(name: string): GgufTensorInfo {
    const t = this.byName.get(name);
    if (!t) throw new CheckpointError(`${this.source.name}: missing tensor ${showName(name)}`);
    return t;
  }

  /**
   * Copies a tensor's bytes (or the `begin`/`length` part of them) into `out` at `outOffset`, in bounded
   * chunks, so a caller can fill its own memory (a Wasm heap) without a staging copy of the tensor; a source
   * with readInto (a file) writes into `out` directly.
   */
  async readTensorBytes(tensor: GgufTensorInfo | string, out: Uint8Array, outOffset = 0, opts: ReadTensorOptions = {}): Promise<void> {
    const t = typeof tensor === "string" ? this.tensor(tensor) : tensor;
    if (this.byName.get(t.name) !== t) throw new CheckpointError(`${this.source.name}: tensor ${showName(t.name)} is not from this file`);
    const begin = opts.begin ?? 0;
    const length = opts.length ?? t.bytes - begin;
    if (!Number.isSafeInteger(begin) || !Number.isSafeInteger(length) || begin < 0 || length < 0 || begin + length > t.bytes) {
      throw new CheckpointError(`${this.source.name}: bytes ${begin}..${begin + length} are outside tensor ${showName(t.name)} (${t.bytes} bytes)`);
    }
    if (!Number.isSafeInteger(outOffset) || outOffset < 0 || outOffset + length > out.length) {
      throw new CheckpointError(`${this.source.name}: ${length} bytes of tensor ${showName(t.name)} do not fit the output at ${outOffset}`);
    }
    // Straight into `out` when the source can (a file); else through the source's own buffers.
    const into = this.source.readInto?.bind(this.source);
    for (let done = 0; done < length; ) {
      const n = Math.min(TENSOR_CHUNK, length - done);
      const at = t.offset + begin + done;
      const dst = out.subarray(outOffset + done, outOffset + done + n);
      if (into) await into(at, dst);
      else dst.set(await this.source.read(at, n));
      done += n;
    }
  }

  async close(): Promise<void> {
    await this.source.close();
  }
}
