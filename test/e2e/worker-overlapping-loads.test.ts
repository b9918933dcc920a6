// Overlapping load requests to the model worker (src/browser/worker.ts), driven through its message
// protocol on Node as test/e2e/worker-protocol.test.ts does. The latest request wins; every superseded
// load is cancelled (at its next tensor) or, when it had already finished, disposed.
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { Model } from "../../src/api.js";
import { wasmBytes } from "../../src/node/wasm-files.js";
import type { Reply, Request } from "../../src/browser/protocol.js";
import { BUNDLED, picked } from "../helpers/model-folder.js";

interface Scope {
  postMessage(m: Reply): void;
  onmessage: ((e: { data: Request }) => void) | null;
}
const scope = globalThis as unknown as Scope;
/** Every reply, in order (never removed, so a test can look at the progress of a request). */
const log: Reply[] = [];
const waiters: Array<() => void> = [];
/** Runs synchronously inside the worker's postMessage, to send a request at an exact point of a load. */
let onPost: ((r: Reply) => void) | null = null;
let nextId = 1;
type WithoutId<T> = T extends unknown ? Omit<T, "id"> : never;

function send(req: WithoutId<Request>): number {
  const id = nextId++;
  scope.onmessage?.({ data: { ...req, id } as Request });
  return id;
}

async function waitFor(pred: (r: Reply) => boolean): Promise<Reply> {
  for (;;) {
    const r = log.find(pred);
    if (r) return r;
    await new Promise<void>((ok) => waiters.push(ok));
  }
}

/** The final reply (not a piece or progress) to request `id`. */
const final = (id: number) => waitFor((r) => r.id === id && r.type !== "piece" && r.type !== "progress");

const WASM = { simd: wasmBytes("simd"), relaxed: wasmBytes("relaxed") };
const load = (contextLength: number) =>
  send({ type: "load", source: { files: picked(BUNDLED, "model") }, options: { wasm: WASM, contextLength, threads: 1 } });
const CANCELLED = { type: "error", message: expect.stringMatching(/^load cancelled: a later load or dispose request replaced it$/) };

beforeAll(async () => {
  scope.postMessage = (m) => {
    log.push(m);
    onPost?.(m);
    for (const w of waiters.splice(0)) w();
  };
  await import("../../src/browser/worker.js");
});

afterAll(async () => {
  await final(send({ type: "dispose" }));
});

describe("overlapping loads in the model worker", () => {
  it("a load requested while another one streams progress cancels it, and the latest model serves", async () => {
    const a = load(128);
    await waitFor((r) => r.id === a && r.type === "progress");
    const b = load(192);
    expect(await final(a)).toMatchObject(CANCELLED);
    const progressOfA = log.filter((r) => r.id === a && r.type === "progress").length;
    expect(await final(b)).toMatchObject({ type: "loaded", model: { contextLength: 192 } });
    // A stopped at its next tensor: no progress of it after the cancellation.
    expect(log.filter((r) => r.id === a && r.type === "progress").length).toBe(progressOfA);
    expect(log.filter((r) => r.id === a && r.type === "loaded")).toHaveLength(0);
    const g = send({ type: "generate", prompt: "KING:", options: { maxNewTokens: 3, temperature: 0 } });
    expect(await final(g)).toMatchObject({ type: "done", result: { tokens: expect.any(Array) } });
  });

  it("of three loads in a row only the last one loads", async () => {
    const ids = [load(64), load(96), load(160)];
    expect(await final(ids[0])).toMatchObject(CANCELLED);
    expect(await final(ids[1])).toMatchObject(CANCELLED);
    expect(await final(ids[2])).toMatchObject({ type: "loaded", model: { contextLength: 160 } });
  });

  it("a load that finished before it noticed it was superseded disposes its model", async () => {
    const dispose = vi.spyOn(Model.prototype, "dispose");
    try {
      // B is requested from within A's last progress report ("threads"): A has read every tensor and goes on to
      // build its model, which it can only dispose.
      let b = -1;
      const a = load(100);
      onPost = (r) => {
        if (r.id === a && r.type === "progress" && r.progress.phase === "threads") {
          onPost = null;
          b = load(200);
        }
      };
      expect(await final(a)).toMatchObject(CANCELLED);
      expect(b).toBeGreaterThan(a);
      expect(await final(b)).toMatchObject({ type: "loaded", model: { contextLength: 200 } });
      const disposedContexts = dispose.mock.contexts.map((m) => (m as Model).info.contextLength);
      expect(disposedContexts).toContain(100);
      expect(disposedContexts).not.toContain(200);
    } finally {
      dispose.mockRestore();
    }
  });

  it("dispose during a load cancels the load; a generation after it finds no model", async () => {
    const a = load(128);
    const d = send({ type: "dispose" });
    expect(await final(a)).toMatchObject(CANCELLED);
    expect(await final(d)).toMatchObject({ type: "disposed" });
    const g = send({ type: "generate", prompt: "KING:", options: { maxNewTokens: 2 } });
    expect(await final(g)).toMatchObject({ type: "error", message: "no model is loaded" });
  });
});
