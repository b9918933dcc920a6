// A JSON Schema as a GBNF grammar whose sentences are JSON documents valid against it.
//
// The grammar generates a subset of what the schema allows, never more: properties in the order the schema
// lists them, no additional properties unless the schema asks for them (an object schema that declares no
// properties allows any members, which is what {"type": "object"} means), at most one newline plus
// indentation between tokens. A keyword that cannot be enforced is refused with a message naming it and
// where it is; none is ignored, except annotations (title, description, default, examples, ...).
// docs/structured-output.md lists each keyword and the GBNF it becomes.
//
// The schema may come from a network request: its size and nesting are checked first, $ref chains are
// followed with a visited set, and every message is one line.
import { GrammarError } from "./ast.js";
import { literal } from "./gbnf-text.js";
import { intRange, MAX_INT_DIGITS } from "./int-range.js";
import { patternToGbnf } from "./regex.js";

/** Schema nodes (objects, arrays, values) at most. */
export const MAX_SCHEMA_NODES = 100_000;
/** Nesting of the schema's JSON at most. */
export const MAX_SCHEMA_DEPTH = 128;

type Schema = boolean | Record<string, unknown>;

const ANNOTATIONS = new Set(["title", "description", "default", "examples", "$comment", "$schema", "$id", "deprecated", "readOnly", "writeOnly", "contentEncoding", "contentMediaType", "$defs", "definitions"]);
const TYPES = ["null", "boolean", "object", "array", "number", "integer", "string"] as const;
type JsonType = (typeof TYPES)[number];
const KEYWORDS_OF: Record<string, JsonType> = {
  properties: "object",
  required: "object",
  additionalProperties: "object",
  unevaluatedProperties: "object",
  minProperties: "object",
  maxProperties: "object",
  items: "array",
  prefixItems: "array",
  additionalItems: "array",
  minItems: "array",
  maxItems: "array",
  uniqueItems: "array",
  minLength: "string",
  maxLength: "string",
  pattern: "string",
  format: "string",
  minimum: "number",
  maximum: "number",
  exclusiveMinimum: "number",
  exclusiveMaximum: "number",
};
const COMBINERS = new Set(["type", "enum", "const", "anyOf", "oneOf", "allOf", "$ref"]);

// The JSON building blocks, shared by every schema.
const JSON_CHAR = `( [^"\\\\\\x00-\\x1F] | "\\\\" ( ["\\\\/bfnrt] | "u" ( [0-9a-cA-CefEF] [0-9a-fA-F]{3} | [dD] [0-7] [0-9a-fA-F]{2} ) ) )`;
const INTEGER = `"-"? ( "0" | [1-9] [0-9]{0,${MAX_INT_DIGITS - 1}} )`;
const FRACTION = `( "." [0-9]{1,${MAX_INT_DIGITS}} )`;
const EXPONENT = `( [eE] [-+]? [0-9]{1,2} )`;
const BUILTINS: Record<string, string> = {
  ws: `| " " | "\\n" [ \\t]{0,20}`,
  "json-value": "json-object | json-array | json-string | json-number | json-boolean | json-null",
  "json-object": `"{" ws ( json-string ws ":" ws json-value ws ( "," ws json-string ws ":" ws json-value ws )* )? "}"`,
  "json-array": `"[" ws ( json-value ws ( "," ws json-value ws )* )? "]"`,
  "json-string": `"\\"" ${JSON_CHAR}* "\\""`,
  "json-number": `${INTEGER} ${FRACTION}? ${EXPONENT}?`,
  "json-integer": INTEGER,
  "json-boolean": `"true" | "false"`,
  "json-null": `"null"`,
};
const BUILTIN_DEPS: Record<string, string[]> = {
  "json-value": ["json-object", "json-array", "json-string", "json-number", "json-boolean", "json-null"],
  "json-object": ["json-string", "json-value", "ws"],
  "json-array": ["json-value", "ws"],
};

