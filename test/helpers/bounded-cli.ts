// Runs the built CLI as a child process under a wall-clock limit and measures its peak memory, for tests of
// the form "hostile input X is refused within N s and M MB, with one line on stderr".
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CLI } from "./cli.js";

export interface BoundedRun {
  /** Exit code, or null when a signal (or the time limit) ended the process. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  seconds: number;
  /** Peak resident set in MiB, from GNU time; null where /usr/bin/time is missing. */
  peakMiB: number | null;
}

const GNU_TIME = "/usr/bin/time";

export function boundedCli(args: string[], limits: { seconds: number; input?: string }): Promise<BoundedRun> {
  const rssDir = mkdtempSync(join(tmpdir(), "mobilellm-rss-"));
  const rssFile = join(rssDir, "rss");
  const useTime = existsSync(GNU_TIME);
  const [cmd, argv] = useTime
    ? [GNU_TIME, ["-f", "%M", "-o", rssFile, process.execPath, CLI, ...args]]
    : [process.execPath, [CLI, ...args]];
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.stdin.end(limits.input ?? "");
    // Twice the limit before the kill, so a slow run is reported with its time rather than as a kill.
    const timer = setTimeout(() => child.kill("SIGKILL"), limits.seconds * 2000);
    child.on("error", (err) => {
      rmSync(rssDir, { recursive: true, force: true });
      reject(err);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      let peakMiB: number | null = null;
      if (useTime && existsSync(rssFile)) {
        const kb = Number(readFileSync(rssFile, "utf8").trim().split("\n").pop());
        if (Number.isFinite(kb)) peakMiB = kb / 1024;
      }
      rmSync(rssDir, { recursive: true, force: true });
      // GNU time reports a child's non-zero status as its own line before the figure; the status is
      // already in `code`.
      resolve({ code, signal, stdout, stderr, seconds: (performance.now() - t0) / 1000, peakMiB });
    });
  });
}
