// The HTTP server with the official `openai` client as the test client (its own parsing of our responses
// and SSE streams), and raw HTTP for what a client library would never send.
import { describe, expect, it, beforeAll, afterAll } from "vitest";
import OpenAI from "openai";
import { request } from "node:http";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createOpenAI, loadModel, startHttpServer, type LocalOpenAI, type Model, type RunningServer } from "../../src/api.js";

const CTX = 192;
const KEY = "test-key-26";

interface Raw {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One raw HTTP request; `body` is sent as it is. */
function raw(url: string, method: string, path: string, body?: string | Buffer, headers: Record<string, string> = {}): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const req = request(url + path, { method, headers: { authorization: `Bearer ${KEY}`, ...headers } }, (res) => {
      const parts: Buffer[] = [];
      res.on("data", (c: Buffer) => parts.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts).toString("utf8") }));
      res.on("error", reject);
    });
    req.on("error", reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

function errorOf(r: Raw): { message: string; type: string; param: string | null; code: string | null } {
  const parsed = JSON.parse(r.body) as { error: { message: string; type: string; param: string | null; code: string | null } };
  expect(Object.keys(parsed)).toEqual(["error"]);
  expect(typeof parsed.error.message).toBe("string");
  return parsed.error;
}

describe("mobilellm serve's HTTP API, against the openai client", () => {
  let model: Model;
  let api: LocalOpenAI;
  let server: RunningServer;
  let client: OpenAI;
  let saveDir: string;

  beforeAll(async () => {
    model = await loadModel(undefined, { contextLength: CTX, sequences: 4, threads: 1 });
    api = createOpenAI(model, { queueLimit: 3 });
    saveDir = mkdtempSync(join(tmpdir(), "mobilellm-slots-"));
    server = await startHttpServer(api, { port: 0, apiKey: KEY, bodyLimit: 64 << 10, slotSavePath: saveDir });
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: KEY, maxRetries: 0 });
  });
  afterAll(async () => {
    await server.close();
    await model.dispose();
    rmSync(saveDir, { recursive: true, force: true });
  });

  const chat = { model: "shakespeare-tiny", messages: [{ role: "user" as const, content: "What say you, my lord?" }], max_tokens: 24, temperature: 0 };

  it("chat: a plain answer with usage, and the same text streamed", async () => {
    const r = await client.chat.completions.create(chat);
    expect(r.object).toBe("chat.completion");
    expect(r.id).toMatch(/^chatcmpl-[0-9a-f]{24}$/);
    expect(Math.abs(r.created - Date.now() / 1000)).toBeLessThan(60);
    expect(r.choices).toHaveLength(1);
    const c = r.choices[0];
    expect(c.message.role).toBe("assistant");
    expect(c.message.content!.length).toBeGreaterThan(0);
    expect(["stop", "length"]).toContain(c.finish_reason);
    expect(r.usage!.prompt_tokens).toBe(model.renderChat(chat.messages).ids.length);
    expect(r.usage!.total_tokens).toBe(r.usage!.prompt_tokens + r.usage!.completion_tokens);

    const stream = await client.chat.completions.create({ ...chat, stream: true, stream_options: { include_usage: true } });
    let text = "";
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      expect(chunk.object).toBe("chat.completion.chunk");
      for (const ch of chunk.choices) {
        text += ch.delta.content ?? "";
        finish = ch.finish_reason ?? finish;
      }
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe(c.message.content);
    expect(finish).toBe(c.finish_reason);
    expect(usage).toMatchObject({ prompt_tokens: r.usage!.prompt_tokens, completion_tokens: r.usage!.completion_tokens });
  });

  it("completions: plain and streamed agree; stop ends the text before the stop string", async () => {
    const params = { model: "m", prompt: "ROMEO:", max_tokens: 30, temperature: 0 };
    const plain = await client.completions.create(params);
    expect(plain.object).toBe("text_completion");
    const full = plain.choices[0].text;
    let streamed = "";
    for await (const chunk of await client.completions.create({ ...params, stream: true })) streamed += chunk.choices[0]?.text ?? "";
    expect(streamed).toBe(full);
    // A stop string taken from the middle of the greedy text cuts it there.
    const word = full.trim().split(/\s+/)[2];
    const stopped = await client.completions.create({ ...params, stop: [word] });
    expect(stopped.choices[0].text).toBe(full.slice(0, full.indexOf(word)));
    expect(stopped.choices[0].finish_reason).toBe("stop");
  });

  it("n choices with a seed: reproducible, and not all the same", async () => {
    const params = { ...chat, n: 3, seed: 42, temperature: 1.2, max_tokens: 16 };
    const a = await client.chat.completions.create(params);
    const b = await client.chat.completions.create(params);
    expect(a.choices.map((c) => c.index)).toEqual([0, 1, 2]);
    expect(a.choices.map((c) => c.message.content)).toEqual(b.choices.map((c) => c.message.content));
    expect(new Set(a.choices.map((c) => c.message.content)).size).toBeGreaterThan(1);
    const other = await client.chat.completions.create({ ...params, seed: 43 });
    expect(other.choices.map((c) => c.message.content)).not.toEqual(a.choices.map((c) => c.message.content));
  });

  it("logprobs with top_logprobs: the greedy token is the most likely, probabilities are a distribution", async () => {
    const r = await client.chat.completions.create({ ...chat, logprobs: true, top_logprobs: 3, max_tokens: 8 });
    const content = r.choices[0].logprobs!.content!;
    expect(content.length).toBeGreaterThan(0);
    for (const t of content) {
      expect(t.top_logprobs).toHaveLength(3);
      expect(t.logprob).toBeLessThanOrEqual(0);
      expect(t.logprob).toBeCloseTo(t.top_logprobs[0].logprob, 6);
      expect(t.token).toBe(t.top_logprobs[0].token);
      expect(t.bytes).toEqual(Array.from(Buffer.from(t.token, "utf8")));
      expect(t.top_logprobs.reduce((s, x) => s + Math.exp(x.logprob), 0)).toBeLessThanOrEqual(1 + 1e-6);
    }
    expect(content.map((t) => t.token).join("")).toBe(r.choices[0].message.content);
  });

  it("8 concurrent requests each equal their solo answer (batched on 4 sequences, 3 more queued... then 429)", async () => {
    const prompts = Array.from({ length: 7 }, (_, i) => `KING ${"HENRY RICHARD EDWARD JOHN LEAR LOUIS PHILIP".split(" ")[i]}:`);
    const solo: string[] = [];
    for (const p of prompts) solo.push((await client.completions.create({ model: "m", prompt: p, max_tokens: 20, temperature: 0 })).choices[0].text);
    // 4 run, 3 wait in the queue (its limit), the 8th is refused.
    const all = prompts.map((p) => client.completions.create({ model: "m", prompt: p, max_tokens: 20, temperature: 0 }));
    const refused = await client.completions.create({ model: "m", prompt: "ROMEO:", max_tokens: 2 }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(OpenAI.RateLimitError);
    expect((refused as InstanceType<typeof OpenAI.RateLimitError>).status).toBe(429);
    const together = await Promise.all(all);
    expect(together.map((r) => r.choices[0].text)).toEqual(solo);
    expect(api.scheduler.stats.busy).toBe(0);
  });

  it("prefix reuse: a prompt sharing a cached prefix prefills only the rest (usage's cached_tokens)", async () => {
    const long = "First Citizen:\nBefore we proceed any further, hear me speak. You are all resolved rather to die than to famish?";
    const first = await client.completions.create({ model: "m", prompt: long, max_tokens: 4, temperature: 0 });
    const again = await client.completions.create({ model: "m", prompt: long + " Resolved.", max_tokens: 4, temperature: 0 });
    const cached = (again.usage as OpenAI.CompletionUsage & { prompt_tokens_details: { cached_tokens: number } }).prompt_tokens_details.cached_tokens;
    expect(cached).toBeGreaterThanOrEqual(first.usage!.prompt_tokens - 1);
    expect(cached).toBeLessThan(again.usage!.prompt_tokens);
  });

  it("a full context ends with finish_reason length and says why", async () => {
    const r = await client.completions.create({ model: "m", prompt: "ROMEO:", temperature: 0 });
    const c = r.choices[0] as OpenAI.CompletionChoice & { finish_detail?: string };
    expect(c.finish_reason).toBe("length");
    expect(c.finish_detail).toBe(`the context of ${CTX} tokens is full`);
    expect(r.usage!.prompt_tokens + r.usage!.completion_tokens).toBe(CTX + 1);
  });

  it("an abort mid-stream stops the generation and frees its sequence", async () => {
    const ac = new AbortController();
    const stream = await client.completions.create({ model: "m", prompt: "ROMEO:", max_tokens: 150, stream: true }, { signal: ac.signal });
    let n = 0;
    // The client ends the iteration (or throws its abort error) once aborted.
    await (async () => {
      for await (const _ of stream) if (++n === 3) ac.abort();
    })().catch(() => undefined);
    expect(n).toBeLessThan(20);
    for (let i = 0; i < 100 && api.scheduler.stats.busy > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(api.scheduler.stats.busy).toBe(0);
  });

  it("a client that disconnects mid-stream frees its sequence", async () => {
    await new Promise<void>((resolve, reject) => {
      const body = JSON.stringify({ model: "m", prompt: "ROMEO:", max_tokens: 150, stream: true });
      const req = request(`${server.url}/v1/completions`, { method: "POST", headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" } }, (res) => {
        res.once("data", () => {
          req.destroy();
          resolve();
        });
      });
      req.on("error", () => {});
      req.on("close", () => resolve());
      req.end(body);
      setTimeout(() => reject(new Error("no data")), 5000);
    });
    for (let i = 0; i < 200 && api.scheduler.stats.busy > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(api.scheduler.stats.busy).toBe(0);
  });

  it("errors: each the right status and an OpenAI error object, and the server answers the next request", async () => {
    const post = (body: string | Buffer, headers: Record<string, string> = {}) => raw(server.url, "POST", "/v1/chat/completions", body, { "content-type": "application/json", ...headers });
    const ok = JSON.stringify(chat);
    const cases: [string, () => Promise<Raw>, number, RegExp][] = [
      ["malformed JSON", () => post('{"model": "m", "messages": ['), 400, /not valid JSON/],
      ["no body", () => post(""), 400, /no body/],
      ["a body that is not an object", () => post("[1, 2]"), 400, /must be a JSON object/],
      ["wrong type", () => post(JSON.stringify({ ...chat, temperature: "hot" })), 400, /temperature must be a number in \[0, 2\]/],
      ["negative max_tokens", () => post(JSON.stringify({ ...chat, max_tokens: -5 })), 400, /max_tokens must be at least 1/],
      ["huge max_tokens", () => post(JSON.stringify({ ...chat, max_tokens: 1e9 })), 400, /max_tokens is too large/],
      ["messages missing", () => post(JSON.stringify({ model: "m" })), 400, /messages must be a non-empty array/],
      ["a tool call", () => post(JSON.stringify({ ...chat, tools: [{ type: "function", function: { name: "f" } }] })), 400, /tools: tool calling is not supported/],
      ["json output", () => post(JSON.stringify({ ...chat, response_format: { type: "json_object" } })), 400, /response_format "json_object" is not supported yet/],
      ["an unknown field", () => post(JSON.stringify({ ...chat, temprature: 1 })), 400, /unknown field temprature/],
      ["an image part", () => post(JSON.stringify({ ...chat, messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "x" } }] }] })), 400, /image_url" are not supported/],
      ["a prompt longer than the context", () => post(JSON.stringify({ ...chat, messages: [{ role: "user", content: "a b c d e f g h ".repeat(60) }] })), 400, /maximum context length is 192 tokens/],
      ["an oversized body", () => post(Buffer.alloc(100 << 10, 32)), 413, /over the limit of 65536/],
      ["a missing key", () => post(ok, { authorization: "" }), 401, /Invalid API key/],
      ["a wrong key", () => post(ok, { authorization: "Bearer nope" }), 401, /Invalid API key/],
      ["an unknown route", () => raw(server.url, "GET", "/v1/engines"), 404, /no route GET \/v1\/engines/],
      ["a wrong method", () => raw(server.url, "GET", "/v1/chat/completions"), 405, /GET is not allowed/],
    ];
    for (const [what, send, status, message] of cases) {
      const r = await send();
      expect(r.status, what).toBe(status);
      expect(errorOf(r).message, what).toMatch(message);
      const next = await post(ok);
      expect(next.status, `the request after ${what}`).toBe(200);
    }
    const ctx = errorOf(await post(JSON.stringify({ ...chat, messages: [{ role: "user", content: "a b c d ".repeat(200) }] })));
    expect(ctx).toMatchObject({ type: "invalid_request_error", code: "context_length_exceeded", param: "messages" });
  });

  it("/health, /v1/models and the slot API: save a slot's state, erase it, restore it, refuse a foreign file", async () => {
    const health = await raw(server.url, "GET", "/health", undefined, { authorization: "" });
    expect(health.status).toBe(200);
    expect(JSON.parse(health.body)).toMatchObject({ status: "ok", slots: 4, busy: 0 });
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual([api.modelId]);

    const body = (o: unknown) => JSON.stringify(o);
    for (let id = 0; id < 4; id++) expect((await raw(server.url, "POST", `/slots/${id}?action=erase`, body({}))).status).toBe(200);
    const prompt = "Now is the winter of our discontent made glorious summer by this sun of York.";
    await client.completions.create({ model: "m", prompt, max_tokens: 2, temperature: 0 });
    const slots = JSON.parse((await raw(server.url, "GET", "/slots")).body) as { id: number; tokens: number }[];
    const slot = slots.reduce((a, b) => (b.tokens > a.tokens ? b : a));
    expect(slots.filter((s) => s.tokens > 0)).toEqual([slot]);
    const saved = await raw(server.url, "POST", `/slots/${slot.id}?action=save`, body({ filename: "york.bin" }));
    expect(saved.status).toBe(200);
    expect(JSON.parse(saved.body)).toMatchObject({ id_slot: slot.id, filename: "york.bin", n_saved: slot.tokens });
    for (const s of slots) expect((await raw(server.url, "POST", `/slots/${s.id}?action=erase`, body({}))).status).toBe(200);
    const restored = await raw(server.url, "POST", `/slots/${slot.id}?action=restore`, body({ filename: "york.bin" }));
    expect(JSON.parse(restored.body)).toMatchObject({ n_restored: slot.tokens });
    const again = await client.completions.create({ model: "m", prompt, max_tokens: 2, temperature: 0 });
    expect((again.usage as { prompt_tokens_details: { cached_tokens: number } }).prompt_tokens_details.cached_tokens).toBe(again.usage!.prompt_tokens - 1);

    expect((await raw(server.url, "POST", `/slots/0?action=save`, body({ filename: "../escape.bin" }))).status).toBe(400);
    expect((await raw(server.url, "POST", `/slots/9?action=save`, body({ filename: "a.bin" }))).status).toBe(404);
    expect((await raw(server.url, "POST", `/slots/0?action=restore`, body({ filename: "missing.bin" }))).status).toBe(404);
    const { writeFileSync } = await import("node:fs");
    writeFileSync(join(saveDir, "junk.bin"), "not a state at all, just text");
    const junk = await raw(server.url, "POST", `/slots/0?action=restore`, body({ filename: "junk.bin" }));
    expect(junk.status).toBe(400);
    expect(errorOf(junk).message).toMatch(/^not a usable KV state: /);
  });
});