// String formats (ajv-formats' full mode): days per month and leap years included.
// Leap years: divisible by 4 but not by 100 (last two digits), or by 400 (first two digits divisible by 4, then "00").
const LEAP_YEAR = `( [0-9] [0-9] ( "0" [48] | [2468] [048] | [13579] [26] ) | ( "0" [048] | [2468] [048] | [13579] [26] ) "00" )`;
const DATE = `( [0-9]{4} "-" ( ( "01" | "03" | "05" | "07" | "08" | "10" | "12" ) "-" ( "0" [1-9] | [12] [0-9] | "3" [01] ) | ( "04" | "06" | "09" | "11" ) "-" ( "0" [1-9] | [12] [0-9] | "30" ) | "02-" ( "0" [1-9] | "1" [0-9] | "2" [0-8] ) ) | ${LEAP_YEAR} "-02-29" )`;
const TIME = `( ( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] ":" [0-5] [0-9] ( "." [0-9]{1,6} )? ( [zZ] | [-+] ( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] ) )`;
const HEX = "[0-9a-fA-F]";
const FORMATS: Record<string, string> = {
  date: DATE,
  time: TIME,
  "date-time": `${DATE} [tT] ${TIME}`,
  uuid: `${HEX}{8} "-" ${HEX}{4} "-" ${HEX}{4} "-" ${HEX}{4} "-" ${HEX}{12}`,
};

/** A schema (or part) that no value satisfies: an anyOf branch like this drops out of the union. */
class NoValue extends GrammarError {}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const show = (v: unknown): string => {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? s.slice(0, 57) + "..." : s;
};

/** JSON values equal as JSON (object key order ignored). */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (isObject(v)) return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`).join(",")}}`;
  return JSON.stringify(v);
}

/** The JSON type of a value (integers are "integer", other numbers "number"). */
function typeOfValue(v: unknown): JsonType {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (typeof v === "number") return Number.isInteger(v) ? "integer" : "number";
  return typeof v as JsonType;
}

/**
 * Checks the schema is JSON of bounded size and depth, iteratively (no recursion on hostile input). An
 * object may appear in several places (a JavaScript caller may share parts), each place counting towards
 * the size; an object inside itself is refused.
 */
function checkShape(schema: unknown): void {
  const onPath = new Set<object>();
  const todo: [unknown, number, boolean][] = [[schema, 0, false]];
  let nodes = 0;
  while (todo.length > 0) {
    const [v, depth, leaving] = todo.pop() as [unknown, number, boolean];
    if (leaving) {
      onPath.delete(v as object);
      continue;
    }
    if (++nodes > MAX_SCHEMA_NODES) throw new GrammarError(`the JSON Schema has more than ${MAX_SCHEMA_NODES} nodes`);
    if (depth > MAX_SCHEMA_DEPTH) throw new GrammarError(`the JSON Schema nests more than ${MAX_SCHEMA_DEPTH} levels deep`);
    if (typeof v === "number" && !Number.isFinite(v)) throw new GrammarError("the JSON Schema holds a number that is not finite");
    if (typeof v !== "object" || v === null) {
      if (v !== null && !["string", "number", "boolean"].includes(typeof v)) throw new GrammarError(`the JSON Schema holds a ${typeof v}, which is not JSON`);
      continue;
    }
    if (onPath.has(v)) throw new GrammarError("the JSON Schema contains itself (an object inside itself); write recursion as $ref");
    onPath.add(v);
    todo.push([v, depth, true]);
    for (const x of Array.isArray(v) ? v : Object.values(v)) todo.push([x, depth + 1, false]);
  }
}

/** The GBNF grammar (root rule "root") of the JSON documents valid against `schema`. */
export function jsonSchemaToGbnf(schema: unknown): string {
  checkShape(schema);
  if (typeof schema !== "boolean" && !isObject(schema)) throw new GrammarError(`a JSON Schema must be an object or a boolean, got ${show(schema)}`);
  return new Converter(schema).convert();
}

class Converter {
  private readonly rules = new Map<string, string>();
  private readonly builtins = new Set<string>();
  /** $ref pointer -> its rule. */
  private readonly refRules = new Map<string, string>();
  private depth = 0;

  constructor(private readonly root: Schema) {}

  convert(): string {
    const body = this.visit(this.root, "#");
    const lines = [`root ::= ${body}`];
    for (const [name, rule] of this.rules) lines.push(`${name} ::= ${rule}`);
    const done = new Set<string>();
    const addBuiltin = (name: string) => {
      if (done.has(name)) return;
      done.add(name);
      lines.push(`${name} ::= ${BUILTINS[name]}`);
      for (const d of BUILTIN_DEPS[name] ?? []) addBuiltin(d);
    };
    for (const b of this.builtins) addBuiltin(b);
    return lines.join("\n") + "\n";
  }

  private fail(path: string, msg: string): never {
    throw new GrammarError(`JSON Schema at ${path}: ${msg}`);
  }

