// The request and response shapes of OpenAI's chat completions, completions and models, as this server
// speaks them: the fields it honours and the fields it answers with, each under OpenAI's name and with
// OpenAI's type. They are this package's own, so a TypeScript user needs no `openai` install to compile
// against it (whatever skipLibCheck says), and they cannot drift from OpenAI's:
// test/serve/openai-types.test.ts checks that every request these types allow is one the `openai`
// package's types allow, that OpenAI's requests of the kinds served here are ones these types allow, and
// that every response here is one OpenAI's response types accept.
//
// What a request may hold beyond what is honoured is refused at run time with a 400 naming the field
// (requests.ts); the types leave such fields out, so a literal that sets one does not compile.

// ---- requests -------------------------------------------------------------------------------------------

/** A text part of a message's content. */
export interface ChatCompletionContentPartText {
  type: "text";
  text: string;
}

/** Message content: a string, or text parts (joined). */
export type ChatCompletionMessageContent = string | ChatCompletionContentPartText[];

export interface ChatCompletionSystemMessageParam {
  role: "system";
  content: ChatCompletionMessageContent;
  name?: string;
}

/** Rendered as a system message. */
export interface ChatCompletionDeveloperMessageParam {
  role: "developer";
  content: ChatCompletionMessageContent;
  name?: string;
}

export interface ChatCompletionUserMessageParam {
  role: "user";
  content: ChatCompletionMessageContent;
  name?: string;
}

export interface ChatCompletionAssistantMessageParam {
  role: "assistant";
  content?: ChatCompletionMessageContent | null;
  name?: string;
}

/** The messages rendered by the model's chat template (tool and function messages are not served). */
export type ChatCompletionMessageParam =
  | ChatCompletionSystemMessageParam
  | ChatCompletionDeveloperMessageParam
  | ChatCompletionUserMessageParam
  | ChatCompletionAssistantMessageParam;

export interface ChatCompletionStreamOptions {
  /** A last chunk with `choices: []` and the usage, before `[DONE]`. */
  include_usage?: boolean;
  /** Accepted; chunks carry no obfuscation padding here. */
  include_obfuscation?: boolean;
}

/**
 * The output's format: free text, any JSON object, or JSON valid against a schema (docs/structured-output.md:
 * the keywords enforced; one that cannot be is refused with a 400 naming it). Sampling follows the grammar.
 */
export type ResponseFormat =
  | { type: "text" }
  | { type: "json_object" }
  | { type: "json_schema"; json_schema: { name: string; description?: string; schema?: { [key: string]: unknown }; strict?: boolean | null } };

/** This server's own field: when the context fills, keep the first `keep` tokens and drop the oldest of the rest. */
export interface ContextShift {
  keep?: number;
}

/** What chat.completions and completions share. `null` stands for absent, as in OpenAI's API. */
interface CreateParamsBase {
  /** Any name: one model is served, and responses carry its id. */
  model: string;
  max_tokens?: number | null;
  temperature?: number | null;
  top_p?: number | null;
  seed?: number | null;
  stop?: string | string[] | null;
  n?: number | null;
  stream?: boolean | null;
  stream_options?: ChatCompletionStreamOptions | null;
  presence_penalty?: number | null;
  frequency_penalty?: number | null;
  /** Token id (as a string) -> bias in [-100, 100], added to its logit. */
  logit_bias?: { [token: string]: number } | null;
  /** Accepted and ignored: metadata about the caller. */
  user?: string;
  context_shift?: ContextShift | null;
}

export interface ChatCompletionCreateParamsBase extends CreateParamsBase {
  messages: ChatCompletionMessageParam[];
  max_completion_tokens?: number | null;
  logprobs?: boolean | null;
  top_logprobs?: number | null;
  response_format?: ResponseFormat;
  /** Accepted and ignored: they change nothing a local model does. */
  metadata?: { [key: string]: string } | null;
  store?: boolean | null;
  service_tier?: "auto" | "default" | "flex" | "scale" | "priority" | null;
  safety_identifier?: string | null;
  prompt_cache_key?: string | null;
  prompt_cache_retention?: "in_memory" | "24h" | null;
}

export interface ChatCompletionCreateParamsNonStreaming extends ChatCompletionCreateParamsBase {
  stream?: false | null;
}

