// The quantized forward pass, orchestrated here over the Wasm kernels: MobileLLM-Pro as it is deployed (int4
// g32 weights, int8 dynamic per-token activations, int8 KV cache), and a llama.cpp file's model with the
// values the file holds (each matrix in the layout of its ggml type, int8 activations per block of 32;
// src/kernels/layout.ts). Each product prepares its input in the format its matrix's layout takes.
//
// Decode (one token) and prefill (a block of tokens) are the same code: a block of T tokens runs every
// matrix product as one GEMM (each unpacked weight group serves all T tokens), and attention walks the
// block token by token over the int8 cache. Every kernel treats each token alone, so a token's logits do
// not depend on how the tokens were cut into blocks: prefill and decode agree bit for bit.
//
// Threads (src/threads/): with `threads` > 1 the engine runs the shared-memory build of the kernels and a
// pool of threads-1 workers. The rows of every matrix product (q|k|v and gate|up are stacked matrices, so one
// hand-off each, or one per layout where a file stores them in different types) and the (token, KV head) jobs of attention are split across the threads;
// every output row or head is computed by one kernel call on the same inputs whichever thread runs it, so
// the logits are bit-identical for any thread count. Norms, RoPE, SwiGLU and activation quantization stay
// on the main thread. The pool starts before the weights are read: loading quantizes them on every thread.
import type { Backend, BatchToken, LoadTimes } from "./backend.js";
import { checkBatch, checkForwardRequest, checkSequence } from "./backend.js";
import { checkContextLength, type ModelConfig } from "./config.js";
import type { WeightSource } from "./weights.js";
import type { TensorNames } from "./tensor-names.js";
import { KvCache } from "./kv-cache.js";
import { modelFingerprint, restoreKvState, saveKvState } from "./kv-state.js";
import { engineWeightBytes, wasmEngineBytes } from "./memory.js";
import { loadWeights, STAGING_BYTES, type EngineWeights, type LayerMatrices, type MatrixStack } from "./load-weights.js";
import { loadKernels, type SimdMode, type WasmKernels, type WasmVariant } from "../kernels/wasm.js";
import { dequantizeRowInto, regionBytes, type Activations, type ActivationFormat, type WeightMatrix } from "../kernels/layout.js";
import { ActivationBuffers } from "../kernels/matmul.js";
import { probeMatmul } from "../kernels/probe.js";
import { checkThreads, ThreadPool, type SpawnWorker } from "../threads/pool.js";
import { addInto, buildRopeTables, geglu, rmsnorm, rope, swiglu, uploadRopeTable, type RopeTablePtr } from "../kernels/elementwise.js";
import { allocAttentionState, kvStore, MAX_HEAD_DIM } from "../kernels/attention.js";
import { GROUP } from "../kernels/numerics.js";
import { attentionTemperature, distinctRopes, ropeInverseFrequencies, ropeTableKind } from "./rope.js";
import type { Activation, LayerRole, LayerType } from "./families/family.js";
import { LAYER_PROGRAMS, type LayerBlocks, type LayerProgram } from "./layers.js";

/** The gated MLP's elementwise kernel per activation: silu(gate) · up or gelu_tanh(gate) · up. */
const GATED: Record<Activation, typeof swiglu> = { silu: swiglu, gelu_tanh: geglu };

/** Private output scratch of each worker thread (a chunk of rows x block tokens, or a tile's attention heads). */
const WORKER_SCRATCH_BYTES = 128 << 10;
/**
 * Query tokens per attention chunk (ATTENTION_TILE tokens x one KV head): the tokens of a tile share the
 * passes over each block of keys and values (attention_rows); a 32-token prefill block is 4 tiles per KV
 * head, 16 chunks for the threads to share.
 */
const ATTENTION_TILE = 8;

