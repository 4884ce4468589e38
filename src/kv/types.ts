/**
 * The data model of the key-value state machine: etcd v3's, field for field, so the etcd
 * gRPC API (`etcdserverpb.KV`, `Lease`, `Watch`) maps onto it directly. Keys and values are
 * bytes. Field names are etcd's in camelCase; enums are string literals.
 *
 * Every type here is immutable from the caller's point of view: objects a backend returns
 * may share memory with its state, so callers must not modify them.
 */

import type { KvError } from './errors.js';

/** One version of a key (etcd `mvccpb.KeyValue`). */
export interface KeyValue {
  readonly key: Uint8Array;
  /** The revision of the last creation of the key (after a delete, a new creation). */
  readonly createRevision: number;
  /** The revision of the last write to the key. */
  readonly modRevision: number;
  /** 1 on creation, +1 per put; a deleted key has version 0. */
  readonly version: number;
  readonly value: Uint8Array;
  /** The attached lease id, 0 for none. */
  readonly lease: number;
}

/** Which field a range sorts by. */
export type SortTarget = 'KEY' | 'VERSION' | 'CREATE' | 'MOD' | 'VALUE';
/** Sort direction; `NONE` keeps key order (ascending). */
export type SortOrder = 'NONE' | 'ASCEND' | 'DESCEND';

/**
 * A key range as etcd spells it: `rangeEnd` absent or empty means the single key `key`;
 * `rangeEnd` = `[0]` means every key `>= key`; otherwise `[key, rangeEnd)`.
 */
export interface KeyRangeRequest {
  readonly key: Uint8Array;
  readonly rangeEnd?: Uint8Array;
}

/** etcd `RangeRequest`. Absent numbers are 0 and absent flags false. */
export interface RangeRequest extends KeyRangeRequest {
  /** At most this many kvs; 0 means no limit. */
  readonly limit?: number;
  /** Read at this revision; 0 means the current one. */
  readonly revision?: number;
  readonly sortOrder?: SortOrder;
  readonly sortTarget?: SortTarget;
  /** Accepted and ignored: where a read is served is the runtime's business. */
  readonly serializable?: boolean;
  readonly keysOnly?: boolean;
  readonly countOnly?: boolean;
  readonly minModRevision?: number;
  readonly maxModRevision?: number;
  readonly minCreateRevision?: number;
  readonly maxCreateRevision?: number;
}

/** etcd `RangeResponse`; `revision` is the header revision. */
export interface RangeResponse {
  readonly revision: number;
  readonly kvs: readonly KeyValue[];
  /** Whether more kvs than `limit` matched. */
  readonly more: boolean;
  /** How many keys the range holds at the read revision (before limit and filters, like etcd). */
  readonly count: number;
}

/** etcd `PutRequest`. */
export interface PutRequest {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
  /** Lease to attach, 0 (default) for none. */
  readonly lease?: number;
  readonly prevKv?: boolean;
  /** Keep the current value (the key must exist; `value` must be empty). */
  readonly ignoreValue?: boolean;
  /** Keep the current lease (the key must exist; `lease` must be 0). */
  readonly ignoreLease?: boolean;
}

/** etcd `PutResponse`. */
export interface PutResponse {
  readonly revision: number;
  /** The key's previous version, when asked for and the key existed. */
  readonly prevKv?: KeyValue;
}

/** etcd `DeleteRangeRequest`. */
export interface DeleteRangeRequest extends KeyRangeRequest {
  readonly prevKv?: boolean;
}

/** etcd `DeleteRangeResponse`. */
export interface DeleteRangeResponse {
  readonly revision: number;
  readonly deleted: number;
  /** The deleted kvs in key order, when asked for (else empty). */
  readonly prevKvs: readonly KeyValue[];
}

/** What a compare looks at. */
export type CompareTarget = 'VERSION' | 'CREATE' | 'MOD' | 'VALUE' | 'LEASE';
/** How a compare relates the stored field to the given one. */
export type CompareResult = 'EQUAL' | 'GREATER' | 'LESS' | 'NOT_EQUAL';

