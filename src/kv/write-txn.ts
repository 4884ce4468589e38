/**
 * One write command's execution (etcd's `storeTxnWrite`): operations run against the
 * committed state plus this command's own uncommitted writes, which are staged here and
 * reach the store only if the whole command succeeds. A failure anywhere (an unknown
 * lease, a compacted read) throws and the stage is dropped, so nothing is half-applied.
 *
 * All writes of a command share one main revision (`revision`); each gets the next sub
 * revision. Responses are built before the final revision is known (a txn may turn out to
 * write nothing), so they are registered and stamped by `finish`.
 */

import { compareBytes, copyBytes, inKeyRange, type KeyRange, keyString, parseKeyRange } from './bytes.js';
import { type StoredRecord, tombstoneKv } from './codec.js';
import { KvError } from './errors.js';
import type { IndexEntry } from './key-index.js';
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
  /** The committed kv of `key`, if it exists now. */
  current(key: string): KeyValue | undefined;
  /** The keys of `range` visible at `revision` (validated by the caller), in byte order. */
  candidates(range: KeyRange, revision: number): RangeCandidate[];
  /** The kv of a candidate. */
  load(candidate: RangeCandidate): KeyValue;
  /** Throws `COMPACTED` / `FUTURE_REV` unless `revision` (> 0) can be read. */
  checkReadable(revision: number): void;
  /** Whether lease `id` exists. */
  leaseExists(id: number): boolean;
}

/** A staged write and the key's version before it (for lease bookkeeping and prevKv). */
export interface StagedChange {
  readonly key: string;
  readonly record: StoredRecord;
  readonly prevKv: KeyValue | undefined;
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

  /** Deletes one key if it exists now; returns its previous kv. */
  deleteKey(key: string): KeyValue | undefined {
    const previous = this.current(key);
    if (previous === undefined) return undefined;
    this.stage(key, { tombstone: true, kv: tombstoneKv(previous.key, this.revision) }, previous);
    return previous;
  }

  /** Stamps every response with the command's final revision (the committed one after it). */
  finish(revision: number): void {
    for (const response of this.responses) response.revision = revision;
  }

  private put(request: PutRequest): ResponseOp {
    const key = keyString(request.key);
    const previous = this.current(key);
    const ignoreValue = request.ignoreValue === true;
    const ignoreLease = request.ignoreLease === true;
    if ((ignoreValue || ignoreLease) && previous === undefined) throw new KvError('KEY_NOT_FOUND');
    const lease = ignoreLease ? previous!.lease : (request.lease ?? 0);
    if (lease !== 0 && !this.reads.leaseExists(lease)) throw new KvError('LEASE_NOT_FOUND');
    const kv: KeyValue = {
      key: copyBytes(request.key),
      createRevision: previous?.createRevision ?? this.revision,
      modRevision: this.revision,
      version: (previous?.version ?? 0) + 1,
      value: ignoreValue ? previous!.value : copyBytes(request.value),
      lease,
    };
    this.stage(key, { tombstone: false, kv }, previous);
    const withPrevKv = request.prevKv === true && previous !== undefined;
    return this.track(
      withPrevKv ? { type: 'put', revision: 0, prevKv: previous } : { type: 'put', revision: 0 },
    );
  }

  private deleteRange(request: DeleteRangeRequest): ResponseOp {
    const range = parseKeyRange(request);
    const deleted: KeyValue[] = [];
    for (const candidate of this.liveCandidates(range)) {
      const previous = this.deleteKey(candidate.key);
      if (previous !== undefined) deleted.push(previous);
    }
    const prevKvs = request.prevKv === true ? deleted : [];
    return this.track({ type: 'deleteRange', revision: 0, deleted: deleted.length, prevKvs });
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
    return candidates.every((candidate) => compareKv(this.reads.load(candidate), compare));
  }

  /** The kv of `key` as this command sees it. */
  private current(key: string): KeyValue | undefined {
    const staged = this.staged.get(key);
    if (staged !== undefined) return staged ?? undefined;
    return this.reads.current(key);
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
    prevKv: KeyValue | undefined,
  ): void {
    const record: StoredRecord = { main: this.revision, sub: this.changes.length, ...write };
    this.changes.push({ key, record, prevKv });
    this.staged.set(key, write.tombstone ? null : write.kv);
  }

  private track<Response extends { revision: number }>(response: Response): Response {
    this.responses.push(response);
    return response;
  }
}

/** Whether `kv` satisfies `compare` (etcd `compareKV`). */
function compareKv(kv: KeyValue, compare: Compare): boolean {
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

function compareField(kv: KeyValue, compare: Compare): number {
  switch (compare.target) {
    case 'VALUE':
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
