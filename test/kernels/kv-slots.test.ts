// The cache's two facts about positions, computed once for the engine and the worker threads: where a
// query's window starts, and which ring slots hold a run of positions. Checked against a brute force that
// walks the positions one by one.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { slotRanges, visibleSlots, windowStart } from "../../src/kernels/kv-slots.js";

describe("windowStart", () => {
  it("is the first position j with pos - j < window (fast-check)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 50 }), fc.integer({ min: 0, max: 100 }), (window, pos) => {
        let first = pos;
        while (first > 0 && pos - (first - 1) < window) first--;
        expect(windowStart(window, pos)).toBe(first);
      }),
    );
  });
});

describe("slotRanges", () => {
  it("lists the slots p % slots of positions [lo, hi) in order, as at most two runs (fast-check)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 20 }), fc.integer({ min: 0, max: 60 }), fc.integer({ min: 0, max: 20 }), (slots, lo, span) => {
        const n = Math.min(span, slots);
        const runs = slotRanges(slots, lo, lo + n);
        const want = Array.from({ length: n }, (_, i) => (lo + i) % slots);
        expect(runs.flatMap((r) => Array.from({ length: r.n }, (_, i) => r.slot0 + i))).toEqual(want);
        expect(runs.length).toBeLessThanOrEqual(2);
        for (const r of runs) expect(r.n).toBeGreaterThan(0);
      }),
    );
  });

  it("refuses positions the ring no longer holds", () => {
    expect(() => slotRanges(8, 3, 12)).toThrow(/positions \[3, 12\) no longer fit the cache's 8 slots/);
  });

  it("visibleSlots: a query at 9 with a window of 4 in a ring of 4 reads slots 2, 3 and then 0, 1", () => {
    expect(visibleSlots(4, 4, 9)).toEqual([{ slot0: 2, n: 2 }, { slot0: 0, n: 2 }]);
    expect(visibleSlots(16, 16, 5)).toEqual([{ slot0: 0, n: 6 }]);
  });
});
