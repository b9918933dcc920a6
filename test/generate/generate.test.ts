// Generation through the library API on the bundled model: sampling, stopping, streaming, aborting,
// and the KV cache reused across requests.
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { loadModel, type Model, type Piece } from "../../src/api.js";
import { generateStream, type LoopContext } from "../../src/generate/generate.js";
import { CachedSequence } from "../../src/generate/sequence.js";
import type { Backend } from "../../src/model/backend.js";

async function collect(g: AsyncIterable<Piece>): Promise<Piece[]> {
  const out: Piece[] = [];
  for await (const p of g) out.push(p);
  return out;
}

function argmaxAllowed(m: Model, logits: Float32Array): number {
  let best = -1;
  for (let i = 0; i < logits.length; i++) if (!m.tokenizer!.isPadding(i) && (best < 0 || logits[i] > logits[best])) best = i;
  return best;
}

describe("generate", () => {
  it("greedy (temperature 0) picks the argmax of logits at every step", async () => {
    const m = await loadModel(undefined, { contextLength: 64 });
    const r = await m.generate("KING:", { temperature: 0, maxNewTokens: 8 }).result;
    expect(r.tokens).toHaveLength(8);
    const ids = m.encode("KING:");
    for (const t of r.tokens) {
      expect(t).toBe(argmaxAllowed(m, m.logits(ids)[0]));
      ids.push(t);
    }
    expect(r.text).toBe(m.decode(r.tokens, true));
  });

  it("a seed makes sampling reproducible; another seed gives another text", async () => {
    const m = await loadModel(undefined, { contextLength: 128 });
    const opts = { temperature: 1.2, topP: 0.95, maxNewTokens: 30 };
    const a = await m.generate("ROMEO:", { ...opts, seed: 11 }).result;
    const b = await m.generate("ROMEO:", { ...opts, seed: 11 }).result;
    const c = await m.generate("ROMEO:", { ...opts, seed: 12 }).result;
    expect(b.tokens).toEqual(a.tokens);
    expect(c.tokens).not.toEqual(a.tokens);
  });

  it("streams pieces that add up to the result's text", async () => {
    const m = await loadModel(undefined, { contextLength: 128 });
    const g = m.generate("JULIET:", { seed: 3, maxNewTokens: 40 });
    const pieces = await collect(g);
    const r = await g.result;
    expect(pieces.map((p) => p.text).join("")).toBe(r.text);
    expect(r.stats.generatedTokens).toBe(r.tokens.length);
    expect(r.stats.promptTokens).toBe(m.encode("JULIET:").length);
  });

  it("times every decode step and counts how the engine's threads ran them (stats.decodeSteps)", async () => {
    for (const threads of [1, 2]) {
      const m = await loadModel(undefined, { contextLength: 128, threads });
      try {
        const r = await m.generate("JULIET:", { temperature: 0, maxNewTokens: 30, stop: [] }).result;
        const d = r.stats.decodeSteps;
        // Every token after the first is one step; the last token sampled is never run, so each step but
        // none other is one single-token forward pass: split or solo at 2 threads, neither at 1.
        expect(d.count).toBe(r.tokens.length - 1);
        expect(d.p10Ms).toBeGreaterThan(0);
        expect(d.p10Ms).toBeLessThanOrEqual(d.medianMs);
        expect(d.medianMs).toBeLessThanOrEqual(d.p90Ms);
        expect(d.p90Ms).toBeLessThanOrEqual(r.stats.decodeMs);
        expect(d.split + d.solo).toBe(threads === 1 ? 0 : d.count);
        // A second request counts its own steps only.
        const again = await m.generate("KING:", { temperature: 0, maxNewTokens: 5, stop: [] }).result;
        expect(again.stats.decodeSteps.count).toBe(again.tokens.length - 1);
        expect(again.stats.decodeSteps.split + again.stats.decodeSteps.solo).toBe(threads === 1 ? 0 : again.tokens.length - 1);
      } finally {
        await m.dispose();
      }
    }
  });

  it("uses generation_config.json's defaults: the bundled model samples (temperature 0.8, top-p 0.95)", async () => {
    const m = await loadModel(undefined, { contextLength: 64 });
    expect(m.samplingFor({})).toEqual({ temperature: 0.8, topK: 50, topP: 0.95, minP: 0 });
    expect(m.samplingFor({ temperature: 0 }).temperature).toBe(0);
  });

  it("a stop string spanning several tokens ends generation and is not emitted", async () => {
    const m = await loadModel(undefined, { contextLength: 128 });
    const free = await m.generate("ROMEO:", { temperature: 0, maxNewTokens: 40 }).result;
    // A stop string made of the text of three consecutive generated tokens (at least two characters).
    let stop = "";
    for (let i = 10; i + 3 <= free.tokens.length && stop.trim().length < 2; i++) stop = m.decode(free.tokens.slice(i, i + 3), true);
    expect(m.encode(stop, false).length).toBeGreaterThan(1);
    const g = m.generate("ROMEO:", { temperature: 0, maxNewTokens: 40, stop: [stop] });
    const pieces = await collect(g);
    const r = await g.result;
    expect(r.stopReason).toBe("stop");
    expect(r.text).toBe(free.text.slice(0, free.text.indexOf(stop)));
    expect(pieces.map((p) => p.text).join("")).toBe(r.text);
    expect(pieces.some((p) => p.text.includes(stop))).toBe(false);
  });

  it("stops with a clear reason when the context is full", async () => {
    const m = await loadModel(undefined, { contextLength: 16 });
    const prompt = m.encode("ROMEO:\nWhat say you, sir?");
    const r = await m.generate(prompt, { temperature: 0, maxNewTokens: 100 }).result;
    expect(r.stopReason).toBe("context");
    // Every position holds a token and one more is sampled from the last position's logits.
    expect(prompt.length + r.tokens.length).toBe(16 + 1);
  });

  it("an AbortSignal stops generation within a token", async () => {
    const m = await loadModel(undefined, { contextLength: 2048 });
    const ac = new AbortController();
    const g = m.generate("ROMEO:", { seed: 1, maxNewTokens: 2000, signal: ac.signal, stop: [] });
    let n = 0;
    for await (const _ of g) if (++n === 5) ac.abort();
    const r = await g.result;
    expect(r.stopReason).toBe("aborted");
    expect(r.tokens.length).toBeLessThanOrEqual(6);
    const pre = new AbortController();
    pre.abort();
    expect((await m.generate("ROMEO:", { signal: pre.signal }).result).tokens).toEqual([]);
  });

  it("leaving a for-await loop early stops the generation as an abort does, and the model takes the next request", async () => {
    const m = await loadModel(undefined, { contextLength: 2048 });
    const g = m.generate("ROMEO:", { seed: 1, maxNewTokens: 2000, stop: [] });
    let n = 0;
    for await (const _ of g) if (++n === 3) break;
    // No await between the loop and the next request: the loop exit waited for the stop.
    const next = m.generate("KING:", { temperature: 0, maxNewTokens: 2 });
    const r = await g.result;
    expect(r.stopReason).toBe("aborted");
    expect(r.tokens.length).toBeLessThanOrEqual(4);
    expect((await next.result).tokens).toHaveLength(2);
    // A throw inside the loop body leaves it too.
    const h = m.generate("ROMEO:", { seed: 2, maxNewTokens: 2000, stop: [] });
    await expect(
      (async () => {
        for await (const _ of h) throw new Error("consumer failed");
      })(),
    ).rejects.toThrow("consumer failed");
    expect((await h.result).stopReason).toBe("aborted");
    expect(m.logits([1000])).toHaveLength(1);
    await m.dispose();
  });

  it("a stop given as one string is one stop string, not its characters", async () => {
    const m = await loadModel(undefined, { contextLength: 128 });
    const free = await m.generate("ROMEO:", { temperature: 0, maxNewTokens: 40 }).result;
    // Two characters of the text whose first character comes earlier on its own: split into characters,
    // the stop would end the text at that earlier character.
    let at = -1;
    for (let i = 1; i + 2 <= free.text.length && at < 0; i++) {
      const s = free.text.slice(i, i + 2);
      if (free.text.indexOf(s[0]) < i && free.text.indexOf(s) === i && s.trim().length === 2) at = i;
    }
    expect(at).toBeGreaterThan(0);
    const stop = free.text.slice(at, at + 2);
    const r = await m.generate("ROMEO:", { temperature: 0, maxNewTokens: 40, stop }).result;
    expect(r.stopReason).toBe("stop");
    expect(r.text).toBe(free.text.slice(0, at));
    const c = await m.chat([{ role: "user", content: "Speak." }], { temperature: 0, maxNewTokens: 20, stop: "zq" }).result;
    expect(c.text).not.toBe("");
    await expect(m.generate("ROMEO:", { stop: [1 as unknown as string] }).result).rejects.toThrow(/stop must be a string or an array of strings/);
    await m.dispose();
  });

  it("refuses a second request while one runs, and any request after dispose", async () => {
    const m = await loadModel(undefined, { contextLength: 64 });
    const g = m.generate("ROMEO:", { maxNewTokens: 5 });
    expect(() => m.generate("KING:")).toThrow(/still running/);
    expect(() => m.logits([1000])).toThrow(/still running/);
    await g.result;
    await m.dispose();
    expect(() => m.generate("KING:")).toThrow(/disposed/);
  });

  it("stops at an end-of-sequence id without emitting it", async () => {
    // A backend whose logits favour token 3 until position 5, then the EOS id 2.
    const backend: Backend = {
      name: "reference",
      config: { vocabSize: 4 } as Backend["config"],
      contextLength: 32,
      sequences: 1,
      threads: 1,
      simd: null,
      loadTimes: null,
      forward: (tokens, start) => [Float32Array.from([0, 0, start + tokens.length >= 5 ? 9 : 0, 5])],
      forwardBatch: () => [],
      dispose: () => {},
    };
    const ctx: LoopContext = { sequence: new CachedSequence(backend), decode: (ids) => ids.map(String).join(","), eosTokenIds: [2], allowed: Uint8Array.from([1, 1, 1, 1]) };
    const stream = generateStream(ctx, [1, 1], { temperature: 0, maxNewTokens: 50 });
    const pieces: Piece[] = [];
    let step = await stream.next();
    while (!step.done) {
      pieces.push(step.value);
      step = await stream.next();
    }
    expect(step.value.stopReason).toBe("eos");
    expect(step.value.tokens).toEqual([3, 3, 3, 2]);
    expect(pieces.map((p) => p.token)).toEqual([3, 3, 3]);
  });
});

