// The Node-specific part of the thread pool: a worker_threads Worker that evaluates the runtime's source
// (pool.ts: workerSource) and runs it with its WorkerInit as workerData. Nothing is resolved on disk, so
// the same code works from the TypeScript sources (vitest, tsx) and from the compiled dist/.
import type { PoolWorker, SpawnWorker, WorkerEvents } from "./pool.js";
import type { WorkerInit } from "./runtime.js";

export const spawnNodeWorker: SpawnWorker = (source: string, init: WorkerInit, events: WorkerEvents): PoolWorker => {
  // process.getBuiltinModule, not require: an eval worker is an ES module when the parent process runs
  // with --input-type=module (or is itself an ES module given by -e), and then require does not exist.
  const code = `${source}\nconst { parentPort, workerData } = process.getBuiltinModule("node:worker_threads");\nrunWorker(workerData, (m) => parentPort.postMessage(m));\n`;
  // Looked up on first use, not imported: engine.ts imports this module, and a browser bundle of the engine
  // (which passes its own SpawnWorker) must not import node:worker_threads.
  const { Worker } = process.getBuiltinModule("node:worker_threads");
  const worker = new Worker(code, { eval: true, workerData: init });
  worker.on("message", (m: { type?: string; message?: string }) => {
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
