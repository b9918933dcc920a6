// The packed package in someone else's app, as its README tells an app author to use it: `npm pack`, a
// fresh Vite app in a temporary folder that imports "mobilellm-wasm/browser" and starts the model worker
// from "mobilellm-wasm/browser/worker", no file copied into the app, `vite build`, the built site served by
// a small Node server (with and without the COOP/COEP headers), and headless Chromium (playwright-core,
// Debian's /usr/bin/chromium as in demo.test.ts) generating greedily from the bundled model, its GGUF and
// its folder: the page's text must be the Node API's for the same prompt.
//
// The README's snippets run here as written, in the app made from the tarball: its browser module (a page
// of its own, with the elements the README names) loads the package's GGUF through
// new URL("mobilellm-wasm/models/shakespeare-tiny.gguf", import.meta.url), shows progress up to "ready" and
// stops when its Stop button is clicked mid-generation; every ts block type-checks (strict, DOM and Node
// types, as an app's tsconfig); every js block runs with node as an ES module.
//
// Offline: the tarball is installed with `npm install --offline`, and the package's runtime dependencies
// are given to that install as `file:` links to this repository's own node_modules (the versions this
// repository tests with), so nothing is fetched from a registry. Vite is this repository's, run with the
// app folder as its working directory, as `npx vite build` would run the app's own.
//
// Needs a built repository (dist/, dist/build/*.wasm: `npm run build`; `npm test` builds what changed first).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, extname, join, resolve, sep } from "node:path";
import { promisify } from "node:util";
import { chromium, type Browser } from "playwright-core";
import { loadModel } from "../../src/api.js";
import { fencedBlocks } from "../helpers/markdown-blocks.js";

const run = promisify(execFile);
const CHROMIUM = "/usr/bin/chromium";
const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"];
const REPO = resolve(".");
const VITE = join(REPO, "node_modules", "vite", "bin", "vite.js");
const PROMPT = "ROMEO:\nWhat light through yonder window";
const OPTIONS = { temperature: 0, maxNewTokens: 16 };

if (!existsSync(CHROMIUM)) {
  throw new Error(`the package test drives Debian's Chromium at ${CHROMIUM}, which is not installed: install it with "sudo apt-get install -y chromium"`);
}
for (const f of ["dist/src/browser/index.js", "dist/build/simd.wasm"]) {
  if (!existsSync(f)) throw new Error(`${f} is missing: run "npm run build" first (npm test does)`);
}

/** The app, as an app author writes it: the client in the page, the model in the package's worker. */
const MAIN_TS = `import { ModelClient } from "mobilellm-wasm/browser";

const out = document.getElementById("out") as HTMLElement;
const client = new ModelClient(new Worker(new URL("mobilellm-wasm/browser/worker", import.meta.url), { type: "module" }));

async function main(): Promise<void> {
  const url = new URLSearchParams(location.search).get("model") ?? "./models/shakespeare-tiny.gguf";
  const model = await client.load({ url }, {});
  document.body.dataset.threads = String(model.threads);
  await client.generate(${JSON.stringify(PROMPT)}, ${JSON.stringify(OPTIONS)}, (piece) => out.append(piece.text));
}

main().then(
  () => (document.body.dataset.state = "done"),
  (err: Error) => {
    (document.getElementById("error") as HTMLElement).textContent = err.message;
    document.body.dataset.state = "error";
  },
);
`;
const INDEX_HTML = `<!doctype html>
<html>
  <head><meta charset="utf-8"><link rel="icon" href="data:,"><title>an app using mobilellm-wasm</title></head>
  <body><pre id="out"></pre><p id="error"></p><script type="module" src="/src/main.ts"></script></body>
</html>
`;
const TYPES: Record<string, string> = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm", ".json": "application/json" };

/** The README's code blocks: the browser module, the other ts blocks, the js blocks (Node programs). */
const README_BLOCKS = fencedBlocks("README.md");
const BROWSER_SNIPPET = README_BLOCKS.filter((b) => b.lang === "ts" && b.body.includes('from "mobilellm-wasm/browser"'));
/** The page the README's prose gives that module: the elements it names, in a line of its own. */
const README_ELEMENTS = /`(<progress id="bar"><\/progress>.*<\/pre>)`/.exec(readFileSync("README.md", "utf8"))?.[1];
const README_HTML = (elements: string) => `<!doctype html>
<html>
  <head><meta charset="utf-8"><link rel="icon" href="data:,"><title>the README's snippet</title></head>
  <body>${elements}<script type="module" src="/src/readme.ts"></script></body>
</html>
`;
/** The README's generation, as the Node API runs it: its text, which the page's must begin. */
const SNIPPET_PROMPT = "ROMEO:";
const SNIPPET_OPTIONS = { maxNewTokens: 200, seed: 1 };