export interface EngineOptions {
  contextLength: number;
  /** Sequences with a KV cache of their own (default 1), each holding the whole context. */
  sequences?: number;
  /** Tokens per prefill block (the GEMM width). */
  blockSize?: number;
  /** Which Wasm build: relaxed SIMD where the start-up probe proves it correct ("auto"), or forced. */
  simd?: SimdMode;
  /**
   * Threads running the forward pass: the main thread plus threads-1 workers sharing the Wasm memory
   * (default 1: no worker). The logits are bit-identical for any value.
   */
  threads?: number;
  /** How long an idle worker spins before it sleeps (µs, default 300); a tuning knob for benchmarks. */
  spinMicros?: number;
  /** How long an idle worker polls after a forward pass before it sleeps (µs, default 5000); a tuning knob. */
  holdMicros?: number;
  /** Bytes per staging region of the weight reads (default 4 MiB); smaller ones make many reads (tests). */
  stagingBytes?: number;
  /**
   * Wait for the worker threads before reading any weight (default false: the main thread quantizes alone
   * until they are ready); tests use it so that every read is split across the threads.
   */
  threadsFirst?: boolean;
  onProgress?: (done: number, total: number) => void;
  /** Kernel module bytes per build (the shared builds when threads > 1). */
  wasm: Partial<Record<WasmVariant, Uint8Array>>;
  /** The platform's switch for relaxed SIMD, if the engine needs one (Node 20). */
  enableRelaxedSimd?: () => void;
  /** Starts the pool's worker threads (Node's worker_threads, a browser's Web Workers); needed when threads > 1. */
  spawn?: SpawnWorker;
}

/** A model shape the kernels cannot run: the config.json key at fault, its value, and what the kernels need. */
export interface ShapeProblem {
  key: "head_dim" | "hidden_size" | "intermediate_size" | "num_attention_heads";
  value: number;
  need: string;
}

/**
 * Why this engine's kernels cannot run a model of this shape, or null. The attention kernels take a head as
 * whole i8x16 vectors (head_dim a multiple of 16, at most MAX_HEAD_DIM); every matrix multiplies
 * activations quantized in groups of GROUP values, so each matrix's input width is a multiple of GROUP: the
 * hidden size (q, k, v, gate, up), the FFN width (down) and query heads x head_dim (o). Checked at load,
 * before any kernel could meet the shape; llama.cpp runs some of these shapes (head_dim 8, hidden 16).
 */
export function engineShapeProblem(c: ModelConfig): ShapeProblem | null {
  if (c.headDim % 16 !== 0 || c.headDim < 16 || c.headDim > MAX_HEAD_DIM) return { key: "head_dim", value: c.headDim, need: `a multiple of 16 from 16 to ${MAX_HEAD_DIM} (the attention kernels work on whole 16-byte vectors)` };
  const widths: Array<[ShapeProblem["key"], number, string]> = [
    ["hidden_size", c.hiddenSize, "the hidden size"],
    ["intermediate_size", c.intermediateSize, "the FFN width"],
    ["num_attention_heads", c.numHeads * c.headDim, "query heads x head_dim"],
  ];
  for (const [key, width, what] of widths) {
    if (width % GROUP !== 0) return { key, value: key === "num_attention_heads" ? c.numHeads : width, need: `${what} (${width}) to be a multiple of ${GROUP}, the group the activations are quantized in` };
  }
  return null;
}

