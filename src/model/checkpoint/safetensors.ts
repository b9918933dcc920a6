// Reader for one .safetensors file: validates the whole header before any tensor byte is touched, then
// streams tensors out as float32 in reads of bounded size (a 2+ GB checkpoint is never one buffer).
//
// Layout: u64 LE header length N, N bytes of UTF-8 JSON {name: {dtype, shape, data_offsets}, __metadata__?},
// then the data section; data_offsets are relative to the start of the data section.
//
// Decisions the format leaves open:
// - Gaps in the data section are allowed (the format says it should be fully covered, but a gap cannot
//   make a tensor read wrong bytes); overlaps are always rejected, because two tensors sharing bytes is
//   either corruption or an attack on a naive writer-side mmap.
// - Zero-element tensors occupy no bytes, so they are exempt from the overlap check.
// - Unknown keys inside a tensor entry are ignored; unknown dtypes are an error at parse time, since this
//   runtime could not read that tensor later anyway.
// - Duplicate JSON keys (a tensor named twice, a field given twice in one entry) are rejected: JSON.parse
//   would keep the last copy, and another reader may keep the first.
import { firstDuplicateKey } from "./duplicate-keys.js";
import { CheckpointError, type ByteSource } from "../../env/byte-source.js";
import { bytesPerElement, decodeToF32, firstNonFinite, parseDType, type DType } from "../../kernels/dtype.js";

export interface TensorInfo {
  name: string;
  dtype: DType;
  shape: number[];
  source: ByteSource;
  /** Absolute byte offsets in the file, end exclusive. */
  begin: number;
  end: number;
}

export interface SafetensorsFile {
  tensors: Map<string, TensorInfo>;
  metadata: Record<string, string>;
}

/** A header is a few KB to a few MB in practice; the cap stops a corrupt length from allocating gigabytes. */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

/** Default bound on a single read while decoding a tensor. */
export const DEFAULT_MAX_READ_BYTES = 8 * 1024 * 1024;

/** Longest tensor name shown whole in a message; a longer one is cut (a header may hold a 60 MB name). */
export const SHOWN_NAME_CHARS = 200;

