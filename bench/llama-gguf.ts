// The GGUF behind `npm run bench:peer`: the checkpoint's weights as a llama.cpp model ("llama", or "gemma3"
// for a Gemma 3 checkpoint), so llama.cpp runs the same matrices our engine loads; the tests of the llama.cpp
// reader (src/session/llama-gguf-model.ts) write their files with it too. The container itself is src/model/checkpoint/gguf-writer.ts, the key names
// the reader's; this file adds what only llama.cpp needs: ggml's own Q4_0 rounding, a synthetic
// SentencePiece-style vocabulary, the q/k row order of llama.cpp's converter and its rope_freqs tensor.
//
// Q4_0 (ggml type 2): blocks of 32 consecutive values of a row, 18 bytes each: the scale d as an IEEE half,
// then 16 bytes where byte j holds element j in its low nibble and element j + 16 in its high nibble; the
// value is (nibble - 8) * d. d = m / -8 where m is the value of largest magnitude (sign kept), so that value
// maps to nibble 0 exactly; the quantizer below follows ggml's reference rounding in f32. (The project's own
// files use the engine's recipe instead: quantizeRowsQ4_0 in src/kernels/quantize.ts.)
import type { ModelConfig } from "../src/model/config.js";
import type { Checkpoint } from "../src/model/checkpoint/checkpoint.js";
import { CheckpointError } from "../src/env/byte-source.js";
import { f32ToF16Bits } from "../src/kernels/dtype.js";
import { Q4_0_BLOCK, Q4_0_BLOCK_BYTES, GGUF_DEFAULT_ALIGNMENT } from "../src/model/checkpoint/gguf-format.js";
import { bool, f32, f32s, i32s, str, strings, u32, type GgufTensorToWrite, type GgufValue } from "../src/model/checkpoint/gguf-writer.js";
import type { TensorNames } from "../src/model/tensor-names.js";
import { interleaveRopeRows, ropeInverseFrequencies } from "../src/model/rope.js";
import { ggufTensorNames } from "../src/model/tensor-names.js";
import { familyOf } from "../src/model/families/index.js";
import { LLAMA_CPP_ARCHITECTURES, LLAMA_CPP_KEYS as K, ROPE_FREQS_TENSOR } from "../src/session/llama-gguf-model.js";
import { llamaCppKeys } from "../src/session/llama-cpp-architecture.js";

// ---------------------------------------------------------------------------------------------------------
// Q4_0

const F = Math.fround;

/**
 * Quantizes `x` (a whole number of 32-value blocks, rows laid end to end) into Q4_0 blocks. Arithmetic is
 * done in f32 like ggml's reference quantizer, so the bytes match what llama.cpp's own quantizer writes.
 */
export function quantizeQ4_0(x: Float32Array, out: Uint8Array = new Uint8Array((x.length / Q4_0_BLOCK) * Q4_0_BLOCK_BYTES)): Uint8Array {
  if (x.length % Q4_0_BLOCK !== 0) throw new CheckpointError(`Q4_0: ${x.length} values is not a multiple of ${Q4_0_BLOCK}`);
  const blocks = x.length / Q4_0_BLOCK;
  if (out.length < blocks * Q4_0_BLOCK_BYTES) throw new CheckpointError(`Q4_0: output of ${out.length} bytes is too small for ${blocks} blocks`);
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
// A MobileLLM-Pro checkpoint as a llama.cpp "llama" model

/**
 * Special tokens at their Llama-4 offsets from <|begin_of_text|> (200000 in the real vocabulary), so the GGUF's BOS/EOS ids
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
  if (n < 257 + SPECIAL_OFFSETS.length) throw new CheckpointError(`a synthetic vocabulary needs at least ${257 + SPECIAL_OFFSETS.length} tokens, got ${n}`);
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
  /** How the matrices are stored (default Q4_0); the norms and rope_freqs are F32 whatever this says. */
  matrices?: "Q4_0" | "F32" | "F16";
  /**
   * The Q4_0 encoder of `rows` rows of `cols` values (default quantizeQ4_0 above: ggml's rounding, as
   * llama-quantize writes). A test passes the engine recipe's (quantizeRowsQ4_0Ref, src/kernels/quantize.ts) to get loads that are
   * bit-identical to the folder's.
   */
  q4_0?: (x: Float32Array, rows: number, cols: number) => Uint8Array;
}

