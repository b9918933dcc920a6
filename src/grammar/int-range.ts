// The decimal integers in a range as GBNF, for JSON Schema's minimum / maximum on integers: every number
// in [lo, hi] written the way JSON writes it (no leading zeros, no "-0", no "+"), and nothing else.
//
// A range of numbers with the same digit count splits into at most 2 x digits pieces, each a fixed prefix,
// one digit range and free digits: [123, 456] = "12" [3-9] | "1" [3-9] [0-9] | [2-3] [0-9] [0-9] | "4" [0-4]
// [0-9] | "45" [0-6]. Ranges over several digit counts are the union of one range per count.

/** Digits an integer may have when the schema leaves a side open (JSON parsers keep 15 exactly). */
export const MAX_INT_DIGITS = 15;
const OPEN_MAX = 10n ** BigInt(MAX_INT_DIGITS) - 1n;

/** Same-length digit strings a <= b, leading zeros allowed: every string between them. */
function fixedWidth(a: string, b: string): string[] {
  const n = a.length;
  if (n === 0) return ['""'];
  if (a === b) return [`"${a}"`];
  if (a[0] === b[0]) return fixedWidth(a.slice(1), b.slice(1)).map((t) => `"${a[0]}" ${t}`.replace(/" "/g, ""));
  const out: string[] = [];
  const free = (k: number) => (k === 0 ? "" : k === 1 ? " [0-9]" : ` [0-9]{${k}}`);
  const a0 = Number(a[0]);
  const b0 = Number(b[0]);
  const restA = a.slice(1);
  const restB = b.slice(1);
  let lo = a0;
  let hi = b0;
  if (!/^0*$/.test(restA)) {
    out.push(...fixedWidth(restA, "9".repeat(n - 1)).map((t) => `"${a[0]}" ${t}`));
    lo = a0 + 1;
  }
  const lastPart: string[] = [];
  if (!/^9*$/.test(restB)) {
    lastPart.push(...fixedWidth("0".repeat(n - 1), restB).map((t) => `"${b[0]}" ${t}`));
    hi = b0 - 1;
  }
  if (lo <= hi) out.push(`${lo === hi ? `"${lo}"` : `[${lo}-${hi}]`}${free(n - 1)}`);
  return [...out, ...lastPart];
}

/** Non-negative integers in [a, b] without leading zeros. */
function nonNegative(a: bigint, b: bigint): string[] {
  const out: string[] = [];
  let lo = a;
  while (lo <= b) {
    const digits = lo.toString().length;
    const top = 10n ** BigInt(digits) - 1n;
    const hi = b < top ? b : top;
    out.push(...fixedWidth(lo.toString(), hi.toString()));
    lo = hi + 1n;
  }
  return out;
}

/**
 * GBNF for the integers in [lo, hi]; an absent side is open up to MAX_INT_DIGITS digits. Returns null for
 * an empty range.
 */
export function intRange(lo: bigint | null, hi: bigint | null): string | null {
  const min = lo ?? -OPEN_MAX;
  const max = hi ?? OPEN_MAX;
  if (min > max) return null;
  const parts: string[] = [];
  if (min < 0n) {
    // Negative numbers: "-" and the magnitudes in [max(1, -max), -min].
    const magLo = max < 0n ? -max : 1n;
    parts.push(`"-" (${nonNegative(magLo, -min).join(" | ")})`);
  }
  if (max >= 0n) parts.push(...nonNegative(min > 0n ? min : 0n, max));
  return parts.join(" | ");
}
