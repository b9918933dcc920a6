// `mobilellm convert`: a checkpoint folder (anywhere a ModelFolder reaches) into one GGUF file, streamed
// through a ByteSink: each matrix is read a few MiB at a time into Wasm memory, quantized to Q4_0 there by
// the SIMD kernel and written, so memory stays small whatever the model's size. The layout is
// gguf-model.ts's.
import type { ByteSink } from "../env/byte-source.js";
import { writeGgufTo, type GgufLayout } from "../model/checkpoint/gguf-writer.js";
import { modelGguf } from "./gguf-model.js";
import type { ModelConfig } from "../model/config.js";
import { findChatTemplate } from "../text/chat-template.js";
import { openFolderCheckpoint } from "../model/checkpoint/folder.js";
import type { ModelFolder } from "../env/folder.js";
import { WasmKernels } from "../kernels/wasm.js";
import type { Platform } from "./platform.js";

export interface ConvertOptions {
  /** general.name of the file. */
  name: string;
  /** Bytes of tensor data written so far, of the total. */
  onProgress?: (done: number, total: number) => void;
}

export interface ConvertResult {
  layout: GgufLayout;
  config: ModelConfig;
  tensors: number;
}

async function required(folder: ModelFolder, file: string): Promise<string> {
  const text = await folder.readText(file);
  if (text === null) throw new Error(`${file} is missing from ${folder.name}: is this a Hugging Face checkpoint folder?`);
  return text;
}

/**
 * Writes the folder's model as GGUF through `sink`; the sink is closed on success and aborted on failure.
 * `platform` supplies the kernel bytes: the SIMD128 build, whose quantizer is exact on every engine (the
 * relaxed build adds nothing to it), in a memory of its own that is dropped when the conversion ends.
 */
export async function convertToGguf(folder: ModelFolder, sink: ByteSink, platform: Pick<Platform, "wasmBytes">, opts: ConvertOptions): Promise<ConvertResult> {
  try {
    const simd = (await platform.wasmBytes(false)).simd;
    if (simd === undefined) throw new Error("convert needs the SIMD128 kernel build (simd.wasm), which the platform did not supply");
    const kernels = await WasmKernels.create("simd", simd);
    const configJson = await required(folder, "config.json");
    const tokenizerJson = await required(folder, "tokenizer.json");
    const tokenizerConfigJson = await folder.readText("tokenizer_config.json");
    const generationConfigJson = await folder.readText("generation_config.json");
    let tokenizerConfig: Record<string, unknown> = {};
    if (tokenizerConfigJson !== null) {
      try {
        tokenizerConfig = JSON.parse(tokenizerConfigJson) as Record<string, unknown>;
      } catch (err) {
        throw new Error(`${folder.name}/tokenizer_config.json is not valid JSON: ${(err as Error).message}`);
      }
    }
    const chatTemplate = findChatTemplate(tokenizerConfig, await folder.readText("chat_template.jinja"));
    const ckpt = await openFolderCheckpoint(folder);
    try {
      const files = { configJson, tokenizerJson, tokenizerConfigJson, generationConfigJson, chatTemplate };
      const { metadata, tensors, config } = modelGguf(files, ckpt, { name: opts.name, kernels });
      const layout = await writeGgufTo(sink, metadata, tensors, { onProgress: opts.onProgress });
      await sink.close();
      return { layout, config, tensors: tensors.length };
    } finally {
      await ckpt.close();
    }
  } catch (err) {
    await sink.abort();
    throw err;
  }
}
