// Where the commands print. A reader may leave before the output ends (`mobilellm generate | head -c 1`):
// Node then gets EPIPE on its next write to stdout, which, unhandled, ends the process with a stack trace
// and exit code 1. Here a closed stdout (or stderr) is what it is for a Unix tool: the end of the
// command's audience. Writes to it become no-ops, `stdoutGone` aborts, so a generation stops after the
// token in flight, and the command returns quietly (exit code 0).

const gone = new AbortController();

/** Aborted once stdout's reader has gone: the command's remaining work is for nobody. */
export const stdoutGone: AbortSignal = gone.signal;

/**
 * Watches stdout and stderr for a reader that went away (EPIPE, or a write after the stream was
 * destroyed by it); other stream errors are rethrown as before. Called once, before anything is printed.
 */
export function watchOutput(): void {
  const quietOnClose = (stream: NodeJS.WriteStream, onGone: () => void) =>
    stream.on("error", (err: NodeJS.ErrnoException) => {
      if (err.code !== "EPIPE" && err.code !== "ERR_STREAM_DESTROYED") throw err;
      onGone();
    });
  quietOnClose(process.stdout, () => gone.abort());
  quietOnClose(process.stderr, () => undefined);
}

/** Writes `s` to stdout, unless its reader has gone. */
export function print(s: string): void {
  if (!stdoutGone.aborted && !process.stdout.destroyed) process.stdout.write(s);
}

/** Writes `s` and a newline to stdout, unless its reader has gone. */
export function printLine(s: string): void {
  print(s + "\n");
}
