import { resolve } from "node:path";
import { PRESETS, parameterCount, type ModelConfig } from "../../model/config.js";
import { bundledModelDir, loadConfig } from "../../model/load.js";
import { parseFlags, UsageError } from "../args.js";

export const help = `mobilellm info [--model DIR | --preset mobilellm-pro] [--json]

Parameter count, the layer map (G = global, S = sliding window) and which config values were absent
from config.json and took their documented default.`;

export async function run(argv: string[], out: (s: string) => void): Promise<void> {
  const v = parseFlags(argv, { model: { type: "string" }, preset: { type: "string" }, json: { type: "boolean" }, help: { type: "boolean", short: "h" } });
  if (v.model !== undefined && v.preset !== undefined) throw new UsageError("give --model or --preset, not both");
  let config: ModelConfig;
  let source: string;
  if (v.preset !== undefined) {
    const p = PRESETS[v.preset as string];
    if (!p) throw new UsageError(`unknown preset "${String(v.preset)}" (known: ${Object.keys(PRESETS).join(", ")})`);
    config = p.config;
    source = `preset ${String(v.preset)}`;
  } else {
    source = resolve((v.model as string | undefined) ?? bundledModelDir());
    config = loadConfig(source);
  }
  const params = parameterCount(config);
  const layerMap = config.layerTypes.map((t) => (t === "full_attention" ? "G" : "S")).join("");
  const globalLayers = config.layerTypes.flatMap((t, i) => (t === "full_attention" ? [i] : []));
  if (v.json) {
    out(JSON.stringify({ source, parameters: params, layerMap, globalLayers, slidingWindow: config.slidingWindow, defaulted: config.defaulted, config }));
    return;
  }
  const fmt = (n: number) => n.toLocaleString("en-US");
  out(
    [
      `model        ${source}`,
      `parameters   ${fmt(params.total)} (embedding ${fmt(params.embedding)}, ${config.numLayers} layers x ${fmt(params.perLayer)}, final norm ${fmt(params.finalNorm)}${params.lmHead ? `, lm_head ${fmt(params.lmHead)}` : ", tied lm_head"})`,
      `shape        hidden ${config.hiddenSize}, ffn ${config.intermediateSize}, heads ${config.numHeads} (kv ${config.numKvHeads}) x ${config.headDim}, vocab ${fmt(config.vocabSize)}, positions ${fmt(config.maxPositions)}`,
      `layers       ${layerMap}  (G global: ${globalLayers.join(",")}; S sliding, window ${config.slidingWindow ?? "-"})`,
      `rope         theta ${config.ropeTheta}, ${config.ropeScaling ? `llama3 scaling x${config.ropeScaling.factor}` : "no scaling"}, NoPE layers: ${config.useRope.every((u) => u) ? "none" : config.useRope.flatMap((u, i) => (u ? [] : [i])).join(",")}`,
      `norms        rms eps ${config.rmsNormEps}, qk-norm ${config.useQkNorm ? "on" : "off"}`,
      `defaults     ${config.defaulted.length ? config.defaulted.join(", ") : "none (every value came from config.json)"}`,
    ].join("\n"),
  );
}
