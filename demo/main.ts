// The demo page: a prompt box, sampling controls, streamed output with live tokens/s and KV cache bytes,
// a stop button and the load progress bar. The model runs in a Web Worker (src/browser/worker.ts) through
// ModelClient, so the page stays responsive while weights are quantized and tokens are generated.
import { ModelCache, ModelClient, describeLoadProgress, filesFromDrop, type LoadProgress, type LoadedModel, type ModelSource, type PickedFile, type PieceStats, type WorkerGenerateOptions } from "../src/browser/index.js";

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const ui = {
  name: $<HTMLSpanElement>("model-name"),
  status: $<HTMLSpanElement>("model-status"),
  progress: $<HTMLProgressElement>("load-progress"),
  progressNote: $<HTMLSpanElement>("load-note"),
  source: $<HTMLSpanElement>("model-source"),
  cacheInfo: $<HTMLSpanElement>("cache-info"),
  clearCache: $<HTMLButtonElement>("clear-cache"),
  threadsNote: $<HTMLSpanElement>("threads-note"),
  simdNote: $<HTMLSpanElement>("simd-note"),
  error: $<HTMLDivElement>("error"),
  drop: $<HTMLDivElement>("drop-zone"),
  folder: $<HTMLInputElement>("folder-input"),
  gguf: $<HTMLInputElement>("gguf-input"),
  urlForm: $<HTMLFormElement>("url-form"),
  url: $<HTMLInputElement>("url-input"),
  threads: $<HTMLSelectElement>("threads-select"),
  prompt: $<HTMLTextAreaElement>("prompt"),
  generate: $<HTMLButtonElement>("generate"),
  stop: $<HTMLButtonElement>("stop"),
  outPrompt: $<HTMLSpanElement>("out-prompt"),
  outText: $<HTMLSpanElement>("out-text"),
  output: $<HTMLPreElement>("output"),
  tokens: $<HTMLSpanElement>("stat-tokens"),
  speed: $<HTMLSpanElement>("stat-speed"),
  kv: $<HTMLSpanElement>("stat-kv"),
  ttft: $<HTMLSpanElement>("stat-ttft"),
  stopReason: $<HTMLSpanElement>("stat-stop"),
};

const isolated = globalThis.crossOriginIsolated === true;
const cores = navigator.hardwareConcurrency || 1;
/** The bundled model as one GGUF file (the demo also serves its folder, ./models/shakespeare-tiny/). */
const BUNDLED = new URL("./models/shakespeare-tiny.gguf", location.href).href;

const client = new ModelClient(new Worker(new URL("../src/browser/worker.ts", import.meta.url), { type: "module", name: "mobilellm-model" }));
/** The page's view of the worker's model cache (the same OPFS directory): what is kept, and clearing it. */
const cache = new ModelCache();
let model: LoadedModel | null = null;
/** ?model=<url>: a .gguf file or a folder base to load instead of the bundled model. */
const requested = new URLSearchParams(location.search).get("model");
/** What was loaded last (the threads choice reloads it). */
let last: { source: ModelSource; label: string } =
  requested !== null ? { source: { url: new URL(requested, location.href).href }, label: requested } : { source: { url: BUNDLED }, label: "models/shakespeare-tiny.gguf" };
