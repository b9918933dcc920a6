// Which tensors a checkpoint must hold for a config, under which names and with which shapes.
//
// Llama-4 checkpoints spell the MLP `feed_forward.*`, Llama ones `mlp.*`, and which one MobileLLM-Pro's
// published files use could not be checked here (their weights are gated): both are accepted,
// per layer. A tied model may still carry `lm_head.weight`; it is then an alias and is not read.
import type { ModelConfig } from "./config.js";
import type { Checkpoint } from "./checkpoint/checkpoint.js";

export interface LayerTensorNames {
  attnNorm: string;
  wq: string;
  wk: string;
  wv: string;
  wo: string;
  ffnNorm: string;
  wGate: string;
  wUp: string;
  wDown: string;
}

/** Tensors every layer stores (the fields of LayerTensorNames). */
export const LAYER_TENSORS = 9;

export interface TensorNames {
  embed: string;
  layers: LayerTensorNames[];
  finalNorm: string;
  /** Null when the output head is the embedding table (tied). */
  lmHead: string | null;
}

export class CheckpointShapeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CheckpointShapeError";
  }
}

/** Resolves the names present in `ckpt` and checks that every expected tensor has the expected shape. */
export function resolveTensorNames(config: ModelConfig, ckpt: Checkpoint): TensorNames {
  // Before any per-layer name is built or looked up: a config can claim more layers than the file holds.
  if (ckpt.tensorCount < LAYER_TENSORS * config.numLayers + 2) {
    const layers = new Set<string>();
    for (const name of ckpt.names()) {
      const m = /^model\.layers\.(\d+)\./.exec(name);
      if (m) layers.add(m[1]);
    }
    if (layers.size < config.numLayers) {
      throw new CheckpointShapeError(
        `num_hidden_layers is ${config.numLayers} but the checkpoint has tensors for ${layers.size} layers (${ckpt.tensorCount} tensors; each layer needs ${LAYER_TENSORS})`,
      );
    }
  }
  const names = tensorNamesFor(config, (l) =>
    ckpt.has(`model.layers.${l}.feed_forward.gate_proj.weight`) ? "feed_forward" : "mlp",
  );
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

export function tensorNamesFor(config: ModelConfig, mlpPrefix: (layer: number) => string = () => "feed_forward"): TensorNames {
  const layers: LayerTensorNames[] = [];
  for (let l = 0; l < config.numLayers; l++) {
    const p = `model.layers.${l}`;
    const m = `${p}.${mlpPrefix(l)}`;
    layers.push({
      attnNorm: `${p}.input_layernorm.weight`,
      wq: `${p}.self_attn.q_proj.weight`,
      wk: `${p}.self_attn.k_proj.weight`,
      wv: `${p}.self_attn.v_proj.weight`,
      wo: `${p}.self_attn.o_proj.weight`,
      ffnNorm: `${p}.post_attention_layernorm.weight`,
      wGate: `${m}.gate_proj.weight`,
      wUp: `${m}.up_proj.weight`,
      wDown: `${m}.down_proj.weight`,
    });
  }
  return {
    embed: "model.embed_tokens.weight",
    layers,
    finalNorm: "model.norm.weight",
    lmHead: config.tieWordEmbeddings ? null : "lm_head.weight",
  };
}

/** [name, shape] of every tensor the forward pass reads; shapes are [out, in] as PyTorch stores them. */
export function expectedShapes(c: ModelConfig, names: TensorNames): Array<[string, number[]]> {
  const d = c.hiddenSize;
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  const out: Array<[string, number[]]> = [[names.embed, [c.vocabSize, d]]];
  for (const l of names.layers) {
    out.push(
      [l.attnNorm, [d]],
      [l.wq, [q, d]],
      [l.wk, [kv, d]],
      [l.wv, [kv, d]],
      [l.wo, [d, q]],
      [l.ffnNorm, [d]],
      [l.wGate, [c.intermediateSize, d]],
      [l.wUp, [c.intermediateSize, d]],
      [l.wDown, [d, c.intermediateSize]],
    );
  }
  out.push([names.finalNorm, [d]]);
  if (names.lmHead) out.push([names.lmHead, [c.vocabSize, d]]);
  return out;
}
