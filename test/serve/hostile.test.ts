// Hostile clients against the HTTP server, each bounded in time: slow senders (slowloris), a reader that
// stops reading a long stream, more connections than the server takes, and bodies built to cost time or
// memory (huge n, max_tokens, logit_bias maps, stop strings, message arrays, deeply nested JSON, bytes that
// are not UTF-8). Each gets a clear error or is dropped within bounded time, and the server answers the
// next request as before. The ordinary error cases are in http.test.ts.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect } from "node:net";
import { request } from "node:http";
import { createOpenAI, loadModel, startHttpServer, type LocalOpenAI, type Model, type RunningServer } from "../../src/api.js";

const CTX = 256;
const TIMEOUT = 1000;
const MAX_CONNECTIONS = 12;
/** This model's end-of-sequence ids (generation_config.json) and its newline, which ends a plain-dialogue turn. */
const ENDS = [1001, 1007, 1008, 10];

let model: Model;
let api: LocalOpenAI;
let server: RunningServer;
let port: number;

beforeAll(async () => {
  model = await loadModel(undefined, { contextLength: CTX, sequences: 2, threads: 1 });
  api = createOpenAI(model, { queueLimit: 2 });
  server = await startHttpServer(api, { port: 0, timeout: TIMEOUT, maxConnections: MAX_CONNECTIONS });
  port = Number(new URL(server.url).port);
});

afterAll(async () => {
  await server.close();
  await model.dispose();
});

interface Answer {
  status: number;
  body: string;
  ms: number;
}

function post(path: string, body: string | Buffer): Promise<Answer> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(server.url + path, { method: "POST", headers: { "content-type": "application/json" } }, (res) => {
      const parts: Buffer[] = [];
      res.on("data", (c: Buffer) => parts.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts).toString("utf8"), ms: performance.now() - t0 }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** A raw connection: sends `first`, then `drip` every 200 ms until the server closes it; what it got, and when. */
function raw(first: string, drip: string | null): Promise<{ got: string; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const s = connect(port, "127.0.0.1");
    let got = "";
    if (first) s.write(first);
    const timer = drip === null ? null : setInterval(() => s.write(drip), 200);
    s.on("data", (d) => (got += d.toString()));
    s.on("error", () => {});
    s.on("close", () => {
      if (timer) clearInterval(timer);
      resolve({ got, ms: performance.now() - t0 });
    });
  });
}

const chat = { model: "m", messages: [{ role: "user", content: "Speak, my lord." }], max_tokens: 6, temperature: 0 };
const answered = async () => expect((await post("/v1/chat/completions", JSON.stringify(chat))).status).toBe(200);
const idle = async () => {
  for (let i = 0; i < 300 && api.scheduler.stats.busy > 0; i++) await new Promise((r) => setTimeout(r, 10));
  expect(api.scheduler.stats).toMatchObject({ busy: 0, queued: 0 });
};

