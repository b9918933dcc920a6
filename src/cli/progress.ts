// The progress bar on stderr (loading, converting): redrawn in place on a terminal; silent elsewhere (logs
// and pipes get the one summary line the command prints when it is done).
export interface ProgressBar {
  /** `done` of `total`, and a note after the percentage (a load's phase, bytes, rate and time left). */
  update(done: number, total: number, note?: string): void;
  /** Clears the bar so the next line starts clean. */
  end(): void;
}

export function progressBar(label: string, stream: NodeJS.WriteStream = process.stderr): ProgressBar {
  if (!stream.isTTY) return { update() {}, end() {} };
  const width = 30;
  let shown = -1;
  let shownNote: string | undefined;
  return {
    update(done, total, note) {
      const filled = total > 0 ? Math.round((done / total) * width) : width;
      if (filled === shown && note === shownNote) return;
      shown = filled;
      shownNote = note;
      const pct = String(total > 0 ? Math.floor((done / total) * 100) : 100).padStart(3);
      stream.write(`\r\x1b[2K${label} [${"#".repeat(filled)}${".".repeat(width - filled)}] ${pct}%${note ? ` ${note}` : ""}`);
    },
    end() {
      if (shown >= 0) stream.write("\r\x1b[2K");
    },
  };
}
