// The int4 engine's layer programs: the order of one layer's blocks for each norm placement, the engine's
// counterpart of src/reference/llama.ts and gemma3.ts (as llama.cpp keeps src/models/gemma3.cpp beside its
// llama builder). The blocks themselves (WasmEngine's: attention with its QK-norm and RoPE per the config,
// the gated MLP with the config's activation) are shared; a program only says where the norms and the
// residual adds go.
import type { LayerRole, NormPlacement } from "./families/family.js";

/** What a layer program calls, on the current block of T tokens (each row of x and xb is one token). */
export interface LayerBlocks {
  /** The residual stream, T rows of hidden_size f32. */
  readonly x: number;
  /** A block's input, then its output, T rows of hidden_size f32. */
  readonly xb: number;
  /** RMSNorm of T rows of `src` into `dst` (may be `src`) with layer l's norm weight of that role. */
  norm(l: number, role: LayerRole, src: number, dst: number): void;
  /** Attention of layer l on xb (normed), its output projection into xb. */
  attention(l: number): void;
  /** The gated MLP of layer l on xb (normed), into xb. */
  mlp(l: number): void;
  /** x += xb. */
  residual(): void;
}

export type LayerProgram = (b: LayerBlocks, l: number) => void;

/** Pre-norm (Llama, MobileLLM-Pro, SmolLM2): x += attention(norm(x)); x += mlp(norm(x)). */
export function preNormLayer(b: LayerBlocks, l: number): void {
  // attention rmsnorm -> attention -> residual
  b.norm(l, "attnNorm", b.x, b.xb);
  b.attention(l);
  b.residual();
  // ffn rmsnorm -> SwiGLU -> residual
  b.norm(l, "ffnNorm", b.x, b.xb);
  b.mlp(l);
  b.residual();
}

/** Sandwich norms (Gemma 3): x += norm(attention(norm(x))); x += norm(mlp(norm(x))). */
export function sandwichNormLayer(b: LayerBlocks, l: number): void {
  // input rmsnorm -> attention -> post-attention rmsnorm -> residual
  b.norm(l, "attnNorm", b.x, b.xb);
  b.attention(l);
  b.norm(l, "attnPostNorm", b.xb, b.xb);
  b.residual();
  // pre-feedforward rmsnorm -> GeGLU -> post-feedforward rmsnorm -> residual
  b.norm(l, "ffnNorm", b.x, b.xb);
  b.mlp(l);
  b.norm(l, "ffnPostNorm", b.xb, b.xb);
  b.residual();
}

export const LAYER_PROGRAMS: Record<NormPlacement, LayerProgram> = {
  pre: preNormLayer,
  sandwich: sandwichNormLayer,
};
