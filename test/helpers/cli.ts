// Runs the built CLI (dist/, as `npx mobilellm` does) as a child process, the way a user runs it.
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);
export const CLI = "dist/src/cli/main.js";

export async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { maxBuffer: 64 << 20 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}
