// Instantiates the AssemblyScript kernel module and owns its linear memory.
//
// One Wasm memory holds everything hot (packed weights, scales, KV cache, scratch). TypeScript owns the
// layout through a bump arena; kernels only ever receive pointers. `memory.grow` detaches every typed-array
// view, so views are re-derived here, in one place, and callers must fetch them after any allocation.
//
// This module knows no particular kernel and no environment: the exports' signatures live in exports.ts,
// whoever loads the kernels hands loadKernels the probe that vets the relaxed build (probeMatmul in
// probe.ts), and the module bytes come from the caller (build/*.wasm read by src/node/wasm-files.ts, or
// fetched by the browser).
import { checkExports, type WasmExports } from "./exports.js";

export type WasmVariant = "simd" | "relaxed";

const PAGE = 65536;

/** wasm32 addresses 4 GiB at most. */
export const MAX_PAGES = 65536;

/**
 * The instantiated module with a bump arena over its memory. A shared instance (`shared`) imports a
 * SharedArrayBuffer-backed memory declared with the 4 GiB maximum; worker threads instantiate the same
 * compiled `module` over the same `memory` (src/threads/), and only this instance's arena ever allocates.
 */
export class WasmKernels {
  readonly memory: WebAssembly.Memory;
  readonly exports: WasmExports;
  readonly variant: WasmVariant;
  /** The compiled module this instance runs (workers instantiate it again over `memory`). */
  readonly module: WebAssembly.Module;
  readonly shared: boolean;
  private top: number;
  private buffer: ArrayBuffer | SharedArrayBuffer;
  private _u8!: Uint8Array;
  private _i8!: Int8Array;
  private _u16!: Uint16Array;
  private _i32!: Int32Array;
  private _f32!: Float32Array;

  private constructor(memory: WebAssembly.Memory, exports: WasmExports, variant: WasmVariant, module: WebAssembly.Module, shared: boolean) {
    this.memory = memory;
    this.exports = exports;
    this.variant = variant;
    this.module = module;
    this.shared = shared;
    this.top = align(exports.heap_base() >>> 0, 64);
    this.buffer = memory.buffer;
    this.deriveViews();
  }

  /**
   * Instantiates `variant` from its bytes, or from an already compiled module (the variant probe's).
   * `shared` says the build imports a shared memory (the *-shared.wasm builds, for worker threads); `memory`
   * joins an existing shared memory instead of creating one (a worker thread, which never allocates from
   * it). Throws if the module's exports do not match their declaration (exports.ts).
   */
  static async create(
    variant: WasmVariant,
    bytes: Uint8Array | WebAssembly.Module,
    options: { shared?: boolean; memory?: WebAssembly.Memory } = {},
  ): Promise<WasmKernels> {
    const shared = options.shared ?? options.memory !== undefined;
    const module = bytes instanceof WebAssembly.Module ? bytes : await WebAssembly.compile(bufferSource(bytes));
    const memory =
      options.memory ??
      (shared ? new WebAssembly.Memory({ initial: 1, maximum: MAX_PAGES, shared: true }) : new WebAssembly.Memory({ initial: 1 }));
    // The module imports nothing but its memory and exports plain functions of numbers, so it needs no glue
    // (@assemblyscript/loader's wrappers would hide each export's parameter count behind ...args); the worker
    // threads instantiate it the same way.
    const instance = await WebAssembly.instantiate(module, { env: { memory } });
    const exports = instance.exports as Record<string, unknown>;
    return new WasmKernels(memory, checkExports(exports), variant, module, shared);
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
    this.growTo(end, bytes);
    this.top = end;
    this.refreshViews();
    return ptr;
  }

  /**
   * Grows the memory once, so that the next `bytes` of allocations need no further growth. Each grow makes
   * the JavaScript engine count the memory as new external memory and typically run a full garbage
   * collection (a model loaded matrix by matrix: a hundred of them, over half a second); growing once up
   * front leaves one. Pages are only touched, and resident, once something writes them.
   */
  reserve(bytes: number): void {
    if (!Number.isInteger(bytes) || bytes < 0) throw new RangeError(`reserve: invalid size ${bytes}`);
    this.growTo(this.top + bytes, bytes);
    this.refreshViews();
  }

