// A Hugging Face checkpoint: one model.safetensors, or shards listed by model.safetensors.index.json,
// seen as a single name -> tensor map. All cross-file rules (index vs shards, duplicates) live here.
import { CheckpointError, type ByteSource } from "../../env/byte-source.js";
import { rowBytes, rowRangeProblem, type WeightInfo, type WeightSource } from "../weights.js";
import {
  parseSafetensors,
  readRowsF32,
  readTensorF32,
  showName,
  type ReadOptions,
  type RowBlock,
  type TensorInfo,
} from "./safetensors.js";

export const SINGLE_FILE = "model.safetensors";
export const INDEX_FILE = "model.safetensors.index.json";

export interface CheckpointIndex {
  metadata: Record<string, unknown>;
  /** tensor name -> shard file name */
  weightMap: Map<string, string>;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Shard names come from a downloaded JSON file: they must stay inside the checkpoint folder. */
function isPlainFileName(s: string): boolean {
  return s.length > 0 && s !== "." && s !== ".." && !/[/\\]/.test(s) && !s.includes("\0");
}

/** Validates the shape of an index.json object; `where` names it in messages. */
export function parseIndex(raw: unknown, where: string): CheckpointIndex {
  if (!isRecord(raw)) throw new CheckpointError(`${where}: not a JSON object`);
  const wm = raw.weight_map;
  if (!isRecord(wm)) throw new CheckpointError(`${where}: weight_map is missing or not an object`);
  const weightMap = new Map<string, string>();
  for (const [tensor, shard] of Object.entries(wm)) {
    if (typeof shard !== "string" || !isPlainFileName(shard)) {
      throw new CheckpointError(`${where}: weight_map entry for ${showName(tensor)} is not a plain file name: ${JSON.stringify(shard)}`);
    }
    weightMap.set(tensor, shard);
  }
  const md = raw.metadata;
  if (md !== undefined && md !== null && !isRecord(md)) throw new CheckpointError(`${where}: metadata is not an object`);
  return { metadata: isRecord(md) ? md : {}, weightMap };
}

function baseName(path: string): string {
  return path.slice(Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\")) + 1);
}

/** Names longer than this are never suggested (real ones are under 100 characters). */
const SUGGEST_MAX_NAME = 256;
/** Names, among those sharing the most segments, whose edit distance is computed. */
const SUGGEST_CANDIDATES = 64;

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}

export class Checkpoint implements WeightSource {
  /** A folder's matrices get the engine's int4 recipe. */
  readonly quantization = "recipe";

  private constructor(
    private readonly tensors: Map<string, TensorInfo>,
    private readonly sources: ByteSource[],
    /** Merged __metadata__ of all files (HF shards all carry the same {"format": "pt"}). */
    readonly metadata: Record<string, string>,
    /** index.json "metadata" (e.g. total_size), empty for a single file. */
    readonly indexMetadata: Record<string, unknown>,
  ) {}

  /**
   * Builds a checkpoint from already-open files (the browser path). With an index, each file is matched to
   * the weight_map by its base name. On failure the sources are left open: the caller opened them.
   */
  static async fromSources(files: ByteSource[], index?: object): Promise<Checkpoint> {
    if (files.length === 0) throw new CheckpointError("no checkpoint files given");
    const tensors = new Map<string, TensorInfo>();
    const metadata: Record<string, string> = {};
    const byFile = new Map<string, Map<string, TensorInfo>>();
    for (const source of files) {
      const parsed = await parseSafetensors(source);
      for (const [name, info] of parsed.tensors) {
        const first = tensors.get(name);
        if (first) {
          throw new CheckpointError(`tensor ${showName(name)} is defined twice: in ${first.source.name} and in ${source.name}`);
        }
        tensors.set(name, info);
      }
      for (const [k, v] of Object.entries(parsed.metadata)) if (!(k in metadata)) metadata[k] = v;
      byFile.set(baseName(source.name), parsed.tensors);
    }

    let indexMetadata: Record<string, unknown> = {};
    if (index !== undefined) {
      const parsed = parseIndex(index, INDEX_FILE);
      indexMetadata = parsed.metadata;
      for (const [name, shard] of parsed.weightMap) {
        const inShard = byFile.get(shard);
        if (!inShard) throw new CheckpointError(`${INDEX_FILE}: shard ${shard} (holding ${showName(name)}) was not given`);
        if (!inShard.has(name)) {
          const actual = tensors.get(name);
          throw new CheckpointError(
            `${INDEX_FILE}: tensor ${showName(name)} should be in ${shard} but ` +
              (actual ? `is in ${actual.source.name}` : "is in no shard"),
          );
        }
      }
    }
    return new Checkpoint(tensors, [...files], metadata, indexMetadata);
  }

