/**
 * The runtime's lifecycle: running until stopped, either by `stop` or by a fatal error, and
 * what each transition does. A storage failure is fatal: every waiting request fails with
 * `FATAL`, nothing more is sent, applied or acknowledged, and `onFatal` is called (the serve
 * command exits). A stop fails waiting requests with `STOPPED` and closes the node's I/O.
 */
import { FatalError, type FlotillaError, StoppedError } from './errors.js';
import type { NodeLogger } from './options.js';

/** What {@link Lifecycle} does to the rest of the runtime on a transition. */
export interface LifecycleHooks {
  /** Stops the tick timer. */
  readonly stopTimer: () => void;
  /** Fails every waiting request (proposals, reads, leader and conf change waiters) with `error`. */
  readonly failAll: (error: FlotillaError) => void;
  /** Stops the transport (after a fatal error, without waiting for it). */
  readonly stopTransport: () => Promise<void>;
  /**
   * Closes the node's I/O in order: transport, the Ready loop's pass and a snapshot in
   * progress, storage, the state machine, the data directory lock.
   */
  readonly close: () => Promise<void>;
  /** Whether the data directory lock is already released (nothing is left to close). */
  readonly lockReleased: () => boolean;
  readonly logger: NodeLogger;
  /** Called once when the node stops because of a fatal error. */
  readonly onFatal: (error: unknown) => void;
}

/** Whether the node runs, and its transitions to stopped and failed. */
export class Lifecycle {
  private isStopped = false;
  private fatalError: unknown;
  /** The close in progress or done, once a stop began it. */
  private closing: Promise<void> | undefined;

  constructor(private readonly hooks: LifecycleHooks) {}

  /** Whether the node has stopped (by {@link Lifecycle.stop} or a fatal error): it takes no more input. */
  get stopped(): boolean {
    return this.isStopped;
  }

  /** The fatal error that stopped the node, if any. */
  get failure(): unknown {
    return this.fatalError;
  }

  /** Throws `FATAL` or `STOPPED` unless the node is running. */
  ensureRunning(): void {
    if (this.fatalError !== undefined) throw new FatalError('FATAL', 'node stopped after a fatal error');
    if (this.isStopped) throw new StoppedError('STOPPED', 'node is stopped');
  }

  /**
   * Stops the node: fails waiting requests with `STOPPED` and closes its I/O. After a fatal
   * error it closes what the failure left open.
   */
  async stop(): Promise<void> {
    // A second stop waits for the first one's close: a caller that exits the process once
    // stop resolves must not exit while storage is still closing (a node that stops itself,
    // once removed, is stopped again by the process's shutdown).
    if (this.isStopped && this.fatalError === undefined) return this.closing;
    const wasStopped = this.isStopped;
    this.isStopped = true;
    this.hooks.stopTimer();
    this.hooks.failAll(new StoppedError('STOPPED', 'node is stopping'));
    if (wasStopped && this.fatalError !== undefined && this.hooks.lockReleased()) return;
    this.closing = this.hooks.close();
    await this.closing;
  }

  /** Stops everything after a fatal error: nothing more is sent, applied or acknowledged. */
  fail(error: unknown): void {
    if (this.fatalError !== undefined) return;
    this.fatalError = error;
    this.isStopped = true;
    this.hooks.stopTimer();
    this.hooks.logger.error(
      `fatal: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
    );
    this.hooks.failAll(new FatalError('FATAL', 'node stopped after a fatal error', { cause: error }));
    void this.hooks.stopTransport().catch(() => {});
    this.hooks.onFatal(error);
  }
}
