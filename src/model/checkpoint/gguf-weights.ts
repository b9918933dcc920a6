// A GGUF file's tensors as a WeightSource (src/model/weights.ts), so that the engine and the float32 reference
// load a GGUF through the same code as a safetensors checkpoint. Every tensor reaches the engine as its raw
// stored rows, whatever its type (F32, F16, BF16 or one of ggml's block types: src/kernels/ggml-blocks.ts); the
// engine writes them into the layout `quantization` says (load-weights.ts). readF32 decodes any of them
// (ggml-dequantize.ts), exactly as llama.cpp dequantizes them.
import { CheckpointError } from "../../env/byte-source.js";
import { decodeToF32, firstNonFinite, isDType } from "../../kernels/dtype.js";
import { isGgmlQuantType, WEIGHT_ENCODINGS, type WeightEncoding } from "../../kernels/ggml-blocks.js";
import { rowBytes, rowRangeProblem, type Quantization, type WeightInfo, type WeightSource } from "../weights.js";
import { dequantizeGgml } from "./ggml-dequantize.js";
import type { GgufFile, GgufTensorInfo } from "./gguf.js";
import { showName } from "./safetensors.js";

/** The ggml tensor types this loader reads, as its refusal names them. */
export const READABLE_GGML_TYPES = WEIGHT_ENCODINGS.join(", ");

export function isReadableGgmlType(type: string): type is WeightEncoding {
  return isDType(type) || isGgmlQuantType(type);
}

export class GgufWeights implements WeightSource {
  /**
   * `quantization`: "recipe" for this project's own files (`mobilellm convert`: Q4_0 blocks of the engine's
   * recipe), "file" for llama.cpp's (every matrix computed with the values it holds).
   */
  constructor(
    readonly file: GgufFile,
    readonly quantization: Quantization = "recipe",
  ) {}

  where(name: string): string {
    return `${this.file.source.name}: tensor ${showName(name)}`;
  }

  private fail(msg: string): never {
    throw new CheckpointError(`${this.file.source.name}: ${msg}`);
  }

  /** The tensor and how it reaches the loader; a type this loader does not read is refused by name. */
  private tensor(name: string): { t: GgufTensorInfo; info: WeightInfo } {
    const t = this.file.tensor(name);
    if (!isReadableGgmlType(t.type)) this.fail(`tensor ${showName(name)} is ${t.type}; this loader reads ${READABLE_GGML_TYPES}`);
    return { t, info: { name, shape: t.shape, encoding: t.type } };
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
    const out = new Float32Array(t.elements);
    const encoding = info.encoding;
    if (isGgmlQuantType(encoding)) {
      try {
        dequantizeGgml(encoding, bytes, out);
      } catch (err) {
        this.fail(`tensor ${showName(name)}: ${(err as Error).message}`);
      }
    } else {
      decodeToF32(encoding, bytes, out, 0);
    }
    const bad = firstNonFinite(out);
    if (bad >= 0) this.fail(`tensor ${showName(name)} contains NaN/Inf at index ${bad} (value ${out[bad]})`);
    return out;
  }
}