/** Two bundled models with a 512-token context (one reused across requests, one kept fresh) and 300 ids of held-out text. */
async function reuseSetup(): Promise<{ m: Model; fresh: Model; ids: number[] }> {
  const m = await loadModel(undefined, { contextLength: 512 });
  const fresh = await loadModel(undefined, { contextLength: 512 });
  const ids = m.encode(readFileSync("models/shakespeare-tiny/heldout-short.txt", "utf8")).slice(0, 300);
  return { m, fresh, ids };
}

describe("KV cache reuse", () => {
  it("a prompt sharing a prefix with the previous request prefills only the rest, with the same result", async () => {
    const { m, fresh, ids } = await reuseSetup();
    // Window 64, rings of 96 slots (the window and the 32-token prefill block): rewinding far into a ring
    // that has wrapped cannot reuse it; rewinding up to 33 positions from its end can.
    for (const [first, second] of [
      [ids.slice(0, 100), ids.slice(0, 140)], // extension
      [ids.slice(0, 200), [...ids.slice(0, 199), 500, 501]], // one token back
      [ids.slice(0, 200), [...ids.slice(0, 180), 7, 8, 9]], // 20 back: the ring's headroom still holds the window
      [ids.slice(0, 200), [...ids.slice(0, 167), 7, 8]], // 33 back: the furthest the headroom reaches
      [ids.slice(0, 200), [...ids.slice(0, 166), 7, 8]], // 34 back: starts over
      [ids.slice(0, 200), [...ids.slice(0, 120), 7, 8, 9]], // far back past a wrapped ring: starts over
      [ids.slice(0, 50), [...ids.slice(0, 30), 7, 8]], // no ring has wrapped yet: reuses 30
    ]) {
      await m.generate(first, { temperature: 0, maxNewTokens: 1 }).result;
      const r = await m.generate(second, { seed: 9, temperature: 1, maxNewTokens: 10 }).result;
      const f = await fresh.generate(second, { seed: 9, temperature: 1, maxNewTokens: 10 }).result;
      expect(r.tokens).toEqual(f.tokens);
      expect(r.stats.reusedTokens + r.stats.prefilledTokens).toBe(second.length);
      const common = first.findIndex((t, i) => second[i] !== t);
      const shared = common < 0 ? first.length : common;
      expect(r.stats.reusedTokens).toBe(expectedReuse(first.length, shared));
      // Leave both with nothing to reuse (a start at position 0 also starts the rings' count anew).
      await m.generate([1000], { maxNewTokens: 0 }).result;
      await fresh.generate([1000], { maxNewTokens: 0 }).result;
    }
  });

  it("a ring that a longer earlier run overwrote is not resumed past what it still holds", async () => {
    const { m, fresh, ids } = await reuseSetup();
    // Rewinding 33 positions from 200 reuses the cache after a run that stopped at 200 (the test above); here
    // 210 positions were stored first and then 200 (a resume 10 back), so the rings lost everything below
    // 210 - 96 = 114, though the cache now ends at 200: 167 needs 104..166 and starts over, 190 needs
    // 127..189 and resumes.
    for (const [prompt, reused] of [
      [[...ids.slice(0, 167), 7, 8], 0],
      [[...ids.slice(0, 190), 7, 8], 190],
    ] as const) {
      await m.generate([1000], { maxNewTokens: 0 }).result;
      await m.generate(ids.slice(0, 211), { temperature: 0, maxNewTokens: 1 }).result;
      await m.generate(ids.slice(0, 200), { temperature: 0, maxNewTokens: 1 }).result;
      const r = await m.generate(prompt, { seed: 3, temperature: 1, maxNewTokens: 10 }).result;
      await fresh.generate([1000], { maxNewTokens: 0 }).result;
      const f = await fresh.generate(prompt, { seed: 3, temperature: 1, maxNewTokens: 10 }).result;
      expect(r.tokens).toEqual(f.tokens);
      expect(r.stats.reusedTokens).toBe(reused);
    }
  });
});

