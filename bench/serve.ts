// The serving targets of issue 26, printed from one run (never asserted):
//
//  1. Continuous batching: 4 concurrent greedy streams against 1, on the full-size synthetic MobileLLM-Pro
//     checkpoint (bench/peer-inputs.ts) at --threads threads: aggregate decode tokens/s and the ratio.
//     The peer in the same run: node-llama-cpp with a 4-sequence context on the same weights' GGUF (every
//     layer global there: llama.cpp has no MobileLLM-Pro support), 1 and 4 sequences decoding at once.
//  2. Prefix reuse: time to first token of a prompt sharing --prefix tokens with a cached sequence, against
//     the same prompt cold.
//  3. KV state: save and restore of a --state-tokens state of the full-size model, and the file's size
//     against the KV bytes it holds (the cache is filled with random entries: the cost does not depend on
//     what the cache holds).
//  4. Load: --clients clients x --requests requests against the HTTP server on the bundled model, with
//     random aborts, disconnects and malformed bodies: crashes (none may happen), sequences left busy, RSS
//     before and after, p50 / p99 latency of the completed requests.
//
//   npm run bench:serve
//   npm run bench:serve -- --threads 2 --tokens 64 --prefix 1000 --state-tokens 4096 --clients 16 --requests 50
//   npm run bench:serve -- --only load          # or batching, prefix, state
//
// Environment: BENCH_MODEL_DIR and BENCH_GGUF (bench/peer-inputs.ts), BENCH_NLC_DIR (bench/node-llama-cpp.ts).
import { loadavg } from "node:os";
import { request } from "node:http";
import { createOpenAI, loadModel, startHttpServer, type Model } from "../src/api.js";
import type { WasmEngine } from "../src/model/engine.js";
import { kvCacheBytes } from "../src/model/memory.js";
import { Scheduler } from "../src/serve/scheduler.js";
import { arg, count } from "./args.js";
import { cpuLlama, importNodeLlamaCpp, installNodeLlamaCpp, NLC_DEFAULT_VERSION, type NlcContext } from "./node-llama-cpp.js";
import { peerGguf, syntheticModel, type Cleanups } from "./peer-inputs.js";

const THREADS = count("threads", 2);
const TOKENS = count("tokens", 64);
const STREAMS = count("streams", 4);
const PREFIX = count("prefix", 1000);
const STATE_TOKENS = count("state-tokens", 4096);
const CLIENTS = count("clients", 16);
const REQUESTS = count("requests", 50);
const ONLY = arg("only");
const CONTEXT = 4096;
const run = (part: string) => ONLY === undefined || ONLY === part;

const load = () => loadavg().map((x) => x.toFixed(2)).join(" ");
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];

/** Deterministic prompt ids inside the vocabulary. */
function ids(n: number, seed: number, vocab: number): number[] {
  let s = seed >>> 0;
  return Array.from({ length: n }, () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 8) % Math.min(vocab, 100_000));
}

/** `streams` greedy generations of `tokens` tokens at once through the scheduler: aggregate decode tokens/s. */
async function ourDecode(model: Model, scheduler: Scheduler, streams: number, tokens: number): Promise<number> {
  const runs = await Promise.all(
    Array.from({ length: streams }, async (_, i) => {
      const prompt = ids(16, 100 + i, model.config.vocabSize);
      const [slot] = await scheduler.acquire(prompt);
      slot.forget();
      const g = model.generateOn(slot, prompt, { temperature: 0, maxNewTokens: tokens }, () => scheduler.releaseSlot(slot));
      let first = 0;
      let n = 0;
      for await (const _ of g) if (++n === 1) first = performance.now();
      await g.result;
      return { first, end: performance.now(), n };
    }),
  );
  // Tokens after each stream's first, over the span from the first first token to the last end.
  const steps = runs.reduce((s, r) => s + r.n - 1, 0);
  return (steps / (Math.max(...runs.map((r) => r.end)) - Math.min(...runs.map((r) => r.first)))) * 1000;
}

/** node-llama-cpp: `streams` sequences of one context generating `tokens` greedy tokens each, at once. */
async function peerDecode(ctx: NlcContext, streams: number, tokens: number, vocab: number): Promise<number> {
  type Seq = ReturnType<NlcContext["getSequence"]> & { evaluate(t: number[], o: { temperature: number }): AsyncGenerator<number>; dispose(): void };
  const seqs = Array.from({ length: streams }, () => ctx.getSequence() as Seq);
  try {
    const runs = await Promise.all(
      seqs.map(async (seq, i) => {
        let first = 0;
        let n = 0;
        for await (const _ of seq.evaluate(ids(16, 100 + i, vocab), { temperature: 0 })) {
          if (++n === 1) first = performance.now();
          if (n >= tokens) break;
        }
        return { first, end: performance.now(), n };
      }),
    );
    const steps = runs.reduce((s, r) => s + r.n - 1, 0);
    return (steps / (Math.max(...runs.map((r) => r.end)) - Math.min(...runs.map((r) => r.first)))) * 1000;
  } finally {
    for (const s of seqs) s.dispose();
  }
}

