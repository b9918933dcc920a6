// The model's Web Worker: it owns the Model and answers the page's load / generate / chat / stop / dispose
// messages (protocol.ts), streaming pieces with live stats. The page never blocks: loading, quantizing and
// every forward pass run here (and in this worker's own thread workers when cross-origin isolated).
//
// Start it from a page with
//   new Worker(new URL("../src/browser/worker.ts", import.meta.url), { type: "module" })   (path from demo/)
// and talk to it through ModelClient (client.ts).
import "./set-immediate.js";
import { kvCacheBytes } from "../model/memory.js";
import { parameterCount } from "../model/config.js";
import type { Model } from "../session/model.js";
import type { Generation } from "../generate/generate.js";
import { loadModelInBrowser } from "./load.js";
import { folderFromFiles, ggufFromFiles } from "./folders.js";
import { ModelCache, type CacheOrigin } from "./model-cache.js";
import { canUseThreads } from "./web-worker-spawn.js";
import { createOpenAI, type LocalOpenAI } from "../serve/openai.js";
import { OpenAIError } from "../serve/errors.js";
import { readState, writeState } from "./state-store.js";
import type { Reply, Request } from "./protocol.js";

interface Scope {
  postMessage(m: Reply): void;
  onmessage: ((e: MessageEvent<Request>) => void) | null;
}
const scope = globalThis as unknown as Scope;
const post = (m: Reply) => scope.postMessage(m);

let model: Model | null = null;
/** The latest load (or dispose) in progress; generations wait for it. Never rejects. */
let loading: Promise<unknown> = Promise.resolve();
/**
 * Numbers load and dispose requests. The latest request wins: a load whose number is no longer the latest
 * stops at its next tensor (or, if it already finished, disposes what it built) and answers with an error,
 * so a superseded model never stays behind holding its Wasm memory and threads.
 */
let latestLoad = 0;
let running: { id: number; abort: AbortController } | null = null;
/**
 * OpenAI's API over the model, made at the first OpenAI request; it holds the model while it exists, so
 * a generate, chat or state request closes it first (once its requests have ended).
 */
let openai: LocalOpenAI | null = null;
/** OpenAI requests in progress, by id, so a stop message can abort one. */
const openaiRequests = new Map<number, AbortController>();

/** Gives the model back from the OpenAI layer (after its running requests end). */
async function closeOpenAI(): Promise<void> {
  const api = openai;
  openai = null;
  await api?.close();
}
/** Generations stopped before they started running (a stop can overtake a generate still waiting for a load). */
const stopBeforeStart = new Set<number>();

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

class Superseded extends Error {
  constructor() {
    super("load cancelled: a later load or dispose request replaced it");
  }
}

/**
 * Runs after the previous load has ended (one load at a time, so two models are never in memory at once;
 * a superseded load ends at its next tensor).
 */
async function load(id: number, req: Extract<Request, { type: "load" }>, ticket: number, previous: Promise<unknown>): Promise<void> {
  await previous;
  const superseded = () => ticket !== latestLoad;
  if (superseded()) throw new Superseded();
  running?.abort.abort();
  for (const a of openaiRequests.values()) a.abort();
  await closeOpenAI();
  const old = model;
  model = null;
  await old?.dispose();
  const t0 = performance.now();
  const { cache: cached, ...options } = req.options;
  const origins = new Set<CacheOrigin>();
  const cacheWarnings: string[] = [];
  const cache = cached
    ? new ModelCache({ directory: cached === true ? undefined : cached.directory, onOpen: (_url, from) => origins.add(from), onWarning: (w) => cacheWarnings.push(w) })
    : undefined;
  // A URL is a served folder or, ending in .gguf, one GGUF file; picked files are a folder or one .gguf.
  const source = "url" in req.source ? req.source.url : (ggufFromFiles(req.source.files) ?? folderFromFiles(req.source.files, req.source.label));
  const m = await loadModelInBrowser(source, {
    ...options,
    cache,
    onProgress: (progress) => {
      // Throwing here abandons the engine being built at its next read, before it starts any thread.
      if (superseded()) throw new Superseded();
      post({ type: "progress", id, progress });
    },
  });
  if (superseded()) {
    await m.dispose();
    throw new Superseded();
  }
  model = m;
  const info = m.info;
  post({
    type: "loaded",
    id,
    model: {
      name: m.dir,
      parameters: parameterCount(m.config).total,
      backend: info.backend,
      simd: info.simd,
      threads: info.threads,
      crossOriginIsolated: canUseThreads(),
      contextLength: info.contextLength,
      kvCacheBytes: info.kvCacheBytes,
      vocabSize: m.config.vocabSize,
      loadMs: performance.now() - t0,
      loadTimes: info.loadTimes,
      source: "files" in req.source ? "files" : cache && !origins.has("network") ? "cache" : "network",
      cacheWarnings,
    },
  });
}

