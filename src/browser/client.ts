// The page's side of the model worker (worker.ts): a small typed client. The page creates the Worker itself
// (so its bundler can resolve the worker module) and hands it over:
//
//   const client = new ModelClient(new Worker(new URL("../src/browser/worker.ts", import.meta.url), { type: "module" }));
//   await client.load({ url: "/models/model.gguf" }, { wasm: "/wasm/", cache: true }, (p) => bar.value = p.bytes / p.totalBytes);
//   const result = await client.generate("ROMEO:", { maxNewTokens: 64, seed: 1 }, (piece) => out.append(piece.text));
//   await client.chat([{ role: "user", content: "Hello" }], { maxNewTokens: 64 }, (piece) => out.append(piece.text));
//   client.stop();   // ends a running generation after the current token (stopReason "aborted")
//   const r = await client.chat.completions.create({ model: "local", messages: [{ role: "user", content: "Hi" }] });
//   for await (const chunk of await client.chat.completions.create({ ...params, stream: true })) out.append(chunk.choices[0]?.delta.content ?? "");
//   await client.saveState("conversation");   // the KV state to OPFS; restoreState("conversation") after a reload
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionCreateParamsNonStreaming,
  ChatCompletionCreateParamsStreaming,
  Completion,
  CompletionCreateParamsNonStreaming,
  CompletionCreateParamsStreaming,
} from "../serve/openai-types.js";
import type { ChatMessage, LoadedModel, LoadProgress, ModelSource, PieceStats, Reply, Request, WorkerChatOptions, WorkerGenerateOptions, WorkerLoadOptions } from "./protocol.js";
import type { GenerationResult } from "../generate/generate.js";
import type { PickedFile } from "./folders.js";

/** What to load: a URL base, or picked/dropped files (a FileList from <input webkitdirectory> works as it is). */
export type LoadSource = { url: string } | { files: ArrayLike<File | PickedFile> | Iterable<File | PickedFile>; label?: string };

export type { LoadedModel, LoadProgress, ModelSource, PieceStats, WorkerChatOptions, WorkerGenerateOptions, WorkerLoadOptions };

export interface StreamedPiece {
  token: number;
  text: string;
  stats: PieceStats;
}

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
  onProgress?: (p: LoadProgress) => void;
  onPiece?: (p: StreamedPiece) => void;
  onChunk?: (chunk: unknown) => void;
}

/** An OpenAI request that failed in the worker: the message and OpenAI's status for it (400, 429, ...). */
export class ModelClientError extends Error {
  constructor(
    message: string,
    readonly status: number | undefined,
  ) {
    super(message);
    this.name = "ModelClientError";
  }
}

/** Per-call options, as the `openai` client takes them. */
export interface ClientRequestOptions {
  /** Aborting stops the request in the worker (its sequence is freed). */
  signal?: AbortSignal;
}

/** Minimal Worker shape (a DOM Worker, or anything with postMessage / onmessage / terminate). */
export interface WorkerLike {
  postMessage(message: unknown): void;
  onmessage: ((e: MessageEvent) => unknown) | null;
  onerror?: ((e: ErrorEvent) => unknown) | null;
  terminate(): void;
}

function absolute(url: string): string {
  return new URL(url, (globalThis as { location?: { href: string } }).location?.href).href;
}

