// The CLI's --json-schema, --grammar-file and --grammar on generate and chat, run as a user runs them.
import { afterAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cli } from "./helpers/cli.js";

const dir = mkdtempSync(join(tmpdir(), "mobilellm-grammar-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const SCHEMA = { type: "object", properties: { name: { type: "string", maxLength: 8 }, n: { type: "integer", minimum: 1, maximum: 9 } }, required: ["name", "n"], additionalProperties: false };

describe("CLI grammar flags", () => {
  it("generate --json-schema (inline and from a file): the new text is JSON of that shape", async () => {
    const file = join(dir, "schema.json");
    writeFileSync(file, JSON.stringify(SCHEMA));
    for (const arg of [JSON.stringify(SCHEMA), file]) {
      const r = await cli("generate", "--prompt", "ROMEO:", "--json-schema", arg, "-n", "60", "--seed", "3");
      expect(r.code, r.stderr).toBe(0);
      const v = JSON.parse(r.stdout.slice("ROMEO:".length)) as { name: string; n: number };
      expect(Object.keys(v)).toEqual(["name", "n"]);
      expect(v.name.length).toBeLessThanOrEqual(8);
      expect(v.n >= 1 && v.n <= 9).toBe(true);
    }
  });

  it("generate --grammar-file and --grammar (GBNF): arithmetic that evaluates, a list", async () => {
    const file = join(dir, "arith.gbnf");
    writeFileSync(file, 'root ::= expr\nexpr ::= term (("+" | "-") term)*\nterm ::= [1-9] [0-9]? | "(" expr ")"\n');
    const r = await cli("generate", "--prompt", "Q:", "--grammar-file", file, "-n", "24", "--seed", "1");
    expect(r.code, r.stderr).toBe(0);
    const expr = r.stdout.slice(2).trimEnd();
    expect(expr).toMatch(/^[0-9()+-]+$/);
    expect(Number.isFinite(Function(`return (${expr})`)() as number)).toBe(true);
    const list = await cli("generate", "--prompt", "Q:", "--grammar", 'root ::= "[" [a-z]+ ("," [a-z]+){2} "]"', "-n", "30", "--seed", "2");
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout.slice(2).trimEnd()).toMatch(/^\[[a-z]+(,[a-z]+){2}\]$/);
  });

  it("chat --json-schema: each answer is JSON of the schema", async () => {
    const r = await cli({ input: "who are you?\nand now?\n" }, "chat", "--json-schema", JSON.stringify(SCHEMA), "-n", "60", "--seed", "4", "--quiet");
    expect(r.code, r.stderr).toBe(0);
    // Each answer is an object (which may hold newlines between its tokens) and a line end.
    const answers = r.stdout.split(/(?<=\})\n/).filter((l) => l.trim() !== "");
    expect(answers).toHaveLength(2);
    for (const a of answers) expect(Object.keys(JSON.parse(a) as object)).toEqual(["name", "n"]);
  });

  it("refuses before loading the model: one line, the keyword named; two grammars at once is a usage error", async () => {
    const bad = await cli("generate", "--prompt", "x", "--json-schema", '{"type":"string","not":{}}');
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim()).toBe('mobilellm generate: JSON Schema at #: keyword "not" is not supported (it cannot be enforced while generating)');
    const rec = await cli("generate", "--prompt", "x", "--grammar", 'root ::= root "a" | "b"');
    expect(rec.code).toBe(1);
    expect(rec.stderr).toMatch(/left recursion/);
    const two = await cli("generate", "--prompt", "x", "--grammar", 'root ::= "a"', "--json-schema", "{}");
    expect(two.code).toBe(2);
    const json = await cli("generate", "--prompt", "x", "--json-schema", "{nope");
    expect(json.code).toBe(2);
    expect(json.stderr).toMatch(/--json-schema is not valid JSON/);
    const missing = await cli("generate", "--prompt", "x", "--grammar-file", join(dir, "missing.gbnf"));
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/cannot read --grammar-file .*ENOENT/);
  });
});
