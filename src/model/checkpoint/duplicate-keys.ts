// Finds a key that appears twice in one JSON object. JSON.parse keeps the last copy silently, so a header
// can show one tensor entry to a reader that keeps the first and another to this one; a checkpoint that
// says two things about one name is refused instead.

/**
 * The first duplicated key of any object in `text`, with the path of that object ("" for the top level),
 * or null. `text` must already be valid JSON (JSON.parse accepted it): this only tracks strings, nesting
 * and commas. One pass over the text, one set of keys per open object: linear time.
 */
export function firstDuplicateKey(text: string): { key: string; path: string } | null {
  // One entry per open container: the keys seen so far (objects) or null (arrays), and the key or
  // index that leads to it, for the message.
  const stack: Array<{ keys: Set<string> | null; name: string; index: number }> = [];
  let expectKey = false;
  let lastKey = "";
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      let j = i + 1;
      for (;;) {
        j = text.indexOf('"', j);
        if (j < 0) return null; // not valid JSON after all: JSON.parse reports it
        let backslashes = 0;
        for (let k = j - 1; text.charCodeAt(k) === 0x5c; k--) backslashes++;
        if (backslashes % 2 === 0) break;
        j++;
      }
      const top = stack[stack.length - 1];
      if (expectKey && top?.keys) {
        // JSON.parse normalizes escapes, so "a" and "\u0061" are the same key.
        const raw = text.slice(i + 1, j);
        const key = raw.includes("\\") ? (JSON.parse(text.slice(i, j + 1)) as string) : raw;
        if (top.keys.has(key)) return { key, path: stack.slice(1).map((s) => s.name).join(".") };
        top.keys.add(key);
        lastKey = key;
        expectKey = false;
      }
      i = j;
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      const parent = stack[stack.length - 1];
      const name = parent === undefined ? "" : parent.keys ? lastKey : String(parent.index);
      stack.push({ keys: c === 0x7b ? new Set() : null, name, index: 0 });
      expectKey = c === 0x7b;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
    } else if (c === 0x2c /* , */) {
      const top = stack[stack.length - 1];
      if (top?.keys) expectKey = true;
      else if (top) top.index++;
    }
  }
  return null;
}
