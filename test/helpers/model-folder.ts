// Builds variants of the bundled checkpoint folder in a temporary directory, for loading tests; each is
// removed after the test file's tests (temp-dir.ts).
import { copyFileSync, readdirSync, writeFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { shardedWrite, writeSafetensors } from "../../src/node/safetensors-files.js";
import { type TensorToWrite } from "../../src/model/checkpoint/safetensors-writer.js";
import { openCheckpoint } from "../../src/node/folder.js";
import type { PickedFile } from "../../src/browser/folders.js";
import { tempDir } from "./temp-dir.js";

export const BUNDLED = "models/shakespeare-tiny";

/** The files of `dir` as a browser's folder picker hands them over, under `prefix/`. */
export function picked(dir: string, prefix: string): PickedFile[] {
  return readdirSync(dir).map((f) => ({ path: `${prefix}/${f}`, file: new Blob([readFileSync(join(dir, f))]) }));
}

export interface Variant {
  /** Maps each original tensor to what is written (null drops it). */
  tensor?: (name: string, data: Float32Array, shape: number[]) => { name: string; data: Float32Array; shape: number[] } | null;
  extra?: TensorToWrite[];
  config?: (c: Record<string, unknown>) => Record<string, unknown>;
  maxShardBytes?: number;
}

export async function modelVariant(v: Variant): Promise<string> {
  const dir = tempDir("mobilellm-model-");
  for (const f of ["tokenizer.json", "tokenizer_config.json"]) copyFileSync(join(BUNDLED, f), join(dir, f));
  const config = JSON.parse(readFileSync(join(BUNDLED, "config.json"), "utf8")) as Record<string, unknown>;
  writeFileSync(join(dir, "config.json"), JSON.stringify(v.config ? v.config(config) : config));
  const src = await openCheckpoint(BUNDLED);
  const tensors: TensorToWrite[] = [];
  for (const name of src.names()) {
    const data = await src.readF32(name);
    const shape = src.info(name).shape;
    const out = v.tensor ? v.tensor(name, data, shape) : { name, data, shape };
    if (out) tensors.push({ name: out.name, dtype: "BF16", shape: out.shape, data: out.data });
  }
  await src.close();
  tensors.push(...(v.extra ?? []));
  if (v.maxShardBytes) await shardedWrite(dir, tensors, { maxShardBytes: v.maxShardBytes });
  else await writeSafetensors(join(dir, "model.safetensors"), tensors, { format: "pt" });
  return dir;
}
