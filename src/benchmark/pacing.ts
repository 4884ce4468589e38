/**
 * Keys, rate limiting and the progress bar of `flotilla bench`.
 */
import { SingleBar } from 'cli-progress';

/**
 * etcd's benchmark key for index `n`: a `keySize`-byte buffer holding Go's
 * `binary.PutVarint(n)` (zigzag, then 7 bits a byte, low first) and zeros after it.
 */
export function benchKey(n: number, keySize: number): Buffer {
  const key = Buffer.alloc(keySize);
  let value = n * 2;
  let i = 0;
  while (value >= 128) {
    key[i++] = (value % 128) | 0x80;
    value = Math.floor(value / 128);
  }
  key[i] = value;
  return key;
}

/**
 * A token bucket like Go's `rate.Limiter` used by etcd's tool: `ratePerSecond` tokens a
 * second, at most `burst` saved up; each caller reserves a token and waits until it is due.
 */
export class RateLimiter {
  private tokens: number;
  private last = performance.now();

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
  ) {
    this.tokens = burst;
  }

  /** Takes one token; resolves when it is due (undefined: it is due now). */
  take(): Promise<void> | undefined {
    const now = performance.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.ratePerSecond) / 1000);
    this.last = now;
    this.tokens -= 1;
    if (this.tokens >= 0) return undefined;
    const waitMs = (-this.tokens * 1000) / this.ratePerSecond;
    return new Promise((resolve) => setTimeout(resolve, waitMs));
  }
}

/** Progress of a run: a bar on stderr, or nothing. */
export interface Progress {
  stop(): void;
}

/**
 * A progress bar on stderr when `enabled`, its value read from `current()` five times a
 * second by a timer rather than updated per request, so that drawing it costs the measured
 * client next to nothing.
 */
export function startProgress(total: number, enabled: boolean, current: () => number, label = ''): Progress {
  if (!enabled) return { stop: () => undefined };
  const bar = new SingleBar({
    stream: process.stderr,
    format: `${label}{bar} {percentage}% | {value}/{total} | {duration}s`,
    hideCursor: true,
    noTTYOutput: !process.stderr.isTTY,
    notTTYSchedule: 1000,
    fps: 5,
  });
  bar.start(total, 0);
  const timer = setInterval(() => bar.update(current()), 200);
  return {
    stop: () => {
      clearInterval(timer);
      bar.update(current());
      bar.stop();
    },
  };
}
