// OpenAI requests checked and turned into what the token loop runs: every field of chat.completions and
// completions either honoured, or refused with a 400 naming it; nothing silently ignored. The shapes are
// the `openai` package's own (openai-types.ts); a body from the network is `unknown` until checked here.
import type { GenerateOptions } from "../generate/generate.js";
import type { ChatMessage } from "../text/chat-template.js";
import { invalidRequest } from "./errors.js";
import type { ChatCompletionCreateParams, CompletionCreateParams } from "./openai-types.js";

/** A checked request: the prompt, the options shared by its choices, and how to answer. */
export interface Job {
  kind: "chat" | "completion";
  /** The chat's messages (chat), or the prompt as text or token ids (completion). */
  messages: ChatMessage[] | null;
  prompt: string | number[] | null;
  /** The model name the client asked for, echoed in the response. */
  model: string;
  /** Choices to generate (n); choice i samples with seed + i when a seed is given. */
  n: number;
  stream: boolean;
  includeUsage: boolean;
  /** Chat: per-token logprobs (with `options.logprobs` alternatives); completion: the same, legacy shape. */
  logprobs: boolean;
  /** Completion: the prompt's text before each choice's text. */
  echo: boolean;
  /** Generation options (maxNewTokens undefined: until the context is full). */
  options: GenerateOptions;
  /** context_shift: when the context fills, keep this many first tokens and drop the oldest of the rest. */
  contextShift: { keep: number } | null;
}

/** At most this many choices per request (each runs on a sequence of its own). */
export const MAX_CHOICES = 16;
/** OpenAI's bounds. */
const MAX_STOPS = 4;
const MAX_TOP_LOGPROBS_CHAT = 20;
const MAX_LOGPROBS_COMPLETION = 5;

type Body = Record<string, unknown>;

/** Fields that are accepted because they change nothing a local model does (metadata about the caller). */
const INERT = new Set(["user", "safety_identifier", "metadata", "store", "service_tier", "prompt_cache_key", "prompt_cache_retention"]);

const CHAT_FIELDS = new Set([
  "messages", "model", "max_tokens", "max_completion_tokens", "temperature", "top_p", "seed", "stop", "n", "stream",
  "stream_options", "logprobs", "top_logprobs", "presence_penalty", "frequency_penalty", "logit_bias", "response_format", "context_shift",
]);

const COMPLETION_FIELDS = new Set([
  "prompt", "model", "max_tokens", "temperature", "top_p", "seed", "stop", "n", "stream", "stream_options", "logprobs", "echo",
  "presence_penalty", "frequency_penalty", "logit_bias", "best_of", "suffix", "context_shift",
]);

/** What each refused field does in OpenAI's API, so the refusal says what is missing. */
const REFUSED: Record<string, string> = {
  tools: "tool calling", tool_choice: "tool calling", parallel_tool_calls: "tool calling", functions: "function calling",
  function_call: "function calling", audio: "audio output", modalities: "output modalities other than text",
  prediction: "predicted outputs", web_search_options: "web search", reasoning_effort: "reasoning effort",
  verbosity: "verbosity", moderation: "moderation", prompt_cache_options: "prompt cache options",
};

function object(v: unknown, what: string): Body {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw invalidRequest(`${what} must be a JSON object`);
  return v as Body;
}

/** Refuses any field outside `known`, naming it (and what it does, for OpenAI fields this server lacks). */
function checkFields(body: Body, known: Set<string>): void {
  for (const [key, value] of Object.entries(body)) {
    if (known.has(key) || INERT.has(key)) continue;
    // null stands for "absent" in OpenAI's API (the client sends it for unset optional fields).
    if (value === null || value === undefined) continue;
    const what = REFUSED[key];
    throw invalidRequest(what ? `${key}: ${what} is not supported by this server` : `unknown field ${key}`, key, "unsupported_parameter");
  }
}

/** A field that may be absent or null; else must pass `ok`. */
function optional<T>(body: Body, key: string, ok: (v: unknown) => v is T, rule: string): T | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (!ok(v)) throw invalidRequest(`${key} must be ${rule}, got ${JSON.stringify(v)?.slice(0, 80)}`, key);
  return v;
}

const isNumber = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
const isInt = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v);
const isBool = (v: unknown): v is boolean => typeof v === "boolean";
const inRange = (lo: number, hi: number) => (v: unknown): v is number => isNumber(v) && v >= lo && v <= hi;
const intIn = (lo: number, hi: number) => (v: unknown): v is number => isInt(v) && v >= lo && v <= hi;

