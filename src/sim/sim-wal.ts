/**
 * The simulated shared log of a process that hosts several raft groups: one write-ahead log
 * for every group, as the multi-raft host's storage engine keeps (docs/runtime-design.md,
 * "The host"). Every record carries the group it belongs to; recovery splits the log by group
 * and rebuilds each group's disk from its records alone. A crash may leave part of a write
 * that was in flight (whole records, then possibly a torn one); a torn record at the tail is
 * cut off on recovery.
 */
import type { ConfState, Entry, GroupId, HardState, Ready, Snapshot } from '../raft/index.js';
import { assert, MemoryStorage } from '../raft/index.js';

/** One record of the shared log: what one write did to one group's disk. */
export type WalRecord =
  | { readonly group: GroupId; readonly kind: 'snapshot'; readonly snapshot: Snapshot }
  | { readonly group: GroupId; readonly kind: 'entries'; readonly entries: readonly Entry[] }
  | { readonly group: GroupId; readonly kind: 'hard-state'; readonly hardState: HardState }
  | {
      readonly group: GroupId;
      readonly kind: 'snapshot-taken';
      readonly index: number;
      readonly confState: ConfState;
      readonly data: Uint8Array;
    }
  | { readonly group: GroupId; readonly kind: 'compact'; readonly index: number }
  | { readonly group: GroupId; readonly kind: 'conf-state'; readonly confState: ConfState };

/** A record whose write was cut short by a crash: its checksum does not match. */
type TornRecord = { readonly kind: 'torn' };

/** The log of one process: its records in write order. */
export class SimWal {
  private records: (WalRecord | TornRecord)[] = [];

  /** How many records the log holds (torn ones included). */
  get length(): number {
    return this.records.length;
  }

  /** Appends a whole record. */
  append(record: WalRecord): void {
    this.records.push(record);
  }

  /** Appends the start of a record whose write the crash interrupted. */
  appendTorn(): void {
    this.records.push({ kind: 'torn' });
  }

  /**
   * Rebuilds the disk of each of `groups` from the log, after cutting off a torn tail.
   * `mixByIndex` is the deliberate bug `wal-mixes-groups`: recovery indexes entries by log
   * index alone, so where another group wrote the same index later, its entry is taken.
   */
  recover(groups: readonly GroupId[], mixByIndex: boolean): Map<GroupId, WalStorage> {
    while (this.records.at(-1)?.kind === 'torn') this.records.pop();
    const storages = new Map(groups.map((group) => [group, new WalStorage(group)]));
    const latest = mixByIndex ? latestEntries(this.records) : undefined;
    for (const record of this.records) {
      assert(record.kind !== 'torn', 'a torn record in the middle of the shared log');
      const storage = storages.get(record.group);
      assert(storage !== undefined, `a record of group ${record.group}, which this process does not host`);
      storage.replay(record, latest);
    }
    for (const storage of storages.values()) storage.attach(this);
    return storages;
  }
}

/** The entry last written at each index, whatever its group: what `wal-mixes-groups` reads back. */
function latestEntries(records: readonly (WalRecord | TornRecord)[]): Map<number, Entry> {
  const latest = new Map<number, Entry>();
  for (const record of records) {
    if (record.kind !== 'entries') continue;
    for (const entry of record.entries) latest.set(entry.index, entry);
  }
  return latest;
}

/**
 * The records a Ready writes for `group`, in the order they reach the disk: a snapshot
 * received from the leader, the entries, then the hard state.
 */
export function readyRecords(group: GroupId, rd: Ready): WalRecord[] {
  const records: WalRecord[] = [];
  if (rd.snapshot !== undefined) records.push({ group, kind: 'snapshot', snapshot: rd.snapshot });
  if (rd.entries.length > 0) records.push({ group, kind: 'entries', entries: rd.entries });
  if (rd.hardState !== undefined) records.push({ group, kind: 'hard-state', hardState: rd.hardState });
  return records;
}

/**
 * One group's disk on a process with a shared log: the storage the group's core reads, whose
 * every write is also appended to the shared log as a record of the group.
 */
export class WalStorage extends MemoryStorage {
  private wal: SimWal | undefined;

  constructor(readonly group: GroupId) {
    super();
  }

  /** From now on, writes are recorded in `wal`. */
  attach(wal: SimWal): WalStorage {
    this.wal = wal;
    return this;
  }

  /** Redoes what `record` wrote (recovery; nothing is recorded again). */
  replay(record: WalRecord, latest: ReadonlyMap<number, Entry> | undefined): void {
    switch (record.kind) {
      case 'snapshot':
        super.applySnapshot(record.snapshot);
        break;
      case 'entries':
        super.append(
          latest === undefined ? record.entries : record.entries.map((e) => latest.get(e.index) ?? e),
        );
        break;
      case 'hard-state':
        super.setHardState(record.hardState);
        break;
      case 'snapshot-taken':
        super.createSnapshotSync(record.index, record.confState, record.data);
        break;
      case 'compact':
        super.compactSync(record.index);
        break;
      case 'conf-state':
        super.setConfState(record.confState);
        break;
    }
  }

  override setHardState(hardState: HardState): void {
    super.setHardState(hardState);
    this.wal?.append({ group: this.group, kind: 'hard-state', hardState });
  }

  override append(entries: readonly Entry[]): void {
    super.append(entries);
    if (entries.length > 0) this.wal?.append({ group: this.group, kind: 'entries', entries });
  }

  override applySnapshot(snapshot: Snapshot): void {
    super.applySnapshot(snapshot);
    this.wal?.append({ group: this.group, kind: 'snapshot', snapshot });
  }

  override setConfState(confState: ConfState): void {
    super.setConfState(confState);
    this.wal?.append({ group: this.group, kind: 'conf-state', confState });
  }

  override createSnapshotSync(index: number, confState: ConfState, data: Uint8Array): Snapshot {
    const snapshot = super.createSnapshotSync(index, confState, data);
    this.wal?.append({ group: this.group, kind: 'snapshot-taken', index, confState, data });
    return snapshot;
  }

  override compactSync(index: number): void {
    super.compactSync(index);
    this.wal?.append({ group: this.group, kind: 'compact', index });
  }
}
