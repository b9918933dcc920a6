// model.dispose() must let the Wasm memory go: checked in a child process with --expose-gc, through a
// WeakRef on the engine's WebAssembly.Memory (held nowhere else once the model is disposed).
import { describe, expect, it } from "vitest";
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);

const SCRIPT = `
import { loadModel } from "./dist/src/api.js";
const model = await loadModel(undefined, { contextLength: 256, threads: THREADS });
const ref = new WeakRef(model.backend.kernels.memory);
const bytes = ref.deref().buffer.byteLength;
for await (const _ of model.generate("ROMEO:", { maxNewTokens: 4, seed: 1 })) {}
await model.dispose();
for (let i = 0; i < 20 && ref.deref() !== undefined; i++) {
  await new Promise((r) => setTimeout(r, 10));
  globalThis.gc();
}
let refused = "";
try { model.generate("x"); } catch (e) { refused = e.message; }
console.log(JSON.stringify({ bytes, freed: ref.deref() === undefined, refused }));
`;

describe("dispose", () => {
  it.each([1, 2])("frees the Wasm memory and refuses later use (%i thread(s))", async (threads) => {
    const { stdout } = await run(process.execPath, ["--expose-gc", "--input-type=module", "-e", SCRIPT.replace("THREADS", String(threads))], { timeout: 30_000 });
    const r = JSON.parse(stdout) as { bytes: number; freed: boolean; refused: string };
    expect(r.bytes).toBeGreaterThan(4 << 20);
    expect(r.freed).toBe(true);
    expect(r.refused).toMatch(/disposed/);
  });
});
