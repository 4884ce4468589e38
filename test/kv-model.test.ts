/**
 * Checks the state machine against a naive model of etcd's semantics: the model keeps a full
 * copy of the key space per revision and implements every operation in the most direct way,
 * sharing no code with the implementation. Random command sequences must give the same
 * outcomes (errors compared by code) on the memory backend and on the model.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { bytes, text } from '../src/kv/conformance-harness.js';
import { operationArbitrary } from '../src/kv/conformance-random.js';
import { MemoryKvBackend } from '../src/kv/memory-backend.js';
import type {
  Compare,
  KeyValue,
  KvCommand,
  KvResponse,
  KvResult,
  LeaseInfo,
  RangeRequest,
  RequestOp,
  ResponseOp,
} from '../src/kv/types.js';

type State = Map<string, KeyValue>;

class ModelError extends Error {
  constructor(readonly code: string) {
    super(code);
  }
}

/** Where a (key, rangeEnd) pair selects, by etcd's rules; null end means unbounded. */
function selects(request: { key: Uint8Array; rangeEnd?: Uint8Array }): (key: string) => boolean {
  const start = text(request.key);
  if (start === '') throw new ModelError('INVALID_ARGUMENT');
  const end = request.rangeEnd === undefined ? '' : text(request.rangeEnd);
  if (end === '') return (key) => key === start;
  if (end === '\0') return (key) => key >= start;
  if (end < start) throw new ModelError('INVALID_ARGUMENT');
  return (key) => key >= start && key < end;
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The model of one store. */
class Model {
  revision = 1;
  compactRevision = 0;
  readonly states = new Map<number, State>([[1, new Map()]]);
  readonly leases = new Map<number, LeaseInfo>();

  current(): State {
    return this.states.get(this.revision)!;
  }

  apply(command: KvCommand): KvResult | { ok: false; code: string } {
    try {
      return { ok: true, response: this.run(command) };
    } catch (error) {
      if (error instanceof ModelError) return { ok: false, code: error.code };
      throw error;
    }
  }

  private run(command: KvCommand): KvResponse {
    switch (command.type) {
      case 'range':
        return { type: 'range', ...this.read(command, this.current(), this.revision, false) };
      case 'put':
      case 'deleteRange':
      case 'txn':
        return this.write(command);
      case 'compact': {
        if (command.revision <= this.compactRevision) throw new ModelError('COMPACTED');
        if (command.revision > this.revision) throw new ModelError('FUTURE_REV');
        for (const revision of this.states.keys())
          if (revision < command.revision) this.states.delete(revision);
        this.compactRevision = command.revision;
        return { type: 'compact', revision: this.revision };
      }
      case 'leaseGrant': {
        if (command.id === 0) throw new ModelError('INVALID_ARGUMENT');
        if (this.leases.has(command.id)) throw new ModelError('LEASE_EXISTS');
        const { id, ttlSeconds, nowMs } = command;
        this.leases.set(id, { id, ttlSeconds, remainingTtlSeconds: ttlSeconds, anchorMs: nowMs });
        return { type: 'leaseGrant', revision: this.revision, id, ttlSeconds };
      }
      case 'leaseRevoke':
        return this.revoke(command.id);
      case 'leaseCheckpoint': {
        const lease = this.leases.get(command.id);
        if (lease === undefined) throw new ModelError('LEASE_NOT_FOUND');
        this.leases.set(lease.id, {
          ...lease,
          remainingTtlSeconds: command.remainingTtlSeconds,
          anchorMs: command.nowMs,
        });
        return { type: 'leaseCheckpoint', revision: this.revision };
      }
      case 'alarm':
        throw new Error('the model does not generate alarm commands');
    }
  }

  private revoke(id: number): KvResponse {
    if (!this.leases.has(id)) throw new ModelError('LEASE_NOT_FOUND');
    const next = new Map(this.current());
    let deleted = false;
    for (const [key, kv] of this.current()) {
      if (kv.lease !== id) continue;
      next.delete(key);
      deleted = true;
    }
    if (deleted) this.states.set(++this.revision, next);
    this.leases.delete(id);
    return { type: 'leaseRevoke', revision: this.revision };
  }

  /** A range over `state`; reads at an explicit revision go to the stored states. */
  read(request: RangeRequest, state: State, stateRevision: number, inTxn: boolean) {
    const selected = selects(request);
    if ((request.limit ?? 0) < 0) throw new ModelError('INVALID_ARGUMENT');
    let source = state;
    const revision = request.revision ?? 0;
    if (revision !== 0 && !(inTxn && revision === stateRevision)) {
      if (revision < this.compactRevision) throw new ModelError('COMPACTED');
      if (revision > this.revision) throw new ModelError('FUTURE_REV');
      source = this.states.get(revision)!;
    }
    const all = [...source.values()].filter((kv) => selected(text(kv.key)));
    all.sort((a, b) => compareStrings(text(a.key), text(b.key)));
    const count = all.length;
    if (request.countOnly) return { revision: this.revision, kvs: [], more: false, count };
    let kvs = all.filter((kv) => passes(kv, request));
    kvs = sortModel(kvs, request);
    const limit = request.limit ?? 0;
    const more = limit > 0 && kvs.length > limit;
    if (more) kvs = kvs.slice(0, limit);
    if (request.keysOnly) kvs = kvs.map((kv) => ({ ...kv, value: new Uint8Array(0) }));
    return { revision: this.revision, kvs, more, count };
  }

  private write(command: RequestOp): KvResponse {
    checkShapes(command);
    if (command.type === 'txn' && (hasDuplicate(command.success) || hasDuplicate(command.failure))) {
      throw new ModelError('DUPLICATE_KEY');
    }
    const txn = new ModelTxn(this, new Map(this.current()), this.revision + 1);
    const response = txn.run(command);
    if (txn.wrote) this.states.set(++this.revision, txn.state);
    txn.stamp(this.revision);
    return response;
  }
}

/** Requests are validated whole, both txn branches included, before anything runs. */
function checkShapes(op: RequestOp): void {
  if (op.type !== 'txn') return void selects(op);
  for (const compare of op.compare) selects(compare);
  for (const nested of [...op.success, ...op.failure]) checkShapes(nested);
}

function passes(kv: KeyValue, request: RangeRequest): boolean {
  if ((request.minModRevision ?? 0) > 0 && kv.modRevision < request.minModRevision!) return false;
  if ((request.maxModRevision ?? 0) > 0 && kv.modRevision > request.maxModRevision!) return false;
  if ((request.minCreateRevision ?? 0) > 0 && kv.createRevision < request.minCreateRevision!) return false;
  if ((request.maxCreateRevision ?? 0) > 0 && kv.createRevision > request.maxCreateRevision!) return false;
  return true;
}

function sortModel(kvs: KeyValue[], request: RangeRequest): KeyValue[] {
  const target = request.sortTarget ?? 'KEY';
  let order = request.sortOrder ?? 'NONE';
  if (order === 'NONE' && target !== 'KEY') order = 'ASCEND';
  if (order === 'NONE') return kvs;
  const field = (kv: KeyValue): number | string => {
    if (target === 'KEY') return text(kv.key);
    if (target === 'VALUE') return text(kv.value);
    return target === 'VERSION' ? kv.version : target === 'CREATE' ? kv.createRevision : kv.modRevision;
  };
  const sign = order === 'ASCEND' ? 1 : -1;
  return [...kvs].sort((a, b) => {
    const x = field(a);
    const y = field(b);
    return sign * (x < y ? -1 : x > y ? 1 : 0);
  });
}

/**
 * Whether a branch writes a key twice, by etcd's rule: the two branches of a nested txn may
 * both put a key, but nothing else may write a key another op of the branch writes.
 */
function hasDuplicate(ops: readonly RequestOp[]): boolean {
  try {
    writes(ops);
    return false;
  } catch {
    return true;
  }
}

/** The keys a branch puts and the ranges it deletes; throws on a conflict. */
function writes(ops: readonly RequestOp[]): { puts: Set<string>; deletes: ((key: string) => boolean)[] } {
  const puts = new Set<string>();
  const deletes: ((key: string) => boolean)[] = ops.flatMap((op) =>
    op.type === 'deleteRange' ? [selects(op)] : [],
  );
  const conflicts = (key: string) => deletes.some((selected) => selected(key));
  for (const op of ops) {
    if (op.type !== 'txn') continue;
    const success = writes(op.success);
    const failure = writes(op.failure);
    for (const key of success.puts) {
      if (puts.has(key) || conflicts(key)) throw new Error('duplicate');
      puts.add(key);
    }
    for (const key of failure.puts) {
      if ((puts.has(key) && !success.puts.has(key)) || conflicts(key)) throw new Error('duplicate');
      puts.add(key);
    }
    deletes.push(...success.deletes, ...failure.deletes);
  }
  for (const op of ops) {
    if (op.type !== 'put') continue;
    const key = text(op.key);
    if (puts.has(key) || conflicts(key)) throw new Error('duplicate');
    puts.add(key);
  }
  return { puts, deletes };
}

/** One write command on a working copy of the state. */
class ModelTxn {
  wrote = false;
  private readonly responses: { revision: number }[] = [];
  private readonly before: State;

  constructor(
    private readonly model: Model,
    readonly state: State,
    private readonly revision: number,
  ) {
    this.before = new Map(state);
  }

  stamp(revision: number): void {
    for (const response of this.responses) response.revision = revision;
  }

  run(op: RequestOp): ResponseOp {
    const response = this.runOp(op);
    this.responses.push(response);
    return response;
  }

  private runOp(op: RequestOp): ResponseOp {
    switch (op.type) {
      case 'range':
        return { type: 'range', ...this.model.read(op, this.state, this.wrote ? this.revision : -1, true) };
      case 'put':
        return this.put(op);
      case 'deleteRange': {
        const selected = selects(op);
        const deleted = [...this.state.values()]
          .filter((kv) => selected(text(kv.key)))
          .sort((a, b) => compareStrings(text(a.key), text(b.key)));
        for (const kv of deleted) this.state.delete(text(kv.key));
        if (deleted.length > 0) this.wrote = true;
        return {
          type: 'deleteRange',
          revision: 0,
          deleted: deleted.length,
          prevKvs: op.prevKv ? deleted : [],
        };
      }
      case 'txn': {
        const succeeded = op.compare.every((compare) => this.holds(compare));
        const responses = (succeeded ? op.success : op.failure).map((nested) => this.run(nested));
        return { type: 'txn', revision: 0, succeeded, responses };
      }
    }
  }

  private put(op: RequestOp & { type: 'put' }): ResponseOp {
    const key = text(op.key);
    if (key === '') throw new ModelError('INVALID_ARGUMENT');
    const previous = this.state.get(key);
    if ((op.ignoreValue || op.ignoreLease) && previous === undefined) throw new ModelError('KEY_NOT_FOUND');
    const lease = op.ignoreLease ? previous!.lease : (op.lease ?? 0);
    if (lease !== 0 && !this.model.leases.has(lease)) throw new ModelError('LEASE_NOT_FOUND');
    this.state.set(key, {
      key: op.key,
      createRevision: previous?.createRevision ?? this.revision,
      modRevision: this.revision,
      version: (previous?.version ?? 0) + 1,
      value: op.ignoreValue ? previous!.value : op.value,
      lease,
    });
    this.wrote = true;
    return op.prevKv && previous
      ? { type: 'put', revision: 0, prevKv: previous }
      : { type: 'put', revision: 0 };
  }

  /** Compares look at the state before the outermost txn. */
  private holds(compare: Compare): boolean {
    const selected = selects(compare);
    const kvs = [...this.before.values()].filter((kv) => selected(text(kv.key)));
    if (kvs.length === 0 && compare.target === 'VALUE') return false;
    const zero: KeyValue = {
      key: new Uint8Array(0),
      createRevision: 0,
      modRevision: 0,
      version: 0,
      value: new Uint8Array(0),
      lease: 0,
    };
    return (kvs.length === 0 ? [zero] : kvs).every((kv) => {
      let difference: number;
      if (compare.target === 'VALUE') difference = compareStrings(text(kv.value), text(compare.value));
      else {
        const fields = {
          VERSION: kv.version,
          CREATE: kv.createRevision,
          MOD: kv.modRevision,
          LEASE: kv.lease,
        };
        difference = Math.sign(fields[compare.target] - compare.value);
      }
      const results = {
        EQUAL: difference === 0,
        NOT_EQUAL: difference !== 0,
        GREATER: difference > 0,
        LESS: difference < 0,
      };
      return results[compare.result];
    });
  }
}

/** Normalises an outcome: errors by code, bytes as strings (the model keeps request arrays). */
function normalise(result: KvResult | { ok: false; code: string } | null): unknown {
  if (result === null) return null;
  if (!result.ok) return { ok: false, code: 'code' in result ? result.code : result.error.code };
  return JSON.parse(
    JSON.stringify(result.response, (_, value) => (value instanceof Uint8Array ? `b:${text(value)}` : value)),
  );
}

test('the state machine agrees with a naive model of etcd', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(operationArbitrary, { minLength: 1, maxLength: 40, size: 'medium' }),
      async (commands) => {
        const backend = new MemoryKvBackend();
        const model = new Model();
        let index = 0;
        for (const command of commands) {
          const [actual] = backend.applyBatch([{ index: ++index, command }]);
          const expected = model.apply(command);
          assert.deepEqual(normalise(actual!), normalise(expected), JSON.stringify(normalise(expected)));
          assert.equal(backend.revision, model.revision);
        }
        assert.deepEqual(
          backend.leaseList(),
          [...model.leases.values()].sort((a, b) => a.id - b.id),
        );
        const all = backend.range({ key: bytes('\0'), rangeEnd: bytes('\0') });
        assert.deepEqual(
          normalise({ ok: true, response: { type: 'range', ...all } }),
          normalise(model.apply({ type: 'range', key: bytes('\0'), rangeEnd: bytes('\0') })),
        );
      },
    ),
    { numRuns: 300 },
  );
});
