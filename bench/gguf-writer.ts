// A small streaming GGUF writer, enough to hand llama.cpp the same weights our engine loads (bench/peer.ts).
//
// GGUF v3, little-endian, as ggml's docs/gguf.md describes it:
//   "GGUF" | u32 version | u64 tensor count | u64 metadata count | metadata | tensor infos | pad | data
// A metadata entry is a string key, a u32 value type and the value; strings are a u64 byte length and UTF-8
// bytes; arrays are a u32 item type, a u64 count and the items. A tensor info is its name, u32 n_dims, the
// dims as u64 with ne[0] (the contiguous, innermost axis) first, the u32 ggml type and a u64 offset into the
// data section. The data section starts at the next multiple of general.alignment (32 by default) and every
// tensor starts on such a multiple.
//
// Q4_0 (ggml type 2): blocks of 32 consecutive values of a row, 18 bytes each: the scale d as an IEEE half,
// then 16 bytes where byte j holds element j in its low nibble and element j + 16 in its high nibble; the
// value is (nibble - 8) * d. d = m / -8 where m is the value of largest magnitude (sign kept), so that value
// maps to nibble 0 exactly; the quantizer below follows ggml's reference rounding in f32.
//
// Tensor data is produced by async iterables and written as it comes, so a 0.7 GB file never sits in memory.
import type { ModelConfig } from "../src/model/config.js";
import type { Checkpoint } from "../src/model/checkpoint/checkpoint.js";
import { openFileSink } from "../src/node/file-source.js";
import { type ByteSink } from "../src/env/byte-source.js";
import { f32ToF16Bits } from "../src/model/checkpoint/dtype.js";
import type { TensorNames } from "../src/model/tensor-names.js";

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;

/** gguf_type: the type tag of a metadata value. */
export const GgufValueType = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const;

/** The ggml tensor types this writer produces. */
export const GgmlType = { F32: 0, F16: 1, Q4_0: 2 } as const;
export type GgmlTypeName = keyof typeof GgmlType;

export const Q4_0_BLOCK = 32;
export const Q4_0_BLOCK_BYTES = 18;

export type GgufValue =
  | { type: "uint32"; value: number }
  | { type: "int32"; value: number }
  | { type: "uint64"; value: number }
  | { type: "float32"; value: number }
  | { type: "bool"; value: boolean }
  | { type: "string"; value: string }
  | { type: "string[]"; value: readonly string[] }
  | { type: "float32[]"; value: ArrayLike<number> }
  | { type: "int32[]"; value: ArrayLike<number> };

export const u32 = (value: number): GgufValue => ({ type: "uint32", value });
export const i32 = (value: number): GgufValue => ({ type: "int32", value });
export const f32 = (value: number): GgufValue => ({ type: "float32", value });
export const bool = (value: boolean): GgufValue => ({ type: "bool", value });
export const str = (value: string): GgufValue => ({ type: "string", value });

export interface GgufTensor {
  name: string;
  /** ggml order: dims[0] is the contiguous axis (a PyTorch [out, in] matrix is [in, out] here). */
  dims: readonly number[];
  type: GgmlTypeName;
  /** The tensor's bytes, in order; together exactly tensorByteSize(type, dims). */
  data: () => AsyncIterable<Uint8Array>;
}

export class GgufError extends Error {
  override name = "GgufError";
}

export function tensorByteSize(type: GgmlTypeName, dims: readonly number[]): number {
  const n = dims.reduce((a, b) => a * b, 1);
  switch (type) {
    case "F32":
      return 4 * n;
    case "F16":
      return 2 * n;
    case "Q4_0":
      if (dims[0] % Q4_0_BLOCK !== 0) throw new GgufError(`Q4_0 needs rows of a multiple of ${Q4_0_BLOCK} values, got ${dims[0]}`);
      return (n / Q4_0_BLOCK) * Q4_0_BLOCK_BYTES;
  }
}

const alignUp = (n: number, a: number) => Math.ceil(n / a) * a;

// ---------------------------------------------------------------------------------------------------------
// Q4_0

const F = Math.fround;

/**
 * Quantizes `x` (a whole number of 32-value blocks, rows laid end to end) into Q4_0 blocks. Arithmetic is
 * done in f32 like ggml's reference quantizer, so the bytes match what llama.cpp's own quantizer writes.
 */
