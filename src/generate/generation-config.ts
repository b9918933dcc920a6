// generation_config.json: the sampling defaults a checkpoint ships with, read the way transformers'
// GenerationConfig reads them. do_sample false (or absent) means greedy; do_sample true samples with the
// file's temperature/top_k/top_p/min_p and transformers' own defaults where it is silent (top_k 50).
import type { SamplingOptions } from "./sampler.js";

export interface GenerationDefaults {
  sampling: SamplingOptions;
  /** max_new_tokens when the file sets it. */
  maxNewTokens?: number;
  /** eos_token_id of the file (it takes part in stopping together with config.json's). */
  eosTokenIds: number[];
}

/** transformers' GenerationConfig default for top_k when sampling. */
const TRANSFORMERS_TOP_K = 50;

export function parseGenerationConfig(json: unknown, source = "generation_config.json"): GenerationDefaults {
  if (typeof json !== "object" || json === null || Array.isArray(json)) throw new Error(`${source}: expected a JSON object`);
  const g = json as Record<string, unknown>;
  const num = (key: string, ok: (v: number) => boolean): number | undefined => {
    const v = g[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "number" || !ok(v)) throw new Error(`${source}: ${key} has an invalid value ${JSON.stringify(v)}`);
    return v;
  };
  const temperature = num("temperature", (v) => v >= 0 && Number.isFinite(v));
  const topK = num("top_k", (v) => Number.isInteger(v) && v >= 0);
  const topP = num("top_p", (v) => v > 0 && v <= 1);
  const minP = num("min_p", (v) => v >= 0 && v <= 1);
  const repetitionPenalty = num("repetition_penalty", (v) => v > 0 && Number.isFinite(v));
  const maxNewTokens = num("max_new_tokens", (v) => Number.isInteger(v) && v >= 0);
  const eos = g["eos_token_id"];
  const eosTokenIds = eos === undefined || eos === null ? [] : Array.isArray(eos) ? eos : [eos];
  if (!eosTokenIds.every((e) => Number.isInteger(e) && (e as number) >= 0)) {
    throw new Error(`${source}: eos_token_id must be a token id or a list of them, got ${JSON.stringify(eos)}`);
  }
  if (g["do_sample"] !== undefined && typeof g["do_sample"] !== "boolean") throw new Error(`${source}: do_sample must be true or false`);

  const sampling: SamplingOptions =
    g["do_sample"] === true
      ? { temperature: temperature ?? 1, topK: topK ?? TRANSFORMERS_TOP_K, topP: topP ?? 1, minP: minP ?? 0 }
      : { temperature: 0 };
  if (repetitionPenalty !== undefined) sampling.repetitionPenalty = repetitionPenalty;
  return { sampling, maxNewTokens, eosTokenIds: eosTokenIds as number[] };
}

/** Greedy, no penalty: what a checkpoint without generation_config.json gets, as in transformers. */
export const NO_GENERATION_CONFIG: GenerationDefaults = { sampling: { temperature: 0 }, eosTokenIds: [] };
