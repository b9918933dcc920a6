// Hostile tokenizer and template metadata in GGUF files (issue 24's list, found by crafting files), each run
// through the CLI as a child process: refused with one stderr line naming the file and the key, or served,
// within seconds and a few hundred MB, never a hang, a crash or a multi-GB heap. The files are small
// llama.cpp "llama" models (one layer, hidden 64) with the metadata edited, and the bundled model's GGUF.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bool, f32, i32s, str, strings, u32, type GgufTensorToWrite, type GgufValue } from "../../src/model/checkpoint/gguf-writer.js";
import { MAX_MERGES } from "../../src/text/ggml-tokenizer.js";
import { boundedCli, type BoundedRun } from "../helpers/bounded-cli.js";
import { gpt2Vocab, removeAll, tinyLlamaGguf, type Metadata } from "../helpers/tiny-llama-gguf.js";
import { rewriteGguf } from "../checkpoint/gguf-helpers.js";

const made: string[] = [];
const tmp = () => {
  const dir = mkdtempSync(join(tmpdir(), "mobilellm-hostile-text-"));
  made.push(dir);
  return dir;
};
afterAll(() => {
  made.forEach((d) => rmSync(d, { recursive: true, force: true }));
  removeAll(tiny);
});
const tiny: string[] = [];
const llamaFile = (edit: (md: Metadata) => void, opts?: { vocab?: number; shape?: Record<string, unknown> }) => tinyLlamaGguf(edit, tiny, opts);

/** The bundled model's GGUF with the value of `key` replaced by `edit`'s, written as `name`; its path. */
async function bundledWith(name: string, key: string, edit: (v: GgufValue) => GgufValue): Promise<string> {
  const bytes = await rewriteGguf(new Uint8Array(readFileSync("models/shakespeare-tiny.gguf")), {
    metadata: (entries) => {
      const i = entries.findIndex(([k]) => k === key);
      entries[i] = [key, edit(entries[i][1])];
    },
  });
  const path = join(tmp(), name);
  writeFileSync(path, bytes);
  return path;
}

/** Refused: exit 1 or 2, one stderr line matching `message`, within `seconds` and `mib`. */
function expectRefused(r: BoundedRun, message: RegExp, seconds = 20, mib = 400): void {
  expect(r.signal, r.stderr).toBeNull();
  expect([1, 2], r.stderr).toContain(r.code);
  const lines = r.stderr.trim().split("\n");
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(message);
  expect(r.seconds).toBeLessThan(seconds);
  if (r.peakMiB !== null) expect(r.peakMiB).toBeLessThan(mib);
}

/** Served: exit 0 within `seconds` and `mib`. */
function expectServed(r: BoundedRun, seconds = 20, mib = 400): void {
  expect(r.signal, r.stderr).toBeNull();
  expect(r.code, r.stderr).toBe(0);
  expect(r.seconds).toBeLessThan(seconds);
  if (r.peakMiB !== null) expect(r.peakMiB).toBeLessThan(mib);
}

const generate = (path: string, prompt = "hello") => boundedCli(["generate", "-q", "--model", path, "--prompt", "-", "-n", "2", "--temp", "0", "--threads", "1"], { seconds: 20, input: prompt });
const info = (path: string) => boundedCli(["info", "--model", path], { seconds: 20 });
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

