// Node's worker threads for the engine's pool: a worker_threads Worker running src/threads/worker.ts's
// runWorker with its WorkerInit. The worker evaluates a small bootstrap that imports the worker module and
// runs it:
// - from the compiled dist/: dist/src/threads/worker.js;
// - from the TypeScript sources (vitest, tsx): Node cannot import .ts itself, and loading the module graph
//   through tsx in every worker costs about a second per worker (its loader starts in each worker, and
//   Node 20 ignores a loader given in execArgv for a worker's entry). So worker.ts is bundled once per
//   process with esbuild (tsx's own compiler, present wherever tsx is) and imported as a data: URL.
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import type { PoolWorker, SpawnWorker, WorkerEvents, WorkerInit } from "../threads/pool.js";
import type { WorkerMessage } from "../threads/protocol.js";

let sourceBundle: string | null = null;

/** The URL of the worker module (worker.ts or worker.js) this file's copy of the pool runs. */
function workerModuleUrl(): string {
  if (!import.meta.url.endsWith(".ts")) return new URL("../threads/worker.js", import.meta.url).href;
  if (sourceBundle === null) {
    let code: Uint8Array;
    try {
      const esbuild = createRequire(import.meta.url)("esbuild") as typeof import("esbuild");
      code = esbuild.buildSync({
        entryPoints: [fileURLToPath(new URL("../threads/worker.ts", import.meta.url))],
        bundle: true, format: "esm", platform: "neutral", target: "es2022", write: false, logLevel: "silent",
      }).outputFiles[0].contents;
    } catch (err) {
      throw new Error(`threads from the TypeScript sources need esbuild to bundle the worker module: ${(err as Error).message}`);
    }
    sourceBundle = `data:text/javascript;base64,${Buffer.from(code).toString("base64")}`;
  }
  return sourceBundle;
}

// process.getBuiltinModule, not require: an eval worker is an ES module when the parent process runs with
// --input-type=module (or is itself an ES module given by -e), and then require does not exist.
const BOOTSTRAP = `const { parentPort, workerData } = process.getBuiltinModule("node:worker_threads");
const post = (m) => parentPort.postMessage(m);
import(workerData.module).then(
  (m) => m.runWorker(workerData.init, post),
  (err) => post({ type: "error", message: "cannot load the worker module: " + err.message }),
);
`;

export const spawnNodeWorker: SpawnWorker = (init: WorkerInit, events: WorkerEvents): PoolWorker => {
  const worker = new Worker(BOOTSTRAP, { eval: true, workerData: { module: workerModuleUrl(), init } });
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
