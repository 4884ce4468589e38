/** Progress of a byte stream on a terminal or a log: "received N bytes", throttled. */

/** Interval of progress updates, in milliseconds. */
const PROGRESS_INTERVAL_MS = 250;

/**
 * Prints "received N bytes" to a stream at most every {@link PROGRESS_INTERVAL_MS}: on a
 * terminal one line rewritten in place, elsewhere one line per update.
 */
export class ByteProgress {
  private lastMs = 0;
  private readonly started = Date.now();

  constructor(private readonly out: NodeJS.WriteStream) {}

  /** Reports `bytes` received so far (throttled). */
  update(bytes: number): void {
    const now = Date.now();
    if (now - this.lastMs < PROGRESS_INTERVAL_MS) return;
    this.lastMs = now;
    this.print(`received ${formatBytes(bytes)}`);
  }

  /** The last report (never throttled), ending the line. */
  finish(bytes: number, how: 'done' | 'failed'): void {
    const seconds = (Date.now() - this.started) / 1000;
    this.print(`received ${formatBytes(bytes)} in ${seconds.toFixed(1)} s, ${how}`);
    if (this.out.isTTY === true) this.out.write('\n');
  }

  private print(text: string): void {
    if (this.out.isTTY === true) this.out.write(`\r\x1b[K${text}`);
    else this.out.write(`${text}\n`);
  }
}

/** `N bytes`, with MiB alongside above one MiB. */
function formatBytes(bytes: number): string {
  return bytes < 1024 * 1024 ? `${bytes} bytes` : `${bytes} bytes (${(bytes / 1024 / 1024).toFixed(1)} MiB)`;
}