/** Numbers the loads: a load that a later one replaced leaves the page alone. */
let loadTicket = 0;
let generating = false;

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1 << 20) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / (1 << 20)).toFixed(1)} MiB`;
}

/**
 * DOM updates at most once per animation frame: progress reports and streamed pieces only record what to
 * show, and one requestAnimationFrame callback shows the latest. Layout and paint per token would take
 * CPU time from the engine's threads, which run on the same cores.
 */
const frame = {
  progress: null as LoadProgress | null,
  text: "",
  stats: null as PieceStats | null,
  scheduled: false,
  show(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    requestAnimationFrame(() => this.flush());
  },
  /** Shows what is pending now (also called before a final result replaces it). */
  flush(): void {
    this.scheduled = false;
    if (this.progress !== null) showProgress(this.progress);
    if (this.text !== "") ui.outText.append(this.text);
    if (this.stats !== null) showStats(this.stats);
    if (this.text !== "") ui.output.scrollTop = ui.output.scrollHeight;
    this.progress = null;
    this.text = "";
    this.stats = null;
  },
  /** Drops what is pending (a new load or generation starts). */
  reset(): void {
    this.progress = null;
    this.text = "";
    this.stats = null;
  },
};

function showProgress(p: LoadProgress): void {
  // The bar covers download and prepare in turn; "threads" is a short last step at full bar.
  ui.progress.value = p.totalBytes > 0 ? p.bytes / p.totalBytes : 0;
  ui.progress.dataset.phase = p.phase;
  ui.progressNote.textContent = describeLoadProgress(p);
  setStatus("loading", p.phase === "download" ? "downloading" : p.phase === "prepare" ? "preparing" : p.phase === "threads" ? "starting threads" : "ready");
}

let kvAllocated: number | null = null;

function showStats(s: PieceStats): void {
  ui.tokens.textContent = String(s.generated);
  if (s.tokensPerSecond > 0) ui.speed.textContent = s.tokensPerSecond.toFixed(1);
  ui.kv.textContent = `${bytes(s.kvCacheBytes)}${kvAllocated === null ? "" : ` of ${bytes(kvAllocated)}`} (${s.positions} positions)`;
}

function setStatus(state: "idle" | "loading" | "ready" | "busy" | "error", text: string): void {
  ui.status.dataset.state = state;
  ui.status.textContent = text;
}

function showError(message: string | null): void {
  ui.error.hidden = message === null;
  ui.error.textContent = message ?? "";
}

function refreshButtons(): void {
  ui.generate.disabled = model === null || generating;
  ui.stop.disabled = !generating;
}

function requestedThreads(): number | undefined {
  if (!isolated) return 1;
  return ui.threads.value === "auto" ? undefined : Number(ui.threads.value);
}

/** The load's state for people and for automation: body[data-state] loading | ready | error, body[data-source]. */
function setLoadState(state: "loading" | "ready" | "error", source?: LoadedModel["source"]): void {
  document.body.dataset.state = state;
  if (source === undefined) delete document.body.dataset.source;
  else document.body.dataset.source = source;
  ui.source.textContent = source === undefined ? "" : source === "cache" ? "from the cache" : source === "network" ? "from the network" : "from your files";
  ui.source.dataset.source = source ?? "";
}

/** Lists what the cache holds and the origin's storage use (navigator.storage.estimate()). */
async function showCache(): Promise<void> {
  try {
    const [entries, { usage, quota }] = await Promise.all([cache.list(), cache.estimate()]);
    const held = entries.reduce((n, e) => n + e.bytes, 0);
    ui.cacheInfo.textContent = `cache: ${entries.length} file${entries.length === 1 ? "" : "s"}, ${bytes(held)}; this site uses ${bytes(usage)} of ${bytes(quota)}`;
    ui.cacheInfo.dataset.entries = String(entries.length);
  } catch (err) {
    ui.cacheInfo.textContent = `cache unavailable: ${(err as Error).message}`;
    ui.cacheInfo.dataset.entries = "0";
  }
}

async function load(source: ModelSource, label: string): Promise<void> {
  last = { source, label };
  const ticket = ++loadTicket;
  setLoadState("loading");
  if (generating) client.stop();
  model = null;
  refreshButtons();
  showError(null);
  ui.name.textContent = label;
  ui.progress.value = 0;
  ui.progressNote.textContent = "";
  frame.reset();
  setStatus("loading", "loading");
  try {
    // A URL's files (and the kernels, the package's own build/*.wasm) are kept across visits in the Origin
    // Private File System.
    const loaded = await client.load(source, { threads: requestedThreads(), cache: "url" in source }, (p) => {
      if (ticket !== loadTicket) return;
      // Every report, for scripts driving the page (the bar shows only the latest per frame).
      document.dispatchEvent(new CustomEvent("mobilellm-progress", { detail: p }));
      frame.progress = p;
      frame.show();
    });
    if (ticket !== loadTicket) return;
    model = loaded;
    frame.reset();
    ui.progress.value = 1;
    ui.name.textContent = `${model.name.split("/").filter(Boolean).pop()} · ${(model.parameters / 1e6).toFixed(1)}M parameters`;
    ui.name.title = model.name;
    ui.threadsNote.textContent = !isolated
      ? "1 thread: the page is not cross-origin isolated (no COOP/COEP headers), so there is no SharedArrayBuffer for worker threads"
      : model.threads === 1
        ? `1 thread, as chosen: the page is cross-origin isolated, so up to ${cores} could run`
        : `${model.threads} threads: the page is cross-origin isolated (COOP/COEP), so the engine shares its Wasm memory with ${model.threads - 1} worker thread${model.threads === 2 ? "" : "s"} (${cores} cores)`;
    ui.threadsNote.dataset.threads = String(model.threads);
    ui.simdNote.textContent = model.simd ? `${model.simd.variant === "relaxed" ? "relaxed SIMD" : "SIMD128"} (${model.simd.reason})` : model.backend;
    ui.kv.textContent = model.kvCacheBytes === null ? "–" : `0 B of ${bytes(model.kvCacheBytes)}`;
    setStatus("ready", `ready in ${(model.loadMs / 1000).toFixed(1)} s`);
    ui.progressNote.textContent = model.cacheWarnings.join("; ");
    setLoadState("ready", model.source);
    void showCache();
  } catch (err) {
    if (ticket !== loadTicket) return;
    model = null;
    setLoadState("error");
    frame.reset();
    ui.progress.value = 0;
    setStatus("error", "not loaded");
    showError(`Could not load ${label}: ${(err as Error).message}`);
  }
  refreshButtons();
}

function num(id: string, parse: (s: string) => number = Number): number | undefined {
  const v = ($<HTMLInputElement>(id)).value.trim();
  return v === "" ? undefined : parse(v);
}

function sampling(): WorkerGenerateOptions {
  return {
    temperature: num("temperature"),
    topK: num("top-k", (s) => Math.trunc(Number(s))),
    topP: num("top-p"),
    minP: num("min-p"),
    repetitionPenalty: num("repetition-penalty"),
    seed: num("seed", (s) => Math.trunc(Number(s))),
    maxNewTokens: num("max-tokens", (s) => Math.trunc(Number(s))),
  };
}

async function generate(): Promise<void> {
  if (model === null || generating) return;
  const prompt = ui.prompt.value;
  generating = true;
  refreshButtons();
  showError(null);
  ui.outPrompt.textContent = prompt;
  ui.outText.textContent = "";
  ui.tokens.textContent = "0";
  ui.speed.textContent = "–";
  ui.ttft.textContent = "–";
  ui.stopReason.textContent = "–";
  ui.output.dataset.state = "running";
  setStatus("busy", "generating");
  kvAllocated = model.kvCacheBytes;
  frame.reset();
  try {
    const result = await client.generate(prompt, sampling(), (piece) => {
      frame.text += piece.text;
      frame.stats = piece.stats;
      frame.show();
    });
    frame.flush();
    // The final text is authoritative (a stop string may have been held back and dropped).
    ui.outText.textContent = result.text;
    const s = result.stats;
    ui.tokens.textContent = String(s.generatedTokens);
    ui.speed.textContent = s.decodeTokensPerSecond > 0 ? s.decodeTokensPerSecond.toFixed(1) : "–";
    ui.ttft.textContent = `${s.timeToFirstTokenMs.toFixed(0)} ms`;
    ui.stopReason.textContent = result.stopReason === "aborted" ? "stop button" : result.stopReason === "length" ? "max tokens" : result.stopReason;
    ui.output.dataset.state = result.stopReason;
    setStatus("ready", result.stopReason === "aborted" ? "stopped" : "ready");
  } catch (err) {
    frame.flush();
    ui.output.dataset.state = "error";
    setStatus("error", "failed");
    showError((err as Error).message);
  } finally {
    generating = false;
    refreshButtons();
  }
}

ui.generate.addEventListener("click", () => void generate());
ui.stop.addEventListener("click", () => client.stop());
ui.prompt.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) void generate();
});
ui.urlForm.addEventListener("submit", (e) => {
  e.preventDefault();
  const url = new URL(ui.url.value, location.href).href;
  void load({ url }, url);
});
ui.folder.addEventListener("change", () => {
  const list = ui.folder.files;
  if (!list || list.length === 0) return;
  const files: PickedFile[] = Array.from({ length: list.length }, (_, i) => ({ path: list[i].webkitRelativePath || list[i].name, file: list[i] }));
  const top = files[0].path.split("/")[0];
  ui.folder.value = "";
  void load({ files, label: top }, top);
});
// One .gguf file (mobilellm convert's) is a whole model: the worker loads it as a GGUF.
ui.gguf.addEventListener("change", () => {
  const file = ui.gguf.files?.[0];
  if (!file) return;
  ui.gguf.value = "";
  void load({ files: [{ path: file.name, file }], label: file.name }, file.name);
});
ui.drop.addEventListener("dragover", (e) => {
  e.preventDefault();
  ui.drop.classList.add("over");
});
ui.drop.addEventListener("dragleave", () => ui.drop.classList.remove("over"));
ui.drop.addEventListener("drop", (e) => {
  e.preventDefault();
  ui.drop.classList.remove("over");
  if (!e.dataTransfer) return;
  void filesFromDrop(e.dataTransfer).then((files) => {
    if (files.length === 0) return showError("Nothing was dropped: drop a model folder or a .gguf file.");
    const top = files[0].path.includes("/") ? files[0].path.split("/")[0] : "the dropped files";
    return load({ files, label: top }, top);
  });
});
ui.threads.addEventListener("change", () => void load(last.source, last.label));
ui.clearCache.addEventListener("click", () => {
  ui.clearCache.disabled = true;
  void cache
    .clear()
    .catch((err: Error) => showError(err.message))
    .then(showCache)
    .finally(() => (ui.clearCache.disabled = false));
});
if (!isolated) {
  ui.threads.disabled = true;
  ui.threads.title = "threads need a cross-origin isolated page (COOP/COEP headers)";
}
ui.threadsNote.textContent = isolated ? "cross-origin isolated: threads available" : "not cross-origin isolated: 1 thread";

if (requested !== null) ui.url.value = requested;
void showCache();
void load(last.source, last.label);
