// The load progress bar on stderr: redrawn in place on a terminal; silent elsewhere (logs and pipes get
// the one summary line the command prints when loading is done).
export interface ProgressBar {
  update(done: number, total: number): void;
  /** Clears the bar so the next line starts clean. */
  end(): void;
}

export function progressBar(label: string, stream: NodeJS.WriteStream = process.stderr): ProgressBar {
  if (!stream.isTTY) return { update() {}, end() {} };
  const width = 30;
  let shown = -1;
  return {
    update(done, total) {
      const filled = Math.round((done / total) * width);
      if (filled === shown) return;
      shown = filled;
      const pct = String(Math.floor((done / total) * 100)).padStart(3);
      stream.write(`\r${label} [${"#".repeat(filled)}${".".repeat(width - filled)}] ${pct}%`);
    },
    end() {
      if (shown >= 0) stream.write("\r\x1b[2K");
    },
  };
}