  /** Grows the memory to hold at least `end` bytes; `bytes` is what the caller asked for (for messages). */
  private growTo(end: number, bytes: number): void {
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
    this._u16 = new Uint16Array(b);
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
  /** f16 bits (the il4 scales). */
  get u16(): Uint16Array {
    this.refreshViews();
    return this._u16;
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

export interface KernelLoadOptions {
  /** Module bytes per build (of the shared-memory builds when `shared`); without a relaxed build, auto runs SIMD128. */
  bytes: Partial<Record<WasmVariant, Uint8Array>>;
  /**
   * Makes the engine accept relaxed SIMD when it does not yet (Node 20 needs a V8 flag: src/node/wasm-files.ts);
   * called at most once, only if the relaxed build does not validate.
   */
  enableRelaxedSimd?: () => void;
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
 * True when the engine accepts the relaxed build, after calling `enable` (the platform's way to switch
 * relaxed SIMD on, if it has one) when it does not at first. Engines that validate it never see the call.
 */
export function acceptsRelaxedSimd(relaxedBytes: Uint8Array, enable?: () => void): boolean {
  if (WebAssembly.validate(bufferSource(relaxedBytes))) return true;
  if (enable === undefined) return false;
  try {
    enable();
  } catch {
    return false;
  }
  return WebAssembly.validate(bufferSource(relaxedBytes));
}

/** Module bytes are read or fetched into ordinary buffers, never a SharedArrayBuffer, which BufferSource excludes. */
function bufferSource(bytes: Uint8Array): BufferSource {
  return bytes as Uint8Array<ArrayBuffer>;
}

/**
 * Instantiates the kernel build chosen by `mode`. Relaxed SIMD runs only when the engine validates it and a
 * throwaway instance of the same compiled module passes `probe` (the engine passes probeMatmul, probe.ts):
 * relaxed ops may legally differ between engines, and Node 20's baseline tier (Liftoff) miscompiles
 * i32x4.relaxed_dot_i8x16_i7x16_add_s: it returns twice the dot product and drops the accumulator.
 * auto falls back to the SIMD128 build and says why; relaxed throws instead of falling back.
 *
 * The probe runs once, right after compilation, i.e. in V8's baseline tier (Liftoff), where the known bug
 * lives; test/kernels/variant.test.ts pins each tier (Liftoff only, TurboFan only) and runs the same probe.
 */
export async function loadKernels(mode: SimdMode, probe: KernelProbe, options: KernelLoadOptions): Promise<LoadedKernels> {
  const shared = options.shared ?? false;
  const bytesOf = (v: WasmVariant): Uint8Array => {
    const b = options.bytes[v];
    if (b === undefined) throw new Error(`no bytes were given for the ${v}${shared ? "-shared" : ""}.wasm kernel build`);
    return b;
  };
  const create = (v: WasmVariant, b: Uint8Array | WebAssembly.Module) => WasmKernels.create(v, b, { shared });
  if (mode === "baseline") {
    return { kernels: await create("simd", bytesOf("simd")), variant: "simd", reason: "SIMD128 build: forced by --simd baseline" };
  }
  const relaxed = options.bytes.relaxed;
  const rejected = relaxed === undefined ? "no relaxed-SIMD build was given" : await tryRelaxed(relaxed, probe, shared, options.enableRelaxedSimd);
  if (typeof rejected !== "string") {
    return { kernels: rejected, variant: "relaxed", reason: "relaxed-SIMD build: the engine validates it and the start-up probe matched the scalar twins" };
  }
  if (mode === "relaxed") throw new Error(`--simd relaxed: ${rejected}`);
  return { kernels: await create("simd", bytesOf("simd")), variant: "simd", reason: `SIMD128 build: ${rejected}` };
}

/** The relaxed instance, or why it cannot be used. */
async function tryRelaxed(bytes: Uint8Array, probe: KernelProbe, shared: boolean, enable?: () => void): Promise<WasmKernels | string> {
  let module: WebAssembly.Module;
  try {
    if (!acceptsRelaxedSimd(bytes, enable)) return "this engine does not accept relaxed SIMD";
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