/**
 * RoPE's per-frequency divisors as llama.cpp's converter writes them to rope_freqs.weight for a llama3
 * rope_scaling: the unscaled frequency over the scaled one.
 */
export function ropeFrequencyDivisors(c: ModelConfig): Float32Array {
  const rope = c.rope.full_attention;
  const scaled = ropeInverseFrequencies(c.headDim, rope);
  const plain = ropeInverseFrequencies(c.headDim, { ...rope, scaling: null });
  return Float32Array.from(plain, (w, i) => w / scaled[i]);
}

/**
 * The metadata and tensors of a llama.cpp GGUF holding the checkpoint's weights, of the architecture llama.cpp
 * runs its family as ("llama", "gemma3"), keys and tensors as llama.cpp's converter writes them: Q4_0
 * matrices (or F32/F16 ones), F32 norms holding their multipliers (a Gemma checkpoint's 1 + w). q/k rows go in
 * the order llama.cpp's RoPE for the architecture rotates: its llama architecture (rope type NORM) rotates
 * adjacent pairs (2i, 2i+1), so a Hugging Face Llama checkpoint's (rotate_half) are reordered as the
 * converter does (LlamaModel.permute: row i of each head to 2i, row i + headDim/2 to 2i + 1); its gemma3
 * (NEOX) rotates halves, so Gemma's stay as they are. A llama file is all global attention (llama.cpp has no
 * MobileLLM-Pro sliding pattern), with llama3 RoPE scaling as rope_freqs.weight; a gemma3 file gets its
 * sliding window (llama.cpp fixes the pattern). A tied model gets no output.weight: llama.cpp then reads the
 * head from token_embd.
 */
