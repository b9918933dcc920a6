// A GGUF file's tensors as a WeightSource (src/model/weights.ts), so that the int4 engine and the float32
// reference load a GGUF through the same code as a safetensors checkpoint. Q4_0 matrices reach the engine
// as their raw blocks (it repacks them in Wasm memory); F32, F16 and BF16 tensors as their raw elements
// (it quantizes matrices like a folder's). readF32 decodes any of them, Q4_0 as q · d.
import { CheckpointError } from "../../env/byte-source.js";
import { decodeToF32, firstNonFinite, type DType } from "../../kernels/dtype.js";
import { dequantizeInt4 } from "../quantize.js";
import { decodeQ4_0 } from "../q4_0.js";
import { rowBytes, rowRangeProblem, type WeightEncoding, type WeightInfo, type WeightSource } from "../weights.js";
import type { GgufFile, GgufTensorInfo } from "./gguf.js";
import { showName } from "./safetensors.js";

const ENCODINGS: ReadonlySet<string> = new Set<WeightEncoding>(["F32", "F16", "BF16", "Q4_0"]);

export class GgufWeights implements WeightSource {
  constructor(readonly file: GgufFile) {}

  private fail(msg: string): never {
    throw new CheckpointError(`${this.file.source.name}: ${msg}`);
  }

  private tensor(name: string): { t: GgufTensorInfo; info: WeightInfo } {
    const t = this.file.tensor(name);
    if (!ENCODINGS.has(t.type)) this.fail(`tensor ${showName(name)} is ${t.type}; this loader reads F32, F16, BF16 and Q4_0 tensors`);
    return { t, info: { name, shape: t.shape, encoding: t.type as WeightEncoding } };
  }

  weight(name: string): WeightInfo {
    return this.tensor(name).info;
  }

  async readRowsInto(name: string, row0: number, rows: number, out: Uint8Array, outOffset: number): Promise<void> {
    const { t, info } = this.tensor(name);
    const problem = rowRangeProblem(info, row0, rows);
    if (problem !== null) this.fail(problem);
    const bytes = rowBytes(info);
    await this.file.readTensorBytes(t, out, outOffset, { begin: row0 * bytes, length: rows * bytes });
  }

  async readF32(name: string): Promise<Float32Array> {
    const { t, info } = this.tensor(name);
    // Bounded by the file: the reader checked every tensor's extent against the file's size.
    const bytes = new Uint8Array(t.bytes);
    await this.file.readTensorBytes(t, bytes);
    let out: Float32Array;
    if (info.encoding === "Q4_0") {
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
