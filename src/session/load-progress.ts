// Load progress in bytes, for a progress bar: which phase the load is in, how many bytes of it are done,
// how fast and how long until it ends. One type for every caller (loadModel's onProgress, the browser
// worker's progress messages, the CLI's bar), measured by one LoadMeter that the loaders wrap around the
// weight files.
//
// Phases, in order (never back): "download" while bytes of a weight file are still arriving (a source
// with `arrived()`, e.g. a URL fetched as a stream), counting the bytes that arrived; "prepare" once every
// byte is here, counting the bytes the engine has read (it reads while the download runs, so this phase
// starts part-way and is short); "threads" once every weight is in, while the engine allocates its
// buffers and starts its worker threads; "ready", once, as the last report of a load that succeeded (the
// model can generate). A file already on disk or in a cache starts at "prepare".
import type { ByteSource } from "../env/byte-source.js";

export type LoadPhase = "download" | "prepare" | "threads" | "ready";

export interface LoadProgress {
  phase: LoadPhase;
  /** Bytes of the weight files done in this phase: arrived (download) or read by the engine (prepare). */
  bytes: number;
  /** Bytes of the weight files (their sizes summed). */
  totalBytes: number;
  /** This phase's bytes per second since it started (0 until measurable). */
  bytesPerSecond: number;
  /** Seconds until this phase ends at that rate; null when unknown (no rate yet, "threads", "ready"). */
  etaSeconds: number | null;
  /** Milliseconds since the load started. */
  elapsedMs: number;
}

export type LoadProgressCallback = (progress: LoadProgress) => void;

/** Events at most this often (ms), besides a phase's first and last. */
const MIN_INTERVAL_MS = 100;

const PHASES: readonly LoadPhase[] = ["download", "prepare", "threads", "ready"];

/**
 * Measures a load for `onProgress`. Wrap each weight file with `watch`; pass `tensors` as the engine's
 * tensor callback; call `stop` when the load ends. An exception thrown by `onProgress` (a caller
 * cancelling the load) is rethrown by the next read or tensor step, so the load stops there.
 */
export class LoadMeter {
  private readonly started: number;
  private readonly sources: ByteSource[] = [];
  private phase = 0;
  private phaseStart = { at: 0, bytes: 0 };
  private read = 0;
  private lastEmit = -Infinity;
  private timer: ReturnType<typeof setInterval> | null = null;
  private failure: { error: unknown } | null = null;

  constructor(
    private readonly onProgress: LoadProgressCallback | undefined,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.started = now();
  }

  /** `source`, counting what the engine reads from it; while its bytes arrive, reports them every 100 ms. */
  watch(source: ByteSource): ByteSource {
    if (this.onProgress === undefined) return source;
    this.sources.push(source);
    const counted = (n: number) => {
      this.rethrow();
      this.read += n;
      this.update();
    };
    const watched: ByteSource = {
      name: source.name,
      size: source.size,
      read: async (offset, length) => {
        this.rethrow();
        const bytes = await source.read(offset, length);
        counted(length);
        return bytes;
      },
      close: () => source.close(),
    };
    if (source.readInto) {
      const readInto = source.readInto.bind(source);
      watched.readInto = async (offset, out) => {
        this.rethrow();
        await readInto(offset, out);
        counted(out.length);
      };
    }
    if (source.arrived) watched.arrived = source.arrived.bind(source);
    if (this.downloading() && this.timer === null) this.timer = setInterval(() => this.update(), MIN_INTERVAL_MS);
    this.update(true);
    return watched;
  }

  /** The engine's callback: `done` of `total` tensors are in; the last one starts the "threads" phase. */
  readonly tensors = (done: number, total: number): void => {
    this.rethrow();
    if (done >= total) {
      this.update(); // ends a download whose last bytes arrived since the last report
      this.enter(2);
    }
    this.rethrow();
  };

  /**
   * The load succeeded: the last report, phase "ready" with every byte in. Rethrows what the callback
   * throws, so a caller can still cancel (the loader then disposes the model it built).
   */
  ready(): void {
    if (this.onProgress === undefined) return;
    this.stop();
    this.rethrow();
    this.enter(3);
    this.rethrow();
  }

  /** Ends the reports (the load finished or failed). */
  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  private totalBytes(): number {
    return this.sources.reduce((n, s) => n + s.size, 0);
  }

  private arrivedBytes(): number {
    return this.sources.reduce((n, s) => n + Math.min(s.size, s.arrived?.() ?? s.size), 0);
  }

  private downloading(): boolean {
    return this.sources.some((s) => s.arrived !== undefined && s.arrived() < s.size);
  }

  /** Bytes done in the current phase. */
  private done(): number {
    const total = this.totalBytes();
    if (this.phase === 0) return this.arrivedBytes();
    if (this.phase === 1) return Math.min(this.read, total);
    return total;
  }

  private update(force = false): void {
    if (this.failure !== null) return;
    if (this.phase === 0 && !this.downloading()) {
      if (this.sources.some((s) => s.arrived !== undefined)) this.emit(); // the download's last bytes
      this.stop();
      this.enter(1);
      return;
    }
    if (force || this.now() - this.lastEmit >= MIN_INTERVAL_MS) this.emit();
  }

  private enter(phase: number): void {
    if (phase <= this.phase && this.lastEmit !== -Infinity) return;
    if (phase >= 2 && this.phase === 1) {
      this.read = this.totalBytes(); // the engine skips some bytes (the header, padding): prepare ends whole
      this.emit();
    }
    this.phase = Math.max(this.phase, phase);
    this.phaseStart = { at: this.now(), bytes: this.done() };
    this.emit();
  }

  private emit(): void {
    if (this.onProgress === undefined || this.failure !== null) return;
    const now = this.now();
    const bytes = this.done();
    const totalBytes = this.totalBytes();
    const seconds = (now - this.phaseStart.at) / 1000;
    const rate = seconds > 0.05 ? (bytes - this.phaseStart.bytes) / seconds : 0;
    const phase = PHASES[this.phase];
    this.lastEmit = now;
    try {
      this.onProgress({
        phase,
        bytes,
        totalBytes,
        bytesPerSecond: rate,
        etaSeconds: (phase === "download" || phase === "prepare") && rate > 0 ? (totalBytes - bytes) / rate : null,
        elapsedMs: now - this.started,
      });
    } catch (error) {
      this.failure = { error };
      this.stop();
    }
  }

  private rethrow(): void {
    if (this.failure !== null) throw this.failure.error;
  }
}

/**
 * "download 45.1 / 176.5 MB, 61.2 MB/s, 2 s left": the phase, bytes (10^6), rate and time left; at the end
 * "ready: 176.5 MB in 3.1 s".
 */
export function describeLoadProgress(p: LoadProgress): string {
  const mb = (n: number) => (n / 1e6).toFixed(1);
  if (p.phase === "threads") return `starting threads (${mb(p.totalBytes)} MB in)`;
  if (p.phase === "ready") return `ready: ${mb(p.totalBytes)} MB in ${(p.elapsedMs / 1000).toFixed(1)} s`;
  const rate = p.bytesPerSecond > 0 ? `, ${mb(p.bytesPerSecond)} MB/s` : "";
  const eta = p.etaSeconds === null ? "" : `, ${p.etaSeconds < 10 ? p.etaSeconds.toFixed(1) : Math.round(p.etaSeconds)} s left`;
  return `${p.phase} ${mb(p.bytes)} / ${mb(p.totalBytes)} MB${rate}${eta}`;
}
