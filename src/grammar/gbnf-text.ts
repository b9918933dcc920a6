// Writing GBNF text: literals and character classes escaped so that gbnf.ts reads back exactly the code
// points meant. The JSON Schema and regex translators (json-schema.ts, regex.ts) produce grammars this way.
import type { CodePointRanges } from "./ast.js";

/** `special`: characters written as a hex escape (inside a class) or with a backslash (in a literal). */
function escapeCodePoint(cp: number, special: string, hex = false): string {
  const c = String.fromCodePoint(cp);
  if (special.includes(c)) return hex ? "\\x" + cp.toString(16).padStart(2, "0") : "\\" + c;
  if (cp === 10) return "\\n";
  if (cp === 13) return "\\r";
  if (cp === 9) return "\\t";
  if (cp < 0x20 || cp === 0x7f) return "\\x" + cp.toString(16).padStart(2, "0");
  if (cp >= 0x80 && cp <= 0x9f) return "\\u" + cp.toString(16).padStart(4, "0");
  return c;
}

/** A GBNF string literal matching exactly `text`. */
export function literal(text: string): string {
  let out = '"';
  for (const ch of text) out += escapeCodePoint(ch.codePointAt(0) as number, '"\\');
  return out + '"';
}

/** A GBNF character class matching exactly the code points of `ranges` (normalized, non-empty). */
export function charClass(ranges: CodePointRanges): string {
  let out = "[";
  for (let i = 0; i < ranges.length; i += 2) {
    out += escapeCodePoint(ranges[i], "]\\-^", true);
    if (ranges[i + 1] > ranges[i]) out += "-" + escapeCodePoint(ranges[i + 1], "]\\-^", true);
  }
  return out + "]";
}
