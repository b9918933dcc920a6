// The model families this engine runs (one file each: llama.ts, gemma3.ts), and how a config.json names one.
import type { Family, FamilyName } from "./family.js";
import { LLAMA, LLAMA4_TEXT } from "./llama.js";
import { GEMMA3 } from "./gemma3.js";

export type { Family, FamilyName } from "./family.js";

export const FAMILIES: readonly Family[] = [LLAMA4_TEXT, LLAMA, GEMMA3];

/** The family of that name (a config's `architecture`). */
export function familyOf(name: FamilyName): Family {
  const f = FAMILIES.find((a) => a.name === name);
  if (f === undefined) throw new Error(`unknown model family ${JSON.stringify(name)}`);
  return f;
}

const supported = () =>
  FAMILIES.map((a) => `model_type ${a.modelTypes.map((t) => `"${t}"`).join("/")} (${a.classes.join(", ")})`).join(", ");

/**
 * The family a config.json names by `model_type`, else by its first `architectures` entry; a config naming
 * neither is taken as llama4_text (`assumed`), the family this engine was built for. Anything else, or the
 * two keys disagreeing, is refused with a message naming what is supported.
 */
export function familyOfConfig(modelType: unknown, classes: unknown): { family: Family; assumed: boolean } | { error: string } {
  if (modelType !== undefined && modelType !== null && typeof modelType !== "string") {
    return { error: `"model_type" must be a string, got ${JSON.stringify(modelType)}` };
  }
  if (classes !== undefined && classes !== null && (!Array.isArray(classes) || !classes.every((c) => typeof c === "string"))) {
    return { error: `"architectures" must be an array of class names, got ${JSON.stringify(classes)}` };
  }
  const cls = Array.isArray(classes) && classes.length > 0 ? (classes[0] as string) : null;
  const byType = typeof modelType === "string" ? FAMILIES.find((a) => a.modelTypes.includes(modelType)) : undefined;
  const byClass = cls !== null ? FAMILIES.find((a) => a.classes.includes(cls)) : undefined;
  if (typeof modelType === "string" && byType === undefined) {
    return { error: `model_type ${JSON.stringify(modelType)} is not supported; supported: ${supported()}` };
  }
  if (cls !== null && byClass === undefined && byType === undefined) {
    return { error: `architecture ${JSON.stringify(cls)} is not supported; supported: ${supported()}` };
  }
  if (byType !== undefined && byClass !== undefined && byType !== byClass) {
    return { error: `model_type ${JSON.stringify(modelType)} and architectures ${JSON.stringify(cls)} name different model families` };
  }
  const family = byType ?? byClass;
  return family === undefined ? { family: FAMILIES[0], assumed: true } : { family, assumed: false };
}
