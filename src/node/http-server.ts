// The OpenAI-compatible HTTP server: node:http in front of the in-process API (src/serve/openai.ts).
//
//   GET  /health                      {"status": "ok", slots, busy, queued}
//   GET  /v1/models                   the served model
//   POST /v1/chat/completions         OpenAI's chat completions (SSE when stream: true)
//   POST /v1/completions              OpenAI's (legacy) completions
//   GET  /slots                       each sequence: its cached tokens, busy or not
//   POST /slots/{id}?action=save      the sequence's KV state to a file of the save folder   } llama-server's
//   POST /slots/{id}?action=restore   a saved state back into the free sequence               } slot API
//   POST /slots/{id}?action=erase     forget the sequence's cached tokens
//
// Everything a client sends is hostile until checked: a body over the limit gets 413 (before it is read
// when Content-Length says so), malformed JSON and invalid fields 400, a missing or wrong key 401, unknown
// routes 404, a full queue 429, every one as an OpenAI error object; a client that disconnects stops its
// generation and frees its sequence. No request can take the server down: every handler's failure ends in
// a response (or a closed connection once streaming has begun).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { timingSafeEqual } from "node:crypto";
import type { AddressInfo } from "node:net";
import { asOpenAIError, invalidRequest, OpenAIError } from "../serve/errors.js";
import type { LocalOpenAI } from "../serve/openai.js";
import { sseEvents } from "../serve/sse.js";
import { kvCacheBytes } from "../model/memory.js";

export interface HttpServerOptions {
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** Required as `Authorization: Bearer KEY` on every route but /health, when set. */
  apiKey?: string;
  /** Allows browser pages of this origin ("*" for any) to call the server. */
  cors?: string;
  /** Largest request body in bytes (default 1 MiB). */
  bodyLimit?: number;
  /** Folder of the slots' state files (slot save/restore is off without it). */
  slotSavePath?: string;
}

export interface RunningServer {
  readonly server: Server;
  /** The base URL, e.g. http://127.0.0.1:8080. */
  readonly url: string;
  /**
   * Stops accepting connections, lets running requests end (new ones get 503 meanwhile) and closes the
   * connections; resolves when all is done.
   */
  close(): Promise<void>;
}

export const DEFAULT_BODY_LIMIT = 1 << 20;
const SLOT_FILE = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;

class HttpError extends OpenAIError {}

function notFound(what: string): OpenAIError {
  return new HttpError(404, what, "invalid_request_error", null, "not_found");
}

