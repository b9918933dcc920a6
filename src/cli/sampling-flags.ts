// The generation flags shared by `generate` and `chat`, turned into GenerateOptions.
import type { GenerateOptions } from "../api.js";
import { intFlag, UsageError, type Options, type Values } from "./args.js";
import { GRAMMAR_FLAGS, GRAMMAR_HELP, grammarOption } from "./grammar-flags.js";

export const GENERATION_FLAGS = {
  n: { type: "string", short: "n" },
  temp: { type: "string" },
  "top-k": { type: "string" },
  "top-p": { type: "string" },
  "min-p": { type: "string" },
  "repeat-penalty": { type: "string" },
  "repeat-last-n": { type: "string" },
  seed: { type: "string" },
  stop: { type: "string", multiple: true },
  stats: { type: "boolean" },
  ...GRAMMAR_FLAGS,
  "prompt-cache": { type: "string" },
} as const satisfies Options;

export const GENERATION_HELP = `  -n N               new tokens at most (default: generation_config.json's max_new_tokens, else 256)
  --temp T           temperature; 0 = greedy (default: generation_config.json, else greedy)
  --top-k K          keep the K most likely tokens (0 = off)
  --top-p P          keep the most likely tokens up to probability mass P (1 = off)
  --min-p P          drop tokens less likely than P x the most likely one (0 = off)
  --repeat-penalty R penalize tokens already in the context (1 = off; transformers' rule)
  --repeat-last-n N  how many recent tokens the penalty looks at (default: all)
  --seed S           make sampling reproducible (integer in [0, 2^32))
  --stop TEXT        stop when TEXT appears (not printed); may be given several times
  --stats            print prefill and decode tokens/s, time to first token and KV cache bytes on stderr
  --prompt-cache FILE  load the KV state saved in FILE before the prompt (its tokens are reused where
                     the prompt starts with them) and save the state there afterwards
${GRAMMAR_HELP}`;

export function floatFlag(values: Values, name: string, min: number, max: number): number | undefined {
  const v = values[name];
  if (v === undefined) return undefined;
  const x = Number(v);
  if (typeof v !== "string" || v.trim() === "" || !Number.isFinite(x) || x < min || x > max) {
    throw new UsageError(`--${name} must be a number in [${min}, ${max}], got "${String(v)}"`);
  }
  return x;
}

function optionalInt(values: Values, name: string, min: number): number | undefined {
  return values[name] === undefined ? undefined : intFlag(values, name, 0, min);
}

export function generationOptions(v: Values): GenerateOptions {
  const seed = optionalInt(v, "seed", 0);
  if (seed !== undefined && seed >= 2 ** 32) throw new UsageError(`--seed must be an integer in [0, 2^32), got "${String(v.seed)}"`);
  const stop = (v.stop as string[] | undefined) ?? [];
  if (stop.some((s) => s.length === 0)) throw new UsageError("--stop must not be empty");
  return {
    maxNewTokens: optionalInt(v, "n", 0),
    temperature: floatFlag(v, "temp", 0, 100),
    topK: optionalInt(v, "top-k", 0),
    topP: floatFlag(v, "top-p", Number.MIN_VALUE, 1),
    minP: floatFlag(v, "min-p", 0, 1),
    repetitionPenalty: floatFlag(v, "repeat-penalty", Number.MIN_VALUE, 100),
    repetitionWindow: optionalInt(v, "repeat-last-n", 0),
    seed,
    stop,
    grammar: grammarOption(v),
  };
}
