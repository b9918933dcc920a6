// The load's breakdown (Model.info.loadTimes, the engine's, and info.loadMs, the whole load's): every part
// is there, finite and non-negative, the disjoint parts add up to no more than the engine's total, which is
// no more than the whole load, which is no more than the wall time this test measures around loadModel.
import { describe, expect, it } from "vitest";
import { loadModel } from "../../src/api.js";
import { BUNDLED } from "../helpers/model-folder.js";

describe("the load breakdown", () => {
  it.each([
    { what: "the bundled GGUF", path: undefined, threads: 1 },
    { what: "the bundled GGUF", path: undefined, threads: 2 },
    { what: "the bundled folder", path: BUNDLED, threads: 1 },
    { what: "the bundled folder", path: BUNDLED, threads: 2 },
  ])("$what at $threads thread(s)", async ({ path, threads }) => {
    const t0 = performance.now();
    const model = await loadModel(path, { backend: "wasm", threads, contextLength: 64 });
    const wall = performance.now() - t0;
    try {
      const { loadTimes: t, loadMs } = model.info;
      expect(t).not.toBeNull();
      expect(Object.keys(t!).sort()).toEqual(["kernels", "quantize", "read", "threads", "threadsStart", "total"]);
      for (const [name, ms] of Object.entries(t!)) {
        expect(Number.isFinite(ms), name).toBe(true);
        expect(ms, name).toBeGreaterThanOrEqual(0);
      }
      expect(t!.kernels + t!.read + t!.quantize + t!.threads).toBeLessThanOrEqual(t!.total);
      expect(t!.total).toBeLessThanOrEqual(loadMs!);
      expect(loadMs!).toBeLessThanOrEqual(wall);
      // Every weight is quantized or repacked, which takes time; the threads start within the load.
      expect(t!.quantize).toBeGreaterThan(0);
      expect(t!.threadsStart).toBeLessThanOrEqual(t!.total);
      if (threads > 1) expect(t!.threadsStart).toBeGreaterThan(0);
    } finally {
      await model.dispose();
    }
  });

  it("the reference backend measures no engine load", async () => {
    const model = await loadModel(BUNDLED, { backend: "reference", contextLength: 16 });
    try {
      expect(model.info.loadTimes).toBeNull();
      expect(model.info.loadMs).toBeGreaterThan(0);
    } finally {
      await model.dispose();
    }
  });
});
