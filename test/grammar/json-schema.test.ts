// JSON Schema -> grammar, checked against ajv (with ajv-formats) as the independent validator: the model's
// outputs for random schemas, and each keyword's language probed text by text.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import { Ajv2020 } from "ajv/dist/2020.js";
import formatsPlugin from "ajv-formats";
import { loadModel, type Model } from "../../src/api.js";
import { jsonSchemaToGbnf } from "../../src/grammar/json-schema.js";
import { GrammarError } from "../../src/grammar/ast.js";
import { responseFormatGrammar } from "../../src/grammar/response-format.js";
import { compile, expectGrammarError, language } from "../helpers/grammar.js";

// JSON Schema 2020-12 (prefixItems, $defs), the draft the converter follows.
const ajv = new Ajv2020({ strict: false, allErrors: false });
// ajv-formats is CommonJS: its default export arrives as the module or as its .default, by loader.
const addFormats = ((formatsPlugin as unknown as { default?: unknown }).default ?? formatsPlugin) as (a: Ajv2020) => void;
addFormats(ajv);
const valid = (schema: unknown, value: unknown) => ajv.validate(schema as object, value);
const schemaLanguage = (schema: unknown) => language(jsonSchemaToGbnf(schema));

// ---- random schemas of the supported keywords ---------------------------------------------------------

const key = fc.constantFrom("id", "name", "tags", "a", "b", "x y", 'q"t', "é");
const leaf: fc.Arbitrary<Record<string, unknown>> = fc.oneof(
  fc.constant({ type: "string" }),
  fc.integer({ min: 0, max: 6 }).chain((min) => fc.integer({ min, max: min + 6 }).map((max) => ({ type: "string", minLength: min, maxLength: max }))),
  fc.constantFrom("date", "time", "date-time", "uuid").map((format) => ({ type: "string", format })),
  fc.constantFrom("^[a-z]{2,4}$", "^\\d{3}-\\d{2}$", "^(cat|dog)s?$", "ab", "^[A-Z][a-z]*( [A-Z][a-z]*)?$").map((pattern) => ({ type: "string", pattern })),
  fc.constant({ type: "integer" }),
  fc.tuple(fc.integer({ min: -120, max: 120 }), fc.integer({ min: 0, max: 300 })).map(([lo, w]) => ({ type: "integer", minimum: lo, maximum: lo + w })),
  fc.integer({ min: -50, max: 50 }).map((lo) => ({ type: "integer", exclusiveMinimum: lo })),
  fc.constant({ type: "number" }),
  fc.tuple(fc.integer({ min: -20, max: 20 }), fc.integer({ min: 0, max: 30 })).map(([lo, w]) => ({ type: "number", minimum: lo, maximum: lo + w })),
  fc.constant({ type: "boolean" }),
  fc.constant({ type: "null" }),
  fc.constant({ type: ["string", "null"] }),
  fc.uniqueArray(fc.oneof(fc.string({ maxLength: 5 }), fc.integer({ min: -9, max: 99 }), fc.boolean(), fc.constant(null)), { minLength: 1, maxLength: 4 }).map((e) => ({ enum: e })),
  fc.oneof(fc.string({ maxLength: 6 }), fc.integer(), fc.constant({ k: [1, "two"] })).map((c) => ({ const: c })),
);
const schemaArb: fc.Arbitrary<Record<string, unknown>> = fc.letrec((tie) => ({
  schema: fc.oneof({ depthSize: "small", withCrossShrink: true }, leaf, tie("object"), tie("array"), tie("anyOf")),
  object: fc
    .tuple(fc.dictionary(key, tie("schema") as fc.Arbitrary<Record<string, unknown>>, { maxKeys: 3 }), fc.boolean(), fc.constantFrom(undefined, false, true, { type: "integer" }))
    .chain(([properties, allRequired, additional]) => {
      const names = Object.keys(properties);
      return fc.subarray(names).map((req) => {
        const s: Record<string, unknown> = { type: "object", properties, required: allRequired ? names : req };
        if (additional !== undefined) s.additionalProperties = additional;
        return s;
      });
    }),
  array: fc.tuple(tie("schema") as fc.Arbitrary<Record<string, unknown>>, fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 3 }), fc.option(fc.array(leaf, { maxLength: 2 }), { nil: undefined })).map(([items, min, extra, prefix]) => {
    const s: Record<string, unknown> = { type: "array", items, minItems: min, maxItems: min + extra };
    if (prefix !== undefined && prefix.length > 0) s.prefixItems = prefix;
    return s;
  }),
  anyOf: fc.array(tie("schema") as fc.Arbitrary<Record<string, unknown>>, { minLength: 1, maxLength: 3 }).map((anyOf) => ({ anyOf })),
})).schema as fc.Arbitrary<Record<string, unknown>>;

