// The streamed GET behind a .gguf URL (src/browser/stream-source.ts), on Node's fetch against a local
// server: reads in file order come from the one GET as it arrives; reads that step back within the kept
// window too; reads of bytes already dropped are served by Range requests; the body is held back while
// the reader lags; a download cut short fails the reads waiting for its bytes with one clear line.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import fc from "fast-check";
import { openStreamedSource } from "../../src/browser/stream-source.js";

const SIZE = 1 << 20;
const file = new Uint8Array(SIZE).map((_, i) => (i * 31 + (i >> 8)) & 255);
let server: Server;
let url: string;
let log: { range: string | null; sent: number }[] = [];
let cutAt: number | null = null;

beforeAll(async () => {
  server = createServer((req, res) => {
    const r = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? "");
    if (req.url !== "/f.gguf") {
      res.statusCode = 404;
      return res.end();
    }
    if (r) {
      const [a, b] = [Number(r[1]), Math.min(Number(r[2]), SIZE - 1)];
      res.statusCode = 206;
      res.setHeader("Content-Range", `bytes ${a}-${b}/${SIZE}`);
      log.push({ range: req.headers.range!, sent: b - a + 1 });
      return res.end(file.subarray(a, b + 1));
    }
    res.setHeader("Content-Length", String(SIZE));
    const body = cutAt === null ? file : file.subarray(0, cutAt);
    log.push({ range: null, sent: body.length });
    if (cutAt === null) return res.end(body);
    res.write(body, () => setTimeout(() => res.destroy(), 20));
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/f.gguf`;
});

afterAll(() => new Promise<void>((ok) => server.close(() => ok())));

const OPTIONS = { behind: 64 << 10, ahead: 128 << 10 };
/** Whether `got` holds the file's bytes at `offset` (a byte compare: toEqual on big arrays is slow). */
const isFileAt = (got: Uint8Array, offset: number) => Buffer.compare(got, file.subarray(offset, offset + got.length)) === 0;

describe("openStreamedSource", () => {
  it("any sequence of reads gives the file's bytes; only reads behind the kept window use Range requests", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.integer({ min: -200_000, max: 150_000 }), fc.integer({ min: 0, max: 70_000 })), { minLength: 1, maxLength: 30 }),
        async (steps) => {
          log = [];
          const source = await openStreamedSource(url, OPTIONS);
          if (source === null) throw new Error("404");
          let pos = 0;
          let furthest = 0;
          let expectedRanges = 0;
          try {
            for (const [step, length] of steps) {
              const offset = Math.max(0, Math.min(SIZE - length, pos + step));
              if (length > 0 && offset < furthest - OPTIONS.behind - (1 << 16)) expectedRanges++; // well behind: surely dropped
              const out = new Uint8Array(length);
              if (steps.length % 2 === 0) await source.readInto!(offset, out);
              else out.set(await source.read(offset, length));
              expect(isFileAt(out, offset)).toBe(true);
              pos = offset + length;
              furthest = Math.max(furthest, pos);
            }
          } finally {
            await source.close();
          }
          expect(log.filter((l) => l.range === null)).toHaveLength(1);
          expect(log.filter((l) => l.range !== null).length).toBeGreaterThanOrEqual(expectedRanges);
        },
      ),
      { numRuns: 25 },
    );
  });

  it("reads in file order need nothing but the one GET, and progress counts the bytes arrived", async () => {
    log = [];
    const source = (await openStreamedSource(url, OPTIONS))!;
    expect(source.size).toBe(SIZE);
    for (let at = 0; at < SIZE; at += 50_000) {
      const n = Math.min(50_000, SIZE - at);
      expect(isFileAt(await source.read(at, n), at)).toBe(true);
      expect(source.arrived!()).toBeGreaterThanOrEqual(at + n);
    }
    await source.close();
    expect(log).toEqual([{ range: null, sent: SIZE }]);
  });

  it("a download cut short fails the reads past its end with one line; a missing file is null", async () => {
    cutAt = 300_000;
    try {
      const source = (await openStreamedSource(url, OPTIONS))!;
      expect(isFileAt(await source.read(0, 1000), 0)).toBe(true);
      await expect(source.read(400_000, 10)).rejects.toThrow(/^cannot download http.*f\.gguf: .*/);
      await source.close();
    } finally {
      cutAt = null;
    }
    expect(await openStreamedSource(url.replace("f.gguf", "missing.gguf"))).toBeNull();
  });
});
