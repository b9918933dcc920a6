// Runs the built CLI (dist/, as `npx mobilellm` does) as a child process, the way a user runs it.
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);
export const CLI = "dist/src/cli/main.js";

/** Runs the CLI with `args`; a leading `{ input }` is written to its stdin. */
export async function cli(...args: [{ input: string }, ...string[]] | string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const input = typeof args[0] === "object" ? (args.shift() as { input: string }).input : "";
  try {
    const child = run(process.execPath, [CLI, ...(args as string[])], { maxBuffer: 64 << 20 });
    child.child.stdin?.end(input);
    const { stdout, stderr } = await child;
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}
