// Node's Platform: the cores this process may use; the kernels' bytes come from build/*.wasm on disk and
// worker threads from worker_threads (the defaults below the session layer when a platform leaves them unset).
import { availableParallelism } from "node:os";
import type { Platform } from "../session/platform.js";

export const nodePlatform: Platform = {
  name: "node",
  defaultThreads: () => availableParallelism(),
};
