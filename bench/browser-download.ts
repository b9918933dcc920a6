// A worker of bench/browser.ts's page: downloads one file into the model cache (src/browser/model-cache.ts)
// and loads nothing, so the bench can time a download alone (the GET and its OPFS writes) beside a visit
// that also prepares the model from the bytes as they land.
import "../src/browser/set-immediate.js";
import { ModelCache } from "../src/browser/model-cache.js";

const scope = globalThis as unknown as { onmessage: ((e: MessageEvent<string>) => void) | null; postMessage(m: unknown): void };
scope.onmessage = async (e) => {
  const t0 = performance.now();
  const warnings: string[] = [];
  try {
    const source = await new ModelCache({ onWarning: (w) => warnings.push(w) }).open(e.data);
    if (source === null) throw new Error(`${e.data}: not found`);
    await source.close(); // resolves once every byte is stored and the entry committed
    scope.postMessage({ ms: performance.now() - t0, warnings });
  } catch (err) {
    scope.postMessage({ error: (err as Error).message });
  }
};