export function llamaGguf(o: LlamaGgufOptions): { metadata: Array<[string, GgufValue]>; tensors: GgufTensorToWrite[] } {
  const c = o.config;
  const arch = familyOf(c.architecture).ggufArchitecture ?? "llama";
  const file = LLAMA_CPP_ARCHITECTURES[arch];
  const A = llamaCppKeys(arch);
  if (arch === "llama") {
    if (c.qkNorm !== "none") throw new CheckpointError("use_qk_norm has no equivalent in llama.cpp's llama architecture");
    if (c.layers.some((l) => !l.rope)) throw new CheckpointError("NoPE layers have no equivalent in llama.cpp's llama architecture");
  }
  const rowsPerRead = o.rowsPerRead ?? 4096;
  const vocab = syntheticVocab(c);
  const specialId = (t: string) => vocab.specials.get(t);
  const eos = c.eosTokenIds[0] ?? specialId("<|end_of_text|>");
  const metadata: Array<[string, GgufValue]> = [
    ["general.architecture", str(arch)],
    ["general.name", str(o.name)],
    ["general.alignment", u32(GGUF_DEFAULT_ALIGNMENT)],
    ["general.file_type", u32(2)], // LLAMA_FTYPE_MOSTLY_Q4_0
    ["general.quantization_version", u32(2)],
    [A.contextLength, u32(c.maxPositions)],
    [A.embeddingLength, u32(c.hiddenSize)],
    [A.blockCount, u32(c.numLayers)],
    [A.feedForwardLength, u32(c.intermediateSize)],
    [A.headCount, u32(c.numHeads)],
    [A.headCountKv, u32(c.numKvHeads)],
    [A.keyLength, u32(c.headDim)],
    [A.valueLength, u32(c.headDim)],
    ...(arch === "llama" ? [[A.ropeDimensionCount, u32(c.headDim)] as [string, GgufValue]] : []),
    [A.ropeFreqBase, f32(c.rope.full_attention.theta)],
    [A.rmsNormEps, f32(c.rmsNormEps)],
    ...(c.slidingWindow !== null && c.layers.some((l) => l.kind === "sliding_attention") ? [[A.slidingWindow, u32(c.slidingWindow)] as [string, GgufValue]] : []),
    ...(arch === "llama" ? [[A.vocabSize, u32(c.vocabSize)] as [string, GgufValue]] : []),
    ["tokenizer.ggml.model", str("llama")],
    [K.tokens, strings(vocab.tokens)],
    ["tokenizer.ggml.scores", f32s(vocab.scores)],
    ["tokenizer.ggml.token_type", i32s(vocab.types)],
    ["tokenizer.ggml.unknown_token_id", u32(0)],
    ["tokenizer.ggml.add_bos_token", bool(false)],
    ["tokenizer.ggml.add_eos_token", bool(false)],
  ];
  const globalScaling = c.rope.full_attention.scaling;
  if (globalScaling?.type === "linear") metadata.push([A.ropeScalingType, str("linear")], [A.ropeScalingFactor, f32(globalScaling.factor)]);
  if (c.bosTokenId !== null && c.bosTokenId < c.vocabSize) metadata.push([K.bosTokenId, u32(c.bosTokenId)]);
  if (eos !== undefined && eos < c.vocabSize) metadata.push([K.eosTokenId, u32(eos)]);
  if (c.padTokenId !== null && c.padTokenId < c.vocabSize) metadata.push([K.padTokenId, u32(c.padTokenId)]);

  const type = o.matrices ?? "Q4_0";
  const q4_0 = o.q4_0 ?? ((x: Float32Array) => quantizeQ4_0(x));
  const encode = (x: Float32Array, rows: number, cols: number): Uint8Array => {
    if (type === "Q4_0") return q4_0(x, rows, cols);
    if (type === "F32") return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
    const h = new Uint16Array(x.length);
    for (let i = 0; i < x.length; i++) h[i] = f32ToF16Bits(x[i]);
    return new Uint8Array(h.buffer);
  };
  const permute = file.ropeStyle === "interleaved" && c.ropeStyle === "rotate_half";
  const permuted = new Set(permute ? o.names.layers.flatMap((l) => [l.wq, l.wk]) : []);
  const matrix = (gguf: string, hf: string): GgufTensorToWrite => {
    const [rows, cols] = o.ckpt.info(hf).shape;
    return {
      name: gguf,
      dims: [cols, rows],
      type,
      data: async function* () {
        if (permuted.has(hf)) {
          // Whole heads at a time: the reorder moves rows within a head.
          const w = await o.ckpt.readF32(hf);
          const rowsBytes = interleaveRopeRows(new Uint8Array(w.buffer, w.byteOffset, w.byteLength), rows, cols * 4, c.headDim);
          yield encode(new Float32Array(rowsBytes.buffer), rows, cols);
          return;
        }
        for await (const b of o.ckpt.readRowsF32(hf, rowsPerRead)) yield encode(b.data, b.rows, cols);
      },
    };
  };
  const vector = (gguf: string, hf: string): GgufTensorToWrite => ({
    name: gguf,
    dims: [o.ckpt.info(hf).shape[0]],
    type: "F32",
    data: async function* () {
      // The norm's multiplier, as the converter writes it (Gemma's 1 + w).
      const v = await o.ckpt.readF32(hf);
      if (o.names.normOffset !== 0) for (let i = 0; i < v.length; i++) v[i] += o.names.normOffset;
      yield new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    },
  });
  const tensor = (gguf: string, hf: string) => (o.ckpt.info(hf).shape.length === 1 ? vector(gguf, hf) : matrix(gguf, hf));

  const n = o.names;
  const to = ggufTensorNames(c);
  const tensors: GgufTensorToWrite[] = [matrix(to.embed, n.embed)];
  n.layers.forEach((l, i) => {
    const g = to.layers[i];
    for (const t of familyOf(c.architecture).layerTensors) tensors.push(tensor(g[t.role] as string, l[t.role] as string));
  });
  tensors.push(vector(to.finalNorm, n.finalNorm));
  if (n.lmHead) tensors.push(matrix("output.weight", n.lmHead));
  if (globalScaling !== null && globalScaling.type !== "linear") {
    if (arch !== "llama") throw new CheckpointError(`llama3 RoPE scaling has no place in llama.cpp's ${arch} files`);
    const divisors = globalScaling.type === "factors" ? Float32Array.from(globalScaling.factors) : ropeFrequencyDivisors(c);
    tensors.push({ name: ROPE_FREQS_TENSOR, dims: [divisors.length], type: "F32", data: async function* () { yield new Uint8Array(divisors.buffer); } });
  }
  return { metadata, tensors };
}