  /** Fails for a schema that allows no value at all. */
  private empty(path: string, msg: string): never {
    throw new NoValue(`JSON Schema at ${path}: ${msg}: no value fits`);
  }

  private builtin(name: string): string {
    this.builtins.add(name);
    return name;
  }

  /** Rule bodies written so far -> their rule: the same body (a format, a range, a member) is one rule. */
  private readonly byBody = new Map<string, string>();

  /** A rule named after `hint` for `body` (the existing one when the body was written before). */
  private rule(hint: string, body: string, shared = true): string {
    const known = shared ? this.byBody.get(body) : undefined;
    if (known !== undefined) return known;
    const base = hint.replace(/[^A-Za-z0-9-]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 40) || "s";
    let name = base;
    for (let i = 2; this.rules.has(name) || Object.hasOwn(BUILTINS, name) || name === "root"; i++) name = `${base}-${i}`;
    this.rules.set(name, body);
    if (shared) this.byBody.set(body, name);
    return name;
  }

  /** Follows a local JSON pointer. */
  private resolve(ref: unknown, path: string): Schema {
    if (typeof ref !== "string") this.fail(path, `$ref must be a string, got ${show(ref)}`);
    if (ref !== "#" && !ref.startsWith("#/")) this.fail(path, `$ref ${show(ref)} is not supported: only local references (#/...) are`);
    let at: unknown = this.root;
    for (const raw of ref === "#" ? [] : ref.slice(2).split("/")) {
      let part: string;
      try {
        part = decodeURIComponent(raw).replace(/~1/g, "/").replace(/~0/g, "~");
      } catch {
        this.fail(path, `$ref ${show(ref)} is not a valid JSON pointer`);
      }
      if (Array.isArray(at) && /^\d+$/.test(part)) at = at[Number(part)];
      else if (isObject(at) && Object.hasOwn(at, part)) at = at[part];
      else this.fail(path, `$ref ${show(ref)} points to nothing`);
    }
    if (typeof at !== "boolean" && !isObject(at)) this.fail(path, `$ref ${show(ref)} points to ${show(at)}, which is not a schema`);
    return at;
  }

  /** A schema with its $ref replaced by what it points to (siblings merged in), following chains of $ref. */
  private deref(s: Schema, path: string): Schema {
    const chain: string[] = [];
    while (isObject(s) && "$ref" in s) {
      const ref = s.$ref as string;
      if (chain.includes(ref)) this.fail(path, `$ref cycle: ${[...chain, ref].join(" -> ")}`);
      chain.push(ref);
      const { $ref: _, ...siblings } = s;
      const target = this.resolve(ref, path);
      s = Object.keys(siblings).every((k) => ANNOTATIONS.has(k)) ? target : this.merge(target, siblings, path);
    }
    return s;
  }

  /** The GBNF expression of the values valid against `s`. */
  private visit(s: Schema, path: string): string {
    if (++this.depth > MAX_SCHEMA_DEPTH) this.fail(path, `nests more than ${MAX_SCHEMA_DEPTH} levels deep`);
    try {
      return this.visitInner(s, path);
    } finally {
      this.depth--;
    }
  }

