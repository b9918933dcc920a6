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
export const PREFILL_CHUNK = 32;

/**
 * What the token loop (generate.ts) runs on: a sequence of cached tokens that can be brought to a prompt
 * and extended a token at a time. CachedSequence runs its backend directly; the serving layer's sequences
 * (src/serve/) hand each step to a scheduler that batches the steps of all its sequences.
 */
export interface TokenSequence {
  /** Tokens whose keys and values are in the cache, in order from position 0. */
  readonly tokens: readonly number[];
  /** True when the cache holds the whole context (no token can be appended). */
  readonly full: boolean;
  /** Positions the sequence can hold. */
  readonly contextLength: number;
  prefill(prompt: readonly number[], between: () => Promise<void>): Promise<PrefillResult>;
  /** Runs one more token; resolves to the logits after it. */
  append(token: number): Float32Array | Promise<Float32Array>;
  /**
   * How many of the backend's decode steps ran split across its threads and on its main thread alone so
   * far (Backend.decodeSteps); absent where that does not count this sequence's steps alone.
   */
  decodeSteps?(): { split: number; solo: number } | undefined;
}

/**
 * How much of `cached` (what `sequence`'s cache holds) a new `prompt` can keep: their longest common prefix,
 * less the prompt's last token (its logits are needed, so it always runs), and 0 where a ring no longer
 * holds what resuming there needs.
 */
export function reusablePrefix(backend: Backend, sequence: number, cached: readonly number[], prompt: readonly number[]): number {
  let keep = 0;
  while (keep < cached.length && keep < prompt.length && cached[keep] === prompt[keep]) keep++;
  keep = Math.min(keep, prompt.length - 1);
  return canResumeAt(backend.config, backend.contextLength, cached.length, keep, backend.kvIntactFrom?.(sequence)) ? keep : 0;
}

/** Refuses a prompt that is empty or longer than the context, with the message a user can act on. */
export function checkPromptFits(prompt: readonly number[], contextLength: number): void {
  if (prompt.length === 0) throw new RangeError("the prompt is empty");
  if (prompt.length > contextLength) {
    throw new RangeError(`the prompt has ${prompt.length} tokens but the context holds ${contextLength}; shorten it or raise the context length`);
  }
}

export class CachedSequence implements TokenSequence {
  private cached: number[] = [];

  /** `sequence`: which of the backend's KV caches this sequence runs in. */
  constructor(
    readonly backend: Backend,
    readonly sequence = 0,
  ) {}

  get contextLength(): number {
    return this.backend.contextLength;
  }

  decodeSteps(): { split: number; solo: number } | undefined {
    return this.backend.decodeSteps?.();
  }

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
    checkPromptFits(prompt, b.contextLength);
    const keep = reusablePrefix(b, this.sequence, this.cached, prompt);
    this.cached = prompt.slice(0, keep);
    let logits: Float32Array | undefined;
    for (let i = keep; i < prompt.length; i += PREFILL_CHUNK) {
      const chunk = prompt.slice(i, i + PREFILL_CHUNK);
      logits = b.forward(chunk, i, false, this.sequence)[0];
      this.cached.push(...chunk);
      if (i + PREFILL_CHUNK < prompt.length) await between();
    }
    return { logits: logits as Float32Array, reused: keep, prefilled: prompt.length - keep };
  }

  /** Runs one more token; returns the logits after it. */
  append(token: number): Float32Array {
    const logits = this.backend.forward([token], this.cached.length, false, this.sequence)[0];
    this.cached.push(token);
    return logits;
  }

  get full(): boolean {
    return this.cached.length >= this.backend.contextLength;
  }

  /** The cached tokens and their KV entries as a state file (src/model/kv-state.ts). */
  save(): Uint8Array {
    return saveState(this.backend, this.sequence, this.cached);
  }

  /** Loads a state file: the cache then holds its tokens (a prompt sharing them prefills only the rest). */
  restore(bytes: Uint8Array): number {
    this.cached = restoreState(this.backend, this.sequence, bytes);
    return this.cached.length;
  }
}

/** The backend's saveState, or an error saying that this backend keeps no state it can save. */
export function saveState(backend: Backend, sequence: number, tokens: readonly number[]): Uint8Array {
  if (backend.saveState === undefined) throw new Error(`the ${backend.name} backend cannot save its KV state (the wasm engine can)`);
  return backend.saveState(sequence, tokens);
}

/** The backend's restoreState; the sequence's tokens, or an error (a refused file leaves the cache as it was). */
export function restoreState(backend: Backend, sequence: number, bytes: Uint8Array): number[] {
  if (backend.restoreState === undefined) throw new Error(`the ${backend.name} backend cannot restore a KV state (the wasm engine can)`);
  return backend.restoreState(sequence, bytes);
}
