// The child of `npm run bench:load` (bench/load-child.ts): in a process of its own it loads a model through
// the compiled library, from a GGUF and from a folder, and reports its times and memory on one line.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { convertFolder } from "../../src/node/gguf-files.js";
import { REPORT_PREFIX, type LoadJob, type LoadReport } from "../../bench/load-child.js";
import { PAGE_BYTES, pageFaultMicros } from "../../bench/machine.js";
import { BUNDLED } from "../helpers/model-folder.js";

const tmp = mkdtempSync(join(tmpdir(), "bench-load-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const ROOT = resolve(import.meta.dirname, "../..");

function child(job: LoadJob): LoadReport {
  const out = execFileSync(process.execPath, ["--import", "tsx", join(ROOT, "bench/load-child.ts"), JSON.stringify(job)], { cwd: ROOT, encoding: "utf8", timeout: 120_000, stdio: ["ignore", "pipe", "pipe"] });
  const lines = out.split("\n").filter((l) => l.startsWith(REPORT_PREFIX));
  expect(lines).toHaveLength(1);
  return JSON.parse(lines[0].slice(REPORT_PREFIX.length)) as LoadReport;
}

describe("bench/load-child.ts", () => {
  it("reports ready before the first token, the engine's load breakdown, and memory that peaks no lower than it stays", async () => {
    const gguf = join(tmp, "tiny.gguf");
    await convertFolder(BUNDLED, gguf);
    for (const path of [gguf, BUNDLED]) {
      const r = child({ engine: "ours", path, threads: 1, contextLength: 64, token: 5, api: join(ROOT, "dist/src/api.js") });
      expect(r.readyMs).toBeGreaterThan(0);
      expect(r.firstTokenMs).toBeGreaterThanOrEqual(r.readyMs);
      expect(r.cpuMs).toBeGreaterThan(0);
      expect(Object.keys(r.phases ?? {})).toEqual(["kernels", "read", "quantize/repack", "start threads", "engine total"]);
      expect(r.phases!["engine total"]).toBeLessThanOrEqual(r.readyMs);
      for (const m of [r.before, r.ready, r.firstToken]) {
        expect(m.rss).toBeGreaterThan(10);
        expect(m.peak).toBeGreaterThanOrEqual(m.rss);
      }
      expect(r.ready.peak).toBeGreaterThanOrEqual(r.before.peak);
      expect(r.detail).toMatch(/^(simd|relaxed) build$/);
      // Every byte of weights lands in memory the load writes for the first time: at least the GGUF's
      // (nearly all tensor data) in faults, before ready.
      expect(r.faults.ready).toBeGreaterThan(statSync(gguf).size / PAGE_BYTES);
      expect(r.faults.firstToken).toBeGreaterThanOrEqual(r.faults.ready);
      expect(r.faultMicros).toBeGreaterThan(0);
      expect(r.faultMicros).toBeLessThan(10_000);
    }
  }, 300_000);

  it("times a page fault on one thread and on two faulting together", async () => {
    for (const threads of [1, 2]) {
      const us = await pageFaultMicros(threads, 8, 1);
      // A fault costs from a fraction of a µs (bare metal) to tens (a virtual machine); NaN or 0 is a broken probe.
      expect(us).toBeGreaterThan(0.01);
      expect(us).toBeLessThan(10_000);
    }
  });

  it("exits non-zero with the load's own message when the load fails", () => {
    expect(() => child({ engine: "ours", path: BUNDLED, threads: 0, contextLength: 64, token: 5, api: join(ROOT, "dist/src/api.js") })).toThrow(/threads must be/);
  });
});
