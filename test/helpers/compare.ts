// Comparing two logit vectors: the measures the accuracy tests state their thresholds in.

/** Cosine similarity, accumulated in double precision. */
export function cosine(a: Float32Array, b: Float32Array): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return ab / Math.sqrt(aa * bb);
}

/** Index of the largest value (the first one on a tie). */
export function argmax(a: Float32Array): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}

/** max |a - b| over every logit of every position, relative to the largest |b|. */
export function relativeError(a: ArrayLike<number>[], b: ArrayLike<number>[]): number {
  let diff = 0;
  let scale = 0;
  a.forEach((row, t) => {
    for (let i = 0; i < row.length; i++) {
      diff = Math.max(diff, Math.abs(row[i] - b[t][i]));
      scale = Math.max(scale, Math.abs(b[t][i]));
    }
  });
  return diff / scale;
}
