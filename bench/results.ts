// The shape of one measurement in the JSON that `npm run bench -- --json FILE` writes and
// bench/plot-context.ts reads.

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
