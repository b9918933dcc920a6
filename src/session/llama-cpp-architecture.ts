// What one llama.cpp architecture's GGUF files say differently from another's, for the reader of llama.cpp
// files (src/session/llama-gguf-model.ts): its key names, the config.json its keys stand for, how its files
// lay the model out. One object per architecture: LLAMA_GGUF (llama-gguf-model.ts), GEMMA3_GGUF
// (gemma3-gguf-model.ts).
import type { ModelConfig, RopeStyle } from "../model/config.js";
import type { GgufFile } from "../model/checkpoint/gguf.js";

/** An architecture's hyperparameter keys as llama.cpp names them (LLM_KV_*, prefixed with the architecture). */
export function llamaCppKeys(arch: string) {
  return {
    blockCount: `${arch}.block_count`,
    contextLength: `${arch}.context_length`,
    embeddingLength: `${arch}.embedding_length`,
    feedForwardLength: `${arch}.feed_forward_length`,
    headCount: `${arch}.attention.head_count`,
    headCountKv: `${arch}.attention.head_count_kv`,
    keyLength: `${arch}.attention.key_length`,
    valueLength: `${arch}.attention.value_length`,
    rmsNormEps: `${arch}.attention.layer_norm_rms_epsilon`,
    slidingWindow: `${arch}.attention.sliding_window`,
    ropeFreqBase: `${arch}.rope.freq_base`,
    ropeFreqBaseSwa: `${arch}.rope.freq_base_swa`,
    ropeDimensionCount: `${arch}.rope.dimension_count`,
    ropeScalingType: `${arch}.rope.scaling.type`,
    ropeScalingFactor: `${arch}.rope.scaling.factor`,
    finalLogitSoftcapping: `${arch}.final_logit_softcapping`,
    vocabSize: `${arch}.vocab_size`,
    expertCount: `${arch}.expert_count`,
  } as const;
}

export type LlamaCppKeys = ReturnType<typeof llamaCppKeys>;

/** The reader's checked access to the file's keys; every problem is one line naming the file and the key. */
export interface KeyReaders {
  /** An integer key of any integer type, or undefined when absent and optional. */
  int(key: string, required: boolean): number | undefined;
  /** An f32 key as the shortest decimal that rounds to it (the converter wrote config.json's decimal), or undefined. */
  float(key: string, required: boolean): number | undefined;
  string(key: string): string | undefined;
  fail(msg: string): never;
}

export interface LlamaCppArchitecture {
  /**
   * The q/k row order of these files: llama.cpp's converter reorders a Llama's rows to adjacent pairs (its
   * NORM RoPE) and leaves Gemma's in rotate_half order (its NEOX RoPE).
   */
  readonly ropeStyle: RopeStyle;
  /**
   * The config.json keys only this architecture's files decide (model_type and architectures among them),
   * refusing what they say that this engine does not compute.
   */
  configJson(r: KeyReaders, K: LlamaCppKeys): Record<string, unknown>;
  /** The parsed config with what these files hold elsewhere than in keys (llama's RoPE factors tensor). */
  finish(parsed: ModelConfig, file: GgufFile, r: KeyReaders): Promise<ModelConfig>;
  /** Tensors these files may hold besides the family's. */
  readonly extraTensors: readonly string[];
  /** For `defaulted`: the file key each optional config.json key stands for. */
  defaultedAs(K: LlamaCppKeys): Record<string, string>;
}
