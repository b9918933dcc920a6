// JSON Schema's `pattern` (an ECMAScript regular expression, matched against the decoded string) as the
// GBNF of the JSON string's content between its quotes.
//
// The subset: literal characters and escapes (\n \t \r \f \v \0 \xHH \uHHHH \u{H..} and escaped
// punctuation), classes [...] with ranges and ^ negation, . \d \D \w \W \s \S, groups ( ) (?: ) (?<name> ),
// alternation |, quantifiers * + ? {n} {n,} {n,m} (lazy forms match the same strings), ^ at the very start
// and $ at the very end. A pattern without ^ (or $) may have anything before (after) its match, as the
// keyword's search semantics say. Refused with a message: backreferences, lookaround, word boundaries,
// Unicode property escapes, anchors elsewhere.
//
// Characters the JSON text must escape come out escaped: a `"` of the pattern is `\"` in the output, a
// newline `\n`, other control characters `\u00XX`.
import { complementRanges, GrammarError, normalizeRanges, subtractRanges, ANY_CHAR, type CodePointRanges } from "./ast.js";
import { charClass, literal } from "./gbnf-text.js";
import { MAX_REPEAT_COUNT } from "./gbnf.js";

type Re =
  | { k: "chars"; ranges: CodePointRanges }
  | { k: "seq"; items: Re[] }
  | { k: "alt"; options: Re[] }
  | { k: "rep"; item: Re; min: number; max: number };

/** Characters of a pattern at most, and its nesting. */
export const MAX_PATTERN_CHARS = 10_000;
const MAX_PATTERN_NESTING = 100;

const DIGIT = [0x30, 0x39];
const WORD = normalizeRanges([0x30, 0x39, 0x41, 0x5a, 0x5f, 0x5f, 0x61, 0x7a]);
const SPACE = normalizeRanges([9, 13, 0x20, 0x20, 0xa0, 0xa0, 0x1680, 0x1680, 0x2000, 0x200a, 0x2028, 0x2029, 0x202f, 0x202f, 0x205f, 0x205f, 0x3000, 0x3000, 0xfeff, 0xfeff]);
const LINE_TERMINATORS = [0x0a, 0x0a, 0x0d, 0x0d, 0x2028, 0x2029];
const DOT = subtractRanges(ANY_CHAR, LINE_TERMINATORS);

/** The GBNF expression for the content of a JSON string (between the quotes) whose decoded value matches `pattern`. */
export function patternToGbnf(pattern: string): string {
  if (pattern.length > MAX_PATTERN_CHARS) throw new GrammarError(`pattern has ${pattern.length} characters, more than ${MAX_PATTERN_CHARS}`);
  let body = pattern;
  const anchoredStart = body.startsWith("^");
  if (anchoredStart) body = body.slice(1);
  // A final $ that is not itself escaped (an odd number of backslashes before it escapes it).
  const trailing = /(\\*)\$$/.exec(body);
  const anchoredEnd = trailing !== null && trailing[1].length % 2 === 0;
  if (anchoredEnd) body = body.slice(0, -1);
  const re = new RegexParser(body, pattern).parse();
  const anything = `(${jsonChars(ANY_CHAR)})*`;
  return [anchoredStart ? "" : anything, emit(re), anchoredEnd ? "" : anything].filter((s) => s !== "").join(" ") || '""';
}

/** JSON's escapes for the characters it cannot hold raw. */
const SHORT_ESCAPES: Record<number, string> = { 0x22: '\\"', 0x5c: "\\\\", 0x08: "\\b", 0x0c: "\\f", 0x0a: "\\n", 0x0d: "\\r", 0x09: "\\t" };
const MUST_ESCAPE = normalizeRanges([0, 0x1f, 0x22, 0x22, 0x5c, 0x5c]);

/** The JSON encodings of a set of characters: the raw ones as a class, the others as their escapes. */
function jsonChars(ranges: CodePointRanges): string {
  const raw = subtractRanges(ranges, MUST_ESCAPE);
  const alts: string[] = raw.length > 0 ? [charClass(raw)] : [];
  const escaped = subtractRanges(ranges, raw);
  for (let i = 0; i < escaped.length; i += 2) {
    for (let cp = escaped[i]; cp <= escaped[i + 1]; cp++) alts.push(literal(SHORT_ESCAPES[cp] ?? "\\u" + cp.toString(16).padStart(4, "0")));
  }
  return alts.length === 1 ? alts[0] : `(${alts.join(" | ")})`;
}

