// The float32 forward pass of Gemma 3: one token, top to bottom (transformers' Gemma3DecoderLayer, llama.cpp's
// src/models/gemma3.cpp). It differs from the Llama order (src/reference/llama.ts) in its sandwich norms: the
// attention and the MLP outputs are each RMS-normalized before their residual add. The rest is the config's
// data, applied by the shared blocks (src/reference/blocks.ts): the embedding scale sqrt(hidden), per-head
// QK-norm with learned weights before RoPE, RoPE base 10,000 on local layers and 1,000,000 on global ones,
// query_pre_attn_scalar^-0.5 as the score scale, GeGLU. The norm weights are the multipliers (1 + w of the
// Hugging Face checkpoint, added at load).
import { addInto, attention, classify, embed, mlp, rmsnorm, type Run } from "./blocks.js";

export function gemma3Forward(m: Run, token: number, pos: number): Float32Array {
  const { c, w, s } = m;

  // token embedding, times sqrt(hidden) (rounded to the weights' dtype, as transformers does)
  embed(m, token, pos);

  for (let l = 0; l < c.numLayers; l++) {
    const lw = w.layers[l];

    // input rmsnorm -> attention (q, k, v, QK-norm, RoPE of the layer's kind, cache, local or global
    // attention, output projection) -> post-attention rmsnorm -> residual
    rmsnorm(s.xb, s.x, lw.attnNorm, c.rmsNormEps);
    attention(m, l, pos);
    rmsnorm(s.xb2, s.xb2, lw.attnPostNorm as Float32Array, c.rmsNormEps);
    addInto(s.x, s.xb2);

    // pre-feedforward rmsnorm -> GeGLU: down(gelu_tanh(gate(x)) * up(x)) -> post-feedforward rmsnorm -> residual
    rmsnorm(s.xb, s.x, lw.ffnNorm, c.rmsNormEps);
    mlp(m, l);
    rmsnorm(s.xb, s.xb, lw.ffnPostNorm as Float32Array, c.rmsNormEps);
    addInto(s.x, s.xb);
  }

  // final rmsnorm, classifier over the tied embedding table
  return classify(m);
}
