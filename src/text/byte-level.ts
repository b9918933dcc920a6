// GPT-2's byte alphabet (its bytes_to_unicode), in which byte-level BPE vocabularies write every token: each
// of the 256 byte values as one printable character, the printable Latin-1 bytes as themselves and the other
// 68 as U+0100 upwards, in byte order. One table for the tokenizer (src/text/ggml-tokenizer.ts) and the
// grammar's token bytes (src/text/token-bytes.ts).

/** The character of each byte value. */
export const BYTE_LEVEL_CHARS: readonly string[] = (() => {
  const out: string[] = [];
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    out.push(String.fromCharCode(printable ? b : next++));
  }
  return out;
})();

/** The byte each character of the alphabet stands for, by char code (-1 for other characters below 324). */
export const BYTE_LEVEL_BYTES: Int16Array = (() => {
  const fromChar = new Int16Array(324).fill(-1);
  BYTE_LEVEL_CHARS.forEach((c, b) => (fromChar[c.charCodeAt(0)] = b));
  return fromChar;
})();
