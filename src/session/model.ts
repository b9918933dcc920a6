// The model object: a loaded backend (the int4 engine or the float32 reference) with its tokenizer, chat
// template and sampling defaults, serving generate, chat, logits and perplexity one request at a time.
// It is built by openModel (src/session/open.ts) and never touches node:* modules, so Node's loadModel and
// the browser share it unchanged.
import type { Backend, BackendName, LoadTimes } from "../model/backend.js";
import type { ModelConfig } from "../model/config.js";
import { kvCacheBytes } from "../model/memory.js";
import { perplexity, type PerplexityResult } from "../model/perplexity.js";
import type { TextTokenizer } from "../text/tokenizer.js";
import { ChatTemplate, PLAIN_DIALOGUE_STOP, PLAIN_DIALOGUE_TEMPLATE, type ChatMessage } from "../text/chat-template.js";
import { Generation, generateStream, type GenerateOptions } from "../generate/generate.js";
import { CachedSequence, checkPromptFits, type TokenSequence } from "../generate/sequence.js";
import { stopStrings } from "../generate/stop.js";
import type { GenerationDefaults } from "../generate/generation-config.js";
import type { SamplingOptions } from "../generate/sampler.js";
import { GrammarConstraints } from "../generate/constraint.js";

export interface ChatOptions extends GenerateOptions {
  /** A Jinja chat template to use instead of the checkpoint's. */
  template?: string;
}

export interface ModelInfo {
  backend: BackendName;
  /** Wasm build in use and why ("relaxed", "simd"), for the wasm backend. */
  simd: { variant: string; reason: string } | null;
  contextLength: number;
  threads: number;
  /** KV cache bytes allocated (int8 data + f32 scales) for the context, wasm backend. */
  kvCacheBytes: number | null;
  /** Where the engine's load time went (ms), for the wasm backend. */
  loadTimes: LoadTimes | null;
  /** From the load's start (loadModel, openModel, openGgufModel) to the model being ready, in ms; null when not measured. */
  loadMs: number | null;
}

/** A chat rendered for the model: the prompt's token ids and the stop strings its template ends turns with. */
export interface RenderedChat {
  ids: number[];
  stop: string[];
}

export class Model {
  private readonly sequence: CachedSequence;
  private readonly allowed: Uint8Array;
  /** What holds the model's single-sequence API: null when free. */
  private holder: string | null = null;
  private disposed = false;
  /** Grammars compiled for this model's vocabulary (options.grammar). */
  private readonly grammars: GrammarConstraints;

  constructor(
    readonly dir: string,
    readonly config: ModelConfig,
    /** Null for a folder without tokenizer.json (or a GGUF without tokenizer keys): logits(ids) still works, text in or out does not. */
    readonly tokenizer: TextTokenizer | null,
    /** The checkpoint's chat template, or null when it has none (chat then uses a plain dialogue format). */
    readonly chatTemplate: ChatTemplate | null,
    readonly backend: Backend,
    /** Sampling defaults from generation_config.json (greedy when the file is absent). */
    readonly defaults: GenerationDefaults,
    /** From the load's start to ready, in ms, where the loader measured it. */
    private readonly loadMs: number | null = null,
  ) {
    this.sequence = new CachedSequence(backend);
    this.allowed = new Uint8Array(config.vocabSize);
    for (let id = 0; id < config.vocabSize; id++) this.allowed[id] = tokenizer?.isPadding(id) ? 0 : 1;
    this.grammars = new GrammarConstraints(() => this.text().tokenBytes(config.vocabSize), config.vocabSize);
  }

  get info(): ModelInfo {
    const b = this.backend;
    const kv = kvCacheBytes(this.config, b.contextLength);
    return {
      backend: b.name,
      simd: b.simd,
      contextLength: b.contextLength,
      threads: b.threads,
      kvCacheBytes: b.name === "wasm" ? kv.data + kv.scales : null,
      loadTimes: b.loadTimes,
      loadMs: this.loadMs,
    };
  }

  /** Token ids of `text`; BOS as tokenizer_config.json says unless `addSpecialTokens` is false. */
  encode(text: string, addSpecialTokens = true): number[] {
    return this.text().encode(text, addSpecialTokens);
  }

  decode(ids: readonly number[], skipSpecialTokens = false): string {
    return this.text().decode(ids, skipSpecialTokens);
  }

  /** The tokenizer, or an error saying that only id-level work is possible without one. */
  private text(): TextTokenizer {
    if (this.tokenizer === null) {
      throw new Error(`${this.dir} has no tokenizer (no tokenizer.json, or a GGUF without tokenizer keys): text in or out needs one (logits of token ids work without it)`);
    }
    return this.tokenizer;
  }

  /** Next-token logits of the last position, or of every position with `all`, for a fresh sequence. */
  logits(tokens: readonly number[], all = false): Float32Array[] {
    this.claim();
    try {
      this.sequence.reset();
      return this.backend.forward(tokens, 0, all);
    } finally {
      this.holder = null;
    }
  }

  perplexity(text: string, ctx: number): PerplexityResult {
    this.claim();
    try {
      this.sequence.reset();
      return perplexity(this.backend, this.encode(text), ctx);
    } finally {
      this.holder = null;
    }
  }

  /** Tokens the model's own sequence holds in its KV cache (what the next prompt can reuse). */
  get cachedTokens(): readonly number[] {
    return this.sequence.tokens;
  }

  /**
   * The model's sequence (its tokens and their KV cache entries) as bytes: restored later, or by another
   * process with the same model, a prompt starting with those tokens prefills only the rest, and the
   * continuation is bit-identical (src/model/kv-state.ts has the format and its checks).
   */
  saveState(): Uint8Array {
    this.claim();
    try {
      return this.sequence.save();
    } finally {
      this.holder = null;
    }
  }

