// The layer rules of .dependency-cruiser.cjs: src/ obeys them, and each rule really fires on a tree that
// breaks it (test/fixtures/layers/), so a rule that silently matches nothing would fail here.
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const config = join(repo, ".dependency-cruiser.cjs");
const depcruise = join(repo, "node_modules", ".bin", "depcruise");

interface Violation {
  rule: { name: string };
  from: string;
  to: string;
}

function violations(cwd: string): Violation[] {
  let out: string;
  try {
    out = execFileSync(depcruise, ["src", "--config", config, "--output-type", "json"], { cwd, encoding: "utf8" });
  } catch (err) {
    // depcruise exits non-zero when it finds violations; the JSON report is still on stdout.
    out = (err as { stdout: string }).stdout;
  }
  return (JSON.parse(out) as { summary: { violations: Violation[] } }).summary.violations;
}

describe("import rules", () => {
  it("src/ has no upward import, no cycle, no node:* outside the Node seam", () => {
    expect(violations(repo).map((v) => `${v.rule.name}: ${v.from} -> ${v.to}`)).toEqual([]);
  }, 60_000);

  it("each rule fires on a tree that breaks it", () => {
    const found = violations(join(repo, "test", "fixtures", "layers")).map((v) => `${v.rule.name}: ${v.from}`);
    expect(found.sort()).toEqual(
      [
        "browser-not-node: src/browser/uses-node.ts",
        "cli-through-api: src/cli/deep.ts",
        "model-imports-only-below: src/model/upward.ts",
        "no-cycles: src/kernels/a.ts",
        "node-builtins-in-the-node-seam: src/kernels/a.ts",
      ].sort(),
    );
  }, 60_000);
});
