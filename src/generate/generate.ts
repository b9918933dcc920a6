// The token loop: prefill the prompt, then pick, emit and feed back one token at a time.
import type { Backend } from "../model/backend.js";

export type StopReason = "eos" | "length" | "context";

export interface GenerateStep {
  token: number;
}

export interface GenerateLoopOptions {
  maxNewTokens: number;
  eosTokenIds: readonly number[];
  pick: (logits: Float32Array) => number;
}

/** Yields each new token; returns why it stopped. */
export function* generateTokens(
  backend: Backend,
  prompt: readonly number[],
  opts: GenerateLoopOptions,
): Generator<GenerateStep, StopReason> {
  if (prompt.length === 0) throw new RangeError("the prompt is empty");
  if (prompt.length > backend.contextLength) {
    throw new RangeError(`the prompt has ${prompt.length} tokens but the context holds ${backend.contextLength}`);
  }
  let logits = backend.forward(prompt, 0, false)[0];
  let pos = prompt.length;
  for (let n = 0; n < opts.maxNewTokens; n++) {
    const token = opts.pick(logits);
    yield { token };
    if (opts.eosTokenIds.includes(token)) return "eos";
    if (pos >= backend.contextLength) return "context";
    logits = backend.forward([token], pos, false)[0];
    pos++;
  }
  return "length";
}