function emit(re: Re): string {
  switch (re.k) {
    case "chars":
      return jsonChars(re.ranges);
    case "seq":
      return re.items.length === 0 ? '""' : `(${re.items.map(emit).join(" ")})`;
    case "alt":
      return `(${re.options.map(emit).join(" | ")})`;
    case "rep": {
      const inner = emit(re.item);
      if (re.min === 0 && re.max === Infinity) return `${inner}*`;
      if (re.min === 1 && re.max === Infinity) return `${inner}+`;
      if (re.min === 0 && re.max === 1) return `${inner}?`;
      return `${inner}{${re.min},${re.max === Infinity ? "" : re.max}}`;
    }
  }
}

class RegexParser {
  private pos = 0;
  private depth = 0;

  constructor(
    private readonly src: string,
    private readonly whole: string,
  ) {}

  parse(): Re {
    const re = this.alternation();
    if (this.pos < this.src.length) this.fail(`unexpected ${JSON.stringify(this.src[this.pos])}`);
    return re;
  }

  private fail(msg: string): never {
    throw new GrammarError(`pattern ${JSON.stringify(this.whole.length > 60 ? this.whole.slice(0, 57) + "..." : this.whole)}: ${msg}`);
  }

  private alternation(): Re {
    const options = [this.sequence()];
    while (this.src[this.pos] === "|") {
      this.pos++;
      options.push(this.sequence());
    }
    return options.length === 1 ? options[0] : { k: "alt", options };
  }

  private sequence(): Re {
    const items: Re[] = [];
    while (this.pos < this.src.length && this.src[this.pos] !== "|" && this.src[this.pos] !== ")") {
      let atom = this.atom();
      for (;;) {
        const q = this.quantifier();
        if (q === null) break;
        atom = { k: "rep", item: atom, min: q[0], max: q[1] };
      }
      items.push(atom);
    }
    return items.length === 1 ? items[0] : { k: "seq", items };
  }

  private quantifier(): [number, number] | null {
    const c = this.src[this.pos];
    let q: [number, number] | null = null;
    if (c === "*") q = [0, Infinity];
    else if (c === "+") q = [1, Infinity];
    else if (c === "?") q = [0, 1];
    else if (c === "{") {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(this.src.slice(this.pos));
      if (m === null) return null; // a literal "{", as ECMAScript reads it without the u flag
      const min = Number(m[1]);
      const max = m[2] === undefined ? min : m[3] === "" ? Infinity : Number(m[3]);
      if (min > MAX_REPEAT_COUNT || (max !== Infinity && max > MAX_REPEAT_COUNT)) this.fail(`repetition count above ${MAX_REPEAT_COUNT}`);
      if (max < min) this.fail(`repetition {${min},${max}} has its maximum below its minimum`);
      this.pos += m[0].length - 1;
      q = [min, max];
    }
    if (q === null) return null;
    this.pos++;
    if (this.src[this.pos] === "?") this.pos++; // lazy: the same strings
    return q;
  }

  private atom(): Re {
    const s = this.src;
    const c = s[this.pos];
    if (c === "(") {
      this.pos++;
      if (++this.depth > MAX_PATTERN_NESTING) this.fail(`groups nested more than ${MAX_PATTERN_NESTING} deep`);
      if (s.startsWith("?:", this.pos)) this.pos += 2;
      else if (s.startsWith("?<", this.pos) && !s.startsWith("?<=", this.pos) && !s.startsWith("?<!", this.pos)) {
        const end = s.indexOf(">", this.pos);
        if (end < 0) this.fail("unterminated group name");
        this.pos = end + 1;
      } else if (s[this.pos] === "?") this.fail("lookahead and lookbehind ((?=, (?!, (?<=, (?<!) are not supported");
      const inner = this.alternation();
      if (s[this.pos] !== ")") this.fail('missing ")"');
      this.pos++;
      this.depth--;
      return inner;
    }
    if (c === "[") return this.charClass();
    if (c === ".") {
      this.pos++;
      return { k: "chars", ranges: DOT };
    }
    if (c === "^" || c === "$") this.fail(`"${c}" is supported only at the very ${c === "^" ? "start" : "end"} of the pattern`);
    if (c === "*" || c === "+" || c === "?") this.fail(`"${c}" has nothing to repeat`);
    if (c === "\\") return this.escape(false);
    const cp = s.codePointAt(this.pos) as number;
    this.pos += cp > 0xffff ? 2 : 1;
    return { k: "chars", ranges: [cp, cp] };
  }

