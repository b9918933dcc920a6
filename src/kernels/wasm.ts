// Instantiates the AssemblyScript kernel module and owns its linear memory.
//
// One Wasm memory holds everything hot (packed weights, scales, KV cache, scratch). TypeScript owns the
// layout through a bump arena; kernels only ever receive pointers. `memory.grow` detaches every typed-array
// view, so views are re-derived here, in one place, and callers must fetch them after any allocation.
import { instantiate } from "@assemblyscript/loader";
import { probeMatmul } from "./matmul.js";

export type WasmVariant = "simd" | "relaxed";

const PAGE = 65536;

/**
 * Node built-ins, looked up on first use rather than imported, so that a browser bundle (which passes the
 * module bytes, LoadOptions.bytes) never loads node:fs or node:v8. Needs Node >= 20.16.
 */
function nodeBuiltins() {
  const p = (globalThis as { process?: NodeJS.Process }).process;
  if (typeof p?.getBuiltinModule !== "function") {
    throw new Error("reading build/*.wasm from disk needs Node >= 20.16; elsewhere pass the module bytes (loadKernels' bytes option)");
  }
  return { fs: p.getBuiltinModule("node:fs"), path: p.getBuiltinModule("node:path"), url: p.getBuiltinModule("node:url"), v8: p.getBuiltinModule("node:v8") };
}
/** wasm32 addresses 4 GiB at most. */
export const MAX_PAGES = 65536;

/**
 * Finds `build/<variant>.wasm` (or `build/<variant>-shared.wasm`, the build importing a shared memory for
 * worker threads) from either `src/kernels` (tests) or `dist/src/kernels` (installed CLI).
 */
export function wasmPath(variant: WasmVariant, shared = false): string {
  const file = `${variant}${shared ? "-shared" : ""}.wasm`;
  const { fs, path, url } = nodeBuiltins();
  let dir = path.dirname(url.fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = path.join(dir, "build", file);
    if (fs.existsSync(candidate)) return candidate;
    dir = path.dirname(dir);
  }
  throw new Error(`build/${file} not found: run "npm run build:wasm" first`);
}

export function wasmBytes(variant: WasmVariant, shared = false): Uint8Array<ArrayBuffer> {
  return nodeBuiltins().fs.readFileSync(wasmPath(variant, shared));
}

/** Exports of the kernel module. Kernel files add their functions to this record. */
export interface KernelExports {
  heapBase(): number;
  [name: string]: unknown;
}

/**
 * The instantiated module with a bump arena over its memory. A shared instance (`shared`) imports a
 * SharedArrayBuffer-backed memory declared with the 4 GiB maximum; worker threads instantiate the same
 * compiled `module` over the same `memory` (src/threads/), and only this instance's arena ever allocates.
 */
export class WasmKernels<E extends KernelExports = KernelExports> {
  readonly memory: WebAssembly.Memory;
  readonly exports: E;
  readonly variant: WasmVariant;
  /** The compiled module this instance runs (workers instantiate it again over `memory`). */
  readonly module: WebAssembly.Module;
  readonly shared: boolean;
  private top: number;
  private buffer: ArrayBuffer | SharedArrayBuffer;
  private _u8!: Uint8Array;
  private _i8!: Int8Array;
  private _i32!: Int32Array;
  private _f32!: Float32Array;

  private constructor(memory: WebAssembly.Memory, exports: E, variant: WasmVariant, module: WebAssembly.Module, shared: boolean) {
    this.memory = memory;
    this.exports = exports;
    this.variant = variant;
    this.module = module;
    this.shared = shared;
    this.top = align(exports.heapBase() >>> 0, 64);
    this.buffer = memory.buffer;
    this.deriveViews();
  }

