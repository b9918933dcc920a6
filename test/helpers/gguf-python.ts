// llama.cpp's `gguf` Python package (gguf_dequantize.py beside this file) as an independent decoder for the
// tests. In CI (`CI` set) Python with gguf must be there (`npm run fetch:models` installs it: scripts/peers.ts),
// so a missing one fails the test; elsewhere a test needing it is skipped with a message saying how to install it.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { python, PYTHON_GGUF_VERSION } from "../../scripts/peers.js";

const SCRIPT = fileURLToPath(new URL("./gguf_dequantize.py", import.meta.url));

let available: boolean | undefined;

/**
 * Whether python3 can import gguf: true when it can; in CI a missing one throws; elsewhere false, after saying
 * once what to install.
 */
export function ggufPythonAvailable(): boolean {
  if (available !== undefined) return available;
  const r = spawnSync(python(), ["-c", "import gguf, numpy; print(gguf.__file__)"], { encoding: "utf8" });
  available = r.status === 0;
  if (!available) {
    const why = r.error ? r.error.message : r.stderr.trim().split("\n").pop();
    if (process.env.CI) throw new Error(`Python's gguf ${PYTHON_GGUF_VERSION} is missing in CI (${why}): npm run fetch:models`);
    console.warn(`skipping tests that need Python's gguf ${PYTHON_GGUF_VERSION} (${why}): run \`npm run fetch:models\` to install it`);
  }
  return available;
}

/** Each input's values as gguf.quants.dequantize gives them (one python3 run for all). */
export function ggufDequantize(cases: ReadonlyArray<{ type: string; bytes: Uint8Array }>): Float32Array[] {
  const dir = mkdtempSync(join(tmpdir(), "mobilellm-gguf-py-"));
  try {
    const manifest = cases.map((c, i) => {
      const input = join(dir, `${i}.in`);
      writeFileSync(input, c.bytes);
      return { type: c.type, in: input, out: join(dir, `${i}.out`) };
    });
    writeFileSync(join(dir, "manifest.json"), JSON.stringify(manifest));
    const r = spawnSync(python(), [SCRIPT, join(dir, "manifest.json")], { encoding: "utf8", maxBuffer: 1 << 24 });
    if (r.status !== 0) throw new Error(`gguf_dequantize.py failed (status ${r.status}): ${r.stderr.trim().split("\n").slice(-3).join(" | ")}`);
    return manifest.map((m) => {
      const b = readFileSync(m.out);
      return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
