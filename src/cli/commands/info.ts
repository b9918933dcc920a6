import { existsSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { PRESETS, parameterCount, type ModelConfig, bundledModelPath, loadConfig, readJsonFile, INDEX_FILE, SINGLE_FILE, GROUP, engineWeightBytes, int4WeightBytes, type EngineWeightBytes, kvCacheBytes, mib, storedDtype, openCheckpoint, openFileSource, GgufFile, GgufWeights, readAnyGgufModel, loadModel, type LoadTimes } from "../../api.js";
import { intFlag, parseFlags, UsageError } from "../args.js";
import { describeLoad } from "../load-flags.js";

/** The context of the technical report's KV-cache comparison (its "8k" is 8000 tokens: 117 vs 40 MB). */
const DEFAULT_CTX = 8000;

export const help = `mobilellm info [--model DIR | --model FILE.gguf | --preset mobilellm-pro] [--ctx N] [--load [--threads N]] [--json]

Without --model or --preset: the bundled model, as generate loads it (models/shakespeare-tiny.gguf,
else the folder models/shakespeare-tiny).

Parameter count, the layer map (G = global, S = sliding window), which config values were absent
from config.json and took their documented default, and memory:
  stored       weight bytes as the checkpoint stores them: the sum of its tensors when the folder has
               one, else parameters x the size of config.json's torch_dtype (bfloat16 if absent)
  int4         weight bytes in the int4 engine: 4-bit values plus one f16 scale per (row, 32 inputs)
               for every linear layer and the embedding table (a tied table counted once), f32 norms
  engine       what the engine holds: the int4 weights plus one f32 row sum per row
  kv cache     int8 K and V for N tokens: global layers hold N positions, sliding layers
               min(N, sliding_window); the config's layout ("hybrid") vs every layer global
  kv scales    the f32 scale per (token, KV head) of K and of V, on top of the kv cache line

For a GGUF file (mobilellm convert's, or llama.cpp's of a Llama model), stored is the sum of its tensors,
and more lines show the file:
  gguf file    size, format version, alignment and where the tensor data starts
  tensors      per ggml tensor type: how many tensors and their bytes
  computed     how the engine computes with the matrices: the int4 recipe (mobilellm convert's files),
               or the values the file holds, each type in its layout (llama.cpp's files)
A llama.cpp file's matrices are not computed with the int4 recipe, so its int4 and engine lines are one:
  engine       weight bytes the engine allocates: each matrix in the layout of its ggml type (the regions
               of src/kernels/layout.ts for its shape), per layout; f32 norms

--ctx N      context length for the KV cache (default min(max_position_embeddings, ${DEFAULT_CTX}))
--load       also load the weights into the wasm engine (with a KV cache of --ctx positions) and print
             where the time to ready went (the line generate --stats prints): the model's files (config,
             tokenizer, headers), compiling the kernels, waiting for weight bytes, quantizing or
             repacking, waiting for the worker threads, the rest; and how long the threads took to start
--threads N  engine threads for --load (default: the available cores)`;

interface GgufSummary {
  /** general.architecture: "mobilellmpro" (mobilellm convert), "llama" or "gemma3" (llama.cpp). */
  architecture: string;
  fileBytes: number;
  version: number;
  alignment: number;
  dataOffset: number;
  /** ggml type name -> tensors of that type and their bytes. */
  types: Record<string, { tensors: number; bytes: number }>;
  /** How the engine computes with the matrices. */
  quantization: "recipe" | "file";
  /** Weight bytes the engine allocates, each matrix in its layout. */
  engineWeights: EngineWeightBytes;
}

/** A GGUF file's config (from the config.json it carries or, in a llama.cpp file, from its keys) and tensor totals. */
async function readGgufInfo(path: string): Promise<{ config: ModelConfig; rawConfig: Record<string, unknown>; stored: StoredWeights; gguf: GgufSummary }> {
  const source = await openFileSource(path);
  let file: GgufFile;
  try {
    file = await GgufFile.open(source);
  } catch (err) {
    // GgufFile.open does not own the source until it succeeds.
    await source.close();
    throw err;
  }
  try {
    const model = await readAnyGgufModel(file);
    const types: GgufSummary["types"] = {};
    let bytes = 0;
    for (const t of file.tensors) {
      const entry = (types[t.type] ??= { tensors: 0, bytes: 0 });
      entry.tensors++;
      entry.bytes += t.bytes;
      bytes += t.bytes;
    }
    const stored: StoredWeights = { bytes, dtype: Object.keys(types).join("+"), from: "checkpoint" };
    const engineWeights = engineWeightBytes(model.config, new GgufWeights(file, model.quantization), model.names);
    const gguf = { architecture: file.metadata.string("general.architecture"), fileBytes: file.source.size, version: file.version, alignment: file.alignment, dataOffset: file.dataOffset, types, quantization: model.quantization, engineWeights };
    return { config: model.config, rawConfig: model.configJson, stored, gguf };
  } finally {
    await file.close();
  }
}

interface StoredWeights {
  bytes: number;
  dtype: string;
  /** "checkpoint": summed from the tensor headers; "config": parameters x dtype size. */
  from: "checkpoint" | "config";
}

async function storedWeights(dir: string | null, rawConfig: Record<string, unknown>, params: number): Promise<StoredWeights> {
  if (dir !== null && (existsSync(join(dir, SINGLE_FILE)) || existsSync(join(dir, INDEX_FILE)))) {
    const ckpt = await openCheckpoint(dir);
    try {
      let bytes = 0;
      const dtypes = new Set<string>();
      for (const name of ckpt.names()) {
        const t = ckpt.info(name);
        bytes += t.end - t.begin;
        dtypes.add(t.dtype);
      }
      return { bytes, dtype: [...dtypes].join("+"), from: "checkpoint" };
    } finally {
      await ckpt.close();
    }
  }
  const dtype = storedDtype(rawConfig["torch_dtype"]);
  return { bytes: params * dtype.bytes, dtype: dtype.fromConfig ? dtype.name : `${dtype.name} (assumed)`, from: "config" };
}

function ropeText(r: ModelConfig["rope"]["full_attention"]): string {
  const s = r.scaling;
  const scaling =
    s === null ? "no scaling"
    : s.type === "llama3" ? `llama3 scaling x${s.factor}`
    : s.type === "linear" ? `linear scaling x${s.factor}`
    : `scaled by the file's per-frequency factors (${Math.min(...s.factors)} to ${Math.max(...s.factors)})`;
  return `theta ${r.theta}, ${scaling}`;
}

/** The RoPE line: one RoPE, or the global and local layers' (Gemma), and the NoPE layers. */
function ropeLine(c: ModelConfig): string {
  const { full_attention: global, sliding_attention: local } = c.rope;
  const same = JSON.stringify(global) === JSON.stringify(local);
  const nope = c.layers.flatMap((l, i) => (l.rope ? [] : [i]));
  return `${same ? ropeText(global) : `global ${ropeText(global)}; local ${ropeText(local)}`}, NoPE layers: ${nope.length === 0 ? "none" : nope.join(",")}`;
}

/** The engine line of a file computed with its own values: the weight bytes by layout. */
function engineLine(w: EngineWeightBytes, bytes: (n: number) => string, fmt: (n: number) => string): string {
  const layouts = Object.entries(w.layouts).map(([tag, l]) => `${tag} ${l.tensors} matri${l.tensors === 1 ? "x" : "ces"} ${fmt(l.bytes)}`);
  return `engine       ${bytes(w.total)}: each matrix in the layout of its ggml type (${layouts.join("; ")}) + f32 norms ${fmt(w.norms)}`;
}

/** --load: the model loaded into the wasm engine once, then freed; where its time to ready went. */
async function measureLoad(path: string, contextLength: number, threads: number | undefined): Promise<{ ms: number; threads: number; times: LoadTimes; line: string }> {
  const model = await loadModel(path, { backend: "wasm", contextLength, threads });
  try {
    const i = model.info;
    // The wasm backend always measures its load.
    return { ms: i.loadMs!, threads: i.threads, times: i.loadTimes!, line: describeLoad(i)! };
  } finally {
    await model.dispose();
  }
}

export async function run(argv: string[], out: (s: string) => void): Promise<void> {
  const v = parseFlags(argv, {
    model: { type: "string" },
    preset: { type: "string" },
    ctx: { type: "string" },
    json: { type: "boolean" },
    load: { type: "boolean" },
    threads: { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (v.model !== undefined && v.preset !== undefined) throw new UsageError("give --model or --preset, not both");
  if (v.load && v.preset !== undefined) throw new UsageError("--load needs weights, which a preset has none of: give --model");
  if (v.threads !== undefined && !v.load) throw new UsageError("--threads is for --load");
  let config: ModelConfig;
  let source: string;
  let dir: string | null = null;
  let rawConfig: Record<string, unknown>;
  let gguf: GgufSummary | null = null;
  let ggufStored: StoredWeights | null = null;
  // Without --model or --preset: the bundled model, as loadModel() loads it (its GGUF when built).
  const modelPath = v.preset === undefined ? resolve((v.model as string | undefined) ?? bundledModelPath()) : null;
  if (modelPath !== null && existsSync(modelPath) && statSync(modelPath).isFile()) {
    const read = await readGgufInfo(modelPath);
    ({ config, rawConfig, gguf } = read);
    ggufStored = read.stored;
    source = modelPath;
  } else if (v.preset !== undefined) {
    const p = PRESETS[v.preset as string];
    if (!p) throw new UsageError(`unknown preset "${String(v.preset)}" (known: ${Object.keys(PRESETS).join(", ")})`);
    config = p.config;
    rawConfig = p.json;
    source = `preset ${String(v.preset)}`;
  } else {
    dir = modelPath as string; // no preset, so the --model path or the bundled model's
    source = dir;
    config = loadConfig(dir);
    rawConfig = readJsonFile(join(dir, "config.json")) as Record<string, unknown>;
  }
  const ctx = intFlag(v, "ctx", Math.min(config.maxPositions, DEFAULT_CTX));
  if (ctx > config.maxPositions) {
    throw new UsageError(`--ctx ${ctx} exceeds max_position_embeddings ${config.maxPositions}`);
  }

  const params = parameterCount(config);
  const layerMap = config.layers.map((l) => (l.kind === "full_attention" ? "G" : "S")).join("");
  const globalLayers = config.layers.flatMap((l, i) => (l.kind === "full_attention" ? [i] : []));
  const stored = ggufStored ?? (await storedWeights(dir, rawConfig, params.total));
  const int4 = int4WeightBytes(config);
  const hybrid = kvCacheBytes(config, ctx, "hybrid");
  const allGlobal = kvCacheBytes(config, ctx, "all-global");
  const load = v.load ? await measureLoad(source, ctx, v.threads === undefined ? undefined : intFlag(v, "threads", 1)) : null;
  if (v.json) {
    // A llama.cpp file's matrices are not the int4 recipe's: its engine weights are gguf.engineWeights alone.
    const weights = gguf === null ? { int4Weights: int4 } : gguf.quantization === "file" ? { engineWeights: gguf.engineWeights } : { int4Weights: int4, engineWeights: gguf.engineWeights };
    const memory = { contextLength: ctx, storedWeights: stored, ...weights, kvCache: { hybrid, allGlobal } };
    const loaded = load ? { load: { ms: load.ms, threads: load.threads, times: load.times } } : {};
    out(JSON.stringify({ source, parameters: params, layerMap, globalLayers, slidingWindow: config.slidingWindow, defaulted: config.defaulted, config, memory, ...(gguf ? { gguf } : {}), ...loaded }));
    return;
  }
  const fmt = (n: number) => n.toLocaleString("en-US");
  const bytes = (n: number) => `${fmt(n)} B (${mib(n)} MiB)`;
  const slidingLayers = config.numLayers - globalLayers.length;
  const window = config.slidingWindow ?? 0;
  const hybridHow =
    slidingLayers === 0
      ? `every layer global: ${config.numLayers} x ${fmt(ctx)} positions`
      : `${globalLayers.length} global x ${fmt(ctx)} + ${slidingLayers} sliding x ${fmt(Math.min(ctx, window))} positions`;
  const ggufLines = gguf
    ? [
        `gguf file    ${bytes(gguf.fileBytes)}: GGUF v${gguf.version}, alignment ${gguf.alignment}, tensor data from byte ${fmt(gguf.dataOffset)}; general.architecture ${gguf.architecture}`,
        `tensors      ${Object.entries(gguf.types).map(([type, t]) => `${type} ${t.tensors} tensor${t.tensors === 1 ? "" : "s"}, ${bytes(t.bytes)}`).join("; ")}`,
        `computed     ${gguf.quantization === "recipe" ? "with the int4 recipe the file's Q4_0 blocks hold, times int8 activations per token" : "with the values the file holds, each ggml type in a layout that holds it exactly, times int8 activations per block of 32"}`,
      ]
    : [];
  out(
    [
      `model        ${(v.model as string | undefined) ?? source}`, // as given; --json has the full path
      `architecture ${config.architecture} (RoPE on ${config.ropeStyle === "rotate_half" ? "halves, as Hugging Face stores q and k" : config.architecture === "llama" ? "adjacent pairs, as llama.cpp's converter stores q and k" : "adjacent pairs, as Llama-4 stores q and k"})`,
      `parameters   ${fmt(params.total)} (embedding ${fmt(params.embedding)}, ${config.numLayers} layers x ${fmt(params.perLayer)}, final norm ${fmt(params.finalNorm)}${params.lmHead ? `, lm_head ${fmt(params.lmHead)}` : ", tied lm_head"})`,
      `shape        hidden ${config.hiddenSize}, ffn ${config.intermediateSize}, heads ${config.numHeads} (kv ${config.numKvHeads}) x ${config.headDim}, vocab ${fmt(config.vocabSize)}, positions ${fmt(config.maxPositions)}`,
      `layers       ${layerMap}  (G global: ${globalLayers.join(",")}; S sliding, window ${config.slidingWindow ?? "-"})`,
      `rope         ${ropeLine(config)}`,
      `norms        rms eps ${config.rmsNormEps}, ${config.norms === "sandwich" ? "before and after attention and MLP" : "before attention and MLP"}, qk-norm ${config.qkNorm === "none" ? "off" : config.qkNorm === "after_rope" ? "on (after RoPE)" : "per head with weights, before RoPE"}`,
      `blocks       MLP ${config.activation === "silu" ? "SwiGLU" : "GeGLU (tanh GELU)"}, embedding x ${config.embedScale}, scores x ${config.queryScale}`,
      `defaults     ${config.defaulted.length ? config.defaulted.join(", ") : `none (every value came from ${gguf !== null && gguf.architecture !== "mobilellmpro" ? "the file's keys" : "config.json"})`}`,
      `stored       ${bytes(stored.bytes)}: ${stored.from === "checkpoint" ? `sum of the checkpoint's tensors (${stored.dtype})` : `${fmt(params.total)} parameters x ${stored.bytes / params.total} B (${stored.dtype}), from the config`}`,
      ...(gguf?.quantization === "file" ? [engineLine(gguf.engineWeights, bytes, fmt)] : [
      `int4         ${bytes(int4.recipe)}: int4 values ${fmt(int4.values)} + f16 scales ${fmt(int4.scales)} (one per row and ${GROUP} inputs; every linear layer and the ${config.tieWordEmbeddings ? "tied embedding/output table, counted once" : "embedding and lm_head tables"}) + f32 norms ${fmt(int4.norms)}; with f32 scales (the technical report's count) ${bytes(int4.recipeF32Scales)}`,
      `engine       ${bytes(int4.total)}: the int4 weights above + f32 row sums ${fmt(int4.rowSums)} (the kernels take the activation zero point out with them)`,
      ]),
      `kv cache     ${fmt(ctx)} tokens, int8 K+V: ${bytes(hybrid.data)} hybrid (${hybridHow}) vs ${bytes(allGlobal.data)} all-global`,
      `kv scales    f32 per (token, KV head) for K and V, on top: ${bytes(hybrid.scales)} hybrid vs ${bytes(allGlobal.scales)} all-global`,
      ...ggufLines,
      ...(load ? [`load         ${load.line}`] : []),
    ].join("\n"),
  );
}
