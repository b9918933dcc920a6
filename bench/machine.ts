// What the benchmarks need to know about the (shared) machine: how busy the other processes kept it during
// a measurement, a busy process to hold one core on purpose, and a one-line description.
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { availableParallelism, cpus, loadavg } from "node:os";

/** Busy CPU time of the whole machine in ms (Linux /proc/stat), or null elsewhere. */
export function machineBusyMs(): number | null {
  try {
    const f = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
    return ((total - f[3] - f[4]) * 1000) / 100; // minus idle and iowait; USER_HZ is 100 on Linux
  } catch {
    return null;
  }
}

/**
 * Runs `fn` and reports its wall time and how many cores OTHER processes kept busy meanwhile (the machine's
 * busy time minus this process's own CPU time, over the wall time). null when unknown or too short to tell.
 */
export function withElsewhere<T>(fn: () => T): { value: T; wallMs: number; elsewhere: number | null } {
  const busy0 = machineBusyMs();
  const own0 = process.cpuUsage();
  const t0 = performance.now();
  const value = fn();
  const wallMs = performance.now() - t0;
  const own = process.cpuUsage(own0);
  const busy1 = machineBusyMs();
  // /proc/stat counts 10 ms ticks: below half a second the figure is mostly rounding.
  const elsewhere = busy0 === null || busy1 === null || wallMs < 500 ? null : Math.max(0, (busy1 - busy0 - (own.user + own.system) / 1000) / wallMs);
  return { value, wallMs, elsewhere };
}

/** Cores other processes keep busy over the next `ms` (this process idle meanwhile). */
export async function otherLoad(ms = 1000): Promise<number | null> {
  const b0 = machineBusyMs();
  const own0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, ms));
  const b1 = machineBusyMs();
  const own = process.cpuUsage(own0);
  if (b0 === null || b1 === null) return null;
  return Math.max(0, (b1 - b0 - (own.user + own.system) / 1000) / (performance.now() - t0));
}

/** Waits (up to maxMs) until other processes use less than `cores` cores over a second; returns the last reading. */
export async function waitForQuiet(cores = 0.1, maxMs = 120_000): Promise<number | null> {
  const end = performance.now() + maxMs;
  for (;;) {
    const load = await otherLoad(1000);
    if (load === null || load <= cores || performance.now() > end) return load;
  }
}

/** A child process spinning on one core (`node -e "for(;;){}"`), killed by stop() or at exit. */
export function busyProcess(): { pid: number | undefined; stop: () => void } {
  const child: ChildProcess = spawn(process.execPath, ["-e", "for(;;){}"], { stdio: "ignore" });
  const stop = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  };
  process.once("exit", stop);
  return { pid: child.pid, stop };
}

export function describeMachine(): string {
  const c = cpus();
  return `${c.length} vCPU (${c[0]?.model ?? "unknown CPU"}), availableParallelism ${availableParallelism()}, node ${process.version} (V8 ${process.versions.v8}), load average ${loadavg().map((x) => x.toFixed(2)).join(" ")}`;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n === 0 ? NaN : n % 2 ? s[n >> 1] : (s[n / 2 - 1] + s[n / 2]) / 2;
}
