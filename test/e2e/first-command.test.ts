// The README's first command, `npm install && npx mobilellm generate --prompt "ROMEO:"`, builds once. npx
// installs the project's own bin into its cache as a link to the project and runs the project's `prepare`
// again for it (npm exec's rule for a bin the current package declares); `prepare` must find the build
// `npm install` just made up to date (scripts/build.mjs --if-changed) instead of building it all again.
//
// The test copies the repository as `npm install` leaves it (its files, the build outputs, node_modules
// linked), runs the command's npx half there with an empty npm cache (a first run: nothing in npx's cache),
// and checks the build outputs were not rewritten. Then it changes one input of one step and checks that
// only that step runs, saying so.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFile } from "node:child_process";
import { appendFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);
const REPO = resolve(".");
const tmp = mkdtempSync(join(tmpdir(), "mobilellm-first-command-"));
const copy = join(tmp, "mobilellm-wasm");
/** Build outputs whose rewriting would mean a second build. */
const OUTPUTS = ["dist/src/cli/main.js", "dist/build/simd.wasm", "build/relaxed.wasm", "models/shakespeare-tiny.gguf"];

const mtimes = () => Object.fromEntries(OUTPUTS.map((f) => [f, statSync(join(copy, f)).mtimeMs]));

beforeAll(async () => {
  // The repository's files (tracked, and new ones not ignored), then what the build wrote.
  const { stdout } = await run("git", ["ls-files", "-co", "--exclude-standard", "-z"], { maxBuffer: 16 << 20 });
  for (const f of stdout.split("\0").filter((x) => x.length > 0)) {
    mkdirSync(dirname(join(copy, f)), { recursive: true });
    cpSync(join(REPO, f), join(copy, f), { preserveTimestamps: true });
  }
  for (const f of ["dist/src", "dist/build", "dist/.build-hash.json", "build", "models/shakespeare-tiny.gguf"]) {
    cpSync(join(REPO, f), join(copy, f), { recursive: true, preserveTimestamps: true });
  }
  symlinkSync(join(REPO, "node_modules"), join(copy, "node_modules"));
});

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("the README's first command", () => {
  it("npx mobilellm runs the built CLI without building again, on a first run (npx's cache empty)", async () => {
    const before = mtimes();
    const cache = join(tmp, "npm-cache");
    const env = { ...process.env, npm_config_cache: cache, npm_config_offline: "true", npm_config_update_notifier: "false" };
    const t0 = performance.now();
    const r = await run("npx", ["mobilellm", "generate", "--prompt", "ROMEO:", "-n", "16", "--seed", "1"], { cwd: copy, env });
    const seconds = (performance.now() - t0) / 1000;
    expect(r.stdout).toMatch(/^ROMEO:/);
    expect(r.stdout.length).toBeGreaterThan("ROMEO:".length + 16);
    expect(mtimes()).toEqual(before);
    // npx did install the project into its empty cache (so `prepare` ran there, and found nothing to do).
    const direct = await run(process.execPath, ["dist/src/cli/main.js", "generate", "--prompt", "ROMEO:", "-n", "16", "--seed", "1"], { cwd: copy });
    expect(r.stdout).toBe(direct.stdout);
    expect(seconds).toBeLessThan(20); // a build takes 25-60 s on this project's 2-core machines
  });

  it("a changed input rebuilds its step only, saying what it builds and how long it took; a new script in package.json rebuilds nothing", async () => {
    const before = mtimes();
    appendFileSync(join(copy, "models", "shakespeare-tiny", "README.md"), "\n");
    const r = await run(process.execPath, ["scripts/build.mjs", "--if-changed"], { cwd: copy });
    expect(r.stderr).toMatch(/^building mobilellm-wasm\n {2}the bundled model: models\/shakespeare-tiny\/ -> models\/shakespeare-tiny\.gguf \.\.\. \d+\.\d s\nbuilt in \d+\.\d s\n$/);
    const after = mtimes();
    expect(after["models/shakespeare-tiny.gguf"]).toBeGreaterThan(before["models/shakespeare-tiny.gguf"]);
    for (const f of OUTPUTS.filter((f) => !f.endsWith(".gguf"))) expect(after[f]).toBe(before[f]);
    // A script added to package.json (another helper's new command, say) changes no build input.
    const pkg = JSON.parse(readFileSync(join(copy, "package.json"), "utf8")) as { scripts: Record<string, string> };
    writeFileSync(join(copy, "package.json"), JSON.stringify({ ...pkg, scripts: { ...pkg.scripts, "something-new": "node -e 1" } }, null, 2));
    const again = await run(process.execPath, ["scripts/build.mjs", "--if-changed"], { cwd: copy });
    expect(again.stderr).toBe("mobilellm-wasm: the build is up to date (wasm, ts, model: no input or output changed since it ran)\n");
  });
});
