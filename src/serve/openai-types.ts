// The request and response shapes of OpenAI's API, from the `openai` package itself (an optional peer
// dependency: `import type` only, so nothing of it is loaded at run time; TypeScript users of the serving
// API install `openai` for these types, as applications written against OpenAI already have it).
export type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionCreateParams,
  ChatCompletionCreateParamsNonStreaming,
  ChatCompletionCreateParamsStreaming,
  ChatCompletionMessageParam,
  ChatCompletionTokenLogprob,
} from "openai/resources/chat/completions";
export type {
  Completion,
  CompletionChoice,
  CompletionCreateParams,
  CompletionCreateParamsNonStreaming,
  CompletionCreateParamsStreaming,
  CompletionUsage,
} from "openai/resources/completions";
export type { Model as OpenAIModel } from "openai/resources/models";
