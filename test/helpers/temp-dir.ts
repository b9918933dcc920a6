// Temporary folders that a test file makes, removed when the file's tests have run. The afterAll below is
// registered when this module is evaluated, which vitest does while it collects a test file importing it
// (directly or through another helper), so the hook joins that file's root suite; each test file gets a
// module graph of its own (vitest's default isolation, also with one worker), so each file removes what it
// made. A test that needs a folder gone sooner removes it itself.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll } from "vitest";

const made: string[] = [];

afterAll(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A new folder under the system's temporary one, named `prefix` + 6 random characters; removed after the file's tests. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}
