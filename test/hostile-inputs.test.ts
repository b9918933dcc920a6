// Hostile inputs to the CLI, each run as a child process: refused within a time and memory bound with one
// line on stderr and a non-zero exit code, never a crash (a signal, V8's exit 133/134), a hang or a
// native stack trace.
import { describe, expect, it } from "vitest";
import { copyFileSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { boundedCli, type BoundedRun } from "./helpers/bounded-cli.js";
import { BUNDLED, modelVariant } from "./helpers/model-folder.js";
import { tempDir } from "./helpers/temp-dir.js";

/** A copy of the bundled model folder with `patch` applied to its config.json (and `files` written). */
function folderWith(patch: Record<string, unknown>, files: Record<string, string> = {}): string {
  const dir = tempDir("mobilellm-hostile-");
  for (const f of readdirSync(BUNDLED)) copyFileSync(join(BUNDLED, f), join(dir, f));
  const config = JSON.parse(readFileSync(join(BUNDLED, "config.json"), "utf8")) as Record<string, unknown>;
  writeFileSync(join(dir, "config.json"), JSON.stringify({ ...config, ...patch }));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

function file(text: string): string {
  const path = join(tempDir("mobilellm-hostile-"), "f");
  writeFileSync(path, text);
  return path;
}

/**
 * Refused: exit 1 or 2, one stderr line matching `message`, within `seconds` and `mib`. The times allow
 * for a CI machine running other test files at once (unloaded, each case takes about a second); the
 * memory bounds are what tells a refusal from the multi-GB runs these inputs caused before.
 */
function expectRefused(r: BoundedRun, message: RegExp, seconds: number, mib: number): void {
  expect(r.signal).toBeNull();
  expect([1, 2]).toContain(r.code);
  const lines = r.stderr.trim().split("\n");
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(message);
  expect(r.seconds).toBeLessThan(seconds);
  if (r.peakMiB !== null) expect(r.peakMiB).toBeLessThan(mib);
}

describe("hostile inputs to the CLI", () => {
  it("a chat template looping 10^9 times is refused within 30 s and 400 MB", async () => {
    const t = file("{% for i in range(1000000000) %}x{% endfor %}");
    const r = await boundedCli(["chat", "-q", "--template", t], { seconds: 30, input: "hi\n" });
    expectRefused(r, /chat template number 1000000000 is out of range/, 30, 400);
  });

  it("a chat template with nested 10^5 loops is refused within 30 s and 400 MB", async () => {
    const t = file("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}");
    const r = await boundedCli(["chat", "-q", "--template", t], { seconds: 30, input: "hi\n" });
    expectRefused(r, /chat template runs too long: .* past 1000000 steps/, 30, 400);
  });

  it("a checkpoint's own template doubling a string is refused within 30 s and 400 MB", async () => {
    const dir = folderWith({}, { "chat_template.jinja": "{% set s = 'x' %}{% for i in range(40) %}{% set s = s ~ s %}{% endfor %}{{ s }}" });
    const r = await boundedCli(["chat", "-q", "--model", dir], { seconds: 30, input: "hi\n" });
    expectRefused(r, /chat template output too large: a string of \d+ characters/, 30, 400);
  });

  it("num_hidden_layers 10^6 is refused within 15 s and 200 MB, also by info (it took 19 s and 1.9 GB)", async () => {
    const dir = folderWith({ num_hidden_layers: 1_000_000, layer_types: undefined, no_rope_layers: undefined });
    for (const cmd of ["generate", "info"]) {
      const args = cmd === "generate" ? ["generate", "-q", "--model", dir, "--prompt", "x"] : ["info", "--model", dir];
      const r = await boundedCli(args, { seconds: 15 });
      expectRefused(r, /"num_hidden_layers" is 1000000, more than the 1024 this engine accepts/, 15, 200);
    }
  });

  it("num_hidden_layers within the cap but beyond the checkpoint's tensors is refused before any name is built", async () => {
    const dir = folderWith({ num_hidden_layers: 1000, layer_types: undefined, no_rope_layers: undefined });
    const r = await boundedCli(["generate", "-q", "--model", dir, "--prompt", "x"], { seconds: 15 });
    expectRefused(r, /num_hidden_layers is 1000 but the checkpoint has tensors for 6 layers \(\d+ tensors; each layer needs 9\)/, 15, 300);
  });

  it("a context whose KV cache and RoPE table cannot fit in 4 GiB is refused before the RoPE table is built", async () => {
    const dir = folderWith({ max_position_embeddings: 2 ** 40 });
    const r = await boundedCli(["generate", "-q", "--model", dir, "--prompt", "x", "--ctx", "10000000"], { seconds: 15 });
    expectRefused(r, /the wasm engine needs at least \d+\.\d MiB for context 10000000 .*more than the 4096 MiB of wasm32 memory/, 15, 300);
  });

  it("logits, perplexity and generate refuse non-finite results (finite weights that overflow) instead of printing NaN or the prompt", async () => {
    // bf16 weights near their maximum: finite in the file, beyond float32 once multiplied in the engine.
    const dir = await modelVariant({ tensor: (name, data, shape) => ({ name, shape, data: name === "model.norm.weight" ? data.fill(3e38) : data }) });
    const logits = await boundedCli(["logits", "--model", dir, "--tokens", "1000,872,266", "--all"], { seconds: 60 });
    expectRefused(logits, /mobilellm logits: the logits are not finite \((NaN|-?Infinity) at position \d, token \d+\)/, 60, 400);
    expect(logits.stdout).toBe("");
    const text = file("ROMEO:\nWhat light through yonder window breaks?\n");
    const ppl = await boundedCli(["perplexity", "--model", dir, "--file", text, "--ctx", "8"], { seconds: 60 });
    expectRefused(ppl, /mobilellm perplexity: perplexity: the log-probability of token \d+ is (NaN|-?Infinity)/, 60, 400);
    expect(ppl.stdout).toBe("");
    const gen = await boundedCli(["generate", "--model", dir, "--prompt", "ROMEO:", "-n", "4"], { seconds: 60 });
    expectRefused(gen, /mobilellm generate: no token can be sampled: every allowed logit is -Infinity or NaN/, 60, 400);
    expect(gen.stdout).toBe(""); // the prompt was echoed before the error
  });

  it("a tokenizer.json whose Split pattern backtracks catastrophically is refused at load, not hung on the prompt", async () => {
    const t = JSON.parse(readFileSync(join(BUNDLED, "tokenizer.json"), "utf8"));
    t.pre_tokenizer.pretokenizers[0].pattern = { Regex: "(a+)+$" };
    const dir = folderWith({}, { "tokenizer.json": JSON.stringify(t) });
    const r = await boundedCli(["generate", "-q", "--model", dir, "--prompt", "a".repeat(34) + "!"], { seconds: 15 });
    expectRefused(r, /pre_tokenizer\.pretokenizers\[0\]\.pattern\.Regex is refused, as it could backtrack .*nested quantifiers/, 15, 300);
  });

  it("an added token id at or beyond vocab_size is refused at load", async () => {
    const t = JSON.parse(readFileSync(join(BUNDLED, "tokenizer.json"), "utf8"));
    t.added_tokens.push({ id: 5000, content: "<|far|>", special: true });
    const dir = folderWith({}, { "tokenizer.json": JSON.stringify(t) });
    const r = await boundedCli(["generate", "-q", "--model", dir, "--prompt", "x"], { seconds: 15 });
    expectRefused(r, /token id 5000 \("<\|far\|>"\) is not below the model's vocab_size 1024/, 15, 300);
  });

  it("--threads 4096 is refused before loading, within 15 s and 200 MB (it took over 60 s and 10 GB)", async () => {
    const r = await boundedCli(["generate", "-q", "--prompt", "x", "--threads", "4096"], { seconds: 15 });
    expectRefused(r, /^mobilellm generate: threads 4096 is more than this machine can use: at most \d+ \(twice the \d+ available cores, and never more than 64\)$/, 15, 200);
  });
});

