#!/usr/bin/env node
// @ts-check
// The build, in three steps, each saying what it does and how long it took:
//   wasm   the kernels: assembly/ -> build/{simd,relaxed,simd-shared,relaxed-shared}.wasm (asc, one target
//          per available core at a time), copied to dist/build/ for the package
//   ts     the library and the CLI: src/ -> dist/src/ (tsc -p tsconfig.build.json)
//   model  the bundled model's GGUF: models/shakespeare-tiny/ -> models/shakespeare-tiny.gguf (mobilellm
//          convert, from dist/src/)
//
//   node scripts/build.mjs [wasm|ts|model ...] [--if-changed]
//
// With no step named, all three run in order. --if-changed (npm's `prepare` and `pretest`) skips a step whose
// inputs and outputs hash to what its last run recorded in dist/.build-hash.json. That is what makes the
// README's first command build once: `npm install` runs `prepare`, and then `npx mobilellm` installs the
// project itself into npx's cache (npm exec does that for a bin the current package declares, as a link to
// this folder) and runs `prepare` again for that link, silently; it now finds nothing changed.
//
// Plain JavaScript, so that the up-to-date check runs in one node start (tsx would add its own), and before
// anything is compiled.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from "node:fs";
import { availableParallelism } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const RECORD = join(ROOT, "dist", ".build-hash.json");
const KERNELS = ["simd", "relaxed", "simd-shared", "relaxed-shared"];
/** Inputs of every step: this script, and the compilers' versions (package-lock.json). */
const TOOLING = ["package-lock.json", "scripts/build.mjs"];
/**
 * What package.json says that the build depends on: "type" decides the module format tsc emits. Its other
 * fields (scripts, files...) change no build output, so adding a script does not rebuild.
 */
const PACKAGE_FACTS = (() => {
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
  return JSON.stringify({ type: pkg.type ?? null });
})();

/**
 * @typedef {{ name: string, what: string, inputs: string[], outputs: string[], run: () => Promise<void> }} Step
 * inputs and outputs are files or folders (every file under them), relative to the repository.
 */

/** @type {Step[]} */
const STEPS = [
  {
    name: "wasm",
    what: `Wasm kernels: assembly/ -> build/{${KERNELS.join(",")}}.wasm`,
    inputs: ["assembly", "asconfig.json"],
    outputs: [...KERNELS.map((k) => `build/${k}.wasm`), ...KERNELS.map((k) => `dist/build/${k}.wasm`)],
    async run() {
      const asc = join(ROOT, "node_modules", "assemblyscript", "bin", "asc.js");
      await inParallel(KERNELS.map((k) => () => node([asc, "assembly/index.ts", "--target", k])), availableParallelism());
      mkdirSync(join(ROOT, "dist", "build"), { recursive: true });
      for (const k of KERNELS) cpSync(join(ROOT, "build", `${k}.wasm`), join(ROOT, "dist", "build", `${k}.wasm`));
    },
  },
  {
    name: "ts",
    what: "TypeScript: src/ -> dist/src/",
    inputs: ["src", "tsconfig.json", "tsconfig.build.json"],
    outputs: ["dist/src"],
    async run() {
      rmSync(join(ROOT, "dist", "src"), { recursive: true, force: true });
      await node([join(ROOT, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.build.json"]);
    },
  },
  {
    name: "model",
    what: "the bundled model: models/shakespeare-tiny/ -> models/shakespeare-tiny.gguf",
    inputs: ["models/shakespeare-tiny", "dist/src"],
    outputs: ["models/shakespeare-tiny.gguf"],
    async run() {
      // Its own summary line is left out: the step's line says what was written.
      await node(["dist/src/cli/main.js", "convert", "--model", "models/shakespeare-tiny", "--out", "models/shakespeare-tiny.gguf", "--force"], "ignore");
    },
  },
];

/**
 * Where progress goes: stderr, and also the terminal when npm hides stderr, as it does for a `prepare` it runs
 * while npx installs the project into its cache (npm_command is then "exec"): a build that is needed there
 * still says what it is doing.
 */
const progressFds = (() => {
  const fds = [2];
  if (process.env.npm_command === "exec" && !process.stderr.isTTY) {
    try {
      fds.push(openSync("/dev/tty", "w"));
    } catch {
      // no terminal: a CI log, where npm shows a failing script's output anyway
    }
  }
  return fds;
})();

/** @param {string} s */
function say(s) {
  for (const fd of progressFds) writeSync(fd, s);
}

/**
 * Runs node with `args` in the repository, its output shown; rejects on a non-zero exit.
 * @param {string[]} args
 * @param {"inherit" | "ignore"} stdout
 * @returns {Promise<void>}
 */
function node(args, stdout = "inherit") {
  return new Promise((ok, fail) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ["ignore", stdout, "inherit"] });
    child.on("error", fail);
    child.on("close", (code, signal) => (code === 0 ? ok() : fail(new Error(`${relative(ROOT, args[0])} ${args.slice(1).join(" ")} failed (${signal ?? `exit code ${code}`})`))));
  });
}

