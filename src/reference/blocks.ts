// The blocks every family's float32 forward pass is built from (src/reference/llama.ts, gemma3.ts): plain
// loops, sums accumulated in double precision, one function per block of the papers' diagrams. The order a
// family calls them in is its own file's; what they compute is set by the config's data (activation,
// QK-norm placement, RoPE per layer kind, scales).
import { checkContextLength, ropeOf, type ModelConfig } from "../model/config.js";
import { attentionTemperature, ropeInverseFrequencies } from "../model/rope.js";
import type { ByRole } from "../model/tensor-names.js";
import { applyRope } from "./rope.js";

/** A layer's row-major [out, in] matrices and norm vectors by role, as the checkpoint stores them. */
export type LayerWeights = ByRole<Float32Array>;

export interface Weights {
  embed: Float32Array;
  layers: LayerWeights[];
  finalNorm: Float32Array;
  /** The embedding table itself when embeddings are tied. */
  lmHead: Float32Array;
}

// ---- the arithmetic ------------------------------------------------------------------------------

/** RMSNorm: x / sqrt(mean(x^2) + eps), times the weight (the multiplier itself: Gemma's 1 + w was added at load). */
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

/** GELU with the tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
export function geluTanh(x: number): number {
  return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
}

const ACTIVATIONS = { silu, gelu_tanh: geluTanh } as const;

/** x += y over the first x.length values. */
export function addInto(x: Float32Array, y: Float32Array): void {
  for (let i = 0; i < x.length; i++) x[i] += y[i];
}

// ---- the run -------------------------------------------------------------------------------------

/** Scratch buffers and the float key/value cache, allocated once (llama2.c's RunState). */
export class RunState {
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

/** Everything one forward pass reads and writes: the config, the weights, the run state, RoPE frequencies per layer. */
export class Run {
  readonly s: RunState;
  /** omega[l]: the RoPE frequencies of layer l (of its kind), null on a NoPE layer. */
  readonly omega: Array<Float64Array | null>;

