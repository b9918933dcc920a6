import { readFileSync } from "node:fs";
import { MODEL_FLAG, parseFlags, UsageError } from "../args.js";
import { GENERATION_FLAGS, GENERATION_HELP, generationOptions } from "../sampling-flags.js";
import { loadFromFlags, RUN_FLAGS, RUN_HELP } from "../load-flags.js";
import { describeStop, formatStats, PromptCache, withCtrlC } from "../session.js";
import { print, stdoutGone } from "../output.js";

export const help = `mobilellm generate --prompt TEXT [options]

Streams the model's continuation of TEXT to stdout (the prompt first, then the new text).
--prompt - reads the prompt from stdin. Sampling defaults come from the checkpoint's
generation_config.json (the bundled model: temperature 0.8, top-p 0.95); --temp 0 is greedy.
Ctrl-C stops the generation.

options:
  --prompt TEXT      the text to continue
${GENERATION_HELP}
${RUN_HELP}`;

export async function run(argv: string[], out: (s: string) => void): Promise<void> {
  const v = parseFlags(argv, { ...MODEL_FLAG, ...RUN_FLAGS, ...GENERATION_FLAGS, prompt: { type: "string" } });
  if (v.prompt === undefined) throw new UsageError("--prompt is required (--prompt - reads stdin)");
  const prompt = v.prompt === "-" ? readFileSync(0, "utf8") : (v.prompt as string);
  if (prompt.length === 0) throw new Error("the prompt is empty");
  const opts = generationOptions(v);
  const log = (s: string) => process.stderr.write(s + "\n");
  const model = await loadFromFlags(v, log);
  try {
    const cache = v["prompt-cache"] === undefined ? null : new PromptCache(v["prompt-cache"] as string, model);
    cache?.load();
    const ac = new AbortController();
    // Ctrl-C, or a reader that closed stdout, ends the generation after the token in flight.
    const g = model.generate(prompt, { ...opts, signal: AbortSignal.any([ac.signal, stdoutGone]) });
    const result = await withCtrlC(ac, async () => {
      // The prompt is echoed once the model has produced something (or finished cleanly), so a model whose
      // logits are not finite fails with nothing on stdout.
      let echoed = false;
      const echo = () => {
        if (!echoed) print(prompt);
        echoed = true;
      };
      for await (const piece of g) {
        echo();
        print(piece.text);
      }
      const r = await g.result;
      echo();
      return r;
    });
    out("");
    cache?.save();
    const why = stdoutGone.aborted ? null : describeStop(result.stopReason, model.info.contextLength);
    if (why) log(why);
    if (v.stats) log(formatStats(result.stats, model));
  } finally {
    await model.dispose();
  }
}
