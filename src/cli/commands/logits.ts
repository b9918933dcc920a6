import { firstNonFinite, loadModel } from "../../api.js";
import { MODEL_FLAG, simdFlag, UsageError, backendFlag, parseFlags, tokenListFlag } from "../args.js";


export const help = `mobilellm logits [--model DIR | --model FILE.gguf] (--tokens 1,2,3 | --prompt TEXT) [--backend wasm|reference] [--simd auto|baseline|relaxed] [--all]

Prints one JSON object {"tokens":[...],"shape":[T,V],"logits":[[...]]}: the next-token logits of the
last position (T = 1), or of every position with --all (T = number of tokens). --prompt is encoded
with the tokenizer's own BOS handling; --tokens are used as given. Each row of logits is written on
its own line (a full-size vocabulary is ~2 MB of text per row). A NaN or infinite logit is an error.`;

export async function run(argv: string[], out: (s: string) => void): Promise<void> {
  const v = parseFlags(argv, { ...MODEL_FLAG, tokens: { type: "string" }, prompt: { type: "string" }, all: { type: "boolean" } });
  if ((v.tokens === undefined) === (v.prompt === undefined)) throw new UsageError("give exactly one of --tokens or --prompt");
  const model = await loadModel(v.model as string | undefined, { backend: backendFlag(v, "wasm"), simd: simdFlag(v) });
  try {
    const tokens = v.tokens !== undefined ? tokenListFlag(v.tokens as string) : model.encode(v.prompt as string);
    const rows = model.logits(tokens, v.all === true);
    // Checked before anything is printed: NaN is not JSON, and a half-printed object is no answer.
    rows.forEach((r, t) => {
      const i = firstNonFinite(r);
      if (i >= 0) {
        throw new Error(`the logits are not finite (${r[i]} at position ${v.all ? t : tokens.length - 1}, token ${i}): the weights or config overflow float32 in this engine`);
      }
    });
    // One row per write: T rows of a 200k vocabulary as one string would pass V8's string length limit.
    out(`{"tokens":${JSON.stringify(tokens)},"shape":[${rows.length},${model.config.vocabSize}],"logits":[`);
    rows.forEach((r, t) => out(`[${r.join(",")}]${t < rows.length - 1 ? "," : ""}`));
    out("]}");
  } finally {
    model.dispose();
  }
}
