// The token sequence whose keys and values sit in a backend's KV cache, so a new request that starts
// with the same tokens (the next turn of a chat, a prompt extended by a few words) only runs the tokens
// that differ.
//
// Every position is computed the same way whatever block it was run in (the engine's prefill equals
// decode bit for bit), so reusing the cache gives exactly the logits of running the whole sequence afresh.
import type { Backend } from "../model/backend.js";
import { canResumeAt } from "../model/memory.js";

export interface PrefillResult {
  /** Next-token logits after the last prompt token. */
  logits: Float32Array;
  /** Prompt tokens whose cache entries were reused. */
  reused: number;
  /** Prompt tokens run through the model. */
  prefilled: number;
}

/** Tokens per forward call while prefilling: one engine block, so an abort is seen within one block. */
const PREFILL_CHUNK = 32;

export class CachedSequence {
  private cached: number[] = [];

  constructor(readonly backend: Backend) {}

  /** Tokens whose keys and values are in the cache, in order from position 0. */
  get tokens(): readonly number[] {
    return this.cached;
  }

  /** Forgets the cache (the next prompt is prefilled in full). */
  reset(): void {
    this.cached = [];
  }

  /**
   * Makes the cache hold exactly `prompt` and returns the logits after it. Reuses the longest common
   * prefix with what is cached when the cache can resume there (see canResumeAt), else starts over.
   * `between` runs between chunks (the caller yields to the event loop and checks for an abort there).
   */
  async prefill(prompt: readonly number[], between: () => Promise<void>): Promise<PrefillResult> {
    const b = this.backend;
    if (prompt.length === 0) throw new RangeError("the prompt is empty");
    if (prompt.length > b.contextLength) {
      throw new RangeError(`the prompt has ${prompt.length} tokens but the context holds ${b.contextLength}; shorten it or raise the context length`);
    }
    let keep = 0;
    while (keep < this.cached.length && keep < prompt.length && this.cached[keep] === prompt[keep]) keep++;
    // The last prompt token always runs: its logits are what the caller needs.
    keep = Math.min(keep, prompt.length - 1);
    if (!canResumeAt(b.config, b.contextLength, this.cached.length, keep)) keep = 0;
    this.cached = prompt.slice(0, keep);
    let logits: Float32Array | undefined;
    for (let i = keep; i < prompt.length; i += PREFILL_CHUNK) {
      const chunk = prompt.slice(i, i + PREFILL_CHUNK);
      logits = b.forward(chunk, i, false)[0];
      this.cached.push(...chunk);
      if (i + PREFILL_CHUNK < prompt.length) await between();
    }
    return { logits: logits as Float32Array, reused: keep, prefilled: prompt.length - keep };
  }

  /** Runs one more token; returns the logits after it. */
  append(token: number): Float32Array {
    const logits = this.backend.forward([token], this.cached.length, false)[0];
    this.cached.push(token);
    return logits;
  }

  get full(): boolean {
    return this.cached.length >= this.backend.contextLength;
  }
}
