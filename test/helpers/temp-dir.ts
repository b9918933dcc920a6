// Temporary folders that a test file makes, removed when the file's tests have run. The afterAll below is
// registered when this module is evaluated, which vitest does while it collects a test file importing it
// (directly or through another helper), so the hook joins that file's root suite; each test file gets a
// module graph of its own (vitest's default isolation), so each file removes what it made. A plain Node script
// that imports a helper using this (test/threads/lifecycle.test.ts runs such scripts) has no suite to attach
// a hook to: vitest's afterAll throws there, and the folders go when the script exits. A test that needs a
// folder gone sooner removes it itself.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll } from "vitest";

const made: string[] = [];

function removeAll(): void {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
}

try {
  afterAll(removeAll);
} catch {
  process.once("exit", removeAll);
}

/** A new folder under the system's temporary one, named `prefix` + 6 random characters; removed after the file's tests. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}
