// --prompt-cache FILE on generate and chat: the saved prefix is reused and extended (--stats counts the
// reused tokens), the output is the uncached run's, and a state of another context is refused.
import { describe, expect, it } from "vitest";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cli } from "../helpers/cli.js";

const PROMPT = "First Citizen: Before we proceed any further, hear me speak. All: Speak, speak.";

describe("--prompt-cache", () => {
  it("generate: a second run reuses the saved prompt and prints what an uncached run prints", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mobilellm-pc-"));
    const file = join(dir, "cache.bin");
    try {
      const first = await cli("generate", "--prompt", PROMPT, "-n", "8", "--temp", "0", "--stats", "--prompt-cache", file);
      expect(first.code).toBe(0);
      expect(first.stderr).toMatch(/prompt {5}(\d+) tokens \(\1 prefilled, 0 reused/);
      expect(statSync(file).size).toBeGreaterThan(1000);
      const longer = `${PROMPT} You are all resolved`;
      const cached = await cli("generate", "--prompt", longer, "-n", "8", "--temp", "0", "--stats", "--prompt-cache", file);
      const cold = await cli("generate", "--prompt", longer, "-n", "8", "--temp", "0");
      expect(cached.code).toBe(0);
      expect(cached.stdout).toBe(cold.stdout);
      const m = /prompt {5}(\d+) tokens \((\d+) prefilled, (\d+) reused/.exec(cached.stderr)!;
      expect(Number(m[3])).toBeGreaterThan(20);
      expect(Number(m[2]) + Number(m[3])).toBe(Number(m[1]));
      const refused = await cli("generate", "--prompt", "x", "--ctx", "16", "--prompt-cache", file);
      expect(refused.code).toBe(1);
      expect(refused.stderr.trim()).toMatch(/^mobilellm generate: --prompt-cache .*cache\.bin: not a usable KV state: it holds \d+ tokens \(saved with context 4096\) but this context holds 16 \(delete the file to start a new cache\)$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("chat: a new session restores the conversation's tokens and prefills only the new ones", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mobilellm-pc-"));
    const file = join(dir, "chat.bin");
    try {
      const first = await cli({ input: "Good morrow\n" }, "chat", "-n", "6", "--temp", "0", "--system", "You are a player.", "--prompt-cache", file);
      expect(first.code).toBe(0);
      const second = await cli({ input: "Good morrow\n" }, "chat", "-n", "6", "--temp", "0", "--system", "You are a player.", "--prompt-cache", file);
      expect(second.code).toBe(0);
      expect(second.stdout).toBe(first.stdout);
      expect(second.stderr).toMatch(/--prompt-cache: \d+ tokens restored/);
      const m = /prompt (\d+) tokens, (\d+) prefilled, (\d+) reused/.exec(second.stderr)!;
      expect(Number(m[2])).toBe(1);
      expect(Number(m[3])).toBe(Number(m[1]) - 1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
