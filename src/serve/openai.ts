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
import { AsyncQueue } from "../generate/async-queue.js";
import { asOpenAIError, invalidRequest, OpenAIError } from "./errors.js";
import { checkGrammarSpec, type GrammarSpec } from "../grammar/spec.js";
import { chatJob, completionJob, type Job } from "./requests.js";
import { Scheduler, type SchedulerOptions, type Slot } from "./scheduler.js";
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionChunkChoice,
  ChatCompletionCreateParams,
  ChatCompletionCreateParamsNonStreaming,
  ChatCompletionCreateParamsStreaming,
  ChatCompletionTokenLogprob,
  Completion,
  CompletionChunk,
  CompletionChunkChoice,
  CompletionCreateParams,
  CompletionCreateParamsNonStreaming,
  CompletionCreateParamsStreaming,
  CompletionLogprobs,
  CompletionUsage,
  FinishReason,
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

/** chat.completions, as LocalOpenAI and the browser's ModelClient have it (the `openai` client's signatures). */
export interface ChatCompletionsResource {
  create(params: ChatCompletionCreateParamsNonStreaming, options?: RequestOptions): Promise<ChatCompletion>;
  create(params: ChatCompletionCreateParamsStreaming, options?: RequestOptions): Promise<ChunkStream<ChatCompletionChunk>>;
  create(params: ChatCompletionCreateParams, options?: RequestOptions): Promise<ChatCompletion | ChunkStream<ChatCompletionChunk>>;
}

/** completions (the legacy API), likewise. */
export interface CompletionsResource {
  create(params: CompletionCreateParamsNonStreaming, options?: RequestOptions): Promise<Completion>;
  create(params: CompletionCreateParamsStreaming, options?: RequestOptions): Promise<ChunkStream<CompletionChunk>>;
  create(params: CompletionCreateParams, options?: RequestOptions): Promise<Completion | ChunkStream<CompletionChunk>>;
}

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

function finishReason(r: GenerationResult): FinishReason {
  return r.stopReason === "eos" || r.stopReason === "stop" ? "stop" : "length";
}

export class LocalOpenAI {
  readonly scheduler: Scheduler;
  readonly modelId: string;
  readonly chat: { completions: ChatCompletionsResource };
  readonly completions: CompletionsResource;
  readonly models: { list(): Promise<{ object: "list"; data: OpenAIModel[] }> };
  private readonly created = Math.floor(Date.now() / 1000);
  /** See longestToken(); computed at the first request. */
  private longest: number | null = null;
  private readonly grammarsChecked = new Set<string>();

  constructor(
    readonly model: Model,
    opts: OpenAIOptions = {},
  ) {
    this.scheduler = new Scheduler(model, opts);
    this.modelId = opts.modelId ?? (model.dir.split(/[\\/]/).filter(Boolean).pop() ?? "model").replace(/\.gguf$/i, "");
    this.chat = { completions: { create: ((p: unknown, o?: RequestOptions) => this.request("chat", p, o)) as ChatCompletionsResource["create"] } };
    this.completions = { create: ((p: unknown, o?: RequestOptions) => this.request("completions", p, o)) as CompletionsResource["create"] };
    this.models = { list: async () => ({ object: "list", data: [this.modelEntry()] }) };
  }

  get context(): number {
    return this.model.backend.contextLength;
  }

  modelEntry(): OpenAIModel {
    return { id: this.modelId, object: "model", created: this.created, owned_by: "mobilellm-wasm" };
  }

  /**
   * A request body as it came from a client (the HTTP server's, the browser worker's): checked here like
   * any, then answered as chat.completions.create or completions.create would answer it. Every failure is
   * an OpenAIError (a stream's too, thrown from its loop).
   */
  async request(route: "chat" | "completions", body: unknown, options?: RequestOptions): Promise<ChatCompletion | Completion | ChunkStream<ChatCompletionChunk | CompletionChunk>> {
    try {
      const vocab = this.model.config.vocabSize;
      const job = route === "chat" ? chatJob(body, this.context, vocab) : completionJob(body, this.context, vocab);
      if (job.options.grammar !== undefined) this.checkGrammar(job.options.grammar);
      return await this.create(job, options);
    } catch (err) {
      throw asOpenAIError(err);
    }
  }

  /**
   * Compiles a response_format's grammar once before the request takes a sequence, so a refused schema is
   * a 400 at once rather than after its wait in the queue (the last 16 that compiled are remembered).
   */
  private checkGrammar(spec: GrammarSpec): void {
    let key: string;
    try {
      key = JSON.stringify(spec);
    } catch (err) {
      checkGrammarSpec(spec); // a schema nested too deep to stringify: the grammar layer's own refusal says so
      throw err;
    }
    if (this.grammarsChecked.has(key)) return;
    checkGrammarSpec(spec);
    this.grammarsChecked.add(key);
    if (this.grammarsChecked.size > 16) this.grammarsChecked.delete(this.grammarsChecked.values().next().value as string);
  }

  /** Stops taking requests and resolves once the running ones have ended; the Model is free again. */
  close(): Promise<void> {
    return this.scheduler.close();
  }

  // ---- running a request ----------------------------------------------------------------------------