const tmp = mkdtempSync(join(tmpdir(), "mobilellm-package-"));
const app = join(tmp, "app");
let buildLog = "";
let expected: string;
let snippetText: { text: string; stopReason: string };
let tarball: string;
let server: Server;
let base: string;
let browser: Browser;
/** Every request the server answered, with its status. */
const served: { path: string; status: number }[] = [];

/**
 * Serves the built app, and under /models/ the model folder the package ships (as an app's host serves a
 * model). A page opened with ?coi=0 (and what it loads) gets no COOP/COEP headers: not cross-origin isolated.
 */
function serve(site: string, models: string): Server {
  return createServer((req, res) => {
    const [path, query = ""] = (req.url ?? "/").split("?");
    const referer = new URL(req.headers.referer ?? "http://x/").search;
    if (!/(^|&)coi=0(&|$)/.test(query) && !/[?&]coi=0(&|$)/.test(referer)) {
      res.setHeader("Cross-Origin-Opener-Policy", "same-origin");
      res.setHeader("Cross-Origin-Embedder-Policy", "require-corp");
    }
    const answer = (status: number, body: Buffer | string, type = "text/plain") => {
      served.push({ path, status });
      res.statusCode = status;
      res.setHeader("Content-Type", type);
      res.end(body);
    };
    const rel = decodeURIComponent(path);
    const file = rel.startsWith("/models/") ? join(models, rel.slice("/models/".length)) : join(site, rel === "/" ? "index.html" : rel);
    if (!file.startsWith(site + sep) && !file.startsWith(models + sep)) return answer(403, "forbidden");
    // Like a dev server, /app/... answers every path it does not have with the app's page.
    if (rel.startsWith("/app/")) return answer(200, readFileSync(join(site, "index.html")), "text/html");
    if (!existsSync(file) || !statSync(file).isFile()) return answer(404, "not found");
    const bytes = readFileSync(file);
    res.setHeader("Accept-Ranges", "bytes");
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? "");
    if (range) {
      const start = Number(range[1]);
      const end = range[2] === "" ? bytes.length - 1 : Math.min(Number(range[2]), bytes.length - 1);
      res.setHeader("Content-Range", `bytes ${start}-${end}/${bytes.length}`);
      return answer(206, bytes.subarray(start, end + 1), "application/octet-stream");
    }
    answer(200, bytes, TYPES[extname(file)] ?? "application/octet-stream");
  });
}

beforeAll(async () => {
  const node = (async () => {
    const m = await loadModel();
    try {
      const snippet = await m.generate(SNIPPET_PROMPT, SNIPPET_OPTIONS).result;
      snippetText = { text: snippet.text, stopReason: snippet.stopReason };
      return (await m.generate(PROMPT, OPTIONS).result).text;
    } finally {
      await m.dispose();
    }
  })();
  // --ignore-scripts: the package holds the build `npm test` checked before it ran (its pretest).
  const { stdout } = await run("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", tmp], { maxBuffer: 16 << 20 });
  tarball = join(tmp, (JSON.parse(stdout) as { filename: string }[])[0].filename);
  mkdirSync(join(app, "src"), { recursive: true });
  const runtime = Object.keys((JSON.parse(readFileSync("package.json", "utf8")) as { dependencies: Record<string, string> }).dependencies);
  // The README's ts blocks also use the openai client (an optional peer) and Node's types.
  const links = Object.fromEntries([...runtime, "openai", "@types/node"].map((d) => [d, `file:${realpathSync(join(REPO, "node_modules", d))}`]));
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "an-app", private: true, type: "module", dependencies: links }, null, 2));
  writeFileSync(join(app, "index.html"), INDEX_HTML);
  writeFileSync(join(app, "src", "main.ts"), MAIN_TS);
  expect(BROWSER_SNIPPET, "the README's browser module (a ts block importing mobilellm-wasm/browser)").toHaveLength(1);
  expect(README_ELEMENTS, "the README names the page's elements for its browser module").toBeDefined();
  writeFileSync(join(app, "readme.html"), README_HTML(README_ELEMENTS!));
  writeFileSync(join(app, "src", "readme.ts"), BROWSER_SNIPPET[0].body + "\n");
  // Two pages: the test's app (index.html) and the README's (readme.html).
  writeFileSync(join(app, "vite.config.js"), `export default { build: { rolldownOptions: { input: { main: "index.html", readme: "readme.html" } } } };\n`);
  await run("npm", ["install", "--offline", "--no-audit", "--no-fund", tarball], { cwd: app });
  const built = await run(process.execPath, [VITE, "build"], { cwd: app, env: { ...process.env, NO_COLOR: "1" } });
  buildLog = built.stdout + built.stderr;
  // The app's host serves models of its own under /models/: here the repository's bundled model, its GGUF
  // and its folder (the package ships the GGUF, which the README's page loads from the package itself).
  server = serve(join(app, "dist"), join(REPO, "models"));
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  expected = await node;
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await new Promise<void>((ok) => (server ? server.close(() => ok()) : ok()));
  rmSync(tmp, { recursive: true, force: true });
});

