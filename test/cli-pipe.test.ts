// The CLI in a pipe whose reader leaves early, as `mobilellm <command> | head -c 1` does: every command that
// prints ends quietly (exit code 0, nothing on stderr but what it says anyway, no stack trace), and a
// generation stops at once instead of running to its end for nobody.
import { afterAll, describe, expect, it } from "vitest";
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { CLI } from "./helpers/cli.js";

const run = promisify(execFile);

/**
 * Runs `mobilellm ...args | head -c 1` in bash (stdin from `input`); returns the CLI's exit status (bash's
 * 128 + signal number had a signal ended it), what it wrote on stderr, and what head printed.
 */
async function intoHead(args: string[], input = ""): Promise<{ status: number; stderr: string; head: string }> {
  // $1 is the input, the rest the command.
  const script = 'printf %s "$1" | "${@:2}" | head -c 1; exit "${PIPESTATUS[1]}"';
  try {
    const { stdout, stderr } = await run("bash", ["-c", script, "bash", input, process.execPath, CLI, ...args], { maxBuffer: 16 << 20 });
    return { status: 0, stderr, head: stdout };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { status: e.code, stderr: e.stderr, head: e.stdout };
  }
}

const SIGPIPE_STATUS = 128 + 13;
const tmp = mkdtempSync(join(tmpdir(), "mobilellm-pipe-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("mobilellm | head -c 1", () => {
  // Each: the command, its stdin, and what it writes on stderr anyway (nothing but a notice or progress).
  it.each<[string, string[], string, string | RegExp]>([
    ["generate", ["generate", "--prompt", "ROMEO:", "-n", "400", "--seed", "1"], "", ""],
    ["chat", ["chat", "-n", "200", "--seed", "1"], "Good morrow.\nWhat news?\nAnd then?\n", "no chat template in the checkpoint: using the plain dialogue format\n"],
    ["logits --all", ["logits", "--prompt", "ROMEO:\nWhat light through yonder window breaks?".repeat(4), "--all"], "", ""],
    ["perplexity", ["perplexity", "--file", "models/shakespeare-tiny/heldout-short.txt", "--ctx", "64"], "", ""],
    ["info", ["info"], "", ""],
    ["info --load", ["info", "--load"], "", ""],
    ["synth", ["synth", "--preset", "smollm2-135m", "--layers", "1", "--vocab", "1024", "--out", join(tmp, "synth"), "--shard-mb", "1"], "", /^(synth: \d+% of \d+ MB of weights\n)+$/],
    ["convert", ["convert", "--model", "models/shakespeare-tiny", "--out", join(tmp, "tiny.gguf")], "", ""],
    ["--help", ["--help"], "", ""],
    ["generate --help", ["generate", "--help"], "", ""],
  ])("%s exits quietly with status 0", async (_name, args, input, stderr) => {
    const r = await intoHead(args, input);
    expect(r.head).toHaveLength(1);
    expect([0, SIGPIPE_STATUS]).toContain(r.status);
    if (typeof stderr === "string") expect(r.stderr).toBe(stderr);
    else expect(r.stderr).toMatch(stderr);
  });

  it("serve keeps serving when the reader of its listening line leaves, and Ctrl-C still ends it quietly", async () => {
    const child = spawn(process.execPath, [CLI, "serve", "--port", "0", "--parallel", "1"], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const closed = new Promise<number | null>((ok) => child.on("close", ok));
    const first = await new Promise<string>((ok) => child.stdout.once("data", (d: Buffer) => ok(d.toString())));
    child.stdout.destroy(); // as head does after its byte
    const url = /listening on (http:\/\/\S+)/.exec(first)?.[1];
    expect(url).toBeDefined();
    expect((await fetch(`${url}/health`)).status).toBe(200);
    child.kill("SIGINT");
    expect(await closed).toBe(0);
    expect(stderr).toBe("SIGINT: no new requests; waiting for 0 running\n");
  });

  it("a generation stops at once when its reader leaves, rather than running to -n", async () => {
    const args = ["generate", "--prompt", "ROMEO:", "-n", "4000", "--seed", "1", "--stats"];
    // Unpiped, this generation runs its 4000 tokens (no end-of-sequence token comes first).
    const full = await run(process.execPath, [CLI, ...args], { maxBuffer: 64 << 20 });
    expect(full.stderr).toMatch(/^decode +[\d.]+ tokens\/s \(4000 tokens in /m);
    const r = await intoHead(args);
    expect(r.status).toBe(0);
    const generated = Number(/^decode +[\d.]+ tokens\/s \((\d+) tokens in /m.exec(r.stderr)?.[1]);
    expect(generated).toBeGreaterThan(0);
    expect(generated).toBeLessThan(1000);
    expect(r.stderr).not.toMatch(/stopped|Error|EPIPE|\n +at /);
  });
});
