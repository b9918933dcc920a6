// The queue behind a Generation's pieces, the OpenAI layer's streams and the browser client's streams:
// values in order whenever they are pushed, then the end or the producer's error; one consumer; an early
// exit stops the producer and waits for it.
import { describe, expect, it } from "vitest";
import { AsyncQueue } from "../../src/generate/async-queue.js";

const tick = () => new Promise((r) => setTimeout(r, 1));

describe("AsyncQueue", () => {
  it("gives values pushed before and while the consumer waits, in order, then ends", async () => {
    const q = new AsyncQueue<number>();
    q.push(1);
    q.push(2);
    const got: number[] = [];
    const consumer = (async () => {
      for await (const v of q.drain()) got.push(v);
    })();
    await tick();
    q.push(3);
    await tick();
    q.push(4);
    q.end();
    await consumer;
    expect(got).toEqual([1, 2, 3, 4]);
  });

  it("a failure reaches the consumer after the values queued before it; the first failure wins", async () => {
    const q = new AsyncQueue<string>();
    q.push("a");
    q.fail(new Error("first"));
    q.fail(new Error("second"));
    q.push("late"); // after the end: never given
    const got: string[] = [];
    await expect(
      (async () => {
        for await (const v of q.drain()) got.push(v);
      })(),
    ).rejects.toThrow("first");
    expect(got).toEqual(["a"]);
  });

  it("can be drained once only", async () => {
    const q = new AsyncQueue<number>();
    q.end();
    for await (const _ of q.drain()) expect.unreachable();
    await expect(q.drain().next()).rejects.toThrow(/only once/);
  });

  it("leaving the loop early calls onEarlyExit and exits only once what it returned has settled", async () => {
    const q = new AsyncQueue<number>();
    let producing = true;
    const events: string[] = [];
    const producer = (async () => {
      for (let i = 0; producing; i++) {
        q.push(i);
        await tick();
      }
      await tick();
      events.push("producer stopped");
    })();
    for await (const v of q.drain(() => {
      events.push("stop asked");
      producing = false;
      return producer;
    })) {
      if (v === 2) break;
    }
    events.push("loop exited");
    expect(events).toEqual(["stop asked", "producer stopped", "loop exited"]);
  });

  it("a loop that ends normally does not call onEarlyExit, nor does one whose producer failed", async () => {
    let calls = 0;
    const ok = new AsyncQueue<number>();
    ok.push(1);
    ok.end();
    for await (const _ of ok.drain(() => void calls++));
    const failed = new AsyncQueue<number>();
    failed.fail(new Error("x"));
    await expect((async () => {
      for await (const _ of failed.drain(() => void calls++));
    })()).rejects.toThrow("x");
    expect(calls).toBe(0);
  });

  it("with a limit, room() holds a producer while the consumer lags that many values behind, and never while nobody drains", async () => {
    const q = new AsyncQueue<number>(2);
    // Nobody drains yet: a result-only use must run to its end.
    for (let i = 0; i < 5; i++) {
      q.push(i);
      await q.room();
    }
    let produced = 5;
    const it = q.drain()[Symbol.asyncIterator]();
    expect((await it.next()).value).toBe(0);
    const producer = (async () => {
      for (let i = 5; i < 10; i++) {
        q.push(i);
        produced++;
        await q.room();
      }
      q.end();
    })();
    await tick();
    expect(produced).toBe(6); // 4 queued ahead of the consumer: the producer waits
    const got: number[] = [];
    for (let r = await it.next(); !r.done; r = await it.next()) {
      got.push(r.value);
      await tick();
      expect(produced - 1 - got[got.length - 1]).toBeLessThanOrEqual(4); // never far ahead
    }
    await producer;
    expect(got).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it("a consumer that leaves lets a held producer run to its end, and what it pushes then is dropped", async () => {
    const q = new AsyncQueue<number>(1);
    let finished = false;
    const producer = (async () => {
      for (let i = 0; i < 100; i++) {
        q.push(i);
        await q.room();
      }
      finished = true;
    })();
    for await (const v of q.drain(() => producer)) if (v === 1) break;
    expect(finished).toBe(true);
  });
});
