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

/**
 * parseArgs reads "--ctx -1" as the flag --ctx followed by the option -1 and says "argument is ambiguous";
 * a number after a flag that takes a value is that value, so it is passed as "--ctx=-1" or "-n-1" (then refused
 * or accepted by the flag's own reader, with its own message).
 */
function attachNegativeValues(argv: string[], options: Options): string[] {
  const takesValue = (arg: string): boolean => {
    const long = /^--([^=]+)$/.exec(arg);
    if (long) return options[long[1]]?.type === "string";
    const short = /^-([^-])$/.exec(arg);
    return short !== null && Object.values(options).some((o) => o.short === short[1] && o.type === "string");
  };
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const next = argv[i + 1];
    if (next !== undefined && /^-[\d.]/.test(next) && takesValue(argv[i])) {
      out.push(argv[i].startsWith("--") ? `${argv[i]}=${next}` : `${argv[i]}${next}`); // -n-5 is -n with -5
      i++;
    } else {
      out.push(argv[i]);
    }
  }
  return out;
}

export function parseFlags(argv: string[], options: Options): Values {
  try {
    const args = attachNegativeValues(argv, options);
    const { values, positionals } = parseArgs({ args, options, strict: true, allowPositionals: true });
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
