// OpenAI's `response_format` as a GrammarSpec, for the OpenAI-compatible API and server:
//   { type: "text" }                                    -> null (free text)
//   { type: "json_object" }                             -> any JSON object
//   { type: "json_schema", json_schema: { name, schema, strict?, description? } }
//                                                       -> the schema (without one: any JSON value)
// `strict` changes nothing here: the schema is always enforced, or refused with a GrammarError that
// names the keyword (a 400 for the server). A malformed response_format is a GrammarError too.
import { GrammarError } from "./ast.js";
import type { GrammarSpec } from "./spec.js";

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

export function responseFormatGrammar(format: unknown): GrammarSpec | null {
  if (format === undefined || format === null) return null;
  if (!isObject(format)) throw new GrammarError("response_format must be an object with a type");
  switch (format.type) {
    case "text":
      return null;
    case "json_object":
      return { jsonSchema: { type: "object" } };
    case "json_schema": {
      const js = format.json_schema;
      if (!isObject(js)) throw new GrammarError('response_format.json_schema must be an object { name, schema, strict } when type is "json_schema"');
      if (typeof js.name !== "string" || !/^[A-Za-z0-9_-]{1,64}$/.test(js.name)) {
        throw new GrammarError("response_format.json_schema.name must be 1 to 64 letters, digits, _ or -");
      }
      if (js.strict !== undefined && js.strict !== null && typeof js.strict !== "boolean") throw new GrammarError("response_format.json_schema.strict must be true or false");
      if (js.schema === undefined) return { jsonSchema: true };
      if (!isObject(js.schema) && typeof js.schema !== "boolean") throw new GrammarError("response_format.json_schema.schema must be a JSON Schema object");
      return { jsonSchema: js.schema };
    }
    default:
      throw new GrammarError(`response_format.type must be "text", "json_object" or "json_schema", got ${JSON.stringify(format.type) ?? String(format.type)}`);
  }
}
