/**
 * The runtime tuning options `createNode` and `createHost` share, and the runtime options
 * they set (the defaults for those not given).
 */
import type { NodeConfig } from './create-node.js';
import { DEFAULT_RAFT_NODE_OPTIONS, type RaftNodeOptions } from './options.js';

/** The tuning options of the library's configs (`NodeConfig`'s, which documents them). */
export type Tuning = Pick<
  NodeConfig<unknown, unknown, unknown, unknown>,
  'tickMs' | 'electionTicks' | 'requestTimeoutMs' | 'snapshotEntries' | 'snapshotKeepEntries' | 'sessionsMax'
>;

/** The runtime options a {@link Tuning} sets. */
export type TunedOptions = Pick<
  RaftNodeOptions,
  'tickMs' | 'electionTicks' | 'requestTimeoutMs' | 'snapshotPolicy' | 'snapshotKeepEntries' | 'sessionsMax'
>;

/** The runtime options of `config`'s tuning, defaults for those it leaves out. */
export function tunedOptions(config: Tuning): TunedOptions {
  const d = DEFAULT_RAFT_NODE_OPTIONS;
  return {
    tickMs: config.tickMs ?? d.tickMs,
    electionTicks: config.electionTicks ?? d.electionTicks,
    requestTimeoutMs: config.requestTimeoutMs ?? d.requestTimeoutMs,
    snapshotPolicy:
      config.snapshotEntries === undefined ? {} : { entriesPerSnapshot: config.snapshotEntries },
    snapshotKeepEntries: config.snapshotKeepEntries ?? d.snapshotKeepEntries,
    sessionsMax: config.sessionsMax ?? d.sessionsMax,
  };
}
