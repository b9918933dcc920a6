#!/usr/bin/env node
// mobilellm: the command-line face. Each command lives in its own file; errors end as one line on
// stderr and a non-zero exit code (2 for usage mistakes, 1 for everything else). A reader that closes
// stdout early (`| head`) ends the command quietly, with exit code 0 (output.ts).
import { UsageError } from "./args.js";
import { printLine, watchOutput } from "./output.js";
import * as chat from "./commands/chat.js";
import * as convert from "./commands/convert.js";
import * as generate from "./commands/generate.js";
import * as info from "./commands/info.js";
import * as logits from "./commands/logits.js";
import * as perplexity from "./commands/perplexity.js";
import * as serve from "./commands/serve.js";
import * as synth from "./commands/synth.js";

interface Command {
  help: string;
  run(argv: string[], out: (s: string) => void): Promise<void>;
}

const COMMANDS: Record<string, Command> = { generate, chat, serve, logits, perplexity, info, synth, convert };

const USAGE = `usage: mobilellm <command> [options]

commands:
  generate     stream the continuation of a prompt (default model: the bundled shakespeare-tiny)
  chat         a conversation on stdin/stdout that keeps earlier turns in the KV cache
  serve        an OpenAI-compatible HTTP server (chat and completions, several requests at once)
  logits       print next-token logits as JSON
  perplexity   held-out perplexity of a text file
  info         parameters, layer map, assumed config values, weight and KV-cache memory
  synth        write a random-weight checkpoint folder in the Hugging Face layout (for loading tests)
  convert      write a checkpoint folder as one quantized GGUF file (Q4_0 matrices, F32 norms)

mobilellm <command> --help shows a command's options.`;

async function main(argv: string[]): Promise<number> {
  watchOutput();
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    printLine(USAGE);
    return name === undefined ? 2 : 0;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    process.stderr.write(`mobilellm: unknown command "${name}" (try mobilellm --help)\n`);
    return 2;
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    printLine(cmd.help);
    return 0;
  }
  try {
    await cmd.run(rest, printLine);
    return 0;
  } catch (err) {
    const message = (err as Error).message.split("\n")[0];
    process.stderr.write(`mobilellm ${name}: ${message}\n`);
    return err instanceof UsageError ? 2 : 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
