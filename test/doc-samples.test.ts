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
import { describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { HUB_MODELS, hubDir } from "../scripts/hub-models.js";
import { CLI } from "./helpers/cli.js";
import { hubFilesPresent } from "./helpers/hub-files.js";
import { docFiles, fencedBlocks, type FencedBlock } from "./helpers/markdown-blocks.js";

const REPO = resolve(".");
const OPTIONS = /^(timings|needs=.+)$/;
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
    while (command.endsWith("\\") && i + 1 < lines.length) command = command.slice(0, -1) + "\n" + lines[++i];
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

/** What `command` prints (stdout and stderr merged), run with bash in `cwd`. */
function runCommand(command: string, cwd: string): Promise<{ output: string; code: number | null }> {
  const hub = process.env.MOBILELLM_HUB_DIR ? command.replaceAll(HUB_PATH, `${hubDir()}/`) : command;
  return new Promise((ok, fail) => {
    const child = spawn("bash", ["-c", PRELUDE + hub], { cwd, env: { ...process.env, MOBILELLM_CLI: join(REPO, CLI) }, stdio: ["ignore", "pipe", "inherit"] });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.on("error", fail);
    child.on("close", (code) => ok({ output, code }));
  });
}

/** With `timings`, every number with a decimal point stands for any such number. */
function comparable(text: string, timings: boolean): string {
  return timings ? text.replace(/\d+\.\d+/g, "#.#") : text;
}

const blocks = docFiles().flatMap((f) => fencedBlocks(f));
const samples = blocks.filter((b) => b.lang === "console");

describe("the docs' command samples", () => {
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
      const timings = block.options.includes("timings");
      const cwd = sandbox();
      try {
        for (const step of steps) {
          const { output, code } = await runCommand(step.command, cwd);
          expect(code, `${step.command}\n${output}`).toBe(0);
          expect(comparable(output.replace(/\n$/, ""), timings), step.command).toBe(comparable(step.expected, timings));
        }
      } finally {
        rmSync(cwd, { recursive: true, force: true });
      }
    });
  }
});