/**
 * etcd `Compare`: every key of the range must satisfy `stored <result> value`. A missing
 * key compares as an all-zero kv, except that a `VALUE` compare on it is false.
 */
export type Compare = KeyRangeRequest & { readonly result: CompareResult } & (
    | { readonly target: 'VALUE'; readonly value: Uint8Array }
    | { readonly target: 'VERSION' | 'CREATE' | 'MOD' | 'LEASE'; readonly value: number }
  );

/** One operation of a transaction branch (etcd `RequestOp`). */
export type RequestOp =
  | ({ readonly type: 'range' } & RangeRequest)
  | ({ readonly type: 'put' } & PutRequest)
  | ({ readonly type: 'deleteRange' } & DeleteRangeRequest)
  | ({ readonly type: 'txn' } & TxnRequest);

/** etcd `TxnRequest`: `success` runs when every compare holds, else `failure`. */
export interface TxnRequest {
  readonly compare: readonly Compare[];
  readonly success: readonly RequestOp[];
  readonly failure: readonly RequestOp[];
}

/** The response to one {@link RequestOp} (etcd `ResponseOp`). */
export type ResponseOp =
  | ({ readonly type: 'range' } & RangeResponse)
  | ({ readonly type: 'put' } & PutResponse)
  | ({ readonly type: 'deleteRange' } & DeleteRangeResponse)
  | ({ readonly type: 'txn' } & TxnResponse);

/** etcd `TxnResponse`. Every write of the transaction (nested ones too) shares `revision`. */
export interface TxnResponse {
  readonly revision: number;
  readonly succeeded: boolean;
  readonly responses: readonly ResponseOp[];
}

/** Drops history below `revision` (etcd `CompactionRequest`). */
export interface CompactRequest {
  readonly revision: number;
}

/**
 * Grants a lease. The id is chosen by the leader before proposing (never 0), and `nowMs` is
 * the leader's clock at proposal: the state machine never reads a clock.
 */
export interface LeaseGrantRequest {
  readonly id: number;
  readonly ttlSeconds: number;
  readonly nowMs: number;
}

/** Revokes a lease and deletes every key attached to it, in one revision. */
export interface LeaseRevokeRequest {
  readonly id: number;
}

/**
 * Records a lease's remaining TTL as of `nowMs` (etcd `LeaseCheckpoint`), so a new leader
 * resumes the countdown instead of restarting it from the granted TTL.
 */
export interface LeaseCheckpointRequest {
  readonly id: number;
  readonly remainingTtlSeconds: number;
  readonly nowMs: number;
}

/** The alarms a member can raise (etcd `AlarmType`; Flotilla raises only `NOSPACE`). */
export type AlarmType = 'NOSPACE';

/** A raised alarm (etcd `AlarmMember`): part of the replicated state until disarmed. */
export interface KvAlarm {
  /** The member that raised it. */
  readonly memberId: number;
  readonly alarm: AlarmType;
}

/**
 * Raises or clears an alarm (etcd `AlarmRequest` ACTIVATE / DEACTIVATE). While `NOSPACE` is
 * raised, commands that could grow the store (puts, txns with puts, lease grants) fail with
 * `NO_SPACE`; reads, deletes and compactions go on.
 */
export interface AlarmRequest {
  readonly action: 'activate' | 'deactivate';
  readonly memberId: number;
  readonly alarm: AlarmType;
}

/** A client's exactly-once session: `seq` increases with each new command of `clientId`. */
export interface ClientSession {
  readonly clientId: number;
  readonly seq: number;
}

/** A command as carried in a log entry. */
export type KvCommand = (
  | ({ readonly type: 'range' } & RangeRequest)
  | ({ readonly type: 'put' } & PutRequest)
  | ({ readonly type: 'deleteRange' } & DeleteRangeRequest)
  | ({ readonly type: 'txn' } & TxnRequest)
  | ({ readonly type: 'compact' } & CompactRequest)
  | ({ readonly type: 'leaseGrant' } & LeaseGrantRequest)
  | ({ readonly type: 'leaseRevoke' } & LeaseRevokeRequest)
  | ({ readonly type: 'leaseCheckpoint' } & LeaseCheckpointRequest)
  | ({ readonly type: 'alarm' } & AlarmRequest)
) & {
  /** Present when the client wants exactly-once application of retries. */
  readonly session?: ClientSession;
};

