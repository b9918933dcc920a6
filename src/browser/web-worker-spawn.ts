// The browser's SpawnWorker for the engine's thread pool (src/threads/pool.ts): a module Web Worker running
// pool-worker.ts. It receives its WorkerInit (the compiled module, the shared Wasm memory, the control
// block) by postMessage, which needs a cross-origin isolated page (COOP/COEP headers) for
// SharedArrayBuffer and shared WebAssembly.Memory. The `new Worker(new URL("./pool-worker.js",
// import.meta.url), { type: "module" })` form is the one bundlers (Vite, webpack) recognize: they bundle
// the worker module and rewrite the URL, and in the compiled dist/ it names the file next to this one.
import type { PoolWorker, SpawnWorker, WorkerEvents, WorkerInit } from "../threads/pool.js";
import type { WorkerMessage } from "../threads/protocol.js";

/** True where threads can run: shared memory is available (a cross-origin isolated page or worker). */
export function canUseThreads(): boolean {
  const g = globalThis as { crossOriginIsolated?: boolean; SharedArrayBuffer?: unknown; Worker?: unknown };
  return g.crossOriginIsolated === true && typeof g.SharedArrayBuffer === "function" && typeof g.Worker === "function";
}

export const spawnWebWorker: SpawnWorker = (init: WorkerInit, events: WorkerEvents): PoolWorker => {
  const worker = new Worker(new URL("./pool-worker.js", import.meta.url), { type: "module", name: `mobilellm-thread-${init.index}` });
  let exited = false;
  worker.onmessage = (e: MessageEvent<WorkerMessage>) => {
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
