// Code point ranges as UTF-8 byte sequences: a character class of a grammar becomes a few alternatives of
// byte ranges, each matching one byte, so the matcher never looks at code points. [a-zé] becomes
// [61-7A] | [C3][A9]; [^"] becomes about ten alternatives, one per run of lead bytes whose continuation
// bytes range the same way. Only valid UTF-8 comes out: no surrogates, no overlong forms.

/** Byte ranges, one per byte of the sequence: [lo0, hi0, lo1, hi1, ...]. */
export type ByteRangeSequence = number[];

function encode(cp: number): number[] {
  if (cp < 0x80) return [cp];
  if (cp < 0x800) return [0xc0 | (cp >> 6), 0x80 | (cp & 0x3f)];
  if (cp < 0x10000) return [0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f)];
  return [0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 0x3f), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f)];
}

/**
 * The byte range sequences that together match exactly the UTF-8 encodings of the code points in
 * [lo, hi] (which must hold no surrogates).
 */
export function utf8Sequences(lo: number, hi: number): ByteRangeSequence[] {
  const out: ByteRangeSequence[] = [];
  const todo: [number, number][] = [[lo, hi]];
  next: while (todo.length > 0) {
    const [a, b] = todo.pop() as [number, number];
    // Split where the encoded length changes.
    for (const bound of [0x7f, 0x7ff, 0xffff]) {
      if (a <= bound && b > bound) {
        todo.push([bound + 1, b], [a, bound]);
        continue next;
      }
    }
    // Split until each continuation byte ranges over the same values for every lead: then the range is a
    // product of per-byte ranges.
    for (let i = 1; i < 4; i++) {
      const m = (1 << (6 * i)) - 1;
      if ((a & ~m) !== (b & ~m)) {
        if ((a & m) !== 0) {
          todo.push([(a | m) + 1, b], [a, a | m]);
          continue next;
        }
        if ((b & m) !== m) {
          todo.push([b & ~m, b], [a, (b & ~m) - 1]);
          continue next;
        }
      }
    }
    const ea = encode(a);
    const eb = encode(b);
    const seq: number[] = [];
    for (let i = 0; i < ea.length; i++) seq.push(ea[i], eb[i]);
    out.push(seq);
  }
  return out;
}

const encoder = new TextEncoder();

/** The UTF-8 bytes of a string of scalar values. */
export function utf8Bytes(text: string): Uint8Array {
  return encoder.encode(text);
}
