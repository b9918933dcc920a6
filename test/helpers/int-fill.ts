// Rows of integers for the kernels' property tests: each row filled in one of a few styles, edge values
// being their own styles so every fast-check run can hit them.
import fc from "fast-check";

export type Style = "random" | "extreme" | "zero" | "constant";

/** Random twice as often as each other style. */
export const style = fc.constantFrom<Style>("random", "random", "extreme", "zero", "constant");

/** Fills out[from .. from + n) with integers in [lo, hi] in style s ("zero": 0, or the bound nearest it). */
export function fillInts(r: () => number, s: Style, out: Int8Array, from: number, n: number, lo: number, hi: number): void {
  const c = lo + Math.floor(r() * (hi - lo + 1));
  for (let i = from; i < from + n; i++) {
    if (s === "random") out[i] = lo + Math.floor(r() * (hi - lo + 1));
    else if (s === "extreme") out[i] = r() < 0.5 ? lo : hi;
    else if (s === "zero") out[i] = Math.max(lo, Math.min(hi, 0));
    else out[i] = c;
  }
}
