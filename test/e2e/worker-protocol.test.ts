// The model worker's message protocol (src/browser/worker.ts), run on Node: the worker module is imported
// into this process with postMessage/onmessage on globalThis standing in for a Web Worker's scope. Its
// generate and chat streams must give what loadModel() gives in Node for the same options, and report
// positions that count the rendered chat template.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadModel } from "../../src/api.js";
import { wasmBytes } from "../../src/node/wasm-files.js";
import type { ChatMessage, Reply, Request } from "../../src/browser/protocol.js";
import { BUNDLED, picked } from "../helpers/model-folder.js";

interface Scope {
  postMessage(m: Reply): void;
  onmessage: ((e: { data: Request }) => void) | null;
}
const scope = globalThis as unknown as Scope;
const replies: Reply[] = [];
let waiting: (() => void) | null = null;
let nextId = 1;
type WithoutId<T> = T extends unknown ? Omit<T, "id"> : never;

/** Sends one request and collects every reply to it until its final one. */
async function send(req: WithoutId<Request>): Promise<Reply[]> {
  const id = nextId++;
  scope.onmessage?.({ data: { ...req, id } as Request });
  const mine: Reply[] = [];
  for (;;) {
    const i = replies.findIndex((r) => r.id === id);
    if (i < 0) {
      await new Promise<void>((ok) => (waiting = ok));
      continue;
    }
    const [r] = replies.splice(i, 1);
    mine.push(r);
    if (r.type !== "piece" && r.type !== "progress" && r.type !== "chunk") return mine;
  }
}

function final<T extends Reply["type"]>(rs: Reply[], type: T): Extract<Reply, { type: T }> {
  const last = rs[rs.length - 1];
  if (last.type === "error") throw new Error(`the worker replied with an error: ${last.message}`);
  expect(last.type).toBe(type);
  return last as Extract<Reply, { type: T }>;
}

const pieces = (rs: Reply[]) => rs.filter((r): r is Extract<Reply, { type: "piece" }> => r.type === "piece");

beforeAll(async () => {
  scope.postMessage = (m) => {
    replies.push(m);
    waiting?.();
    waiting = null;
  };
  await import("../../src/browser/worker.js");
  final(
    await send({
      type: "load",
      source: { files: picked(BUNDLED, "model") },
      // One build on both sides: seeds reproduce within a build, and in Node the browser platform cannot
      // switch relaxed SIMD on (Node 20 needs a V8 flag), so the worker would run SIMD128 where loadModel
      // runs relaxed.
      options: { wasm: { simd: wasmBytes("simd"), relaxed: wasmBytes("relaxed") }, contextLength: 256, threads: 1, simd: "baseline" },
    }),
    "loaded",
  );
});

afterAll(async () => {
  final(await send({ type: "dispose" }), "disposed");
});

describe("the model worker's protocol", () => {
  const options = { seed: 7, temperature: 0.8, topK: 40, maxNewTokens: 12 };

  it("generate streams what Model.generate gives, with positions after the prompt", async () => {
    const rs = await send({ type: "generate", prompt: "ROMEO:", options });
    const done = final(rs, "done");
    const m = await loadModel(BUNDLED, { threads: 1, contextLength: 256, simd: "baseline" });
    const want = await m.generate("ROMEO:", options).result;
    await m.dispose();
    expect(done.result.tokens).toEqual(want.tokens);
    expect(pieces(rs).map((p) => p.token)).toEqual(want.tokens);
    expect(pieces(rs).map((p) => p.stats.positions)).toEqual(want.tokens.map((_, i) => want.stats.promptTokens + i + 1));
  });

  it("chat answers as Model.chat does, and a second turn reuses the conversation's cache", async () => {
    const m = await loadModel(BUNDLED, { threads: 1, contextLength: 256, simd: "baseline" });
    const messages: ChatMessage[] = [{ role: "user", content: "Good morrow, cousin." }];
    // The reuse check needs a first answer that renders back to its own tokens: the plain dialogue format
    // trims an answer's leading newline, which seed 7 happens to sample with this model's weights.
    const chatOptions = { ...options, seed: 1 };
    const rs = await send({ type: "chat", messages, options: chatOptions });
    const first = final(rs, "done").result;
    const want = await m.chat(messages, chatOptions).result;
    expect(first.tokens).toEqual(want.tokens);
    expect(first.text).toBe(want.text);
    // The rendered template is longer than the user's words: positions count it.
    expect(first.stats.promptTokens).toBeGreaterThan(m.encode("Good morrow, cousin.", false).length);
    expect(pieces(rs)[0].stats.positions).toBe(first.stats.promptTokens + 1);

    messages.push({ role: "assistant", content: first.text }, { role: "user", content: "What news?" });
    const second = final(await send({ type: "chat", messages, options: chatOptions }), "done").result;
    const want2 = await m.chat(messages, chatOptions).result;
    await m.dispose();
    expect(second.tokens).toEqual(want2.tokens);
    expect(second.stats.reusedTokens).toBeGreaterThan(first.stats.promptTokens);
  });

  it("a chat without messages is an error reply, and the worker still answers afterwards", async () => {
    const rs = await send({ type: "chat", messages: [], options });
    expect(rs[rs.length - 1]).toMatchObject({ type: "error", message: expect.stringMatching(/no messages/) });
    expect(final(await send({ type: "generate", prompt: "KING:", options: { ...options, maxNewTokens: 2 } }), "done").result.tokens).toHaveLength(2);
  });

  it("OpenAI requests: the response createOpenAI gives in Node, streamed chunks then end, and generate works afterwards", async () => {
    const params = { model: "m", messages: [{ role: "user", content: "Good morrow." }], max_tokens: 10, temperature: 0 };
    const rs = await send({ type: "openai", route: "chat", params });
    const got = final(rs, "response").response as { choices: { message: { content: string } }[]; usage: { completion_tokens: number } };
    const m = await loadModel(BUNDLED, { threads: 1, contextLength: 256, simd: "baseline" });
    const { createOpenAI } = await import("../../src/serve/openai.js");
    const api = createOpenAI(m);
    const want = await api.chat.completions.create(params as never);
    await api.close();
    await m.dispose();
    expect(got.choices[0].message.content).toBe(want.choices[0].message.content);
    expect(got.usage.completion_tokens).toBe(want.usage!.completion_tokens);

    const streamed = await send({ type: "openai", route: "chat", params: { ...params, stream: true } });
    final(streamed, "end");
    const text = streamed
      .filter((r): r is Extract<Reply, { type: "chunk" }> => r.type === "chunk")
      .map((r) => (r.chunk as { choices: { delta: { content?: string } }[] }).choices[0]?.delta.content ?? "")
      .join("");
    expect(text).toBe(want.choices[0].message.content);

    const bad = await send({ type: "openai", route: "chat", params: { ...params, temperature: 9 } });
    const err = bad[bad.length - 1] as Extract<Reply, { type: "error" }>;
    expect(err).toMatchObject({ type: "error", status: 400 });
    expect(err.message).toMatch(/temperature must be a number in \[0, 2\]/);
    final(await send({ type: "generate", prompt: "ROMEO:", options: { maxNewTokens: 3 } }), "done");
  });
});