export interface ChatCompletionCreateParamsStreaming extends ChatCompletionCreateParamsBase {
  stream: true;
}

export type ChatCompletionCreateParams = ChatCompletionCreateParamsNonStreaming | ChatCompletionCreateParamsStreaming;

export interface CompletionCreateParamsBase extends CreateParamsBase {
  /** A string or token ids; a list holding one of either is taken too. */
  prompt: string | string[] | number[] | number[][] | null;
  /** Alternatives per token, 0 to 5. */
  logprobs?: number | null;
  echo?: boolean | null;
  /** Only equal to n. */
  best_of?: number | null;
  /** Only empty (no insertion). */
  suffix?: string | null;
}

export interface CompletionCreateParamsNonStreaming extends CompletionCreateParamsBase {
  stream?: false | null;
}

export interface CompletionCreateParamsStreaming extends CompletionCreateParamsBase {
  stream: true;
}

export type CompletionCreateParams = CompletionCreateParamsNonStreaming | CompletionCreateParamsStreaming;

// ---- responses ------------------------------------------------------------------------------------------

export interface CompletionUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  /** cached_tokens: the prompt tokens reused from a sequence's cache (prefix reuse). */
  prompt_tokens_details?: { cached_tokens?: number };
}

/** `stop`: an end token or a stop string; `length`: max_tokens, or a full context (then `finish_detail` says so). */
export type FinishReason = "stop" | "length";

export interface TopLogprob {
  token: string;
  /** The token's UTF-8 bytes. */
  bytes: number[];
  logprob: number;
}

export interface ChatCompletionTokenLogprob extends TopLogprob {
  top_logprobs: TopLogprob[];
}

export interface ChatCompletionLogprobs {
  content: ChatCompletionTokenLogprob[] | null;
  refusal: null;
}

export interface ChatCompletionMessage {
  role: "assistant";
  content: string | null;
  refusal: null;
}

export interface ChatCompletionChoice {
  index: number;
  message: ChatCompletionMessage;
  logprobs: ChatCompletionLogprobs | null;
  finish_reason: FinishReason;
  /** This server's: why a choice ended where OpenAI has no field for it (a full context). */
  finish_detail?: string;
}

export interface ChatCompletion {
  id: string;
  object: "chat.completion";
  created: number;
  model: string;
  choices: ChatCompletionChoice[];
  usage: CompletionUsage;
}

export interface ChatCompletionChunkChoice {
  index: number;
  /** The first chunk of a choice has the role, the next ones the text, the last one nothing. */
  delta: { role?: "assistant"; content?: string | null };
  logprobs?: ChatCompletionLogprobs | null;
  finish_reason: FinishReason | null;
  finish_detail?: string;
}

export interface ChatCompletionChunk {
  id: string;
  object: "chat.completion.chunk";
  created: number;
  model: string;
  choices: ChatCompletionChunkChoice[];
  /** With stream_options.include_usage: null on every chunk but the last, which has no choices. */
  usage?: CompletionUsage | null;
}

/** Completions' legacy logprobs: per token its text, logprob, alternatives and offset in the choice's text. */
export interface CompletionLogprobs {
  tokens?: string[];
  token_logprobs?: number[];
  top_logprobs?: { [token: string]: number }[];
  text_offset?: number[];
}

export interface CompletionChoice {
  index: number;
  text: string;
  logprobs: CompletionLogprobs | null;
  finish_reason: FinishReason;
  finish_detail?: string;
}

export interface Completion {
  id: string;
  object: "text_completion";
  created: number;
  model: string;
  choices: CompletionChoice[];
  usage: CompletionUsage;
}

/** A chunk of a streamed completion: a choice's next text; its last chunk has the finish_reason. */
export interface CompletionChunkChoice extends Omit<CompletionChoice, "finish_reason"> {
  finish_reason: FinishReason | null;
}

export interface CompletionChunk {
  id: string;
  object: "text_completion";
  created: number;
  model: string;
  choices: CompletionChunkChoice[];
  /** With stream_options.include_usage: null on every chunk but the last, which has no choices. */
  usage?: CompletionUsage | null;
}

/** An entry of /v1/models. */
export interface OpenAIModel {
  id: string;
  object: "model";
  created: number;
  owned_by: string;
}
