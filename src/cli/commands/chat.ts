import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import type { ChatMessage, Generation } from "../../api.js";
import { MODEL_FLAG, parseFlags, UsageError } from "../args.js";
import { GENERATION_FLAGS, GENERATION_HELP, generationOptions } from "../sampling-flags.js";
import { loadFromFlags, RUN_FLAGS, RUN_HELP } from "../load-flags.js";
import { describeStop, formatStats, PromptCache, withCtrlC } from "../session.js";
import { print, stdoutGone } from "../output.js";

export const help = `mobilellm chat [options]

A conversation on stdin/stdout: each line you type is a user message, the answer streams back.
The checkpoint's chat template renders the conversation; a checkpoint without one (the bundled
Shakespeare model) gets a plain dialogue ("USER:" / "ASSISTANT:" speeches, an answer ends at a
blank line). Each turn prefills only its new tokens: the earlier turns stay in the KV cache, and
the saving is printed on stderr. /reset starts over, /exit (or end of input) quits, Ctrl-C stops
an answer.

options:
  --system TEXT      a system message opening the conversation
  --template FILE    a Jinja chat template to use instead of the checkpoint's
${GENERATION_HELP}
${RUN_HELP}`;

export async function run(argv: string[], out: (s: string) => void): Promise<void> {
  const v = parseFlags(argv, { ...MODEL_FLAG, ...RUN_FLAGS, ...GENERATION_FLAGS, system: { type: "string" }, template: { type: "string" } });
  const opts = generationOptions(v);
  let template: string | undefined;
  if (v.template !== undefined) {
    try {
      template = readFileSync(v.template as string, "utf8");
    } catch (err) {
      throw new UsageError(`cannot read --template ${String(v.template)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  const log = (s: string) => process.stderr.write(s + "\n");
  const model = await loadFromFlags(v, log);
  const interactive = process.stdin.isTTY === true;
  const opening: ChatMessage[] = v.system === undefined ? [] : [{ role: "system", content: v.system as string }];
  let messages = [...opening];
  let turn = 0;
  try {
    const cache = v["prompt-cache"] === undefined ? null : new PromptCache(v["prompt-cache"] as string, model);
    const restored = cache?.load() ?? 0;
    if (!v.quiet && restored > 0) log(`--prompt-cache: ${restored} tokens restored`);
    if (!v.quiet && model.chatTemplate === null && template === undefined) log("no chat template in the checkpoint: using the plain dialogue format");
    const rl = createInterface({ input: process.stdin, terminal: interactive });
    if (interactive) print("> ");
    for await (const line of rl) {
      if (stdoutGone.aborted) break; // nobody reads the answers any more
      const text = line.trim();
      if (text === "/exit") break;
      if (text === "/reset") {
        messages = [...opening];
        turn = 0;
        log("conversation reset");
      } else if (text.length > 0) {
        messages.push({ role: "user", content: text });
        const ac = new AbortController();
        let g: Generation;
        try {
          g = model.chat(messages, { ...opts, template, signal: AbortSignal.any([ac.signal, stdoutGone]) });
        } catch (err) {
          // A conversation that outgrew the context: say so and let the user go on with /reset.
          if (!(err instanceof RangeError)) throw err;
          messages.pop();
          log(`${err.message}; /reset starts a new conversation`);
          if (interactive) print("> ");
          continue;
        }
        turn++;
        const result = await withCtrlC(ac, async () => {
          for await (const piece of g) print(piece.text);
          return g.result;
        });
        out("");
        cache?.save();
        if (stdoutGone.aborted) break;
        messages.push({ role: "assistant", content: result.text });
        const s = result.stats;
        if (!v.quiet) {
          const saved = s.promptTokens > 0 ? ((100 * s.reusedTokens) / s.promptTokens).toFixed(0) : "0";
          log(`[turn ${turn}: prompt ${s.promptTokens} tokens, ${s.prefilledTokens} prefilled, ${s.reusedTokens} reused from the KV cache (${saved}% not recomputed)]`);
        }
        const why = describeStop(result.stopReason, model.info.contextLength);
        if (why) log(result.stopReason === "context" ? `${why}; /reset starts a new conversation` : why);
        if (v.stats) log(formatStats(s, model));
      }
      if (interactive) print("> ");
    }
    rl.close();
  } finally {
    await model.dispose();
  }
}
