// Which tensors a checkpoint must hold for a config, under which names and with which shapes: every one
// derives from the family's tensor list (src/model/families/), in a Hugging Face checkpoint's names or a
// GGUF file's (llama.cpp's).
//
// A tensor the family lists under several Hugging Face spellings (Llama-4 checkpoints may spell the MLP
// `feed_forward.*`, Llama ones `mlp.*`) is looked up under each, per layer. A tied model may still carry
// `lm_head.weight`; it is then an alias and is not read.
import type { ModelConfig } from "./config.js";
import type { Checkpoint } from "./checkpoint/checkpoint.js";
import { familyOf } from "./families/index.js";
import type { ByRole, LayerRole, LayerTensor } from "./families/family.js";

export type { ByRole, LayerRole } from "./families/family.js";

/** A layer's tensor names by role. */
export type LayerTensorNames = ByRole<string>;

export interface TensorNames {
  embed: string;
  layers: LayerTensorNames[];
  finalNorm: string;
  /** Null when the output head is the embedding table (tied). */
  lmHead: string | null;
  /**
   * Added to every norm weight as it is read: 1 where the file stores w of an x · (1 + w) norm (a Hugging
   * Face Gemma checkpoint), 0 where it stores the multiplier itself.
   */
  normOffset: number;
}

export class CheckpointShapeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CheckpointShapeError";
  }
}

/** The family's tensors of one layer. */
export function layerTensors(c: ModelConfig): readonly LayerTensor[] {
  return familyOf(c.architecture).layerTensors;
}

/** One layer's names, `name(t)` for each of the family's tensors. */
function layerNames(c: ModelConfig, name: (t: LayerTensor) => string): LayerTensorNames {
  return Object.fromEntries(layerTensors(c).map((t) => [t.role, name(t)])) as LayerTensorNames;
}

/** Resolves the names present in `ckpt` and checks that every expected tensor has the expected shape. */
export function resolveTensorNames(config: ModelConfig, ckpt: Checkpoint): TensorNames {
  const perLayer = layerTensors(config).length;
  // Before any per-layer name is built or looked up: a config can claim more layers than the file holds.
  if (ckpt.tensorCount < perLayer * config.numLayers + 2) {
    const layers = new Set<string>();
    for (const name of ckpt.names()) {
      const m = /^model\.layers\.(\d+)\./.exec(name);
      if (m) layers.add(m[1]);
    }
    if (layers.size < config.numLayers) {
      throw new CheckpointShapeError(
        `num_hidden_layers is ${config.numLayers} but the checkpoint has tensors for ${layers.size} layers (${ckpt.tensorCount} tensors; each layer needs ${perLayer})`,
      );
    }
  }
  // The first spelling present, else the last one (the name a "missing tensor" error then gives).
  const names = tensorNamesFor(config, (t, l) => {
    const spelled = t.hf.map((s) => `model.layers.${l}.${s}`);
    return spelled.find((n) => ckpt.has(n)) ?? spelled[spelled.length - 1];
  });
  for (const [name, shape] of expectedShapes(config, names)) {
    const info = ckpt.info(name);
    if (info.shape.length !== shape.length || info.shape.some((s, i) => s !== shape[i])) {
      throw new CheckpointShapeError(
        `tensor ${name} has shape [${info.shape.join(", ")}] but the config implies [${shape.join(", ")}]`,
      );
    }
  }
  return names;
}

/**
 * The Hugging Face names of the config's tensors (the family's first spelling of each, unless `spell`
 * picks another).
 */
export function tensorNamesFor(
  config: ModelConfig,
  spell: (t: LayerTensor, layer: number) => string = (t, l) => `model.layers.${l}.${t.hf[0]}`,
): TensorNames {
  return {
    embed: "model.embed_tokens.weight",
    layers: Array.from({ length: config.numLayers }, (_, l) => layerNames(config, (t) => spell(t, l))),
    finalNorm: "model.norm.weight",
    lmHead: config.tieWordEmbeddings ? null : "lm_head.weight",
    normOffset: familyOf(config.architecture).norms.hfOffset,
  };
}

/** The names of the config's tensors in a GGUF file: llama.cpp's (token_embd, blk.N.attn_q, ...). */
export function ggufTensorNames(config: ModelConfig): TensorNames {
  return {
    embed: "token_embd.weight",
    layers: Array.from({ length: config.numLayers }, (_, l) => layerNames(config, (t) => `blk.${l}.${t.gguf}`)),
    finalNorm: "output_norm.weight",
    lmHead: config.tieWordEmbeddings ? null : "output.weight",
    normOffset: 0,
  };
}

/** [name, shape] of every tensor the forward pass reads; shapes are [out, in] as PyTorch stores them. */
export function expectedShapes(c: ModelConfig, names: TensorNames): Array<[string, number[]]> {
  const out: Array<[string, number[]]> = [[names.embed, [c.vocabSize, c.hiddenSize]]];
  for (const l of names.layers) {
    for (const t of layerTensors(c)) out.push([l[t.role] as string, t.shape(c)]);
  }
  out.push([names.finalNorm, [c.hiddenSize]]);
  if (names.lmHead) out.push([names.lmHead, [c.vocabSize, c.hiddenSize]]);
  return out;
}

/** The roles of a layer's norm weights (its 1-D tensors). */
export function normRoles(c: ModelConfig): LayerRole[] {
  return layerTensors(c).filter((t) => t.shape(c).length === 1).map((t) => t.role);
}
