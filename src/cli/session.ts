// What `generate` and `chat` share around a generation: Ctrl-C as an abort, the stop message, --stats,
// --prompt-cache.
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { type Model, type GenerationStats, type StopReason, kvCacheBytes } from "../api.js";
import { describeLoad } from "./load-flags.js";

function bytes(n: number): string {
  return n < 2 ** 20 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 2 ** 20).toFixed(1)} MiB`;
}

/**
 * Runs `work` while the first Ctrl-C aborts `ac` (the generation ends after its current token); a second
 * Ctrl-C exits at once.
 */
export async function withCtrlC<T>(ac: AbortController, work: () => Promise<T>): Promise<T> {
  const onSigint = () => {
    if (ac.signal.aborted) process.exit(130);
    ac.abort();
  };
  process.on("SIGINT", onSigint);
  try {
    return await work();
  } finally {
    process.off("SIGINT", onSigint);
  }
}

/** One line on why generation ended, when the reason is worth telling (null otherwise). */
export function describeStop(reason: StopReason, contextLength: number): string | null {
  if (reason === "context") return `stopped: the context of ${contextLength} tokens is full (raise --ctx)`;
  if (reason === "aborted") return "stopped: interrupted";
  return null;
}

/**
 * Positions a generation left in the KV cache: the prompt and every generated token but the last, which
 * was sampled from the logits of the one before and never run.
 */
export function cachedPositions(s: GenerationStats): number {
  return s.promptTokens + Math.max(0, s.generatedTokens - 1);
}

/** --stats: speeds, time to first token and KV cache bytes, one line each. */
export function formatStats(s: GenerationStats, model: Model): string {
  const positions = cachedPositions(s);
  const i = model.info;
  const f1 = (x: number) => x.toFixed(1);
  const lines = [
    `prompt     ${s.promptTokens} tokens (${s.prefilledTokens} prefilled, ${s.reusedTokens} reused from the KV cache)`,
    `prefill    ${f1(s.prefillTokensPerSecond)} tokens/s (${f1(s.prefillMs)} ms)`,
    `first tok  ${f1(s.timeToFirstTokenMs)} ms`,
    `decode     ${f1(s.decodeTokensPerSecond)} tokens/s (${s.generatedTokens} tokens in ${f1(s.decodeMs)} ms after the first)`,
  ];
  if (i.kvCacheBytes !== null) {
    const used = kvCacheBytes(model.config, Math.max(1, positions));
    lines.push(`kv cache   ${bytes(used.data + used.scales)} holding ${positions} positions, ${bytes(i.kvCacheBytes)} allocated for ${i.contextLength} (int8 + f32 scales)`);
  }
  const build = i.simd ? `, ${i.simd.variant === "relaxed" ? "relaxed SIMD" : "SIMD128"}` : "";
  lines.push(`engine     ${i.backend}${build}, ${i.threads} thread${i.threads === 1 ? "" : "s"}`);
  const load = describeLoad(i);
  if (load !== null) lines.push(`load       ${load}`);
  return lines.join("\n");
}

/**
 * --prompt-cache FILE (llama-cli's convention): a state saved by an earlier run is loaded into the model
 * before the prompt runs, so the prompt's cached beginning is reused (--stats counts it); the state is
 * written back after each answer, extended by the new tokens. A file that is not a state of this model
 * (another model, a larger context, damaged) is refused rather than overwritten.
 */
export class PromptCache {
  constructor(
    readonly file: string,
    private readonly model: Model,
  ) {}

  /** Loads the file when it exists; returns the tokens it held (0 when there was none). */
  load(): number {
    let bytes: Buffer;
    try {
      bytes = readFileSync(this.file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return 0;
      throw new Error(`cannot read --prompt-cache ${this.file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    try {
      return this.model.restoreState(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    } catch (err) {
      throw new Error(`--prompt-cache ${this.file}: ${(err as Error).message} (delete the file to start a new cache)`);
    }
  }

  /** Writes the model's state, replacing the file in one step (a crash never leaves half a file). */
  save(): void {
    const tmp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(tmp, this.model.saveState());
    renameSync(tmp, this.file);
  }
}
