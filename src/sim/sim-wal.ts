/**
 * The simulated shared log of a process that hosts several raft groups: one write-ahead log
 * for every group, as the multi-raft host's storage engine keeps (docs/runtime-design.md,
 * "The host"). Every record carries the group it belongs to; recovery splits the log by group
 * and rebuilds each group's disk from its records alone. A crash may leave some of the
 * writes that were in flight (whole records, then possibly a torn one); a torn record at the
 * tail is cut off on recovery.
 */
import type { ConfState, Entry, GroupId, HardState, Ready, Snapshot, StorageUpdate } from '../raft/index.js';
import { assert, MemoryStorage } from '../raft/index.js';

/** What one write does to one group's disk. */
export type WalOp =
  | { readonly kind: 'snapshot'; readonly snapshot: Snapshot }
  | { readonly kind: 'entries'; readonly entries: readonly Entry[] }
  | { readonly kind: 'hard-state'; readonly hardState: HardState }
  | {
      readonly kind: 'snapshot-taken';
      readonly index: number;
      readonly confState: ConfState;
      readonly data: Uint8Array;
    }
  | { readonly kind: 'compact'; readonly index: number }
  | { readonly kind: 'conf-state'; readonly confState: ConfState };

/**
 * One record of the shared log: one write of one group, tagged with the group. A Ready's
 * snapshot, entries and hard state are one record, as the storage writes a Ready as one
 * checksummed frame: a crash keeps all of it or none.
 */
export interface WalRecord {
  readonly group: GroupId;
  readonly ops: readonly WalOp[];
}

/** A record whose write was cut short by a crash: its checksum does not match. */
type TornRecord = { readonly torn: true };

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
    this.records.push({ torn: true });
  }

  /**
   * Rebuilds the disk of each of `groups` from the log, after cutting off a torn tail.
   * `mixByIndex` is the deliberate bug `wal-mixes-groups`: recovery indexes entries by log
   * index alone, so where another group wrote the same index later, its entry is taken.
   */
  recover(groups: readonly GroupId[], mixByIndex: boolean): Map<GroupId, WalStorage> {
    this.cutTornTail();
    const storages = new Map(groups.map((group) => [group, new WalStorage(group)]));
    const latest = mixByIndex ? latestEntries(this.records) : undefined;
    for (const record of this.records) {
      assert(!('torn' in record), 'a torn record in the middle of the shared log');
      const storage = storages.get(record.group);
      assert(storage !== undefined, `a record of group ${record.group}, which this process does not host`);
      for (const op of record.ops) storage.replay(op, latest);
    }
    for (const storage of storages.values()) storage.attach(this);
    return storages;
  }

  /** Cuts off the torn records at the tail; returns how many there were. */
  cutTornTail(): number {
    let cut = 0;
    while (this.records.length > 0 && 'torn' in this.records.at(-1)!) {
      this.records.pop();
      cut++;
    }
    return cut;
  }
}

/** The entry last written at each index, whatever its group: what `wal-mixes-groups` reads back. */
function latestEntries(records: readonly (WalRecord | TornRecord)[]): Map<number, Entry> {
  const latest = new Map<number, Entry>();
  for (const record of records) {
    if ('torn' in record) continue;
    for (const op of record.ops) {
      if (op.kind === 'entries') for (const entry of op.entries) latest.set(entry.index, entry);
    }
  }
  return latest;
}

/** The record a Ready writes for `group`: a snapshot received from the leader, the entries, the hard state. */
export function readyRecord(group: GroupId, rd: Ready): WalRecord {
  const ops: WalOp[] = [];
  if (rd.snapshot !== undefined) ops.push({ kind: 'snapshot', snapshot: rd.snapshot });
  if (rd.entries.length > 0) ops.push({ kind: 'entries', entries: rd.entries });
  if (rd.hardState !== undefined) ops.push({ kind: 'hard-state', hardState: rd.hardState });
  return { group, ops };
}

/**
 * One group's disk on a process with a shared log: the storage the group's core reads, whose
 * every write is also appended to the shared log as a record of the group (a Ready's writes,
 * through `saveSync`, as one record).
 */
export class WalStorage extends MemoryStorage {
  private wal: SimWal | undefined;
  /** The ops of the `saveSync` in progress, written as one record when it ends. */
  private batch: WalOp[] | undefined;

  constructor(readonly group: GroupId) {
    super();
  }

  /** From now on, writes are recorded in `wal`. */
  attach(wal: SimWal): WalStorage {
    this.wal = wal;
    return this;
  }

  /** Redoes what `op` wrote (recovery; nothing is recorded again). */
  replay(op: WalOp, latest: ReadonlyMap<number, Entry> | undefined): void {
    switch (op.kind) {
      case 'snapshot':
        super.applySnapshot(op.snapshot);
        break;
      case 'entries':
        super.append(latest === undefined ? op.entries : op.entries.map((e) => latest.get(e.index) ?? e));
        break;
      case 'hard-state':
        super.setHardState(op.hardState);
        break;
      case 'snapshot-taken':
        super.createSnapshotSync(op.index, op.confState, op.data);
        break;
      case 'compact':
        super.compactSync(op.index);
        break;
      case 'conf-state':
        super.setConfState(op.confState);
        break;
    }
  }

  override saveSync(update: StorageUpdate): void {
    this.batch = [];
    super.saveSync(update);
    const ops = this.batch;
    this.batch = undefined;
    if (ops.length > 0) this.wal?.append({ group: this.group, ops });
  }

  override setHardState(hardState: HardState): void {
    super.setHardState(hardState);
    this.record({ kind: 'hard-state', hardState });
  }

  override append(entries: readonly Entry[]): void {
    super.append(entries);
    if (entries.length > 0) this.record({ kind: 'entries', entries });
  }

  override applySnapshot(snapshot: Snapshot): void {
    super.applySnapshot(snapshot);
    this.record({ kind: 'snapshot', snapshot });
  }

  override setConfState(confState: ConfState): void {
    super.setConfState(confState);
    this.record({ kind: 'conf-state', confState });
  }

  override createSnapshotSync(index: number, confState: ConfState, data: Uint8Array): Snapshot {
    const snapshot = super.createSnapshotSync(index, confState, data);
    this.record({ kind: 'snapshot-taken', index, confState, data });
    return snapshot;
  }

  override compactSync(index: number): void {
    super.compactSync(index);
    this.record({ kind: 'compact', index });
  }

  private record(op: WalOp): void {
    if (this.batch !== undefined) this.batch.push(op);
    else this.wal?.append({ group: this.group, ops: [op] });
  }
}
