// The float32 forward pass of the pre-norm families, MobileLLM-Pro (llama4_text) and Llama (SmolLM2,
// Llama 3.x): one token, top to bottom, as llama2.c's run.c reads. The blocks are src/reference/blocks.ts;
// the config says which RoPE pairing, QK-norm, NoPE layers and sliding windows apply.
import { addInto, attention, classify, embed, mlp, rmsnorm, type Run } from "./blocks.js";

export function llamaForward(m: Run, token: number, pos: number): Float32Array {
  const { c, w, s } = m;

  // token embedding (no scaling in the Llama family)
  embed(m, token, pos);

  for (let l = 0; l < c.numLayers; l++) {
    const lw = w.layers[l];

    // attention rmsnorm -> attention (q, k, v, RoPE, cache, grouped-query attention, output projection) -> residual
    rmsnorm(s.xb, s.x, lw.attnNorm, c.rmsNormEps);
    attention(m, l, pos);
    addInto(s.x, s.xb2);

    // ffn rmsnorm -> SwiGLU: down(silu(gate(x)) * up(x)) -> residual
    rmsnorm(s.xb, s.x, lw.ffnNorm, c.rmsNormEps);
    mlp(m, l);
    addInto(s.x, s.xb);
  }

  // final rmsnorm, classifier over the (tied) embedding table
  return classify(m);
}
