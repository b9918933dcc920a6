import { loadModel } from "../../api.js";
import { MODEL_FLAG, simdFlag, UsageError, backendFlag, parseFlags, tokenListFlag } from "../args.js";

export const help = `mobilellm logits [--model DIR] (--tokens 1,2,3 | --prompt TEXT) [--backend wasm|reference] [--simd auto|baseline|relaxed] [--all]

Prints one JSON object {"tokens":[...],"shape":[T,V],"logits":[[...]]}: the next-token logits of the
last position (T = 1), or of every position with --all (T = number of tokens). --prompt is encoded
with the tokenizer's own BOS handling; --tokens are used as given.`;

export async function run(argv: string[], out: (s: string) => void): Promise<void> {
  const v = parseFlags(argv, { ...MODEL_FLAG, tokens: { type: "string" }, prompt: { type: "string" }, all: { type: "boolean" } });
  if ((v.tokens === undefined) === (v.prompt === undefined)) throw new UsageError("give exactly one of --tokens or --prompt");
  const model = await loadModel(v.model as string | undefined, { backend: backendFlag(v, "wasm"), simd: simdFlag(v) });
  try {
    const tokens = v.tokens !== undefined ? tokenListFlag(v.tokens as string) : model.encode(v.prompt as string);
    const rows = model.logits(tokens, v.all === true);
    const body = rows.map((r) => `[${Array.from(r).join(",")}]`).join(",");
    out(`{"tokens":${JSON.stringify(tokens)},"shape":[${rows.length},${model.config.vocabSize}],"logits":[${body}]}`);
  } finally {
    model.dispose();
  }
}