  private visitInner(s: Schema, path: string): string {
    if (s === true) return this.builtin("json-value");
    if (s === false) this.empty(path, "the schema is false");
    // A $ref with nothing else is a rule of its own: shared by every place that uses it, and the way a
    // recursive schema becomes a recursive grammar.
    if (typeof s.$ref === "string" && Object.keys(s).every((k) => k === "$ref" || ANNOTATIONS.has(k))) {
      const known = this.refRules.get(s.$ref);
      if (known !== undefined) return known;
      const target = this.deref(s, path);
      const name = this.rule(`ref-${s.$ref.split("/").pop() ?? "root"}`, "", false);
      this.refRules.set(s.$ref, name);
      this.rules.set(name, this.visit(target, s.$ref));
      return name;
    }
    s = this.deref(s, path);
    if (typeof s === "boolean") return this.visit(s, path);
    for (const k of Object.keys(s)) {
      if (!ANNOTATIONS.has(k) && !COMBINERS.has(k) && !Object.hasOwn(KEYWORDS_OF, k) && !k.startsWith("x-")) {
        this.fail(path, `keyword "${k}" is not supported (it cannot be enforced while generating)`);
      }
    }
    if (Array.isArray(s.allOf)) {
      const { allOf, ...rest } = s;
      let merged: Schema = rest;
      (allOf as unknown[]).forEach((sub, i) => (merged = this.merge(merged, this.deref(sub as Schema, `${path}/allOf/${i}`), `${path}/allOf/${i}`)));
      return this.visit(merged, path);
    }
    if (s.allOf !== undefined) this.fail(path, "allOf must be a list of schemas");
    for (const key of ["anyOf", "oneOf"] as const) {
      if (s[key] === undefined) continue;
      const list = s[key];
      if (!Array.isArray(list) || list.length === 0) this.fail(path, `${key} must be a non-empty list of schemas`);
      if (s.anyOf !== undefined && s.oneOf !== undefined) this.fail(path, "anyOf and oneOf together are not supported");
      const { [key]: _, ...rest } = s;
      const options = (list as Schema[]).map((sub, i) => {
        const p = `${path}/${key}/${i}`;
        const branch = Object.keys(rest).length === 0 ? sub : this.merge(rest, this.deref(sub, p), p);
        return branch;
      });
      if (key === "oneOf") this.checkDisjoint(options, path);
      const alts = options.map((o, i) => {
        try {
          return this.visit(o, `${path}/${key}/${i}`);
        } catch (err) {
          // A branch that allows nothing (false, conflicting keywords) just drops out of the union.
          if (err instanceof NoValue) return null;
          throw err;
        }
      });
      const kept = alts.filter((a): a is string => a !== null);
      if (kept.length === 0) this.fail(path, `no branch of ${key} allows a value`);
      return kept.length === 1 ? kept[0] : `( ${kept.join(" | ")} )`;
    }
    if (s.const !== undefined || s.enum !== undefined) return this.values(s, path);
    return this.typed(s, path);
  }

  /** const / enum: the values as literals (compact JSON), those of the schema's type. */
  private values(s: Record<string, unknown>, path: string): string {
    const extra = Object.keys(s).filter((k) => !ANNOTATIONS.has(k) && k !== "const" && k !== "enum" && k !== "type" && !k.startsWith("x-"));
    if (extra.length > 0) this.fail(path, `"${extra[0]}" beside enum/const is not supported`);
    let values: unknown[] = s.enum !== undefined ? (Array.isArray(s.enum) ? s.enum : this.fail(path, "enum must be a list")) : [s.const];
    if (s.const !== undefined && s.enum !== undefined) values = values.filter((v) => canonical(v) === canonical(s.const));
    const types = this.types(s, path);
    if (types !== null) values = values.filter((v) => types.has(typeOfValue(v)) || (typeOfValue(v) === "integer" && types.has("number")));
    if (values.length === 0) this.empty(path, "enum/const hold no value of the schema's type");
    const lits = [...new Set(values.map((v) => JSON.stringify(v)))].map(literal);
    return lits.length === 1 ? lits[0] : `( ${lits.join(" | ")} )`;
  }

  /** The `type` keyword as a set, or null when absent. */
  private types(s: Record<string, unknown>, path: string): Set<JsonType> | null {
    if (s.type === undefined) return null;
    const list = Array.isArray(s.type) ? s.type : [s.type];
    for (const t of list) if (!TYPES.includes(t as JsonType)) this.fail(path, `unknown type ${show(t)}`);
    return new Set(list as JsonType[]);
  }

  private typed(s: Record<string, unknown>, path: string): string {
    let types = this.types(s, path);
    if (types === null) {
      // No type: the keywords present say which types they constrain; with none, any JSON value.
      const implied = new Set(Object.keys(s).filter((k) => Object.hasOwn(KEYWORDS_OF, k)).map((k) => KEYWORDS_OF[k]));
      if (implied.size === 0) return this.builtin("json-value");
      types = implied.has("number") ? new Set([...implied, "number" as JsonType]) : implied;
    }
    if (types.has("number")) types.delete("integer");
    const alts: string[] = [];
    for (const t of TYPES) {
      if (!types.has(t)) continue;
      if (t === "null") alts.push('"null"');
      else if (t === "boolean") alts.push('( "true" | "false" )');
      else if (t === "string") alts.push(this.string(s, path));
      else if (t === "integer") alts.push(this.integer(s, path));
      else if (t === "number") alts.push(this.number(s, path));
      else if (t === "object") alts.push(this.object(s, path));
      else alts.push(this.array(s, path));
    }
    if (alts.length === 0) this.empty(path, "type is an empty list");
    return alts.length === 1 ? alts[0] : `( ${alts.join(" | ")} )`;
  }

