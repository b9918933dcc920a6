// The CLI run as a child process, the way a user runs it (from the built dist/, as `npx mobilellm` does).
import { describe, expect, it } from "vitest";
import { copyFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadModel } from "../src/api.js";
import { cli } from "./helpers/cli.js";
import { BUNDLED } from "./helpers/model-folder.js";
import { tempDir } from "./helpers/temp-dir.js";


/**
 * The load line of --stats and info --load: parts in ms that add up to the total (each printed to 0.1 ms),
 * reading and quantizing or repacking among them taking some time.
 */
function expectLoadLine(text: string): void {
  const load = /^load +([\d.]+) ms to ready: model files ([\d.]+) ms, kernels ([\d.]+) ms, read ([\d.]+) ms, quantize\/repack ([\d.]+) ms, threads ([\d.]+) ms, other ([\d.]+) ms \((one thread|the \d+ worker threads? started in [\d.]+ ms, alongside the reads)\)$/m.exec(text);
  expect(load, text).not.toBeNull();
  const [total, ...parts] = load!.slice(1, 8).map(Number);
  expect(Math.abs(parts.reduce((x, y) => x + y, 0) - total)).toBeLessThanOrEqual(0.05 * parts.length);
  expect(parts[2] + parts[3]).toBeGreaterThan(0);
}

