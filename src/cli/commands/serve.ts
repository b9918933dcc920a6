import { mkdirSync } from "node:fs";
import { createOpenAI, startHttpServer, DEFAULT_BODY_LIMIT } from "../../api.js";
import { intFlag, MODEL_FLAG, parseFlags, UsageError } from "../args.js";
import { loadFromFlags, RUN_FLAGS, RUN_HELP } from "../load-flags.js";

export const help = `mobilellm serve [options]

An OpenAI-compatible HTTP server: POST /v1/chat/completions and /v1/completions (server-sent
events with "stream": true), GET /v1/models, GET /health, and llama-server's slot API (GET /slots,
POST /slots/ID?action=save|restore|erase). --parallel sequences run at once, their decode steps
batched into one forward pass; a request reuses the sequence whose cache shares the longest prefix
with its prompt. Ctrl-C (SIGINT) or SIGTERM stops accepting, lets running requests end, exits 0.
docs/serving.md has the API table, the limits and the errors.

options:
  --host HOST        address to listen on (default 127.0.0.1: this machine only)
  --port N           port (default 8080; 0 picks a free one)
  --parallel N       sequences served at once, each with a KV cache of --ctx positions (default 4)
  --queue N          requests that may wait for a sequence; more get 429 (default 64)
  --api-key KEY      require "Authorization: Bearer KEY" (every route but /health)
  --cors ORIGIN      let pages of ORIGIN ("*": any) call the server
  --body-limit N     largest request body in bytes (default ${DEFAULT_BODY_LIMIT})
  --slot-save-path DIR  folder for slot state files (slot save/restore is off without it)
${RUN_HELP}`;

export async function run(argv: string[], out: (s: string) => void): Promise<void> {
  const v = parseFlags(argv, {
    ...MODEL_FLAG,
    ...RUN_FLAGS,
    host: { type: "string" },
    port: { type: "string" },
    parallel: { type: "string" },
    queue: { type: "string" },
    "api-key": { type: "string" },
    cors: { type: "string" },
    "body-limit": { type: "string" },
    "slot-save-path": { type: "string" },
    stats: { type: "boolean" },
  });
  const port = intFlag(v, "port", 8080, 0);
  if (port > 65535) throw new UsageError(`--port must be at most 65535, got ${port}`);
  const parallel = intFlag(v, "parallel", 4);
  const queueLimit = intFlag(v, "queue", 64, 0);
  const bodyLimit = intFlag(v, "body-limit", DEFAULT_BODY_LIMIT);
  const apiKey = v["api-key"] as string | undefined;
  if (apiKey !== undefined && apiKey.length === 0) throw new UsageError("--api-key must not be empty");
  const slotSavePath = v["slot-save-path"] as string | undefined;
  if (slotSavePath !== undefined) mkdirSync(slotSavePath, { recursive: true });
  const log = (s: string) => process.stderr.write(s + "\n");
  const model = await loadFromFlags(v, log, { sequences: parallel });
  const api = createOpenAI(model, { queueLimit });
  let running;
  try {
    running = await startHttpServer(api, { host: (v.host as string | undefined) ?? "127.0.0.1", port, apiKey, cors: v.cors as string | undefined, bodyLimit, slotSavePath });
  } catch (err) {
    await api.close();
    await model.dispose();
    throw err;
  }
  const i = model.info;
  out(`mobilellm serve: listening on ${running.url} (${api.modelId}, ${parallel} sequence${parallel === 1 ? "" : "s"} of ${i.contextLength} tokens, ${i.threads} thread${i.threads === 1 ? "" : "s"}${apiKey ? ", key required" : ""})`);
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      process.off("SIGINT", onInt);
      process.off("SIGTERM", onTerm);
      log(`${signal}: no new requests; waiting for ${api.scheduler.stats.busy} running`);
      resolve();
    };
    const onInt = () => stop("SIGINT");
    const onTerm = () => stop("SIGTERM");
    process.on("SIGINT", onInt);
    process.on("SIGTERM", onTerm);
  });
  await running.close();
  await model.dispose();
}