  private count(s: Record<string, unknown>, key: string, path: string): number | undefined {
    const v = s[key];
    if (v === undefined) return undefined;
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0) this.fail(path, `${key} must be an integer >= 0, got ${show(v)}`);
    return v;
  }

  private string(s: Record<string, unknown>, path: string): string {
    const min = this.count(s, "minLength", path) ?? 0;
    const max = this.count(s, "maxLength", path);
    if (max !== undefined && max < min) this.empty(path, `maxLength ${max} is below minLength ${min}`);
    const hasLength = s.minLength !== undefined || s.maxLength !== undefined;
    if (s.format !== undefined) {
      const f = s.format;
      if (typeof f !== "string" || !Object.hasOwn(FORMATS, f)) this.fail(path, `format ${show(f)} is not supported (${Object.keys(FORMATS).join(", ")} are)`);
      if (s.pattern !== undefined || hasLength) this.fail(path, "format together with pattern, minLength or maxLength is not supported");
      return `"\\"" ${this.rule(`format-${f}`, FORMATS[f])} "\\""`;
    }
    if (s.pattern !== undefined) {
      if (typeof s.pattern !== "string") this.fail(path, `pattern must be a string, got ${show(s.pattern)}`);
      if (hasLength) this.fail(path, "pattern together with minLength or maxLength is not supported");
      try {
        return `"\\"" ${this.rule("pattern", patternToGbnf(s.pattern))} "\\""`;
      } catch (err) {
        if (err instanceof GrammarError) this.fail(path, err.message);
        throw err;
      }
    }
    if (!hasLength) return this.builtin("json-string");
    const reps = max === undefined ? (min === 0 ? "*" : `{${min},}`) : `{${min},${max}}`;
    return `"\\"" ${JSON_CHAR}${reps} "\\""`;
  }

  /** An integer bound of the schema (exclusive ones moved inside), or null when absent. */
  private bound(s: Record<string, unknown>, side: "min" | "max", path: string, integers: boolean): bigint | null {
    const inclusive = s[side === "min" ? "minimum" : "maximum"];
    const exclusive = s[side === "min" ? "exclusiveMinimum" : "exclusiveMaximum"];
    let best: bigint | null = null;
    for (const [v, excl] of [[inclusive, false], [exclusive, true]] as const) {
      if (v === undefined) continue;
      if (typeof v !== "number") this.fail(path, `${side === "min" ? "minimum" : "maximum"} must be a number, got ${show(v)}`);
      if (!integers && (!Number.isInteger(v) || excl)) this.fail(path, `${excl ? "exclusive bounds" : "non-integer bounds"} on a number are not supported (inclusive integer minimum/maximum are, and any bound on an integer)`);
      if (Math.abs(v) > 1e15) this.fail(path, `bound ${v} is beyond ${MAX_INT_DIGITS} digits`);
      let b = BigInt(side === "min" ? Math.ceil(v) : Math.floor(v));
      if (excl && Number.isInteger(v)) b += side === "min" ? 1n : -1n;
      if (best === null || (side === "min" ? b > best : b < best)) best = b;
    }
    return best;
  }

  private integer(s: Record<string, unknown>, path: string): string {
    this.noMultipleOf(s, path);
    const lo = this.bound(s, "min", path, true);
    const hi = this.bound(s, "max", path, true);
    if (lo === null && hi === null) return this.builtin("json-integer");
    const range = intRange(lo, hi);
    if (range === null) this.empty(path, "minimum is above maximum");
    return this.rule("integer", range);
  }

  private number(s: Record<string, unknown>, path: string): string {
    this.noMultipleOf(s, path);
    const lo = this.bound(s, "min", path, false);
    const hi = this.bound(s, "max", path, false);
    if (lo === null && hi === null) return this.builtin("json-number");
    // Integer bounds: the integer part in range with any fraction, except at the top of each sign's range,
    // where only zeros may follow. No exponent.
    if (lo !== null && hi !== null && lo > hi) this.empty(path, "minimum is above maximum");
    const zeros = `( "." "0"{1,${MAX_INT_DIGITS}} )?`;
    const parts: string[] = [];
    const top = hi ?? 10n ** BigInt(MAX_INT_DIGITS) - 1n;
    const bottom = lo ?? -(10n ** BigInt(MAX_INT_DIGITS) - 1n);
    if (top >= 0n) {
      const from = bottom > 0n ? bottom : 0n;
      if (from <= top - 1n) parts.push(`( ${intRange(from, top - 1n)} ) ${FRACTION}?`);
      parts.push(`"${top}" ${zeros}`);
    }
    if (bottom < 0n) {
      // -x with x in [max(0, -top), -bottom]: magnitude's integer part below -bottom takes any fraction.
      const magLo = top < 0n ? -top : 0n;
      const inner: string[] = [];
      if (magLo <= -bottom - 1n) inner.push(`( ${intRange(magLo, -bottom - 1n)} ) ${FRACTION}?`);
      inner.push(`"${-bottom}" ${zeros}`);
      parts.push(`"-" ( ${inner.join(" | ")} )`);
    }
    return this.rule("number", parts.join(" | "));
  }

  private noMultipleOf(s: Record<string, unknown>, path: string): void {
    if (s.multipleOf !== undefined) this.fail(path, 'keyword "multipleOf" is not supported');
  }

  private object(s: Record<string, unknown>, path: string): string {
    const props = s.properties ?? {};
    if (!isObject(props)) this.fail(path, `properties must be an object, got ${show(props)}`);
    const required = s.required ?? [];
    if (!Array.isArray(required) || required.some((r) => typeof r !== "string")) this.fail(path, `required must be a list of property names, got ${show(required)}`);
    const names = Object.keys(props);
    for (const r of required as string[]) if (!names.includes(r)) names.push(r);
    const requiredSet = new Set(required as string[]);
    const declared = names.filter((n) => !(props[n] === false && !requiredSet.has(n)));
    for (const n of declared) if (props[n] === false) this.empty(`${path}/properties/${n}`, "a required property's schema is false");
    let additional: Schema | undefined = s.additionalProperties as Schema | undefined;
    if (additional !== undefined && typeof additional !== "boolean" && !isObject(additional)) this.fail(path, "additionalProperties must be a schema");
    if (s.unevaluatedProperties !== undefined && s.unevaluatedProperties !== false) this.fail(path, 'keyword "unevaluatedProperties" is supported only as false');
    // No additionalProperties: none are generated when properties are declared (the output still
    // validates), any members when none are (so {"type": "object"} is any object).
    if (additional === undefined) additional = Object.keys(props).length === 0 && requiredSet.size === 0 && s.unevaluatedProperties === undefined;
    const minP = this.count(s, "minProperties", path);
    const maxP = this.count(s, "maxProperties", path);
    if (minP !== undefined && minP > requiredSet.size) this.fail(path, `minProperties ${minP} is supported only when the required properties (${requiredSet.size}) already satisfy it`);
    if (maxP !== undefined && (additional !== false || declared.length > maxP)) this.fail(path, `maxProperties ${maxP} is supported only when the declared properties already satisfy it (additionalProperties false)`);

    const kv = declared.map((n) => {
      const value = this.visit(props[n] === undefined ? true : (props[n] as Schema), `${path}/properties/${n}`);
      return this.rule(`${path.split("/").pop()}-${n}-kv`, `${literal(JSON.stringify(n))} ws ":" ws ${value} ws`);
    });
    this.builtin("ws");
    let akv: string | null = null;
    if (additional !== false) {
      const value = this.visit(additional, `${path}/additionalProperties`);
      akv = this.rule(`${path.split("/").pop()}-additional-kv`, `${this.keyExcept(declared)} ws ":" ws ${value} ws`);
    }
    const n = declared.length;
    const restAdditional = akv === null ? "" : ` ( "," ws ${akv} )*`;
    // rest[i]: the members from i on when one was written before (each led by a comma).
    const rest: string[] = new Array(n + 1);
    rest[n] = restAdditional.trim() === "" ? '""' : restAdditional.trim();
    for (let i = n - 1; i >= 0; i--) {
      const member = `"," ws ${kv[i]}`;
      const body = `${requiredSet.has(declared[i]) ? member : `( ${member} )?`} ${rest[i + 1]}`;
      rest[i] = i === n - 1 ? body : this.rule(`${path.split("/").pop()}-rest`, body);
    }
    // first[i]: the members from i on when none was written yet.
    let first = akv === null ? '""' : `( ${akv}${restAdditional} )?`;
    for (let i = n - 1; i >= 0; i--) {
      const withThis = `${kv[i]} ${rest[i + 1]}`;
      first = requiredSet.has(declared[i]) ? withThis : this.rule(`${path.split("/").pop()}-first`, `${withThis} | ${first}`);
    }
    return `"{" ws ${first} "}"`;
  }

  /** A JSON object key other than the declared names (written without escapes, so it reads as it is written). */
  private keyExcept(names: string[]): string {
    const plain = "[^\"\\\\\\x00-\\x1F]";
    if (names.length === 0) return this.builtin("json-string");
    // A trie of the names: at each node, the key may end (unless a name ends there), or go on with a
    // character leading to a child, or with any other character and then anything.
    interface Node {
      end: boolean;
      children: Map<string, Node>;
    }
    const root: Node = { end: false, children: new Map() };
    for (const name of names) {
      let at = root;
      for (const ch of name) {
        let child = at.children.get(ch);
        if (!child) at.children.set(ch, (child = { end: false, children: new Map() }));
        at = child;
      }
      at.end = true;
    }
    const tail = `${plain}*`;
    const build = (node: Node): string => {
      const alts: string[] = [];
      if (!node.end) alts.push('""');
      for (const [ch, child] of node.children) alts.push(`${literal(ch)} ${build(child)}`);
      const others = [...node.children.keys()].map((c) => c.codePointAt(0) as number);
      // Any plain character but the children's.
      const excluded = [0x22, 0x5c, ...others].sort((a, b) => a - b);
      let cls = "[^\\x00-\\x1F";
      for (const cp of excluded) cls += cp < 0x80 ? "\\x" + cp.toString(16).padStart(2, "0") : String.fromCodePoint(cp);
      cls += "]";
      alts.push(`${cls} ${tail}`);
      return `( ${alts.join(" | ")} )`;
    };
    return this.rule("other-key", `"\\"" ${build(root)} "\\""`);
  }

  private array(s: Record<string, unknown>, path: string): string {
    let prefix: Schema[] = [];
    let items: Schema | undefined = s.items as Schema | undefined;
    if (Array.isArray(s.prefixItems)) prefix = s.prefixItems as Schema[];
    else if (s.prefixItems !== undefined) this.fail(path, "prefixItems must be a list of schemas");
    if (Array.isArray(items)) {
      // Draft 7's tuple form: items as a list, additionalItems for the rest.
      prefix = items as Schema[];
      items = s.additionalItems as Schema | undefined;
    } else if (s.additionalItems !== undefined) {
      this.fail(path, "additionalItems is only meaningful with a list in items");
    }
    if (s.uniqueItems === true && (this.count(s, "maxItems", path) ?? 2) > 1) this.fail(path, 'keyword "uniqueItems" is not supported (beyond maxItems 1)');
    const min = this.count(s, "minItems", path) ?? 0;
    let max = this.count(s, "maxItems", path) ?? Infinity;
    if (max < min) this.empty(path, `maxItems ${max} is below minItems ${min}`);
    // After the prefix: items' schema; absent means anything is allowed, but only as many as minItems needs.
    const restSchema: Schema | false = items === undefined ? (min > prefix.length ? true : false) : items;
    if (restSchema === false) max = Math.min(max, prefix.length);
    if (min > max) this.empty(path, `minItems ${min} needs more items than the schema allows`);
    const elems = prefix.slice(0, Math.min(prefix.length, max === Infinity ? prefix.length : max)).map((p, i) => this.visit(p, `${path}/prefixItems/${i}`));
    const restValue = restSchema === false ? null : this.visit(restSchema, `${path}/items`);
    this.builtin("ws");
    // Element i (0-based) is prefix i or the rest schema; the first has no comma.
    const elemAt = (i: number) => (i < elems.length ? elems[i] : (restValue as string));
    const tail = (i: number): string => {
      // Elements i.. given i written so far.
      if (i >= max) return "";
      if (i >= elems.length) {
        if (restValue === null) return "";
        const lo = Math.max(0, min - i);
        const hi = max === Infinity ? "" : String(max - i);
        return `( "," ws ${restValue} ws ){${lo},${hi}}`;
      }
      const member = `"," ws ${elemAt(i)} ws ${tail(i + 1)}`;
      return i < min ? member : `( ${member} )?`;
    };
    if (max === 0) return `"[" ws "]"`;
    const firstMember = `${elemAt(0)} ws ${tail(1)}`;
    return `"[" ws ${min > 0 ? firstMember : `( ${firstMember} )?`} "]"`;
  }

  /** oneOf must not let two branches match the same value; refused unless their types, or a const/enum discriminator, keep them apart. */
  private checkDisjoint(options: Schema[], path: string): void {
    const typeSets = options.map((o) => (typeof o === "boolean" ? null : this.branchTypes(o)));
    const pairwise = (ok: (i: number, j: number) => boolean) => options.every((_, i) => options.every((_, j) => i >= j || ok(i, j)));
    const disjointTypes = pairwise((i, j) => {
      const a = typeSets[i];
      const b = typeSets[j];
      if (a === null || b === null) return false;
      const num = (t: Set<JsonType>) => t.has("number") || t.has("integer");
      return ![...a].some((t) => b.has(t)) && !(num(a) && num(b));
    });
    if (disjointTypes) return;
    // Objects told apart by a required property with different constant values.
    const discriminators = options.map((o) => {
      const out = new Map<string, Set<string>>();
      if (typeof o === "boolean" || !isObject(o.properties) || !Array.isArray(o.required)) return out;
      for (const [k, v] of Object.entries(o.properties)) {
        if (!(o.required as unknown[]).includes(k) || !isObject(v)) continue;
        if (v.const !== undefined) out.set(k, new Set([canonical(v.const)]));
        else if (Array.isArray(v.enum)) out.set(k, new Set(v.enum.map(canonical)));
      }
      return out;
    });
    const ok = pairwise((i, j) => [...discriminators[i]].some(([k, vals]) => discriminators[j].has(k) && ![...vals].some((v) => (discriminators[j].get(k) as Set<string>).has(v))));
    if (!ok) this.fail(path, "oneOf branches that can match the same value are not supported (use anyOf, or tell them apart by type or by a required property with const values)");
  }

  private branchTypes(o: Record<string, unknown>): Set<JsonType> | null {
    if (o.const !== undefined) return new Set([typeOfValue(o.const)]);
    if (Array.isArray(o.enum)) return new Set(o.enum.map(typeOfValue));
    if (o.type === undefined) return null;
    return new Set((Array.isArray(o.type) ? o.type : [o.type]) as JsonType[]);
  }

  /** allOf of two schemas as one, where each keyword can be combined; refused where not. */
  private merge(a: Schema, b: Schema, path: string): Schema {
    if (a === true) return b;
    if (b === true) return a;
    if (a === false || b === false) return false;
    a = this.deref(a, path);
    b = this.deref(b, path);
    if (typeof a === "boolean" || typeof b === "boolean") return this.merge(a, b, path);
    const out: Record<string, unknown> = { ...a };
    for (const [k, v] of Object.entries(b)) {
      if (!(k in out) || ANNOTATIONS.has(k)) {
        if (!(k in out)) out[k] = v;
        continue;
      }
      const u = out[k];
      if (canonical(u) === canonical(v)) continue;
      switch (k) {
        case "type": {
          const ta = new Set(Array.isArray(u) ? u : [u]);
          const tb = new Set(Array.isArray(v) ? v : [v]);
          const both = [...ta].filter((t) => tb.has(t) || (t === "integer" && tb.has("number")));
          for (const t of tb) if (t === "integer" && ta.has("number") && !both.includes("integer")) both.push("integer");
          if (both.length === 0) this.empty(path, "allOf: the types have nothing in common");
          out.type = both;
          break;
        }
        case "properties": {
          const p: Record<string, unknown> = { ...(u as Record<string, unknown>) };
          for (const [name, sub] of Object.entries(v as Record<string, unknown>)) p[name] = name in p ? { allOf: [p[name], sub] } : sub;
          out.properties = p;
          break;
        }
        case "required":
          out.required = [...new Set([...(u as string[]), ...(v as string[])])];
          break;
        case "additionalProperties":
          out.additionalProperties = u === false || v === false ? false : { allOf: [u, v] };
          break;
        case "items":
          out.items = { allOf: [u, v] };
          break;
        case "minimum":
        case "minLength":
        case "minItems":
        case "minProperties":
        case "exclusiveMinimum":
          out[k] = Math.max(u as number, v as number);
          break;
        case "maximum":
        case "maxLength":
        case "maxItems":
        case "maxProperties":
        case "exclusiveMaximum":
          out[k] = Math.min(u as number, v as number);
          break;
        case "enum": {
          const keep = new Set((v as unknown[]).map(canonical));
          out.enum = (u as unknown[]).filter((x) => keep.has(canonical(x)));
          break;
        }
        case "allOf":
          out.allOf = [...(u as unknown[]), ...(v as unknown[])];
          break;
        default:
          this.fail(path, `allOf: keyword "${k}" differs between the schemas and cannot be merged`);
      }
    }
    return out;
  }
}
