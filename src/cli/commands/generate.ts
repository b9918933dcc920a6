import { loadModel } from "../../api.js";
import { MODEL_FLAG, simdFlag, backendFlag, intFlag, parseFlags, UsageError } from "../args.js";

export const help = `mobilellm generate [--model DIR] --prompt TEXT [-n N] [--backend wasm|reference] [--simd auto|baseline|relaxed]

Greedy continuation of TEXT (N new tokens, default 64; stops early at an end-of-sequence token).
Without --model it runs the bundled models/shakespeare-tiny.`;

export async function run(argv: string[], out: (s: string) => void): Promise<void> {
  const v = parseFlags(argv, { ...MODEL_FLAG, prompt: { type: "string" }, n: { type: "string", short: "n" } });
  if (v.prompt === undefined) throw new UsageError("--prompt is required");
  const n = intFlag(v, "n", 64);
  const model = await loadModel(v.model as string | undefined, { backend: backendFlag(v, "wasm"), simd: simdFlag(v) });
  try {
    const r = model.generate(v.prompt as string, { maxNewTokens: n });
    out((v.prompt as string) + r.text);
  } finally {
    model.dispose();
  }
}
