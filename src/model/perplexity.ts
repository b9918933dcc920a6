// Held-out perplexity with the protocol the model card uses, so figures are comparable:
// ids cut into chunks of ctx + 1 overlapping by one (chunk k = ids[k*ctx .. k*ctx + ctx]), each chunk a
// fresh sequence from position 0, every id of a chunk but its first predicted, the last partial chunk
// included; perplexity = exp(mean negative log-likelihood).
import type { Backend } from "./backend.js";

export interface PerplexityResult {
  tokens: number;
  nll: number;
  perplexity: number;
}

export function perplexity(backend: Backend, ids: readonly number[], ctx: number): PerplexityResult {
  if (!Number.isInteger(ctx) || ctx < 1) throw new RangeError(`--ctx must be a positive integer, got ${ctx}`);
  // A chunk is ctx + 1 ids, but its last id is only predicted, never run: ctx positions suffice.
  if (ctx > backend.contextLength) {
    throw new RangeError(`--ctx ${ctx} is more than the ${backend.contextLength} positions the context holds`);
  }
  if (ids.length < 2) throw new RangeError("perplexity needs at least two tokens");
  let total = 0;
  let count = 0;
  for (let start = 0; start + 1 < ids.length; start += ctx) {
    const chunk = ids.slice(start, start + ctx + 1);
    const logits = backend.forward(chunk.slice(0, -1), 0, true);
    for (let i = 1; i < chunk.length; i++) {
      const lp = logSoftmaxAt(logits[i - 1], chunk[i]);
      // Finite logits always give a finite log-probability; anything else is an overflow in the engine.
      if (!Number.isFinite(lp)) {
        throw new RangeError(`perplexity: the log-probability of token ${start + i} is ${lp}: the logits are not finite (the weights or config overflow float32 in this engine)`);
      }
      total -= lp;
      count++;
    }
  }
  const nll = total / count;
  return { tokens: count, nll, perplexity: Math.exp(nll) };
}

/** log p(target) under softmax(logits), in double precision. */
export function logSoftmaxAt(logits: Float32Array, target: number): number {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  return logits[target] - max - Math.log(sum);
}
