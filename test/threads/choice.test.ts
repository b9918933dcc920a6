// The choice between decode steps split across the threads and steps on the main thread alone, from their
// timing (src/threads/choice.ts), on simulated step times: it keeps the faster mode, finds it again when
// the machine changes, pays a bounded share of steps in the slower mode, and ignores noise and the first
// step after a change of mode.
import { describe, expect, it } from "vitest";
import { CHOICE_WARMUP_STEPS, MAX_INTERVAL, MEDIAN_OF, MIN_INTERVAL, PROBE_STEPS, ThreadChoice, type StepMode } from "../../src/threads/choice.js";

/**
 * Runs `n` steps at positions from, from + 1, ...: step i in the mode the choice picks, taking
 * time(mode, i, first) ms (first: the mode differs from the step before); the modes used.
 */
function simulate(c: ThreadChoice, n: number, time: (mode: StepMode, i: number, first: boolean) => number, from = 0): StepMode[] {
  const modes: StepMode[] = [];
  let last: StepMode | null = null;
  for (let i = from; i < from + n; i++) {
    const mode = c.next();
    c.record(mode, time(mode, i, mode !== last), i);
    modes.push(mode);
    last = mode;
  }
  return modes;
}

const count = (modes: StepMode[], m: StepMode) => modes.filter((x) => x === m).length;

describe("choice of split or solo decode steps", () => {
  it("an idle machine (split 10 ms, solo 15 ms): stays split, under 3% of steps solo", () => {
    const c = new ThreadChoice();
    const modes = simulate(c, 4000, (m) => (m === "split" ? 10 : 15));
    expect(c.best).toBe("split");
    expect(c.switches).toBe(0);
    expect(modes.slice(0, CHOICE_WARMUP_STEPS)).toEqual(new Array(CHOICE_WARMUP_STEPS).fill("split"));
    expect(count(modes, "solo") / modes.length).toBeLessThan(0.03);
  });

  it("a busy machine (split 15 ms, solo 10 ms): solo from the first probe on, under 3% of steps split afterwards", () => {
    const c = new ThreadChoice();
    const modes = simulate(c, 4000, (m) => (m === "split" ? 15 : 10));
    expect(c.best).toBe("solo");
    expect(c.switches).toBe(1);
    // Warm-up, three timed steps, then the probe: solo from then on (but for the later probes).
    const firstSolo = modes.indexOf("solo");
    expect(firstSolo).toBe(CHOICE_WARMUP_STEPS + 3);
    expect(count(modes.slice(firstSolo), "split") / (modes.length - firstSolo)).toBeLessThan(0.03);
  });

  it("a large model on a quiet machine (split 22 ms, solo 39 ms): one probe in a 256-token generation", () => {
    const c = new ThreadChoice();
    const modes = simulate(c, 256, (m) => (m === "split" ? 22 : 39));
    expect(count(modes, "solo")).toBe(PROBE_STEPS);
    expect(c.best).toBe("split");
  });

  it("notices a machine turning busy from the slower steps of its mode, without waiting for the backed-off probe", () => {
    const c = new ThreadChoice();
    simulate(c, 300, (m) => (m === "split" ? 22 : 39));
    expect(c.probes).toBe(2); // the probes have backed off to MAX_INTERVAL
    // Another process takes a core: split steps now take 45 ms, solo ones 40.
    const after = simulate(c, 100, (m) => (m === "split" ? 45 : 40), 300);
    expect(c.best).toBe("solo");
    expect(after.findIndex((m, i) => after.slice(i, i + 8).every((x) => x === "solo"))).toBeLessThanOrEqual(MIN_INTERVAL + MEDIAN_OF + PROBE_STEPS);
  });

  it("follows the machine when it changes, within one probe interval", () => {
    const c = new ThreadChoice();
    simulate(c, 3000, (m) => (m === "split" ? 10 : 15));
    expect(c.best).toBe("split");
    const after = simulate(c, 3000, (m) => (m === "split" ? 20 : 15), 3000);
    expect(c.best).toBe("solo");
    expect(after.lastIndexOf("split")).toBeGreaterThan(after.length - MAX_INTERVAL - 2 * PROBE_STEPS); // later probes
    const switchedBy = after.findIndex((m, i) => after.slice(i, i + 8).every((x) => x === "solo"));
    expect(switchedBy).toBeLessThanOrEqual(MAX_INTERVAL + PROBE_STEPS);
    const back = simulate(c, 3000, (m) => (m === "split" ? 10 : 15), 6000);
    expect(c.best).toBe("split");
    expect(count(back.slice(-1000), "solo")).toBeLessThan(30);
  });

  it("does not switch for a difference within the margin, nor for noisy single steps", () => {
    const c = new ThreadChoice();
    // Solo 3% faster: not worth a switch. Every 7th step a 40 ms outlier (a GC pause) in either mode.
    simulate(c, 4000, (m, i) => (i % 7 === 0 ? 40 : m === "split" ? 10 : 9.7));
    expect(c.switches).toBe(0);
  });

  it("does not count a probe's first step (workers waking up, or still spinning)", () => {
    const c = new ThreadChoice();
    // Split is faster, but its first step after solo steps pays a 50 ms wake-up.
    simulate(c, 200, (m) => (m === "split" ? 15 : 10));
    expect(c.best).toBe("solo");
    simulate(c, 3000, (m, _i, first) => (m === "split" ? (first ? 60 : 8) : 10), 200);
    expect(c.best).toBe("split");
  });

  it("compares steps at neighbouring positions only: a probe just after a jump back decides nothing", () => {
    const c = new ThreadChoice();
    // Split steps at position ~2000 take 30 ms, solo ones 45; at the start of a new conversation (position
    // 0 on) 12 and 20. Compared with the split steps before the jump, solo would look faster.
    const time = (m: StepMode, pos: number) => (pos >= 2000 ? (m === "split" ? 30 : 45) : m === "split" ? 12 : 20);
    let pos = 2000;
    let jumped = false;
    for (let i = 0; i < 1000; i++) {
      const mode = c.next();
      // The step that starts the third probe goes to position 0.
      if (!jumped && mode === "solo" && c.probes === 3) {
        jumped = true;
        pos = 0;
      }
      c.record(mode, time(mode, pos), pos);
      pos++;
    }
    expect(jumped).toBe(true);
    expect(c.switches).toBe(0);
    expect(c.best).toBe("split");
  });
});
