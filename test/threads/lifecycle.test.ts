// The pool's lifecycle: the threads option is validated, a worker's error reaches the caller with its
// message, and neither dispose() nor a failed worker leaves a process hanging.
import { engineOptions } from "../helpers/node-kernels.js";
import { describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { WasmEngine } from "../../src/model/engine.js";
import { ThreadPool } from "../../src/threads/pool.js";
import { spawnNodeWorker } from "../../src/node/worker-thread.js";
import type { WasmKernels } from "../../src/kernels/wasm.js";
import { loadConfig } from "../../src/node/bundled.js";
import { BUNDLED } from "../helpers/model-folder.js";
import { bundledEngine } from "./helpers.js";

const helpers = pathToFileURL(resolve("test/threads/helpers.ts")).href;

interface ChildResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** ms from the line "disposed" (or the end of the script's work: "done") to the process exit. */
  exitAfterMs: number;
}

/** Runs a TypeScript module body in a fresh `node --import tsx` process; kills it after `limitMs`. */
function runChild(body: string, limitMs = 30_000): Promise<ChildResult> {
  const dir = mkdtempSync(join(tmpdir(), "mobilellm-child-"));
  const file = join(dir, "child.mts");
  writeFileSync(file, `import { bundledEngine } from ${JSON.stringify(helpers)};\n${body}\n`);
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ["--expose-gc", "--import", "tsx", file], { cwd: process.cwd(), stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let markAt = 0;
    child.stdout.on("data", (b: Buffer) => {
      stdout += b.toString();
      if (!markAt && /^(disposed|done)$/m.test(stdout)) markAt = performance.now();
    });
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), limitMs);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
      resolvePromise({ code, stdout, stderr, exitAfterMs: markAt ? performance.now() - markAt : Infinity });
    });
  });
}

describe("idle workers between decode steps", () => {
  it("poll through a gap shorter than the hold (no wake-up), and sleep through one longer than the spin", async () => {
    const e = await bundledEngine({ contextLength: 128, threads: 2, spinMicros: 50 });
    const busy = (ms: number) => {
      for (const until = performance.now() + ms; performance.now() < until; );
    };
    try {
      const pool = e.threadPool;
      // Every region must reach the worker: two-token passes are not decode steps, so the split/solo choice
      // (which times one-token steps and may run some alone, the more so on a busy machine) stays out of it,
      // and the miss-based solo policy is off.
      pool.soloPolicy = 0;
      e.forward([1, 2, 3, 4], 0, false);
      /** Wake-ups over 12 two-token passes with a `gapMs` pause of the main thread before each (as sampling is). */
      const wakeups = (gapMs: number, from: number) => {
        const before = pool.stats.wakeups;
        for (let i = 0; i < 12; i++) {
          busy(gapMs);
          e.forward([5 + i, 6 + i], from + 2 * i, false);
        }
        return pool.stats.wakeups - before;
      };
      // A hold far longer than any descheduling of this process: the worker never sleeps between the passes.
      pool.holdMicros = 10_000_000;
      wakeups(2, 4); // the worker may be asleep from the load: the first pass wakes it
      expect(wakeups(2, 28)).toBe(0);
      // No hold: after 50 µs of spinning the worker sleeps in every 2 ms gap, and the pass after it must wake it.
      pool.holdMicros = 0;
      wakeups(2, 52); // leaves the hold of the last region behind
      expect(wakeups(2, 76)).toBeGreaterThanOrEqual(6);
    } finally {
      await e.dispose();
    }
  });
});

