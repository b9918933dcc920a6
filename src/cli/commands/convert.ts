import { existsSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { convertFolder } from "../../api.js";
import { parseFlags, UsageError } from "../args.js";
import { progressBar } from "../progress.js";

export const help = `mobilellm convert --model DIR --out FILE.gguf [--force]

Writes the checkpoint folder DIR as one GGUF file: every matrix as Q4_0 blocks holding the engine's own
int4 recipe (symmetric, group 32) with f16 scales, the norms as F32, the hyperparameters
under GGUF's keys, and config.json, tokenizer.json, tokenizer_config.json, generation_config.json and the
chat template carried whole. docs/gguf.md lists every key.

--model DIR   checkpoint folder (config.json, tokenizer.json, model.safetensors or shards)
--out FILE    the GGUF file to write (written as FILE.partial, renamed when complete)
--force       replace FILE if it exists

Progress goes to stderr; the summary (tensors, bytes, seconds) to stdout.`;

export async function run(argv: string[], out: (s: string) => void): Promise<void> {
  const v = parseFlags(argv, {
    model: { type: "string" },
    out: { type: "string" },
    force: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (v.model === undefined || v.model === "") throw new UsageError("--model is required");
  if (v.out === undefined || v.out === "") throw new UsageError("--out is required");
  const dir = resolve(v.model as string);
  const path = resolve(v.out as string);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`model folder ${dir} does not exist`);
  if (existsSync(path) && v.force !== true) throw new Error(`${path} exists; pass --force to replace it`);

  const bar = progressBar("converting");
  const started = performance.now();
  const result = await convertFolder(dir, path, (done, total) => bar.update(done, total)).finally(() => bar.end());
  const seconds = (performance.now() - started) / 1000;
  const fmt = (n: number) => n.toLocaleString("en-US");
  out(`wrote ${v.out as string}: ${result.tensors} tensors (Q4_0 matrices, F32 norms), ${fmt(result.layout.fileSize)} bytes in ${seconds.toFixed(1)} s`);
}
