// A static check of the regular expressions a tokenizer.json brings (Split and Replace patterns), made
// before the tokenizer is built.
//
// @huggingface/tokenizers runs them on JavaScript's backtracking engine, which cannot be interrupted: a
// pattern such as `(a+)+$` takes exponential time on a 35-character prompt and hangs the process. So
// patterns that can backtrack catastrophically are refused (there is no time budget to fall back on, and
// no linear-time engine runs in every browser). The rules, conservative on purpose:
//
// 1. No nested quantifiers: a group repeated more than once (`*`, `+`, `{n,}`, `{n,m}` with m > 1) may
//    hold only single-character items, no quantifier and no `|` (refuses `(a+)+`, `(a|ab)*`, `(\s*x)*`).
// 2. At most MAX_VARIABLE quantifiers of variable count (`?`, `*`, `+`, `{1,3}`, ...) one after another
//    on any path through the pattern, and at most MAX_UNBOUNDED of them unbounded (`*`, `+`, `{n,}`):
//    `a?a?a?...` and `\s*\s*\s*...` explode polynomially or exponentially in their number.
// 3. No backreferences (`\1`, `\k<name>`), which make matching NP-hard.
//
// Every pre-tokenizer pattern of the GPT-2, Llama 3, Llama 4 / MobileLLM-Pro, Qwen 2 and GPT-4o
// tokenizers passes (at most 4 variable and 2 unbounded quantifiers on a path, no nesting). What remains
// possible is polynomial work: with 2 unbounded quantifiers on a path, quadratic in the length of the
// text at each starting position.

export const MAX_VARIABLE = 4;
export const MAX_UNBOUNDED = 2;

interface Item {
  /** A group's alternatives, or null for a single-character item (a char, escape, class, anchor, dot). */
  alts: Item[][] | null;
  min: number;
  max: number;
}

class PatternError extends Error {}

/** Parses the pattern into alternatives of items; throws PatternError for what it refuses outright. */
function parse(p: string): Item[][] {
  let i = 0;
  const alternatives = (): Item[][] => {
    const alts: Item[][] = [[]];
    while (i < p.length) {
      const c = p[i];
      if (c === ")") break;
      if (c === "|") {
        i++;
        alts.push([]);
        continue;
      }
      let item: Item;
      if (c === "(") {
        i++;
        if (p[i] === "?") {
          // (?: (?= (?! (?<= (?<! (?> (?<name> (?i: (?i-m:  - all are groups for this purpose.
          const m = /^\?(<[=!]|[=!:>]|<[A-Za-z_][A-Za-z0-9_]*>|[a-zA-Z]*(-[a-zA-Z]*)?:|[a-zA-Z]+(-[a-zA-Z]*)?\))/.exec(p.slice(i));
          if (!m) throw new PatternError(`unsupported group syntax at offset ${i - 1}`);
          i += m[0].length;
          // (?i) switches flags for the rest of the group: no group of its own.
          if (m[0].endsWith(")")) continue;
        }
        const inner = alternatives();
        if (p[i] !== ")") throw new PatternError("unbalanced parenthesis");
        i++;
        item = { alts: inner, min: 1, max: 1 };
      } else if (c === "[") {
        i = skipClass(p, i);
        item = { alts: null, min: 1, max: 1 };
      } else if (c === "\\") {
        const n = p[i + 1];
        if (n === undefined) throw new PatternError("pattern ends with a backslash");
        if (/[1-9]/.test(n) || n === "k") throw new PatternError("backreferences are not accepted");
        i += 2;
        // \p{..} \P{..} \x{..} \u{..} \o{..}
        if ("pPxuo".includes(n) && p[i] === "{") {
          const end = p.indexOf("}", i);
          if (end < 0) throw new PatternError("unterminated \\" + n + "{");
          i = end + 1;
        }
        item = { alts: null, min: 1, max: 1 };
      } else {
        i++;
        item = { alts: null, min: 1, max: 1 };
      }
      const q = /^(?:([*+?])|\{(\d*)(,?)(\d*)\})[?+]?/.exec(p.slice(i));
      if (q && (q[1] !== undefined || q[2] !== "" || q[4] !== "")) {
        i += q[0].length;
        if (q[1] === "*") [item.min, item.max] = [0, Infinity];
        else if (q[1] === "+") [item.min, item.max] = [1, Infinity];
        else if (q[1] === "?") [item.min, item.max] = [0, 1];
        else {
          const lo = q[2] === "" ? 0 : Number(q[2]);
          const hi = q[3] === "" ? lo : q[4] === "" ? Infinity : Number(q[4]);
          [item.min, item.max] = [lo, hi];
        }
      }
      alts[alts.length - 1].push(item);
    }
    return alts;
  };
  const top = alternatives();
  if (i !== p.length) throw new PatternError("unbalanced parenthesis");
  return top;
}

/**
 * Index after the character class starting at p[i] === "[". The library compiles patterns with the "u"
 * flag, where a class ends at the first unescaped "]" ("[" inside is a plain character).
 */
function skipClass(p: string, i: number): number {
  for (i++; i < p.length; i++) {
    if (p[i] === "\\") i++;
    else if (p[i] === "]") return i + 1;
  }
  throw new PatternError("unterminated character class");
}

const isVariable = (it: Item) => it.min !== it.max;
const hasChoice = (alts: Item[][]): boolean =>
  alts.length > 1 || alts.some((seq) => seq.some((it) => isVariable(it) || (it.alts !== null && hasChoice(it.alts))));

/** Largest [variable, unbounded] quantifier counts along one path through `alts`; throws for nesting. */
function weigh(alts: Item[][]): [number, number] {
  let best: [number, number] = [0, 0];
  for (const seq of alts) {
    let v = 0;
    let u = 0;
    for (const it of seq) {
      if (it.alts !== null) {
        if (it.max > 1 && hasChoice(it.alts)) throw new PatternError("a repeated group holds a quantifier or an alternation (nested quantifiers)");
        const [iv, iu] = weigh(it.alts);
        v += iv;
        u += iu;
      }
      if (isVariable(it)) v++;
      if (it.max === Infinity) u++;
    }
    best = [Math.max(best[0], v), Math.max(best[1], u)];
  }
  return best;
}

/** Null when `pattern` passes the rules above, else why it is refused. */
export function backtrackingRisk(pattern: string): string | null {
  try {
    const [variable, unbounded] = weigh(parse(pattern));
    if (unbounded > MAX_UNBOUNDED) return `${unbounded} unbounded quantifiers in a row (at most ${MAX_UNBOUNDED})`;
    if (variable > MAX_VARIABLE) return `${variable} variable quantifiers in a row (at most ${MAX_VARIABLE})`;
    return null;
  } catch (err) {
    if (err instanceof PatternError) return err.message;
    throw err;
  }
}
