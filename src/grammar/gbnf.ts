// llama.cpp's GBNF grammar format, parsed into a Grammar (ast.ts). The syntax is llama.cpp's
// (grammars/README.md there), so grammars written for llama-cli work unchanged:
//
//   root  ::= item ("," item)*        # a rule per line; "root" is where matching starts
//   item  ::= [a-z]+ | "\"" [^"]* "\""  # literals, character classes (ranges, ^ negation), alternatives
//   rep   ::= "x"{2,5} "y"? ("z")*    # grouping, ? * + and {m} {m,} {m,n} {,n} repetition, . any character
//
// Rule names are letters, digits, "-" and "_". A rule ends at the end of its line, except inside
// parentheses and right after "::=" or "|". Escapes in literals and classes: \n \r \t \\ \" \[ \] \- \xHH
// \uHHHH \UHHHHHHHH. Literals and classes are Unicode code points, matched as their UTF-8 bytes.
//
// The text comes from a user or a network request: nesting depth, repetition counts and the text's size
// are bounded here, and the first problem is one GrammarError line with its line and column.
import { complementRanges, GrammarError, normalizeRanges, ANY_CHAR, type Expr, type Grammar } from "./ast.js";

/** Characters of GBNF text at most. */
export const MAX_GRAMMAR_CHARS = 1 << 20;
/** Parentheses nested at most this deep. */
export const MAX_NESTING = 200;
/** The largest count `{m,n}` may name; the compiler bounds the expanded size separately. */
export const MAX_REPEAT_COUNT = 1_000_000;

const isWordChar = (c: string) => /[A-Za-z0-9_-]/.test(c);

export function parseGbnf(text: string, root = "root"): Grammar {
  if (typeof text !== "string") throw new GrammarError("a grammar must be a string of GBNF rules");
  if (text.length > MAX_GRAMMAR_CHARS) throw new GrammarError(`the grammar has ${text.length} characters, more than ${MAX_GRAMMAR_CHARS}`);
  return new Parser(text).grammar(root);
}

class Parser {
  private pos = 0;
  private depth = 0;

  constructor(private readonly src: string) {}

  grammar(root: string): Grammar {
    const rules = new Map<string, Expr>();
    this.space(true);
    while (this.pos < this.src.length) {
      const at = this.pos;
      const name = this.name();
      this.space(false);
      if (!this.src.startsWith("::=", this.pos)) this.fail(`expected "::=" after the rule name ${name}`);
      this.pos += 3;
      this.space(true);
      const body = this.alternates(false);
      if (rules.has(name)) this.fail(`rule ${name} is defined twice`, at);
      rules.set(name, body);
      if (this.src[this.pos] === "\r") this.pos += this.src[this.pos + 1] === "\n" ? 2 : 1;
      else if (this.src[this.pos] === "\n") this.pos++;
      else if (this.pos < this.src.length) this.fail(`expected the end of the line after rule ${name}, found ${JSON.stringify(this.src[this.pos])}`);
      this.space(true);
    }
    if (!rules.has(root)) throw new GrammarError(rules.size === 0 ? "the grammar has no rules" : `the grammar has no rule named ${root} (where matching starts)`);
    for (const [name, body] of rules) this.checkRefs(name, body, rules);
    return { rules, root };
  }

  private checkRefs(rule: string, e: Expr, rules: Map<string, Expr>): void {
    if (e.kind === "ref" && !rules.has(e.name)) this.fail(`rule ${rule} refers to ${e.name}, which is not defined`, e.at);
    if (e.kind === "seq") for (const x of e.items) this.checkRefs(rule, x, rules);
    if (e.kind === "alt") for (const x of e.options) this.checkRefs(rule, x, rules);
    if (e.kind === "repeat") this.checkRefs(rule, e.item, rules);
  }

  /** Skips spaces, tabs and comments, and line ends when `newlines`. */
  private space(newlines: boolean): void {
    const s = this.src;
    while (this.pos < s.length) {
      const c = s[this.pos];
      if (c === " " || c === "\t") this.pos++;
      else if (c === "#") while (this.pos < s.length && s[this.pos] !== "\n" && s[this.pos] !== "\r") this.pos++;
      else if (newlines && (c === "\n" || c === "\r")) this.pos++;
      else break;
    }
  }

  private name(): string {
    const start = this.pos;
    while (this.pos < this.src.length && isWordChar(this.src[this.pos])) this.pos++;
    if (this.pos === start) this.fail(`expected a rule name, found ${this.src[this.pos] === undefined ? "the end" : JSON.stringify(this.src[this.pos])}`);
    return this.src.slice(start, this.pos);
  }

  private alternates(nested: boolean): Expr {
    const options = [this.sequence(nested)];
    while (this.src[this.pos] === "|") {
      this.pos++;
      this.space(true);
      options.push(this.sequence(nested));
    }
    return options.length === 1 ? options[0] : { kind: "alt", options };
  }

