// Errors as OpenAI's API reports them: an HTTP status and `{ error: { message, type, param, code } }`.
// The in-process API throws them, the HTTP binding sends them; both say the same thing.

/** The body of an error response, as OpenAI sends it. */
export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export class OpenAIError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
    this.name = "OpenAIError";
  }

  toJSON(): OpenAIErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** 400: a request OpenAI's API would refuse too, or a field this server cannot honour. */
export function invalidRequest(message: string, param: string | null = null, code: string | null = null): OpenAIError {
  return new OpenAIError(400, message, "invalid_request_error", param, code);
}

/** 429: every sequence busy and the queue full. */
export function queueFull(queued: number): OpenAIError {
  return new OpenAIError(429, `the server is busy: all sequences are running and ${queued} requests are already waiting; retry later`, "rate_limit_error", null, "queue_full");
}

/** 503: the server is shutting down and takes no more requests. */
export function shuttingDown(): OpenAIError {
  return new OpenAIError(503, "the server is shutting down", "server_error", null, "shutting_down");
}

/**
 * Any error as an OpenAIError: one already is; a RangeError or TypeError from the checks below the serving
 * layer (sampling options, a prompt that does not fit) is the client's (400); anything else is the server's
 * (500, its message kept to one line).
 */
export function asOpenAIError(err: unknown): OpenAIError {
  if (err instanceof OpenAIError) return err;
  const message = (err instanceof Error ? err.message : String(err)).split("\n")[0];
  if (err instanceof RangeError || err instanceof TypeError) return invalidRequest(message);
  return new OpenAIError(500, message, "server_error");
}