async function batching(model: Model, dir: string, cleanups: Cleanups): Promise<void> {
  const scheduler = new Scheduler(model);
  try {
    await ourDecode(model, scheduler, STREAMS, 8); // warm-up: JIT, the thread pool's choice
    const one: number[] = [];
    const many: number[] = [];
    for (let round = 0; round < 3; round++) {
      one.push(await ourDecode(model, scheduler, 1, TOKENS));
      many.push(await ourDecode(model, scheduler, STREAMS, TOKENS));
    }
    console.log(`ours       1 stream ${median(one).toFixed(1)} tok/s, ${STREAMS} streams ${median(many).toFixed(1)} tok/s aggregate: ${(median(many) / median(one)).toFixed(2)}x (median of 3 rounds; load ${load()})`);
  } finally {
    await scheduler.close();
  }
  if (arg("skip-peer") !== undefined) return;
  const gguf = await peerGguf(dir, cleanups);
  const nlc = await importNodeLlamaCpp(installNodeLlamaCpp(arg("nlc-version") ?? NLC_DEFAULT_VERSION, cleanups));
  const llama = await cpuLlama(nlc);
  const m = await llama.loadModel({ modelPath: gguf, gpuLayers: 0, useMmap: true });
  const ctx = await m.createContext({ contextSize: 1024 * STREAMS, batchSize: 512, threads: THREADS, sequences: STREAMS, flashAttention: "auto" });
  try {
    await peerDecode(ctx, STREAMS, 8, model.config.vocabSize);
    const one: number[] = [];
    const many: number[] = [];
    for (let round = 0; round < 3; round++) {
      one.push(await peerDecode(ctx, 1, TOKENS, model.config.vocabSize));
      many.push(await peerDecode(ctx, STREAMS, TOKENS, model.config.vocabSize));
    }
    console.log(`llama.cpp  1 stream ${median(one).toFixed(1)} tok/s, ${STREAMS} streams ${median(many).toFixed(1)} tok/s aggregate: ${(median(many) / median(one)).toFixed(2)}x (node-llama-cpp, ${STREAMS}-sequence context, all layers global; load ${load()})`);
  } finally {
    await ctx.dispose();
    await m.dispose();
    await llama.dispose();
  }
}

async function prefix(model: Model): Promise<void> {
  const scheduler = new Scheduler(model);
  try {
    const shared = ids(PREFIX, 7, model.config.vocabSize);
    const ttft = async (prompt: number[], fresh: boolean) => {
      const [slot] = await scheduler.acquire(prompt);
      if (fresh) slot.forget();
      const t0 = performance.now();
      const g = model.generateOn(slot, prompt, { temperature: 0, maxNewTokens: 1 }, () => scheduler.releaseSlot(slot));
      const r = await g.result;
      return { ms: performance.now() - t0, reused: r.stats.reusedTokens };
    };
    const cold = await ttft([...shared, ...ids(10, 8, model.config.vocabSize)], true);
    const warm = await ttft([...shared, ...ids(10, 9, model.config.vocabSize)], false);
    console.log(`prefix     cold ${cold.ms.toFixed(0)} ms to the first token, ${warm.reused} of ${PREFIX + 10} tokens reused: ${warm.ms.toFixed(0)} ms (${((100 * warm.ms) / cold.ms).toFixed(1)}% of cold; load ${load()})`);
  } finally {
    await scheduler.close();
  }
}

function state(model: Model): void {
  const engine = model.backend as WasmEngine;
  const k = engine.kernels;
  // Random int8 entries and small scales in every slot of sequence 0 (their cost, not their content, counts).
  let seed = 12345;
  const next = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 24) - 128;
  for (const layer of engine.caches[0].layers) {
    for (const [data, scales] of [[layer.kData, layer.kScales], [layer.vData, layer.vScales]] as const) {
      const n = layer.kvHeads * layer.slots;
      for (let i = 0; i < n * layer.headDim; i++) k.i8[data + i] = next();
      k.f32.fill(0.01, scales >> 2, (scales >> 2) + n);
    }
  }
  const tokens = ids(STATE_TOKENS, 3, model.config.vocabSize);
  const save: number[] = [];
  const restore: number[] = [];
  let size = 0;
  for (let i = 0; i < 5; i++) {
    let t0 = performance.now();
    const bytes = engine.saveState(0, tokens);
    save.push(performance.now() - t0);
    size = bytes.length;
    t0 = performance.now();
    engine.restoreState(1 % engine.sequences, bytes);
    restore.push(performance.now() - t0);
  }
  const kv = kvCacheBytes(model.config, STATE_TOKENS);
  const kvBytes = kv.data + kv.scales;
  console.log(`state      ${STATE_TOKENS} tokens: save ${median(save).toFixed(0)} ms, restore ${median(restore).toFixed(0)} ms (median of 5), file ${(size / 2 ** 20).toFixed(1)} MiB = ${((100 * size) / kvBytes).toFixed(1)}% of the ${(kvBytes / 2 ** 20).toFixed(1)} MiB of KV it holds (load ${load()})`);
}

