// Element formats a checkpoint may store and their conversion to and from float32.
//
// All three are little-endian in the file. Conversions go through typed-array views of the host's memory,
// which is little-endian on every platform a JS engine ships on; a big-endian host is refused rather than
// silently byte-swapped.
import { CheckpointError } from "../env/byte-source.js";

export type DType = "F32" | "F16" | "BF16";

export const DTYPES: readonly DType[] = ["F32", "F16", "BF16"];

const BYTES: Record<DType, number> = { F32: 4, F16: 2, BF16: 2 };

export function bytesPerElement(dtype: DType): number {
  return BYTES[dtype];
}

export function isDType(s: unknown): s is DType {
  return s === "F32" || s === "F16" || s === "BF16";
}

/** Narrows a header's dtype field; `where` names the file and tensor for the message. */
export function parseDType(value: unknown, where: string): DType {
  if (isDType(value)) return value;
  const shown = typeof value === "string" ? value : JSON.stringify(value);
  throw new CheckpointError(`${where}: unsupported dtype ${shown} (supported: ${DTYPES.join(", ")})`);
}

const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function requireLittleEndian(): void {
  if (!HOST_LITTLE_ENDIAN) throw new CheckpointError("big-endian hosts are not supported");
}

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** Exact value of an IEEE half: subnormals, signed zeros, infinities; every NaN becomes the canonical NaN. */
export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant === 0 ? sign * Infinity : NaN;
  return sign * (1024 + mant) * 2 ** (exp - 25);
}

/** float32 -> half bits, round to nearest, ties to even; overflow goes to infinity as IEEE requires. */
export function f32ToF16Bits(x: number): number {
  scratchF32[0] = x;
  const b = scratchU32[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  const mant = b & 0x7fffff;
  if (exp === 0xff) return mant === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mant >>> 13);
  const e = exp - 112; // rebias 127 -> 15
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Half subnormal: units of 2^-24. Anything below half of the smallest subnormal rounds to zero.
    const shift = 14 - e;
    if (shift > 24) return sign;
    const m = mant | 0x800000;
    let q = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (q & 1) === 1)) q++;
    return sign | q; // q may reach 0x400, which is exactly the smallest normal
  }
  let q = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (q & 1) === 1)) q++; // a carry into the exponent is correct, up to inf
  return sign | q;
}

/** float32 -> bfloat16 bits, round to nearest, ties to even; NaN stays a (quiet) NaN. */
export function f32ToBf16Bits(x: number): number {
  scratchF32[0] = x;
  const b = scratchU32[0];
  if ((b & 0x7f800000) === 0x7f800000 && (b & 0x7fffff) !== 0) return ((b >>> 16) | 0x40) & 0xffff;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

let f16Table: Float32Array | undefined;

/** 256 KB once: a table lookup beats per-element branching on the hot decode path. */
function halfTable(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16BitsToF32(h);
  }
  return f16Table;
}

/** A typed view needs an aligned byte offset; fresh reads are aligned, but callers may pass a subarray. */
function aligned(bytes: Uint8Array, align: number): Uint8Array {
  return bytes.byteOffset % align === 0 ? bytes : bytes.slice();
}

/**
 * Decodes little-endian elements from `bytes` into `out[outOffset ..]`. `bytes.length` must be a whole
 * number of elements and fit in `out`.
 */
export function decodeToF32(dtype: DType, bytes: Uint8Array, out: Float32Array, outOffset: number): void {
  requireLittleEndian();
  const size = BYTES[dtype];
  if (bytes.length % size !== 0) {
    throw new CheckpointError(`decode ${dtype}: ${bytes.length} bytes is not a whole number of elements`);
  }
  const n = bytes.length / size;
  if (!Number.isSafeInteger(outOffset) || outOffset < 0 || outOffset + n > out.length) {
    throw new CheckpointError(`decode ${dtype}: ${n} elements at ${outOffset} do not fit an output of ${out.length}`);
  }
  if (dtype === "F32") {
    new Uint8Array(out.buffer, out.byteOffset + outOffset * 4, n * 4).set(bytes);
    return;
  }
  const src = aligned(bytes, 2);
  const halves = new Uint16Array(src.buffer, src.byteOffset, n);
  if (dtype === "BF16") {
    // bf16 is the top half of an f32: shifting the bits is exact, NaN payloads included.
    const dst = new Uint32Array(out.buffer, out.byteOffset + outOffset * 4, n);
    for (let i = 0; i < n; i++) dst[i] = halves[i] << 16;
    return;
  }
  const table = halfTable();
  for (let i = 0; i < n; i++) out[outOffset + i] = table[halves[i]];
}

/** Encodes `src` as little-endian `dtype` into `out` starting at byte `outOffset`. */
export function encodeFromF32(dtype: DType, src: Float32Array, out: Uint8Array, outOffset: number): void {
  requireLittleEndian();
  const size = BYTES[dtype];
  const nbytes = src.length * size;
  if (!Number.isSafeInteger(outOffset) || outOffset < 0 || outOffset + nbytes > out.length) {
    throw new CheckpointError(`encode ${dtype}: ${src.length} elements at byte ${outOffset} do not fit ${out.length} bytes`);
  }
  if (dtype === "F32") {
    out.set(new Uint8Array(src.buffer, src.byteOffset, nbytes), outOffset);
    return;
  }
  const direct = (out.byteOffset + outOffset) % 2 === 0;
  const dst = direct ? new Uint16Array(out.buffer, out.byteOffset + outOffset, src.length) : new Uint16Array(src.length);
  if (dtype === "BF16") {
    const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
    for (let i = 0; i < src.length; i++) {
      const b = bits[i];
      dst[i] =
        (b & 0x7f800000) === 0x7f800000 && (b & 0x7fffff) !== 0
          ? (b >>> 16) | 0x40
          : (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
    }
  } else {
    for (let i = 0; i < src.length; i++) dst[i] = f32ToF16Bits(src[i]);
  }
  if (!direct) out.set(new Uint8Array(dst.buffer), outOffset);
}

/** Index of the first NaN or ±Inf in `a`, or -1. `x - x` is NaN exactly for those, one compare per value. */
export function firstNonFinite(a: Float32Array): number {
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    if (x - x !== 0) return i;
  }
  return -1;
}
