// The int8 KV cache of the whole model: one KvCacheLayer per layer (int8 K and V, one f32 scale per
// (token, KV head); layout in src/kernels/attention.ts).
//
// Global layers hold every position of the context (slot = position). A sliding layer only ever needs
// the last `sliding_window` positions, so it is a ring (slot = position % slots) of that many slots plus a
// headroom: its size does not grow with the context. That is where the 117 MB -> 40 MB saving at 8k tokens
// comes from. The headroom (the engine's prefill block, 32 slots) lets a block's keys and values all be
// stored before its queries read the ring: without it, storing the next token would overwrite the oldest
// position the token before still reads, and a full ring could only be filled a token at a time.
import { checkContextLength, type ModelConfig } from "./config.js";
import { layerSlots } from "./memory.js";
import type { WasmKernels } from "../kernels/wasm.js";
import { allocKvCacheLayer, type KvCacheLayer } from "../kernels/attention.js";

export class KvCache {
  readonly layers: KvCacheLayer[];
  readonly contextLength: number;
  /** The slots of the smallest sliding ring, or null without sliding layers. */
  private readonly ringSlots: number | null;

  constructor(
    wasm: WasmKernels,
    readonly config: ModelConfig,
    contextLength: number,
    /** Ring slots of a sliding layer beyond its window (see above). */
    readonly headroom = 0,
  ) {
    checkContextLength(config, contextLength);
    this.contextLength = contextLength;
    this.layers = config.layers.map((_, l) =>
      allocKvCacheLayer(wasm, { kvHeads: config.numKvHeads, headDim: config.headDim, slots: this.slotsOf(l) }),
    );
    const rings = this.layers.filter((_, l) => this.isSliding(l)).map((layer) => layer.slots);
    this.ringSlots = rings.length === 0 ? null : Math.min(...rings);
  }

  /**
   * The oldest position whose keys and values every sliding layer still holds (0 without sliding layers).
   * A sequence stores its positions in order, from 0 or from a position it resumed at, so a ring of `slots`
   * slots has lost exactly the positions more than `slots` below the highest one stored since the sequence
   * last started at position 0 (positions a resume dropped are rewritten before anything reads them); a
   * restored state holds the last `sliding_window` positions of its rings. The cache-reuse policy
   * (canResumeAt) reads it: with the headroom, a sequence can resume up to headroom + 1 positions back.
   */
  intactFrom = 0;
  /** 1 + the highest position stored since the sequence last started at position 0. */
  private storedEnd = 0;

  /** Positions [first, end) of the sequence are being stored (a forward pass's rows, in order). */
  noteStored(first: number, end: number): void {
    const ring = this.ringSlots;
    if (ring === null) return;
    if (first === 0) this.storedEnd = 0;
    this.storedEnd = Math.max(this.storedEnd, end);
    this.intactFrom = Math.max(first === 0 ? 0 : this.intactFrom, this.storedEnd - ring);
  }

  /** A state of `tokens` positions was restored: its rings hold their last `sliding_window` positions. */
  noteRestored(tokens: number): void {
    if (this.ringSlots === null) return;
    this.storedEnd = tokens;
    this.intactFrom = Math.max(0, tokens - Math.min(this.contextLength, this.config.slidingWindow as number));
  }

  isSliding(layer: number): boolean {
    return this.config.layers[layer].kind === "sliding_attention";
  }

  /** Slots of a layer: the context for global layers, the window and the headroom (or the context, if shorter) for sliding ones. */
  slotsOf(layer: number): number {
    return layerSlots(this.config, layer, this.contextLength, "hybrid", this.headroom);
  }

  /** Positions a query sees in `layer`, itself included: the sliding window, or the whole context. */
  windowOf(layer: number): number {
    return this.isSliding(layer) ? (this.config.slidingWindow as number) : this.contextLength;
  }

  slotOf(layer: number, pos: number): number {
    this.checkPosition(pos);
    return pos % this.slotsOf(layer);
  }

  checkPosition(pos: number): void {
    if (!Number.isInteger(pos) || pos < 0 || pos >= this.contextLength) {
      throw new RangeError(`position ${pos} is beyond the context of ${this.contextLength} tokens`);
    }
  }

  /** Bytes allocated: int8 K and V data, and their f32 scales, counted apart. */
  bytes(): { data: number; scales: number } {
    let data = 0;
    let scales = 0;
    for (const l of this.layers) {
      data += 2 * l.kvHeads * l.slots * l.headDim;
      scales += 2 * l.kvHeads * l.slots * 4;
    }
    return { data, scales };
  }
}