describe("hostile clients", () => {
  it("slow senders (headers, a body, nothing at all) get 408 and are closed within the timeout, while others are answered", async () => {
    const slow = [
      raw("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n", "X-Slow: 1\r\n"),
      raw("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{", " "),
      raw("", null),
    ];
    await answered();
    for (const r of await Promise.all(slow)) {
      expect(r.got).toMatch(/^HTTP\/1\.1 408 /);
      // The timeout, plus Node's check interval (a quarter of it) and a busy machine's slack.
      expect(r.ms).toBeLessThan(TIMEOUT * 4);
    }
    await answered();
  });

  it("more connections than the server takes: the running and queued ones are answered, then 429, the rest closed at once", async () => {
    const body = JSON.stringify({ model: "m", prompt: "ROMEO:", max_tokens: 60, temperature: 0, logit_bias: Object.fromEntries(ENDS.map((id) => [id, -100])) });
    const outcomes = await Promise.all(
      Array.from(
        { length: 30 },
        () =>
          new Promise<number | "dropped">((resolve) => {
            const req = request(server.url + "/v1/completions", { method: "POST", headers: { "content-type": "application/json" } }, (res) => {
              res.resume();
              res.on("end", () => resolve(res.statusCode ?? 0));
            });
            req.on("error", () => resolve("dropped"));
            req.end(body);
          }),
      ),
    );
    const count = (x: number | "dropped") => outcomes.filter((o) => o === x).length;
    expect(count(200)).toBe(4); // 2 sequences, 2 queued
    expect(count(200) + count(429) + count("dropped")).toBe(30);
    expect(count("dropped")).toBeGreaterThan(0);
    await idle();
    await answered();
  });

  it("a consumer that stops reading pauses its generation (a few chunks held), and resumes to the same answer", async () => {
    const params = { model: "m", prompt: "ROMEO:", max_tokens: 120, temperature: 0, logit_bias: Object.fromEntries(ENDS.map((id) => [id, -100])) };
    const whole = (await api.completions.create(params)).choices[0].text;
    const stream = await api.completions.create({ ...params, stream: true });
    const it = stream[Symbol.asyncIterator]();
    let text = "";
    for (let i = 0; i < 3; i++) text += (await it.next()).value?.choices[0]?.text ?? "";
    await new Promise((r) => setTimeout(r, 200));
    const rows = api.scheduler.stats.rows;
    await new Promise((r) => setTimeout(r, 300));
    expect(api.scheduler.stats.rows).toBe(rows); // paused: no step ran while nobody read
    expect(api.scheduler.stats.busy).toBe(1); // and its sequence is still its own
    for (let r = await it.next(); !r.done; r = await it.next()) text += r.value.choices[0]?.text ?? "";
    expect(text).toBe(whole);
    await idle();
  });

  it("a client that never reads a long stream is dropped after the timeout, and its sequence freed", async () => {
    // The server's side of a connection whose peer reads nothing: once the socket's buffers are full, every
    // write is refused and no drain comes (filling a loopback socket's megabytes takes this model minutes).
    server.server.prependOnceListener("request", (_req, res) => {
      res.write = () => false;
    });
    const rows = api.scheduler.stats.rows;
    const t0 = performance.now();
    const closed = await new Promise<{ chunks: number }>((resolve) => {
      let chunks = 0;
      const req = request(server.url + "/v1/completions", { method: "POST", headers: { "content-type": "application/json" } }, (res) => {
        res.on("data", () => chunks++);
        res.on("close", () => resolve({ chunks }));
      });
      req.on("error", () => resolve({ chunks }));
      req.end(JSON.stringify({ model: "m", prompt: "ROMEO:", max_tokens: 200, stream: true, logit_bias: Object.fromEntries(ENDS.map((id) => [id, -100])) }));
    });
    expect(closed.chunks).toBe(0);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(TIMEOUT - 50);
    expect(performance.now() - t0).toBeLessThan(TIMEOUT * 5);
    await idle();
    // The generation paused behind the few chunks held for the client: far fewer rows than its 200 tokens.
    expect(api.scheduler.stats.rows - rows).toBeLessThan(80);
    await answered();
  });

  it("bodies built to cost time or memory: each a clear error (or its answer) in bounded time, and the server answers the next", async () => {
    const big = "word ".repeat(180_000);
    const deep = "[".repeat(300_000) + "]".repeat(300_000);
    const allBiased = Object.fromEntries(Array.from({ length: model.config.vocabSize }, (_, i) => [i, -1]));
    const longStop = "thee and thou ".repeat(15_000);
    const utf8 = (s: string) => Buffer.from(s, "utf8");
    const deepSchema = '{"items":'.repeat(100_000) + "{}" + "}".repeat(100_000);
    const cases: [string, string, string | Buffer, number, RegExp | null][] = [
      ["huge n", "chat", JSON.stringify({ ...chat, n: 1_000_000 }), 400, /n must be an integer in \[1, 16\]/],
      ["n above the sequences", "chat", JSON.stringify({ ...chat, n: 16 }), 400, /n is 16 but this server runs 2 sequences/],
      ["huge max_tokens", "chat", JSON.stringify({ ...chat, max_tokens: 1e15 }), 400, /max_tokens is too large/],
      ["a logit_bias of 60,000 ids", "chat", JSON.stringify({ ...chat, logit_bias: Object.fromEntries(Array.from({ length: 60_000 }, (_, i) => [i * 3, 1])) }), 400, /logit_bias keys must be token ids in \[0, 1024\), got "1026"/],
      ["a logit_bias over the whole vocabulary", "chat", JSON.stringify({ ...chat, logit_bias: allBiased }), 200, null],
      ["5 stop strings", "chat", JSON.stringify({ ...chat, stop: ["a", "b", "c", "d", "e"] }), 400, /stop takes at most 4 strings, got 5/],
      ["4 stop strings of 200,000 characters", "completions", JSON.stringify({ model: "m", prompt: "ROMEO:", max_tokens: 40, stop: [1, 2, 3, 4].map((i) => longStop + i) }), 200, null],
      ["30,000 messages", "chat", JSON.stringify({ ...chat, messages: Array.from({ length: 30_000 }, () => ({ role: "user", content: "x" })) }), 400, /messages holds 30000 messages; this model's context of 256 tokens holds at most 256/],
      ["a message of 900,000 characters", "chat", JSON.stringify({ ...chat, messages: [{ role: "user", content: big }] }), 400, /maximum context length is 256 tokens\. However, your messages hold 900000 characters/],
      ["a prompt of 900,000 characters", "completions", JSON.stringify({ model: "m", prompt: big }), 400, /However, your prompt holds 900000 characters, more than 256 tokens of at most \d+ characters each/],
      ["JSON nested 300,000 deep", "chat", deep, 400, /the request body must be a JSON object/],
      ["a field nested 300,000 deep", "chat", `{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":${deep}}`, 400, /temperature must be a number in \[0, 2\], got an array of 1 item$/],
      ["a response_format schema nested 100,000 deep", "chat", JSON.stringify({ ...chat, response_format: { type: "json_schema", json_schema: { name: "deep", schema: 0 } } }).replace('"schema":0', `"schema":${deepSchema}`), 400, /^response_format: the JSON Schema nests more than 128 levels deep$/],
      ["bytes that are not UTF-8", "chat", Buffer.concat([utf8('{"model":"m","messages":[{"role":"user","content":"'), Buffer.from([0xff, 0xfe, 0xc3]), utf8('"}]}')]), 400, /not valid UTF-8/],
      ["a lone surrogate", "chat", '{"model":"m","messages":[{"role":"user","content":"x \\ud800 y"}]}', 400, /messages\[0\]\.content holds a lone surrogate \(\\ud800 at 2\)/],
      ["a surrogate pair, escaped and not (a rose), which is text", "chat", JSON.stringify({ ...chat, messages: [{ role: "user", content: "\ud83c\udf39 and 🌹" }] }).replace("🌹", "\\ud83c\\udf39"), 200, null],
    ];
    for (const [what, route, body, status, message] of cases) {
      const r = await post(route === "chat" ? "/v1/chat/completions" : "/v1/completions", body);
      expect(r.status, `${what}: ${r.body.slice(0, 200)}`).toBe(status);
      if (message) expect((JSON.parse(r.body) as { error: { message: string } }).error.message, what).toMatch(message);
      // Rendering and tokenizing 30,000 messages or 900,000 characters took 2 to 5 s here before they were refused up front.
      expect(r.ms, what).toBeLessThan(1500);
      await answered();
    }
    await idle();
  });
});
