// The browser's loading path for a GGUF file, run on Node: a .gguf URL (one streamed GET) and a picked
// .gguf file (a Blob) give the logits the bundled folder gives through loadModel, bit for bit.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadModel } from "../../src/api.js";
import { wasmBytes } from "../../src/node/wasm-files.js";
import { convertFolder } from "../../src/node/gguf-files.js";
import { ggufFromFiles, isGgufName } from "../../src/browser/folders.js";
import { loadModelInBrowser } from "../../src/browser/load.js";
import { BUNDLED, picked } from "../helpers/model-folder.js";

const PROMPT = [1000, 872, 266, 471, 300, 12];
const WASM = { simd: wasmBytes("simd"), relaxed: wasmBytes("relaxed") };
const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

const dir = mkdtempSync(join(tmpdir(), "browser-gguf-"));
const path = join(dir, "shakespeare-tiny.gguf");
let gguf: Buffer;
let expected: Float32Array;
let server: Server;
let base: string;
const ranges: string[] = [];
/** Whole-file GETs (no Range header) and their body bytes. */
const gets: number[] = [];

beforeAll(async () => {
  await convertFolder(BUNDLED, path);
  gguf = readFileSync(path);
  const m = await loadModel(BUNDLED, { threads: 1, contextLength: 64 });
  expected = m.logits(PROMPT)[0];
  await m.dispose();
  server = createServer((req, res) => {
    if (req.url !== "/models/shakespeare-tiny.gguf?v=1") {
      res.statusCode = 404;
      return res.end();
    }
    const r = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? "");
    if (!r) {
      gets.push(gguf.length);
      return res.end(gguf);
    }
    ranges.push(req.headers.range!);
    const [start, end] = [Number(r[1]), Math.min(Number(r[2]), gguf.length - 1)];
    res.statusCode = 206;
    res.setHeader("Content-Range", `bytes ${start}-${end}/${gguf.length}`);
    res.end(gguf.subarray(start, end + 1));
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/models/`;
});

afterAll(async () => {
  await new Promise<void>((ok) => server.close(() => ok()));
  rmSync(dir, { recursive: true, force: true });
});

describe("loading a GGUF the browser way", () => {
  it("from a .gguf URL, streamed (one GET, read as it arrives): the folder's logits, with download progress", async () => {
    const phases: string[] = [];
    const m = await loadModelInBrowser(`${base}shakespeare-tiny.gguf?v=1`, {
      wasm: WASM,
      threads: 1,
      contextLength: 64,
      onProgress: (p) => phases.push(p.phase),
    });
    try {
      expect(bits(m.logits(PROMPT)[0])).toEqual(bits(expected));
      expect(m.dir).toBe(`${base}shakespeare-tiny.gguf?v=1`);
    } finally {
      await m.dispose();
    }
    // One request, the file once; the reads that step back a little are served from what was kept.
    expect(gets).toEqual([gguf.length]);
    expect(ranges).toEqual([]);
    expect(phases[0]).toBe("download");
    expect(phases.slice(-2)).toEqual(["threads", "ready"]);
  });

  it("from a picked .gguf file (and from the Blob itself): the folder's logits", async () => {
    const file = new Blob([new Uint8Array(gguf)]);
    for (const source of [[{ path: "downloads/shakespeare-tiny.gguf", file }], file]) {
      const m = await loadModelInBrowser(source, { wasm: WASM, threads: 1, contextLength: 64 });
      try {
        expect(bits(m.logits(PROMPT)[0])).toEqual(bits(expected));
      } finally {
        await m.dispose();
      }
    }
  });

  it("a .gguf URL that is not there, and a file that is not a GGUF: one clear line each", async () => {
    await expect(loadModelInBrowser(`${base}missing.gguf`, { wasm: WASM, threads: 1 })).rejects.toThrow(/cannot fetch .*missing\.gguf: not found/);
    const notGguf = [{ path: "x.gguf", file: new Blob([readFileSync(join(BUNDLED, "config.json"), "utf8")]) }];
    await expect(loadModelInBrowser(notGguf, { wasm: WASM, threads: 1 })).rejects.toThrow(/x\.gguf: not a GGUF file/);
  });

  it("picked files are one GGUF only when a single .gguf comes without a config.json", () => {
    const blob = new Blob(["GGUF"]);
    expect(ggufFromFiles([{ path: "a/model.gguf", file: blob }])).not.toBeNull();
    expect(ggufFromFiles([...picked(BUNDLED, "m"), { path: "m/model.gguf", file: blob }])).toBeNull();
    expect(ggufFromFiles([{ path: "a.gguf", file: blob }, { path: "b.gguf", file: blob }])).toBeNull();
    expect(isGgufName("https://h/x/model.GGUF?download=1")).toBe(true);
    expect(isGgufName("https://h/x/model/")).toBe(false);
  });
});