export class WasmEngine implements Backend {
  readonly name = "wasm" as const;
  readonly contextLength: number;
  /** One KV cache per sequence (rings on sliding layers), allocated at load. */
  readonly caches: KvCache[];
  /** Threads running the forward pass (the main thread included). */
  readonly threads: number;
  private _k: WasmKernels | null;
  private pool: ThreadPool | null = null;
  private readonly layers: LayerMatrices[];
  private readonly embed: WeightMatrix;
  private readonly head: MatrixStack;
  private readonly finalNorm: number;
  private readonly ones: number;
  /** The RoPE table of each layer kind (Gemma's local and global layers rotate with different bases). */
  private readonly ropeTables: Partial<Record<LayerType, RopeTablePtr>>;
  /** The order of one layer's blocks (src/model/layers.ts) and the blocks it calls, on the current block. */
  private readonly layer: LayerProgram;
  private readonly layerBlocks: LayerBlocks;
  /** The rows of the block being run, for the layer program's blocks. */
  private current: readonly BatchToken[] = [];
  private readonly block: number;
  private readonly s: Scratch;
  private fingerprint: string | null = null;
  private disposed = false;
  /** Which Wasm build runs and why (the start-up probe's verdict). */
  readonly simd: { variant: string; reason: string };
  /** Where the load's time went (set once the load has finished). */
  loadTimes: LoadTimes | null = null;
  /** Wasm memory the weights took (load-weights.ts's EngineWeights.bytes). */
  readonly weightBytes: number;

  private constructor(
    readonly config: ModelConfig,
    k: WasmKernels,
    weights: EngineWeights,
    s: Scratch,
    pool: ThreadPool,
    opts: EngineOptions,
    simd: { variant: string; reason: string },
  ) {
    this._k = k;
    this.pool = pool;
    this.threads = pool.threads;
    this.simd = simd;
    this.contextLength = opts.contextLength;
    this.layers = weights.layers;
    this.embed = weights.embed;
    this.head = weights.head;
    this.finalNorm = weights.finalNorm;
    this.weightBytes = weights.bytes;
    this.block = s.block;
    this.caches = Array.from({ length: opts.sequences ?? 1 }, () => new KvCache(k, config, opts.contextLength, s.block));
    const tables: Partial<Record<LayerType, RopeTablePtr>> = {};
    for (const kind of distinctRopes(config)) {
      const omega = ropeInverseFrequencies(config.headDim, config.rope[kind]);
      tables[kind] = uploadRopeTable(k, buildRopeTables(config.headDim, opts.contextLength, Float32Array.from(omega)));
    }
    this.ropeTables = {};
    for (const kind of ["full_attention", "sliding_attention"] as const) this.ropeTables[kind] = tables[ropeTableKind(config, kind)];
    this.ones = k.alloc(4 * config.headDim);
    k.f32.fill(1, this.ones >> 2, (this.ones >> 2) + config.headDim);
    this.s = s;
    this.layer = LAYER_PROGRAMS[config.norms];
    this.layerBlocks = this.makeLayerBlocks();
  }

  /**
   * The blocks the layer program calls, on the current block's rows. Built outside the constructor: closures
   * made there would keep its whole scope alive, the kernels (and so the Wasm memory) included, after dispose.
   */
  private makeLayerBlocks(): LayerBlocks {
    const { x, xb } = this.s;
    const { hiddenSize, rmsNormEps } = this.config;
    return {
      x,
      xb,
      norm: (l, role, src, dst) => rmsnorm(this.k, src, this.normOf(l, role), dst, this.current.length, hiddenSize, rmsNormEps),
      attention: (l) => this.attentionBlock(l, this.current),
      mlp: (l) => this.mlpBlock(l, this.current.length),
      residual: () => addInto(this.k, x, xb, this.current.length * hiddenSize),
    };
  }

