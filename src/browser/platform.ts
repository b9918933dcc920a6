// The browser's side of the environment seam (src/env/platform.ts): kernel builds fetched from a URL (or
// given as bytes), worker threads as Web Workers when the page is cross-origin isolated, one thread
// otherwise.
//
// By default the kernels are the package's own build/*.wasm, named by `new URL("<literal>",
// import.meta.url)`: a bundler (Vite, webpack) sees each literal, emits the file as an asset and rewrites
// the URL, so an app needs no copy of them in its public folder; unbundled (the package's files served as
// they are) the same URLs name the files themselves.
import type { WasmVariant } from "../kernels/wasm.js";
import type { Platform } from "../session/platform.js";
import { canUseThreads, spawnWebWorker } from "./web-worker-spawn.js";
import type { ModelCache } from "./model-cache.js";

/** Where the kernel builds come from: a URL base holding simd.wasm, relaxed.wasm, simd-shared.wasm, relaxed-shared.wasm, or their bytes. */
export type WasmSource = string | URL | Partial<Record<"simd" | "relaxed" | "simd-shared" | "relaxed-shared", Uint8Array>>;

/**
 * The package's kernel builds. One literal per file, because a bundler only follows a `new URL` whose
 * first argument is a plain string. From src/browser/, ../../build/ is where `npm run build:wasm` writes
 * them; from dist/src/browser/ it is dist/build/, where `npm run build` copies them (the package ships
 * dist/, not build/).
 */
function packagedKernels(): Record<"simd" | "relaxed" | "simd-shared" | "relaxed-shared", URL> {
  return {
    simd: new URL("../../build/simd.wasm", import.meta.url),
    relaxed: new URL("../../build/relaxed.wasm", import.meta.url),
    "simd-shared": new URL("../../build/simd-shared.wasm", import.meta.url),
    "relaxed-shared": new URL("../../build/relaxed-shared.wasm", import.meta.url),
  };
}

/** The threads a browser engine uses by default: the cores (at most 8) when cross-origin isolated, else 1. */
export function browserDefaultThreads(): number {
  if (!canUseThreads()) return 1;
  const cores = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? 1;
  return Math.max(1, Math.min(8, cores));
}

/**
 * `wasm` defaults to the package's own kernel builds. Kernel builds fetched by URL go through
 * `options.cache` when given, so that they too are kept across visits.
 */
export function browserPlatform(wasm?: WasmSource, options: { cache?: ModelCache } = {}): Platform {
  const fetched = new Map<string, Promise<Uint8Array | undefined>>();
  const fetchBuild = (file: string, optional: boolean): Promise<Uint8Array | undefined> => {
    let p = fetched.get(file);
    if (!p) {
      p = (async () => {
        const build = file.replace(/\.wasm$/, "") as keyof ReturnType<typeof packagedKernels>;
        if (typeof wasm === "object" && !(wasm instanceof URL)) return wasm[build];
        let url: URL;
        if (wasm === undefined) url = packagedKernels()[build];
        else {
          const dir = String(wasm).endsWith("/") ? String(wasm) : `${String(wasm)}/`;
          url = new URL(file, new URL(dir, (globalThis as { location?: { href: string } }).location?.href));
        }
        if (options.cache) {
          const bytes = await options.cache.bytes(url.href);
          if (bytes === null && !optional) throw new Error(`cannot fetch the kernels ${url}: HTTP 404`);
          return bytes ?? undefined;
        }
        const r = await fetch(url);
        if (!r.ok) {
          if (optional) return undefined;
          throw new Error(`cannot fetch the kernels ${url}: HTTP ${r.status}`);
        }
        return new Uint8Array(await r.arrayBuffer());
      })();
      fetched.set(file, p);
    }
    return p;
  };
  return {
    name: "browser",
    defaultThreads: browserDefaultThreads,
    async wasmBytes(shared) {
      const suffix = shared ? "-shared" : "";
      const [simd, relaxed] = await Promise.all([fetchBuild(`simd${suffix}.wasm`, false), fetchBuild(`relaxed${suffix}.wasm`, true)]);
      if (!simd) throw new Error(`the kernel build simd${suffix}.wasm was not given`);
      // Without the relaxed build, "auto" runs SIMD128 and says why.
      const bytes: Partial<Record<WasmVariant, Uint8Array>> = { simd };
      if (relaxed) bytes.relaxed = relaxed;
      return bytes;
    },
    spawn: spawnWebWorker,
  };
}