/** Starts the server and resolves once it listens. */
export async function startHttpServer(api: LocalOpenAI, opts: HttpServerOptions = {}): Promise<RunningServer> {
  const bodyLimit = opts.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const key = opts.apiKey === undefined ? null : Buffer.from(opts.apiKey);
  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      // A handler's own failure: answer if nothing was sent yet, else cut the connection.
      if (!res.headersSent) send(res, asOpenAIError(err).status, asOpenAIError(err).toJSON());
      else res.destroy();
    });
  });

  function cors(res: ServerResponse): void {
    if (opts.cors === undefined) return;
    res.setHeader("Access-Control-Allow-Origin", opts.cors);
    res.setHeader("Access-Control-Allow-Headers", "Authorization, Content-Type");
    res.setHeader("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
  }

  function send(res: ServerResponse, status: number, body: unknown): void {
    if (res.headersSent || res.destroyed) return;
    const text = JSON.stringify(body);
    cors(res);
    res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text) });
    res.end(text);
  }

  function authorized(req: IncomingMessage): boolean {
    if (key === null) return true;
    const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? "");
    if (!m) return false;
    const given = Buffer.from(m[1]);
    return given.length === key.length && timingSafeEqual(given, key);
  }

  /** The request body as parsed JSON; 413 past the limit, 400 when it does not parse. */
  async function jsonBody(req: IncomingMessage): Promise<unknown> {
    const declared = Number(req.headers["content-length"] ?? NaN);
    if (declared > bodyLimit) throw new HttpError(413, `the request body of ${declared} bytes is over the limit of ${bodyLimit}`, "invalid_request_error", null, "body_too_large");
    const parts: Buffer[] = [];
    let size = 0;
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > bodyLimit) throw new HttpError(413, `the request body is over the limit of ${bodyLimit} bytes`, "invalid_request_error", null, "body_too_large");
      parts.push(chunk as Buffer);
    }
    const text = Buffer.concat(parts).toString("utf8");
    if (text.trim() === "") throw invalidRequest("the request has no body: expected a JSON object");
    try {
      return JSON.parse(text);
    } catch (err) {
      throw invalidRequest(`the body is not valid JSON: ${(err as Error).message.split("\n")[0]}`);
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://localhost");
    const path = url.pathname.replace(/\/+$/, "") || "/";
    const method = req.method ?? "GET";
    if (method === "OPTIONS") {
      cors(res);
      res.writeHead(204).end();
      return;
    }
    if (path === "/health") {
      const s = api.scheduler.stats;
      return send(res, api.scheduler.closing ? 503 : 200, { status: api.scheduler.closing ? "shutting down" : "ok", slots: s.slots, busy: s.busy, queued: s.queued });
    }
    if (!authorized(req)) {
      req.resume();
      return send(res, 401, new OpenAIError(401, "Invalid API key: send it as 'Authorization: Bearer KEY'", "invalid_request_error", null, "invalid_api_key").toJSON());
    }
    const route = routeOf(method, path);
    if (route === null) {
      req.resume();
      return send(res, 404, notFound(`no route ${method} ${url.pathname}`).toJSON());
    }
    if (route === "wrong-method") {
      req.resume();
      return send(res, 405, new OpenAIError(405, `${method} is not allowed on ${url.pathname}`, "invalid_request_error", null, "method_not_allowed").toJSON());
    }
    try {
      if (route === "models") return send(res, 200, await api.models.list());
      if (route === "slots") return send(res, 200, api.scheduler.slots.map((s) => ({ id: s.index, busy: s.busy, tokens: s.tokens.length })));
      if (route === "slot") return send(res, 200, await slotAction(url, path, await jsonBody(req)));
      await complete(route, await jsonBody(req), req, res);
    } catch (err) {
      const e = asOpenAIError(err);
      if (!res.headersSent) {
        if (e.status === 413) res.setHeader("Connection", "close");
        send(res, e.status, e.toJSON());
      }
    }
  }

  /** Runs a (chat) completion; a client that goes away aborts it, which frees its sequences. */
  async function complete(route: "chat" | "completions", body: unknown, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const abort = new AbortController();
    const onClose = () => {
      if (!res.writableFinished) abort.abort();
    };
    res.on("close", onClose);
    try {
      const create = route === "chat" ? api.chat.completions.create : api.completions.create;
      const result = (await create(body, { signal: abort.signal })) as object;
      if (!(Symbol.asyncIterator in result)) return send(res, 200, result);
      cors(res);
      res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache", Connection: "keep-alive" });
      for await (const event of sseEvents(result as AsyncIterable<unknown>)) {
        if (res.destroyed) break;
        if (!res.write(event)) await new Promise<void>((r) => { res.once("drain", r); res.once("close", r); });
      }
      res.end();
    } finally {
      res.off("close", onClose);
      void req;
    }
  }

  async function slotAction(url: URL, path: string, body: unknown): Promise<unknown> {
    const id = Number(path.split("/")[2]);
    const slot = api.scheduler.slots[id];
    if (!Number.isInteger(id) || slot === undefined) throw notFound(`no slot ${path.split("/")[2]} (slots 0..${api.scheduler.slots.length - 1})`);
    const action = url.searchParams.get("action");
    if (action === "erase") {
      api.scheduler.checkIdle(slot);
      const n = slot.tokens.length;
      slot.forget();
      return { id_slot: id, n_erased: n };
    }
    if (action !== "save" && action !== "restore") throw invalidRequest(`action must be save, restore or erase, got ${JSON.stringify(action)}`, "action");
    if (opts.slotSavePath === undefined) throw new HttpError(501, "slot save/restore is off: start the server with --slot-save-path DIR", "invalid_request_error", null, "not_supported");
    const filename = (body as { filename?: unknown } | null)?.filename;
    if (typeof filename !== "string" || !SLOT_FILE.test(filename)) {
      throw invalidRequest("filename must be a file name (letters, digits, '.', '_', '-'; no folders)", "filename");
    }
    const file = join(opts.slotSavePath, filename);
    const t0 = performance.now();
    if (action === "save") {
      const bytes = slot.save();
      await writeFile(file, bytes);
      return { id_slot: id, filename, n_saved: slot.tokens.length, n_written: bytes.length, timings: { save_ms: performance.now() - t0 } };
    }
    // The largest state this context can have: its whole KV cache, its tokens and a header.
    const kv = kvCacheBytes(api.model.config, api.context);
    const limit = kv.data + kv.scales + 4 * api.context + (1 << 17);
    const size = await stat(file).then((s) => s.size, () => -1);
    if (size < 0) throw notFound(`no saved state ${filename}`);
    if (size > limit) throw invalidRequest(`${filename} is ${size} bytes, more than any state of this context (${limit})`, "filename");
    const bytes = new Uint8Array(await readFile(file));
    const n = slot.restore(bytes);
    return { id_slot: id, filename, n_restored: n, n_read: bytes.length, timings: { restore_ms: performance.now() - t0 } };
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 8080, opts.host ?? "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  let closing: Promise<void> | null = null;
  return {
    server,
    url: `http://${host}:${address.port}`,
    close: () => {
      closing ??= (async () => {
        const stopped = new Promise<void>((r) => server.close(() => r()));
        server.closeIdleConnections();
        await api.close();
        server.closeAllConnections();
        await stopped;
      })();
      return closing;
    },
  };
}

type Route = "chat" | "completions" | "models" | "slots" | "slot";

/** The route of a method and path (the /v1 prefix optional, as llama-server allows). */
function routeOf(method: string, path: string): Route | "wrong-method" | null {
  const p = path.replace(/^\/v1(?=\/)/, "");
  const routes: [RegExp, string, Route][] = [
    [/^\/chat\/completions$/, "POST", "chat"],
    [/^\/completions$/, "POST", "completions"],
    [/^\/models$/, "GET", "models"],
    [/^\/slots$/, "GET", "slots"],
    [/^\/slots\/[^/]+$/, "POST", "slot"],
  ];
  for (const [re, m, route] of routes) if (re.test(p)) return method === m ? route : "wrong-method";
  return null;
}