  /**
   * Loads the kernels, starts the thread pool and reads every weight into Wasm memory (load-weights.ts):
   * each matrix quantized with the int4 recipe or repacked as the file holds it, split across the threads;
   * norms copied as float32.
   */
  static async load(config: ModelConfig, weights: WeightSource, names: TensorNames, opts: EngineOptions): Promise<WasmEngine> {
    const shape = engineShapeProblem(config);
    if (shape !== null) throw new RangeError(`${shape.key} is ${shape.value}: this engine's kernels need ${shape.need}`);
    checkContextLength(config, opts.contextLength);
    const sequences = opts.sequences ?? 1;
    if (!Number.isSafeInteger(sequences) || sequences < 1) throw new RangeError(`sequences must be an integer >= 1, got ${sequences}`);
    const threads = checkThreads(opts.threads ?? 1);
    const started = performance.now();
    const times: LoadTimes = { total: 0, kernels: 0, read: 0, quantize: 0, threads: 0, threadsStart: 0 };
    /** Runs `f`, adding its time to `times[part]`. */
    const timed = async <T>(part: "read" | "quantize" | "threads", f: () => T | Promise<T>): Promise<T> => {
      const t0 = performance.now();
      try {
        return await f();
      } finally {
        times[part] += performance.now() - t0;
      }
    };
    const { kernels: k, variant, reason } = await loadKernels(opts.simd ?? "auto", probeMatmul, {
      shared: threads > 1,
      bytes: opts.wasm,
      enableRelaxedSimd: opts.enableRelaxedSimd,
    });
    times.kernels = performance.now() - started;
    // One step per matrix read (the embedding, each layer's, the head) and one for the norms.
    const matrices = names.layers.reduce((n, l) => n + Object.values(l).filter((name) => weights.weight(name as string).shape.length === 2).length, 0);
    const total = matrices + 2 + (names.lmHead ? 1 : 0);
    let done = 0;

    const block = Math.min(opts.blockSize ?? 32, opts.contextLength);
    const scratch = new Scratch(k, config, block, threads, Math.min(block, sequences));
    // The memory grows once, to what the weights (each matrix in its layout), the KV cache and the RoPE table
    // need (memory.ts) and the two staging regions, with a MiB for the regions' alignment; a shortfall only
    // costs a grow.
    const weightBytes = engineWeightBytes(config, weights, names).total;
    k.reserve(wasmEngineBytes(config, opts.contextLength, weightBytes, sequences).total + 2 * (opts.stagingBytes ?? STAGING_BYTES) + (1 << 20));
    // The workers start while the first weights load (quantized by the main thread alone until they are
    // ready), then quantize the rest with it.
    let pool: ThreadPool | null = null;
    let startFailure: { error: unknown } | null = null;
    const startAsked = performance.now();
    const starting = ThreadPool.start({
      threads,
      kernels: k,
      states: scratch.states,
      scratch: scratch.workerScratch,
      scratchBytes: WORKER_SCRATCH_BYTES,
      spawn: opts.spawn,
      spinMicros: opts.spinMicros,
      holdMicros: opts.holdMicros,
    });
    // Spawning the workers runs partly on this thread before start() returns: that part holds the load up.
    times.threads += performance.now() - startAsked;
    starting.then(
      (p) => {
        times.threadsStart = performance.now() - startAsked;
        pool = p;
      },
      (error: unknown) => (startFailure = { error }),
    );
    /** The pool once its workers are ready, null before; throws as soon as they failed to start. */
    const readyPool = (): ThreadPool | null => {
      if (startFailure !== null) throw startFailure.error;
      return pool;
    };
    try {
      if (opts.threadsFirst) await timed("threads", () => starting);
      const w = await loadWeights(k, readyPool, config, weights, names, {
        stagingBytes: opts.stagingBytes,
        step: () => opts.onProgress?.(++done, total),
        timed,
      });
      const ready = await timed("threads", () => starting);
      const engine = new WasmEngine(config, k, w, scratch, ready, opts, { variant, reason });
      times.total = performance.now() - started;
      engine.loadTimes = times;
      return engine;
    } catch (err) {
      await starting.then((p) => p.terminate(), () => undefined);
      throw err;
    }
  }

  /** The Wasm kernels in use (their variant and arena). */
  get kernels(): WasmKernels {
    return this.k;
  }

  private get k(): WasmKernels {
    if (this._k === null) throw new Error("the model was disposed");
    return this._k;
  }

