// Our OpenAI types (src/serve/openai-types.ts) against the `openai` package's, so they cannot drift:
//
// - requests, ours -> OpenAI's: every request our types allow is one OpenAI's types allow (no invented
//   field, no field of another type; our one extension, context_shift, is checked to be ours alone);
// - requests, OpenAI's -> ours: an OpenAI request of the kinds served here (its messages system,
//   developer, user or assistant, their content text) is one our types allow, so an application's
//   requests typed with the `openai` package pass to our create() as they are;
// - responses, ours -> OpenAI's: every response, chunk and model entry ours produce is one OpenAI's types
//   accept, so code written for the `openai` client's results takes ours; and every field ours declare is
//   one of OpenAI's but for our extension, finish_detail.
//
// The checks are types: tsc makes them (npm test's typecheck, or `npm run typecheck`); at run time the
// calls below do nothing. The last test shows that the checks fail when a type drifts.
import { describe, expectTypeOf, it } from "vitest";
import type OpenAI from "openai";
import type { ChatCompletionCreateParamsBase } from "openai/resources/chat/completions";
import type { CompletionCreateParamsBase } from "openai/resources/completions";
import type * as Ours from "../../src/serve/openai-types.js";
import type { ChunkStream, LocalOpenAI } from "../../src/serve/openai.js";
import type { ModelClient } from "../../src/browser/client.js";

/** OpenAI's messages of the kinds served here: system, developer, user and assistant, with text content. */
type ServedMessage =
  | OpenAI.ChatCompletionSystemMessageParam
  | OpenAI.ChatCompletionDeveloperMessageParam
  | (Omit<OpenAI.ChatCompletionUserMessageParam, "content"> & { content: string | OpenAI.ChatCompletionContentPartText[] })
  | (Omit<OpenAI.ChatCompletionAssistantMessageParam, "content" | "audio" | "function_call" | "refusal" | "tool_calls"> & {
      content?: string | OpenAI.ChatCompletionContentPartText[] | null;
    });
/** OpenAI's chat request with the fields this server refuses (tools, audio, ...) left out and messages as served. */
type Served<P> = Omit<P, "messages" | RefusedChatFields> & { messages: ServedMessage[] };
type RefusedChatFields =
  | "audio" | "function_call" | "functions" | "modalities" | "moderation" | "parallel_tool_calls" | "prediction" | "prompt_cache_options"
  | "reasoning_effort" | "tool_choice" | "tools" | "verbosity" | "web_search_options";

