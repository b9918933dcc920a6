// The float32 reference forward pass of MobileLLM-Pro: plain loops, one function per block of the paper's
// diagram, read top to bottom in `forward`. Plain Llama checkpoints run through the same pass: they differ
// only in RoPE's pairing and in lacking the Llama-4 extras (src/model/architectures.ts). It is the oracle
// the quantized engine is tested against, so it favours obviousness over speed (sums are accumulated in
// double precision).
import { checkContextLength, type ModelConfig } from "../model/config.js";
import { attentionTemperature, ropeInverseFrequencies } from "../model/rope.js";
import { applyRope } from "./rope.js";

/** Row-major [out, in] matrices and norm vectors, as the checkpoint stores them. */
export interface LayerWeights {
  attnNorm: Float32Array;
  wq: Float32Array;
  wk: Float32Array;
  wv: Float32Array;
  wo: Float32Array;
  ffnNorm: Float32Array;
  wGate: Float32Array;
  wUp: Float32Array;
  wDown: Float32Array;
}

export interface Weights {
  embed: Float32Array;
  layers: LayerWeights[];
  finalNorm: Float32Array;
  /** The embedding table itself when embeddings are tied. */
  lmHead: Float32Array;
}

// ---- the blocks ----------------------------------------------------------------------------

/** RMSNorm: x / sqrt(mean(x^2) + eps), times the learned weight (plain, not 1 + w). */
export function rmsnorm(out: Float32Array, x: Float32Array, weight: Float32Array | null, eps: number, offset = 0, n = x.length): void {
  let ss = 0;
  for (let i = 0; i < n; i++) ss += x[offset + i] * x[offset + i];
  const r = 1 / Math.sqrt(ss / n + eps);
  for (let i = 0; i < n; i++) out[offset + i] = x[offset + i] * r * (weight ? weight[i] : 1);
}

/** out[r] = sum_c W[r, c] * x[c]; W is [rows, cols] row-major. */
export function matmul(out: Float32Array, x: Float32Array, w: Float32Array, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) {
    let sum = 0;
    const base = r * cols;
    for (let c = 0; c < cols; c++) sum += w[base + c] * x[c];
    out[r] = sum;
  }
}

export function silu(x: number): number {
  return x / (1 + Math.exp(-x));
}

/**
 * Grouped-query attention for one query position: query head h reads KV head floor(h / group).
 * Keys [first, pos] are visible: `first` is 0 for global layers and pos - window + 1 for sliding ones.
 */
function attention(
  out: Float32Array,
  q: Float32Array,
  keys: Float32Array,
  values: Float32Array,
  scores: Float32Array,
  c: ModelConfig,
  first: number,
  pos: number,
): void {
  const dh = c.headDim;
  const kvDim = c.numKvHeads * dh;
  const group = c.numHeads / c.numKvHeads;
  const scale = 1 / Math.sqrt(dh);
  for (let h = 0; h < c.numHeads; h++) {
    const kvOffset = Math.floor(h / group) * dh;
    let max = -Infinity;
    for (let j = first; j <= pos; j++) {
      let dot = 0;
      for (let i = 0; i < dh; i++) dot += q[h * dh + i] * keys[j * kvDim + kvOffset + i];
      scores[j] = dot * scale;
      if (scores[j] > max) max = scores[j];
    }
    let sum = 0;
    for (let j = first; j <= pos; j++) {
      scores[j] = Math.exp(scores[j] - max);
      sum += scores[j];
    }
    for (let i = 0; i < dh; i++) {
      let acc = 0;
      for (let j = first; j <= pos; j++) acc += scores[j] * values[j * kvDim + kvOffset + i];
      out[h * dh + i] = acc / sum;
    }
  }
}

// ---- the model -----------------------------------------------------------------------------

/** Scratch buffers and the float key/value cache, allocated once (llama2.c's RunState). */
class RunState {
  readonly x: Float32Array;
  readonly xb: Float32Array;
  readonly xb2: Float32Array;
  readonly q: Float32Array;
  readonly k: Float32Array;
  readonly v: Float32Array;
  readonly att: Float32Array;
  readonly hb: Float32Array;
  readonly hb2: Float32Array;
  readonly scores: Float32Array;
  readonly logits: Float32Array;
  readonly keyCache: Float32Array[];
  readonly valueCache: Float32Array[];

  constructor(c: ModelConfig, contextLength: number) {
    const qDim = c.numHeads * c.headDim;
    const kvDim = c.numKvHeads * c.headDim;
    this.x = new Float32Array(c.hiddenSize);
    this.xb = new Float32Array(c.hiddenSize);
    this.xb2 = new Float32Array(c.hiddenSize);
    this.q = new Float32Array(qDim);
    this.k = new Float32Array(kvDim);
    this.v = new Float32Array(kvDim);
    this.att = new Float32Array(qDim);
    this.hb = new Float32Array(c.intermediateSize);
    this.hb2 = new Float32Array(c.intermediateSize);
    this.scores = new Float32Array(contextLength);
    this.logits = new Float32Array(c.vocabSize);
    this.keyCache = Array.from({ length: c.numLayers }, () => new Float32Array(contextLength * kvDim));
    this.valueCache = Array.from({ length: c.numLayers }, () => new Float32Array(contextLength * kvDim));
  }
}

