import { resolve } from "node:path";
import { PRESETS, MIN_VOCAB, synthesizeCheckpoint } from "../../api.js";
import { intFlag, parseFlags, UsageError } from "../args.js";

const DEFAULT_SHARD_MB = 1000;

export const help = `mobilellm synth --preset NAME --out DIR [--seed S] [--layers N] [--vocab V] [--shard-mb M] [--force]

Writes a checkpoint folder in the Hugging Face layout with seeded RANDOM bf16 weights, to exercise the
real-size loading path without the gated download: config.json, model-0000i-of-0000n.safetensors shards
with model.safetensors.index.json, generation_config.json, tokenizer.json, tokenizer_config.json and a
README.md saying what the folder is. The full mobilellm-pro preset is about 2.17 GB.

--preset NAME ${Object.keys(PRESETS).join(", ")}: the published config.json of the model

--seed S      PRNG seed (default 0); the same seed gives byte-identical files
--layers N    keep the first N layers of the preset (1..its layer count), same layout otherwise
--vocab V     shrink the vocabulary to V rows (${MIN_VOCAB}..the preset's), for small test models; the
              Llama-4 special-token block then sits in the top 24 rows (<|begin_of_text|> = V-24,
              <|finetune_right_pad|> = V-6) instead of at 200000
--shard-mb M  shard size in MB of 10^6 bytes, as Hugging Face counts (default ${DEFAULT_SHARD_MB})
--force       write into a non-empty DIR (earlier model*.safetensors and index files are removed)

Progress goes to stderr; the summary (files, total bytes, seconds) to stdout.`;

export async function run(argv: string[], out: (s: string) => void): Promise<void> {
  const v = parseFlags(argv, {
    preset: { type: "string" },
    out: { type: "string" },
    seed: { type: "string" },
    layers: { type: "string" },
    vocab: { type: "string" },
    "shard-mb": { type: "string" },
    force: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (v.preset === undefined) throw new UsageError(`--preset is required (known: ${Object.keys(PRESETS).join(", ")})`);
  const preset = PRESETS[v.preset as string];
  if (!preset) throw new UsageError(`unknown preset "${String(v.preset)}" (known: ${Object.keys(PRESETS).join(", ")})`);
  if (v.out === undefined || v.out === "") throw new UsageError("--out is required");
  const seed = intFlag(v, "seed", 0, 0);
  const layers = intFlag(v, "layers", preset.config.numLayers);
  if (layers > preset.config.numLayers) {
    throw new UsageError(`--layers must be 1..${preset.config.numLayers}, got ${layers}`);
  }
  const vocab = intFlag(v, "vocab", preset.config.vocabSize, MIN_VOCAB);
  if (vocab > preset.config.vocabSize) {
    throw new UsageError(`--vocab must be ${MIN_VOCAB}..${preset.config.vocabSize}, got ${vocab}`);
  }
  const shardMb = intFlag(v, "shard-mb", DEFAULT_SHARD_MB);
  const outDir = resolve(v.out as string);

  // On a terminal the percentage updates in place; in a log, one line per 10% is enough.
  const tty = process.stderr.isTTY === true;
  const step = tty ? 1 : 10;
  let shown = -1;
  const started = performance.now();
  const result = await synthesizeCheckpoint({
    presetJson: preset.json,
    presetName: v.preset as string,
    outDir,
    seed,
    layers,
    vocab,
    maxShardBytes: shardMb * 1_000_000,
    force: v.force === true,
    onProgress: (done, total) => {
      const pct = Math.floor((100 * done) / total);
      if (pct < shown + step && pct !== 100) return;
      shown = pct;
      process.stderr.write(`${tty ? "\r" : ""}synth: ${pct}% of ${(total / 1e6).toFixed(0)} MB of weights${tty && pct < 100 ? "" : "\n"}`);
    },
  });
  const seconds = (performance.now() - started) / 1000;
  const fmt = (n: number) => n.toLocaleString("en-US");
  const width = Math.max(...result.files.map((f) => f.name.length));
  out(`wrote ${outDir} (random weights, seed ${seed}, ${result.config.numLayers} layers, vocab ${fmt(result.config.vocabSize)})`);
  for (const f of result.files) out(`  ${f.name.padEnd(width)}  ${fmt(f.bytes).padStart(15)} B`);
  out(`${result.files.length} files, ${fmt(result.totalBytes)} bytes in ${seconds.toFixed(1)} s`);
}