  /** The thread pool (its statistics, and a test hook to make a worker fail). */
  get threadPool(): ThreadPool {
    if (this.pool === null) throw new Error("the model was disposed");
    return this.pool;
  }

  get sequences(): number {
    return this.caches.length;
  }

  kvCacheBytes(): number {
    let bytes = 0;
    for (const kv of this.caches) {
      const b = kv.bytes();
      bytes += b.data + b.scales;
    }
    return bytes;
  }

  decodeSteps(): { split: number; solo: number } {
    const st = this.threadPool.stats;
    return { split: st.splitSteps, solo: st.soloSteps };
  }

  forward(tokens: readonly number[], startPos: number, all: boolean, sequence = 0): Float32Array[] {
    if (this.disposed) throw new Error("the model was disposed");
    checkForwardRequest(this, tokens, startPos, sequence);
    return this.run(tokens.map((token, i) => ({ sequence, token, position: startPos + i, logits: all || i === tokens.length - 1 })));
  }

  forwardBatch(batch: readonly BatchToken[]): Float32Array[] {
    if (this.disposed) throw new Error("the model was disposed");
    checkBatch(this, batch);
    return this.run(batch);
  }

  private run(batch: readonly BatchToken[]): Float32Array[] {
    this.threadPool.check();
    // What each sequence's rings will hold (the cache-reuse policy reads it): its rows are in position order.
    const spans = new Map<number, { first: number; end: number }>();
    for (const r of batch) {
      const s = spans.get(r.sequence);
      if (s === undefined) spans.set(r.sequence, { first: r.position, end: r.position + 1 });
      else s.end = r.position + 1;
    }
    for (const [sequence, s] of spans) this.caches[sequence].noteStored(s.first, s.end);
    // A decode step (one token of each sequence): the pool times it and runs it split or solo, whichever
    // the last steps say is faster.
    if (new Set(batch.map((r) => r.sequence)).size === batch.length) {
      return this.threadPool.step(Math.max(...batch.map((r) => r.position)), () => this.blocks(batch));
    }
    return this.blocks(batch);
  }

  /** The batch in blocks of at most `block` rows; the logits of the rows that want them, in order. */
  private blocks(batch: readonly BatchToken[]): Float32Array[] {
    const out: Float32Array[] = [];
    for (let i = 0; i < batch.length; i += this.block) {
      const rows = batch.slice(i, i + this.block);
      this.runBlock(rows);
      const wanted: number[] = [];
      rows.forEach((r, j) => r.logits && wanted.push(j));
      for (let j = 0; j < wanted.length; j += this.s.logitRows) out.push(...this.logits(wanted.slice(j, j + this.s.logitRows)));
    }
    return out;
  }

  /**
   * This model's fingerprint for state files (kv-state.ts): its config and 16 samples of 256 bytes spread
   * over the values and over the scales of every weight matrix, computed on first use (a fraction of a
   * millisecond). A change anywhere in a matrix changes its scales, its values, or both.
   */
  private modelFingerprint(): string {
    if (this.fingerprint === null) {
      const stacks = [this.head, ...this.layers.flatMap((l) => [l.qkv, l.o, l.gateUp, l.down])];
      const mats = [this.embed, ...stacks.flatMap((st) => st.parts.map((p) => p.matrix))];
      const spread = (ptr: number, bytes: number): [number, number][] =>
        bytes === 0 ? [] : Array.from({ length: 16 }, (_, i) => [ptr + (Math.floor((i * Math.max(0, bytes - 256)) / 15) & ~3), Math.min(256, bytes)]);
      const samples = mats.flatMap((m) => {
        const b = regionBytes(m.layout, m.rows, m.cols);
        return [...spread(m.valuesPtr, b.values), ...spread(m.scalesPtr, b.scales)];
      });
      this.fingerprint = modelFingerprint(JSON.stringify(this.config), this.k.u8, samples);
    }
    return this.fingerprint;
  }

