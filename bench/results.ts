// The shapes of the JSON the benchmarks write with --json: one measurement of `npm run bench -- --json FILE`
// (which bench/plot-context.ts reads), and one child's load of `npm run bench:load -- --json FILE`.
import type { LoadReport } from "./load-child.js";

export interface Measured {
  build: string;
  layout: "hybrid" | "all-global";
  threads: number;
  task: string;
  position?: number;
  ms: number;
  tokPerS: number;
  /** Cores other processes kept busy during the measurement (null: unknown). */
  elsewhere: number | null;
}

export interface LoadRun {
  label: string;
  engine: "ours" | "llama.cpp";
  input: string;
  threads: number;
  /** 1.. for measured rounds, <= 0 for warm-up rounds. */
  round: number;
  warmup: boolean;
  /** Cores other processes kept busy while the child ran (null: unknown). */
  elsewhere: number | null;
  report: LoadReport;
}
