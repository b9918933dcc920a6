import { readFileSync } from "node:fs";
import { loadModel } from "../../api.js";
import { MODEL_FLAG, simdFlag, backendFlag, intFlag, parseFlags, UsageError } from "../args.js";

export const help = `mobilellm perplexity [--model DIR | --model FILE.gguf] --file F [--ctx N] [--backend wasm|reference] [--simd auto|baseline|relaxed] [--json]

Tokenizes F once, cuts the ids into chunks of N+1 overlapping by one, runs each chunk from position 0,
and predicts every id of a chunk but its first (the last partial chunk included). N defaults to 256.
Prints the predicted token count, the mean negative log-likelihood and the perplexity.`;

export async function run(argv: string[], out: (s: string) => void): Promise<void> {
  const v = parseFlags(argv, { ...MODEL_FLAG, file: { type: "string" }, ctx: { type: "string" }, json: { type: "boolean" } });
  if (v.file === undefined) throw new UsageError("--file is required");
  const ctx = intFlag(v, "ctx", 256);
  let text: string;
  try {
    text = readFileSync(v.file as string, "utf8");
  } catch (err) {
    throw new Error(`cannot read ${String(v.file)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const model = await loadModel(v.model as string | undefined, { backend: backendFlag(v, "wasm"), simd: simdFlag(v), contextLength: ctx });
  try {
    const r = model.perplexity(text, ctx);
    if (v.json) out(JSON.stringify(r));
    else out(`tokens ${r.tokens}\nnll ${r.nll.toFixed(6)}\nperplexity ${r.perplexity.toFixed(4)}`);
  } finally {
    model.dispose();
  }
}
