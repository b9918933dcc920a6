// Streams text out of a token sequence without ever emitting half a character.
//
// A byte-level BPE token may end in the middle of a multi-byte UTF-8 character; decoding it alone gives
// U+FFFD. So a short window of recent tokens is decoded together and only the part past the text already
// emitted comes out, and nothing comes out while the window ends in an incomplete character (the
// prefix/read-offset scheme of Hugging Face's text-generation-inference). Works for any decoder, not only
// byte-level ones, because it only compares decoded strings.

export type DecodeFn = (ids: readonly number[]) => string;

export class IncrementalDecoder {
  private readonly ids: number[] = [];
  /** Start of the window that is re-decoded for context (e.g. a leading space a decoder may strip). */
  private prefixOffset = 0;
  /** Tokens before this index have been emitted as text. */
  private readOffset = 0;

  constructor(private readonly decode: DecodeFn) {}

  /** Adds one token; returns the text it completes (often "", or several characters at once). */
  push(id: number): string {
    this.ids.push(id);
    const prefix = this.decode(this.ids.slice(this.prefixOffset, this.readOffset));
    const text = this.decode(this.ids.slice(this.prefixOffset));
    if (text.length <= prefix.length || text.endsWith("\uFFFD") || !text.startsWith(prefix)) return "";
    this.prefixOffset = this.readOffset;
    this.readOffset = this.ids.length;
    return text.slice(prefix.length);
  }

  /** The text still held back (an incomplete character at the very end comes out as U+FFFD). */
  flush(): string {
    const prefix = this.decode(this.ids.slice(this.prefixOffset, this.readOffset));
    const text = this.decode(this.ids.slice(this.prefixOffset));
    this.prefixOffset = this.readOffset = this.ids.length;
    return text.startsWith(prefix) ? text.slice(prefix.length) : text;
  }
}