export class ModelClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private generating: number | null = null;
  /**
   * Called, it streams the assistant's answer to `messages` (the checkpoint's chat template, or
   * options.template): send the conversation so far plus the answer and a new message for the next turn,
   * and the worker's model prefills only the new tokens. `chat.completions.create` is OpenAI's chat
   * completions on the same model (src/serve/openai.ts runs them in the worker).
   */
  readonly chat: ((messages: readonly ChatMessage[], options?: WorkerChatOptions, onPiece?: (p: StreamedPiece) => void) => Promise<GenerationResult>) & {
    completions: {
      create(params: ChatCompletionCreateParamsNonStreaming, options?: ClientRequestOptions): Promise<ChatCompletion>;
      create(params: ChatCompletionCreateParamsStreaming, options?: ClientRequestOptions): Promise<AsyncIterable<ChatCompletionChunk>>;
    };
  };
  /** OpenAI's (legacy) completions on the worker's model. */
  readonly completions: {
    create(params: CompletionCreateParamsNonStreaming, options?: ClientRequestOptions): Promise<Completion>;
    create(params: CompletionCreateParamsStreaming, options?: ClientRequestOptions): Promise<AsyncIterable<Completion>>;
  };

  constructor(private readonly worker: WorkerLike) {
    this.chat = Object.assign((messages: readonly ChatMessage[], options?: WorkerChatOptions, onPiece?: (p: StreamedPiece) => void) => this.chatTurn(messages, options, onPiece), {
      completions: { create: ((p: unknown, o?: ClientRequestOptions) => this.openai("chat", p, o)) as ModelClient["chat"]["completions"]["create"] },
    });
    this.completions = { create: ((p: unknown, o?: ClientRequestOptions) => this.openai("completions", p, o)) as ModelClient["completions"]["create"] };
    worker.onmessage = (e: MessageEvent) => this.receive(e.data as Reply);
    worker.onerror = (e: ErrorEvent) => {
      const err = new Error(`the model worker failed: ${e.message || "its script did not load"}`);
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
  }

  /**
   * Loads a model (replacing the current one); resolves with what was loaded. `onProgress` hears the
   * load's phase (download, prepare, threads), bytes, rate and time left, from the first byte on, and a last
   * report, phase "ready", just before the promise resolves.
   */
  load(source: LoadSource, options: WorkerLoadOptions, onProgress?: (p: LoadProgress) => void): Promise<LoadedModel> {
    // A File's webkitRelativePath does not survive postMessage: send the paths along.
    const sent: ModelSource =
      "url" in source
        ? { url: absolute(source.url) }
        : {
            files: Array.from(source.files as ArrayLike<File | PickedFile>, (f) =>
              "path" in f && "file" in f ? f : { path: (f as File).webkitRelativePath || (f as File).name, file: f as File },
            ),
            label: source.label,
          };
    // The worker resolves URLs against its own script's URL: resolve them against the page's here.
    const wasm = typeof options.wasm === "string" || options.wasm instanceof URL ? absolute(String(options.wasm)) : options.wasm;
    return this.request({ type: "load", id: 0, source: sent, options: { ...options, wasm } }, { onProgress }) as Promise<LoadedModel>;
  }

  /** Streams the continuation of `prompt` to `onPiece`; resolves with the final text, stop reason and stats. */
  generate(prompt: string, options: WorkerGenerateOptions = {}, onPiece?: (p: StreamedPiece) => void): Promise<GenerationResult> {
    const p = this.request({ type: "generate", id: 0, prompt, options }, { onPiece }) as Promise<GenerationResult>;
    return p;
  }

  /** The model's own chat (see `chat`). */
  private chatTurn(messages: readonly ChatMessage[], options: WorkerChatOptions = {}, onPiece?: (p: StreamedPiece) => void): Promise<GenerationResult> {
    return this.request({ type: "chat", id: 0, messages: [...messages], options }, { onPiece }) as Promise<GenerationResult>;
  }

  /**
   * The model's sequence (its tokens and KV cache) saved in the Origin Private File System as `name`; a
   * later restoreState(name), after a page reload too, makes a prompt starting with those tokens prefill
   * only the rest.
   */
  saveState(name: string): Promise<{ tokens: number; bytes: number }> {
    return this.request({ type: "save-state", id: 0, name }, {}) as Promise<{ tokens: number; bytes: number }>;
  }

  /** Loads state `name` from OPFS into the model's sequence; a state of another model is refused. */
  restoreState(name: string): Promise<{ tokens: number; bytes: number }> {
    return this.request({ type: "restore-state", id: 0, name }, {}) as Promise<{ tokens: number; bytes: number }>;
  }

  /** Runs an OpenAI request in the worker: the response, or an async iterable of its chunks (stream: true). */
  private async openai(route: "chat" | "completions", params: unknown, options: ClientRequestOptions = {}): Promise<unknown> {
    const stream = typeof params === "object" && params !== null && (params as { stream?: unknown }).stream === true;
    const chunks: unknown[] = [];
    let wake: (() => void) | null = null;
    let settled: { error?: Error } | null = null;
    let started: (() => void) | null = null;
    const first = new Promise<void>((r) => (started = r));
    const id = this.nextId;
    const abort = () => this.worker.postMessage({ type: "stop", id: this.nextId++, target: id } satisfies Request);
    options.signal?.addEventListener("abort", abort, { once: true });
    const done = this.request({ type: "openai", id: 0, route, params }, {
      onChunk: (c) => {
        chunks.push(c);
        started?.();
        wake?.();
      },
    }).then(
      (v) => {
        settled = {};
        started?.();
        wake?.();
        return v;
      },
      (err: Error) => {
        settled = { error: err };
        started?.();
        wake?.();
        throw err;
      },
    );
    if (!stream) {
      try {
        return await done;
      } finally {
        options.signal?.removeEventListener("abort", abort);
      }
    }
    done.catch(() => undefined);
    // A request refused before its first chunk (a bad field, a full queue) rejects here, as the openai client does.
    await first;
    if (chunks.length === 0 && settled !== null && (settled as { error?: Error }).error) throw (settled as { error: Error }).error;
    return {
      [Symbol.asyncIterator]: async function* () {
        try {
          for (;;) {
            if (chunks.length > 0) {
              yield chunks.shift();
              continue;
            }
            if (settled !== null) {
              const error = (settled as { error?: Error }).error;
              if (error) throw error;
              return;
            }
            await new Promise<void>((r) => (wake = r));
            wake = null;
          }
        } finally {
          if (settled === null) abort();
          options.signal?.removeEventListener("abort", abort);
        }
      },
    };
  }

  /** Stops the running generation after its current token; its promise resolves with stopReason "aborted". */
  stop(): void {
    if (this.generating === null) return;
    this.worker.postMessage({ type: "stop", id: this.nextId++, target: this.generating } satisfies Request);
  }

  /** Frees the model in the worker (its Wasm memory and thread workers). */
  async dispose(): Promise<void> {
    await this.request({ type: "dispose", id: 0 }, {});
  }

  /** Disposes the model and ends the worker. */
  async terminate(): Promise<void> {
    await this.dispose().catch(() => undefined);
    this.worker.terminate();
  }

  get busy(): boolean {
    return this.generating !== null;
  }

  private request(req: Request, handlers: Omit<Pending, "resolve" | "reject">): Promise<unknown> {
    const id = this.nextId++;
    if (req.type === "generate" || req.type === "chat") this.generating = id;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, ...handlers });
      this.worker.postMessage({ ...req, id });
    });
  }

  private receive(m: Reply): void {
    const p = this.pending.get(m.id);
    if (!p) return;
    switch (m.type) {
      case "progress":
        p.onProgress?.(m.progress);
        return;
      case "piece":
        p.onPiece?.({ token: m.token, text: m.text, stats: m.stats });
        return;
      case "chunk":
        p.onChunk?.(m.chunk);
        return;
      case "response":
        this.settle(m.id).resolve(m.response);
        return;
      case "state":
        this.settle(m.id).resolve({ tokens: m.tokens, bytes: m.bytes });
        return;
      case "end":
        this.settle(m.id).resolve(undefined);
        return;
      case "loaded":
        this.settle(m.id).resolve(m.model);
        return;
      case "done":
        this.settle(m.id).resolve(m.result);
        return;
      case "disposed":
      case "stopped":
        this.settle(m.id).resolve(undefined);
        return;
      case "error":
        this.settle(m.id).reject(m.status === undefined ? new Error(m.message) : new ModelClientError(m.message, m.status));
        return;
    }
  }

  private settle(id: number): Pending {
    const p = this.pending.get(id) as Pending;
    this.pending.delete(id);
    if (this.generating === id) this.generating = null;
    return p;
  }
}