  /**
   * Loads bytes from saveState into the model's sequence and returns how many tokens it holds. A file made by
   * another model, for a larger context, truncated or edited is refused with one line, the cache unchanged.
   */
  restoreState(bytes: Uint8Array): number {
    this.claim();
    try {
      return this.sequence.restore(bytes);
    } finally {
      this.holder = null;
    }
  }

  /**
   * Streams the continuation of `prompt` (text, or token ids used as they are). Iterate the result for
   * `{ token, text }` pieces; `await generation.result` for the whole text, stop reason and stats.
   * A prompt sharing its beginning with the previous request reuses that part of the KV cache.
   */
  generate(prompt: string | readonly number[], opts: GenerateOptions = {}): Generation {
    if (prompt.length === 0) throw new RangeError("the prompt is empty");
    const ids = typeof prompt === "string" ? this.encode(prompt) : [...prompt];
    return this.run(ids, opts);
  }

  /**
   * Renders `messages` with the checkpoint's chat template (plus the assistant header) and streams the
   * assistant's answer. Called again with the conversation so far plus the answer and a new message, it
   * prefills only the new tokens: the earlier turns are still in the KV cache (`stats.reusedTokens`).
   */
  chat(messages: readonly ChatMessage[], opts: ChatOptions = {}): Generation {
    const { ids, stop } = this.renderChat(messages, opts.template);
    const { template: _, ...rest } = opts;
    return this.run(ids, { ...rest, stop: [...stop, ...stopStrings(opts.stop)] });
  }

  /**
   * `messages` as the prompt chat() runs: the checkpoint's chat template (or `template`, or the plain
   * dialogue format) with the assistant header, tokenized, and the template's stop strings.
   */
  renderChat(messages: readonly ChatMessage[], template?: string): RenderedChat {
    const special = { bos_token: this.text().bosToken, eos_token: this.text().eosToken };
    const t = template !== undefined ? new ChatTemplate(template, special) : (this.chatTemplate ?? this.plainDialogue());
    const ids = this.encode(t.render(messages, true), false);
    if (ids.length === 0) throw new RangeError("the chat template rendered an empty prompt");
    return { ids, stop: [...t.stop] };
  }

  /** The format chat falls back to when the checkpoint has no template (see PLAIN_DIALOGUE_TEMPLATE). */
  plainDialogue(): ChatTemplate {
    const t = this.text();
    return new ChatTemplate(PLAIN_DIALOGUE_TEMPLATE, { bos_token: t.bosToken, eos_token: t.eosToken }, PLAIN_DIALOGUE_STOP);
  }

  /** Frees the engine (its Wasm memory and worker threads); the model cannot be used afterwards. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.sequence.reset();
    await this.backend.dispose();
  }

  /** Sampling options after generation_config.json's defaults; explicit options win. */
  samplingFor(opts: SamplingOptions): SamplingOptions {
    const merged: SamplingOptions = { ...this.defaults.sampling };
    for (const [k, v] of Object.entries(opts)) if (v !== undefined) (merged as Record<string, unknown>)[k] = v;
    // Asking for top-k/top-p/min-p on a greedy default means "sample", as a temperature of 1.
    const wantsSampling = opts.topK !== undefined || opts.topP !== undefined || opts.minP !== undefined;
    if (opts.temperature === undefined && merged.temperature === 0 && wantsSampling) merged.temperature = 1;
    return merged;
  }

  private run(ids: number[], opts: GenerateOptions): Generation {
    checkPromptFits(ids, this.backend.contextLength);
    this.claim();
    try {
      return this.generateOn(this.sequence, ids, opts, () => (this.holder = null));
    } catch (err) {
      this.holder = null;
      throw err;
    }
  }

  /**
   * Streams the continuation of `ids` on `sequence` with this model's tokenizer, end-of-sequence ids and
   * sampling defaults, as generate() does on the model's own sequence: the serving layer (src/serve/) runs
   * its sequences through this. `onEnd` runs once the generation has ended.
   */
  generateOn(sequence: TokenSequence, ids: readonly number[], opts: GenerateOptions, onEnd: () => void = () => {}): Generation {
    if (this.disposed) throw new Error("the model was disposed");
    const eos = [...new Set([...this.config.eosTokenIds, ...this.defaults.eosTokenIds])];
    const constraint = opts.grammar === undefined ? undefined : this.grammars.constraint(opts.grammar, eos);
    const sampling = this.samplingFor(opts);
    const cancel = new AbortController();
    const tokenizer = this.text();
    const stream = generateStream(
      { sequence, decode: (t) => tokenizer.decode(t, true), eosTokenIds: eos, allowed: this.allowed, constraint, cancel: cancel.signal },
      ids,
      { ...opts, ...sampling, maxNewTokens: opts.maxNewTokens ?? this.defaults.maxNewTokens },
    );
    return new Generation(stream, onEnd, ids.length, () => cancel.abort());
  }

  /**
   * Takes the model's single-sequence API for `holder` (a server running its sequences) until the returned
   * release function is called: generate, chat, logits and the rest refuse meanwhile, naming the holder.
   */
  reserve(holder: string): () => void {
    this.claim(holder);
    let released = false;
    return () => {
      if (!released) this.holder = null;
      released = true;
    };
  }

  private claim(holder = "a generation"): void {
    if (this.disposed) throw new Error("the model was disposed");
    if (this.holder !== null) {
      throw new Error(
        this.holder === "a generation"
          ? "a generation is still running on this model: wait for its result or abort it first"
          : `the model is in use by ${this.holder}`,
      );
    }
    this.holder = holder;
  }
}
