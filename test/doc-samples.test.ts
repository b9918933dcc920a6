// Every command sample in README.md and docs/*.md is run, and what it prints now must be what the page shows.
//
// The convention, for anyone adding a sample:
//
// - A sample is a block fenced as ```console. Each line starting with "$ " is a command (a line ending in
//   "\" continues on the next); the lines after it, up to the next "$ " line or the fence, are what the
//   command prints: stdout and stderr together, in the order written, as they reach a pipe or a log
//   (stderr is not a terminal: no progress bar, and the "loaded ..." line only with --stats). Leave out
//   what the sample does not show in the command itself, as a reader would (`2>/dev/null`, `>/dev/null`).
// - The commands of a block run in order with bash, from a fresh folder that looks like the repository's
//   root (each of its entries linked there), so relative paths work as in a clone and files a command
//   writes stay in that folder. `npx mobilellm` and `mobilellm` run the built CLI (dist/src/cli/main.js,
//   what `npx mobilellm` runs after `npm install`); stdin is empty unless the command pipes into it.
// - Words after "console" in the fence qualify the block:
//     timings      what varies from run to run is printed with a decimal point (times, speeds, sizes in
//                  MB): every number with a decimal point matches any such number; integers, words and
//                  the shape of every line must match exactly.
//     ids          an OpenAI response's "id" ("chatcmpl-<hex>", "cmpl-<hex>") and "created" (a time)
//                  match any value.
//     status=N     the commands exit with status N (a sample of an error), where the default is 0.
//     serves       the block is one command that starts a server (`mobilellm serve`) and shows its first
//                  line. The server keeps running for the samples after it in the same file (curl ones,
//                  say), and is stopped at the end. Samples show the default port, 8080; the test starts
//                  the server on a free port (it adds --port 0 to the command) and reads 8080 for it in
//                  the later commands and in every output.
//     needs=FILE   the sample runs a real hub model, FILE one of scripts/hub-models.ts's files, named in
//                  the command by its cache path (~/.cache/mobilellm-wasm/hub/FILE). The sample is checked
//                  where `npm run fetch:models` has fetched it, skipped with a message elsewhere, and fails
//                  in CI without it (test/helpers/hub-files.ts).
//   e.g. ```console timings needs=SmolLM2-135M-Instruct.Q4_1.gguf
// - Blocks fenced as sh (or bash, shell) are commands to type with no output shown, and are not run; any
//   block whose first line starts with "$ " must be a console block, so a sample cannot escape the check.
//
// Outputs are those of the default build on this project's machines (2 cores, relaxed SIMD): a seed
// reproduces a run on the same Wasm build (README, "Commands").
import { afterAll, describe, expect, it } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { HUB_MODELS, hubDir } from "../scripts/hub-models.js";
import { CLI } from "./helpers/cli.js";
import { hubFilesPresent } from "./helpers/hub-files.js";
import { docFiles, fencedBlocks, type FencedBlock } from "./helpers/markdown-blocks.js";

const REPO = resolve(".");
const OPTIONS = /^(timings|ids|serves|status=\d+|needs=.+)$/;
/** The port samples show a server on (mobilellm serve's default). */
const SAMPLE_PORT = "8080";
/** The cache path samples name a hub file by (MOBILELLM_HUB_DIR moves it). */
const HUB_PATH = "~/.cache/mobilellm-wasm/hub/";
/** `npx mobilellm` and `mobilellm` are the built CLI; both streams go to one pipe, in the order written. */
const PRELUDE = `mobilellm() { node "$MOBILELLM_CLI" "$@"; }
npx() { if [ "$1" = mobilellm ]; then shift; mobilellm "$@"; else command npx "$@"; fi; }
exec 2>&1
`;

interface Step {
  command: string;
  expected: string;
}

/** A console block's commands and what each prints. */
function stepsOf(block: FencedBlock): Step[] {
  const steps: Step[] = [];
  const lines = block.body.split("\n");
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i].startsWith("$ ")) throw new Error(`${block.file}:${block.line + 1 + i}: a console block's output must follow a "$ " command`);
    let command = lines[i].slice(2);
    while (command.endsWith("\\") && i + 1 < lines.length) command += "\n" + lines[++i]; // bash reads on
    const output: string[] = [];
    while (i + 1 < lines.length && !lines[i + 1].startsWith("$ ")) output.push(lines[++i]);
    steps.push({ command, expected: output.join("\n") });
  }
  return steps;
}

/** A folder whose entries are links to the repository's: the repository's root, as seen by a command. */
function sandbox(): string {
  const dir = mkdtempSync(join(tmpdir(), "mobilellm-sample-"));
  for (const entry of readdirSync(REPO)) symlinkSync(join(REPO, entry), join(dir, entry));
  return dir;
}

/** The server a `serves` sample started, while the samples after it in its file run. */
let server: { file: string; port: string; child: ChildProcess } | null = null;

async function stopServer(): Promise<void> {
  const s = server;
  server = null;
  if (s === null || s.child.exitCode !== null) return;
  const closed = new Promise((ok) => s.child.on("close", ok));
  process.kill(-s.child.pid!, "SIGINT"); // the bash and the CLI it runs: one process group
  await closed;
}

