// The kernel builds and engine options a Node test passes where a Platform would (src/node/platform.ts):
// build/*.wasm from disk, Node 20's relaxed-SIMD switch, worker_threads.
import type { KernelLoadOptions } from "../../src/kernels/wasm.js";
import type { EngineOptions } from "../../src/model/engine.js";
import { spawnNodeWorker } from "../../src/node/worker-thread.js";
import { enableRelaxedSimd, kernelBytes } from "../../src/node/wasm-files.js";

/** loadKernels' options for the private-memory builds. */
export const NODE_KERNELS: KernelLoadOptions = { bytes: kernelBytes(false), enableRelaxedSimd };

/** `opts` plus the kernel bytes (the shared builds when threads > 1) and Node's worker spawner. */
export function engineOptions(opts: Omit<EngineOptions, "wasm">): EngineOptions {
  return { ...opts, wasm: kernelBytes((opts.threads ?? 1) > 1), enableRelaxedSimd, spawn: spawnNodeWorker };
}