/** One request of the load test: a completion (sometimes streamed, aborted or cut), or a malformed body. */
function loadRequest(url: string, rnd: () => number): Promise<{ ms: number; kind: string; status: number }> {
  const t0 = performance.now();
  const r = rnd();
  const kind = r < 0.1 ? "malformed" : r < 0.2 ? "disconnect" : r < 0.3 ? "abort" : r < 0.6 ? "stream" : "plain";
  const body =
    kind === "malformed"
      ? ['{"model":', "[1,2]", '{"model":"m","prompt":7}', '{"model":"m","prompt":"x","max_tokens":-1}'][Math.floor(rnd() * 4)]
      : JSON.stringify({ model: "m", prompt: "ROMEO:", max_tokens: 8 + Math.floor(rnd() * 24), temperature: 0.8, stream: kind !== "plain" });
  return new Promise((resolve) => {
    const req = request(`${url}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" } }, (res) => {
      let chunks = 0;
      res.on("data", () => {
        if (++chunks === 2 && kind === "disconnect") req.destroy();
      });
      res.on("end", () => resolve({ ms: performance.now() - t0, kind, status: res.statusCode ?? 0 }));
      res.on("error", () => resolve({ ms: performance.now() - t0, kind, status: res.statusCode ?? 0 }));
    });
    req.on("error", () => resolve({ ms: performance.now() - t0, kind, status: 0 }));
    req.on("close", () => resolve({ ms: performance.now() - t0, kind, status: 0 }));
    if (kind === "abort") setTimeout(() => req.destroy(), rnd() * 50);
    req.end(body);
  });
}

async function loadTest(): Promise<void> {
  const model = await loadModel(undefined, { contextLength: 512, sequences: 4, threads: 1 });
  const api = createOpenAI(model, { queueLimit: CLIENTS * 2 });
  const server = await startHttpServer(api, { port: 0 });
  try {
    let s = 26;
    const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
    // A first pass warms the heap and the JIT; RSS is compared between the end of that pass and of the run.
    const pass = async (requests: number) => {
      const out: { ms: number; kind: string; status: number }[] = [];
      await Promise.all(Array.from({ length: CLIENTS }, async () => {
        for (let i = 0; i < requests; i++) out.push(await loadRequest(server.url, rnd));
      }));
      return out;
    };
    await pass(5);
    (globalThis as { gc?: () => void }).gc?.();
    const before = process.memoryUsage().rss;
    const results = await pass(REQUESTS);
    for (let i = 0; i < 200 && api.scheduler.stats.busy > 0; i++) await new Promise((r) => setTimeout(r, 10));
    (globalThis as { gc?: () => void }).gc?.();
    const after = process.memoryUsage().rss;
    const done = results.filter((r) => r.kind === "plain" || r.kind === "stream").map((r) => r.ms);
    const statuses = new Map<string, number>();
    for (const r of results) statuses.set(`${r.kind} ${r.status}`, (statuses.get(`${r.kind} ${r.status}`) ?? 0) + 1);
    const health = await fetch(`${server.url}/health`).then((r) => r.json());
    console.log(`load       ${CLIENTS} clients x ${REQUESTS} requests: ${results.length} answered, server up (${JSON.stringify(health)}), ${api.scheduler.stats.busy} sequences busy after; RSS ${(before / 2 ** 20).toFixed(0)} -> ${(after / 2 ** 20).toFixed(0)} MiB (${(((after - before) / before) * 100).toFixed(1)}%); completed requests p50 ${pct(done, 50).toFixed(0)} ms, p99 ${pct(done, 99).toFixed(0)} ms (load ${load()})`);
    console.log(`           outcomes: ${[...statuses].sort().map(([k, n]) => `${k}: ${n}`).join(", ")}`);
  } finally {
    await server.close();
    await model.dispose();
  }
}

const cleanups: Cleanups = [];
try {
  console.log(`bench:serve, ${THREADS} threads, load average ${load()}`);
  if (run("batching") || run("prefix") || run("state")) {
    const dir = await syntheticModel(cleanups);
    const model = await loadModel(dir, { contextLength: CONTEXT, sequences: STREAMS, threads: THREADS });
    try {
      if (run("batching")) await batching(model, dir, cleanups);
      if (run("prefix")) await prefix(model);
      if (run("state")) state(model);
    } finally {
      await model.dispose();
    }
  }
  if (run("load")) await loadTest();
} finally {
  for (const c of cleanups.reverse()) c();
}