  constructor(
    readonly c: ModelConfig,
    readonly w: Weights,
    readonly contextLength: number,
  ) {
    checkContextLength(c, contextLength);
    this.s = new RunState(c, contextLength);
    const byKind = new Map<string, Float64Array>();
    this.omega = c.layers.map((_, l) => {
      const rope = ropeOf(c, l);
      if (rope === null) return null;
      const key = JSON.stringify(rope);
      if (!byKind.has(key)) byKind.set(key, ropeInverseFrequencies(c.headDim, rope));
      return byKind.get(key) as Float64Array;
    });
  }
}

// ---- the blocks ----------------------------------------------------------------------------------

/** s.x = the token's embedding row times the config's embedding scale (1 for Llama, sqrt(hidden) for Gemma). */
export function embed(m: Run, token: number, pos: number): void {
  const { c, w, s } = m;
  const d = c.hiddenSize;
  if (!Number.isInteger(token) || token < 0 || token >= c.vocabSize) {
    throw new RangeError(`token id ${token} is outside the vocabulary [0, ${c.vocabSize})`);
  }
  if (!Number.isInteger(pos) || pos < 0 || pos >= m.contextLength) {
    throw new RangeError(`position ${pos} is outside the context [0, ${m.contextLength})`);
  }
  s.x.set(w.embed.subarray(token * d, (token + 1) * d));
  if (c.embedScale !== 1) for (let i = 0; i < d; i++) s.x[i] *= c.embedScale;
}

/**
 * Attention of layer l at position `pos` on s.xb (the normed input), into s.xb2: the q, k, v projections;
 * QK-norm where the family puts it (before RoPE with learned weights: Gemma; after RoPE without: Llama 4);
 * RoPE with the frequencies of the layer's kind, or NoPE with optional temperature tuning; the KV cache;
 * grouped-query attention under the causal or sliding-window mask; the output projection.
 */
export function attention(m: Run, l: number, pos: number): void {
  const { c, w, s } = m;
  const lw = w.layers[l];
  const d = c.hiddenSize;
  const qDim = c.numHeads * c.headDim;
  const kvDim = c.numKvHeads * c.headDim;

  // qkv matmuls
  matmul(s.q, s.xb, lw.wq, qDim, d);
  matmul(s.k, s.xb, lw.wk, kvDim, d);
  matmul(s.v, s.xb, lw.wv, kvDim, d);

  // QK-norm before RoPE, per head with learned weights
  if (c.qkNorm === "before_rope") {
    headNorm(s.q, c.numHeads, lw.qNorm ?? null, c);
    headNorm(s.k, c.numKvHeads, lw.kNorm ?? null, c);
  }

  // RoPE (then QK-norm after it, without weights), or NoPE with optional temperature tuning
  const omega = m.omega[l];
  if (omega !== null) {
    applyRope(s.q, c.numHeads, c.headDim, pos, omega, c.ropeStyle);
    applyRope(s.k, c.numKvHeads, c.headDim, pos, omega, c.ropeStyle);
    if (c.qkNorm === "after_rope") {
      headNorm(s.q, c.numHeads, null, c);
      headNorm(s.k, c.numKvHeads, null, c);
    }
  } else if (c.attnTemperatureTuning) {
    const tau = attentionTemperature(pos, c.floorScale, c.attnScale);
    for (let i = 0; i < qDim; i++) s.q[i] *= tau;
  }

  // key/value cache
  s.keyCache[l].set(s.k, pos * kvDim);
  s.valueCache[l].set(s.v, pos * kvDim);

  // grouped-query attention under the causal (global) or sliding-window mask
  const sliding = c.layers[l].kind === "sliding_attention";
  const first = sliding ? Math.max(0, pos - (c.slidingWindow as number) + 1) : 0;
  groupedQueryAttention(s.att, s.q, s.keyCache[l], s.valueCache[l], s.scores, c, first, pos);

  // output projection
  matmul(s.xb2, s.att, lw.wo, d, qDim);
}

/** RMSNorm over each of the `heads` heads of `v` (in place), times `weight` (one per head dimension) if given. */
function headNorm(v: Float32Array, heads: number, weight: Float32Array | null, c: ModelConfig): void {
  for (let h = 0; h < heads; h++) rmsnorm(v, v, weight, c.rmsNormEps, h * c.headDim, c.headDim);
}

/**
 * Grouped-query attention for one query position: query head h reads KV head floor(h / group).
 * Keys [first, pos] are visible: `first` is 0 for global layers and pos - window + 1 for sliding ones.
 */
function groupedQueryAttention(
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
  const scale = c.queryScale;
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

/** The gated MLP of layer l on s.xb, into s.xb: down(act(gate(x)) * up(x)), act SiLU (SwiGLU) or GELU-tanh (GeGLU). */
export function mlp(m: Run, l: number): void {
  const { c, w, s } = m;
  const lw = w.layers[l];
  const d = c.hiddenSize;
  const act = ACTIVATIONS[c.activation];
  matmul(s.hb, s.xb, lw.wGate, c.intermediateSize, d);
  matmul(s.hb2, s.xb, lw.wUp, c.intermediateSize, d);
  for (let i = 0; i < c.intermediateSize; i++) s.hb[i] = act(s.hb[i]) * s.hb2[i];
  matmul(s.xb, s.hb, lw.wDown, d, c.intermediateSize);
}

/** Final rmsnorm and the classifier over the output head (the embedding table when tied): the logits. */
export function classify(m: Run): Float32Array {
  const { c, w, s } = m;
  rmsnorm(s.x, s.x, w.finalNorm, c.rmsNormEps);
  matmul(s.logits, s.x, w.lmHead, c.vocabSize, c.hiddenSize);
  return s.logits;
}