/** The fields chat.completions and completions share. */
function common(body: Body, kind: "chat" | "completion", contextLength: number): Omit<Job, "kind" | "messages" | "prompt" | "logprobs" | "echo"> {
  const model = body.model;
  if (typeof model !== "string" || model.length === 0) throw invalidRequest("model must be a non-empty string", "model");
  let maxTokens = optional(body, "max_tokens", isInt, "an integer");
  if (kind === "chat") {
    const maxCompletion = optional(body, "max_completion_tokens", isInt, "an integer");
    if (maxTokens !== undefined && maxCompletion !== undefined && maxTokens !== maxCompletion) {
      throw invalidRequest("max_tokens and max_completion_tokens disagree: give one of them", "max_completion_tokens");
    }
    maxTokens ??= maxCompletion;
  }
  const maxKey = kind === "chat" && body.max_tokens == null ? "max_completion_tokens" : "max_tokens";
  if (maxTokens !== undefined && maxTokens < 1) throw invalidRequest(`${maxKey} must be at least 1, got ${maxTokens}`, maxKey);
  if (maxTokens !== undefined && maxTokens > contextLength) {
    throw invalidRequest(`${maxKey} is too large: ${maxTokens}; this model's context holds ${contextLength} tokens`, maxKey);
  }
  const temperature = optional(body, "temperature", inRange(0, 2), "a number in [0, 2]");
  const topP = optional(body, "top_p", inRange(0, 1), "a number in [0, 1]");
  const seed = optional(body, "seed", isInt, "an integer");
  const n = optional(body, "n", intIn(1, MAX_CHOICES), `an integer in [1, ${MAX_CHOICES}]`) ?? 1;
  const stream = optional(body, "stream", isBool, "true or false") ?? false;
  const streamOptions = body.stream_options == null ? undefined : object(body.stream_options, "stream_options");
  if (streamOptions !== undefined) {
    if (!stream) throw invalidRequest("stream_options is only allowed with stream: true", "stream_options");
    for (const key of Object.keys(streamOptions)) {
      if (key !== "include_usage" && key !== "include_obfuscation") throw invalidRequest(`unknown field stream_options.${key}`, "stream_options");
    }
  }
  const includeUsage = streamOptions === undefined ? false : (optional(streamOptions, "include_usage", isBool, "true or false") ?? false);
  const presencePenalty = optional(body, "presence_penalty", inRange(-2, 2), "a number in [-2, 2]");
  const frequencyPenalty = optional(body, "frequency_penalty", inRange(-2, 2), "a number in [-2, 2]");
  const stop = stops(body.stop);
  const logitBias = bias(body.logit_bias);
  const contextShift = shift(body.context_shift, contextLength);
  return {
    model,
    n,
    stream,
    includeUsage,
    contextShift,
    options: {
      maxNewTokens: maxTokens,
      // top_p 0 means "only the most likely token" in OpenAI's API; the sampler wants p > 0.
      ...(topP === 0 ? { temperature: 0 } : { temperature, topP }),
      seed: seed === undefined ? undefined : seed >>> 0,
      presencePenalty,
      frequencyPenalty,
      logitBias,
      stop,
    },
  };
}

function stops(v: unknown): string[] {
  if (v === undefined || v === null) return [];
  const list = typeof v === "string" ? [v] : v;
  if (!Array.isArray(list) || !list.every((s) => typeof s === "string" && s.length > 0)) {
    throw invalidRequest("stop must be a non-empty string or an array of them", "stop");
  }
  if (list.length > MAX_STOPS) throw invalidRequest(`stop takes at most ${MAX_STOPS} strings, got ${list.length}`, "stop");
  return list as string[];
}

function bias(v: unknown): Map<number, number> | undefined {
  if (v === undefined || v === null) return undefined;
  const o = object(v, "logit_bias");
  const map = new Map<number, number>();
  for (const [key, value] of Object.entries(o)) {
    if (!/^\d{1,9}$/.test(key)) throw invalidRequest(`logit_bias keys must be token ids, got ${JSON.stringify(key).slice(0, 40)}`, "logit_bias");
    if (!inRange(-100, 100)(value)) throw invalidRequest(`logit_bias values must be numbers in [-100, 100], got ${JSON.stringify(value)}`, "logit_bias");
    map.set(Number(key), value);
  }
  return map;
}

/** context_shift (this server's): { keep: n } lets a full context drop its oldest tokens after the first n. */
function shift(v: unknown, contextLength: number): { keep: number } | null {
  if (v === undefined || v === null || v === false) return null;
  const o = object(v, "context_shift");
  const keep = o.keep ?? 0;
  if (!isInt(keep) || keep < 0 || keep >= contextLength / 2) {
    throw invalidRequest(`context_shift.keep must be an integer in [0, ${Math.ceil(contextLength / 2) - 1}]`, "context_shift");
  }
  for (const key of Object.keys(o)) if (key !== "keep") throw invalidRequest(`unknown field context_shift.${key}`, "context_shift");
  return { keep };
}

