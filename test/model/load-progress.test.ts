// Load progress in bytes (src/session/load-progress.ts): a download reports arrived bytes with rate and
// time left, then the engine's reads ("prepare"), then "threads", and a load that succeeded ends with one
// "ready"; phases never go back and bytes never go down within a phase; a callback that throws stops the
// load at its next read.
import { describe, expect, it, vi } from "vitest";
import { memorySource, type ByteSource } from "../../src/env/byte-source.js";
import { LoadMeter, describeLoadProgress, type LoadProgress } from "../../src/session/load-progress.js";
import { loadModel, Model } from "../../src/api.js";
import { BUNDLED } from "../helpers/model-folder.js";

/** A 1000-byte file whose bytes arrive as the test says. */
function arriving(): { source: ByteSource; arrive(n: number): void } {
  let arrived = 0;
  const source = { ...memorySource("f", new Uint8Array(1000)), arrived: () => arrived };
  return { source, arrive: (n) => (arrived = n) };
}

describe("LoadMeter", () => {
  it("reports download (arrived bytes, rate, time left), then prepare (bytes read), then threads, then ready", async () => {
    let now = 0;
    const events: LoadProgress[] = [];
    const meter = new LoadMeter((p) => events.push(p), () => now);
    const file = arriving();
    const watched = meter.watch(file.source);
    expect(events.at(-1)).toMatchObject({ phase: "download", bytes: 0, totalBytes: 1000, etaSeconds: null });
    now = 1000;
    file.arrive(250);
    await watched.read(0, 100); // reads trigger reports, as the 100 ms timer does
    expect(events.at(-1)).toMatchObject({ phase: "download", bytes: 250, bytesPerSecond: 250, etaSeconds: 3, elapsedMs: 1000 });
    now = 2000;
    file.arrive(1000);
    await watched.read(100, 700);
    now = 2500;
    await watched.read(800, 100);
    meter.tensors(7, 7);
    now = 3000;
    meter.ready();
    const phases = events.map((e) => e.phase);
    expect(phases).toEqual(["download", "download", "download", "prepare", "prepare", "prepare", "threads", "ready"]);
    expect(events[2]).toMatchObject({ phase: "download", bytes: 1000 });
    // Prepare starts where the engine's reads are (800 bytes read when the download ended) and ends whole.
    expect(events.slice(3).map((e) => e.bytes)).toEqual([800, 900, 1000, 1000, 1000]);
    expect(events.at(-2)).toMatchObject({ phase: "threads", etaSeconds: null });
    expect(events.at(-1)).toEqual({ phase: "ready", bytes: 1000, totalBytes: 1000, bytesPerSecond: 0, etaSeconds: null, elapsedMs: 3000 });
    expect(describeLoadProgress(events.at(-1)!)).toBe("ready: 0.0 MB in 3.0 s");
    for (let i = 1; i < events.length; i++) {
      if (events[i].phase === events[i - 1].phase) expect(events[i].bytes).toBeGreaterThanOrEqual(events[i - 1].bytes);
    }
    expect(describeLoadProgress(events[1])).toBe("download 0.0 / 0.0 MB, 0.0 MB/s, 3.0 s left");
  });

  it("a source with every byte there starts at prepare", async () => {
    const events: LoadProgress[] = [];
    const meter = new LoadMeter((p) => events.push(p), () => 0);
    await meter.watch(memorySource("f", new Uint8Array(10))).read(0, 10);
    meter.tensors(1, 1);
    expect(events.map((e) => [e.phase, e.bytes])).toEqual([["prepare", 0], ["prepare", 10], ["threads", 10]]);
  });

  it("a callback that throws stops the load at its next read, and hears nothing more", async () => {
    let calls = 0;
    const meter = new LoadMeter(() => {
      calls++;
      throw new Error("cancelled");
    });
    const watched = meter.watch(memorySource("f", new Uint8Array(10)));
    await expect(watched.read(0, 1)).rejects.toThrow("cancelled");
    expect(() => meter.tensors(1, 1)).toThrow("cancelled");
    expect(calls).toBe(1);
  });
});

describe("loadModel's onProgress", () => {
  it("a folder on disk: prepare from 0 to every byte of its weights, then threads, then ready", async () => {
    const events: LoadProgress[] = [];
    const m = await loadModel(BUNDLED, { threads: 1, contextLength: 32, onProgress: (p) => events.push(p) });
    await m.dispose();
    expect(events[0]).toMatchObject({ phase: "prepare", bytes: 0 });
    const total = events[0].totalBytes;
    expect(total).toBeGreaterThan(1e6); // model.safetensors
    expect(events.slice(-3).map((e) => [e.phase, e.bytes])).toEqual([["prepare", total], ["threads", total], ["ready", total]]);
    expect(events.every((e) => e.phase !== "download")).toBe(true);
  });

  it("the GGUF and the reference backend end with ready too; a callback that throws at ready cancels the load and frees the model", async () => {
    for (const [path, backend] of [[undefined, "wasm"], [BUNDLED, "reference"]] as const) {
      const phases: string[] = [];
      const m = await loadModel(path, { backend, threads: 1, contextLength: 32, onProgress: (p) => phases.push(p.phase) });
      await m.dispose();
      expect(phases.filter((p) => p === "ready")).toEqual(["ready"]);
      expect(phases.at(-1)).toBe("ready");
    }
    const dispose = vi.spyOn(Model.prototype, "dispose");
    try {
      const cancel = (p: LoadProgress) => {
        if (p.phase === "ready") throw new Error("cancelled at ready");
      };
      await expect(loadModel(undefined, { threads: 2, contextLength: 48, onProgress: cancel })).rejects.toThrow("cancelled at ready");
      expect(dispose.mock.contexts.map((m) => (m as Model).info.contextLength)).toEqual([48]);
    } finally {
      dispose.mockRestore();
    }
  });
});
