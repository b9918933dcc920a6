// Server-sent events as OpenAI streams them: one `data: {json}` event per chunk, then `data: [DONE]`. An
// error after the stream has started (the status line is already sent) goes out as an event holding the
// OpenAI error object, and the stream ends there without [DONE].
import { asOpenAIError } from "./errors.js";

/** One event carrying `value` as JSON. */
export function sseEvent(value: unknown): string {
  return `data: ${JSON.stringify(value)}\n\n`;
}

/** The event that ends a stream. */
export const SSE_DONE = "data: [DONE]\n\n";

/** The events of a stream of chunks: each chunk, then [DONE], or an error event if the stream fails. */
export async function* sseEvents(chunks: AsyncIterable<unknown>): AsyncGenerator<string, void, undefined> {
  try {
    for await (const chunk of chunks) yield sseEvent(chunk);
  } catch (err) {
    yield sseEvent(asOpenAIError(err).toJSON());
    return;
  }
  yield SSE_DONE;
}