  /**
   * Instantiates `variant` from its bytes, or from an already compiled module (the variant probe's).
   * `shared` selects the build importing a shared memory (and the bytes default to it). `memory`: join an
   * existing shared memory instead of creating one (a worker thread; it must never allocate from it).
   */
  static async create<E extends KernelExports = KernelExports>(
    variant: WasmVariant = "simd",
    bytes?: Uint8Array | WebAssembly.Module,
    options: { shared?: boolean; memory?: WebAssembly.Memory } = {},
  ): Promise<WasmKernels<E>> {
    const shared = options.shared ?? options.memory !== undefined;
    const module = bytes instanceof WebAssembly.Module ? bytes : await WebAssembly.compile(bufferSource(bytes ?? wasmBytes(variant, shared)));
    const memory = options.memory ?? (shared
      ? new WebAssembly.Memory({ initial: 1, maximum: MAX_PAGES, shared: true })
      : new WebAssembly.Memory({ initial: 1 }));
    const { exports } = await instantiate<Record<string, unknown>>(module, { env: { memory } });
    return new WasmKernels<E>(memory, exports as unknown as E, variant, module, shared);
  }

  /** Bytes handed out so far (the arena's high-water mark). */
  get used(): number {
    return this.top;
  }

  /**
   * Reserves `bytes` (aligned to `alignment`, 64 = one cache line by default) and returns the pointer.
   * Grows the memory as needed; throws a clear error when the 4 GiB wasm32 limit or the host refuses.
   */
  alloc(bytes: number, alignment = 64): number {
    if (!Number.isInteger(bytes) || bytes < 0) throw new RangeError(`alloc: invalid size ${bytes}`);
    const ptr = align(this.top, alignment);
    const end = ptr + bytes;
    const have = this.memory.buffer.byteLength;
    if (end > have) {
      const pages = Math.ceil((end - have) / PAGE);
      const total = have / PAGE + pages;
      if (total > MAX_PAGES) {
        throw new RangeError(
          `cannot allocate ${mib(bytes)} of Wasm memory: ${mib(end)} in all exceeds the 4 GiB wasm32 limit`,
        );
      }
      try {
        this.memory.grow(pages);
      } catch (err) {
        throw new RangeError(
          `cannot allocate ${mib(bytes)} of Wasm memory (${mib(end)} in all): the host refused to grow it (${(err as Error).message})`,
        );
      }
    }
    this.top = end;
    this.refreshViews();
    return ptr;
  }

  /** Re-derives views when the buffer changed (after a grow). */
  private refreshViews(): void {
    if (this.buffer !== this.memory.buffer) {
      this.buffer = this.memory.buffer;
      this.deriveViews();
    }
  }

  private deriveViews(): void {
    const b = this.memory.buffer;
    this._u8 = new Uint8Array(b);
    this._i8 = new Int8Array(b);
    this._i32 = new Int32Array(b);
    this._f32 = new Float32Array(b);
  }

  get u8(): Uint8Array {
    this.refreshViews();
    return this._u8;
  }
  get i8(): Int8Array {
    this.refreshViews();
    return this._i8;
  }
  get i32(): Int32Array {
    this.refreshViews();
    return this._i32;
  }
  get f32(): Float32Array {
    this.refreshViews();
    return this._f32;
  }
}