describe("our OpenAI types against the openai package's", () => {
  it("chat requests: ours are OpenAI's, and OpenAI's of the kinds served here are ours", () => {
    expectTypeOf<Ours.ChatCompletionCreateParamsNonStreaming>().toExtend<OpenAI.ChatCompletionCreateParamsNonStreaming>();
    expectTypeOf<Ours.ChatCompletionCreateParamsStreaming>().toExtend<OpenAI.ChatCompletionCreateParamsStreaming>();
    expectTypeOf<Ours.ChatCompletionCreateParams>().toExtend<OpenAI.ChatCompletionCreateParams>();
    expectTypeOf<Ours.ChatCompletionMessageParam>().toExtend<OpenAI.ChatCompletionMessageParam>();
    expectTypeOf<Served<OpenAI.ChatCompletionCreateParamsNonStreaming>>().toExtend<Ours.ChatCompletionCreateParamsNonStreaming>();
    expectTypeOf<Served<OpenAI.ChatCompletionCreateParamsStreaming>>().toExtend<Ours.ChatCompletionCreateParamsStreaming>();
    // Every field but our extension is one of OpenAI's.
    expectTypeOf<Exclude<keyof Ours.ChatCompletionCreateParamsBase, keyof ChatCompletionCreateParamsBase>>().toEqualTypeOf<"context_shift">();
  });

  it("completion requests: ours are OpenAI's and OpenAI's are ours", () => {
    expectTypeOf<Ours.CompletionCreateParamsNonStreaming>().toExtend<OpenAI.CompletionCreateParamsNonStreaming>();
    expectTypeOf<Ours.CompletionCreateParamsStreaming>().toExtend<OpenAI.CompletionCreateParamsStreaming>();
    expectTypeOf<OpenAI.CompletionCreateParamsNonStreaming>().toExtend<Ours.CompletionCreateParamsNonStreaming>();
    expectTypeOf<OpenAI.CompletionCreateParamsStreaming>().toExtend<Ours.CompletionCreateParamsStreaming>();
    expectTypeOf<Exclude<keyof Ours.CompletionCreateParamsBase, keyof CompletionCreateParamsBase>>().toEqualTypeOf<"context_shift">();
  });

  it("responses: ours are OpenAI's, every field one of OpenAI's but finish_detail", () => {
    expectTypeOf<Ours.ChatCompletion>().toExtend<OpenAI.ChatCompletion>();
    expectTypeOf<Ours.ChatCompletionChunk>().toExtend<OpenAI.ChatCompletionChunk>();
    expectTypeOf<Ours.Completion>().toExtend<OpenAI.Completion>();
    expectTypeOf<Ours.CompletionUsage>().toExtend<OpenAI.CompletionUsage>();
    expectTypeOf<Ours.ChatCompletionTokenLogprob>().toExtend<OpenAI.ChatCompletionTokenLogprob>();
    expectTypeOf<Ours.OpenAIModel>().toExtend<OpenAI.Models.Model>();
    // The openai package types a streamed completion's chunks as Completion, whose finish_reason and usage
    // are never null; the API sends null in both on every chunk but the last ones, as ours do.
    type NonNull<C extends Ours.CompletionChunk> = Omit<C, "choices" | "usage"> & {
      choices: (Omit<C["choices"][number], "finish_reason"> & { finish_reason: Ours.FinishReason })[];
      usage?: Ours.CompletionUsage;
    };
    expectTypeOf<NonNull<Ours.CompletionChunk>>().toExtend<OpenAI.Completion>();
    expectTypeOf<Exclude<keyof Ours.ChatCompletion, keyof OpenAI.ChatCompletion>>().toEqualTypeOf<never>();
    expectTypeOf<Exclude<keyof Ours.ChatCompletionChoice, keyof OpenAI.ChatCompletion.Choice>>().toEqualTypeOf<"finish_detail">();
    expectTypeOf<Exclude<keyof Ours.ChatCompletionChunkChoice, keyof OpenAI.ChatCompletionChunk.Choice>>().toEqualTypeOf<"finish_detail">();
    expectTypeOf<Exclude<keyof Ours.CompletionChoice, keyof OpenAI.CompletionChoice>>().toEqualTypeOf<"finish_detail">();
    expectTypeOf<Exclude<keyof Ours.ChatCompletionMessage, keyof OpenAI.ChatCompletionMessage>>().toEqualTypeOf<never>();
  });

  it("create() takes a request typed with the openai package and gives what the openai client's create gives", () => {
    // Never called: tsc checks the calls' types.
    const typed = async (api: LocalOpenAI, client: ModelClient) => {
      const plain = null as unknown as Served<OpenAI.ChatCompletionCreateParamsNonStreaming>;
      const streamed = null as unknown as Served<OpenAI.ChatCompletionCreateParamsStreaming>;
      expectTypeOf(await api.chat.completions.create(plain)).toExtend<OpenAI.ChatCompletion>();
      expectTypeOf(await api.chat.completions.create(streamed)).toExtend<AsyncIterable<OpenAI.ChatCompletionChunk>>();
      expectTypeOf(await client.chat.completions.create(plain)).toExtend<OpenAI.ChatCompletion>();
      const completion = null as unknown as OpenAI.CompletionCreateParamsNonStreaming;
      expectTypeOf(await api.completions.create(completion)).toExtend<OpenAI.Completion>();
      expectTypeOf(await client.completions.create(completion)).toExtend<OpenAI.Completion>();
      expectTypeOf(await api.completions.create({ ...completion, stream: true })).toExtend<ChunkStream<Ours.CompletionChunk>>();
    };
    expectTypeOf(typed).toBeFunction();
  });

  it("the checks fail when a type drifts", () => {
    // A field of another type than OpenAI's, a field OpenAI's requests lack, a finish_reason OpenAI never sends.
    expectTypeOf<Omit<Ours.ChatCompletionCreateParamsNonStreaming, "stop"> & { stop?: number }>().not.toExtend<OpenAI.ChatCompletionCreateParamsNonStreaming>();
    expectTypeOf<Exclude<keyof (Ours.ChatCompletionCreateParamsBase & { temprature?: number }), keyof ChatCompletionCreateParamsBase>>().not.toEqualTypeOf<"context_shift">();
    expectTypeOf<Omit<Ours.ChatCompletionChoice, "finish_reason"> & { finish_reason: "done" }>().not.toExtend<OpenAI.ChatCompletion.Choice>();
    // OpenAI's requests with tools are not ours: refused at compile time as at run time.
    expectTypeOf<OpenAI.ChatCompletionCreateParamsNonStreaming>().not.toExtend<Ours.ChatCompletionCreateParamsNonStreaming>();
  });
});
