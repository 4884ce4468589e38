/**
 * One write command's execution (etcd's `storeTxnWrite`): operations run against the
 * committed state plus this command's own uncommitted writes, which are staged here and
 * reach the store only if the whole command succeeds. A failure anywhere (an unknown
 * lease, a compacted read) throws and the stage is dropped, so nothing is half-applied.
 *
 * All writes of a command share one main revision (`revision`); each gets the next sub
 * revision. Responses are built before the final revision is known (a txn may turn out to
 * write nothing), so they are registered and stamped by `finish`.
 *
 * A committed key's create revision, version and lease come from its key index entry (like
 * etcd's treeIndex and lessor): the previous record is read from the store only for its
 * value — a put with `prevKv` or `ignoreValue`, a delete with `prevKv`, a VALUE compare.
 */

import { assert } from '../raft/assert.js';
import {
  compareBytes,
  copyBytes,
  inKeyRange,
  type KeyRange,
  keyBytes,
  keyString,
  parseKeyRange,
} from './bytes.js';
import { type StoredRecord, tombstoneKv } from './codec.js';
import { KvError } from './errors.js';
import { IndexEntry } from './key-index.js';
import { selectRange } from './range.js';
import type {
  Compare,
  DeleteRangeRequest,
  KeyValue,
  PutRequest,
  RangeRequest,
  RequestOp,
  ResponseOp,
  TxnRequest,
} from './types.js';

/** A key in a range: committed (its index entry) or staged (its kv). */
export interface RangeCandidate {
  readonly key: string;
  readonly entry?: IndexEntry;
  readonly kv?: KeyValue;
}

/** What a write needs to read from the committed state. */
export interface CommittedReads {
  /** The committed revision. */
  readonly revision: number;
  /** The index entry of `key`'s committed put, if the key exists now. */
  currentEntry(key: string): IndexEntry | undefined;
  /** The keys of `range` visible at `revision` (validated by the caller), in byte order. */
  candidates(range: KeyRange, revision: number): RangeCandidate[];
  /** The kv of a candidate. */
  load(candidate: RangeCandidate): KeyValue;
  /** Throws `COMPACTED` / `FUTURE_REV` unless `revision` (> 0) can be read. */
  checkReadable(revision: number): void;
  /** Whether lease `id` exists. */
  leaseExists(id: number): boolean;
}

/**
 * A key's version as a write finds it: its kv (staged by this command, or loaded), or its
 * committed index entry. Both carry `createRevision`, `version` and `lease`.
 */
export type Previous = KeyValue | IndexEntry;

/**
 * A staged write and the key's version before it (for lease bookkeeping and the watch
 * event's prevKv, loaded at commit from an index entry when a watcher wants it).
 */
export interface StagedChange {
  readonly key: string;
  readonly record: StoredRecord;
  readonly previous: Previous | undefined;
}

/** A zero kv: how a missing key compares (etcd `applyCompare`). */
const ZERO_KV: KeyValue = tombstoneKv(new Uint8Array(0), 0);

/** The staged state of one write command. */
export class WriteTxn {
  /** The main revision this command's writes get if it writes anything. */
  readonly revision: number;
  /** Staged writes in sub-revision order. */
  readonly changes: StagedChange[] = [];
  /** Latest staged state per key (null: deleted). */
  private readonly staged = new Map<string, KeyValue | null>();
  private readonly responses: { revision: number }[] = [];

  constructor(private readonly reads: CommittedReads) {
    this.revision = reads.revision + 1;
  }

  /** Runs one request op and returns its response. */
  run(op: RequestOp): ResponseOp {
    switch (op.type) {
      case 'range':
        return this.track({ type: 'range', revision: 0, ...this.range(op) });
      case 'put':
        return this.put(op);
      case 'deleteRange':
        return this.deleteRange(op);
      case 'txn':
        return this.txn(op);
    }
  }

  /** Deletes one key if it exists now (adding its previous kv to `prevKvs` if given); returns whether it did. */
  deleteKey(key: string, prevKvs?: KeyValue[]): boolean {
    let previous = this.find(key);
    if (previous === undefined) return false;
    if (prevKvs !== undefined) {
      previous = this.kvOf(key, previous);
      prevKvs.push(previous);
    }
    this.stage(key, { tombstone: true, kv: tombstoneKv(keyBytes(key), this.revision) }, previous);
    return true;
  }

  /** Stamps every response with the command's final revision (the committed one after it). */
  finish(revision: number): void {
    for (const response of this.responses) response.revision = revision;
  }

  private put(request: PutRequest): ResponseOp {
    const key = keyString(request.key);
    let previous = this.find(key);
    const ignoreValue = request.ignoreValue === true;
    const ignoreLease = request.ignoreLease === true;
    if ((ignoreValue || ignoreLease) && previous === undefined) throw new KvError('KEY_NOT_FOUND');
    const lease = ignoreLease ? previous!.lease : (request.lease ?? 0);
    if (lease !== 0 && !this.reads.leaseExists(lease)) throw new KvError('LEASE_NOT_FOUND');
    const wantsPrevKv = request.prevKv === true;
    // The value is the only thing the index lacks: read the record only when it is needed.
    const previousKv =
      previous !== undefined && (wantsPrevKv || ignoreValue) ? this.kvOf(key, previous) : undefined;
    if (previousKv !== undefined) previous = previousKv;
    const kv: KeyValue = {
      key: copyBytes(request.key),
      createRevision: previous?.createRevision ?? this.revision,
      modRevision: this.revision,
      version: (previous?.version ?? 0) + 1,
      value: ignoreValue ? previousKv!.value : copyBytes(request.value),
      lease,
    };
    this.stage(key, { tombstone: false, kv }, previous);
    return this.track(
      wantsPrevKv && previousKv !== undefined
        ? { type: 'put', revision: 0, prevKv: previousKv }
        : { type: 'put', revision: 0 },
    );
  }

