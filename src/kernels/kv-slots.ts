// Which slots of a KV cache layer hold which positions. A global layer has a slot per position of the
// context; a sliding layer is a ring (slot = position % slots), so a run of positions can wrap. The engine's
// KV cache (src/model/kv-cache.ts), the thread pool's attention jobs (src/threads/chunks.ts) and the
// cache-reuse policy (canResumeAt, src/model/memory.ts) all take these facts from here.

/** A run of consecutive cache slots. */
export interface SlotRange {
  slot0: number;
  n: number;
}

/**
 * First position a query at `pos` sees when it sees the last `window` positions, itself included (i - j <
 * window). Global layers pass the context length as the window: every earlier position.
 */
export function windowStart(window: number, pos: number): number {
  return Math.max(0, pos - window + 1);
}

/**
 * The slots of a cache of `slots` slots (slot = position % slots) holding positions [lo, hi), as at most
 * two runs: a ring range may wrap. Those positions must still be in the cache (hi - lo <= slots).
 */
export function slotRanges(slots: number, lo: number, hi: number): SlotRange[] {
  if (hi <= lo) return [];
  if (hi - lo > slots) throw new RangeError(`positions [${lo}, ${hi}) no longer fit the cache's ${slots} slots`);
  const s = lo % slots;
  const n = hi - lo;
  return s + n <= slots ? [{ slot0: s, n }] : [{ slot0: s, n: slots - s }, { slot0: 0, n: n - (slots - s) }];
}

/** The slots a query at `pos` reads: its window, wrapped around the ring. */
export function visibleSlots(slots: number, window: number, pos: number): SlotRange[] {
  return slotRanges(slots, windowStart(window, pos), pos + 1);
}
