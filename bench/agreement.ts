// Next-token agreement between llama.cpp (through node-llama-cpp) and this engine, on the same GGUF file and
// the same token ids: the figures `npm run bench:conformance` prints and test/model/hub-llama-cpp.test.ts holds to
// the targets of issue 24 (top-1 >= 0.98, mean KL(llama.cpp || ours) <= 0.005, perplexity within 0.5%).
//
// The text is real English this project did not write: the Apache License 2.0 as the typescript package
// (a pinned devDependency) ships it in node_modules/typescript/LICENSE.txt, about 2,200 tokens.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { Model } from "../src/api.js";
import type { NlcContext, NlcModel } from "./node-llama-cpp.js";

/** Where the conformance text comes from, for the printed tables. */
export const CONFORMANCE_TEXT_ABOUT = "the Apache License 2.0 text of node_modules/typescript/LICENSE.txt";

/** The conformance text (see the top of this file). */
export function conformanceText(): string {
  const pkg = createRequire(import.meta.url).resolve("typescript/package.json");
  return readFileSync(join(dirname(pkg), "LICENSE.txt"), "utf8");
}

/** The targets the conformance figures are held to (issue 24). */
export const TARGETS = { top1: 0.98, meanKl: 0.005, perplexity: 0.005 } as const;

export interface Agreement {
  /** Positions compared: the distribution after each of tokens 0 .. positions-1, predicting the next. */
  positions: number;
  /** Share of positions where both engines rank the same token first. */
  top1: number;
  /** KL(llama.cpp || ours) in nats, the mean and the largest over the positions. */
  meanKl: number;
  maxKl: number;
  /** Perplexity of the text's next tokens under each engine. */
  pplLlama: number;
  pplOurs: number;
}

/** Running sums of the agreement figures, fed a position at a time (vocabularies are large: nothing is kept). */
export class AgreementMeter {
  private n = 0;
  private same = 0;
  private klSum = 0;
  private klMax = 0;
  private nllLlama = 0;
  private nllOurs = 0;

  /** One position: both engines' logits over the vocabulary and the token that follows. */
  add(llama: Float32Array, ours: Float32Array, next: number): void {
    const p = logSoftmax(llama);
    const q = logSoftmax(ours);
    let kl = 0;
    for (let i = 0; i < p.length; i++) if (p[i] > -Infinity) kl += Math.exp(p[i]) * (p[i] - q[i]);
    this.n++;
    if (argmax(llama) === argmax(ours)) this.same++;
    this.klSum += kl;
    this.klMax = Math.max(this.klMax, kl);
    this.nllLlama -= p[next];
    this.nllOurs -= q[next];
  }

  get result(): Agreement {
    return {
      positions: this.n,
      top1: this.same / this.n,
      meanKl: this.klSum / this.n,
      maxKl: this.klMax,
      pplLlama: Math.exp(this.nllLlama / this.n),
      pplOurs: Math.exp(this.nllOurs / this.n),
    };
  }
}

function logSoftmax(x: Float32Array): Float64Array {
  let max = -Infinity;
  for (const v of x) max = Math.max(max, v);
  let sum = 0;
  for (const v of x) sum += Math.exp(v - max);
  const lse = max + Math.log(sum);
  return Float64Array.from(x, (v) => v - lse);
}

function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

/** How to get logits at every position: llama.cpp's context, and this engine's forward pass. */
export interface Engines {
  llama: { model: NlcModel; context: NlcContext };
  /** This engine: the logits after each of `tokens`, which start at position `start` (the cache holds the rest). */
  ours: (tokens: number[], start: number) => Float32Array[];
  vocab: number;
}

/**
 * Compares the two engines' next-token distributions after each of ids[0 .. positions-1] (ids holds at least
 * positions + 1 tokens), `window` positions at a time so that no more than a window of logits is ever held.
 */
export async function measureAgreement(e: Engines, ids: number[], positions: number, window = 64): Promise<Agreement> {
  if (ids.length < positions + 1) throw new RangeError(`${positions} positions need ${positions + 1} tokens, the text has ${ids.length}`);
  const seq = e.llama.context.getSequence();
  const meter = new AgreementMeter();
  for (let start = 0; start < positions; start += window) {
    const chunk = ids.slice(start, Math.min(positions, start + window));
    const out = await seq.controlledEvaluate(chunk.map((t) => [t, { generateNext: { logits: true, options: { temperature: 1, topK: 0, topP: 1, minP: 0 } } }]));
    const ours = e.ours(chunk, start);
    chunk.forEach((_, i) => {
      const logits = out[i]?.next.logits;
      if (!logits) throw new Error("llama.cpp returned no logits");
      const llama = new Float32Array(e.vocab).fill(-Infinity);
      for (const [id, v] of logits) llama[id] = v;
      meter.add(llama, ours[i], ids[start + i + 1]);
    });
  }
  return meter.result;
}

/**
 * llama.cpp's token ids of a text (its tokenize, which adds no BOS) behind the BOS that this engine's
 * tokenizer puts first when the file asks for one (add_bos_token: Gemma), so both engines read one sequence.
 */
export function withBos(ours: Model, ids: readonly number[]): number[] {
  const first = ours.tokenizer ? ours.encode("x", true)[0] : undefined;
  return first !== undefined && first === ours.tokenizer?.bosTokenId ? [first, ...ids] : [...ids];
}

/** Whether the figures meet TARGETS, and the ones that do not. */
export function missedTargets(a: Agreement): string[] {
  const missed: string[] = [];
  if (!(a.top1 >= TARGETS.top1)) missed.push(`top-1 ${a.top1.toFixed(4)} < ${TARGETS.top1}`);
  if (!(a.meanKl <= TARGETS.meanKl)) missed.push(`mean KL ${a.meanKl.toFixed(5)} > ${TARGETS.meanKl}`);
  const ppl = Math.abs(a.pplOurs / a.pplLlama - 1);
  if (!(ppl <= TARGETS.perplexity)) missed.push(`perplexity ${(100 * ppl).toFixed(2)}% off > ${100 * TARGETS.perplexity}%`);
  return missed;
}
