// The Node-specific part of the thread pool: a worker_threads Worker running worker.ts's runWorker with its
// WorkerInit as workerData. The worker is a small bootstrap (evaluated code) that imports worker.ts next
// to this file: worker.js in the compiled dist/, worker.ts when running from the TypeScript sources (vitest,
// tsx). Node 20 ignores a loader given to a worker in execArgv for the worker's own entry, so from the
// sources the bootstrap imports it through tsx's API (tsImport) instead.
import type { PoolWorker, SpawnWorker, WorkerEvents, WorkerInit } from "./pool.js";
import type { WorkerMessage } from "./protocol.js";

/** The worker module's URL, and how to import it (tsx's API, when it is TypeScript). */
function workerEntry(): { url: string; tsx: string | null } {
  const fromSources = import.meta.url.endsWith(".ts");
  const url = new URL(fromSources ? "./worker.ts" : "./worker.js", import.meta.url).href;
  return { url, tsx: fromSources ? import.meta.resolve("tsx/esm/api") : null };
}

/** Evaluated in the worker: loads the worker module and runs it on workerData. */
function bootstrap(entry: { url: string; tsx: string | null }): string {
  const load = entry.tsx === null
    ? `import(${JSON.stringify(entry.url)})`
    : `import(${JSON.stringify(entry.tsx)}).then((tsx) => tsx.tsImport(${JSON.stringify(entry.url)}, ${JSON.stringify(entry.url)}))`;
  // process.getBuiltinModule, not require: an eval worker is an ES module when the parent process runs
  // with --input-type=module (or is itself an ES module given by -e), and then require does not exist.
  return `const { parentPort, workerData } = process.getBuiltinModule("node:worker_threads");
const post = (m) => parentPort.postMessage(m);
${load}.then((m) => m.runWorker(workerData, post), (err) => post({ type: "error", message: "cannot load the worker module: " + err.message }));
`;
}

export const spawnNodeWorker: SpawnWorker = (init: WorkerInit, events: WorkerEvents): PoolWorker => {
  // Looked up on first use, not imported: engine.ts imports this module, and a browser bundle of the engine
  // (which passes its own SpawnWorker) must not import node:worker_threads.
  const { Worker } = process.getBuiltinModule("node:worker_threads");
  const worker = new Worker(bootstrap(workerEntry()), { eval: true, workerData: init });
  worker.on("message", (m: WorkerMessage) => {
    if (m?.type === "ready") events.ready();
    else if (m?.type === "error") events.error(String(m.message));
  });
  worker.on("error", (err: Error) => events.error(err.message));
  worker.on("exit", (code: number) => events.exit(code));
  return {
    terminate: () => worker.terminate(),
    unref: () => worker.unref(),
  };
};
