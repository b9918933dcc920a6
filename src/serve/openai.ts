// OpenAI's API in-process: chat.completions.create, completions.create and models.list over a loaded
// Model, with OpenAI's request and response shapes, run on the scheduler's sequences (scheduler.ts).
//
//   const openai = createOpenAI(model, { queueLimit: 16 });
//   const r = await openai.chat.completions.create({ model: "local", messages: [{ role: "user", content: "Hi" }] });
//   for await (const chunk of await openai.chat.completions.create({ ...params, stream: true })) write(chunk.choices[0]?.delta.content ?? "");
//   await openai.close();
//
// Requests are checked by requests.ts; errors are OpenAIError objects (errors.ts) with OpenAI's status and
// body. The HTTP server (src/node/http-server.ts) and the browser worker use this same object.
import type { Model } from "../session/model.js";
import type { Generation, GenerationResult, Piece } from "../generate/generate.js";
import type { TokenLogprob } from "../generate/sampler.js";
import { stopStrings } from "../generate/stop.js";
import { invalidRequest, OpenAIError } from "./errors.js";
import { chatJob, completionJob, type Job } from "./requests.js";
import { Scheduler, type SchedulerOptions, type Slot } from "./scheduler.js";
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionCreateParamsNonStreaming,
  ChatCompletionCreateParamsStreaming,
  ChatCompletionTokenLogprob,
  Completion,
  CompletionChoice,
  CompletionCreateParamsNonStreaming,
  CompletionCreateParamsStreaming,
  CompletionUsage,
  OpenAIModel,
} from "./openai-types.js";

export interface OpenAIOptions extends SchedulerOptions {
  /** The model id /v1/models lists and responses carry (default: the model's folder or file name). */
  modelId?: string;
}

/** Per-call options, as the `openai` client takes them. */
export interface RequestOptions {
  /** Aborting stops the generation (its sequence is freed) and rejects the call, or ends the stream. */
  signal?: AbortSignal;
}

/** A streamed response: the chunks as an async iterable; leaving the loop early stops the generation. */
export interface ChunkStream<T> extends AsyncIterable<T> {
  /** Stops the generation; the iteration then ends. */
  abort(): void;
}

/** Why a choice ended, beyond finish_reason: set when a full context ended it ("length"). */
export interface FinishDetail {
  finish_detail?: string;
}

/** usage, with the prompt tokens taken from a cached sequence (prefix reuse) as OpenAI reports cached tokens. */
type Usage = CompletionUsage;

/** One choice's generation and what it has produced so far. */
interface Run {
  index: number;
  slot: Slot;
  generation: Generation;
}