  private async create(job: Job, options: RequestOptions = {}): Promise<ChatCompletion | Completion | ChunkStream<ChatCompletionChunk | CompletionChunk>> {
    const what = job.kind === "chat" ? "messages" : "prompt";
    const tooLong = (resulted: string) =>
      invalidRequest(`This model's maximum context length is ${this.context} tokens. However, your ${what} ${resulted}. Please reduce the length of the ${what}.`, what, "context_length_exceeded");
    // Text longer than the context's tokens can cover is refused before it is rendered and tokenized, which
    // for a body of a few MB would hold every running stream for seconds.
    const chars = job.kind === "chat" ? (job.messages ?? []).reduce((n, m) => n + m.content.length, 0) : typeof job.prompt === "string" ? job.prompt.length : 0;
    if (chars > this.context * this.longestToken()) {
      throw tooLong(`${job.kind === "chat" ? "hold" : "holds"} ${chars} characters, more than ${this.context} tokens of at most ${this.longestToken()} characters each`);
    }
    const { ids, templateStops } = this.promptOf(job);
    if (ids.length > this.context) throw tooLong(`resulted in ${ids.length} tokens`);
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

  /**
   * The most text (UTF-16 units) one token covers: its token string's length, which is the bytes it
   * covers for a byte-level BPE and the characters for a SentencePiece vocabulary (whose byte tokens'
   * "<0xNN>" are longer than the byte). A tokenizer whose normalizer removed text could make a prompt of
   * more characters fit; the ones of the families served here do not.
   */
  private longestToken(): number {
    const t = this.model.tokenizer;
    if (t === null) return Infinity;
    if (this.longest === null) {
      let most = 1;
      for (let id = 0; id < this.model.config.vocabSize; id++) most = Math.max(most, t.tokenString(id)?.length ?? 0);
      this.longest = most;
    }
    return this.longest;
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

  private usage(ids: readonly number[], results: readonly { result: GenerationResult }[]): CompletionUsage {
    const completion = results.reduce((s, r) => s + r.result.tokens.length, 0);
    const cached = Math.min(...results.map((r) => r.result.stats.reusedTokens));
    return { prompt_tokens: ids.length, completion_tokens: completion, total_tokens: ids.length + completion, prompt_tokens_details: { cached_tokens: cached } };
  }

  private detail(r: GenerationResult): { finish_detail?: string } {
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

  private completionLogprobs(pieces: readonly Piece[], offset: number): CompletionLogprobs {
    const out: Required<CompletionLogprobs> = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
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
  private stream(job: Job, ids: readonly number[], runs: Run[], abort: AbortController, done: () => void): ChunkStream<ChatCompletionChunk | CompletionChunk> {
    const id = randomId(job.kind === "chat" ? "chatcmpl-" : "cmpl-");
    const created = Math.floor(Date.now() / 1000);
    const model = this.modelId;
    const usage = job.includeUsage ? { usage: null } : {};
    const echo = job.echo ? this.model.decode(ids, true) : "";
    // A client that stops reading pauses its choices' token loops once a few chunks wait for it.
    const chunks = new AsyncQueue<ChatCompletionChunk | CompletionChunk>(16);
    const chat = (choice: ChatCompletionChunkChoice) => {
      chunks.push({ id, object: "chat.completion.chunk", created, model, choices: [choice], ...usage });
      return chunks.room();
    };
    const text = (choice: CompletionChunkChoice) => {
      chunks.push({ id, object: "text_completion", created, model, choices: [choice], ...usage });
      return chunks.room();
    };
    const pump = async (run: Run) => {
      const index = run.index;
      let offset = echo.length;
      if (job.kind === "chat") await chat({ index, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null });
      else if (echo) await text({ index, text: echo, logprobs: null, finish_reason: null });
      for await (const piece of run.generation) {
        if (piece.text === "" && piece.logprob === undefined) continue;
        if (job.kind === "chat") {
          await chat({ index, delta: { content: piece.text }, logprobs: job.logprobs ? { content: this.chatLogprobs([piece]), refusal: null } : null, finish_reason: null });
        } else {
          await text({ index, text: piece.text, logprobs: job.logprobs ? this.completionLogprobs([piece], offset) : null, finish_reason: null });
          offset += piece.text.length;
        }
      }
      const result = await run.generation.result;
      const end = { index, logprobs: null, finish_reason: finishReason(result), ...this.detail(result) };
      if (job.kind === "chat") await chat({ ...end, delta: {} });
      else await text({ ...end, text: "" });
      return { result };
    };
    const all = Promise.all(runs.map(pump));
    all.then(
      (results) => {
        if (abort.signal.aborted) return chunks.fail(aborted());
        if (job.includeUsage) {
          const usage = this.usage(ids, results);
          chunks.push(job.kind === "chat" ? { id, object: "chat.completion.chunk", created, model, choices: [], usage } : { id, object: "text_completion", created, model, choices: [], usage });
        }
        chunks.end();
      },
      (err: unknown) => {
        abort.abort();
        chunks.fail(asOpenAIError(err));
      },
    ).finally(done);
    return {
      abort: () => abort.abort(),
      [Symbol.asyncIterator]: () =>
        chunks.drain(() => {
          abort.abort();
          return all;
        }),
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

/** OpenAI's API over `model`, its sequences run by a scheduler (see LocalOpenAI). */
export function createOpenAI(model: Model, opts: OpenAIOptions = {}): LocalOpenAI {
  return new LocalOpenAI(model, opts);
}
