/**
 * etcd's gRPC errors: the status code and the exact message etcd's server sends, so etcd
 * clients (etcdctl, clientv3, etcd3) recognise them and react as they do with etcd — e.g.
 * clientv3 retries `etcdserver: not leader` and `etcdserver: request timed out` elsewhere.
 */
import { Metadata, type ServiceError, status } from '@grpc/grpc-js';
import { isNodeError, type NodeErrorCode } from '../index.js';
import { isKvError, type KvErrorCode } from '../kv/index.js';

/** An error carrying a gRPC status, as grpc-js callbacks and streams expect it. */
export class EtcdGrpcError extends Error implements ServiceError {
  override readonly name = 'EtcdGrpcError';
  readonly details: string;
  readonly metadata = new Metadata();

  constructor(
    readonly code: status,
    message: string,
  ) {
    super(message);
    this.details = message;
  }
}

/** etcd v3rpc's messages, by the name etcd gives them. */
export const ETCD_ERRORS = Object.freeze({
  emptyKey: [status.INVALID_ARGUMENT, 'etcdserver: key is not provided'],
  keyNotFound: [status.INVALID_ARGUMENT, 'etcdserver: key not found'],
  invalidSortOption: [status.INVALID_ARGUMENT, 'etcdserver: invalid sort option'],
  valueProvided: [status.INVALID_ARGUMENT, 'etcdserver: value is provided'],
  leaseProvided: [status.INVALID_ARGUMENT, 'etcdserver: lease is provided'],
  tooManyOps: [status.INVALID_ARGUMENT, 'etcdserver: too many operations in txn request'],
  duplicateKey: [status.INVALID_ARGUMENT, 'etcdserver: duplicate key given in txn request'],
  compacted: [status.OUT_OF_RANGE, 'etcdserver: mvcc: required revision has been compacted'],
  futureRev: [status.OUT_OF_RANGE, 'etcdserver: mvcc: required revision is a future revision'],
  leaseNotFound: [status.NOT_FOUND, 'etcdserver: requested lease not found'],
  leaseExist: [status.FAILED_PRECONDITION, 'etcdserver: lease already exists'],
  leaseTtlTooLarge: [status.OUT_OF_RANGE, 'etcdserver: too large lease TTL'],
  memberExist: [status.FAILED_PRECONDITION, 'etcdserver: member ID already exist'],
  peerUrlExist: [status.FAILED_PRECONDITION, 'etcdserver: Peer URLs already exists'],
  memberNotEnoughStarted: [
    status.FAILED_PRECONDITION,
    'etcdserver: re-configuration failed due to not enough started members',
  ],
  memberBadUrls: [status.INVALID_ARGUMENT, 'etcdserver: given member URLs are invalid'],
  memberNotFound: [status.NOT_FOUND, 'etcdserver: member not found'],
  memberNotLearner: [status.FAILED_PRECONDITION, 'etcdserver: can only promote a learner member'],
  learnerNotReady: [
    status.FAILED_PRECONDITION,
    'etcdserver: can only promote a learner member which is in sync with leader',
  ],
  tooManyLearners: [status.FAILED_PRECONDITION, 'etcdserver: too many learner members in cluster'],
  requestTooLarge: [status.INVALID_ARGUMENT, 'etcdserver: request is too large'],
  tooManyRequests: [status.RESOURCE_EXHAUSTED, 'etcdserver: too many requests'],
  noSpace: [status.RESOURCE_EXHAUSTED, 'etcdserver: mvcc: database space exceeded'],
  noLeader: [status.UNAVAILABLE, 'etcdserver: no leader'],
  notLeader: [status.FAILED_PRECONDITION, 'etcdserver: not leader'],
  leaderChanged: [status.UNAVAILABLE, 'etcdserver: leader changed'],
  notCapable: [status.UNAVAILABLE, 'etcdserver: not capable'],
  stopped: [status.UNAVAILABLE, 'etcdserver: server stopped'],
  timeout: [status.UNAVAILABLE, 'etcdserver: request timed out'],
  timeoutDueToLeaderFail: [
    status.UNAVAILABLE,
    'etcdserver: request timed out, possibly due to previous leader failure',
  ],
  unhealthy: [status.UNAVAILABLE, 'etcdserver: unhealthy cluster'],
  corrupt: [status.DATA_LOSS, 'etcdserver: corrupt cluster'],
  authNotEnabled: [status.FAILED_PRECONDITION, 'etcdserver: authentication is not enabled'],
  /** Flotilla's own: lease ids are JavaScript numbers, so a client-chosen one must stay below 2^53. */
  invalidLeaseId: [status.INVALID_ARGUMENT, 'etcdserver: lease ID must be between 1 and 2^53-1'],
} as const satisfies Record<string, readonly [status, string]>);