describe("hostile tokenizer and template metadata in a GGUF file", () => {
  it("a chat template of a million spaces, or of 200,000, is refused by info and generate at once (it hung every load)", async () => {
    const million = await llamaFile((md) => md.set("tokenizer.chat_template", str(" ".repeat(1_000_000))));
    for (const r of [await info(million), await generate(million)]) {
      expectRefused(r, new RegExp(`${esc(million)}: tokenizer\\.chat_template: chat template has 1000000 characters, more than 262144`));
    }
    // Short enough, but the template library's preprocessing would backtrack through the run for minutes.
    const run = await llamaFile((md) => md.set("tokenizer.chat_template", str("{{ x }}" + " ".repeat(200_000) + "{{ y }}")));
    for (const r of [await info(run), await generate(run)]) {
      expectRefused(r, new RegExp(`${esc(run)}: tokenizer\\.chat_template: chat template has too much whitespace in long runs \\(the longest 200000 characters\\)`));
    }
  }, 120_000);

  it("a control or a user-defined token ten million characters long is refused at once (it aborted V8 or took 2 GB)", async () => {
    for (const [type, name] of [[3, "control"], [4, "user-defined"]] as const) {
      const path = await llamaFile((md) => {
        const tokens = [...(md.get("tokenizer.ggml.tokens")!.value as string[])];
        const types = Array.from(md.get("tokenizer.ggml.token_type")!.value as Int32Array);
        tokens[300] = "<|" + "x".repeat(10_000_000) + "|>";
        types[300] = type;
        md.set("tokenizer.ggml.tokens", strings(tokens));
        md.set("tokenizer.ggml.token_type", i32s(types));
      });
      expectRefused(await generate(path), new RegExp(`${esc(path)}: GGUF tokenizer: tokenizer\\.ggml\\.tokens\\[300\\] "<\\|x+\\.\\.\\." \\(10000004 characters\\) is a ${name} token of 10000004 characters; special tokens have at most 256`));
    }
  }, 120_000);

  it("an added token of tokenizer.json ten million characters long is refused at once", async () => {
    const path = await bundledWith("added.gguf", "tokenizer.huggingface.json", (v) => {
      const tj = JSON.parse(v.value as string) as { added_tokens: unknown[] };
      tj.added_tokens.push({ id: 1023, content: "y".repeat(10_000_000), special: true });
      return str(JSON.stringify(tj));
    });
    expectRefused(await generate(path), new RegExp(`${esc(path)}: tokenizer\\.huggingface\\.json: tokenizer\\.json: added_tokens\\[\\d+\\]\\.content has 10000000 characters; added tokens have at most 256`));
  }, 120_000);

  it("a prompt of 200,000 characters against special tokens of the longest length allowed is served in seconds (splitting was quadratic)", async () => {
    const path = await llamaFile((md) => {
      const tokens = [...(md.get("tokenizer.ggml.tokens")!.value as string[])];
      const types = Array.from(md.get("tokenizer.ggml.token_type")!.value as Int32Array);
      // Near-matches at every position of a run of "a": "a" x k then "b", for k up to 255.
      for (let k = 0; k < 200; k++) {
        tokens[300 + k] = "a".repeat(55 + k) + "b";
        types[300 + k] = 4;
      }
      md.set("tokenizer.ggml.tokens", strings(tokens));
      md.set("tokenizer.ggml.token_type", i32s(types));
    });
    // The prompt is encoded whole (every position a near-match of up to 255 characters), then refused as
    // longer than the context: the time is the encoding's.
    const r = await boundedCli(["generate", "-q", "--model", path, "--prompt", "-", "--ctx", "64"], { seconds: 20, input: "a".repeat(200_000) });
    expectRefused(r, /the prompt has 2000\d\d tokens but the context holds 64/, 20, 500);
  }, 120_000);

  it("a SentencePiece vocabulary whose merge list would be ~80x the file is served in seconds and bounded memory (it took 2-4 GB)", async () => {
    // "a", "aa", ..., "a" x 2999: every split of every piece is two pieces, about 4.5 million pairs.
    const n = 3000;
    const path = await llamaFile(
      (md) => {
        const tokens = [...(md.get("tokenizer.ggml.tokens")!.value as string[])];
        const types = Int32Array.from(md.get("tokenizer.ggml.token_type")!.value as Int32Array);
        const scores = Float32Array.from(md.get("tokenizer.ggml.scores")!.value as Float32Array);
        for (let k = 1; k < n - 300; k++) {
          tokens[300 + k] = "a".repeat(k);
          types[300 + k] = 1;
          scores[300 + k] = -k;
        }
        md.set("tokenizer.ggml.tokens", strings(tokens));
        md.set("tokenizer.ggml.token_type", { type: "array", itemType: "i32", value: types });
        md.set("tokenizer.ggml.scores", { type: "array", itemType: "f32", value: scores });
      },
      { vocab: n },
    );
    expectServed(await generate(path, "a".repeat(5000)), 30, 500);
  }, 120_000);

  it("a gpt2 merge list of a million duplicate entries is served with llama.cpp's first ranks; past 2^20 entries it is refused", async () => {
    const dupes = await llamaFile((md) => gpt2Vocab(md, 512, { merges: ["h e", "l l", "ll o", ...new Array<string>(1_000_000).fill("h e")] }));
    expectServed(await generate(dupes, "hello"), 30, 500);
    const many = await llamaFile((md) => gpt2Vocab(md, 512, { merges: new Array<string>(MAX_MERGES + 1).fill("h e") }));
    expectRefused(await generate(many), new RegExp(`${esc(many)}: GGUF tokenizer: tokenizer\\.ggml\\.merges has ${MAX_MERGES + 1} entries, more than ${MAX_MERGES}`), 30, 500);
  }, 180_000);

  it("a gpt2 vocabulary without the byte alphabet is refused (it encoded \"hello world\" to nothing); one lacking a rare byte refuses only text holding it", async () => {
    const none = await llamaFile((md) => gpt2Vocab(md, 512, { tokens: (t) => t.splice(0, 256, ...t.slice(0, 256).map((_, b) => `<b${b}>`)), merges: [] }));
    expectRefused(await generate(none, "hello world"), new RegExp(`${esc(none)}: GGUF tokenizer: tokenizer\\.ggml\\.tokens has no token "ĉ" for the byte 0x09 \\("\\\\t"\\): a byte-level \\(gpt2\\) vocabulary needs one for every byte of ASCII text`));
    const rare = await llamaFile((md) => gpt2Vocab(md, 512, { tokens: (t) => (t[4] = "<no 0x04>") }));
    expectServed(await generate(rare, "hello"));
    expectRefused(await generate(rare, "hel\u0004lo"), /the text holds the byte 0x04, which this vocabulary has no token for/);
  }, 120_000);

  it("a mismatching array-valued key of 30 million items is reported by its first items (the message took 1.8 GB at 10^8)", async () => {
    const path = await bundledWith("array.gguf", "mobilellmpro.attention.sliding_window_pattern", () => ({ type: "array", itemType: "bool", value: new Uint8Array(30_000_000).fill(1) }));
    // The file's 30 MB array is read whole (the reader keeps every value); the message costs nothing more.
    expectRefused(await info(path), new RegExp(`${esc(path)}: metadata key mobilellmpro\\.attention\\.sliding_window_pattern is \\[1, 1, 1, 1, 1, 1, 1, 1, \\.\\.\\. \\(30000000 items\\)\\] but the carried config\\.json implies \\[0, 1, 1, 1, 0, 0\\]$`), 20, 400);
  }, 120_000);

  it("shapes llama.cpp runs but the kernels do not (head_dim 8, hidden 16) are refused naming the key", async () => {
    const head8 = await llamaFile(() => undefined, { shape: { hidden_size: 16, num_attention_heads: 2, intermediate_size: 64 } });
    expectRefused(await generate(head8), new RegExp(`${esc(head8)}: llama\\.attention\\.key_length is 8: this engine's kernels need a multiple of 16 from 16 to 512`));
    const hidden16 = await llamaFile(() => undefined, { shape: { hidden_size: 16, num_attention_heads: 1, intermediate_size: 64 } });
    expectRefused(await generate(hidden16), new RegExp(`${esc(hidden16)}: llama\\.embedding_length is 16: this engine's kernels need the hidden size \\(16\\) to be a multiple of 32`));
  }, 120_000);

  it("a NaN rms_norm_eps is reported as NaN, naming the key (it said \"got null\")", async () => {
    const path = await llamaFile((md) => md.set("llama.attention.layer_norm_rms_epsilon", f32(NaN)));
    expectRefused(await info(path), new RegExp(`${esc(path)}: metadata key llama\\.attention\\.layer_norm_rms_epsilon is NaN, expected a finite number`));
  }, 120_000);

  it("a weight refusal names the file as well as the tensor", async () => {
    const path = await llamaFile(() => undefined);
    const bytes = await rewriteGguf(new Uint8Array(readFileSync(path)), {
      tensors: (ts: GgufTensorToWrite[]) => {
        const t = ts.find((x) => x.name === "blk.0.attn_q.weight")!;
        const data = t.data;
        t.data = async function* () {
          for await (const b of data()) {
            const c = b.slice();
            new Float32Array(c.buffer, c.byteOffset, 2)[1] = NaN;
            yield c;
          }
        };
      },
    });
    writeFileSync(path, bytes);
    expectRefused(await generate(path), new RegExp(`^mobilellm generate: ${esc(path)}: tensor blk\\.0\\.attn_q\\.weight: row 0 contains NaN/Inf at column 1`));
  }, 120_000);
});

describe("the small files above, unedited", () => {
  let path: string;
  beforeAll(async () => {
    path = await llamaFile((md) => gpt2Vocab(md, 512, {}));
  }, 60_000);

  it("load and generate (so each refusal above is the edit's)", async () => {
    expectServed(await generate(path, "hello"));
  }, 60_000);

  it("keep add_bos_token's meaning when the file says it", async () => {
    const withBos = await llamaFile((md) => {
      gpt2Vocab(md, 512, {});
      md.set("tokenizer.ggml.bos_token_id", u32(259));
      md.set("tokenizer.ggml.add_bos_token", bool(true));
    });
    expectServed(await generate(withBos, "hello"));
  }, 60_000);
});