  /** Number of tensors in all files. */
  get tensorCount(): number {
    return this.tensors.size;
  }

  where(name: string): string {
    const t = this.tensors.get(name);
    return `${t ? `${t.source.name}: ` : ""}tensor ${showName(name)}`;
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  info(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (t) return t;
    const similar = this.similarNames(name, 5);
    throw new CheckpointError(
      `missing tensor ${showName(name)}` + (similar.length > 0 ? `; similar names: ${similar.join(", ")}` : ""),
    );
  }

  weight(name: string): WeightInfo {
    const t = this.info(name);
    return { name, shape: t.shape, encoding: t.dtype };
  }

  async readRowsInto(name: string, row0: number, rows: number, out: Uint8Array, outOffset: number): Promise<void> {
    const t = this.info(name);
    const w = this.weight(name);
    const problem = rowRangeProblem(w, row0, rows);
    if (problem !== null) throw new CheckpointError(problem);
    const bytes = rowBytes(w);
    const length = rows * bytes;
    if (!Number.isSafeInteger(outOffset) || outOffset < 0 || outOffset + length > out.length) {
      throw new CheckpointError(`tensor ${showName(name)}: ${length} bytes do not fit the output at ${outOffset}`);
    }
    const at = t.begin + row0 * bytes;
    const dst = out.subarray(outOffset, outOffset + length);
    if (t.source.readInto) await t.source.readInto(at, dst);
    else dst.set(await t.source.read(at, length));
  }

  /** In file order (then header order), which for HF checkpoints follows the layer order. */
  names(): string[] {
    return [...this.tensors.keys()];
  }

  // Both readers report a missing tensor as a rejection, like every other read failure.
  async readF32(name: string, opts?: ReadOptions): Promise<Float32Array> {
    return readTensorF32(this.info(name), opts);
  }

  async *readRowsF32(
    name: string,
    rowsPerBlock: number,
    opts?: Pick<ReadOptions, "checkFinite">,
  ): AsyncGenerator<RowBlock, void, undefined> {
    yield* readRowsF32(this.info(name), rowsPerBlock, opts);
  }

  async close(): Promise<void> {
    await Promise.all(this.sources.map((s) => s.close()));
  }

  /**
   * Tensor names are dotted paths, and the usual mistake is one wrong segment (mlp vs feed_forward), which
   * plain edit distance ranks below same-length strangers; so rank by shared segments first. The work is
   * bounded whatever the header holds: names longer than SUGGEST_MAX_NAME are skipped, and the quadratic
   * edit distance runs only for the SUGGEST_CANDIDATES names sharing the most segments.
   */
  private similarNames(name: string, max: number): string[] {
    if (name.length > SUGGEST_MAX_NAME) return [];
    const wanted = new Set(name.split("."));
    const ranked: Array<{ n: string; shared: number }> = [];
    for (const n of this.tensors.keys()) {
      if (n.length > SUGGEST_MAX_NAME) continue;
      ranked.push({ n, shared: n.split(".").filter((seg) => wanted.has(seg)).length });
    }
    return ranked
      .sort((a, b) => b.shared - a.shared)
      .slice(0, SUGGEST_CANDIDATES)
      .map((x) => ({ ...x, d: editDistance(name, x.n) }))
      .sort((a, b) => b.shared - a.shared || a.d - b.d)
      .slice(0, max)
      .map((x) => showName(x.n));
  }
}
