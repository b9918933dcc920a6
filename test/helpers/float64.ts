// The float64 blocks of the independent forward passes the reference tests check it against
// (test/reference/llama.test.ts, gemma3.test.ts), written the way transformers computes them and nothing
// shared with src/: a matrix-vector product, rotate_half RoPE, grouped-query attention over cached keys.

/** W x for W [rows, x.length] row-major (nn.Linear without bias). */
export function linear(w: Float32Array, x: Float64Array, rows: number): Float64Array {
  const cols = x.length;
  const y = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let k = 0; k < cols; k++) s += w[r * cols + k] * x[k];
    y[r] = s;
  }
  return y;
}

/** x / sqrt(mean(x^2) + eps), then times multiplier(i) (Llama: w[i]; Gemma: 1 + w[i]). */
export function rmsNorm(x: Float64Array, eps: number, multiplier: (i: number) => number): Float64Array {
  const variance = x.reduce((s, v) => s + v * v, 0) / x.length;
  return x.map((v, i) => multiplier(i) * (v / Math.sqrt(variance + eps)));
}

/** transformers' RoPE: x * cos + rotate_half(x) * sin per head, rotate_half(x) = [-x2, x1], cos/sin = [cos(p f), cos(p f)]. */
export function ropeRotateHalf(x: Float64Array, heads: number, hd: number, pos: number, inv: readonly number[]): Float64Array {
  const out = new Float64Array(x.length);
  for (let h = 0; h < heads; h++) {
    for (let j = 0; j < hd; j++) {
      const angle = pos * inv[j % (hd / 2)];
      const rotated = j < hd / 2 ? -x[h * hd + j + hd / 2] : x[h * hd + j - hd / 2];
      out[h * hd + j] = x[h * hd + j] * Math.cos(angle) + rotated * Math.sin(angle);
    }
  }
  return out;
}

/**
 * Attention of the query heads `q` over cached keys and values [first, keys.length): query head h reads KV
 * head floor(h / (nh / nkv)) (repeat_kv), scores q.k times `scale`, softmax, weighted values.
 */
export function groupedAttention(q: Float64Array, keys: Float64Array[], values: Float64Array[], first: number, nh: number, nkv: number, hd: number, scale: number): Float64Array {
  const att = new Float64Array(nh * hd);
  for (let qh = 0; qh < nh; qh++) {
    const kvh = Math.floor(qh / (nh / nkv));
    const scores: number[] = [];
    for (let t = first; t < keys.length; t++) {
      let s = 0;
      for (let j = 0; j < hd; j++) s += q[qh * hd + j] * keys[t][kvh * hd + j];
      scores.push(s * scale);
    }
    const max = Math.max(...scores);
    const e = scores.map((s) => Math.exp(s - max));
    const sum = e.reduce((a, b) => a + b, 0);
    for (let j = 0; j < hd; j++) att[qh * hd + j] = e.reduce((a, w, i) => a + w * values[first + i][kvh * hd + j], 0) / sum;
  }
  return att;
}
