// Structured mutations of a parsed JSON file, for fuzzing the readers of config.json, tokenizer.json and
// tokenizer_config.json: replace, delete or add a value anywhere in the tree, with values chosen to hit
// edge cases (wrong types, zero, negative, huge, fractional, empty, deep).
import fc from "fast-check";

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Every path (keys and indices) in `v`, the root included; arrays longer than 8 contribute 8 sampled indices. */
function paths(v: Json, prefix: Array<string | number> = [], out: Array<Array<string | number>> = []): Array<Array<string | number>> {
  out.push(prefix);
  if (Array.isArray(v)) {
    const idx = v.length <= 8 ? v.map((_, i) => i) : [0, 1, 2, Math.floor(v.length / 2), v.length - 3, v.length - 2, v.length - 1];
    for (const i of idx) paths(v[i], [...prefix, i], out);
  } else if (v !== null && typeof v === "object") {
    const keys = Object.keys(v);
    const pick = keys.length <= 40 ? keys : keys.filter((_, i) => i % Math.ceil(keys.length / 40) === 0);
    for (const k of pick) paths(v[k], [...prefix, k], out);
  }
  return out;
}

export const edgeValue: fc.Arbitrary<Json> = fc.oneof(
  fc.constantFrom<Json>(null, true, false, 0, -1, 1, 0.5, 1e-300, 1e308, -1e308, 2 ** 31, 2 ** 53, 2 ** 40, 4096, "", " ", "x", "\u0000", "{{", "[", [], {}, [[]], [1, 2], ["a", 1], { type: "x" }),
  fc.integer({ min: -5, max: 300_000 }),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.string({ maxLength: 12 }),
  fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Json>,
);

export interface Mutation {
  kind: "replace" | "delete" | "add";
  at: number;
  key: string;
  value: Json;
}

export const mutation: fc.Arbitrary<Mutation> = fc.record({
  kind: fc.constantFrom<"replace" | "delete" | "add">("replace", "replace", "delete", "add"),
  at: fc.nat(),
  key: fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom("type", "vocab", "merges", "id", "content", "pattern", "Regex", "num_hidden_layers", "__proto__")),
  value: edgeValue,
});

/** `base` (deep-copied) with the mutations applied in order. */
export function mutate(base: unknown, ms: readonly Mutation[]): unknown {
  let root = structuredClone(base) as Json;
  for (const m of ms) {
    const all = paths(root);
    const path = all[m.at % all.length];
    if (path.length === 0) {
      if (m.kind === "replace") root = m.value;
      continue;
    }
    let parent = root as Record<string | number, Json>;
    for (const p of path.slice(0, -1)) parent = (parent as Record<string | number, Json>)[p] as Record<string | number, Json>;
    const last = path[path.length - 1];
    if (m.kind === "replace") parent[last] = structuredClone(m.value);
    else if (m.kind === "delete") {
      if (Array.isArray(parent)) parent.splice(last as number, 1);
      else delete parent[last];
    } else {
      const target = parent[last];
      if (Array.isArray(target)) target.push(structuredClone(m.value));
      else if (target !== null && typeof target === "object") Object.defineProperty(target, m.key, { value: structuredClone(m.value), enumerable: true, configurable: true, writable: true });
    }
  }
  return root;
}

/** Messages of the engine's own, never of a runtime's internals reached through bad input. */
const INTERNAL =
  /is not a function|is not iterable|Cannot read prop|Cannot set prop|Cannot convert|is not defined|Cannot use 'in' operator|Invalid array length|Maximum call stack|Invalid string length|is not a constructor|(undefined|null) is not an object/;

/** "ok" for a success, "refused" for a clean refusal (one line, a prefix it must start with), else the failure. */
export function classify(run: () => void, prefixes: readonly string[]): string {
  try {
    run();
    return "ok";
  } catch (e) {
    if (!(e instanceof Error)) return `non-Error thrown: ${String(e)}`;
    const m = e.message;
    if (m.includes("\n")) return `multi-line message: ${m.slice(0, 200)}`;
    if (INTERNAL.test(m)) return `internal message: ${m.slice(0, 200)}`;
    if (!prefixes.some((p) => m.startsWith(p))) return `unexpected message: ${m.slice(0, 200)}`;
    return "refused";
  }
}