async function stream(id: number, start: (m: Model, signal: AbortSignal) => Generation): Promise<void> {
  // A load requested while this one waited replaces `loading`: wait for the latest.
  for (let l = loading; ; l = loading) {
    await l;
    if (l === loading) break;
  }
  if (model === null) throw new Error("no model is loaded");
  if (running !== null) throw new Error("a generation is still running: stop it first");
  await closeOpenAI();
  const abort = new AbortController();
  if (stopBeforeStart.delete(id)) abort.abort();
  running = { id, abort };
  try {
    const m = model;
    const gen = start(m, abort.signal);
    let generated = 0;
    let tFirst = 0;
    for await (const piece of gen) {
      generated++;
      const now = performance.now();
      if (generated === 1) tFirst = now;
      const positions = Math.min(gen.promptTokens + generated, m.info.contextLength);
      const kv = kvCacheBytes(m.config, Math.max(1, positions));
      post({
        type: "piece",
        id,
        token: piece.token,
        text: piece.text,
        stats: {
          generated,
          tokensPerSecond: generated > 1 ? ((generated - 1) * 1000) / (now - tFirst) : 0,
          kvCacheBytes: kv.data + kv.scales,
          positions,
        },
      });
    }
    post({ type: "done", id, result: await gen.result });
  } finally {
    running = null;
  }
}

/** The loaded model once no load is pending. */
async function loadedModel(): Promise<Model> {
  for (let l = loading; ; l = loading) {
    await l;
    if (l === loading) break;
  }
  if (model === null) throw new Error("no model is loaded");
  return model;
}

/** An OpenAI request: the response, or "chunk" replies then "end" for a stream. */
async function openaiRequest(id: number, req: Extract<Request, { type: "openai" }>): Promise<void> {
  const m = await loadedModel();
  if (running !== null) throw new Error("a generation is still running: stop it first");
  openai ??= createOpenAI(m);
  const abort = new AbortController();
  if (stopBeforeStart.delete(id)) abort.abort();
  openaiRequests.set(id, abort);
  try {
    const create = req.route === "chat" ? openai.chat.completions.create : openai.completions.create;
    const result = (await create(req.params, { signal: abort.signal })) as object;
    if (!(Symbol.asyncIterator in result)) return post({ type: "response", id, response: result });
    for await (const chunk of result as AsyncIterable<unknown>) post({ type: "chunk", id, chunk });
    post({ type: "end", id });
  } finally {
    openaiRequests.delete(id);
  }
}

/** Saves the model's sequence to OPFS, or restores it from there. */
async function stateRequest(id: number, req: Extract<Request, { type: "save-state" | "restore-state" }>): Promise<void> {
  const m = await loadedModel();
  if (running !== null) throw new Error("a generation is still running: stop it first");
  await closeOpenAI();
  if (req.type === "save-state") {
    const bytes = m.saveState();
    await writeState(req.name, bytes);
    post({ type: "state", id, tokens: m.cachedTokens.length, bytes: bytes.length });
  } else {
    const bytes = await readState(req.name);
    post({ type: "state", id, tokens: m.restoreState(bytes), bytes: bytes.length });
  }
}

scope.onmessage = (e: MessageEvent<Request>) => {
  const req = e.data;
  const id = req.id;
  const fail = (err: unknown) => post({ type: "error", id, message: message(err), ...(err instanceof OpenAIError ? { status: err.status } : {}) });
  switch (req.type) {
    case "load": {
      const ticket = ++latestLoad;
      loading = load(id, req, ticket, loading).catch(fail);
      break;
    }
    case "generate":
      stream(id, (m, signal) => m.generate(req.prompt, { ...req.options, signal })).catch(fail);
      break;
    case "chat":
      stream(id, (m, signal) => m.chat(req.messages, { ...req.options, signal })).catch(fail);
      break;
    case "openai":
      openaiRequest(id, req).catch(fail);
      break;
    case "save-state":
    case "restore-state":
      stateRequest(id, req).catch(fail);
      break;
    case "stop":
      if (req.target !== undefined && openaiRequests.has(req.target)) openaiRequests.get(req.target)?.abort();
      else if (running !== null && (req.target === undefined || req.target === running.id)) running.abort.abort();
      else if (req.target !== undefined) stopBeforeStart.add(req.target);
      post({ type: "stopped", id });
      break;
    case "dispose": {
      running?.abort.abort();
      latestLoad++; // a load still running is cancelled
      for (const a of openaiRequests.values()) a.abort();
      const previous = loading;
      loading = (async () => {
        await previous;
        await closeOpenAI();
        const m = model;
        model = null;
        await m?.dispose();
        post({ type: "disposed", id });
      })().catch(fail);
      break;
    }
  }
};