/** The text of a message's content: a string, or text parts (other kinds of part are refused). */
function contentText(content: unknown, i: number): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) throw invalidRequest(`messages[${i}].content must be a string or an array of text parts`, `messages[${i}].content`);
  return content
    .map((part, j) => {
      const p = object(part, `messages[${i}].content[${j}]`);
      if (p.type !== "text") throw invalidRequest(`messages[${i}].content[${j}]: content parts of type ${JSON.stringify(p.type)} are not supported (text only)`, `messages[${i}].content`);
      if (typeof p.text !== "string") throw invalidRequest(`messages[${i}].content[${j}].text must be a string`, `messages[${i}].content`);
      return p.text;
    })
    .join("");
}

const ROLES: Record<string, ChatMessage["role"]> = { system: "system", developer: "system", user: "user", assistant: "assistant" };

function messagesOf(v: unknown): ChatMessage[] {
  if (!Array.isArray(v) || v.length === 0) throw invalidRequest("messages must be a non-empty array", "messages");
  return v.map((m, i) => {
    const o = object(m, `messages[${i}]`);
    const role = typeof o.role === "string" ? ROLES[o.role] : undefined;
    if (role === undefined) {
      throw invalidRequest(`messages[${i}].role ${JSON.stringify(o.role)} is not supported (system, developer, user, assistant)`, `messages[${i}].role`);
    }
    for (const key of Object.keys(o)) {
      if (key === "role" || key === "content" || key === "name" || o[key] === null) continue;
      throw invalidRequest(`messages[${i}].${key} is not supported`, `messages[${i}].${key}`);
    }
    return { role, content: contentText(o.content, i) };
  });
}

/**
 * The place where response_format plugs in. Until the grammar layer (src/grammar/) maps a JSON schema to a
 * sampler constraint, only plain text is produced, and a request for JSON is refused rather than answered
 * with text that may not parse.
 */
function checkResponseFormat(v: unknown): void {
  if (v === undefined || v === null) return;
  const o = object(v, "response_format");
  if (o.type === "text") return;
  throw invalidRequest(`response_format ${JSON.stringify(o.type)} is not supported yet (only {"type": "text"})`, "response_format", "unsupported_parameter");
}

/** A chat.completions request checked against `contextLength`. */
export function chatJob(params: ChatCompletionCreateParams | unknown, contextLength: number): Job {
  const body = object(params, "the request body");
  checkFields(body, CHAT_FIELDS);
  const messages = messagesOf(body.messages);
  checkResponseFormat(body.response_format);
  const base = common(body, "chat", contextLength);
  const logprobs = optional(body, "logprobs", isBool, "true or false") ?? false;
  const top = optional(body, "top_logprobs", intIn(0, MAX_TOP_LOGPROBS_CHAT), `an integer in [0, ${MAX_TOP_LOGPROBS_CHAT}]`);
  if (top !== undefined && !logprobs) throw invalidRequest("top_logprobs needs logprobs: true", "top_logprobs");
  return { ...base, kind: "chat", messages, prompt: null, echo: false, logprobs, options: { ...base.options, logprobs: logprobs ? (top ?? 0) : undefined } };
}

/** A completions request checked against the model's context and vocabulary. */
export function completionJob(params: CompletionCreateParams | unknown, contextLength: number, vocabSize: number): Job {
  const body = object(params, "the request body");
  checkFields(body, COMPLETION_FIELDS);
  const p = body.prompt;
  let prompt: string | number[];
  if (typeof p === "string") prompt = p;
  else if (Array.isArray(p) && p.length > 0 && p.every((t) => isInt(t) && t >= 0 && t < vocabSize)) prompt = p as number[];
  else if (Array.isArray(p) && p.length === 1 && typeof p[0] === "string") prompt = p[0];
  else if (Array.isArray(p) && p.length === 1 && Array.isArray(p[0])) return completionJob({ ...body, prompt: p[0] }, contextLength, vocabSize);
  else if (Array.isArray(p) && p.length > 1 && p.every((x) => typeof x === "string" || Array.isArray(x))) {
    throw invalidRequest("prompt: a list of several prompts is not supported; send one request per prompt", "prompt");
  } else {
    throw invalidRequest(`prompt must be a string or an array of token ids in [0, ${vocabSize})`, "prompt");
  }
  if (prompt.length === 0) throw invalidRequest("prompt must not be empty", "prompt");
  const base = common(body, "completion", contextLength);
  const top = optional(body, "logprobs", intIn(0, MAX_LOGPROBS_COMPLETION), `an integer in [0, ${MAX_LOGPROBS_COMPLETION}]`);
  const echo = optional(body, "echo", isBool, "true or false") ?? false;
  const bestOf = optional(body, "best_of", isInt, "an integer");
  if (bestOf !== undefined && bestOf !== base.n) throw invalidRequest("best_of other than n is not supported", "best_of");
  if (typeof body.suffix === "string" && body.suffix.length > 0) throw invalidRequest("suffix (insertion) is not supported", "suffix");
  return { ...base, kind: "completion", messages: null, prompt, echo, logprobs: top !== undefined, options: { ...base.options, logprobs: top } };
}
