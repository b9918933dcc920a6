// The browser's loading path, run on Node: a model folder from picked files (Blobs) or a URL base (HTTP
// Range reads), through the environment-neutral openModel, gives the very model loadModel gives.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFileSync, readdirSync, rmSync, unlinkSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { loadModel } from "../../src/api.js";
import { wasmBytes } from "../../src/node/wasm-files.js";
import { openHttpSource } from "../../src/env/byte-source.js";
import { openModel } from "../../src/session/open.js";
import { nodeFolder } from "../../src/node/folder.js";
import { nodePlatform } from "../../src/node/platform.js";
import { browserPlatform } from "../../src/browser/platform.js";
import { folderFromFiles, folderFromUrl } from "../../src/browser/folders.js";
import { loadModelInBrowser } from "../../src/browser/load.js";
import { BUNDLED, modelVariant, picked } from "../helpers/model-folder.js";

const PROMPT = [1000, 872, 266, 471, 300, 12];
const WASM = { simd: wasmBytes("simd"), relaxed: wasmBytes("relaxed") };

let expected: Float32Array;
let server: Server;
let base: string;
const requests: { url: string; range: string | undefined }[] = [];
let honourRange = true;

beforeAll(async () => {
  const m = await loadModel(BUNDLED, { threads: 1, contextLength: 64 });
  expected = m.logits(PROMPT)[0];
  await m.dispose();
  server = createServer((req, res) => {
    requests.push({ url: req.url ?? "", range: req.headers.range });
    const file = join(BUNDLED, decodeURIComponent((req.url ?? "").replace(/^\/model\//, "")));
    let bytes: Buffer;
    try {
      bytes = readFileSync(file);
    } catch {
      res.statusCode = 404;
      return res.end();
    }
    const r = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? "");
    if (r && honourRange) {
      const [start, end] = [Number(r[1]), Math.min(Number(r[2]), bytes.length - 1)];
      res.statusCode = 206;
      res.setHeader("Content-Range", `bytes ${start}-${end}/${bytes.length}`);
      return res.end(bytes.subarray(start, end + 1));
    }
    res.end(bytes);
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/model/`;
});

afterAll(() => new Promise<void>((ok) => server.close(() => ok())));

describe("loading a model the browser way", () => {
  it("from picked files (a parent folder with the checkpoint in it) gives loadModel's logits and text", async () => {
    const files = [...picked(BUNDLED, "downloads/shakespeare-tiny"), { path: "downloads/notes.txt", file: new Blob(["x"]) }];
    const m = await loadModelInBrowser(files, { wasm: WASM, threads: 1, contextLength: 64 });
    try {
      expect(m.dir).toBe("downloads/shakespeare-tiny");
      expect(m.logits(PROMPT)[0]).toEqual(expected);
      const node = await loadModel(BUNDLED, { threads: 1, contextLength: 64 });
      const opts = { seed: 3, maxNewTokens: 12, topK: 20 };
      expect(await m.generate("JULIET:", opts).text()).toBe(await node.generate("JULIET:", opts).text());
      await node.dispose();
    } finally {
      await m.dispose();
    }
  });

  it("from a URL base, reading the weights with Range requests", async () => {
    requests.length = 0;
    const m = await openModel(folderFromUrl(base), browserPlatform(WASM), { threads: 1, contextLength: 64 });
    try {
      expect(m.logits(PROMPT)[0]).toEqual(expected);
    } finally {
      await m.dispose();
    }
    const weights = requests.filter((r) => r.url.endsWith("model.safetensors"));
    expect(weights.length).toBeGreaterThan(3);
    expect(weights.every((r) => r.range !== undefined)).toBe(true);
    // tokenizer_config.json says "chat_template": null, so the optional template is not asked for (no 404).
    expect(requests.some((r) => r.url.endsWith("chat_template.jinja"))).toBe(false);
  });

  it("from a server that ignores Range (the whole file, once)", async () => {
    honourRange = false;
    try {
      const src = await openHttpSource(`${base}model.safetensors`);
      expect(src).not.toBeNull();
      expect(src!.size).toBe(readFileSync(join(BUNDLED, "model.safetensors")).length);
      expect(await src!.read(8, 4)).toEqual(new Uint8Array(readFileSync(join(BUNDLED, "model.safetensors")).subarray(8, 12)));
      expect(await openHttpSource(`${base}nothing.bin`)).toBeNull();
    } finally {
      honourRange = true;
    }
  });

  it("a sharded checkpoint through the shared folder reader", async () => {
    const dir = await modelVariant({ maxShardBytes: 2_000_000 });
    try {
      const m = await openModel(folderFromFiles(picked(dir, "sharded")), browserPlatform(WASM), { backend: "reference", contextLength: 16 });
      const ref = await loadModel(BUNDLED, { backend: "reference", contextLength: 16 });
      expect(m.logits(PROMPT)[0]).toEqual(ref.logits(PROMPT)[0]);
      await Promise.all([m.dispose(), ref.dispose()]);
      const viaNode = await openModel(nodeFolder(dir), nodePlatform, { backend: "reference", contextLength: 16 });
      expect(viaNode.dir).toBe(dir);
      await viaNode.dispose();
      const shard = readdirSync(dir).find((f) => /^model-00002-of-/.test(f)) as string;
      unlinkSync(join(dir, shard));
      await expect(openModel(nodeFolder(dir), nodePlatform, { backend: "reference" })).rejects.toThrow(new RegExp(`shard ${shard.replace(/\./g, "\\.")} \\(holding model\\.\\S+\\) does not exist`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a folder without tokenizer.json serves logits of token ids; text in or out says the tokenizer is missing", async () => {
    const files = picked(BUNDLED, "m").filter((f) => !f.path.endsWith("/tokenizer.json"));
    const m = await loadModelInBrowser(files, { wasm: WASM, threads: 1, contextLength: 64 });
    try {
      expect(m.logits(PROMPT)[0]).toEqual(expected);
      expect(() => m.encode("ROMEO:")).toThrow(/^m has no tokenizer \(no tokenizer\.json, or a GGUF without tokenizer keys\): text in or out needs one/);
      expect(() => m.generate(PROMPT)).toThrow(/has no tokenizer \(no tokenizer\.json/);
    } finally {
      await m.dispose();
    }
  });

  it("bad folders fail with a clear message", async () => {
    const without = (name: string) => picked(BUNDLED, "m").filter((f) => !f.path.endsWith(`/${name}`));
    await expect(loadModelInBrowser(without("config.json"), { wasm: WASM, threads: 1 })).rejects.toThrow(/config\.json is missing from m/);
    await expect(loadModelInBrowser(without("model.safetensors"), { wasm: WASM, threads: 1 })).rejects.toThrow(/no model\.safetensors or model\.safetensors\.index\.json in m/);
    const truncated = without("model.safetensors").concat({ path: "m/model.safetensors", file: new Blob([readFileSync(join(BUNDLED, "model.safetensors")).subarray(0, 5000)]) });
    await expect(loadModelInBrowser(truncated, { wasm: WASM, threads: 1 })).rejects.toThrow(/m\/model\.safetensors/);
    const badJson = without("config.json").concat({ path: "m/config.json", file: new Blob(["{ nope"]) });
    await expect(loadModelInBrowser(badJson, { wasm: WASM, threads: 1 })).rejects.toThrow(/m\/config\.json is not valid JSON/);
    expect(() => folderFromFiles([])).toThrow(/no files were given/);
    // Threads need shared memory, which a browser gives only to a cross-origin isolated page (Node has no crossOriginIsolated).
    await expect(loadModelInBrowser(picked(BUNDLED, "m"), { wasm: WASM, threads: 2 })).rejects.toThrow(/cross-origin isolated/);
  });
});

describe("a URL folder on a server that answers every unknown path with its index.html (a dev server)", () => {
  const PAGE = "<!DOCTYPE html>\n<html><head><title>app</title></head><body></body></html>";
  const config = readFileSync(join(BUNDLED, "config.json"), "utf8");
  const { chat_template: _, ...withoutTemplateKey } = JSON.parse(readFileSync(join(BUNDLED, "tokenizer_config.json"), "utf8")) as Record<string, unknown>;
  /** Folder name -> file -> text; anything else is the page (status 200), or a 404 under /gone/. */
  const folders: Record<string, Record<string, string>> = {
    "with-key": { "config.json": config, "tokenizer_config.json": JSON.stringify({ ...withoutTemplateKey, chat_template: "{{ 'T' }}" }), "chat_template.jinja": "{{ 'J' }}" },
    "without-key": { "config.json": config, "tokenizer_config.json": JSON.stringify(withoutTemplateKey) },
    "with-jinja": { "config.json": config, "tokenizer_config.json": JSON.stringify(withoutTemplateKey), "chat_template.jinja": "{{ 'J' }}" },
  };
  let spa: Server;
  let root: string;
  const asked: string[] = [];

  beforeAll(async () => {
    spa = createServer((req, res) => {
      const path = decodeURIComponent(req.url ?? "");
      asked.push(path);
      const [, folder, file] = /^\/([^/]+)\/(.*)$/.exec(path) ?? [];
      const text = folders[folder]?.[file];
      if (text !== undefined) return res.end(text);
      if (folder === "gone") {
        res.statusCode = 404;
        return res.end("not found");
      }
      res.setHeader("Content-Type", "text/html");
      res.end(PAGE);
    });
    await new Promise<void>((ok) => spa.listen(0, "127.0.0.1", ok));
    root = `http://127.0.0.1:${(spa.address() as AddressInfo).port}/`;
  });
  afterAll(() => new Promise<void>((ok) => spa.close(() => ok())));

  it("a missing folder is an error saying config.json was not found, for an HTML page as for a 404", async () => {
    await expect(loadModelInBrowser(`${root}missing/`, { wasm: WASM, threads: 1 })).rejects.toThrow(
      new RegExp(`^no model folder at ${root}missing: ${root}missing/config\\.json was not found \\(the server answered with an HTML page`),
    );
    await expect(loadModelInBrowser(`${root}gone/`, { wasm: WASM, threads: 1 })).rejects.toThrow(
      new RegExp(`^no model folder at ${root}gone: ${root}gone/config\\.json was not found \\(HTTP 404\\)$`),
    );
  });

  it("an optional file answered with the page is absent, never parsed as JSON or used as the chat template", async () => {
    const f = folderFromUrl(`${root}without-key/`);
    expect(await f.readText("config.json")).toBe(config);
    expect(await f.readText("generation_config.json")).toBeNull();
    expect(await f.readText("chat_template.jinja")).toBeNull();
    expect(await f.readText("index.html")).toBe(PAGE);
  });

  it("asks for chat_template.jinja only when tokenizer_config.json has no chat_template key, and reads each file once", async () => {
    asked.length = 0;
    expect(await folderFromUrl(`${root}with-key/`).readText("chat_template.jinja")).toBeNull();
    const jinja = folderFromUrl(`${root}with-jinja/`);
    expect(await jinja.readText("tokenizer_config.json")).toBe(folders["with-jinja"]["tokenizer_config.json"]);
    expect(await jinja.readText("chat_template.jinja")).toBe("{{ 'J' }}");
    expect(asked).toEqual(["/with-key/tokenizer_config.json", "/with-jinja/tokenizer_config.json", "/with-jinja/chat_template.jinja"]);
  });
});
