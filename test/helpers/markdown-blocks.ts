// The fenced code blocks of the README and docs/*.md, for the tests that run them (test/doc-samples.test.ts,
// the snippets in test/e2e/package.test.ts).
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

export interface FencedBlock {
  /** The Markdown file, relative to the repository ("README.md", "docs/gguf.md"). */
  file: string;
  /** 1-based line of the opening fence. */
  line: number;
  /** The info string's first word ("console", "ts", "js"...), "" for a bare fence. */
  lang: string;
  /** The info string's other words ("timings", "needs=FILE"). */
  options: string[];
  /** The lines between the fences, joined with "\n". */
  body: string;
}

/** The Markdown files whose blocks are checked: README.md and docs/*.md. */
export function docFiles(): string[] {
  return ["README.md", ...readdirSync("docs").filter((f) => f.endsWith(".md")).sort().map((f) => join("docs", f))];
}

/** Every fenced block of `file` (``` or ~~~ fences, at the start of a line), in order. */
export function fencedBlocks(file: string): FencedBlock[] {
  const lines = readFileSync(file, "utf8").split("\n");
  const blocks: FencedBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(`{3,}|~{3,})\s*(.*)$/.exec(lines[i]);
    if (!open) continue;
    const [lang = "", ...options] = open[2].trim().split(/\s+/).filter((w) => w.length > 0);
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !lines[i].startsWith(open[1]); i++) body.push(lines[i]);
    if (i === lines.length) throw new Error(`${file}:${start + 1}: a fence that is never closed`);
    blocks.push({ file, line: start + 1, lang, options, body: body.join("\n") });
  }
  return blocks;
}