/** `command` as run: the hub cache moved by MOBILELLM_HUB_DIR, the sample port the running server's. */
function asRun(command: string): string {
  const hub = process.env.MOBILELLM_HUB_DIR ? command.replaceAll(HUB_PATH, `${hubDir()}/`) : command;
  return server === null ? hub : hub.replaceAll(`:${SAMPLE_PORT}`, `:${server.port}`);
}

function spawnCommand(command: string, cwd: string): ChildProcess {
  return spawn("bash", ["-c", PRELUDE + command], { cwd, env: { ...process.env, MOBILELLM_CLI: join(REPO, CLI) }, stdio: ["ignore", "pipe", "inherit"], detached: true });
}

/** What `command` prints (stdout and stderr merged), run with bash in `cwd`. */
function runCommand(command: string, cwd: string): Promise<{ output: string; code: number | null }> {
  return new Promise((ok, fail) => {
    const child = spawnCommand(asRun(command), cwd);
    let output = "";
    child.stdout!.on("data", (d: Buffer) => (output += d.toString()));
    child.on("error", fail);
    child.on("close", (code) => ok({ output, code }));
  });
}

/** Starts a `serves` sample's server on a free port; resolves with its first line once it listens. */
function startServer(file: string, command: string, cwd: string): Promise<string> {
  return new Promise((ok, fail) => {
    const child = spawnCommand(`${asRun(command)} --port 0`, cwd);
    let output = "";
    child.stdout!.on("data", (d: Buffer) => {
      output += d.toString();
      const line = /^(.*)\n/.exec(output)?.[1];
      const port = line && /127\.0\.0\.1:(\d+)/.exec(line)?.[1];
      if (line === undefined || server !== null) return;
      if (!port) return fail(new Error(`${command}: no port in its first line: ${line}`));
      server = { file, port, child };
      ok(line);
    });
    child.on("close", (code) => server === null && fail(new Error(`${command} ended (exit code ${code}) before it listened:\n${output}`)));
  });
}

/**
 * What the sample and the run are compared as: with `timings`, every number with a decimal point stands for
 * any such number; with `ids`, OpenAI's ids and times for any; a running server's port reads as 8080.
 */
function comparable(text: string, options: string[]): string {
  let t = server === null ? text : text.replaceAll(`:${server.port}`, `:${SAMPLE_PORT}`);
  if (options.includes("timings")) t = t.replace(/\d+\.\d+/g, "#.#");
  if (options.includes("ids")) t = t.replace(/"id":"([a-z]+)-[0-9a-f]+"/g, '"id":"$1-#"').replace(/"created":\d+/g, '"created":#');
  return t;
}

const blocks = docFiles().flatMap((f) => fencedBlocks(f));
const samples = blocks.filter((b) => b.lang === "console");

describe("the docs' command samples", () => {
  afterAll(stopServer);

  it("are console blocks with known options, and no other block looks like one", () => {
    expect(samples.length).toBeGreaterThanOrEqual(5);
    for (const b of blocks) {
      const where = `${b.file}:${b.line}`;
      if (b.lang !== "console") expect(b.body.trimStart().startsWith("$ "), `${where}: a transcript fenced as ${b.lang || "a bare fence"}, not console`).toBe(false);
      else for (const o of b.options) expect(o, `${where}: unknown console option`).toMatch(OPTIONS);
    }
    const hubFiles = HUB_MODELS.map((m) => m.file);
    for (const b of samples) for (const o of b.options.filter((x) => x.startsWith("needs="))) expect(hubFiles, `${b.file}:${b.line}`).toContain(o.slice(6));
  });

  for (const block of samples) {
    const needs = block.options.filter((o) => o.startsWith("needs=")).map((o) => HUB_MODELS.find((m) => m.file === o.slice(6)));
    const runnable = needs.every((m) => m !== undefined) && (needs.length === 0 || hubFilesPresent(...(needs as NonNullable<(typeof needs)[number]>[])));
    const steps = stepsOf(block);
    it.skipIf(!runnable)(`${block.file}:${block.line} $ ${steps.map((s) => s.command).join(" ; $ ")}`, async () => {
      if (server !== null && server.file !== block.file) await stopServer();
      const cwd = sandbox();
      try {
        if (block.options.includes("serves")) {
          expect(steps, `${block.file}:${block.line}: a serves block is one command`).toHaveLength(1);
          await stopServer();
          const line = await startServer(block.file, steps[0].command, cwd);
          expect(comparable(line, block.options)).toBe(comparable(steps[0].expected, block.options));
          return;
        }
        const status = Number(block.options.find((o) => o.startsWith("status="))?.slice(7) ?? 0);
        for (const step of steps) {
          const { output, code } = await runCommand(step.command, cwd);
          expect(code, `${step.command}\n${output}`).toBe(status);
          expect(comparable(output.replace(/\n$/, ""), block.options), step.command).toBe(comparable(step.expected, block.options));
        }
      } finally {
        rmSync(cwd, { recursive: true, force: true }); // a server started here has read all it reads
      }
    });
  }
});