  saveState(sequence: number, tokens: readonly number[]): Uint8Array {
    checkSequence(this, sequence);
    return saveKvState(this.k, this.caches[sequence], tokens, this.modelFingerprint());
  }

  restoreState(sequence: number, bytes: Uint8Array): number[] {
    checkSequence(this, sequence);
    const tokens = restoreKvState(this.k, this.caches[sequence], bytes, this.modelFingerprint());
    this.caches[sequence].noteRestored(tokens.length);
    return tokens;
  }

  kvIntactFrom(sequence: number): number {
    return this.caches[sequence].intactFrom;
  }

  /**
   * Stops the worker threads and drops every reference to the Wasm instance and memory, so they can be
   * garbage collected. The engine is unusable afterwards. Never rejects; calling it again is harmless.
   */
  async dispose(): Promise<void> {
    this.disposed = true;
    const pool = this.pool;
    this.pool = null;
    this._k = null;
    await pool?.terminate();
  }

  // ---- one block of T tokens at positions pos0 .. pos0 + T - 1 ------------------------------------------

  private runBlock(rows: readonly BatchToken[]): void {
    const c = this.config;
    const k = this.k;
    const s = this.s;
    const d = c.hiddenSize;
    this.current = rows;

    // token embeddings, times the family's scale (1 for Llama, sqrt(hidden) for Gemma)
    rows.forEach((r, i) => dequantizeRowInto(k, this.embed, r.token, s.x + 4 * i * d));
    if (c.embedScale !== 1) {
      const f32 = k.f32;
      for (let i = s.x >> 2, end = i + rows.length * d; i < end; i++) f32[i] = Math.fround(f32[i] * c.embedScale);
    }

    // the layers, each in its family's order of blocks (src/model/layers.ts)
    for (let l = 0; l < c.numLayers; l++) this.layer(this.layerBlocks, l);
  }

  /** Layer l's norm weight of that role (the family's tensor list guarantees it). */
  private normOf(l: number, role: LayerRole): number {
    const ptr = this.layers[l].norms[role];
    if (ptr === undefined) throw new Error(`layer ${l} has no ${role} weight`);
    return ptr;
  }

  /** Attention of layer l on xb's rows: int8 -> q, k, v -> QK-norm and RoPE -> attention -> int8 -> o, into xb. */
  private attentionBlock(l: number, rows: readonly BatchToken[]): void {
    const k = this.k;
    const s = this.s;
    const w = this.layers[l];
    const T = rows.length;
    this.matmul(w.qkv, s.xb, s.actD, s.qkv, T);
    this.positionEncode(l, rows);
    this.attention(l, rows);
    this.matmul(w.o, s.att, s.actQ, s.xb, T);
  }

  /** The gated MLP of layer l on the T rows of xb: int8 -> gate|up -> SwiGLU or GeGLU -> int8 -> down, into xb. */
  private mlpBlock(l: number, T: number): void {
    const c = this.config;
    const k = this.k;
    const s = this.s;
    const w = this.layers[l];
    const f = c.intermediateSize;
    const gated = GATED[c.activation];
    this.matmul(w.gateUp, s.xb, s.actD, s.gateUp, T);
    for (let t = 0; t < T; t++) {
      const row = s.gateUp + 8 * t * f;
      gated(k, row, row + 4 * f, s.hidden + 4 * t * f, f);
    }
    this.matmul(w.down, s.hidden, s.actF, s.xb, T);
  }