describe("random schemas on the bundled model: every output parses and validates (ajv), and ends", () => {
  let model: Model;
  beforeAll(async () => {
    model = await loadModel(undefined, { contextLength: 512 });
  });
  afterAll(async () => {
    await model.dispose();
  });

  it("random schemas x seeds", async () => {
    await fc.assert(
      fc.asyncProperty(schemaArb, fc.integer({ min: 0, max: 2 ** 31 }), fc.constantFrom(0, 0.8, 1.5), async (schema, seed, temperature) => {
        const r = await model.generate("ROMEO:", { grammar: { jsonSchema: schema }, seed, temperature, maxNewTokens: 200 }).result;
        expect(r.stopReason, r.text).toBe("eos");
        const value = JSON.parse(r.text) as unknown;
        expect(valid(schema, value), `${JSON.stringify(schema)}\n${r.text}\n${ajv.errorsText()}`).toBe(true);
      }),
      { numRuns: Number(process.env.SCHEMA_RUNS ?? 40) },
    );
  });

  it("a $defs / $ref recursive schema (a tree) with allOf, through chat too", async () => {
    const schema = {
      $defs: { node: { type: "object", properties: { v: { type: "integer", minimum: 0, maximum: 9 }, kids: { type: "array", items: { $ref: "#/$defs/node" }, maxItems: 2 } }, required: ["v"] } },
      allOf: [{ $ref: "#/$defs/node" }, { type: "object", properties: { label: { type: "string", maxLength: 4 } }, required: ["label"] }],
    };
    for (const seed of [1, 2, 3, 4]) {
      const r = await model.chat([{ role: "user", content: "a tree" }], { grammar: { jsonSchema: schema }, seed, maxNewTokens: 150 }).result;
      expect(r.stopReason).toBe("eos");
      expect(valid(schema, JSON.parse(r.text)), r.text).toBe(true);
    }
  });

  it("json_object (response_format) is any JSON object", async () => {
    const spec = responseFormatGrammar({ type: "json_object" });
    for (const seed of [5, 6, 7]) {
      const r = await model.generate("ROMEO:", { grammar: spec!, seed, maxNewTokens: 80 }).result;
      const v = JSON.parse(r.text) as unknown;
      expect(typeof v === "object" && v !== null && !Array.isArray(v), r.text).toBe(true);
    }
  });

  it("refuses a bad grammar before generating, with the model still usable", () => {
    expect(() => model.generate("x", { grammar: { jsonSchema: { type: "string", not: {} } } })).toThrow(/keyword "not"/);
    expect(() => model.generate("x", { grammar: { gbnf: "root ::= " + '"'.repeat(1) } })).toThrow(GrammarError);
  });
});

// ---- each keyword's language, text by text ---------------------------------------------------------------