describe("mobilellm CLI", () => {
  it("generate continues a prompt with the bundled model", async () => {
    const r = await cli("generate", "--prompt", "ROMEO:\n", "-n", "20");
    expect(r.code).toBe(0);
    expect(r.stdout.startsWith("ROMEO:\n")).toBe(true);
    expect(r.stdout.length).toBeGreaterThan("ROMEO:\n".length + 20);
  });

  it("generate --temp 0 prints the prompt and the API's greedy continuation", async () => {
    const m = await loadModel(undefined, { contextLength: 64 });
    const g = await m.generate("KING:", { temperature: 0, maxNewTokens: 5 }).result;
    const r = await cli("generate", "--prompt", "KING:", "-n", "5", "--temp", "0");
    expect(r.stdout).toBe("KING:" + g.text + "\n");
    expect(r.stderr).toBe("");
  });

  it("generate with a seed is reproducible and --stats reports speeds, first-token time, KV bytes and the load breakdown", async () => {
    const a = await cli("generate", "--prompt", "ROMEO:", "-n", "24", "--seed", "7", "--top-k", "40", "--stats");
    const b = await cli("generate", "--prompt", "ROMEO:", "-n", "24", "--seed", "7", "--top-k", "40");
    expect(a.code).toBe(0);
    expect(a.stdout).toBe(b.stdout);
    expect(a.stderr).toMatch(/prefill +[\d.]+ tokens\/s/);
    expect(a.stderr).toMatch(/decode +[\d.]+ tokens\/s/);
    expect(a.stderr).toMatch(/first tok +[\d.]+ ms/);
    expect(a.stderr).toMatch(/steps +median [\d.]+ ms, p10 [\d.]+, p90 [\d.]+ \(\d+ steps(, [\d.]+% of them split across the threads)?\)$/m);
    expect(a.stderr).toMatch(/kv cache .* KiB holding \d+ positions, [\d.]+ MiB allocated for 4096/);
    expect(a.stderr).toMatch(/engine +wasm, (relaxed SIMD|SIMD128), \d+ threads?/);
    expectLoadLine(a.stderr);
  });

  it("info --load loads the weights and prints the load's breakdown, as text and as JSON", async () => {
    const r = await cli("info", "--load", "--threads", "2");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/the 1 worker thread started in [\d.]+ ms, alongside the reads\)$/m);
    expectLoadLine(r.stdout);
    expect((await cli("info")).stdout).not.toMatch(/^load /m);
    const json = JSON.parse((await cli("info", "--load", "--threads", "1", "--json")).stdout) as { load: { ms: number; threads: number; times: Record<string, number> } };
    expect(json.load.threads).toBe(1);
    expect(Object.keys(json.load.times).sort()).toEqual(["kernels", "quantize", "read", "threads", "threadsStart", "total"]);
    expect(json.load.times.total).toBeLessThanOrEqual(json.load.ms);
    const preset = await cli("info", "--preset", "mobilellm-pro", "--load");
    expect(preset.code).toBe(2);
    expect(preset.stderr).toMatch(/--load needs weights/);
  });

  it("--stats counts the positions the KV cache holds: a full context of 16 holds 16", async () => {
    const r = await cli("generate", "--prompt", "ROMEO:\nWhat say you", "--ctx", "16", "-n", "100", "--temp", "0", "--stats");
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/stopped: the context of 16 tokens is full/);
    expect(r.stderr).toMatch(/kv cache .* holding 16 positions, [\d.]+ KiB allocated for 16 /);
    const short = await cli("generate", "--prompt", "KING:", "-n", "3", "--temp", "0", "--stats");
    const prompt = Number(/prompt +(\d+) tokens/.exec(short.stderr)?.[1]);
    expect(short.stderr).toMatch(new RegExp(`holding ${prompt + 2} positions`));
  });

  it("chat answers each stdin line and reuses the KV cache from the second turn on", async () => {
    const r = await cli({ input: "Good morrow, sir.\nWhat news?\n" }, "chat", "--seed", "1", "-n", "40");
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/plain dialogue/);
    const turns = [...r.stderr.matchAll(/\[turn (\d): prompt (\d+) tokens, (\d+) prefilled, (\d+) reused/g)];
    expect(turns).toHaveLength(2);
    expect(Number(turns[0][4])).toBe(0);
    expect(Number(turns[1][4])).toBeGreaterThan(Number(turns[0][2]));
    expect(Number(turns[1][3]) + Number(turns[1][4])).toBe(Number(turns[1][2]));
    expect(r.stdout.trim().length).toBeGreaterThan(0);
  });

  it("chat tells when the conversation outgrows the context and goes on after /reset", async () => {
    const long = "Good morrow, good sir, and well met upon this fair and sunny day. ".repeat(3);
    const r = await cli({ input: `${long}\n/reset\nHail.\n` }, "chat", "--ctx", "48", "-n", "8", "--seed", "1");
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/the prompt has \d+ tokens but the context holds 48.*\/reset starts a new conversation/);
    expect(r.stderr).toMatch(/conversation reset/);
    expect(r.stderr).toMatch(/\[turn 1: prompt \d+ tokens/);
  });

  it("a folder without tokenizer.json gives logits for token ids; a text command says the tokenizer is missing", async () => {
    const dir = tempDir("mobilellm-no-tokenizer-");
    for (const f of readdirSync(BUNDLED)) if (f !== "tokenizer.json") copyFileSync(join(BUNDLED, f), join(dir, f));
    const want = (await cli("logits", "--tokens", "1000,872,266")).stdout;
    const got = await cli("logits", "--model", dir, "--tokens", "1000,872,266");
    expect(got.code).toBe(0);
    expect(got.stdout).toBe(want);
    const text = await cli("generate", "--model", dir, "--prompt", "ROMEO:", "-n", "2");
    expect(text.code).toBe(1);
    expect(text.stderr).toMatch(/has no tokenizer \(no tokenizer\.json, or a GGUF without tokenizer keys\): text in or out needs one/);
    expect(text.stdout).toBe("");
  });

  it("logits prints {tokens, shape, logits} for the last position, or every position with --all", async () => {
    const last = JSON.parse((await cli("logits", "--tokens", "1000,872,266")).stdout) as { tokens: number[]; shape: number[]; logits: number[][] };
    expect(last.tokens).toEqual([1000, 872, 266]);
    expect(last.shape).toEqual([1, 1024]);
    expect(last.logits).toHaveLength(1);
    const all = JSON.parse((await cli("logits", "--tokens", "1000,872,266", "--all")).stdout) as typeof last;
    expect(all.shape).toEqual([3, 1024]);
    expect(all.logits[2]).toEqual(last.logits[0]);
    const m = await loadModel(undefined, { contextLength: 8 });
    expect(last.logits[0]).toEqual(Array.from(m.logits([1000, 872, 266])[0]));
    // --backend reference runs the float32 oracle: close to, but not the same as, the int4 engine.
    const ref = JSON.parse((await cli("logits", "--tokens", "1000,872,266", "--backend", "reference")).stdout) as typeof last;
    const r = await loadModel(undefined, { backend: "reference", contextLength: 8 });
    expect(ref.logits[0]).toEqual(Array.from(r.logits([1000, 872, 266])[0]));
    expect(ref.logits[0]).not.toEqual(last.logits[0]);
    const byPrompt = JSON.parse((await cli("logits", "--prompt", "ROMEO:")).stdout) as typeof last;
    expect(byPrompt.tokens).toEqual(m.encode("ROMEO:"));
  });

  it("logits --all writes one row per line, so no single write grows with the number of tokens", async () => {
    const { run } = await import("../src/cli/commands/logits.js");
    const writes: string[] = [];
    await run(["--tokens", "1000,872,266,300,301", "--all"], (s) => writes.push(s));
    expect(writes).toHaveLength(5 + 2);
    const m = await loadModel(undefined, { contextLength: 8 });
    const want = m.logits([1000, 872, 266, 300, 301], true).map((r) => Array.from(r));
    await m.dispose();
    expect(JSON.parse(writes.join("\n"))).toEqual({ tokens: [1000, 872, 266, 300, 301], shape: [5, 1024], logits: want });
    const row = Math.max(...want.map((r) => JSON.stringify(r).length));
    expect(Math.max(...writes.map((w) => w.length))).toBeLessThanOrEqual(row + 1);
  });

  it("perplexity follows the chunking protocol and prints JSON", async () => {
    const dir = tempDir("ppl-");
    const file = join(dir, "t.txt");
    writeFileSync(file, "ROMEO:\nWhat light through yonder window breaks? It is the east.\n".repeat(3));
    const r = JSON.parse((await cli("perplexity", "--file", file, "--ctx", "16", "--json")).stdout) as { tokens: number; nll: number; perplexity: number };
    // A chunk's last id is only predicted, never run: 16 positions are enough for --ctx 16.
    const m = await loadModel(undefined, { contextLength: 16 });
    const n = m.encode("ROMEO:\nWhat light through yonder window breaks? It is the east.\n".repeat(3)).length;
    expect(r.tokens).toBe(n - 1); // every id but the first is predicted exactly once
    expect(r.perplexity).toBeCloseTo(Math.exp(r.nll), 9);
    expect(r).toEqual(m.perplexity("ROMEO:\nWhat light through yonder window breaks? It is the east.\n".repeat(3), 16));
    const text = await cli("perplexity", "--file", file, "--ctx", "16");
    expect(text.stdout).toMatch(/^tokens \d+\nnll [\d.]+\nperplexity [\d.]+\n$/);
  });

  it("info gives the parameter count of the model card and the layer map", async () => {
    const r = await cli("info");
    expect(r.code).toBe(0);
    // By default, the bundled model as the build wrote it: one GGUF file beside its folder.
    expect(r.stdout).toMatch(/^model +\S*models\/shakespeare-tiny\.gguf$/m);
    expect(r.stdout).toMatch(/^gguf file +/m);
    expect(r.stdout).toContain("6,230,080"); // the model card's count
    expect(r.stdout).toContain("GSSSGG");
    const pro = await cli("info", "--preset", "mobilellm-pro");
    expect(pro.stdout).toContain("1,084,453,120");
    expect(pro.stdout).toContain("GSSSGSSSGSSSGSSSGSSSGSSSGSSSGG");
    expect(pro.stdout).toMatch(/defaults .*rope_theta/);
  });

  it.each([
    [["generate", "--bogus"], 2, /Unknown option '--bogus'/],
    [["generate"], 2, /--prompt is required/],
    [["generate", "--prompt", "x", "-n", "zero"], 2, /-n must be an integer/],
    [["logits", "--tokens", "1,2", "--backend", "gpu"], 2, /--backend must be one of/],
    [["logits", "--tokens", "1,2", "--simd", "avx"], 2, /--simd must be one of auto, baseline, relaxed/],
    [["frobnicate"], 2, /unknown command "frobnicate"/],
    [["generate", "--model", "/no/such/dir", "--prompt", "x"], 1, /does not exist/],
    [["logits", "--tokens", "1000,5000"], 1, /token id 5000 is outside the vocabulary/],
    [["generate", "--prompt", ""], 1, /the prompt is empty/],
    [["generate", "--prompt", "x", "--temp", "hot"], 2, /--temp must be a number in \[0, 100\]/],
    [["generate", "--prompt", "x", "--top-p", "1.5"], 2, /--top-p must be a number/],
    [["generate", "--prompt", "x", "--seed", "1.5"], 2, /--seed must be an integer/],
    [["generate", "--prompt", "x", "--threads", "0"], 2, /--threads must be an integer >= 1/],
    [["generate", "--prompt", "ROMEO: ".repeat(20), "--ctx", "16"], 1, /prompt has \d+ tokens but the context holds 16/],
    [["chat", "--model", "/no/such/dir"], 1, /does not exist/],
    [["chat", "--template", "/no/such/file"], 2, /cannot read --template/],
    [["perplexity", "--file", "/no/such/file"], 1, /cannot read \/no\/such\/file: ENOENT/],
    // A negative number after a flag is its value (parseArgs alone says "argument is ambiguous").
    [["generate", "--prompt", "x", "--ctx", "-1"], 2, /^mobilellm generate: --ctx must be an integer >= 1, got "-1"$/m],
    [["generate", "--prompt", "x", "-n", "-5"], 2, /-n must be an integer >= 0, got "-5"/],
    [["perplexity", "--file", "models/shakespeare-tiny/heldout-short.txt", "--ctx", "5000"], 1, /^mobilellm perplexity: context 5000 exceeds max_position_embeddings 4096$/m],
  ])("%j fails with exit code %i and one clear line", async (args, code, message) => {
    const r = await cli(...args);
    expect(r.code).toBe(code);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
  });

  it("every command has --help", async () => {
    for (const c of ["generate", "chat", "logits", "perplexity", "info", "synth", "convert"]) {
      const r = await cli(c, "--help");
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`mobilellm ${c}`);
    }
  });
});
