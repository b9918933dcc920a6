// Loading a model for the text commands: the shared flags, the progress bar while the checkpoint is read
// and quantized, and one line saying what runs.
import { basename } from "node:path";
import { describeLoadProgress, loadModel, type LoadOptions, type Model, type ModelInfo, parameterCount } from "../api.js";
import { backendFlag, intFlag, simdFlag, type Values } from "./args.js";
import { progressBar } from "./progress.js";

export const RUN_FLAGS = {
  ctx: { type: "string" },
  threads: { type: "string" },
  quiet: { type: "boolean", short: "q" },
} as const;

export const RUN_HELP = `  --model PATH       checkpoint folder or GGUF file (mobilellm convert); default: the bundled
                     model as models/shakespeare-tiny.gguf (npm run build writes it from the
                     folder models/shakespeare-tiny, which is used where it is missing)
  --ctx N            positions the KV cache holds (default min(max_position_embeddings, 4096))
  --threads N        threads for the wasm engine (default: the available cores)
  --backend B        wasm (int4 x int8 engine, default) or reference (float32 oracle)
  --simd S           auto (relaxed SIMD where proven correct), baseline or relaxed
  -q, --quiet        nothing on stderr but errors`;

/**
 * Where the load went, one line (--stats, info --load), in ms: the parts are disjoint and add up to the
 * total; the threads' start mostly overlaps the reads and quantizing, and only the part that holds the
 * load up (spawning them, then waiting for them once the weights are in) counts as "threads". Null for a
 * backend that does not measure it.
 */
export function describeLoad(info: ModelInfo): string | null {
  const t = info.loadTimes;
  if (t === null) return null;
  const total = info.loadMs ?? t.total;
  const ms = (x: number) => `${x.toFixed(1)} ms`;
  const parts: [string, number][] = [
    ["model files", total - t.total],
    ["kernels", t.kernels],
    ["read", t.read],
    ["quantize/repack", t.quantize],
    ["threads", t.threads],
  ];
  parts.push(["other", total - parts.reduce((n, [, x]) => n + x, 0)]);
  const threads = info.threads === 1 ? "one thread" : `the ${info.threads - 1} worker thread${info.threads === 2 ? "" : "s"} started in ${ms(t.threadsStart)}, alongside the reads`;
  return `${ms(total)} to ready: ${parts.map(([name, x]) => `${name} ${ms(Math.max(0, x))}`).join(", ")} (${threads})`;
}

/** Loads the model the flags name; `extra` adds load options a command sets itself (serve's sequences). */
export async function loadFromFlags(v: Values, log: (s: string) => void, extra: Pick<LoadOptions, "sequences"> = {}): Promise<Model> {
  const bar = progressBar("loading");
  const t0 = performance.now();
  const model = await loadModel(v.model as string | undefined, {
    backend: backendFlag(v, "wasm"),
    simd: simdFlag(v),
    contextLength: v.ctx === undefined ? undefined : intFlag(v, "ctx", 0),
    threads: v.threads === undefined ? undefined : intFlag(v, "threads", 1),
    onProgress: (p) => bar.update(p.bytes, p.totalBytes, describeLoadProgress(p)),
    ...extra,
  }).finally(() => bar.end());
  // The summary line is for people watching a terminal (or asking for --stats); pipes get only errors.
  if (!v.quiet && (process.stderr.isTTY || v.stats)) {
    const i = model.info;
    const params = (parameterCount(model.config).total / 1e6).toFixed(1);
    const build = i.simd ? `, ${i.simd.variant === "relaxed" ? "relaxed SIMD" : "SIMD128"}` : "";
    log(`loaded ${basename(model.dir)} (${params}M parameters) on ${i.backend}${build}, ${i.threads} thread${i.threads === 1 ? "" : "s"}, context ${i.contextLength}, in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  return model;
}