/** Tensor names come from untrusted JSON; quote only the ones that would garble a message, cut long ones. */
export function showName(name: string): string {
  if (name.length > SHOWN_NAME_CHARS) return `${JSON.stringify(name.slice(0, SHOWN_NAME_CHARS))}... (${name.length} characters)`;
  return /^[\x21-\x7e]+$/.test(name) ? name : JSON.stringify(name);
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isIndex(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

export async function parseSafetensors(source: ByteSource): Promise<SafetensorsFile> {
  const file = source.name;
  const fail = (rule: string): never => {
    throw new CheckpointError(`${file}: ${rule}`);
  };
  if (source.size < 8) fail(`file is ${source.size} bytes, shorter than the 8-byte header length`);

  const lenBytes = await source.read(0, 8);
  const headerLen = new DataView(lenBytes.buffer, lenBytes.byteOffset, 8).getBigUint64(0, true);
  if (headerLen > BigInt(source.size - 8)) {
    fail(`header length ${headerLen} is larger than the rest of the file (${source.size - 8} bytes)`);
  }
  if (headerLen > BigInt(MAX_HEADER_BYTES)) fail(`header length ${headerLen} exceeds the ${MAX_HEADER_BYTES}-byte cap`);
  const n = Number(headerLen);
  const dataStart = 8 + n;
  const dataSize = source.size - dataStart;

  const headerBytes = await source.read(8, n);
  let text = "";
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(headerBytes);
  } catch {
    fail("header is not valid UTF-8");
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    fail(`header is not valid JSON (${(e as Error).message})`);
  }
  if (!isRecord(header)) fail("header is not a JSON object");
  const dup = firstDuplicateKey(text);
  if (dup !== null) {
    fail(dup.path === "" ? `tensor ${showName(dup.key)} is defined twice in the header` : `header entry ${showName(dup.path)} gives ${showName(dup.key)} twice`);
  }
  const entries = header as Record<string, unknown>;

  const metadata: Record<string, string> = {};
  const rawMeta = entries.__metadata__;
  if (rawMeta !== undefined && rawMeta !== null) {
    if (!isRecord(rawMeta)) fail("__metadata__ is not an object");
    for (const [k, v] of Object.entries(rawMeta as Record<string, unknown>)) {
      if (typeof v !== "string") fail(`__metadata__ value for ${showName(k)} is not a string`);
      metadata[k] = v as string;
    }
  }

  const tensors = new Map<string, TensorInfo>();
  for (const [name, entry] of Object.entries(entries)) {
    if (name === "__metadata__") continue;
    const where = `${file}: tensor ${showName(name)}`;
    const bad = (rule: string): never => {
      throw new CheckpointError(`${where}: ${rule}`);
    };
    if (!isRecord(entry)) bad("entry is not an object");
    const e = entry as Record<string, unknown>;
    if (e.dtype === undefined) bad("missing dtype");
    if (e.shape === undefined) bad("missing shape");
    if (e.data_offsets === undefined) bad("missing data_offsets");
    const dtype = parseDType(e.dtype, where);

    if (!Array.isArray(e.shape)) bad("shape is not an array");
    const shape = e.shape as unknown[];
    if (!shape.every(isIndex)) bad(`shape ${JSON.stringify(shape)} has an entry that is not a non-negative integer`);
    const dims = shape as number[];
    const count = numel(dims);
    const expected = count * bytesPerElement(dtype);
    if (!Number.isSafeInteger(expected)) bad(`shape ${JSON.stringify(dims)} is too large`);

    const offs = e.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || !isIndex(offs[0]) || !isIndex(offs[1])) {
      bad(`data_offsets ${JSON.stringify(offs)} is not [begin, end] of non-negative integers`);
    }
    const [b, en] = offs as [number, number];
    if (b > en) bad(`data_offsets [${b}, ${en}] has begin > end`);
    if (en > dataSize) bad(`data_offsets end ${en} is beyond the data section (${dataSize} bytes)`);
    if (en - b !== expected) {
      bad(`byte length ${en - b} does not match shape ${JSON.stringify(dims)} x ${dtype} (${expected} bytes)`);
    }
    tensors.set(name, { name, dtype, shape: dims, source, begin: dataStart + b, end: dataStart + en });
  }

  const occupied = [...tensors.values()].filter((t) => t.end > t.begin).sort((x, y) => x.begin - y.begin);
  for (let i = 1; i < occupied.length; i++) {
    const prev = occupied[i - 1];
    const cur = occupied[i];
    if (cur.begin < prev.end) {
      fail(
        `tensor ${showName(cur.name)} [${cur.begin - dataStart}, ${cur.end - dataStart}] overlaps tensor ` +
          `${showName(prev.name)} [${prev.begin - dataStart}, ${prev.end - dataStart}]`,
      );
    }
  }
  return { tensors, metadata };
}

export interface ReadOptions {
  /** Reject NaN and ±Inf (default true): a non-finite weight poisons every output it touches. */
  checkFinite?: boolean;
  /** Upper bound on one read from the source (default 8 MiB). */
  maxReadBytes?: number;
}

function checkFinite(info: TensorInfo, data: Float32Array, firstIndex: number): void {
  const i = firstNonFinite(data);
  if (i >= 0) {
    throw new CheckpointError(
      `tensor ${showName(info.name)} contains NaN/Inf at index ${firstIndex + i} (value ${data[i]}, ${info.source.name})`,
    );
  }
}

function elementsPerRead(info: TensorInfo, maxReadBytes: number | undefined): number {
  const max = maxReadBytes ?? DEFAULT_MAX_READ_BYTES;
  const per = Math.floor(max / bytesPerElement(info.dtype));
  if (!Number.isSafeInteger(max) || per < 1) {
    throw new CheckpointError(`maxReadBytes ${max} is smaller than one ${info.dtype} element`);
  }
  return per;
}

