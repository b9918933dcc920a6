// The README's first command on fresh clones, timed in its parts: `npm install` (dependencies and the
// build), then `npx mobilellm generate --prompt "ROMEO:"` the first time (npx links the project into its
// cache and runs its `prepare` again), a second time (npx's cache filled), and the built CLI run directly
// (the generation alone). The npx half minus the direct run is what the first command adds to install and
// build. Figures are printed, never asserted.
//
// Each round clones every ref into a fresh temporary folder (with ../shared beside it, as CI checks out),
// the refs alternating, so a drift of the shared machine hits them alike. npm uses its usual cache for the
// dependencies; npx's cache entry is new for each clone (it is keyed by the folder), and removed after.
//
//   npm run bench:first-command -- --ref main --ref HEAD --rounds 2
//   npm run bench:first-command -- --repo /work/main --ref main
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { homedir, loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { count, arg } from "./args.js";
import { describeMachine, median } from "./machine.js";

const repo = resolve(arg("repo") ?? ".");
const refs = process.argv.flatMap((a, i) => (a === "--ref" ? [process.argv[i + 1]] : []));
if (refs.length === 0) refs.push("HEAD");
const rounds = count("rounds", 1);
const shared = resolve(repo, "..", "shared");

/** Seconds `cmd args` takes in `cwd`; throws with its output when it fails. */
function timed(cwd: string, cmd: string, args: string[]): number {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { cwd, encoding: "utf8", maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed in ${cwd}:\n${r.stdout}\n${r.stderr}`);
  return (performance.now() - t0) / 1000;
}

/** npx's cache entries that link to `dir` (created by the first npx run there). */
function npxEntries(dir: string): string[] {
  const root = join(homedir(), ".npm", "_npx");
  if (!existsSync(root)) return [];
  return readdirSync(root).filter((e) => {
    const pkg = join(root, e, "package.json");
    return existsSync(pkg) && readFileSync(pkg, "utf8").includes(JSON.stringify(dir));
  }).map((e) => join(root, e));
}

const PROMPT = ["generate", "--prompt", "ROMEO:"];
type Figures = { install: number; firstNpx: number; secondNpx: number; direct: number; load: number };
const results = new Map<string, Figures[]>(refs.map((r) => [r, []]));

console.log(describeMachine());
for (let round = 0; round < rounds; round++) {
  for (const ref of refs) {
    const tmp = mkdtempSync(join(tmpdir(), "mobilellm-first-command-"));
    const clone = join(tmp, "mobilellm-wasm");
    try {
      if (existsSync(shared)) symlinkSync(shared, join(tmp, "shared"));
      execFileSync("git", ["clone", "-q", repo, clone]);
      execFileSync("git", ["-C", clone, "checkout", "-q", execFileSync("git", ["-C", repo, "rev-parse", ref], { encoding: "utf8" }).trim()]);
      const load = loadavg()[0];
      const install = timed(clone, "npm", ["install", "--no-audit", "--no-fund"]);
      const firstNpx = timed(clone, "npx", ["mobilellm", ...PROMPT]);
      const secondNpx = timed(clone, "npx", ["mobilellm", ...PROMPT]);
      const direct = timed(clone, process.execPath, ["dist/src/cli/main.js", ...PROMPT]);
      const f = { install, firstNpx, secondNpx, direct, load };
      results.get(ref)!.push(f);
      const s = (x: number) => `${x.toFixed(1)} s`;
      console.log(`round ${round + 1} ${ref}: npm install ${s(install)}, first npx ${s(firstNpx)}, second npx ${s(secondNpx)}, the CLI directly ${s(direct)} (load average ${load.toFixed(1)})`);
    } finally {
      for (const e of npxEntries(clone)) rmSync(e, { recursive: true, force: true });
      rmSync(tmp, { recursive: true, force: true });
    }
  }
}
for (const [ref, fs] of results) {
  const m = (k: keyof Figures) => median(fs.map((f) => f[k])).toFixed(1);
  console.log(`${ref}, medians of ${fs.length}: npm install ${m("install")} s; first npx ${m("firstNpx")} s, of which the generation ${m("direct")} s (first npx - direct: ${median(fs.map((f) => f.firstNpx - f.direct)).toFixed(1)} s)`);
}
