// llama.cpp, through node-llama-cpp installed by `npm run fetch:models` (scripts/peers.ts), for tests that
// hold this project against it. The same rules as the hub files (test/helpers/hub-files.ts): in CI a
// missing peer fails the test; elsewhere the test is skipped with a line saying how to install it.
import { cpuLlama, importNodeLlamaCpp, installedVersion, type NlcLlama } from "../../bench/node-llama-cpp.js";
import { NODE_LLAMA_CPP_VERSION, peerNlcDir } from "../../scripts/peers.js";

/** The part of node-llama-cpp's LlamaModel the tokenizer tests use (it is not a dependency: no types). */
export interface NlcVocabModel {
  tokenize(text: string, specialTokens: boolean): Uint32Array | number[];
  detokenize(tokens: readonly number[], specialTokens: boolean): string;
  isEogToken(token: number): boolean;
  readonly tokens: { bos: number | null; eos: number | null; eot: number | null; shouldPrependBosToken: boolean; shouldAppendEosToken: boolean };
  dispose(): Promise<void>;
}

/** True when node-llama-cpp is installed in the peer folder; in CI its absence throws. */
export function nodeLlamaCppPresent(): boolean {
  const dir = peerNlcDir();
  if (installedVersion(dir, "node-llama-cpp") === NODE_LLAMA_CPP_VERSION) return true;
  if (process.env.CI) throw new Error(`node-llama-cpp ${NODE_LLAMA_CPP_VERSION} missing in CI from ${dir} (npm run fetch:models)`);
  console.warn(`skipping tests that need node-llama-cpp ${NODE_LLAMA_CPP_VERSION} in ${dir}: run \`npm run fetch:models\` to install it`);
  return false;
}

/** llama.cpp's CPU backend from the peer folder (dispose it when done). */
export async function peerLlama(): Promise<NlcLlama> {
  return cpuLlama(await importNodeLlamaCpp(peerNlcDir()));
}

/** A GGUF file's vocabulary as llama.cpp loads it (no weights). */
export async function peerVocab(llama: NlcLlama, path: string): Promise<NlcVocabModel> {
  const load = (llama as unknown as { loadModel(o: Record<string, unknown>): Promise<NlcVocabModel> }).loadModel;
  return load.call(llama, { modelPath: path, gpuLayers: 0, vocabOnly: true });
}