describe("keywords: the grammar accepts a text exactly when ajv validates it (or a stated subset)", () => {
  it("integer minimum / maximum / exclusive bounds: exactly the integers in range, written as JSON writes them", () => {
    fc.assert(
      fc.property(fc.integer({ min: -2000, max: 2000 }), fc.integer({ min: 0, max: 3000 }), fc.boolean(), (lo, w, exclusive) => {
        const schema = exclusive ? { type: "integer", exclusiveMinimum: lo, exclusiveMaximum: lo + w } : { type: "integer", minimum: lo, maximum: lo + w };
        if (exclusive && w < 2) return;
        const L = schemaLanguage(schema);
        for (let k = 0; k < 40; k++) {
          const n = lo - 20 + Math.floor(((k * 7919) % 1000) / 1000 * (w + 40));
          expect(L(String(n)), `${n} in ${JSON.stringify(schema)}`).toBe(valid(schema, n));
        }
        for (const n of [lo, lo + w, lo - 1, lo + w + 1]) expect(L(String(n)), `${n} in ${JSON.stringify(schema)}`).toBe(valid(schema, n));
        expect(L("-0")).toBe(false);
        expect(L(`0${Math.abs(lo) + 1}`)).toBe(false);
      }),
      { numRuns: 40 },
    );
    const L = schemaLanguage({ type: "integer", minimum: 5 });
    expect(L("5")).toBe(true);
    expect(L("999999999999999")).toBe(true);
    expect(L("4")).toBe(false);
  });

  it("number with integer bounds: decimals inside, nothing outside", () => {
    const schema = { type: "number", minimum: -3, maximum: 7 };
    const L = schemaLanguage(schema);
    fc.assert(
      fc.property(fc.integer({ min: -60, max: 90 }), fc.integer({ min: 0, max: 999 }), (i, f) => {
        const text = `${i < 0 ? "-" : ""}${Math.abs(i) / 10 | 0}.${String(f).padStart(3, "0")}`.replace(/^-0\.000$/, "-0.000");
        expect(L(text), text).toBe(valid(schema, JSON.parse(text)));
      }),
      { numRuns: 300 },
    );
    for (const t of ["7", "7.000", "-3", "-3.0", "0", "6.999"]) expect(L(t), t).toBe(true);
    for (const t of ["7.001", "-3.5", "8", "1e2"]) expect(L(t), t).toBe(false);
  });

  it("formats: dates exactly (days per month, leap years); times, date-times, uuids only valid ones", () => {
    const date = schemaLanguage({ type: "string", format: "date" });
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 9999 }), fc.integer({ min: 0, max: 13 }), fc.integer({ min: 0, max: 32 }), (y, m, d) => {
        const text = `${String(y).padStart(4, "0")}-${String(m).padStart(2, "0")}-${String(d).padStart(2, "0")}`;
        expect(date(JSON.stringify(text)), text).toBe(valid({ format: "date" }, text));
      }),
      { numRuns: 1500, examples: [[2000, 2, 29], [1900, 2, 29], [2024, 2, 29], [2023, 2, 29], [0, 2, 29], [2023, 4, 31]] },
    );
    const sound = (format: string, texts: fc.Arbitrary<string>) => {
      const L = schemaLanguage({ type: "string", format });
      fc.assert(
        fc.property(texts, (t) => {
          if (L(JSON.stringify(t))) expect(valid({ format }, t), t).toBe(true);
        }),
        { numRuns: 500 },
      );
      return L;
    };
    const d2 = (max: number) => fc.integer({ min: 0, max }).map((n) => String(n).padStart(2, "0"));
    const time = fc.tuple(d2(25), d2(61), d2(61), fc.constantFrom("", ".5", ".123456"), fc.constantFrom("Z", "z", "+05:30", "-24:00", "", "+1")).map(([h, m, s, f, z]) => `${h}:${m}:${s}${f}${z}`);
    const T = sound("time", time);
    for (const t of ["00:00:00Z", "23:59:59.999+14:00", "12:30:00-05:00"]) expect(T(JSON.stringify(t)), t).toBe(true);
    const DT = sound("date-time", fc.tuple(fc.constantFrom("2024-02-29", "2023-02-29", "1999-12-31"), fc.constantFrom("T", "t", " "), time).map((p) => p.join("")));
    expect(DT('"2024-02-29T10:00:00Z"')).toBe(true);
    const U = sound("uuid", fc.oneof(fc.uuid(), fc.string({ maxLength: 40 })));
    expect(U('"123e4567-e89b-12d3-a456-426614174000"')).toBe(true);
  });

  it("pattern: a string matches exactly when the regular expression finds a match", () => {
    const patterns = ["^[a-c]{2,3}$", "b+", "^(ab|c)*d?$", "^\\d{2}-\\d$", "^[^a]\\w*$", "a.c", "^\\s?x$", '^"q\\\\$', "^(?:x|y)z{1,2}$", "^[\\u00e0-\\u00ff]+$", "\\."];
    for (const p of patterns) {
      const L = schemaLanguage({ type: "string", pattern: p });
      const re = new RegExp(p, "u");
      fc.assert(
        fc.property(fc.string({ unit: fc.constantFrom("a", "b", "c", "d", "x", "y", "z", "1", "2", "-", " ", "\n", '"', "\\", ".", "é", "_"), maxLength: 6 }), (s) => {
          expect(L(JSON.stringify(s)), `${p} on ${JSON.stringify(s)}`).toBe(re.test(s));
        }),
        { numRuns: 300 },
      );
    }
  });

  it("minLength / maxLength count characters (code points), escapes included", () => {
    const schema = { type: "string", minLength: 2, maxLength: 3 };
    const L = schemaLanguage(schema);
    fc.assert(
      fc.property(fc.string({ unit: "grapheme-composite", maxLength: 5 }), (s) => {
        expect(L(JSON.stringify(s)), JSON.stringify(s)).toBe(valid(schema, s));
      }),
      { numRuns: 300 },
    );
    expect(L('"\\u0041\\n"')).toBe(true);
    expect(L('"\\ud83d\\ude00"')).toBe(false); // surrogate escapes are never written
  });

  it("objects: required, optional in order, additionalProperties never a declared name", () => {
    const schema = { type: "object", properties: { a: { type: "integer" }, b: { type: "boolean" } }, required: ["b"], additionalProperties: { type: "null" } };
    const L = schemaLanguage(schema);
    for (const t of ['{"b":true}', '{"a":1,"b":false}', '{"b":true,"c":null}', '{ "a" : 1 , "b" : true , "ab" : null }']) expect(L(t), t).toBe(true);
    for (const t of ['{"a":1}', '{"b":true,"a":null}', '{"b":true,"b":null}', '{"b":1}', "{}"]) expect(L(t), t).toBe(false);
    const any = schemaLanguage({ type: "object" });
    expect(any('{"x":[1,{"y":null}],"z":"w"}')).toBe(true);
    expect(any("[]")).toBe(false);
  });

  it("arrays: prefixItems, items, minItems / maxItems", () => {
    const schema = { type: "array", prefixItems: [{ type: "string" }, { type: "integer" }], items: { type: "boolean" }, minItems: 1, maxItems: 3 };
    const L = schemaLanguage(schema);
    for (const t of ['["a"]', '["a",1]', '["a",1,true]', '[ "a" , 1 ]']) expect(L(t), t).toBe(true);
    for (const t of ["[]", "[1]", '["a",1,true,false]', '["a",true]']) expect(L(t), t).toBe(false);
  });

  it("enum, const, type unions, anyOf, oneOf with a discriminator, allOf merged", () => {
    expect(schemaLanguage({ enum: ["x", 1, null, { k: [true] }] })('{"k":[true]}')).toBe(true);
    expect(schemaLanguage({ const: "a\"b" })(JSON.stringify('a"b'))).toBe(true);
    const u = schemaLanguage({ type: ["integer", "null"] });
    expect(u("null") && u("3") && !u('"3"')).toBe(true);
    const one = schemaLanguage({ oneOf: [{ type: "object", properties: { kind: { const: "a" }, x: { type: "integer" } }, required: ["kind", "x"] }, { type: "object", properties: { kind: { const: "b" } }, required: ["kind"] }] });
    expect(one('{"kind":"a","x":1}') && one('{"kind":"b"}') && !one('{"kind":"c"}')).toBe(true);
    const all = schemaLanguage({ allOf: [{ type: "object", properties: { a: { type: "integer", minimum: 0 } }, required: ["a"] }, { properties: { a: { maximum: 5 } } }] });
    expect(all('{"a":5}') && !all('{"a":6}') && !all('{"a":-1}')).toBe(true);
  });
});

