// `mobilellm convert` and `mobilellm info` on its output, run as a child process from the built dist/.
import { afterAll, describe, expect, it } from "vitest";
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cli } from "./helpers/cli.js";

const tmp = mkdtempSync(join(tmpdir(), "mobilellm-convert-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("mobilellm convert", () => {
  const out = join(tmp, "tiny.gguf");

  it("writes the bundled model as one GGUF and refuses to overwrite it without --force", async () => {
    const r = await cli("convert", "--model", "models/shakespeare-tiny", "--out", out);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^wrote .*tiny\.gguf: 56 tensors \(Q4_0 matrices, F32 norms\), [\d,]+ bytes in [\d.]+ s\n$/);
    const size = statSync(out).size;
    expect(r.stdout).toContain(size.toLocaleString("en-US"));
    const again = await cli("convert", "--model", "models/shakespeare-tiny", "--out", out);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^mobilellm convert: .*tiny\.gguf exists; pass --force to replace it\n$/);
    const forced = await cli("convert", "--model", "models/shakespeare-tiny", "--out", out, "--force");
    expect(forced.code).toBe(0);
    expect(readdirSync(tmp).filter((f) => f.endsWith(".partial"))).toEqual([]);
  });

  it("says what is wrong in one line", async () => {
    expect((await cli("convert", "--out", out)).stderr).toBe("mobilellm convert: --model is required\n");
    expect((await cli("convert", "--model", "models/shakespeare-tiny")).stderr).toBe("mobilellm convert: --out is required\n");
    const missing = await cli("convert", "--model", join(tmp, "nope"), "--out", join(tmp, "x.gguf"));
    expect(missing.stderr).toMatch(/^mobilellm convert: model folder .*nope does not exist\n$/);
    // a folder without config.json: refused before anything is written
    const bad = await cli("convert", "--model", tmp, "--out", join(tmp, "y.gguf"));
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^mobilellm convert: config\.json is missing from .*\n$/);
    expect(existsSync(join(tmp, "y.gguf"))).toBe(false);
    expect(existsSync(join(tmp, "y.gguf.partial"))).toBe(false);
  });

  it("info on the GGUF prints what it prints for the folder, plus the file's tensor types and bytes", async () => {
    if (!existsSync(out)) await cli("convert", "--model", "models/shakespeare-tiny", "--out", out);
    const folder = (await cli("info", "--model", "models/shakespeare-tiny")).stdout.split("\n");
    const file = await cli("info", "--model", out);
    expect(file.code).toBe(0);
    const lines = file.stdout.split("\n");
    const same = (l: string) => !/^(model|stored) /.test(l) && l !== "";
    expect(lines.filter(same).filter((l) => !/^(gguf file|tensors|computed) /.test(l))).toEqual(folder.filter(same));
    expect(file.stdout).toMatch(/computed +with the int4 recipe the file's Q4_0 blocks hold, times int8 activations per token/);
    expect(file.stdout).toMatch(/stored +3,518,720 B .*\(Q4_0\+F32\)/);
    expect(file.stdout).toMatch(/gguf file +[\d,]+ B \([\d.]+ MiB\): GGUF v3, alignment 32, tensor data from byte [\d,]+/);
    expect(file.stdout).toMatch(/tensors +Q4_0 43 tensors, 3,502,080 B \(3\.3 MiB\); F32 13 tensors, 16,640 B/);
    const json = JSON.parse((await cli("info", "--model", out, "--json")).stdout) as { gguf: { types: Record<string, { tensors: number; bytes: number }> } };
    expect(json.gguf.types).toEqual({ Q4_0: { tensors: 43, bytes: 3502080 }, F32: { tensors: 13, bytes: 16640 } });
  });

  it("info refuses a file that is not a GGUF in one line", async () => {
    const junk = join(tmp, "junk.gguf");
    writeFileSync(junk, "not a model at all, just some text");
    const r = await cli("info", "--model", junk);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^mobilellm info: .*junk\.gguf: not a GGUF file \(it does not start with "GGUF"\)\n$/);
  });

  it("generate, chat, logits and perplexity take --model FILE.gguf and answer as for the folder", async () => {
    const gguf = join(tmp, "run.gguf");
    expect((await cli("convert", "--model", "models/shakespeare-tiny", "--out", gguf)).code).toBe(0);
    const both = async (...args: string[]) => {
      const folder = await cli(...args, "--model", "models/shakespeare-tiny");
      const file = await cli(...args, "--model", gguf);
      expect(folder.code).toBe(0);
      expect(file.code).toBe(0);
      expect(file.stdout).toBe(folder.stdout);
      return file.stdout;
    };
    expect(await both("generate", "--prompt", "ROMEO:", "-n", "24", "--seed", "42", "--threads", "1")).toMatch(/^ROMEO:/);
    expect(JSON.parse(await both("logits", "--tokens", "1000,872,266,471", "--all")).shape).toEqual([4, 1024]);
    expect(await both("perplexity", "--file", "models/shakespeare-tiny/heldout-short.txt", "--ctx", "64")).toMatch(/^tokens \d+\nnll [\d.]+\nperplexity [\d.]+\n$/);
    const missing = await cli("generate", "--prompt", "x", "--model", join(tmp, "missing.gguf"));
    expect(missing.stderr).toMatch(/^mobilellm generate: GGUF file .*missing\.gguf does not exist\n$/);
    const chat = async (model: string) => (await cli({ input: "Good morrow, sir.\n" }, "chat", "--seed", "7", "-n", "16", "--model", model)).stdout;
    expect(await chat(gguf)).toBe(await chat("models/shakespeare-tiny"));
  });
});