export function quantizeQ4_0(x: Float32Array, out: Uint8Array = new Uint8Array((x.length / Q4_0_BLOCK) * Q4_0_BLOCK_BYTES)): Uint8Array {
  if (x.length % Q4_0_BLOCK !== 0) throw new GgufError(`Q4_0: ${x.length} values is not a multiple of ${Q4_0_BLOCK}`);
  const blocks = x.length / Q4_0_BLOCK;
  if (out.length < blocks * Q4_0_BLOCK_BYTES) throw new GgufError(`Q4_0: output of ${out.length} bytes is too small for ${blocks} blocks`);
  for (let b = 0; b < blocks; b++) {
    const base = b * Q4_0_BLOCK;
    let amax = 0;
    let max = 0;
    for (let j = 0; j < Q4_0_BLOCK; j++) {
      const v = x[base + j];
      const a = Math.abs(v);
      if (amax < a) {
        amax = a;
        max = v;
      }
    }
    const d = F(max / -8);
    const id = d !== 0 ? F(1 / d) : 0;
    const o = b * Q4_0_BLOCK_BYTES;
    const h = f32ToF16Bits(d);
    out[o] = h & 0xff;
    out[o + 1] = h >>> 8;
    for (let j = 0; j < 16; j++) {
      // (int8_t)(x * id + 8.5f) truncates toward zero; the sum lies in [0.5, 16.5] so it is never negative.
      const lo = Math.min(15, Math.trunc(F(F(x[base + j] * id) + 8.5)));
      const hi = Math.min(15, Math.trunc(F(F(x[base + 16 + j] * id) + 8.5)));
      out[o + 2 + j] = lo | (hi << 4);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Header

/** Appends little-endian fields to a growing list of chunks. */
class ByteWriter {
  private chunks: Uint8Array[] = [];
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  private pos = 0;
  length = 0;

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    this.flush();
    if (n > this.buf.length) {
      this.buf = new Uint8Array(n);
      this.view = new DataView(this.buf.buffer);
    }
  }
  private flush(): void {
    if (this.pos > 0) this.chunks.push(this.buf.slice(0, this.pos));
    this.pos = 0;
  }
  u8(v: number): void {
    this.room(1);
    this.buf[this.pos++] = v;
    this.length++;
  }
  u32(v: number): void {
    this.room(4);
    this.view.setUint32(this.pos, v, true);
    this.pos += 4;
    this.length += 4;
  }
  i32(v: number): void {
    this.room(4);
    this.view.setInt32(this.pos, v, true);
    this.pos += 4;
    this.length += 4;
  }
  f32(v: number): void {
    this.room(4);
    this.view.setFloat32(this.pos, v, true);
    this.pos += 4;
    this.length += 4;
  }
  u64(v: number): void {
    if (!Number.isSafeInteger(v) || v < 0) throw new GgufError(`u64 field: ${v} is not a non-negative safe integer`);
    this.room(8);
    this.view.setBigUint64(this.pos, BigInt(v), true);
    this.pos += 8;
    this.length += 8;
  }
  bytes(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    this.length += b.length;
  }
  string(s: string): void {
    const b = new TextEncoder().encode(s);
    this.u64(b.length);
    this.bytes(b);
  }
  zeros(n: number): void {
    this.room(n);
    this.buf.fill(0, this.pos, this.pos + n);
    this.pos += n;
    this.length += n;
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

function writeValue(w: ByteWriter, key: string, v: GgufValue): void {
  const T = GgufValueType;
  const checkInt = (x: number, lo: number, hi: number) => {
    if (!Number.isInteger(x) || x < lo || x > hi) throw new GgufError(`metadata ${key}: ${x} is out of range for ${v.type}`);
  };
  switch (v.type) {
    case "uint32":
      checkInt(v.value, 0, 2 ** 32 - 1);
      w.u32(T.UINT32);
      w.u32(v.value);
      return;
    case "int32":
      checkInt(v.value, -(2 ** 31), 2 ** 31 - 1);
      w.u32(T.INT32);
      w.i32(v.value);
      return;
    case "uint64":
      w.u32(T.UINT64);
      w.u64(v.value);
      return;
    case "float32":
      w.u32(T.FLOAT32);
      w.f32(v.value);
      return;
    case "bool":
      w.u32(T.BOOL);
      w.u8(v.value ? 1 : 0);
      return;
    case "string":
      w.u32(T.STRING);
      w.string(v.value);
      return;
    case "string[]":
      w.u32(T.ARRAY);
      w.u32(T.STRING);
      w.u64(v.value.length);
      for (const s of v.value) w.string(s);
      return;
    case "float32[]":
      w.u32(T.ARRAY);
      w.u32(T.FLOAT32);
      w.u64(v.value.length);
      for (let i = 0; i < v.value.length; i++) w.f32(v.value[i]);
      return;
    case "int32[]":
      w.u32(T.ARRAY);
      w.u32(T.INT32);
      w.u64(v.value.length);
      for (let i = 0; i < v.value.length; i++) {
        checkInt(v.value[i], -(2 ** 31), 2 ** 31 - 1);
        w.i32(v.value[i]);
      }
      return;
  }
}

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
export function encodeGgufHeader(metadata: ReadonlyArray<readonly [string, GgufValue]>, tensors: ReadonlyArray<Pick<GgufTensor, "name" | "dims" | "type">>): GgufLayout {
  const seenKeys = new Set<string>();
  let alignment = GGUF_DEFAULT_ALIGNMENT;
  for (const [k, v] of metadata) {
    if (seenKeys.has(k)) throw new GgufError(`metadata key ${k} is given twice`);
    seenKeys.add(k);
    if (k === "general.alignment") {
      if (v.type !== "uint32" || v.value <= 0 || v.value % 8 !== 0) throw new GgufError(`general.alignment must be a uint32 multiple of 8`);
      alignment = v.value;
    }
  }
  const seenTensors = new Set<string>();
  const offsets: number[] = [];
  const sizes: number[] = [];
  let offset = 0;
  for (const t of tensors) {
    if (seenTensors.has(t.name)) throw new GgufError(`tensor ${t.name} is given twice`);
    seenTensors.add(t.name);
    if (t.dims.length < 1 || t.dims.length > 4 || t.dims.some((d) => !Number.isSafeInteger(d) || d <= 0)) {
      throw new GgufError(`tensor ${t.name}: dims ${JSON.stringify(t.dims)} must be 1 to 4 positive integers`);
    }
    offset = alignUp(offset, alignment);
    offsets.push(offset);
    const size = tensorByteSize(t.type, t.dims);
    sizes.push(size);
    offset += size;
  }

  const w = new ByteWriter();
  w.u32(GGUF_MAGIC);
  w.u32(GGUF_VERSION);
  w.u64(tensors.length);
  w.u64(metadata.length);
  for (const [k, v] of metadata) {
    w.string(k);
    writeValue(w, k, v);
  }
  tensors.forEach((t, i) => {
    w.string(t.name);
    w.u32(t.dims.length);
    for (const d of t.dims) w.u64(d);
    w.u32(GgmlType[t.type]);
    w.u64(offsets[i]);
  });
  w.zeros(alignUp(w.length, alignment) - w.length);
  const header = w.finish();
  const last = tensors.length - 1;
  const dataEnd = last >= 0 ? offsets[last] + sizes[last] : 0;
  return { header, offsets, sizes, fileSize: header.length + alignUp(dataEnd, alignment), alignment };
}

/** Writes header and tensors through `sink`, checking every tensor yields exactly its declared size. */
export async function writeGgufTo(sink: ByteSink, metadata: ReadonlyArray<readonly [string, GgufValue]>, tensors: readonly GgufTensor[], onTensor?: (index: number, name: string) => void): Promise<GgufLayout> {
  const layout = encodeGgufHeader(metadata, tensors);
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
      if (n > layout.sizes[i]) throw new GgufError(`tensor ${t.name}: data is longer than the ${layout.sizes[i]} bytes its type and dims imply`);
      await sink.write(chunk);
    }
    if (n !== layout.sizes[i]) throw new GgufError(`tensor ${t.name}: got ${n} bytes of data, its type and dims imply ${layout.sizes[i]}`);
    pos += n;
    onTensor?.(i, t.name);
  }
  const end = layout.fileSize - layout.header.length;
  if (end > pos) await sink.write(new Uint8Array(end - pos));
  return layout;
}

/** Writes a GGUF file (through `path.partial`, renamed when complete). */
export async function writeGguf(path: string, metadata: ReadonlyArray<readonly [string, GgufValue]>, tensors: readonly GgufTensor[], onTensor?: (index: number, name: string) => void): Promise<GgufLayout> {
  const sink = await openFileSink(path);
  try {
    const layout = await writeGgufTo(sink, metadata, tensors, onTensor);
    await sink.close();
    return layout;
  } catch (e) {
    await sink.abort();
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------------------
// A MobileLLM-Pro checkpoint as a llama.cpp "llama" model

/**
 * Special tokens at their Llama-4 offsets from <|begin_of_text|> (spec section 3), so the GGUF's BOS/EOS ids
 * are the config's. The rest of the vocabulary is synthetic: the benchmark feeds token ids, never text.
 */
const SPECIAL_OFFSETS: ReadonlyArray<readonly [number, string]> = [
  [0, "<|begin_of_text|>"],
  [1, "<|end_of_text|>"],
  [2, "<|fim_prefix|>"],
  [3, "<|fim_middle|>"],
  [4, "<|fim_suffix|>"],
  [5, "<|header_start|>"],
  [6, "<|header_end|>"],
  [7, "<|eom|>"],
  [8, "<|eot|>"],
  [9, "<|step|>"],
  [16, "<|python_start|>"],
  [17, "<|python_end|>"],
  [18, "<|finetune_right_pad|>"],
];

/** llama_token_type values of tokenizer.ggml.token_type. */
const TOKEN_TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, BYTE: 6 } as const;

/**
 * A SentencePiece-style ("llama") vocabulary of exactly `vocab` tokens: <unk> at 0, the 256 byte tokens
 * <0x00>..<0xFF> at 1..256 (llama.cpp looks up <0x0A> for its newline token), control tokens at the
 * config's special ids, and unique filler pieces everywhere else.
 */
export function syntheticVocab(config: ModelConfig): { tokens: string[]; types: Int32Array; scores: Float32Array; specials: Map<string, number> } {
  const n = config.vocabSize;
  if (n < 257 + SPECIAL_OFFSETS.length) throw new GgufError(`a synthetic vocabulary needs at least ${257 + SPECIAL_OFFSETS.length} tokens, got ${n}`);
  const tokens = new Array<string>(n);
  const types = new Int32Array(n).fill(TOKEN_TYPE.NORMAL);
  const scores = new Float32Array(n);
  tokens[0] = "<unk>";
  types[0] = TOKEN_TYPE.UNKNOWN;
  for (let b = 0; b < 256; b++) {
    tokens[1 + b] = `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`;
    types[1 + b] = TOKEN_TYPE.BYTE;
  }
  const specials = new Map<string, number>();
  const bos = config.bosTokenId ?? n - 24;
  for (const [offset, text] of SPECIAL_OFFSETS) {
    const id = bos + offset;
    if (id < 257 || id >= n) continue;
    tokens[id] = text;
    types[id] = TOKEN_TYPE.CONTROL;
    specials.set(text, id);
  }
  for (let i = 257; i < n; i++) {
    if (tokens[i] === undefined) {
      tokens[i] = `\u2581t${i}`;
      scores[i] = -i;
    }
  }
  return { tokens, types, scores, specials };
}

export interface LlamaGgufOptions {
  ckpt: Checkpoint;
  config: ModelConfig;
  names: TensorNames;
  /** general.name */
  name: string;
  /** Rows read (and quantized) per checkpoint read. */
  rowsPerRead?: number;
}

/**
 * The metadata and tensors of a llama.cpp "llama" GGUF holding the checkpoint's weights: Q4_0 matrices, F32
 * norms. Every layer is global attention (llama.cpp has no MobileLLM-Pro sliding pattern). q/k rows are
 * written as they are: our RoPE rotates adjacent pairs (2i, 2i+1), which is what llama.cpp's llama
 * architecture (rope type NORM) does with GGUF weights; the permutation llama.cpp's converter applies to
 * Hugging Face Llama checkpoints undoes HF's rotate-half layout, which this checkpoint does not use
 * (spec 2.4). A tied model gets no output.weight: llama.cpp then reads the head from token_embd.
 */
export function llamaGguf(o: LlamaGgufOptions): { metadata: Array<[string, GgufValue]>; tensors: GgufTensor[] } {
  const c = o.config;
  if (c.ropeScaling !== null) throw new GgufError("rope_scaling is not carried over to the GGUF (llama.cpp would need rope_freqs.weight)");
  if (c.useQkNorm) throw new GgufError("use_qk_norm has no equivalent in llama.cpp's llama architecture");
  if (c.useRope.some((r) => !r)) throw new GgufError("NoPE layers have no equivalent in llama.cpp's llama architecture");
  const rowsPerRead = o.rowsPerRead ?? 4096;
  const vocab = syntheticVocab(c);
  const specialId = (t: string) => vocab.specials.get(t);
  const eos = c.eosTokenIds[0] ?? specialId("<|end_of_text|>");
  const metadata: Array<[string, GgufValue]> = [
    ["general.architecture", str("llama")],
    ["general.name", str(o.name)],
    ["general.alignment", u32(GGUF_DEFAULT_ALIGNMENT)],
    ["general.file_type", u32(2)], // LLAMA_FTYPE_MOSTLY_Q4_0
    ["general.quantization_version", u32(2)],
    ["llama.context_length", u32(c.maxPositions)],
    ["llama.embedding_length", u32(c.hiddenSize)],
    ["llama.block_count", u32(c.numLayers)],
    ["llama.feed_forward_length", u32(c.intermediateSize)],
    ["llama.attention.head_count", u32(c.numHeads)],
    ["llama.attention.head_count_kv", u32(c.numKvHeads)],
    ["llama.attention.key_length", u32(c.headDim)],
    ["llama.attention.value_length", u32(c.headDim)],
    ["llama.rope.dimension_count", u32(c.headDim)],
    ["llama.rope.freq_base", f32(c.ropeTheta)],
    ["llama.attention.layer_norm_rms_epsilon", f32(c.rmsNormEps)],
    ["llama.vocab_size", u32(c.vocabSize)],
    ["tokenizer.ggml.model", str("llama")],
    ["tokenizer.ggml.tokens", { type: "string[]", value: vocab.tokens }],
    ["tokenizer.ggml.scores", { type: "float32[]", value: vocab.scores }],
    ["tokenizer.ggml.token_type", { type: "int32[]", value: vocab.types }],
    ["tokenizer.ggml.unknown_token_id", u32(0)],
    ["tokenizer.ggml.add_bos_token", bool(false)],
    ["tokenizer.ggml.add_eos_token", bool(false)],
  ];
  if (c.bosTokenId !== null && c.bosTokenId < c.vocabSize) metadata.push(["tokenizer.ggml.bos_token_id", u32(c.bosTokenId)]);
  if (eos !== undefined && eos < c.vocabSize) metadata.push(["tokenizer.ggml.eos_token_id", u32(eos)]);
  if (c.padTokenId !== null && c.padTokenId < c.vocabSize) metadata.push(["tokenizer.ggml.padding_token_id", u32(c.padTokenId)]);

  const matrix = (gguf: string, hf: string): GgufTensor => {
    const [rows, cols] = o.ckpt.info(hf).shape;
    return {
      name: gguf,
      dims: [cols, rows],
      type: "Q4_0",
      data: async function* () {
        for await (const b of o.ckpt.readRowsF32(hf, rowsPerRead)) yield quantizeQ4_0(b.data);
      },
    };
  };
  const vector = (gguf: string, hf: string): GgufTensor => ({
    name: gguf,
    dims: [o.ckpt.info(hf).shape[0]],
    type: "F32",
    data: async function* () {
      const v = await o.ckpt.readF32(hf);
      yield new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    },
  });

  const n = o.names;
  const tensors: GgufTensor[] = [matrix("token_embd.weight", n.embed)];
  n.layers.forEach((l, i) => {
    const p = `blk.${i}`;
    tensors.push(
      vector(`${p}.attn_norm.weight`, l.attnNorm),
      matrix(`${p}.attn_q.weight`, l.wq),
      matrix(`${p}.attn_k.weight`, l.wk),
      matrix(`${p}.attn_v.weight`, l.wv),
      matrix(`${p}.attn_output.weight`, l.wo),
      vector(`${p}.ffn_norm.weight`, l.ffnNorm),
      matrix(`${p}.ffn_gate.weight`, l.wGate),
      matrix(`${p}.ffn_up.weight`, l.wUp),
      matrix(`${p}.ffn_down.weight`, l.wDown),
    );
  });
  tensors.push(vector("output_norm.weight", n.finalNorm));
  if (n.lmHead) tensors.push(matrix("output.weight", n.lmHead));
  return { metadata, tensors };
}
