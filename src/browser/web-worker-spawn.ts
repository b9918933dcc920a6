// The browser's SpawnWorker for the engine's thread pool (src/threads/pool.ts): a Web Worker started from a
// Blob URL of the pool's self-contained runtime source. It receives its WorkerInit (the compiled module, the
// shared Wasm memory, the control block) by postMessage, which needs a cross-origin isolated page
// (COOP/COEP headers) for SharedArrayBuffer and shared WebAssembly.Memory.
import type { PoolWorker, SpawnWorker, WorkerEvents } from "../threads/pool.js";
import type { WorkerInit } from "../threads/runtime.js";

/** True where threads can run: shared memory is available (a cross-origin isolated page or worker). */
export function canUseThreads(): boolean {
  const g = globalThis as { crossOriginIsolated?: boolean; SharedArrayBuffer?: unknown; Worker?: unknown };
  return g.crossOriginIsolated === true && typeof g.SharedArrayBuffer === "function" && typeof g.Worker === "function";
}

export const spawnWebWorker: SpawnWorker = (source: string, init: WorkerInit, events: WorkerEvents): PoolWorker => {
  const code = `${source}\nself.onmessage = (e) => { self.onmessage = null; runWorker(e.data, (m) => self.postMessage(m)); };\n`;
  const url = URL.createObjectURL(new Blob([code], { type: "text/javascript" }));
  let worker: Worker;
  try {
    worker = new Worker(url, { name: `mobilellm-thread-${init.index}` });
  } finally {
    // The worker has fetched its script by the time it runs; revoking now is allowed once it started loading.
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  }
  let exited = false;
  worker.onmessage = (e: MessageEvent<{ type?: string; message?: string }>) => {
    const m = e.data;
    if (m?.type === "ready") events.ready();
    else if (m?.type === "error") events.error(String(m.message));
  };
  worker.onerror = (e: ErrorEvent) => {
    e.preventDefault();
    events.error(e.message || "the worker script failed to load");
  };
  worker.onmessageerror = () => events.error("the worker could not receive its init message (is the page cross-origin isolated?)");
  worker.postMessage(init);
  return {
    terminate: () => {
      if (exited) return;
      exited = true;
      worker.terminate();
    },
  };
};
