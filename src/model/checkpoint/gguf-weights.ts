// A GGUF file's tensors as a WeightSource (src/model/weights.ts), so that the int4 engine and the float32
// reference load a GGUF through the same code as a safetensors checkpoint. Q4_0 matrices reach the engine
// as their raw blocks (it repacks them in Wasm memory); F32, F16 and BF16 tensors as their raw elements
// (it quantizes matrices like a folder's). Q8_0, Q4_K and Q6_K tensors (llama.cpp's usual types for the
// embedding and output tables) are decoded to float32 rows here (ggml-dequantize.ts) and reach the engine
// as F32, to be quantized with its recipe like any float tensor. readF32 decodes any of them, Q4_0 as q · d.
import { CheckpointError } from "../../env/byte-source.js";
import { decodeToF32, firstNonFinite, type DType } from "../../kernels/dtype.js";
import { dequantizeInt4 } from "../quantize.js";
import { decodeQ4_0 } from "../q4_0.js";
import { rowBytes, rowRangeProblem, type WeightEncoding, type WeightInfo, type WeightSource } from "../weights.js";
import { dequantizeGgml, dequantizedTypeBytes, isDequantizedType, type DequantizedType } from "./ggml-dequantize.js";
import type { GgufFile, GgufTensorInfo } from "./gguf.js";
import { showName } from "./safetensors.js";

const ENCODINGS: ReadonlySet<string> = new Set<WeightEncoding>(["F32", "F16", "BF16", "Q4_0"]);

/** The ggml tensor types this loader reads, as its refusal names them. */
export const READABLE_GGML_TYPES = "F32, F16, BF16, Q4_0, Q8_0, Q4_K, Q6_K";

export class GgufWeights implements WeightSource {
  constructor(readonly file: GgufFile) {}

  private fail(msg: string): never {
    throw new CheckpointError(`${this.file.source.name}: ${msg}`);
  }

  /** The tensor, how it reaches the loader (`info`) and, for a decoded type, which one it is stored as. */
  private tensor(name: string): { t: GgufTensorInfo; info: WeightInfo; stored: DequantizedType | null } {
    const t = this.file.tensor(name);
    if (isDequantizedType(t.type)) return { t, info: { name, shape: t.shape, encoding: "F32" }, stored: t.type };
    if (!ENCODINGS.has(t.type)) this.fail(`tensor ${showName(name)} is ${t.type}; this loader reads ${READABLE_GGML_TYPES}`);
    return { t, info: { name, shape: t.shape, encoding: t.type as WeightEncoding }, stored: null };
  }

  weight(name: string): WeightInfo {
    return this.tensor(name).info;
  }

  async readRowsInto(name: string, row0: number, rows: number, out: Uint8Array, outOffset: number): Promise<void> {
    const { t, info, stored } = this.tensor(name);
    const problem = rowRangeProblem(info, row0, rows);
    if (problem !== null) this.fail(problem);
    if (stored === null) {
      const bytes = rowBytes(info);
      await this.file.readTensorBytes(t, out, outOffset, { begin: row0 * bytes, length: rows * bytes });
      return;
    }
    const cols = info.shape[1];
    if (outOffset < 0 || outOffset + rows * cols * 4 > out.length) this.fail(`${rows} rows of tensor ${showName(name)} do not fit the output at ${outOffset}`);
    const storedRow = dequantizedTypeBytes(stored, cols);
    const raw = new Uint8Array(rows * storedRow);
    await this.file.readTensorBytes(t, raw, 0, { begin: row0 * storedRow, length: raw.length });
    // Decoded straight into `out` when it is 4-byte aligned there (the engine's staging region is).
    const at = out.byteOffset + outOffset;
    const direct = at % 4 === 0;
    const values = direct ? new Float32Array(out.buffer, at, rows * cols) : new Float32Array(rows * cols);
    dequantizeGgml(stored, raw, values);
    if (!direct) out.set(new Uint8Array(values.buffer), outOffset);
  }

  async readF32(name: string): Promise<Float32Array> {
    const { t, info, stored } = this.tensor(name);
    // Bounded by the file: the reader checked every tensor's extent against the file's size.
    const bytes = new Uint8Array(t.bytes);
    await this.file.readTensorBytes(t, bytes);
    let out: Float32Array;
    if (stored !== null) {
      out = new Float32Array(t.elements);
      dequantizeGgml(stored, bytes, out);
    } else if (info.encoding === "Q4_0") {
      const cols = t.shape[t.shape.length - 1];
      out = dequantizeInt4(decodeQ4_0(bytes, t.elements / cols, cols));
    } else {
      out = new Float32Array(t.elements);
      decodeToF32(info.encoding as DType, bytes, out, 0);
    }
    const bad = firstNonFinite(out);
    if (bad >= 0) this.fail(`tensor ${showName(name)} contains NaN/Inf at index ${bad} (value ${out[bad]})`);
    return out;
  }
}
