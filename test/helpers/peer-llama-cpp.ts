// llama.cpp through node-llama-cpp, for tests held against it. It is installed outside this repository (CI:
// `.ci/run` installs it into ~/.cache/mobilellm-wasm/peer-nlc; elsewhere BENCH_NLC_DIR, or that folder, may hold
// it; bench/node-llama-cpp.ts says how). In CI (`CI` set) a missing one fails the test; elsewhere a test needing
// it is skipped with a message saying what to install.
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { installedVersion, NLC_DEFAULT_VERSION } from "../../bench/node-llama-cpp.js";

/** The folder node-llama-cpp is (or would be) installed in: BENCH_NLC_DIR, else ~/.cache/mobilellm-wasm/peer-nlc. */
export function nlcDir(): string {
  const given = process.env.BENCH_NLC_DIR;
  return given ? resolve(given) : join(homedir(), ".cache", "mobilellm-wasm", "peer-nlc");
}

/**
 * Whether node-llama-cpp NLC_DEFAULT_VERSION is in nlcDir(): true when it is; in CI a missing one throws;
 * elsewhere false, after saying what to install.
 */
export function nodeLlamaCppPresent(): boolean {
  const have = installedVersion(nlcDir(), "node-llama-cpp");
  if (have === NLC_DEFAULT_VERSION) return true;
  const what = `node-llama-cpp ${NLC_DEFAULT_VERSION} in ${nlcDir()} (found ${have ?? "none"})`;
  if (process.env.CI) throw new Error(`${what} is missing in CI`);
  console.warn(`skipping tests held against llama.cpp: they need ${what} (bench/node-llama-cpp.ts installs it)`);
  return false;
}
