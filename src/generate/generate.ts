// The token loop: prefill the prompt (reusing the cache where it can), then sample, stream and feed back
// one token at a time, until an end-of-sequence token, a stop string, the token budget, a full context
// or an abort.
import type { TokenSequence } from "./sequence.js";
import { IncrementalDecoder, type DecodeFn } from "./detokenizer.js";
import { StopMatcher } from "./stop.js";
import { Sampler, type SamplingOptions, type TokenLogprob } from "./sampler.js";
import { fixedMask, type TokenConstraint } from "./constraint.js";
import type { GrammarSpec } from "../grammar/spec.js";

export type StopReason = "eos" | "stop" | "length" | "context" | "aborted";

export interface GenerateOptions extends SamplingOptions {
  /** New tokens at most (default 256). */
  maxNewTokens?: number;
  /** Strings that end generation (or one string); matched across token boundaries and never part of the output. */
  stop?: string | readonly string[];
  /** Aborting ends generation after the current token (or prefill block) with stopReason "aborted". */
  signal?: AbortSignal;
  /**
   * Output that follows a grammar: `{ gbnf }` (llama.cpp's GBNF) or `{ jsonSchema }` (docs/structured-output.md).
   * Generation ends where the grammar's text is complete; it is closed before `maxNewTokens` runs out.
   */
  grammar?: GrammarSpec;
  /**
   * Report each sampled token's log-probability with its piece, and those of the `logprobs` most likely
   * tokens at that step (0 to 20; see Sampler.logprobs).
   */
  logprobs?: number;
  /**
   * What a full context does: absent, generation ends (stopReason "context"); { keep } drops the oldest
   * half of the tokens after the first `keep` and goes on, the kept tokens prefilled again at their new
   * positions (the first `keep` stay cached). Off unless asked for: the model then no longer sees the
   * dropped text.
   */
  contextShift?: { keep: number };
}

/**
 * One streamed step: the sampled token and the text it completed ("" while a character is incomplete),
 * with its log-probability when asked for. The last piece may carry only text held back until the end
 * (`logprob` absent): its token is the one before it.
 */
export interface Piece {
  token: number;
  text: string;
  logprob?: TokenLogprob;
}

export interface GenerationStats {
  promptTokens: number;
  /** Prompt tokens whose KV cache entries were kept from an earlier request. */
  reusedTokens: number;
  /** Prompt tokens run through the model. */
  prefilledTokens: number;
  generatedTokens: number;
  prefillMs: number;
  /** From the start of the request to the first sampled token. */
  timeToFirstTokenMs: number;
  /** Time spent after the first token. */
  decodeMs: number;
  prefillTokensPerSecond: number;
  decodeTokensPerSecond: number;
}

export interface GenerationResult {
  /** The generated text (stop string and what followed it removed; special tokens not shown). */
  text: string;
  tokens: number[];
  stopReason: StopReason;
  stats: GenerationStats;
}

export interface LoopContext {
  sequence: TokenSequence;
  /** Decodes generated ids to display text (special tokens skipped). */
  decode: DecodeFn;
  eosTokenIds: readonly number[];
  /** 1 for ids that may be sampled (not vocabulary padding). */
  allowed: Uint8Array;
  /** What may be sampled step by step (a grammar's); without one, `allowed` at every step. */
  constraint?: TokenConstraint;
  /** Aborted when the consumer of the Generation went away (left its for-await loop): stops as an abort does. */
  cancel?: AbortSignal;
}

class Aborted extends Error {}

/** Lets timers and abort events run between tokens (setImmediate where it exists: no 1 ms clamp). */
export const yieldToEventLoop: () => Promise<void> =
  typeof setImmediate === "function" ? () => new Promise((r) => setImmediate(r)) : () => new Promise((r) => setTimeout(r, 0));