/** The response to a command; `revision` is the store revision after it (the header revision). */
export type KvResponse =
  | ResponseOp
  | { readonly type: 'compact'; readonly revision: number }
  | {
      readonly type: 'leaseGrant';
      readonly revision: number;
      readonly id: number;
      readonly ttlSeconds: number;
    }
  | { readonly type: 'leaseRevoke'; readonly revision: number }
  | { readonly type: 'leaseCheckpoint'; readonly revision: number }
  /** `alarms`: the alarm activated or deactivated, empty when nothing changed (as etcd answers). */
  | { readonly type: 'alarm'; readonly revision: number; readonly alarms: readonly KvAlarm[] };

/** The outcome of one command: a response, or the error it deterministically failed with. */
export type KvResult =
  | { readonly ok: true; readonly response: KvResponse }
  | { readonly ok: false; readonly error: KvError };

/** A committed log entry to apply; `command` is null for entries that carry none (no-ops, membership). */
export interface KvEntry {
  readonly index: number;
  readonly command: KvCommand | null;
}

/** A lease as stored (etcd lessor state that is replicated). */
export interface LeaseInfo {
  readonly id: number;
  /** The TTL it was granted with. */
  readonly ttlSeconds: number;
  /** The TTL remaining as of `anchorMs` (the granted TTL at grant, or the last checkpoint's). */
  readonly remainingTtlSeconds: number;
  /** The leader's clock at grant or last checkpoint. */
  readonly anchorMs: number;
}

/** etcd `LeaseTimeToLiveResponse` (without header). `ttlSeconds` is -1 for an unknown lease, like etcd. */
export interface LeaseTimeToLive {
  readonly id: number;
  /** Whole seconds left as of the caller's clock (never below 0 for an existing lease). */
  readonly ttlSeconds: number;
  readonly grantedTtlSeconds: number;
  /** Attached keys in byte order, when asked for (else empty). */
  readonly keys: readonly Uint8Array[];
}

/** What a watcher wants (etcd `WatchCreateRequest`). */
export interface WatchRequest extends KeyRangeRequest {
  /**
   * First revision to deliver. 0 (default) means "after the current revision" (live only);
   * at or below the current revision, history is replayed first. Below the compacted
   * revision the watch fails with `COMPACTED`.
   */
  readonly startRevision?: number;
  readonly prevKv?: boolean;
  readonly noPut?: boolean;
  readonly noDelete?: boolean;
}

/** etcd `mvccpb.Event`. A DELETE's `kv` holds only `key` and `modRevision` (the deletion's). */
export interface WatchEvent {
  readonly type: 'PUT' | 'DELETE';
  readonly kv: KeyValue;
  /** The key's previous version, when the watch asked for it and it is not compacted. */
  readonly prevKv?: KeyValue;
}

/** All of one revision's events a watcher matches, delivered together. */
export interface WatchBatch {
  readonly revision: number;
  readonly events: readonly WatchEvent[];
}

/** Position and bookkeeping of the store (persisted with every applied batch). */
export interface KvMeta {
  /** Index of the last applied Raft entry. */
  readonly appliedIndex: number;
  /** The current revision: 1 for an empty store, +1 per write that changed something. */
  readonly revision: number;
  /** Reads below this revision fail with `COMPACTED`; 0 before any compaction. */
  readonly compactRevision: number;
  /** The raised alarms, by member id; absent when none is raised. */
  readonly alarms?: readonly KvAlarm[];
}

/** A hash of the key-value history (etcd `HashKV`), to check that replicas agree. */
export interface KvHash {
  /** Hex SHA-256. */
  readonly hash: string;
  /** The revision hashed up to (inclusive). */
  readonly revision: number;
  readonly compactRevision: number;
}
