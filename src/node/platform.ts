// Node's Platform: the cores this process may use, the kernel builds from build/*.wasm, and worker threads
// from worker_threads.
import { availableParallelism } from "node:os";
import type { Platform } from "../session/platform.js";
import { enableRelaxedSimd, kernelBytes } from "./wasm-files.js";
import { spawnNodeWorker } from "./worker-thread.js";

export const nodePlatform: Platform = {
  name: "node",
  defaultThreads: () => availableParallelism(),
  wasmBytes: async (shared) => kernelBytes(shared),
  enableRelaxedSimd,
  spawn: spawnNodeWorker,
};
