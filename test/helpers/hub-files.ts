// The real hub GGUF files (scripts/hub-models.ts) for tests that need them. In CI (`CI` set) they must be
// there (`.ci/run` fetches them with `npm run fetch:models`), so a missing file fails the test; elsewhere a
// test needing them is skipped with a message saying how to fetch them.
import { existsSync, statSync } from "node:fs";
import { hubPath, type HubModel } from "../../scripts/hub-models.js";

export { GEMMA3_270M_Q4_K_M, SMOLLM2_135M_INSTRUCT_Q4_1, hubPath } from "../../scripts/hub-models.js";

const present = (m: HubModel) => existsSync(hubPath(m)) && statSync(hubPath(m)).size === m.bytes;

/**
 * Whether tests needing `models` run: true when every file is in the cache; in CI a missing one throws
 * (the fetch step failed); elsewhere false, after saying once what to run.
 */
export function hubFilesPresent(...models: HubModel[]): boolean {
  const missing = models.filter((m) => !present(m));
  if (missing.length === 0) return true;
  const list = missing.map((m) => hubPath(m)).join(", ");
  if (process.env.CI) throw new Error(`hub model file(s) missing in CI: ${list} (npm run fetch:models)`);
  console.warn(`skipping tests that need ${list}: run \`npm run fetch:models\` to fetch them`);
  return false;
}