/** Streams the continuation of `prompt`; the generator's return value is the final result. */
export async function* generateStream(
  ctx: LoopContext,
  prompt: readonly number[],
  opts: GenerateOptions = {},
): AsyncGenerator<Piece, GenerationResult, undefined> {
  const maxNewTokens = opts.maxNewTokens ?? 256;
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 0) throw new RangeError(`maxNewTokens must be an integer >= 0, got ${maxNewTokens}`);
  const top = opts.logprobs;
  if (top !== undefined && !(Number.isInteger(top) && top >= 0 && top <= 20)) throw new RangeError(`logprobs must be an integer in [0, 20], got ${top}`);
  const sampler = new Sampler(opts, ctx.allowed);
  const constraint = ctx.constraint ?? fixedMask(ctx.allowed);
  const stops = new StopMatcher(opts.stop ?? []);
  const detok = new IncrementalDecoder(ctx.decode);
  const seq = ctx.sequence;
  const signal = opts.signal;
  const aborted = () => signal?.aborted === true || ctx.cancel?.aborted === true;
  const between = async () => {
    await yieldToEventLoop();
    if (aborted()) throw new Aborted();
  };

  const t0 = performance.now();
  const tokens: number[] = [];
  let text = "";
  let stopReason: StopReason = "length";
  let reused = 0;
  let prefilled = 0;
  let tPrefill = t0;
  let tFirst = t0;
  try {
    if (aborted()) throw new Aborted();
    const p = await seq.prefill(prompt, between);
    reused = p.reused;
    prefilled = p.prefilled;
    tPrefill = tFirst = performance.now();
    let logits = p.logits;
    for (;;) {
      if (tokens.length >= maxNewTokens) break;
      // Tokens that may still come: the grammar closes its text within them (a context that shifts is no limit).
      const contextLeft = opts.contextShift === undefined ? seq.contextLength - seq.tokens.length + 1 : Infinity;
      const allowed = constraint.allowed(Math.min(maxNewTokens - tokens.length, contextLeft));
      if (allowed === null) {
        stopReason = "eos"; // the grammar's text is complete and nothing may follow
        break;
      }
      const token = sampler.next(logits, seq.tokens, tokens, allowed);
      constraint.accept(token);
      if (tokens.length === 0) tFirst = performance.now();
      tokens.push(token);
      if (ctx.eosTokenIds.includes(token)) {
        stopReason = "eos";
        break;
      }
      const s = stops.push(detok.push(token));
      text += s.text;
      yield top === undefined ? { token, text: s.text } : { token, text: s.text, logprob: sampler.logprobs(token, top) };
      if (s.stopped) {
        stopReason = "stop";
        break;
      }
      if (tokens.length >= maxNewTokens) break;
      if (seq.full) {
        if (opts.contextShift === undefined) {
          stopReason = "context";
          break;
        }
        await between();
        logits = (await seq.prefill(shiftContext([...seq.tokens, token], opts.contextShift.keep), between)).logits;
        continue;
      }
      await between();
      logits = await seq.append(token);
    }
  } catch (err) {
    if (!(err instanceof Aborted)) throw err;
    stopReason = "aborted";
  }
  if (stopReason !== "stop") {
    // Release what was held back: an incomplete last character, a possible start of a stop string.
    const tail = stops.push(detok.flush()).text + stops.flush();
    if (tail.length > 0) {
      text += tail;
      yield { token: tokens[tokens.length - 1], text: tail };
    }
  }
  const tEnd = performance.now();
  const decodeMs = tokens.length > 1 ? tEnd - tFirst : 0;
  const prefillMs = tPrefill - t0;
  return {
    text,
    tokens,
    stopReason,
    stats: {
      promptTokens: prompt.length,
      reusedTokens: reused,
      prefilledTokens: prefilled,
      generatedTokens: tokens.length,
      prefillMs,
      timeToFirstTokenMs: tokens.length > 0 ? tFirst - t0 : 0,
      decodeMs,
      prefillTokensPerSecond: prefillMs > 0 ? (prefilled / prefillMs) * 1000 : 0,
      decodeTokensPerSecond: decodeMs > 0 ? ((tokens.length - 1) / decodeMs) * 1000 : 0,
    },
  };
}

/** `tokens` less the oldest half of those after the first `keep` (context shift). */
export function shiftContext(tokens: readonly number[], keep: number): number[] {
  if (!Number.isInteger(keep) || keep < 0 || 2 * keep >= tokens.length) throw new RangeError(`contextShift.keep must be an integer in [0, ${Math.ceil(tokens.length / 2) - 1}], got ${keep}`);
  const drop = Math.max(1, Math.floor((tokens.length - keep) / 2));
  return [...tokens.slice(0, keep), ...tokens.slice(keep + drop)];
}

/**
 * What `model.generate` returns: iterate it for the streamed pieces; `result` resolves to the final text,
 * tokens, stop reason and stats once generation ends (it also drives the generation to its end when
 * nobody iterates).
 */
export class Generation implements AsyncIterable<Piece> {
  readonly result: Promise<GenerationResult>;
  private readonly queue: Piece[] = [];
  private wake: (() => void) | null = null;
  private finished = false;
  private iterated = false;

  constructor(
    stream: AsyncGenerator<Piece, GenerationResult, undefined>,
    onEnd: () => void,
    /** Tokens of the prompt as the model runs it (a chat's rendered template included). */
    readonly promptTokens: number,
    /** Stops the stream (the LoopContext's `cancel`); called when the iterating loop exits early. */
    private readonly cancel: () => void = () => {},
  ) {
    this.result = (async () => {
      try {
        for (;;) {
          const step = await stream.next();
          if (step.done) return step.value;
          this.queue.push(step.value);
          this.wake?.();
        }
      } finally {
        this.finished = true;
        onEnd();
        this.wake?.();
      }
    })();
    // A failure surfaces through whichever the caller awaits; never as an unhandled rejection.
    this.result.catch(() => {});
  }

  /**
   * The streamed pieces. Leaving the loop early (break, return, a throw in its body) stops the generation
   * as an abort does (stopReason "aborted"), and the loop exit waits until it has stopped, so the model
   * takes the next request at once.
   */
  async *[Symbol.asyncIterator](): AsyncGenerator<Piece, void, undefined> {
    if (this.iterated) throw new Error("a generation can be iterated only once");
    this.iterated = true;
    let completed = false;
    try {
      for (;;) {
        const piece = this.queue.shift();
        if (piece !== undefined) {
          yield piece;
          continue;
        }
        if (this.finished) {
          completed = true;
          await this.result; // rethrows a generation error
          return;
        }
        await new Promise<void>((r) => (this.wake = r));
        this.wake = null;
      }
    } finally {
      if (!completed) {
        this.cancel();
        await this.result.catch(() => undefined);
      }
    }
  }

  /** Waits for the end and returns the whole text (a convenience over `result`). */
  async text(): Promise<string> {
    return (await this.result).text;
  }
}