describe("threads option", () => {
  it("rejects anything but an integer >= 1 with a RangeError", async () => {
    const config = loadConfig(BUNDLED);
    for (const threads of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, "2" as unknown as number]) {
      await expect(WasmEngine.load(config, null as never, null as never, engineOptions({ contextLength: 16, threads }))).rejects.toThrow(RangeError);
    }
    await expect(WasmEngine.load(config, null as never, null as never, engineOptions({ contextLength: 16, threads: 0 }))).rejects.toThrow(/threads must be an integer >= 1, got 0/);
  });

  it("defaults to one thread and reports the count", async () => {
    const one = await bundledEngine({ contextLength: 16 });
    expect(one.threads).toBe(1);
    await one.dispose();
    const two = await bundledEngine({ contextLength: 16, threads: 2 });
    expect(two.threads).toBe(2);
    expect(two.kernels.shared).toBe(true);
    await two.dispose();
    expect(() => two.kernels).toThrow(/disposed/);
    expect(() => two.forward([1], 0, false)).toThrow(/disposed/);
    await two.dispose(); // twice is harmless
  });
});

describe("worker errors", () => {
  it("an error thrown in a worker surfaces on the main thread with its message", async () => {
    const e = await bundledEngine({ contextLength: 64, threads: 2 });
    e.threadPool.injectWorkerError(1, "injected failure 42");
    let caught: unknown = null;
    for (let i = 0; i < 200 && caught === null; i++) {
      try {
        e.forward([1 + (i % 50)], i % 60, false);
        await new Promise((r) => setTimeout(r, 1));
      } catch (err) {
        caught = err;
      }
    }
    expect(caught).toBeInstanceOf(Error);
    expect((caught as Error).message).toMatch(/worker thread 1 failed: injected failure 42/);
    expect(() => e.forward([1], 0, false)).toThrow(/injected failure 42/);
    await e.dispose();
  });

  it("a worker that cannot start rejects ThreadPool.start with its message", async () => {
    // (module (import "env" "missing" (func))): instantiation fails in the worker with a LinkError.
    const bytes = Uint8Array.from([
      0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x04, 0x01, 0x60, 0x00, 0x00,
      0x02, 0x0f, 0x01, 0x03, 0x65, 0x6e, 0x76, 0x07, 0x6d, 0x69, 0x73, 0x73, 0x69, 0x6e, 0x67, 0x00, 0x00,
    ]);
    const module = await WebAssembly.compile(bytes);
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 16, shared: true });
    await expect(
      ThreadPool.start({
        threads: 2, kernels: { variant: "simd", memory } as WasmKernels, module, states: [0, 0], scratch: [0], scratchBytes: 1024, spawn: spawnNodeWorker,
      }),
    ).rejects.toThrow(/worker thread 1 failed: worker 1 could not instantiate the kernels: .*missing/);
  });
});

describe("no hanging process", () => {
  it("load, forward, dispose: the process exits by itself within a few seconds", async () => {
    const r = await runChild(`
const e = await bundledEngine({ contextLength: 64, threads: 3 });
const memory = new WeakRef(e.kernels.memory);
e.forward([1, 2, 3, 4, 5], 0, true);
e.forward([6], 5, false);
await e.dispose();
for (let i = 0; i < 10 && memory.deref() !== undefined; i++) { await new Promise((r) => setTimeout(r, 20)); globalThis.gc!(); }
console.log("memory collected: " + (memory.deref() === undefined));
console.log("disposed");
`);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("memory collected: true");
    expect(r.exitAfterMs).toBeLessThan(5000);
  });

  it("after a worker error: the caller sees the message, disposes, and the process exits", async () => {
    const r = await runChild(`
const e = await bundledEngine({ contextLength: 64, threads: 2 });
e.threadPool.injectWorkerError(1, "boom from the test");
try {
  for (let i = 0; i < 200; i++) { e.forward([7], i % 60, false); await new Promise((r) => setTimeout(r, 1)); }
  console.log("no error");
} catch (err) {
  console.log("caught: " + (err as Error).message);
}
await e.dispose();
console.log("disposed");
`);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("caught: worker thread 1 failed: boom from the test");
    expect(r.exitAfterMs).toBeLessThan(5000);
  });

  it("forgetting dispose does not keep the process alive either", async () => {
    const r = await runChild(`
const e = await bundledEngine({ contextLength: 64, threads: 2 });
e.forward([1, 2, 3], 0, false);
console.log("done");
`);
    expect(r.code).toBe(0);
    expect(r.exitAfterMs).toBeLessThan(5000);
  });
});