  private deleteRange(request: DeleteRangeRequest): ResponseOp {
    const range = parseKeyRange(request);
    const prevKvs: KeyValue[] = [];
    const wanted = request.prevKv === true ? prevKvs : undefined;
    let deleted = 0;
    for (const candidate of this.liveCandidates(range)) {
      if (this.deleteKey(candidate.key, wanted)) deleted++;
    }
    return this.track({ type: 'deleteRange', revision: 0, deleted, prevKvs });
  }

  /**
   * Runs a txn. Like etcd, compares (nested ones too) see the state before the outermost
   * txn started, while reads and writes see the writes made before them.
   */
  private txn(request: TxnRequest): ResponseOp {
    const succeeded = request.compare.every((compare) => this.compareHolds(compare));
    const ops = succeeded ? request.success : request.failure;
    const responses = ops.map((op) => this.run(op));
    return this.track({ type: 'txn', revision: 0, succeeded, responses });
  }

  /** A range inside the command: at the current revision it sees staged writes. */
  private range(request: RangeRequest): { kvs: readonly KeyValue[]; more: boolean; count: number } {
    const range = parseKeyRange(request);
    const revision = request.revision ?? 0;
    const readsStaged = revision === 0 || (revision === this.revision && this.changes.length > 0);
    if (readsStaged) return selectRange(this.liveCandidates(range), request, (item) => this.load(item));
    this.reads.checkReadable(revision);
    return selectRange(this.reads.candidates(range, revision), request, (item) => this.reads.load(item));
  }

  private compareHolds(compare: Compare): boolean {
    const range = parseKeyRange(compare);
    const candidates = this.reads.candidates(range, this.reads.revision);
    if (candidates.length === 0) return compare.target !== 'VALUE' && compareKv(ZERO_KV, compare);
    // Only a VALUE compare reads the records; the index entry has every other field.
    const byValue = compare.target === 'VALUE';
    return candidates.every((candidate) =>
      compareKv(
        byValue ? this.reads.load(candidate) : (candidate.entry ?? this.reads.load(candidate)),
        compare,
      ),
    );
  }

  /** `key` as this command sees it: its staged kv, or its committed index entry. */
  private find(key: string): Previous | undefined {
    const staged = this.staged.get(key);
    if (staged !== undefined) return staged ?? undefined;
    return this.reads.currentEntry(key);
  }

  /** The kv of what {@link find} found: a committed one is read from the store. */
  private kvOf(key: string, found: Previous): KeyValue {
    return found instanceof IndexEntry ? this.reads.load({ key, entry: found }) : found;
  }

  /** The keys of `range` that exist as this command sees them, in byte order. */
  private liveCandidates(range: KeyRange): RangeCandidate[] {
    const committed = this.reads.candidates(range, this.reads.revision);
    if (this.staged.size === 0) return committed;
    const candidates = committed.filter((candidate) => !this.staged.has(candidate.key));
    let added = false;
    for (const [key, kv] of this.staged) {
      if (kv === null || !inKeyRange(key, range)) continue;
      candidates.push({ key, kv });
      added = true;
    }
    if (added) candidates.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return candidates;
  }

  private load(candidate: RangeCandidate): KeyValue {
    return candidate.kv ?? this.reads.load(candidate);
  }

  private stage(
    key: string,
    write: { tombstone: boolean; kv: KeyValue },
    previous: Previous | undefined,
  ): void {
    const record: StoredRecord = { main: this.revision, sub: this.changes.length, ...write };
    this.changes.push({ key, record, previous });
    this.staged.set(key, write.tombstone ? null : write.kv);
  }

  private track<Response extends { revision: number }>(response: Response): Response {
    this.responses.push(response);
    return response;
  }
}

/** Whether `kv` satisfies `compare` (etcd `compareKV`); an index entry serves all but VALUE. */
function compareKv(kv: Previous, compare: Compare): boolean {
  const difference = compareField(kv, compare);
  switch (compare.result) {
    case 'EQUAL':
      return difference === 0;
    case 'NOT_EQUAL':
      return difference !== 0;
    case 'GREATER':
      return difference > 0;
    case 'LESS':
      return difference < 0;
  }
}

function compareField(kv: Previous, compare: Compare): number {
  switch (compare.target) {
    case 'VALUE':
      if (kv instanceof IndexEntry) assert(false, 'kv: a VALUE compare without the value');
      return compareBytes(kv.value, compare.value);
    case 'VERSION':
      return kv.version - compare.value;
    case 'CREATE':
      return kv.createRevision - compare.value;
    case 'MOD':
      return kv.modRevision - compare.value;
    case 'LEASE':
      return kv.lease - compare.value;
  }
}