/**
 * Runs the jobs, at most `limit` at a time.
 * @param {(() => Promise<void>)[]} jobs
 * @param {number} limit
 */
async function inParallel(jobs, limit) {
  const queue = [...jobs];
  const worker = async () => {
    for (let job = queue.shift(); job !== undefined; job = queue.shift()) await job();
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, jobs.length)) }, worker));
}

/**
 * One hash of the files at `paths` (folders walked, in name order): their paths and contents, after
 * `facts`. A missing path hashes as missing, so a deleted output changes it.
 * @param {string[]} paths
 * @param {string} facts
 */
function hashOf(paths, facts = "") {
  const h = createHash("sha256");
  h.update(`${facts}\0`);
  /** @param {string} rel */
  const add = (rel) => {
    const abs = join(ROOT, rel);
    if (!existsSync(abs)) {
      h.update(`missing ${rel}\0`);
    } else if (statSync(abs).isDirectory()) {
      for (const name of readdirSync(abs).sort()) add(join(rel, name));
    } else {
      h.update(`file ${rel}\0`);
      h.update(readFileSync(abs));
    }
  };
  for (const p of paths) add(p);
  return h.digest("hex");
}

/** @returns {Record<string, { inputs: string, outputs: string }>} */
function readRecord() {
  try {
    return JSON.parse(readFileSync(RECORD, "utf8"));
  } catch {
    return {};
  }
}

async function main() {
  const args = process.argv.slice(2);
  const ifChanged = args.includes("--if-changed");
  const named = args.filter((a) => a !== "--if-changed");
  const unknown = named.filter((n) => !STEPS.some((s) => s.name === n));
  if (unknown.length > 0) throw new Error(`unknown step ${unknown.join(", ")} (steps: ${STEPS.map((s) => s.name).join(", ")})`);
  const steps = named.length === 0 ? STEPS : STEPS.filter((s) => named.includes(s.name));
  const record = readRecord();
  const started = performance.now();
  let ran = 0;
  for (const step of steps) {
    const inputs = hashOf([...TOOLING, ...step.inputs], PACKAGE_FACTS);
    if (ifChanged && record[step.name]?.inputs === inputs && record[step.name]?.outputs === hashOf(step.outputs)) continue;
    if (ran === 0 && steps.length > 1) say("building mobilellm-wasm\n");
    say(`  ${step.what} ... `);
    const t0 = performance.now();
    await step.run();
    say(`${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
    ran++;
    // Recorded after each step, so a failure later keeps what was done.
    record[step.name] = { inputs, outputs: hashOf(step.outputs) };
    mkdirSync(dirname(RECORD), { recursive: true });
    writeFileSync(RECORD, JSON.stringify(record, null, 2) + "\n");
  }
  if (ran === 0) say(`mobilellm-wasm: the build is up to date (${steps.map((s) => s.name).join(", ")}: no input or output changed since it ran)\n`);
  else if (steps.length > 1) say(`built in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
}

main().catch((err) => {
  say(`\n${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