describe("refusals name the keyword, in one line", () => {
  const cases: [unknown, RegExp][] = [
    [{ type: "string", not: { const: "a" } }, /keyword "not"/],
    [{ if: {}, then: {} }, /keyword "if"/],
    [{ type: "integer", multipleOf: 3 }, /keyword "multipleOf"/],
    [{ type: "object", patternProperties: { "^a": {} } }, /keyword "patternProperties"/],
    [{ type: "array", uniqueItems: true }, /keyword "uniqueItems"/],
    [{ type: "array", contains: {} }, /keyword "contains"/],
    [{ type: "object", propertyNames: { maxLength: 3 } }, /keyword "propertyNames"/],
    [{ $ref: "https://example.com/s.json" }, /only local references/],
    [{ $ref: "#/$defs/missing" }, /points to nothing/],
    [{ type: "string", format: "email" }, /format "email" is not supported/],
    [{ type: "string", pattern: "^(?=a)" }, /lookahead/],
    [{ type: "string", pattern: "(a)\\1" }, /backreferences/],
    [{ oneOf: [{ type: "integer" }, { type: "number" }] }, /oneOf branches that can match the same value/],
    [{ type: "number", exclusiveMinimum: 0 }, /exclusive bounds/],
    [{ type: "number", minimum: 0.5 }, /non-integer bounds/],
    [{ allOf: [{ type: "string", pattern: "a" }, { type: "string", pattern: "b" }] }, /"pattern" differs/],
    [{ type: "wat" }, /unknown type/],
    [false, /no value fits/],
    [{ type: "object", properties: { a: false }, required: ["a"] }, /no value fits/],
    [{ type: "string", minLength: 3, maxLength: 2 }, /no value fits/],
  ];
  for (const [schema, re] of cases) {
    it(JSON.stringify(schema), () => expectGrammarError(() => compile(jsonSchemaToGbnf(schema)), re));
  }
});

describe("response_format", () => {
  it("maps OpenAI's three forms and refuses malformed ones", () => {
    expect(responseFormatGrammar(undefined)).toBeNull();
    expect(responseFormatGrammar({ type: "text" })).toBeNull();
    expect(responseFormatGrammar({ type: "json_object" })).toEqual({ jsonSchema: { type: "object" } });
    const schema = { type: "object", properties: { a: { type: "string" } } };
    expect(responseFormatGrammar({ type: "json_schema", json_schema: { name: "x_1", schema, strict: true } })).toEqual({ jsonSchema: schema });
    expect(responseFormatGrammar({ type: "json_schema", json_schema: { name: "x" } })).toEqual({ jsonSchema: true });
    for (const bad of ["json", { type: "xml" }, { type: "json_schema" }, { type: "json_schema", json_schema: { schema } }, { type: "json_schema", json_schema: { name: "a b", schema } }, { type: "json_schema", json_schema: { name: "a", schema: 3 } }]) {
      expect(() => responseFormatGrammar(bad), JSON.stringify(bad)).toThrow(GrammarError);
    }
  });
});
