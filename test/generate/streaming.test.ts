import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { IncrementalDecoder } from "../../src/generate/detokenizer.js";
import { StopMatcher } from "../../src/generate/stop.js";
import { loadText } from "../../src/node/bundled.js";

const tok = loadText("models/shakespeare-tiny").tokenizer;
const decode = (ids: readonly number[]) => tok.decode(ids, true);

/** Text with plenty of multi-byte characters, which this 1,013-token vocabulary splits into byte tokens. */
const text = fc.string({
  unit: fc.oneof(
    fc.constantFrom("a", "e", " ", "\n", "The", "é", "ß", "€", "中", "文", "😀", "🎭", "ñ", "ü", "—", "…", "👍🏽", "\u00a0"),
    fc.string({ unit: "grapheme", maxLength: 3 }),
  ),
  maxLength: 30,
});

function stream(ids: readonly number[]): string[] {
  const d = new IncrementalDecoder(decode);
  const pieces = ids.map((id) => d.push(id));
  pieces.push(d.flush());
  return pieces;
}

describe("incremental detokenizer", () => {
  it("the vocabulary really splits multi-byte characters across tokens", () => {
    const ids = tok.encode("€😀", false);
    expect(ids.length).toBeGreaterThan(2);
    expect(ids.map((id) => decode([id])).join("")).toContain("\uFFFD");
  });

  it("streams exactly the decoded string and never a broken character", () => {
    fc.assert(
      fc.property(text, (s) => {
        const ids = tok.encode(s, false);
        const pieces = stream(ids);
        expect(pieces.join("")).toBe(decode(ids));
        if (!decode(ids).includes("\uFFFD")) for (const p of pieces) expect(p).not.toContain("\uFFFD");
      }),
      { numRuns: 300, examples: [["€😀 中文"], ["👍🏽👍🏽"]] },
    );
  });

  it("a token sequence that ends mid-character comes out on flush as U+FFFD, as decode gives it", () => {
    const ids = tok.encode("😀", false);
    const cut = ids.slice(0, -1);
    const pieces = stream(cut);
    expect(pieces.slice(0, -1).join("")).toBe("");
    expect(pieces.join("")).toBe(decode(cut));
  });
});

describe("stop strings", () => {
  /**
   * What generation must print. It stops in the piece where a stop string is first complete; of the stop
   * strings found whole in the text up to that piece's end, the earliest-starting one cuts the output
   * (a longer stop string that began earlier but would only complete later never gets the chance).
   */
  function expected(pieces: string[], stops: string[]): { text: string; stopped: boolean } {
    let seen = "";
    for (const p of pieces) {
      seen += p;
      let at = -1;
      for (const t of stops) {
        const i = seen.indexOf(t);
        if (i >= 0 && (at < 0 || i < at)) at = i;
      }
      if (at >= 0) return { text: seen.slice(0, at), stopped: true };
    }
    return { text: seen, stopped: false };
  }

  it("matches across any cut of the text into pieces and never emits the stop string", () => {
    const alphabet = fc.string({ unit: fc.constantFrom("a", "b", "c", "\n", "é"), maxLength: 40 });
    fc.assert(
      fc.property(alphabet, fc.array(fc.string({ unit: fc.constantFrom("a", "b", "\n", "é"), minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 3 }), fc.array(fc.nat(), { maxLength: 10 }), (s, stops, cutsRaw) => {
        const cuts = [...new Set(cutsRaw.map((c) => c % (s.length + 1)))].sort((a, b) => a - b);
        const pieces: string[] = [];
        let prev = 0;
        for (const c of [...cuts, s.length]) {
          pieces.push(s.slice(prev, c));
          prev = c;
        }
        const m = new StopMatcher(stops);
        let out = "";
        let stopped = false;
        for (const p of pieces) {
          const r = m.push(p);
          out += r.text;
          if (r.stopped) {
            stopped = true;
            break;
          }
        }
        if (!stopped) out += m.flush();
        expect({ text: out, stopped }).toEqual(expected(pieces, stops));
      }),
      { numRuns: 500, examples: [["é\n\n", ["\n", "é\n\n"], [2]], ["béa", ["é", "béa", "a"], [2]]] },
    );
  });

  it("holds back only what could still become a stop string", () => {
    const m = new StopMatcher(["\n\nKING"]);
    expect(m.push("Hello\n")).toEqual({ text: "Hello", stopped: false });
    expect(m.push("\nKI")).toEqual({ text: "", stopped: false });
    expect(m.push("TE")).toEqual({ text: "\n\nKITE", stopped: false });
    expect(() => new StopMatcher([""])).toThrow(/must not be empty/);
  });
});