function randomId(prefix: string): string {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return prefix + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function finishReason(r: GenerationResult): "stop" | "length" {
  return r.stopReason === "eos" || r.stopReason === "stop" ? "stop" : "length";
}

export class LocalOpenAI {
  readonly scheduler: Scheduler;
  readonly modelId: string;
  readonly chat: {
    completions: {
      create(params: ChatCompletionCreateParamsNonStreaming, options?: RequestOptions): Promise<ChatCompletion>;
      create(params: ChatCompletionCreateParamsStreaming, options?: RequestOptions): Promise<ChunkStream<ChatCompletionChunk>>;
      create(params: unknown, options?: RequestOptions): Promise<ChatCompletion | ChunkStream<ChatCompletionChunk>>;
    };
  };
  readonly completions: {
    create(params: CompletionCreateParamsNonStreaming, options?: RequestOptions): Promise<Completion>;
    create(params: CompletionCreateParamsStreaming, options?: RequestOptions): Promise<ChunkStream<Completion>>;
    create(params: unknown, options?: RequestOptions): Promise<Completion | ChunkStream<Completion>>;
  };
  readonly models: { list(): Promise<{ object: "list"; data: OpenAIModel[] }> };
  private readonly created = Math.floor(Date.now() / 1000);

  constructor(
    readonly model: Model,
    opts: OpenAIOptions = {},
  ) {
    this.scheduler = new Scheduler(model, opts);
    this.modelId = opts.modelId ?? (model.dir.split(/[\\/]/).filter(Boolean).pop() ?? "model").replace(/\.gguf$/i, "");
    this.chat = { completions: { create: ((p: unknown, o?: RequestOptions) => this.create(chatJob(p, this.context), o)) as LocalOpenAI["chat"]["completions"]["create"] } };
    this.completions = { create: ((p: unknown, o?: RequestOptions) => this.create(completionJob(p, this.context, model.config.vocabSize), o)) as LocalOpenAI["completions"]["create"] };
    this.models = { list: async () => ({ object: "list", data: [this.modelEntry()] }) };
  }

  get context(): number {
    return this.model.backend.contextLength;
  }

  modelEntry(): OpenAIModel {
    return { id: this.modelId, object: "model", created: this.created, owned_by: "mobilellm-wasm" };
  }

  /** Stops taking requests and resolves once the running ones have ended; the Model is free again. */
  close(): Promise<void> {
    return this.scheduler.close();
  }

  // ---- running a request ----------------------------------------------------------------------------

  private async create(job: Job, options: RequestOptions = {}): Promise<unknown> {
    const { ids, templateStops } = this.promptOf(job);
    if (ids.length > this.context) {
      throw invalidRequest(
        `This model's maximum context length is ${this.context} tokens. However, your ${job.kind === "chat" ? "messages" : "prompt"} resulted in ${ids.length} tokens. Please reduce the length of the ${job.kind === "chat" ? "messages" : "prompt"}.`,
        job.kind === "chat" ? "messages" : "prompt",
        "context_length_exceeded",
      );
    }
    if (job.n > this.scheduler.slots.length) {
      throw invalidRequest(`n is ${job.n} but this server runs ${this.scheduler.slots.length} sequences at once`, "n");
    }
    const abort = new AbortController();
    const outer = options.signal;
    const onAbort = () => abort.abort(outer?.reason);
    if (outer?.aborted) onAbort();
    outer?.addEventListener("abort", onAbort, { once: true });
    let slots: Slot[];
    try {
      slots = await this.scheduler.acquire(ids, abort.signal, job.n);
    } catch (err) {
      outer?.removeEventListener("abort", onAbort);
      throw abort.signal.aborted ? aborted() : err;
    }
    const stop = [...templateStops, ...stopStrings(job.options.stop)];
    const runs: Run[] = [];
    try {
      slots.forEach((slot, index) => {
        const seed = job.options.seed === undefined ? undefined : (job.options.seed + index) >>> 0;
        const opts = { ...job.options, seed, stop, signal: abort.signal, contextShift: job.contextShift ?? undefined };
        runs.push({ index, slot, generation: this.model.generateOn(slot, ids, opts, () => this.scheduler.releaseSlot(slot)) });
      });
    } catch (err) {
      for (const s of slots) if (!runs.some((r) => r.slot === s)) this.scheduler.releaseSlot(s);
      abort.abort();
      outer?.removeEventListener("abort", onAbort);
      throw err;
    }
    const ids0 = ids;
    const done = () => outer?.removeEventListener("abort", onAbort);
    if (job.stream) return this.stream(job, ids0, runs, abort, done);
    try {
      const results = await Promise.all(runs.map(async (r) => ({ run: r, pieces: await collect(r.generation), result: await r.generation.result })));
      if (abort.signal.aborted) throw aborted();
      return job.kind === "chat" ? this.chatResponse(job, ids0, results) : this.completionResponse(job, ids0, results);
    } finally {
      done();
    }
  }

  /** The prompt's token ids, and for a chat the template's stop strings. */
  private promptOf(job: Job): { ids: number[]; templateStops: string[] } {
    if (job.kind === "chat") {
      const { ids, stop } = this.model.renderChat(job.messages as NonNullable<Job["messages"]>);
      return { ids, templateStops: stop };
    }
    const p = job.prompt as string | number[];
    return { ids: typeof p === "string" ? this.model.encode(p) : p, templateStops: [] };
  }

  private usage(ids: readonly number[], results: readonly { result: GenerationResult }[]): Usage {
    const completion = results.reduce((s, r) => s + r.result.tokens.length, 0);
    const cached = Math.min(...results.map((r) => r.result.stats.reusedTokens));
    return { prompt_tokens: ids.length, completion_tokens: completion, total_tokens: ids.length + completion, prompt_tokens_details: { cached_tokens: cached } };
  }

  private detail(r: GenerationResult): FinishDetail {
    return r.stopReason === "context" ? { finish_detail: `the context of ${this.context} tokens is full` } : {};
  }

  private chatResponse(job: Job, ids: readonly number[], results: { run: Run; pieces: Piece[]; result: GenerationResult }[]): ChatCompletion {
    return {
      id: randomId("chatcmpl-"),
      object: "chat.completion",
      created: Math.floor(Date.now() / 1000),
      model: this.modelId,
      choices: results.map(({ run, pieces, result }) => ({
        index: run.index,
        message: { role: "assistant", content: result.text, refusal: null },
        logprobs: job.logprobs ? { content: this.chatLogprobs(pieces), refusal: null } : null,
        finish_reason: finishReason(result),
        ...this.detail(result),
      })),
      usage: this.usage(ids, results),
    };
  }

  private completionResponse(job: Job, ids: readonly number[], results: { run: Run; pieces: Piece[]; result: GenerationResult }[]): Completion {
    const echo = job.echo ? this.model.decode(ids, true) : "";
    return {
      id: randomId("cmpl-"),
      object: "text_completion",
      created: Math.floor(Date.now() / 1000),
      model: this.modelId,
      choices: results.map(({ run, pieces, result }) => ({
        index: run.index,
        text: echo + result.text,
        logprobs: job.logprobs ? this.completionLogprobs(pieces, echo.length) : null,
        finish_reason: finishReason(result),
        ...this.detail(result),
      })),
      usage: this.usage(ids, results),
    };
  }

  /** A token's text as logprobs show it (special tokens by name), with its UTF-8 bytes. */
  private tokenEntry(id: number, logprob: number): { token: string; logprob: number; bytes: number[] } {
    const token = this.model.decode([id]);
    return { token, logprob, bytes: Array.from(new TextEncoder().encode(token)) };
  }

  private chatLogprobs(pieces: readonly Piece[]): ChatCompletionTokenLogprob[] {
    return pieces
      .filter((p): p is Piece & { logprob: TokenLogprob } => p.logprob !== undefined)
      .map((p) => ({ ...this.tokenEntry(p.token, p.logprob.logprob), top_logprobs: p.logprob.top.map((t) => this.tokenEntry(t.id, t.logprob)) }));
  }

  private completionLogprobs(pieces: readonly Piece[], offset: number): CompletionChoice.Logprobs {
    const out: Required<CompletionChoice.Logprobs> = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
    let at = offset;
    for (const p of pieces) {
      if (p.logprob === undefined) continue;
      const token = this.model.decode([p.token]);
      out.tokens.push(token);
      out.token_logprobs.push(p.logprob.logprob);
      out.top_logprobs.push(Object.fromEntries(p.logprob.top.map((t) => [this.model.decode([t.id]), t.logprob])));
      out.text_offset.push(at);
      at += token.length;
    }
    return out;
  }

  /**
   * The chunks of every choice as they come (interleaved), each choice's last one with its finish_reason,
   * then the usage chunk when asked for. Leaving the iteration early, or abort(), stops every choice.
   */
  private stream(job: Job, ids: readonly number[], runs: Run[], abort: AbortController, done: () => void): ChunkStream<ChatCompletionChunk | Completion> {
    const id = randomId(job.kind === "chat" ? "chatcmpl-" : "cmpl-");
    const created = Math.floor(Date.now() / 1000);
    const chat = job.kind === "chat";
    const echo = job.echo ? this.model.decode(ids, true) : "";
    const chunk = (choice: Record<string, unknown>): ChatCompletionChunk | Completion =>
      chat
        ? ({ id, object: "chat.completion.chunk", created, model: this.modelId, choices: [choice], ...(job.includeUsage ? { usage: null } : {}) } as unknown as ChatCompletionChunk)
        : ({ id, object: "text_completion", created, model: this.modelId, choices: [choice], ...(job.includeUsage ? { usage: null } : {}) } as unknown as Completion);
    const self = this;
    const channel = new Channel<ChatCompletionChunk | Completion>();
    const offsets = runs.map(() => echo.length);
    const pump = async (run: Run) => {
      const i = run.index;
      if (chat) channel.push(chunk({ index: i, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null }));
      else if (echo) channel.push(chunk({ index: i, text: echo, logprobs: null, finish_reason: null }));
      for await (const piece of run.generation) {
        if (piece.text === "" && piece.logprob === undefined) continue;
        if (chat) {
          const logprobs = job.logprobs ? { content: self.chatLogprobs([piece]), refusal: null } : null;
          channel.push(chunk({ index: i, delta: { content: piece.text }, logprobs, finish_reason: null }));
        } else {
          const logprobs = job.logprobs ? self.completionLogprobs([piece], offsets[i]) : null;
          offsets[i] += piece.text.length;
          channel.push(chunk({ index: i, text: piece.text, logprobs, finish_reason: null }));
        }
      }
      const result = await run.generation.result;
      const end = { index: i, logprobs: null, finish_reason: finishReason(result), ...self.detail(result) };
      channel.push(chunk(chat ? { ...end, delta: {} } : { ...end, text: "" }));
      return { result };
    };
    const all = Promise.all(runs.map(pump));
    all.then(
      (results) => {
        if (abort.signal.aborted) return channel.fail(aborted());
        if (job.includeUsage) {
          const usage = self.usage(ids, results);
          channel.push((chat ? { id, object: "chat.completion.chunk", created, model: self.modelId, choices: [], usage } : { id, object: "text_completion", created, model: self.modelId, choices: [], usage }) as ChatCompletionChunk);
        }
        channel.end();
      },
      (err: unknown) => {
        abort.abort();
        channel.fail(err);
      },
    ).finally(done);
    return {
      abort: () => abort.abort(),
      [Symbol.asyncIterator]: () => channel.iterate(() => abort.abort(), all),
    };
  }
}

/** Drives a generation to its end, keeping its pieces (for a non-streamed response). */
async function collect(g: Generation): Promise<Piece[]> {
  const pieces: Piece[] = [];
  for await (const p of g) pieces.push(p);
  return pieces;
}

function aborted(): OpenAIError {
  return new OpenAIError(499, "the request was aborted", "invalid_request_error", null, "aborted");
}

/** A queue of values one consumer iterates; producers push, then end or fail it. */
class Channel<T> {
  private readonly items: T[] = [];
  private wake: (() => void) | null = null;
  private closed = false;
  private error: { err: unknown } | null = null;

  push(v: T): void {
    this.items.push(v);
    this.wake?.();
  }

  end(): void {
    this.closed = true;
    this.wake?.();
  }

  fail(err: unknown): void {
    this.error ??= { err };
    this.end();
  }

  /** Iterates the values; an early exit calls `stop` and waits for `finished` (the producers' end). */
  async *iterate(stop: () => void, finished: Promise<unknown>): AsyncGenerator<T, void, undefined> {
    let complete = false;
    try {
      for (;;) {
        const v = this.items.shift();
        if (v !== undefined) {
          yield v;
          continue;
        }
        if (this.closed) {
          complete = true;
          if (this.error) throw this.error.err;
          return;
        }
        await new Promise<void>((r) => (this.wake = r));
        this.wake = null;
      }
    } finally {
      if (!complete) {
        stop();
        await finished.catch(() => undefined);
      }
    }
  }
}

/** OpenAI's API over `model`, its sequences run by a scheduler (see LocalOpenAI). */
export function createOpenAI(model: Model, opts: OpenAIOptions = {}): LocalOpenAI {
  return new LocalOpenAI(model, opts);
}
