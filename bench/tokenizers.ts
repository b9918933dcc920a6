// `npm run bench:tokenizers`: the tokenizers of the real hub files (scripts/hub-models.ts, fetched by
// `npm run fetch:models`) beside llama.cpp's, in one run: how long building each takes from the file's
// metadata (ours: tokenizerFromGgml; llama.cpp: node-llama-cpp loading the vocabulary only), and how fast
// each encodes the same English text, with special tokens parsed: the first time after the build (ours
// then compiles its code paths) and again. Each figure is the median of RUNS runs; the first line gives the
// machine's load, as the machine is shared.
//
// Environment: MOBILELLM_HUB_DIR, MOBILELLM_PEER_NLC_DIR (scripts/peers.ts); BENCH_TOKENIZER_RUNS (default 5).
import { existsSync, readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { GgufFile } from "../src/model/checkpoint/gguf.js";
import { openFileSource } from "../src/node/file-source.js";
import { tokenizerFromGgml } from "../src/text/ggml-tokenizer.js";
import { HUB_MODELS, hubPath } from "../scripts/hub-models.js";
import { peerNlcDir } from "../scripts/peers.js";
import { cpuLlama, importNodeLlamaCpp } from "./node-llama-cpp.js";
import { median } from "./machine.js";

const RUNS = Number(process.env.BENCH_TOKENIZER_RUNS ?? 5);

/** English prose with code, tables and numbers in it: this repository's README and architecture notes. */
const TEXT = readFileSync("README.md", "utf8") + "\n" + readFileSync("docs/architecture.md", "utf8");

interface NlcVocab {
  tokenize(text: string, specialTokens: boolean): ArrayLike<number>;
  dispose(): Promise<void>;
}

async function main(): Promise<void> {
  const llama = await cpuLlama(await importNodeLlamaCpp(peerNlcDir()));
  const load = (llama as unknown as { loadModel(o: Record<string, unknown>): Promise<NlcVocab> }).loadModel.bind(llama);
  console.log(`load average ${loadavg().map((x) => x.toFixed(1)).join(" ")}; ${RUNS} runs each, medians; text of ${TEXT.length} characters`);
  for (const m of HUB_MODELS) {
    const path = hubPath(m);
    if (!existsSync(path)) {
      console.log(`${m.file}: missing (npm run fetch:models)`);
      continue;
    }
    const oursBuild: number[] = [];
    const theirsBuild: number[] = [];
    const oursFirst: number[] = [];
    const oursEncode: number[] = [];
    const theirsEncode: number[] = [];
    let tokens = 0;
    for (let r = 0; r < RUNS; r++) {
      let t0 = performance.now();
      const file = await GgufFile.open(await openFileSource(path));
      const text = tokenizerFromGgml(file.metadata);
      oursBuild.push(performance.now() - t0);
      await file.close();
      t0 = performance.now();
      const vocab = await load({ modelPath: path, gpuLayers: 0, vocabOnly: true });
      theirsBuild.push(performance.now() - t0);
      t0 = performance.now();
      text.tokenizer.encode(TEXT, false);
      oursFirst.push(performance.now() - t0);
      t0 = performance.now();
      const ids = text.tokenizer.encode(TEXT, false);
      oursEncode.push(performance.now() - t0);
      t0 = performance.now();
      const theirs = vocab.tokenize(TEXT, true);
      theirsEncode.push(performance.now() - t0);
      if (ids.length !== theirs.length || ids.some((id, i) => id !== theirs[i])) throw new Error(`${m.file}: the ids differ from llama.cpp's`);
      tokens = ids.length;
      await vocab.dispose();
    }
    const ms = (xs: number[]) => `${median(xs).toFixed(0)} ms`;
    const rate = (xs: number[]) => `${((tokens / median(xs)) * 1000 / 1e6).toFixed(2)} M tokens/s`;
    console.log(`${m.file}: build ${ms(oursBuild)} (llama.cpp ${ms(theirsBuild)}); encode ${tokens} tokens: first ${ms(oursFirst)}, then ${ms(oursEncode)}, ${rate(oursEncode)} (llama.cpp ${ms(theirsEncode)}, ${rate(theirsEncode)}); same ids`);
  }
  await llama.dispose();
}

await main();
