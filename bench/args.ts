// Command-line options of the benchmarks: `--name value` pairs read from process.argv.

/** The value after `--name`, or undefined. */
export function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
}

/** Comma-separated positive integers ("1,2"); throws on anything else. */
export function intList(s: string): number[] {
  return s.split(",").map((x) => {
    const n = Number(x);
    if (!Number.isSafeInteger(n) || n < 1) throw new Error(`not a positive integer: ${x}`);
    return n;
  });
}

/** `--name`'s integer (at least `min`), or `fallback` when it is absent. */
export function count(name: string, fallback: number, min = 1): number {
  const s = arg(name);
  if (s === undefined) return fallback;
  const n = Number(s);
  if (!Number.isSafeInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got ${s}`);
  return n;
}
