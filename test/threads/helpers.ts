// Engines over small random models and over the bundled model, for the thread-pool tests.
import { engineOptions } from "../helpers/node-kernels.js";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeSafetensors } from "../../src/node/safetensors-files.js";
import { type TensorToWrite } from "../../src/model/checkpoint/safetensors-writer.js";
import { loadConfig } from "../../src/node/bundled.js";
import { resolveTensorNames, tensorNamesFor } from "../../src/model/tensor-names.js";
import { WasmEngine, type EngineOptions } from "../../src/model/engine.js";
import type { ModelConfig } from "../../src/model/config.js";
import { randomWeights, smallConfig, type SmallModelSpec } from "../helpers/random-model.js";
import { BUNDLED } from "../helpers/model-folder.js";
import { openCheckpoint } from "../../src/node/folder.js";

/**
 * A folder holding model.safetensors with seeded random weights for `spec` (tied embeddings); `edit` may
 * change a tensor's values before they are written.
 */
export async function randomModelFolder(
  spec: SmallModelSpec, seed: number, edit?: (name: string, data: Float32Array) => void,
): Promise<{ config: ModelConfig; dir: string; cleanup: () => void }> {
  const config = smallConfig(spec);
  const w = randomWeights(config, seed);
  const names = tensorNamesFor(config);
  const d = config.hiddenSize;
  const q = config.numHeads * config.headDim;
  const kv = config.numKvHeads * config.headDim;
  const f = config.intermediateSize;
  const t = (name: string, data: Float32Array, shape: number[]): TensorToWrite => {
    edit?.(name, data);
    return { name, dtype: "F32", shape, data };
  };
  const tensors: TensorToWrite[] = [t(names.embed, w.embed, [config.vocabSize, d]), t(names.finalNorm, w.finalNorm, [d])];
  w.layers.forEach((l, i) => {
    const n = names.layers[i];
    tensors.push(
      t(n.attnNorm, l.attnNorm, [d]), t(n.ffnNorm, l.ffnNorm, [d]),
      t(n.wq, l.wq, [q, d]), t(n.wk, l.wk, [kv, d]), t(n.wv, l.wv, [kv, d]), t(n.wo, l.wo, [d, q]),
      t(n.wGate, l.wGate, [f, d]), t(n.wUp, l.wUp, [f, d]), t(n.wDown, l.wDown, [d, f]),
    );
  });
  const dir = mkdtempSync(join(tmpdir(), "mobilellm-threads-"));
  await writeSafetensors(join(dir, "model.safetensors"), tensors);
  return { config, dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export async function engineFor(dir: string, config: ModelConfig, opts: Omit<EngineOptions, "wasm">): Promise<WasmEngine> {
  const ckpt = await openCheckpoint(dir);
  try {
    return await WasmEngine.load(config, ckpt, resolveTensorNames(config, ckpt), engineOptions(opts));
  } finally {
    await ckpt.close();
  }
}

export async function bundledEngine(opts: Omit<EngineOptions, "wasm">): Promise<WasmEngine> {
  return engineFor(BUNDLED, loadConfig(BUNDLED), opts);
}

/** Index of the first row whose bits differ, or -1. */
export function firstDifferentRow(a: Float32Array[], b: Float32Array[]): number {
  if (a.length !== b.length) return 0;
  for (let r = 0; r < a.length; r++) {
    const x = new Uint32Array(a[r].buffer, a[r].byteOffset, a[r].length);
    const y = new Uint32Array(b[r].buffer, b[r].byteOffset, b[r].length);
    if (x.length !== y.length) return r;
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return r;
  }
  return -1;
}
