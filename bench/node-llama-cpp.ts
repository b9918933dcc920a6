// node-llama-cpp (llama.cpp's Node binding, prebuilt CPU binaries) for the benchmarks against llama.cpp
// (bench/peer.ts, bench/load.ts), installed on demand into a folder of its own, never into this repo:
//
//   npm install --omit=optional --ignore-scripts node-llama-cpp@V @node-llama-cpp/<this platform>@V
//
// --omit=optional keeps out the CUDA/Vulkan/other-OS binary packages, the one prebuilt CPU package of this
// platform is named explicitly, and --ignore-scripts plus getLlama({ gpu: false, build: "never" }) mean
// nothing is compiled or downloaded from GitHub: only the npm registry is needed.
//
// Environment (optional): BENCH_NLC_DIR=/tmp/peer-nlc reuses (or installs into and keeps) that folder;
// without it the install goes to a temporary folder that `cleanups` removes.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

/** The node-llama-cpp version installed unless NODE_LLAMA_CPP_VERSION or a flag says otherwise. */
export const NLC_DEFAULT_VERSION = "3.22.1";

const seconds = (t0: number) => ((performance.now() - t0) / 1000).toFixed(1);

/** The prebuilt CPU binary package of this platform (node-llama-cpp's optionalDependencies). */
function binaryPackage(): string {
  const key = `${process.platform}-${process.arch}`;
  const names: Record<string, string> = {
    "linux-x64": "linux-x64",
    "linux-arm64": "linux-arm64",
    "linux-arm": "linux-armv7l",
    "darwin-arm64": "mac-arm64-metal",
    "darwin-x64": "mac-x64",
    "win32-x64": "win-x64",
    "win32-arm64": "win-arm64",
  };
  const name = names[key];
  if (!name) throw new Error(`node-llama-cpp ships no prebuilt binary for ${key}`);
  return `@node-llama-cpp/${name}`;
}

export function installedVersion(dir: string, pkg: string): string | null {
  try {
    return (JSON.parse(readFileSync(join(dir, "node_modules", pkg, "package.json"), "utf8")) as { version: string }).version;
  } catch {
    return null;
  }
}

/**
 * The folder holding node-llama-cpp `version` and this platform's binary: `given` (BENCH_NLC_DIR by
 * default), installed there unless already, or a temporary folder installed into and removed by `cleanups`.
 */
export function installNodeLlamaCpp(version: string, cleanups: Array<() => void>, given: string | undefined = process.env.BENCH_NLC_DIR): string {
  const dir = given ? resolve(given) : mkdtempSync(join(tmpdir(), "mobilellm-peer-nlc-"));
  if (!given) cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const bin = binaryPackage();
  if (installedVersion(dir, "node-llama-cpp") === version && installedVersion(dir, bin) === version) {
    console.log(`reusing node-llama-cpp ${version} + ${bin} in ${dir}`);
    return dir;
  }
  mkdirSync(dir, { recursive: true });
  if (!existsSync(join(dir, "package.json"))) writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "mobilellm-peer-bench", private: true }));
  const t0 = performance.now();
  const npm = process.platform === "win32" ? "npm.cmd" : "npm";
  try {
    execFileSync(
      npm,
      ["install", "--omit=optional", "--ignore-scripts", "--no-audit", "--no-fund", "--no-package-lock", `node-llama-cpp@${version}`, `${bin}@${version}`],
      { cwd: dir, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NODE_LLAMA_CPP_SKIP_DOWNLOAD: "true" } },
    );
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    throw new Error(`npm install of node-llama-cpp failed: ${err.stderr?.toString() ?? err.message}`);
  }
  console.log(`installed node-llama-cpp ${version} + ${bin} into ${dir} in ${seconds(t0)} s`);
  return dir;
}

// The part of node-llama-cpp's API used here (it is not a dependency of this repo, so no types come along).
export interface NlcSequence {
  readonly nextTokenIndex: number;
  clearHistory(): Promise<void>;
  evaluateWithoutGeneratingNewTokens(tokens: number[]): Promise<void>;
  controlledEvaluate(
    input: Array<number | [number, { generateNext: { token?: boolean; probabilities?: boolean; options?: { temperature?: number; topK?: number; topP?: number; minP?: number } } }]>,
  ): Promise<Array<{ next: { token?: number | null; probabilities?: Map<number, number> } } | undefined>>;
}
export interface NlcContext {
  readonly contextSize: number;
  readonly batchSize: number;
  readonly currentThreads: number;
  readonly flashAttention: "auto" | boolean;
  getSequence(): NlcSequence;
  dispose(): Promise<void>;
}
export interface NlcModel {
  createContext(o: { contextSize: number; batchSize: number; threads: number; sequences: number; flashAttention: "auto" | boolean }): Promise<NlcContext>;
  dispose(): Promise<void>;
}
export interface NlcLlama {
  readonly llamaCppRelease: { repo: string; release: string };
  readonly buildType: string;
  readonly systemInfo: string;
  readonly cpuMathCores: number;
  loadModel(o: { modelPath: string; gpuLayers: number; useMmap: boolean }): Promise<NlcModel>;
  dispose(): Promise<void>;
}
interface NlcModule {
  getLlama(o: Record<string, unknown>): Promise<NlcLlama>;
}

/** node-llama-cpp's module from the folder installNodeLlamaCpp returned. */
export async function importNodeLlamaCpp(nlcDir: string): Promise<NlcModule> {
  const entry = createRequire(join(nlcDir, "package.json")).resolve("node-llama-cpp");
  return (await import(pathToFileURL(entry).href)) as NlcModule;
}

/** llama.cpp's CPU backend from the prebuilt binary: nothing is built or downloaded, no GPU is probed. */
export async function cpuLlama(nlc: NlcModule): Promise<NlcLlama> {
  return nlc.getLlama({ gpu: false, build: "never", usePrebuiltBinaries: true, skipDownload: true, progressLogs: false, logLevel: "error", maxThreads: 0 });
}