  /** An escape at the position (after it: a class or one character). In a class, \b is a backspace. */
  private escape(inClass: boolean): Re & { k: "chars" } {
    const s = this.src;
    const e = s[this.pos + 1];
    if (e === undefined) this.fail("the pattern ends with a backslash");
    this.pos += 2;
    const set = (ranges: CodePointRanges): Re & { k: "chars" } => ({ k: "chars", ranges });
    switch (e) {
      case "d":
        return set(DIGIT);
      case "D":
        return set(complementRanges(DIGIT));
      case "w":
        return set(WORD);
      case "W":
        return set(complementRanges(WORD));
      case "s":
        return set(SPACE);
      case "S":
        return set(complementRanges(SPACE));
      case "n":
        return set([10, 10]);
      case "r":
        return set([13, 13]);
      case "t":
        return set([9, 9]);
      case "f":
        return set([12, 12]);
      case "v":
        return set([11, 11]);
      case "0":
        if (/[0-9]/.test(s[this.pos] ?? "")) this.fail("octal escapes are not supported");
        return set([0, 0]);
      case "x":
      case "u": {
        const m = e === "x" ? /^[0-9a-fA-F]{2}/.exec(s.slice(this.pos)) : /^(\{[0-9a-fA-F]{1,6}\}|[0-9a-fA-F]{4})/.exec(s.slice(this.pos));
        if (m === null) this.fail(`\\${e} needs hex digits`);
        this.pos += m[0].length;
        const cp = parseInt(m[0].replace(/[{}]/g, ""), 16);
        if (cp > 0x10ffff) this.fail(`\\${e}${m[0]} is beyond U+10FFFF`);
        return set(normalizeRanges([cp, cp]));
      }
      case "b":
        if (inClass) return set([8, 8]);
        this.fail("word boundaries (\\b, \\B) are not supported");
        break;
      case "B":
        this.fail("word boundaries (\\b, \\B) are not supported");
        break;
      case "p":
      case "P":
        this.fail("Unicode property escapes (\\p{...}) are not supported");
        break;
      case "k":
        this.fail("backreferences are not supported");
        break;
      case "c":
        this.fail("control escapes (\\cX) are not supported");
        break;
    }
    if (/[1-9]/.test(e)) this.fail("backreferences are not supported");
    if (/[A-Za-z]/.test(e)) this.fail(`unknown escape \\${e}`);
    const cp = e.codePointAt(0) as number;
    return set([cp, cp]);
  }

  private charClass(): Re {
    const s = this.src;
    this.pos++;
    const negated = s[this.pos] === "^";
    if (negated) this.pos++;
    const ranges: number[] = [];
    let first = true;
    while (s[this.pos] !== "]" || first) {
      if (this.pos >= s.length) this.fail("unterminated character class");
      if (s[this.pos] === "]" && first) break; // [] matches nothing, [^] anything
      first = false;
      const lo = this.classAtom();
      if (s[this.pos] === "-" && s[this.pos + 1] !== "]" && this.pos + 1 < s.length) {
        this.pos++;
        const hi = this.classAtom();
        if (lo.length !== 2 || hi.length !== 2 || lo[0] !== lo[1] || hi[0] !== hi[1]) this.fail("a class range needs single characters at both ends");
        if (hi[0] < lo[0]) this.fail("a class range is reversed");
        ranges.push(lo[0], hi[0]);
      } else {
        ranges.push(...lo);
      }
    }
    this.pos++;
    const set = negated ? complementRanges(ranges) : normalizeRanges(ranges);
    if (set.length === 0) this.fail("a character class matches nothing");
    return { k: "chars", ranges: set };
  }

  private classAtom(): readonly number[] {
    const s = this.src;
    if (s[this.pos] === "\\") return this.escape(true).ranges;
    const cp = s.codePointAt(this.pos) as number;
    this.pos += cp > 0xffff ? 2 : 1;
    return [cp, cp];
  }
}