/** The whole tensor as float32, read in bounded chunks straight into the output. */
export async function readTensorF32(info: TensorInfo, opts: ReadOptions = {}): Promise<Float32Array> {
  const count = numel(info.shape);
  let out: Float32Array;
  try {
    out = new Float32Array(count);
  } catch {
    throw new CheckpointError(
      `tensor ${showName(info.name)} has ${count} elements, too many for one Float32Array; use readRowsF32`,
    );
  }
  const size = bytesPerElement(info.dtype);
  const step = elementsPerRead(info, opts.maxReadBytes);
  for (let i = 0; i < count; i += step) {
    const k = Math.min(step, count - i);
    const bytes = await info.source.read(info.begin + i * size, k * size);
    decodeToF32(info.dtype, bytes, out, i);
    if (opts.checkFinite !== false) checkFinite(info, out.subarray(i, i + k), i);
  }
  return out;
}

export interface RowBlock {
  row0: number;
  rows: number;
  /** rows x columns, row-major; a fresh array per block, so consumers may keep it. */
  data: Float32Array;
}

/** A block of rows as the file stores them (little-endian elements of the tensor's dtype). */
interface RowBytes {
  row0: number;
  rows: number;
  bytes: Uint8Array;
}

/**
 * A 2-D tensor `rowsPerBlock` rows at a time, as float32. Each read is exactly one block (at most
 * rowsPerBlock * columns * element size bytes); the next block is fetched while the caller works on the
 * current one, so at most two blocks are in memory. A tensor with zero columns yields no blocks.
 */
export async function* readRowsF32(
  info: TensorInfo,
  rowsPerBlock: number,
  opts: Pick<ReadOptions, "checkFinite"> = {},
): AsyncGenerator<RowBlock, void, undefined> {
  const cols = info.shape[1];
  for await (const { row0, rows, bytes } of rowBytes(info, rowsPerBlock)) {
    const data = new Float32Array(rows * cols);
    decodeToF32(info.dtype, bytes, data, 0);
    if (opts.checkFinite !== false) checkFinite(info, data, row0 * cols);
    yield { row0, rows, data };
  }
}

/** readRowsF32's blocks as stored, one prefetched read ahead. */
async function* rowBytes(info: TensorInfo, rowsPerBlock: number): AsyncGenerator<RowBytes, void, undefined> {
  if (info.shape.length !== 2) {
    throw new CheckpointError(`tensor ${showName(info.name)}: readRowsF32 needs a 2-D tensor, shape is ${JSON.stringify(info.shape)}`);
  }
  if (!Number.isSafeInteger(rowsPerBlock) || rowsPerBlock < 1) {
    throw new CheckpointError(`tensor ${showName(info.name)}: rowsPerBlock ${rowsPerBlock} is not a positive integer`);
  }
  const [rows, cols] = info.shape;
  // Zero-width rows carry no data, and a header may claim 2^50 of them: iterating would never end.
  if (cols === 0) return;
  const rowBytes = cols * bytesPerElement(info.dtype);
  const fetch = (row0: number): Promise<Uint8Array> =>
    info.source.read(info.begin + row0 * rowBytes, Math.min(rowsPerBlock, rows - row0) * rowBytes);

  let pending: Promise<Uint8Array> | undefined = rows > 0 ? fetch(0) : undefined;
  try {
    for (let row0 = 0; row0 < rows; row0 += rowsPerBlock) {
      const bytes: Uint8Array = await pending!;
      const next = row0 + rowsPerBlock;
      pending = next < rows ? fetch(next) : undefined;
      yield { row0, rows: Math.min(rowsPerBlock, rows - row0), bytes };
    }
  } finally {
    // The caller stopped early or a block failed: the prefetch must not surface as an unhandled rejection.
    pending?.catch(() => undefined);
  }
}