function align(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

function mib(n: number): string {
  return `${(n / 1048576).toFixed(1)} MiB`;
}

// ---- build selection ---------------------------------------------------------------------------------

/** The CLI's --simd: baseline = SIMD128 build; relaxed = relaxed-SIMD build or an error; auto = the best proven. */
export type SimdMode = "baseline" | "relaxed" | "auto";

/** Checks an instantiated module; returns null when it computes correctly, otherwise what went wrong. */
export type KernelProbe = (k: WasmKernels) => string | null;

export interface LoadOptions {
  /** Defaults to the matmul probe (probeMatmul in matmul.ts). */
  probe?: KernelProbe;
  /** Module bytes per build; defaults to build/<variant>.wasm (build/<variant>-shared.wasm when shared). */
  bytes?: Partial<Record<WasmVariant, Uint8Array>>;
  /**
   * Load the builds importing a shared memory, for worker threads. The probe then runs on a throwaway
   * instance of the very module (shared build) that the engine and its workers instantiate.
   */
  shared?: boolean;
}

export interface LoadedKernels {
  kernels: WasmKernels;
  variant: WasmVariant;
  /** Why this build runs, for the user (e.g. "relaxed SIMD: validated and the start-up probe passed"). */
  reason: string;
}

/**
 * True when the engine accepts relaxed SIMD. Node 20 (V8 11.3) needs --experimental-wasm-relaxed-simd, which
 * NODE_OPTIONS refuses but v8.setFlagsFromString accepts before the module is compiled; later engines
 * validate without it, and then the flag is never touched.
 */
export function enableRelaxedSimd(relaxedBytes: Uint8Array): boolean {
  if (WebAssembly.validate(bufferSource(relaxedBytes))) return true;
  try {
    nodeBuiltins().v8.setFlagsFromString("--experimental-wasm-relaxed-simd");
  } catch {
    return false;
  }
  return WebAssembly.validate(bufferSource(relaxedBytes));
}

/** Module bytes come from readFileSync or the caller, never from a SharedArrayBuffer, which BufferSource excludes. */
function bufferSource(bytes: Uint8Array): BufferSource {
  return bytes as Uint8Array<ArrayBuffer>;
}

/**
 * Instantiates the kernel build chosen by `mode`. Relaxed SIMD runs only when the engine validates it and a
 * throwaway instance of the same compiled module passes the probe: relaxed ops may legally differ between
 * engines, and Node 20's baseline tier miscompiles i32x4.relaxed_dot_i8x16_i7x16_add_s (probe pitfall 1).
 * auto falls back to the SIMD128 build and says why; relaxed throws instead of falling back.
 *
 * The probe runs once, right after compilation, i.e. in V8's baseline tier (Liftoff), where the known bug
 * lives; test/kernels/variant.test.ts pins each tier (Liftoff only, TurboFan only) and runs the same probe.
 */
export async function loadKernels(mode: SimdMode = "auto", options: LoadOptions = {}): Promise<LoadedKernels> {
  const shared = options.shared ?? false;
  const bytesOf = (v: WasmVariant): Uint8Array => options.bytes?.[v] ?? wasmBytes(v, shared);
  const create = (v: WasmVariant, b: Uint8Array | WebAssembly.Module) => WasmKernels.create(v, b, { shared });
  if (mode === "baseline") {
    return { kernels: await create("simd", bytesOf("simd")), variant: "simd", reason: "SIMD128 build: forced by --simd baseline" };
  }
  const rejected = await tryRelaxed(bytesOf("relaxed"), options.probe ?? probeMatmul, shared);
  if (typeof rejected !== "string") {
    return { kernels: rejected, variant: "relaxed", reason: "relaxed-SIMD build: the engine validates it and the start-up probe matched the scalar twins" };
  }
  if (mode === "relaxed") throw new Error(`--simd relaxed: ${rejected}`);
  return { kernels: await create("simd", bytesOf("simd")), variant: "simd", reason: `SIMD128 build: ${rejected}` };
}

/** The relaxed instance, or why it cannot be used. */
async function tryRelaxed(bytes: Uint8Array, probe: KernelProbe, shared: boolean): Promise<WasmKernels | string> {
  let module: WebAssembly.Module;
  try {
    if (!enableRelaxedSimd(bytes)) return "this engine rejects relaxed SIMD even with --experimental-wasm-relaxed-simd";
    module = await WebAssembly.compile(bufferSource(bytes));
  } catch (err) {
    return `relaxed SIMD failed to compile (${(err as Error).message})`;
  }
  let failure: string | null;
  try {
    failure = probe(await WasmKernels.create("relaxed", module, { shared }));
  } catch (err) {
    failure = `threw ${(err as Error).message}`;
  }
  if (failure !== null) return `relaxed SIMD computes wrong results on this engine (start-up probe: ${failure})`;
  return WasmKernels.create("relaxed", module, { shared });
}
