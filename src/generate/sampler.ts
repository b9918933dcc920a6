// Picks the next token from logits. Vocabulary padding rows (ids no text maps to) are never picked.

/** The highest-scoring id for which `allowed` holds; ties go to the lowest id. */
export function greedy(logits: Float32Array, allowed: (id: number) => boolean): number {
  let best = -1;
  let bestScore = -Infinity;
  for (let i = 0; i < logits.length; i++) {
    if (logits[i] > bestScore && allowed(i)) {
      best = i;
      bestScore = logits[i];
    }
  }
  if (best < 0) throw new Error("no token can be sampled: every logit is -Infinity or NaN");
  return best;
}
