// The peers the tests hold this project against, and where `npm run fetch:models` puts them: llama.cpp
// through node-llama-cpp (its prebuilt CPU binary, in a folder of its own outside this repo, never a
// dependency of the package) and llama.cpp's own Python `gguf` package (an independent GGUF decoder,
// `gguf.quants.dequantize`).
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { NLC_DEFAULT_VERSION } from "../bench/node-llama-cpp.js";

/** The node-llama-cpp version the tests run (the benchmarks' default, one place: bench/node-llama-cpp.ts). */
export const NODE_LLAMA_CPP_VERSION = NLC_DEFAULT_VERSION;

/** The Python `gguf` package version the tests use. */
export const PYTHON_GGUF_VERSION = "0.19.0";

/** node-llama-cpp's folder: MOBILELLM_PEER_NLC_DIR, else ~/.cache/mobilellm-wasm/peer-nlc. */
export function peerNlcDir(): string {
  const given = process.env.MOBILELLM_PEER_NLC_DIR;
  return given ? resolve(given) : join(homedir(), ".cache", "mobilellm-wasm", "peer-nlc");
}

/** The Python interpreter used for pip and for the tests' independent checks: PYTHON, else python3. */
export function python(): string {
  return process.env.PYTHON || "python3";
}