  /**
   * Each row's q and k heads: QK-norm where the family puts it (before RoPE with learned weights: Gemma;
   * after it without: Llama 4's use_qk_norm), RoPE with the table of the layer's kind at the row's
   * position, or on a NoPE layer the temperature tuning of its queries.
   */
  private positionEncode(l: number, rows: readonly BatchToken[]): void {
    const c = this.config;
    const k = this.k;
    const s = this.s;
    const layer = c.layers[l];
    const dh = c.headDim;
    const qDim = c.numHeads * dh;
    const qkHeads = c.numHeads + c.numKvHeads;
    for (let t = 0; t < rows.length; t++) {
      const row = s.qkv + 4 * t * s.qkvWidth;
      const pos = rows[t].position;
      if (c.qkNorm === "before_rope") {
        rmsnorm(k, row, this.normOf(l, "qNorm"), row, c.numHeads, dh, c.rmsNormEps);
        rmsnorm(k, row + 4 * qDim, this.normOf(l, "kNorm"), row + 4 * qDim, c.numKvHeads, dh, c.rmsNormEps);
      }
      if (layer.rope) {
        rope(k, row, 1, qkHeads, this.ropeTables[layer.kind] as RopeTablePtr, pos);
        if (c.qkNorm === "after_rope") rmsnorm(k, row, this.ones, row, qkHeads, dh, c.rmsNormEps);
      } else if (c.attnTemperatureTuning) {
        const tau = attentionTemperature(pos, c.floorScale, c.attnScale);
        const f32 = k.f32;
        for (let i = row >> 2, end = i + qDim; i < end; i++) f32[i] = Math.fround(f32[i] * tau);
      }
    }
  }

  /**
   * Grouped-query attention, over each row's own sequence. A run of rows of one sequence (a prefill chunk,
   * or one decode token) reads that sequence's cache. Each token's K and V go into the cache before its
   * query reads the positions it may see, so the cache is in exactly the state a one-token decode would
   * see: the in-block causal and sliding masks come for free and prefill gives the same bits as decode.
   * Tokens are stored a group at a time and the group's (tile of tokens, KV head) jobs then run across the
   * threads. A group is its sequence's whole run unless storing a token would overwrite a ring slot that
   * the group's first token still reads: a ring of the window plus the block (KvCache's headroom) never
   * does; without headroom, a full ring takes one token a group.
   */
  private attention(l: number, rows: readonly BatchToken[]): void {
    const c = this.config;
    const k = this.k;
    const s = this.s;
    const dh = c.headDim;
    const qDim = c.numHeads * dh;
    const kvDim = c.numKvHeads * dh;
    const group = c.numHeads / c.numKvHeads;
    const T = rows.length;
    for (let t = 0; t < T; ) {
      const seq = this.caches[rows[t].sequence];
      const cache = seq.layers[l];
      const window = seq.windowOf(l);
      const pos0 = rows[t].position;
      // Storing position x overwrites position x - slots: harmless before the ring is full, or when that
      // position is older than the window of the group's first token (group size <= slots - window + 1).
      let end = t + 1;
      while (end < T && rows[end].sequence === rows[t].sequence && (pos0 + (end - t) < cache.slots || end - t <= cache.slots - window)) end++;
      for (let i = t; i < end; i++) {
        const row = s.qkv + 4 * i * s.qkvWidth;
        const slot = seq.slotOf(l, rows[i].position);
        kvStore(k, cache, "k", row + 4 * qDim, slot);
        kvStore(k, cache, "v", row + 4 * (qDim + kvDim), slot);
      }
      // Rows [t, end) of the block: their query heads lead their qkv rows, their outputs fill att rows.
      this.threadPool.attention({
        cache, window, position: pos0, tokens: end - t, group, scale: c.queryScale,
        queries: { ptr: s.qkv + 4 * t * s.qkvWidth, stride: 4 * s.qkvWidth },
        out: { ptr: s.att + 4 * t * qDim, stride: 4 * qDim },
        tileRows: ATTENTION_TILE,
      });
      t = end;
    }
  }

