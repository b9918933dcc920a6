// The float32 reference running the weights the engine actually holds: every linear layer and the tied
// table rounded to int4 g32 with f16 scales (the engine's default, as a GGUF Q4_0 block stores them) and
// back, by the quantizer's scalar twin. Against it, what is left of the engine's error is its own
// arithmetic (int8 activations, int8 KV cache, kernel rounding), not the weight format.
import { loadConfig } from "../../src/node/bundled.js";
import { resolveTensorNames } from "../../src/model/tensor-names.js";
import { loadReferenceWeights } from "../../src/reference/backend.js";
import { dequantizeInt4 } from "../../src/model/quantize.js";
import { quantizeRowsRef } from "../../src/kernels/quantize.js";
import { ReferenceModel, type Weights } from "../../src/reference/model.js";
import { openCheckpoint } from "../../src/node/folder.js";
import { expect } from "vitest";
import { loadModel } from "../../src/api.js";
import { argmax, cosine } from "./compare.js";

export async function referenceModels(dir: string, ctx: number): Promise<{ float: ReferenceModel; int4: ReferenceModel }> {
  const c = loadConfig(dir);
  const ckpt = await openCheckpoint(dir);
  const w = await loadReferenceWeights(ckpt, resolveTensorNames(c, ckpt));
  await ckpt.close();
  const r = (a: Float32Array, cols: number) =>
    dequantizeInt4(quantizeRowsRef(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), "F32", a.length / cols, cols));
  const d = c.hiddenSize;
  const embed = r(w.embed, d);
  const rounded: Weights = {
    embed,
    lmHead: c.tieWordEmbeddings ? embed : r(w.lmHead, d),
    finalNorm: w.finalNorm,
    layers: w.layers.map((l) => ({
      ...l,
      wq: r(l.wq, d),
      wk: r(l.wk, d),
      wv: r(l.wv, d),
      wo: r(l.wo, c.numHeads * c.headDim),
      wGate: r(l.wGate, d),
      wUp: r(l.wUp, d),
      wDown: r(l.wDown, c.intermediateSize),
    })),
  };
  return { float: new ReferenceModel(c, w, ctx), int4: new ReferenceModel(c, rounded, ctx) };
}

/** Logits of every position of `ids`, fed from position 0. */
export function allLogits(m: ReferenceModel, ids: readonly number[]): Float32Array[] {
  return ids.map((t, i) => m.forward(t, i).slice());
}

/**
 * The int4 engine's logits of every position of `ids` against the reference run on the same int4 weights
 * (referenceModels): cosine >= `minCosine` and the same top-1 at each position.
 */
export async function expectEngineNearInt4Reference(dir: string, ids: readonly number[], minCosine = 0.999): Promise<void> {
  const { int4 } = await referenceModels(dir, Math.max(16, ids.length));
  const engine = await loadModel(dir, { backend: "wasm", contextLength: Math.max(16, ids.length), threads: 1 });
  try {
    const want = allLogits(int4, ids);
    const got = engine.logits(ids, true);
    for (let t = 0; t < ids.length; t++) {
      expect(cosine(want[t], got[t])).toBeGreaterThan(minCosine);
      expect(argmax(got[t])).toBe(argmax(want[t]));
    }
  } finally {
    await engine.dispose();
  }
}