/**
 * Window 64 on the bundled model, rings of 64 + 32 slots: after `filled` positions, resuming at `keep`
 * works if nothing has wrapped or the ring still holds keep's window (keep - 63 >= filled - 96).
 */
function expectedReuse(filled: number, shared: number): number {
  const keep = Math.min(shared, filled);
  return filled <= 96 || keep >= filled - 33 ? keep : 0;
}

describe("chat", () => {
  const llama4 = readFileSync("test/fixtures/llama4-chat-template.jinja", "utf8");

  it("renders the Llama-4 format with one BOS and feeds exactly those tokens", async () => {
    const m = await loadModel(undefined, { contextLength: 512 });
    const messages = [
      { role: "system" as const, content: "Speak as Shakespeare." },
      { role: "user" as const, content: "Who art thou?" },
    ];
    const r = await m.chat(messages, { template: llama4, temperature: 0, maxNewTokens: 4 }).result;
    const rendered =
      "<|begin_of_text|><|header_start|>system<|header_end|>\n\nSpeak as Shakespeare.<|eot|>" +
      "<|header_start|>user<|header_end|>\n\nWho art thou?<|eot|><|header_start|>assistant<|header_end|>\n\n";
    const ids = m.encode(rendered, false);
    expect(ids.filter((t) => t === 1000)).toEqual([1000]);
    expect(r.stats.promptTokens).toBe(ids.length);
    const g = await m.generate(ids, { temperature: 0, maxNewTokens: 4 }).result;
    expect(g.tokens).toEqual(r.tokens);
  });

  it("a second turn reuses the cache and answers as a fresh run over the whole conversation", async () => {
    const m = await loadModel(undefined, { contextLength: 1024 });
    const opts = { template: llama4, seed: 5, maxNewTokens: 30 };
    const messages: { role: "user" | "assistant"; content: string }[] = [{ role: "user", content: "Good morrow, cousin." }];
    const first = await m.chat(messages, opts).result;
    messages.push({ role: "assistant", content: first.text }, { role: "user", content: "What news from Verona?" });
    const second = await m.chat(messages, opts).result;
    // The cache held turn 1's prompt and its answer but the last sampled token; turn 2 keeps what its
    // own tokens share with that and prefills only the rest.
    const { ChatTemplate } = await import("../../src/text/chat-template.js");
    const t = new ChatTemplate(llama4, { bos_token: "<|begin_of_text|>", eos_token: null });
    const cached = [...m.encode(t.render(messages.slice(0, 1)), false), ...first.tokens.slice(0, -1)];
    const prompt2 = m.encode(t.render(messages), false);
    let common = 0;
    while (common < cached.length && cached[common] === prompt2[common]) common++;
    expect(common).toBeGreaterThan(first.stats.promptTokens);
    expect(second.stats.reusedTokens).toBe(common);
    expect(second.stats.prefilledTokens).toBe(prompt2.length - common);

    const fresh = await loadModel(undefined, { contextLength: 1024 });
    const again = await fresh.chat(messages, opts).result;
    expect(again.stats.reusedTokens).toBe(0);
    expect(second.tokens).toEqual(again.tokens);
  });

  it("falls back to a plain dialogue that stops at the end of a speech when the checkpoint has no template", async () => {
    const m = await loadModel(undefined, { contextLength: 512 });
    expect(m.chatTemplate).toBeNull();
    const r = await m.chat([{ role: "user", content: "Good morrow." }], { seed: 2, maxNewTokens: 200 }).result;
    expect(r.text).not.toContain("\n\n");
    expect(m.plainDialogue().render([{ role: "user", content: "Hi" }])).toBe("<|begin_of_text|>USER:\nHi\n\nASSISTANT:\n");
  });
});