/** Opens the app at `query`, waits for it to finish; returns what it shows and the console's errors. */
async function openApp(query = ""): Promise<{ state: string; text: string; error: string; threads: string; isolated: boolean; consoleErrors: string[] }> {
  const page = await browser.newPage();
  const consoleErrors: string[] = [];
  page.on("console", (m) => void (m.type() === "error" && consoleErrors.push(m.text())));
  page.on("pageerror", (e) => consoleErrors.push(e.message));
  try {
    await page.goto(base + query);
    await page.waitForFunction(() => document.body.dataset.state !== undefined, undefined, { timeout: 60_000 });
    const shown = await page.evaluate(() => ({
      state: document.body.dataset.state ?? "",
      threads: document.body.dataset.threads ?? "",
      text: document.getElementById("out")?.textContent ?? "",
      error: document.getElementById("error")?.textContent ?? "",
      isolated: crossOriginIsolated,
    }));
    return { ...shown, consoleErrors };
  } finally {
    await page.close();
  }
}

describe("the packed package in a fresh Vite app", () => {
  it("builds with no warning about Node built-ins or unresolvable assets, the kernels emitted as assets", () => {
    expect(buildLog).toMatch(/built in/);
    expect(buildLog).not.toMatch(/externalized for browser compatibility|node:|doesn't exist at build time/);
    const assets = readdirSync(join(app, "dist", "assets"));
    for (const k of ["simd", "relaxed", "simd-shared", "relaxed-shared"]) expect(assets.some((a) => new RegExp(`^${k}-[\\w-]+\\.wasm$`).test(a))).toBe(true);
    expect(existsSync(join(app, "public"))).toBe(false);
  });

  it("ships LICENSE, the sources of its source maps, and exports its kernels", () => {
    const pkg = join(app, "node_modules", "mobilellm-wasm");
    expect(readFileSync(join(pkg, "LICENSE"), "utf8")).toMatch(/^MIT License/);
    const resolveInApp = createRequire(join(app, "package.json")).resolve;
    expect(readFileSync(resolveInApp("mobilellm-wasm/build/simd.wasm"))).toEqual(readFileSync(join(REPO, "build", "simd.wasm")));
    expect(existsSync(resolveInApp("mobilellm-wasm/models/shakespeare-tiny/config.json"))).toBe(true);
    // The bundled model's GGUF, which the build writes and git never holds, is in the package too.
    expect(readFileSync(resolveInApp("mobilellm-wasm/models/shakespeare-tiny.gguf"))).toEqual(readFileSync(join(REPO, "models", "shakespeare-tiny.gguf")));
    const maps = readdirSync(join(pkg, "dist", "src"), { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".js.map"));
    expect(maps.length).toBeGreaterThan(20);
    const missing = maps.flatMap((m) => {
      const file = join(pkg, "dist", "src", m);
      return (JSON.parse(readFileSync(file, "utf8")) as { sources: string[] }).sources.map((s) => resolve(dirname(file), s)).filter((s) => !existsSync(s));
    });
    expect(missing).toEqual([]);
  });

  it("ships the bundled model as its GGUF, not the folder's bf16 weights, and its bin runs from the app with the defaults", async () => {
    const pkg = join(app, "node_modules", "mobilellm-wasm");
    expect(existsSync(join(pkg, "models", "shakespeare-tiny", "model.safetensors"))).toBe(false);
    expect(statSync(tarball).size).toBeLessThan(5e6);
    // generate loads the GGUF by default; synth takes its tokenizer from the folder's tokenizer files.
    const bin = join(app, "node_modules", ".bin", "mobilellm");
    const gen = await run(bin, ["generate", "--prompt", SNIPPET_PROMPT, "-n", "200", "--seed", "1"], { cwd: app });
    expect(gen.stdout).toBe(SNIPPET_PROMPT + snippetText.text + "\n");
    const synth = await run(bin, ["synth", "--preset", "smollm2-135m", "--layers", "1", "--vocab", "1024", "--out", join(tmp, "synth")], { cwd: app });
    expect(synth.stdout).toMatch(/^wrote .*synth \(random weights, seed 0, 1 layers, vocab 1,024\)/);
  });

  it("generates in the page from a served GGUF, with threads when cross-origin isolated, exactly the Node API's text, with no 404 and no console error", async () => {
    served.length = 0;
    const got = await openApp();
    expect(got.error).toBe("");
    expect(got.isolated).toBe(true);
    expect(Number(got.threads)).toBeGreaterThan(1);
    expect(got.text).toBe(expected);
    expect(expected.length).toBeGreaterThan(0);
    expect(got.consoleErrors).toEqual([]);
    expect(served.filter((r) => r.status >= 400)).toEqual([]);
    expect(served.some((r) => /^\/assets\/simd-shared-[\w-]+\.wasm$/.test(r.path))).toBe(true);
    expect(served.some((r) => r.path === "/models/shakespeare-tiny.gguf" && r.status === 200)).toBe(true);
  });

  it("falls back to one thread without COOP/COEP, with the same text from a served folder", async () => {
    served.length = 0;
    const got = await openApp("?coi=0&model=/models/shakespeare-tiny/");
    expect(got.error).toBe("");
    expect(got.isolated).toBe(false);
    expect(got.threads).toBe("1");
    expect(got.text).toBe(expected);
    expect(served.some((r) => r.path === "/models/shakespeare-tiny/model.safetensors")).toBe(true);
  });

  it("a model URL with nothing behind it says not found, for a 404 as for a dev server's HTML page, folder or .gguf", async () => {
    const gone = await openApp("?model=/models/missing/");
    expect(gone.state).toBe("error");
    expect(gone.error).toBe(`no model folder at ${base}models/missing: ${base}models/missing/config.json was not found (HTTP 404)`);
    const page = await openApp("?model=/app/models/missing/");
    expect(page.state).toBe("error");
    expect(page.error).toMatch(new RegExp(`^no model folder at ${base}app/models/missing: .* was not found \\(the server answered with an HTML page`));
    const gguf = await openApp("?model=/models/missing.gguf");
    expect(gguf.error).toBe(`cannot fetch ${base}models/missing.gguf: not found (HTTP 404)`);
    const ggufPage = await openApp("?model=/app/models/missing.gguf");
    expect(ggufPage.state).toBe("error");
    expect(ggufPage.error).toBe(`cannot fetch ${base}app/models/missing.gguf: not found (the server answered with an HTML page, as a dev server does for a path it does not have)`);
  });
});

describe("the README's snippets, as written, in the app made from the tarball", () => {
  it("the browser module loads the package's own GGUF (emitted by Vite, no copy), shows progress up to ready, and Stop ends the generation mid-way", async () => {
    // Unstopped, the README's generation runs its 200 tokens: a stop that works is what ends it early.
    expect(snippetText.stopReason).toBe("length");
    served.length = 0;
    const page = await browser.newPage();
    const consoleErrors: string[] = [];
    page.on("console", (m) => void (m.type() === "error" && consoleErrors.push(m.text())));
    page.on("pageerror", (e) => consoleErrors.push(e.message));
    // A user watching the page: every text the note shows, and a click on Stop once text has appeared.
    await page.addInitScript(() => {
      const w = window as unknown as { notes: string[]; barAtStop: number };
      w.notes = [];
      document.addEventListener("DOMContentLoaded", () => {
        const note = document.getElementById("note") as HTMLElement;
        const out = document.getElementById("out") as HTMLElement;
        new MutationObserver(() => w.notes.push(note.textContent ?? "")).observe(note, { childList: true, characterData: true, subtree: true });
        const watchOut = new MutationObserver(() => {
          watchOut.disconnect();
          w.barAtStop = (document.getElementById("bar") as HTMLProgressElement).value;
          w.notes.push("(Stop clicked)");
          (document.getElementById("stop") as HTMLButtonElement).click();
        });
        watchOut.observe(out, { childList: true, characterData: true, subtree: true });
      });
    });
    try {
      await page.goto(base + "readme.html");
      await page.waitForFunction(() => /^\w+: \d+ tokens$/.test(document.getElementById("note")?.textContent ?? ""), undefined, { timeout: 60_000 });
      const shown = await page.evaluate(() => {
        const w = window as unknown as { notes: string[]; barAtStop: number };
        return { notes: w.notes, barAtStop: w.barAtStop, text: document.getElementById("out")?.textContent ?? "", isolated: crossOriginIsolated };
      });
      expect(shown.isolated).toBe(true);
      const stopAt = shown.notes.indexOf("(Stop clicked)");
      expect(stopAt).toBeGreaterThan(0);
      expect(shown.notes[stopAt - 1]).toMatch(/^ready: 3\.5 MB in \d+\.\d s$/);
      expect(shown.barAtStop).toBe(1);
      const [, reason, tokens] = /^(\w+): (\d+) tokens$/.exec(shown.notes.at(-1)!)!;
      expect(reason).toBe("aborted");
      expect(Number(tokens)).toBeLessThan(SNIPPET_OPTIONS.maxNewTokens);
      expect(shown.text.length).toBeGreaterThan(0);
      expect(snippetText.text.startsWith(shown.text)).toBe(true);
      expect(consoleErrors).toEqual([]);
      expect(served.filter((r) => r.status >= 400)).toEqual([]);
      expect(served.some((r) => /^\/assets\/shakespeare-tiny-[\w-]+\.gguf$/.test(r.path) && r.status === 200)).toBe(true);
      expect(served.some((r) => r.path.startsWith("/models/"))).toBe(false);
    } finally {
      await page.close();
    }
  });

  it("every ts block type-checks, strict, as an app's module (a Vite page's, or a Node program's)", async () => {
    const ts = README_BLOCKS.filter((b) => b.lang === "ts");
    expect(ts.length).toBeGreaterThanOrEqual(2);
    const dir = join(app, "readme-ts");
    mkdirSync(dir, { recursive: true });
    for (const b of ts) writeFileSync(join(dir, `line-${b.line}.ts`), b.body + "\n");
    const compilerOptions = { target: "ES2022", module: "ESNext", moduleResolution: "Bundler", lib: ["ES2022", "DOM"], types: ["node"], strict: true, noEmit: true, skipLibCheck: true };
    writeFileSync(join(dir, "tsconfig.json"), JSON.stringify({ compilerOptions, include: ["*.ts"] }));
    const tsc = await run(process.execPath, [join(REPO, "node_modules", "typescript", "bin", "tsc"), "-p", dir], { cwd: dir }).catch((e: { stdout: string }) => ({ stdout: e.stdout }));
    expect(tsc.stdout).toBe("");
  });

  it("every js block runs with node as an ES module; the library's snippet is JavaScript, which a reader pastes into a .mjs file", async () => {
    const library = README_BLOCKS.filter((b) => /from "mobilellm-wasm";/.test(b.body));
    expect(library.length).toBeGreaterThan(0);
    for (const b of library) expect(b.lang, `README.md:${b.line}`).toMatch(/^m?js$/);
    for (const b of README_BLOCKS.filter((x) => x.lang === "js" || x.lang === "mjs")) {
      const file = join(app, `readme-line-${b.line}.mjs`);
      writeFileSync(file, b.body + "\n");
      const r = await run(process.execPath, [file], { cwd: app });
      expect(r.stderr, `README.md:${b.line}`).toBe("");
      expect(r.stdout.length).toBeGreaterThan(0);
    }
  });
});
