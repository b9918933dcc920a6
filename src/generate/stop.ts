// User stop strings, matched in the streamed text across token boundaries and never emitted.
//
// Text that could still turn out to be the start of a stop string is held back until the next piece
// decides it; the rest is released at once, so streaming is delayed by at most the longest stop string.

/**
 * The stop strings of an option that may be one string or a list. A lone string is one stop string (JS
 * would otherwise spread "xa" into the stops "x" and "a").
 */
export function stopStrings(stop: string | readonly string[] | undefined): string[] {
  if (stop === undefined) return [];
  const list = typeof stop === "string" ? [stop] : stop;
  if (!Array.isArray(list)) throw new TypeError("stop must be a string or an array of strings");
  for (const s of list) {
    if (typeof s !== "string") throw new TypeError(`stop must be a string or an array of strings, got an element ${JSON.stringify(s)}`);
    if (s.length === 0) throw new RangeError("a stop string must not be empty");
  }
  return [...list];
}

export class StopMatcher {
  private held = "";
  private readonly stops: string[];

  constructor(stops: string | readonly string[]) {
    this.stops = stopStrings(stops);
  }

  /**
   * Takes the next piece of text. Returns the text safe to emit and whether a stop string was found
   * (the text before it is emitted; it and everything after is dropped).
   */
  push(piece: string): { text: string; stopped: boolean } {
    const buf = this.held + piece;
    let at = -1;
    for (const s of this.stops) {
      const i = buf.indexOf(s);
      if (i >= 0 && (at < 0 || i < at)) at = i;
    }
    if (at >= 0) {
      this.held = "";
      return { text: buf.slice(0, at), stopped: true };
    }
    const keep = this.partialSuffix(buf);
    this.held = buf.slice(buf.length - keep);
    return { text: buf.slice(0, buf.length - keep), stopped: false };
  }

  /** Held text, released when generation ends for another reason. */
  flush(): string {
    const t = this.held;
    this.held = "";
    return t;
  }

  /** Length of the longest suffix of `buf` that is a proper prefix of some stop string. */
  private partialSuffix(buf: string): number {
    let best = 0;
    for (const s of this.stops) {
      for (let n = Math.min(s.length - 1, buf.length); n > best; n--) {
        if (buf.endsWith(s.slice(0, n))) {
          best = n;
          break;
        }
      }
    }
    return best;
  }
}