  /**
   * Final norm and the tied output head for the given block rows, as one matrix product (the head's
   * weights read once for all of them); returns copies.
   */
  private logits(rows: readonly number[]): Float32Array[] {
    const c = this.config;
    const k = this.k;
    const s = this.s;
    const d = c.hiddenSize;
    const v = c.vocabSize;
    const n = rows.length;
    rows.forEach((r, i) => rmsnorm(k, s.x + 4 * r * d, this.finalNorm, s.xb + 4 * i * d, 1, d, c.rmsNormEps));
    const acts = this.activations(this.head, s.xb, s.actD, n);
    for (const [j, p] of this.head.parts.entries()) this.threadPool.matmul(p.matrix, acts[j], s.logits + 4 * p.row0, n, 0, this.head.rows);
    const out: Float32Array[] = [];
    for (let i = 0; i < n; i++) out.push(k.f32.slice((s.logits >> 2) + i * v, (s.logits >> 2) + (i + 1) * v));
    return out;
  }

  /**
   * Y (f32 [T][m.rows] at y) = the stacked matrices times the f32 rows at x: the activations prepared in the
   * format each part's layout takes (once per format), then gemv (T = 1) or gemm over the pool's threads.
   */
  private matmul(m: MatrixStack, x: number, bufs: ActivationBuffers, y: number, T: number): void {
    const acts = this.activations(m, x, bufs, T);
    for (const [j, p] of m.parts.entries()) this.threadPool.matmul(p.matrix, acts[j], y + 4 * p.row0, T, 0, m.rows);
  }

  /** Each part's activations: x prepared once per format the parts' layouts take. */
  private activations(m: MatrixStack, x: number, bufs: ActivationBuffers, T: number): Activations[] {
    const made = new Map<ActivationFormat, Activations>();
    return m.parts.map((p) => {
      const format = p.matrix.layout.activations;
      let a = made.get(format);
      if (a === undefined) made.set(format, (a = bufs.prepare(this.k, format, x, T)));
      return a;
    });
  }
}

/** Activation buffers for one block, allocated once at load (kernels never allocate). */
class Scratch {
  readonly qkvWidth: number;
  readonly x: number;
  readonly xb: number;
  readonly qkv: number;
  readonly att: number;
  readonly gateUp: number;
  readonly hidden: number;
  readonly logits: number;
  /** Rows of logits the output head computes in one pass (the sequences a decode step carries). */
  readonly logitRows: number;
  /** One attention state per thread (the main thread's first), for a tile of ATTENTION_TILE tokens. */
  readonly states: number[];
  /** Private output scratch of each worker thread. */
  readonly workerScratch: number[];
  /** Activation buffers per input width: hidden, attention output, FFN hidden. */
  readonly actD: ActivationBuffers;
  readonly actQ: ActivationBuffers;
  readonly actF: ActivationBuffers;

  constructor(k: WasmKernels, c: ModelConfig, readonly block: number, threads: number, logitRows: number) {
    const d = c.hiddenSize;
    const qDim = c.numHeads * c.headDim;
    this.qkvWidth = qDim + 2 * c.numKvHeads * c.headDim;
    this.x = k.alloc(4 * block * d);
    this.xb = k.alloc(4 * block * Math.max(d, qDim));
    this.qkv = k.alloc(4 * block * this.qkvWidth);
    this.att = k.alloc(4 * block * qDim);
    this.gateUp = k.alloc(4 * block * 2 * c.intermediateSize);
    this.hidden = k.alloc(4 * block * c.intermediateSize);
    this.logitRows = Math.max(1, logitRows);
    this.logits = k.alloc(4 * this.logitRows * c.vocabSize);
    this.states = Array.from({ length: threads }, () => allocAttentionState(k, ATTENTION_TILE * (c.numHeads / c.numKvHeads), c.headDim));
    this.workerScratch = Array.from({ length: threads - 1 }, () => k.alloc(WORKER_SCRATCH_BYTES));
    this.actD = new ActivationBuffers(k, block, d);
    this.actQ = new ActivationBuffers(k, block, qDim);
    this.actF = new ActivationBuffers(k, block, c.intermediateSize);
  }
}
