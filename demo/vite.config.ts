// The browser demo (demo/): `npm run demo` serves it with Vite, `npm run demo:build` writes dist/demo/.
//
// The plugin below serves the bundled model, as its GGUF (models/shakespeare-tiny.gguf, which the page
// loads by default) and as its folder (models/shakespeare-tiny/, for ?model=./models/shakespeare-tiny/ and
// the tests that pick or drop its files), in dev and preview, and copies both into the build, so the demo
// works offline. The kernel builds need nothing here: src/browser/platform.ts names them with
// `new URL("../../build/<build>.wasm", import.meta.url)`, which Vite serves in dev and emits as assets in
// the build, as it does in any app using the package. Every response carries the COOP/COEP headers that make the page cross-origin isolated
// (SharedArrayBuffer, hence engine threads), unless the page is opened with ?coi=0 to see the one-thread mode.
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { IncomingMessage, ServerResponse } from "node:http";
import { defineConfig, type Plugin } from "vite";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "..");
const MODEL_DIR = join(repo, "models", "shakespeare-tiny");
/** The bundled model as one GGUF file, written by `npm run build` (build:model). */
const MODEL_GGUF = `${MODEL_DIR}.gguf`;
/** Files of the bundled model the page may fetch (the held-out evaluation text stays behind). */
const MODEL_FILES = (f: string) => /\.(json|safetensors|jinja|md)$/.test(f);

const TYPES: Record<string, string> = { ".json": "application/json", ".md": "text/markdown; charset=utf-8", ".jinja": "text/plain; charset=utf-8" };

/** Sets COOP/COEP unless the request (the page) asks for ?coi=0. */
function isolation(req: IncomingMessage, res: ServerResponse): void {
  if (/[?&]coi=0(&|$)/.test(req.url ?? "")) return;
  res.setHeader("Cross-Origin-Opener-Policy", "same-origin");
  res.setHeader("Cross-Origin-Embedder-Policy", "require-corp");
  res.setHeader("Cross-Origin-Resource-Policy", "same-origin");
}

/**
 * Serves one file with Range support (a folder's weights are read a tensor block at a time) and, for GET
 * and HEAD alike, the size and validators (Content-Length, ETag, Last-Modified) that the page's model
 * cache checks its entries against on the next visit.
 */
function sendFile(req: IncomingMessage, res: ServerResponse, path: string): void {
  const stat = statSync(path);
  const size = stat.size;
  const ext = path.slice(path.lastIndexOf("."));
  res.setHeader("Content-Type", TYPES[ext] ?? "application/octet-stream");
  res.setHeader("Accept-Ranges", "bytes");
  res.setHeader("Cache-Control", "no-cache");
  res.setHeader("ETag", `"${size}-${Math.floor(stat.mtimeMs)}"`);
  res.setHeader("Last-Modified", stat.mtime.toUTCString());
  const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? "");
  const bytes = readFileSync(path);
  if (range) {
    const start = Number(range[1]);
    const end = range[2] === "" ? size - 1 : Math.min(Number(range[2]), size - 1);
    if (start >= size || end < start) {
      res.statusCode = 416;
      res.setHeader("Content-Range", `bytes */${size}`);
      res.end();
      return;
    }
    res.statusCode = 206;
    res.setHeader("Content-Range", `bytes ${start}-${end}/${size}`);
    res.setHeader("Content-Length", String(end - start + 1));
    res.end(req.method === "HEAD" ? undefined : bytes.subarray(start, end + 1));
    return;
  }
  res.statusCode = 200;
  res.setHeader("Content-Length", String(size));
  res.end(req.method === "HEAD" ? undefined : bytes);
}

function mobilellmAssets(): Plugin {
  const middleware = (req: IncomingMessage, res: ServerResponse, next: () => void) => {
    isolation(req, res);
    const path = decodeURIComponent((req.url ?? "").split("?")[0]);
    if (path.endsWith("/models/shakespeare-tiny.gguf")) {
      if (!existsSync(MODEL_GGUF)) {
        res.statusCode = 404;
        res.end(`${MODEL_GGUF} is missing: run "npm run build"`);
        return;
      }
      return sendFile(req, res, MODEL_GGUF);
    }
    const m = /\/models\/shakespeare-tiny\/([^/]+)$/.exec(path);
    if (!m) return next();
    const full = join(MODEL_DIR, m[1]);
    if (!MODEL_FILES(m[1]) || !existsSync(full)) {
      res.statusCode = 404;
      res.end("not found");
      return;
    }
    sendFile(req, res, full);
  };
  return {
    name: "mobilellm-assets",
    configureServer(server) {
      server.middlewares.use(middleware);
    },
    configurePreviewServer(server) {
      server.middlewares.use(middleware);
    },
    generateBundle() {
      for (const f of readdirSync(MODEL_DIR).filter(MODEL_FILES)) {
        this.emitFile({ type: "asset", fileName: `models/shakespeare-tiny/${f}`, source: readFileSync(join(MODEL_DIR, f)) });
      }
      if (!existsSync(MODEL_GGUF)) this.error(`${MODEL_GGUF} is missing: run "npm run build" first`);
      this.emitFile({ type: "asset", fileName: "models/shakespeare-tiny.gguf", source: readFileSync(MODEL_GGUF) });
    },
  };
}

/**
 * The browser path must not import Node built-ins: only src/node/ and src/cli/ do (the import rules in
 * .dependency-cruiser.cjs), and neither is reachable from src/browser/. Should one slip in anyway, the
 * build fails here and names the importer, instead of bundling a stub that throws at run time.
 */
function noNodeBuiltins(): Plugin {
  return {
    name: "mobilellm-no-node-builtins",
    enforce: "pre",
    apply: "build",
    resolveId(id, importer) {
      if (!id.startsWith("node:")) return null;
      this.error(`${id} is imported by ${importer ?? "?"}, which is on the browser path: Node-only code belongs in src/node/`);
    },
  };
}

export default defineConfig({
  root: here,
  base: "./",
  appType: "mpa",
  plugins: [noNodeBuiltins(), mobilellmAssets()],
  worker: { format: "es", plugins: () => [noNodeBuiltins()] },
  build: {
    outDir: join(repo, "dist", "demo"),
    emptyOutDir: true,
    target: "es2022",
  },
  server: { port: 5173, strictPort: false, fs: { allow: [repo] } },
  preview: { port: 4173, strictPort: false },
});
