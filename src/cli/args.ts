// Shared flag parsing for the commands: node:util parseArgs in strict mode, plus typed readers that
// turn a bad value into a UsageError (printed as one line, exit code 2).
import { parseArgs, type ParseArgsConfig } from "node:util";
import { BACKENDS, type BackendName, type SimdMode } from "../api.js";

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

export type Options = NonNullable<ParseArgsConfig["options"]>;
export type Values = Record<string, string | boolean | string[] | undefined>;

export function parseFlags(argv: string[], options: Options): Values {
  try {
    const { values, positionals } = parseArgs({ args: argv, options, strict: true, allowPositionals: true });
    if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    return values as Values;
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError((err as Error).message.split("\n")[0]);
  }
}

export function intFlag(values: Values, name: string, fallback: number, min = 1): number {
  const v = values[name];
  if (v === undefined) return fallback;
  const n = Number(v);
  if (typeof v !== "string" || !/^-?\d+$/.test(v) || !Number.isSafeInteger(n) || n < min) {
    throw new UsageError(`--${name} must be an integer >= ${min}, got "${String(v)}"`);
  }
  return n;
}

export function backendFlag(values: Values, fallback: BackendName): BackendName {
  const v = values["backend"];
  if (v === undefined) return fallback;
  if (!BACKENDS.includes(v as BackendName)) {
    throw new UsageError(`--backend must be one of ${BACKENDS.join(", ")}, got "${String(v)}"`);
  }
  return v as BackendName;
}

export function tokenListFlag(v: string): number[] {
  const parts = v.split(",").map((s) => s.trim());
  if (parts.length === 0 || parts.some((p) => !/^\d+$/.test(p))) {
    throw new UsageError(`--tokens must be a comma-separated list of non-negative integers, got "${v}"`);
  }
  return parts.map(Number);
}

export function simdFlag(values: Values): SimdMode {
  const v = values["simd"] ?? "auto";
  if (v !== "auto" && v !== "baseline" && v !== "relaxed") {
    throw new UsageError(`--simd must be one of auto, baseline, relaxed, got "${String(v)}"`);
  }
  return v;
}

export const MODEL_FLAG = {
  model: { type: "string" },
  backend: { type: "string" },
  simd: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;
