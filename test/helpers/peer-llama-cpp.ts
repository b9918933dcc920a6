// llama.cpp through node-llama-cpp (bench/node-llama-cpp.ts) for tests held against it: the folder
// BENCH_NLC_DIR names, else the shared cache folder the fetch step installs it into. In CI it must be there;
// elsewhere a test needing it is skipped with a message saying where it was looked for.
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";

/** The node-llama-cpp folder tests use. */
export function peerNlcDir(): string {
  return resolve(process.env.BENCH_NLC_DIR ?? join(homedir(), ".cache", "mobilellm-wasm", "peer-nlc"));
}

/** Whether node-llama-cpp is installed where tests look; in CI its absence throws. */
export function peerLlamaCppPresent(): boolean {
  const dir = peerNlcDir();
  if (existsSync(join(dir, "node_modules", "node-llama-cpp", "package.json"))) return true;
  if (process.env.CI) throw new Error(`node-llama-cpp is missing from ${dir} in CI`);
  console.warn(`skipping tests held against llama.cpp: node-llama-cpp is not installed in ${dir} (BENCH_NLC_DIR)`);
  return false;
}
