// --json-schema, --grammar-file and --grammar (llama-cli's names): the output constrained to a JSON Schema
// or a GBNF grammar, for `generate` and `chat`. The grammar is checked before the model loads, so a
// refused schema costs no load time.
import { readFileSync } from "node:fs";
import { checkGrammarSpec, type GrammarSpec } from "../api.js";
import { UsageError, type Options, type Values } from "./args.js";

export const GRAMMAR_FLAGS = {
  "json-schema": { type: "string" },
  "grammar-file": { type: "string" },
  grammar: { type: "string" },
} as const satisfies Options;

export const GRAMMAR_HELP = `  --json-schema S    the output is JSON valid against the JSON Schema S (inline JSON, or a file holding it)
  --grammar-file F   the output follows the GBNF grammar in file F (llama.cpp's format, rule "root")
  --grammar TEXT     the output follows the GBNF grammar TEXT`;

function readText(path: string, flag: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    throw new UsageError(`cannot read --${flag} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** The grammar the flags ask for (at most one of them), checked; undefined without one. */
export function grammarOption(v: Values): GrammarSpec | undefined {
  const given = Object.keys(GRAMMAR_FLAGS).filter((k) => v[k] !== undefined);
  if (given.length > 1) throw new UsageError(`--${given[0]} and --${given[1]} cannot be used together`);
  let spec: GrammarSpec;
  if (v["json-schema"] !== undefined) {
    const arg = v["json-schema"] as string;
    // Inline JSON when it looks like JSON, else a file.
    const text = /^\s*[{[]|^\s*(true|false)\s*$/.test(arg) ? arg : readText(arg, "json-schema");
    let schema: unknown;
    try {
      schema = JSON.parse(text);
    } catch (err) {
      throw new UsageError(`--json-schema is not valid JSON: ${(err as Error).message.split("\n")[0]}`);
    }
    spec = { jsonSchema: schema };
  } else if (v["grammar-file"] !== undefined) {
    spec = { gbnf: readText(v["grammar-file"] as string, "grammar-file") };
  } else if (v.grammar !== undefined) {
    spec = { gbnf: v.grammar as string };
  } else {
    return undefined;
  }
  checkGrammarSpec(spec);
  return spec;
}