  private sequence(nested: boolean): Expr {
    const items: Expr[] = [];
    const s = this.src;
    for (;;) {
      const c = s[this.pos];
      if (c === undefined) break;
      if (c === '"') {
        this.pos++;
        let text = "";
        while (s[this.pos] !== '"') {
          if (this.pos >= s.length || s[this.pos] === "\n") this.fail("unterminated string literal");
          text += String.fromCodePoint(this.char());
        }
        this.pos++;
        items.push({ kind: "literal", text });
      } else if (c === "[") {
        items.push(this.charClass());
      } else if (isWordChar(c)) {
        const at = this.pos;
        items.push({ kind: "ref", name: this.name(), at });
      } else if (c === "(") {
        this.pos++;
        if (++this.depth > MAX_NESTING) this.fail(`parentheses nested more than ${MAX_NESTING} deep`);
        this.space(true);
        const inner = this.alternates(true);
        if (s[this.pos] !== ")") this.fail('expected ")"');
        this.pos++;
        this.depth--;
        items.push(inner);
      } else if (c === ".") {
        this.pos++;
        items.push({ kind: "chars", ranges: ANY_CHAR });
      } else if (c === "*" || c === "+" || c === "?" || c === "{") {
        const last = items.pop();
        if (last === undefined) this.fail(`"${c}" must follow an item to repeat`);
        const [min, max] = c === "{" ? this.counts() : c === "*" ? [0, Infinity] : c === "+" ? [1, Infinity] : [0, 1];
        if (c !== "{") this.pos++;
        items.push({ kind: "repeat", item: last, min, max });
      } else if (c === "<" || c === "!") {
        this.fail("token references (<...>, !<...>) are not supported: this grammar matches the text's bytes, whatever the tokens");
      } else {
        break;
      }
      this.space(nested);
    }
    return items.length === 1 ? items[0] : { kind: "seq", items };
  }

  /** `{m}`, `{m,}`, `{m,n}` or `{,n}`; the position is at "{". */
  private counts(): [number, number] {
    this.pos++;
    this.space(true);
    let min = this.int();
    let max = min;
    if (this.src[this.pos] === ",") {
      this.pos++;
      this.space(true);
      max = this.int() ?? Infinity;
      min ??= 0;
    }
    if (min === undefined || max === undefined) this.fail('expected a count after "{"');
    if (this.src[this.pos] !== "}") this.fail('expected "}" to close the repetition count');
    this.pos++;
    if (max < min) this.fail(`repetition {${min},${max}}: the maximum is below the minimum`);
    return [min, max];
  }

  /** A decimal count and the spaces after it, or undefined when there are no digits. */
  private int(): number | undefined {
    const start = this.pos;
    while (/[0-9]/.test(this.src[this.pos] ?? "")) this.pos++;
    if (start === this.pos) return undefined;
    const n = Number(this.src.slice(start, this.pos));
    if (n > MAX_REPEAT_COUNT) this.fail(`repetition count ${this.src.slice(start, this.pos)} is larger than ${MAX_REPEAT_COUNT}`, start);
    this.space(true);
    return n;
  }

  private charClass(): Expr {
    this.pos++; // [
    const negated = this.src[this.pos] === "^";
    if (negated) this.pos++;
    const ranges: number[] = [];
    while (this.src[this.pos] !== "]") {
      if (this.pos >= this.src.length) this.fail("unterminated character class");
      const lo = this.char();
      let hi = lo;
      if (this.src[this.pos] === "-" && this.src[this.pos + 1] !== "]" && this.pos + 1 < this.src.length) {
        this.pos++;
        hi = this.char();
        if (hi < lo) this.fail(`character range ${String.fromCodePoint(lo)}-${String.fromCodePoint(hi)} is reversed`);
      }
      ranges.push(lo, hi);
    }
    this.pos++;
    const set = negated ? complementRanges(ranges) : normalizeRanges(ranges);
    if (set.length === 0) this.fail("the character class matches no character");
    return { kind: "chars", ranges: set };
  }

  /** One code point of a literal or class, escapes decoded. */
  private char(): number {
    const s = this.src;
    if (s[this.pos] !== "\\") {
      const cp = s.codePointAt(this.pos) as number;
      if (cp >= 0xd800 && cp <= 0xdfff) this.fail("the grammar text holds a lone surrogate");
      this.pos += cp > 0xffff ? 2 : 1;
      return cp;
    }
    const e = s[this.pos + 1];
    this.pos += 2;
    const simple: Record<string, number> = { n: 10, r: 13, t: 9, "\\": 92, '"': 34, "[": 91, "]": 93, "-": 45, "/": 47 };
    if (e !== undefined && Object.hasOwn(simple, e)) return simple[e];
    const digits = e === "x" ? 2 : e === "u" ? 4 : e === "U" ? 8 : 0;
    if (digits === 0) this.fail(`unknown escape \\${e ?? ""}`, this.pos - 2);
    const hex = s.slice(this.pos, this.pos + digits);
    if (!new RegExp(`^[0-9a-fA-F]{${digits}}$`).test(hex)) this.fail(`\\${e} needs ${digits} hex digits`, this.pos - 2);
    this.pos += digits;
    const cp = parseInt(hex, 16);
    if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) this.fail(`\\${e}${hex} is not a Unicode scalar value`, this.pos - digits - 2);
    return cp;
  }

  private line(at: number): { line: number; column: number } {
    let line = 1;
    let lineStart = 0;
    for (let i = 0; i < at; i++) {
      if (this.src[i] === "\n") {
        line++;
        lineStart = i + 1;
      }
    }
    return { line, column: at - lineStart + 1 };
  }

  private fail(msg: string, at = this.pos): never {
    const { line, column } = this.line(at);
    throw new GrammarError(`grammar line ${line}:${column}: ${msg}`);
  }
}