export class ReferenceModel {
  readonly config: ModelConfig;
  readonly weights: Weights;
  readonly contextLength: number;
  private readonly s: RunState;
  private readonly omega: Float64Array;

  constructor(config: ModelConfig, weights: Weights, contextLength: number) {
    checkContextLength(config, contextLength);
    this.config = config;
    this.weights = weights;
    this.contextLength = contextLength;
    this.s = new RunState(config, contextLength);
    this.omega = ropeInverseFrequencies(config);
  }

  /**
   * Runs one token at position `pos` and returns the logits for the next token. Positions must be fed
   * in order from 0: the cache keeps the keys and values of every earlier position (a new sequence simply
   * starts again at 0). The returned array is reused by the next call.
   */
  forward(token: number, pos: number): Float32Array {
    const c = this.config;
    const w = this.weights;
    const s = this.s;
    const d = c.hiddenSize;
    const qDim = c.numHeads * c.headDim;
    const kvDim = c.numKvHeads * c.headDim;
    if (!Number.isInteger(token) || token < 0 || token >= c.vocabSize) {
      throw new RangeError(`token id ${token} is outside the vocabulary [0, ${c.vocabSize})`);
    }
    if (!Number.isInteger(pos) || pos < 0 || pos >= this.contextLength) {
      throw new RangeError(`position ${pos} is outside the context [0, ${this.contextLength})`);
    }

    // token embedding (no scaling, Llama family)
    s.x.set(w.embed.subarray(token * d, (token + 1) * d));

    for (let l = 0; l < c.numLayers; l++) {
      const lw = w.layers[l];

      // attention rmsnorm
      rmsnorm(s.xb, s.x, lw.attnNorm, c.rmsNormEps);

      // qkv matmuls
      matmul(s.q, s.xb, lw.wq, qDim, d);
      matmul(s.k, s.xb, lw.wk, kvDim, d);
      matmul(s.v, s.xb, lw.wv, kvDim, d);

      // RoPE (then the optional QK-norm), or NoPE with optional temperature tuning
      if (c.useRope[l]) {
        applyRope(s.q, c.numHeads, c.headDim, pos, this.omega, c.ropeStyle);
        applyRope(s.k, c.numKvHeads, c.headDim, pos, this.omega, c.ropeStyle);
        if (c.useQkNorm) {
          for (let h = 0; h < c.numHeads; h++) rmsnorm(s.q, s.q, null, c.rmsNormEps, h * c.headDim, c.headDim);
          for (let h = 0; h < c.numKvHeads; h++) rmsnorm(s.k, s.k, null, c.rmsNormEps, h * c.headDim, c.headDim);
        }
      } else if (c.attnTemperatureTuning) {
        const tau = attentionTemperature(pos, c.floorScale, c.attnScale);
        for (let i = 0; i < qDim; i++) s.q[i] *= tau;
      }

      // key/value cache
      s.keyCache[l].set(s.k, pos * kvDim);
      s.valueCache[l].set(s.v, pos * kvDim);

      // grouped-query attention under the causal (global) or sliding-window mask
      const sliding = c.layerTypes[l] === "sliding_attention";
      const first = sliding ? Math.max(0, pos - (c.slidingWindow as number) + 1) : 0;
      attention(s.att, s.q, s.keyCache[l], s.valueCache[l], s.scores, c, first, pos);

      // output projection and residual
      matmul(s.xb2, s.att, lw.wo, d, qDim);
      for (let i = 0; i < d; i++) s.x[i] += s.xb2[i];

      // ffn rmsnorm
      rmsnorm(s.xb, s.x, lw.ffnNorm, c.rmsNormEps);

      // SwiGLU: down(silu(gate(x)) * up(x))
      matmul(s.hb, s.xb, lw.wGate, c.intermediateSize, d);
      matmul(s.hb2, s.xb, lw.wUp, c.intermediateSize, d);
      for (let i = 0; i < c.intermediateSize; i++) s.hb[i] = silu(s.hb[i]) * s.hb2[i];
      matmul(s.xb, s.hb, lw.wDown, d, c.intermediateSize);

      // residual
      for (let i = 0; i < d; i++) s.x[i] += s.xb[i];
    }

    // final rmsnorm
    rmsnorm(s.x, s.x, w.finalNorm, c.rmsNormEps);

    // classifier over the (tied) embedding table
    matmul(s.logits, s.x, w.lmHead, c.vocabSize, d);
    return s.logits;
  }
}
