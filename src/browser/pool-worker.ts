// The entry module of one thread-pool Web Worker (started by web-worker-spawn.ts): it receives its
// WorkerInit as the first message and runs the pool's worker loop (src/threads/worker.ts) on it.
import { runWorker } from "../threads/worker.js";
import type { WorkerInit, WorkerMessage } from "../threads/protocol.js";

interface Scope {
  postMessage(m: WorkerMessage): void;
  onmessage: ((e: MessageEvent<WorkerInit>) => void) | null;
}
const scope = globalThis as unknown as Scope;

scope.onmessage = (e) => {
  scope.onmessage = null;
  void runWorker(e.data, (m) => scope.postMessage(m));
};
