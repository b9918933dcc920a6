// The rules every config.json key is read with, shared by src/model/config.ts (the sizes every family has)
// and each family's own keys (src/model/families/): a missing key takes its default and is recorded, a
// present one must have the right type and range, or parsing fails naming the file and the key.

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/**
 * Ranges a config must keep to, checked when it is parsed: a config.json comes with a download, and a
 * value outside these either allocates in proportion to itself before any tensor is checked (a layer
 * count builds per-layer tables) or overflows float32 in the engine and turns every logit into NaN.
 * Real checkpoints sit far inside them (MobileLLM-Pro: 30 layers, rope_theta 500000, llama3 factor 8).
 */
export const CONFIG_LIMITS = {
  /** num_hidden_layers at most (the deepest published transformers have about 130). */
  maxLayers: 1024,
  /** rope_theta at least 1: below it the inverse frequencies exceed 1 and position x frequency overflows. */
  minRopeTheta: 1,
  /** rope_scaling.factor at least 1: it divides the frequencies (a context extension, never a squeeze). */
  minRopeFactor: 1,
  /** rms_norm_eps within [1e-30, 1]: smaller rounds to 0 in float32 (a zero row then divides by zero). */
  minRmsNormEps: 1e-30,
  maxRmsNormEps: 1,
  /** attn_scale at most 10 and floor_scale at least 1: the query temperature stays below ~400. */
  maxAttnScale: 10,
  minFloorScale: 1,
} as const;

export type Json = Record<string, unknown>;

/**
 * The keys of one config.json, read with the rules every key follows: a missing key takes its default and
 * is recorded in `defaulted`; a present one must have the right type and range, or parsing fails with the
 * file and the key named.
 */
export class ConfigReader {
  readonly defaulted: string[] = [];

  constructor(
    readonly c: Json,
    private readonly source: string,
  ) {}

  fail(msg: string): never {
    throw new ConfigError(`${this.source}: ${msg}`);
  }

  has(key: string): boolean {
    return this.c[key] !== undefined && this.c[key] !== null;
  }

  positiveInt(key: string, fallback?: number): number {
    const v = this.c[key];
    if (v === undefined || v === null) {
      if (fallback === undefined) this.fail(`missing required key "${key}"`);
      this.defaulted.push(key);
      return fallback as number;
    }
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v <= 0) this.fail(`"${key}" must be a positive integer, got ${JSON.stringify(v)}`);
    return v as number;
  }

  positiveNumber(key: string, fallback: number, min = 0, max = Infinity): number {
    const v = this.c[key];
    if (v === undefined || v === null) {
      this.defaulted.push(key);
      return fallback;
    }
    if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) this.fail(`"${key}" must be a positive number, got ${JSON.stringify(v)}`);
    if ((v as number) < min || (v as number) > max) {
      this.fail(`"${key}" is ${String(v)}, outside the range this engine computes in float32 without overflow: [${min}, ${max}]`);
    }
    return v as number;
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.c[key];
    if (v === undefined || v === null) {
      this.defaulted.push(key);
      return fallback;
    }
    if (typeof v !== "boolean") this.fail(`"${key}" must be true or false, got ${JSON.stringify(v)}`);
    return v as boolean;
  }

  tokenId(v: unknown, key: string): number {
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) this.fail(`"${key}" must be a non-negative integer token id, got ${JSON.stringify(v)}`);
    return v as number;
  }

  optionalTokenId(key: string): number | null {
    return this.has(key) ? this.tokenId(this.c[key], key) : null;
  }
}

// ---- keys several families read --------------------------------------------------------------------

/** Global attention (every earlier position) or a sliding window. */
export type LayerType = "full_attention" | "sliding_attention";

/** `layer_types`: one of "full_attention" / "sliding_attention" per layer; `fallback` when absent (recorded if asked). */
export function readLayerTypes(r: ConfigReader, numLayers: number, fallback: () => LayerType[], recordDefault: boolean): LayerType[] {
  const lt = r.c["layer_types"];
  if (lt === undefined || lt === null) {
    if (recordDefault) r.defaulted.push("layer_types");
    return fallback();
  }
  if (!Array.isArray(lt)) r.fail(`"layer_types" must be an array`);
  const arr = lt as unknown[];
  if (arr.length !== numLayers) r.fail(`"layer_types" has ${arr.length} entries but num_hidden_layers is ${numLayers}`);
  return arr.map((t, i) => {
    if (t !== "full_attention" && t !== "sliding_attention") {
      r.fail(`layer_types[${i}] is ${JSON.stringify(t)}: expected "full_attention" or "sliding_attention"`);
    }
    return t as LayerType;
  });
}

/** `sliding_window`: required when a layer slides, else read if present. */
export function readSlidingWindow(r: ConfigReader, kinds: readonly LayerType[]): number | null {
  if (kinds.includes("sliding_attention")) {
    if (!r.has("sliding_window")) r.fail(`layer_types has sliding_attention layers but "sliding_window" is missing`);
    return r.positiveInt("sliding_window");
  }
  return typeof r.c["sliding_window"] === "number" ? r.positiveInt("sliding_window") : null;
}

/**
 * `rope_scaling` (or one entry of `rope_parameters`) as transformers spells it, null for none or "default";
 * `types` are the rope_types the family computes.
 */
export function parseRopeScaling(v: unknown, fail: (msg: string) => never, types: ReadonlyArray<"llama3" | "linear">, key = "rope_scaling"):
  | { type: "llama3"; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositions: number }
  | { type: "linear"; factor: number }
  | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== "object" || Array.isArray(v)) fail(`"${key}" must be an object or null`);
  const s = v as Json;
  const type = s["rope_type"] ?? s["type"];
  if (type === "default") return null;
  if (!types.includes(type as "llama3" | "linear")) {
    fail(`${key} type ${JSON.stringify(type)} is not supported (supported: ${[...types, "default"].map((t) => `"${t}"`).join(", ")})`);
  }
  const num = (name: string): number => {
    const x = s[name];
    if (typeof x !== "number" || !Number.isFinite(x) || x <= 0) {
      fail(`${key}.${name} must be a positive number, got ${JSON.stringify(x)}`);
    }
    return x as number;
  };
  const factor = num("factor");
  if (factor < CONFIG_LIMITS.minRopeFactor) {
    fail(`${key}.factor is ${factor}: it must be at least ${CONFIG_LIMITS.minRopeFactor} (it divides the RoPE frequencies)`);
  }
  if (type === "linear") return { type: "linear", factor };
  const scaling = {
    type: "llama3" as const,
    factor,
    lowFreqFactor: num("low_freq_factor"),
    highFreqFactor: num("high_freq_factor"),
    originalMaxPositions: num("original_max_position_embeddings"),
  };
  if (scaling.highFreqFactor <= scaling.lowFreqFactor) {
    fail(`${key}.high_freq_factor must exceed low_freq_factor`);
  }
  return scaling;
}
