// Whether decode steps run split across the threads or on the main thread alone ("solo"), chosen by timing
// the steps themselves. Two threads pay only when the worker gets a core of its own: on an idle machine
// they decode even the smallest models faster, but with another process holding a core the three runnable
// threads share two cores and one thread is faster. How often the workers miss regions does not tell the
// two apart on this VM (about 16% of regions on a quiet machine, for every region size; see
// docs/performance.md), the step time does: a decode step is the same work as the one before it (one more
// cached position), so the median of the last few steps in each mode says which is faster now. Steps are
// only compared at neighbouring positions: a jump (a new prompt, a benchmark moving on) starts afresh, as
// attention makes a step at 2048 positions slower than one at 512 in either mode.
//
// Pure bookkeeping, no timers of its own: the pool asks next() for the mode of a step, times the step and
// hands the time to record().

export type StepMode = "split" | "solo";

/**
 * Decode steps of a fresh pool run split and untimed: the engine's and the workers' JavaScript and the
 * kernels are still being compiled (the first ~30 steps of a fresh engine ran up to 2x slower).
 */
export const CHOICE_WARMUP_STEPS = 16;
/** Steps compared per mode: the median of the last MEDIAN_OF (a single step is noisy: GC, a timer). */
export const MEDIAN_OF = 3;
/**
 * A probe runs this many steps in the other mode: one more than it compares, as its first step is not the
 * steady cost of the mode (after split steps the workers still spin, after solo steps they need a wake-up).
 */
export const PROBE_STEPS = MEDIAN_OF + 1;
/**
 * Steps between probes: MIN_INTERVAL after a switch, doubling up to MAX_INTERVAL while probes confirm the
 * mode (a machine whose state does not change pays a probe about once every 256 steps: 4 steps in the
 * slower mode, under 2% of the steps).
 */
export const MIN_INTERVAL = 16;
export const MAX_INTERVAL = 256;
/** The other mode must be this much faster (a fraction of the step time) to switch: noise is not a reason. */
export const SWITCH_MARGIN = 0.05;
/**
 * A probe whose mode was slower by more than this (a fraction of the best mode's step time) waits
 * MAX_INTERVAL for the next one: a large model on a quiet machine runs solo ~1.7x slower, so the early
 * probes of every fresh pool (at steps 19, 39, 75, ...) cost a generation of 200 tokens 4% of its time.
 */
export const FAR_MARGIN = 0.5;
/**
 * ...and the machine changing is then noticed from the best mode's own steps: once their median is this
 * much slower than at the last probe (at neighbouring positions), the next probe comes after MIN_INTERVAL.
 */
export const ALARM_MARGIN = 0.25;

export class ThreadChoice {
  /** The mode steps run in between probes. */
  best: StepMode = "split";
  /** Switches so far (tests, statistics). */
  switches = 0;
  /** Probes so far. */
  probes = 0;
  private seen = 0;
  private interval = MIN_INTERVAL;
  /** Steps in the best mode since the last probe; the first probe comes once MEDIAN_OF steps are timed. */
  private sinceProbe = MIN_INTERVAL - MEDIAN_OF;
  /** Steps left in the current probe (0: not probing). */
  private probeLeft = 0;
  private readonly recent: Record<StepMode, number[]> = { split: [], solo: [] };
  /** The best mode's median step time when the last probe ended (Infinity: none since the last jump). */
  private reference = Infinity;
  /** Position of the last step recorded. */
  private position = -1;

  constructor(private readonly warmupSteps = CHOICE_WARMUP_STEPS) {}

  /** The mode of the next step. */
  next(): StepMode {
    if (this.probeLeft > 0) return other(this.best);
    const recent = this.recent[this.best];
    const timed = recent.length >= MEDIAN_OF;
    const alarm = timed && this.sinceProbe >= MIN_INTERVAL && median(recent) > this.reference * (1 + ALARM_MARGIN);
    if (this.seen >= this.warmupSteps && (this.sinceProbe >= this.interval || alarm) && timed) {
      this.probeLeft = PROBE_STEPS;
      this.probes++;
      this.recent[other(this.best)].length = 0;
      return other(this.best);
    }
    return this.best;
  }

  /** The step next() chose `mode` for, at `position` (its token's), took `ms`. */
  record(mode: StepMode, ms: number, position: number): void {
    const jumped = position !== this.position + 1;
    this.position = position;
    if (this.seen++ < this.warmupSteps) return;
    if (jumped) {
      this.recent.split.length = 0;
      this.recent.solo.length = 0;
      this.reference = Infinity;
    }
    // Only the last MEDIAN_OF steps of each mode are kept: a probe's first step, and the first step back in
    // the best mode after it, drop out before they are compared.
    push(this.recent[mode], ms);
    if (this.probeLeft === 0) {
      this.sinceProbe++;
      return;
    }
    if (--this.probeLeft > 0) return;
    this.sinceProbe = 0;
    // A probe cut by a jump compares nothing (the best mode has no step at the new positions yet).
    if (this.recent[this.best].length === 0) return;
    const mine = median(this.recent[this.best]);
    const theirs = median(this.recent[mode]);
    if (theirs < mine * (1 - SWITCH_MARGIN)) {
      this.best = mode;
      this.switches++;
      this.interval = MIN_INTERVAL;
      this.reference = theirs;
    } else {
      this.interval = theirs > mine * (1 + FAR_MARGIN) ? MAX_INTERVAL : Math.min(MAX_INTERVAL, 2 * this.interval);
      this.reference = mine;
    }
  }
}

function other(mode: StepMode): StepMode {
  return mode === "split" ? "solo" : "split";
}

function push(xs: number[], x: number): void {
  xs.push(x);
  if (xs.length > MEDIAN_OF) xs.shift();
}

/** Median of xs; Infinity for none (a mode never timed is never preferred). */
function median(xs: number[]): number {
  if (xs.length === 0) return Infinity;
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}
