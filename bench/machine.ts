// What the benchmarks need to know about the (shared) machine: how busy the other processes kept it during
// a measurement, a busy process to hold one core on purpose, and a one-line description.
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { availableParallelism, cpus, loadavg } from "node:os";
import { Worker } from "node:worker_threads";

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

/** The page size page faults come in on x86-64 Linux, where the benchmarks run. */
export const PAGE_BYTES = 4096;

/** pageFaultMicros's threads take turns in runs of this many bytes, as the load's pool deals rows to its threads. */
const FAULT_RUN_BYTES = 128 << 10;

/** Writes one byte per page of thread `id`'s runs of `bytes` (of `threads` threads); the same code in workers. */
const touchRuns = (bytes: Uint8Array, id: number, threads: number, run: number, page: number) => {
  for (let c = id * run; c < bytes.length; c += threads * run) {
    for (let i = c; i < Math.min(c + run, bytes.length); i += page) bytes[i] = 1;
  }
};

/**
 * What one page fault costs this machine, in µs per fault on each of `threads` threads faulting together:
 * a fresh shared WebAssembly.Memory of `mib` MiB written once per 4 KiB page, the threads taking turns in
 * 128 KiB runs; the median of `rounds`. Loading weights writes every page of the engine's memory for the
 * first time, so faults x this / threads is the part of its time that is page faults alone, which no code
 * of ours can shorten. A virtual machine's faults can cost tens of times a bare machine's, threads faulting
 * together each pay more, and on a shared host the cost drifts from minute to minute.
 */
export async function pageFaultMicros(threads = 1, mib = 64, rounds = 3): Promise<number> {
  const workerCode = `const { parentPort } = require("node:worker_threads");
const touchRuns = ${touchRuns.toString()};
parentPort.on("message", ({ memory, id, threads }) => {
  touchRuns(new Uint8Array(memory.buffer), id, threads, ${FAULT_RUN_BYTES}, ${PAGE_BYTES});
  parentPort.postMessage("done");
});`;
  const workers = Array.from({ length: threads - 1 }, () => new Worker(workerCode, { eval: true }));
  try {
    const times: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const pages = (mib << 20) / 65536;
      const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
      const bytes = new Uint8Array(memory.buffer);
      const t0 = performance.now();
      const done = workers.map((w, i) => {
        const finished = new Promise((resolve) => w.once("message", resolve));
        w.postMessage({ memory, id: i + 1, threads });
        return finished;
      });
      touchRuns(bytes, 0, threads, FAULT_RUN_BYTES, PAGE_BYTES);
      await Promise.all(done);
      times.push(((performance.now() - t0) * 1000 * threads) / (bytes.length / PAGE_BYTES));
    }
    return median(times);
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