/** The gRPC error etcd sends for `name`. */
export function etcdError(name: keyof typeof ETCD_ERRORS, message?: string): EtcdGrpcError {
  const [code, text] = ETCD_ERRORS[name];
  return new EtcdGrpcError(code, message ?? text);
}

const KV_ERRORS: Readonly<Record<KvErrorCode, keyof typeof ETCD_ERRORS | undefined>> = {
  INVALID_ARGUMENT: undefined,
  REQUEST_TOO_LARGE: 'requestTooLarge',
  TOO_MANY_OPS: 'tooManyOps',
  DUPLICATE_KEY: 'duplicateKey',
  COMPACTED: 'compacted',
  FUTURE_REV: 'futureRev',
  KEY_NOT_FOUND: 'keyNotFound',
  LEASE_NOT_FOUND: 'leaseNotFound',
  LEASE_EXISTS: 'leaseExist',
  LEASE_TTL_TOO_LARGE: 'leaseTtlTooLarge',
  NO_SPACE: 'noSpace',
  STALE_SEQUENCE: undefined,
  CORRUPT: 'corrupt',
  CLOSED: 'stopped',
};

const NODE_ERRORS: Readonly<Record<NodeErrorCode, keyof typeof ETCD_ERRORS | undefined>> = {
  NOT_LEADER: 'notLeader',
  NO_LEADER: 'noLeader',
  TOO_MANY_REQUESTS: 'tooManyRequests',
  TIMEOUT: 'timeout',
  PROPOSAL_DROPPED: 'timeoutDueToLeaderFail',
  STOPPED: 'stopped',
  REMOVED: 'stopped',
  REFUSED: undefined,
  FATAL: 'stopped',
  INVALID_CONFIG: undefined,
  // Runtime sessions are the library's (the KV keeps its own): never reach the etcd API.
  SESSION_EXPIRED: undefined,
  DUPLICATE: undefined,
};

/**
 * Maps any error a service meets to the gRPC error etcd would send: KV and runtime errors
 * by code, an `EtcdGrpcError` as is, anything else as `INTERNAL` with its message.
 */
export function toGrpcError(error: unknown): EtcdGrpcError {
  if (error instanceof EtcdGrpcError) return error;
  if (isKvError(error)) {
    const name = KV_ERRORS[error.code];
    if (name !== undefined) return etcdError(name);
    const code = error.code === 'STALE_SEQUENCE' ? status.FAILED_PRECONDITION : status.INVALID_ARGUMENT;
    return new EtcdGrpcError(code, etcdserverMessage(error.message));
  }
  if (isNodeError(error)) {
    const name = NODE_ERRORS[error.code];
    if (name !== undefined) return etcdError(name);
    return new EtcdGrpcError(status.INTERNAL, etcdserverMessage(error.message));
  }
  const message = error instanceof Error ? error.message : String(error);
  return new EtcdGrpcError(status.INTERNAL, message);
}

/** `message` with etcd's `etcdserver: ` prefix (KV errors usually carry it already). */
function etcdserverMessage(message: string): string {
  return message.startsWith('etcdserver: ') ? message : `etcdserver: ${message}`;
}
