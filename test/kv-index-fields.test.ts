/**
 * The write path takes a key's create revision, version and lease from the key index, not
 * from its previous record. This model test drives both backends with random puts (leases,
 * ignoreValue, ignoreLease, prevKv), deletes, txns with compares on every target, lease
 * grants and revokes, compactions, restarts (LMDB: close and reopen, which rebuilds the index
 * from record heads; memory: snapshot and restore) and restores from the other backend's
 * snapshot. After every step each backend's index must agree with a full decode of every
 * stored record (`verifyIndex`), and its keys, responses and watch events (with prevKv)
 * must be what a naive model says.
 */

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import fc from 'fast-check';
import { bytes, drain, text } from '../src/kv/conformance-harness.js';
import { isKvError } from '../src/kv/errors.js';
import { checkIndex } from '../src/kv/index-check.js';
import { IndexEntry, KeyIndex } from '../src/kv/key-index.js';
import { LeaseTable } from '../src/kv/leases.js';
import { LmdbKvBackend } from '../src/kv/lmdb-backend.js';
import { MemoryKvBackend, MemoryStore } from '../src/kv/memory-backend.js';
import type {
  CompareResult,
  CompareTarget,
  KeyValue,
  KvCommand,
  KvResult,
  RequestOp,
} from '../src/kv/types.js';
import type { Watcher } from '../src/kv/watch-hub.js';

const root = await mkdtemp(join(tmpdir(), 'flotilla-kv-index-fields-'));
after(() => rm(root, { recursive: true, force: true }));
let directories = 0;

const KEYS = ['a', 'b', 'c', 'd', 'e', 'f'];
const LEASES = [0, 5, 2 ** 40 + 1];

/** A key as the model holds it. */
interface ModelKv {
  readonly createRevision: number;
  readonly modRevision: number;
  readonly version: number;
  readonly lease: number;
  readonly value: string;
}

class ModelError extends Error {}

/** What a command changed: each key written, with its kv before (undefined if absent). */
type Changes = { key: string; previous: ModelKv | undefined }[];

/** The naive model: the current key space, the leases, and the revisions. */
class Model {
  revision = 1;
  compactRevision = 0;
  keys = new Map<string, ModelKv>();
  readonly leases = new Set<number>();

  /** Applies `command`; returns what a response must show and the changes, or throws ModelError(code). */
  apply(command: KvCommand): { expected: unknown; changes: Changes } {
    switch (command.type) {
      case 'compact':
        if (command.revision <= this.compactRevision) throw new ModelError('COMPACTED');
        if (command.revision > this.revision) throw new ModelError('FUTURE_REV');
        this.compactRevision = command.revision;
        return { expected: {}, changes: [] };
      case 'leaseGrant':
        if (this.leases.has(command.id)) throw new ModelError('LEASE_EXISTS');
        this.leases.add(command.id);
        return { expected: {}, changes: [] };
      case 'leaseRevoke': {
        if (!this.leases.has(command.id)) throw new ModelError('LEASE_NOT_FOUND');
        const held = [...this.keys].filter(([, kv]) => kv.lease === command.id).map(([key]) => key);
        const result = this.write((keys, changes) => {
          for (const key of held.sort()) this.remove(keys, key, changes);
          return {};
        });
        this.leases.delete(command.id);
        return result;
      }
      case 'put':
      case 'deleteRange':
      case 'txn':
        return this.write((keys, changes, revision) => this.op(command, keys, changes, revision));
      default:
        throw new Error(`unexpected ${command.type}`);
    }
  }

  /** Runs `body` on a copy of the key space; commits it (one revision) if it changed anything. */
  private write(body: (keys: Map<string, ModelKv>, changes: Changes, revision: number) => unknown): {
    expected: unknown;
    changes: Changes;
  } {
    const keys = new Map(this.keys);
    const changes: Changes = [];
    const expected = body(keys, changes, this.revision + 1);
    if (changes.length > 0) {
      this.keys = keys;
      this.revision++;
    }
    return { expected, changes };
  }

  private op(op: RequestOp, keys: Map<string, ModelKv>, changes: Changes, revision: number): unknown {
    switch (op.type) {
      case 'put': {
        const key = text(op.key);
        const previous = keys.get(key);
        if ((op.ignoreValue === true || op.ignoreLease === true) && previous === undefined)
          throw new ModelError('KEY_NOT_FOUND');
        const lease = op.ignoreLease === true ? previous!.lease : (op.lease ?? 0);
        if (lease !== 0 && !this.leases.has(lease)) throw new ModelError('LEASE_NOT_FOUND');
        keys.set(key, {
          createRevision: previous?.createRevision ?? revision,
          modRevision: revision,
          version: (previous?.version ?? 0) + 1,
          lease,
          value: op.ignoreValue === true ? previous!.value : text(op.value),
        });
        changes.push({ key, previous });
        return { prevKv: op.prevKv === true ? show(key, previous) : undefined };
      }
      case 'deleteRange': {
        const start = text(op.key);
        const end = op.rangeEnd === undefined ? undefined : text(op.rangeEnd);
        const selected = [...keys.keys()].filter((key) =>
          end === undefined ? key === start : key >= start && key < end,
        );
        const prevKvs = selected.sort().map((key) => show(key, this.remove(keys, key, changes)));
        return { deleted: selected.length, prevKvs: op.prevKv === true ? prevKvs : [] };
      }
      case 'txn': {
        const succeeded = op.compare.every((compare) => {
          const kv = this.keys.get(text(compare.key));
          if (compare.target === 'VALUE') {
            if (kv === undefined) return false;
            return holds(
              Buffer.compare(Buffer.from(kv.value, 'latin1'), Buffer.from(compare.value)),
              compare.result,
            );
          }
          const field = {
            VERSION: 'version',
            CREATE: 'createRevision',
            MOD: 'modRevision',
            LEASE: 'lease',
          } as const;
          return holds((kv?.[field[compare.target]] ?? 0) - compare.value, compare.result);
        });
        const responses = (succeeded ? op.success : op.failure).map((inner) =>
          this.op(inner, keys, changes, revision),
        );
        return { succeeded, responses };
      }
      default:
        throw new Error(`unexpected ${op.type}`);
    }
  }

  private remove(keys: Map<string, ModelKv>, key: string, changes: Changes): ModelKv {
    const previous = keys.get(key)!;
    keys.delete(key);
    changes.push({ key, previous });
    return previous;
  }
}

function holds(difference: number, result: CompareResult): boolean {
  const sign = Math.sign(difference);
  return result === 'EQUAL'
    ? sign === 0
    : result === 'NOT_EQUAL'
      ? sign !== 0
      : result === 'GREATER'
        ? sign > 0
        : sign < 0;
}

/** A kv in comparable form. */
function show(key: string, kv: ModelKv | undefined): unknown {
  return kv === undefined ? undefined : { key, ...kv };
}

function shown(kv: KeyValue | undefined): unknown {
  if (kv === undefined) return undefined;
  const { createRevision, modRevision, version, lease } = kv;
  return { key: text(kv.key), createRevision, modRevision, version, lease, value: text(kv.value) };
}

/** What a response shows that the model predicts. */
function observed(result: KvResult): unknown {
  if (!result.ok) return { error: result.error.code };
  const response = result.response;
  switch (response.type) {
    case 'put':
      return { prevKv: shown(response.prevKv) };
    case 'deleteRange':
      return { deleted: response.deleted, prevKvs: response.prevKvs.map(shown) };
    case 'txn':
      return {
        succeeded: response.succeeded,
        responses: response.responses.map((inner) => observed({ ok: true, response: inner } as KvResult)),
      };
    default:
      return {};
  }
}

// --- Random commands ---

const key = fc.constantFrom(...KEYS);
const lease = fc.constantFrom(...LEASES);
const putOp = fc
  .record({ key, value: fc.string({ maxLength: 3 }), lease, flag: fc.nat(5), prevKv: fc.boolean() })
  .map(({ key, value, lease, flag, prevKv }): RequestOp => {
    const base = { type: 'put' as const, key: bytes(key), prevKv };
    if (flag === 0) return { ...base, value: new Uint8Array(0), ignoreValue: true, lease };
    if (flag === 1) return { ...base, value: bytes(value), ignoreLease: true };
    return { ...base, value: bytes(value), lease };
  });
const deleteOp = fc
  .record({ key, span: fc.nat(2), prevKv: fc.boolean() })
  .map(({ key, span, prevKv }): RequestOp => {
    const end = span === 0 ? {} : { rangeEnd: bytes(String.fromCharCode(key.charCodeAt(0) + span)) };
    return { type: 'deleteRange', key: bytes(key), ...end, prevKv };
  });
const compare = fc
  .record({
    key,
    target: fc.constantFrom<CompareTarget>('VERSION', 'CREATE', 'MOD', 'LEASE', 'VALUE'),
    result: fc.constantFrom<CompareResult>('EQUAL', 'NOT_EQUAL', 'GREATER', 'LESS'),
    number: fc.oneof(fc.nat(12), lease),
    value: fc.string({ maxLength: 2 }),
  })
  .map(({ key, target, result, number, value }) =>
    target === 'VALUE'
      ? { key: bytes(key), target, result, value: bytes(value) }
      : { key: bytes(key), target, result, value: number },
  );
const txnOp = fc
  .record({
    compare: fc.array(compare, { maxLength: 2 }),
    success: putOp,
    also: deleteOp,
    failure: fc.oneof(putOp, deleteOp),
  })
  .map(({ compare, success, also, failure }): KvCommand => {
    // Distinct keys (etcd refuses a txn that writes a key twice).
    const overlaps =
      also.type === 'deleteRange' && success.type === 'put' && text(also.key) <= text(success.key);
    return { type: 'txn', compare, success: overlaps ? [success] : [success, also], failure: [failure] };
  });

type Step =
  | { readonly kind: 'command'; readonly command: KvCommand }
  | { readonly kind: 'compact'; readonly back: number }
  | { readonly kind: 'restart' }
  | { readonly kind: 'restore' };

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 6,
    arbitrary: putOp.map((command) => ({ kind: 'command' as const, command: command as KvCommand })),
  },
  {
    weight: 2,
    arbitrary: deleteOp.map((command) => ({ kind: 'command' as const, command: command as KvCommand })),
  },
  { weight: 3, arbitrary: txnOp.map((command) => ({ kind: 'command' as const, command })) },
  {
    weight: 1,
    arbitrary: fc.record({ id: lease.filter((id) => id !== 0), revoke: fc.boolean() }).map(
      ({ id, revoke }): Step => ({
        kind: 'command',
        command: revoke ? { type: 'leaseRevoke', id } : { type: 'leaseGrant', id, ttlSeconds: 60, nowMs: 0 },
      }),
    ),
  },
  { weight: 1, arbitrary: fc.nat(4).map((back): Step => ({ kind: 'compact', back })) },
  { weight: 1, arbitrary: fc.constant<Step>({ kind: 'restart' }) },
  { weight: 1, arbitrary: fc.constant<Step>({ kind: 'restore' }) },
);

// --- The run ---

const EVERYTHING = { key: bytes('\0'), rangeEnd: bytes('\0') };

/** Both backends, each with a watcher (prevKv) over every key. */
class Subjects {
  memory = new MemoryKvBackend();
  lmdb: LmdbKvBackend;
  watchers: Watcher[] = [];

  constructor(readonly path: string) {
    this.lmdb = LmdbKvBackend.open(path);
    this.watch();
  }

  get all(): (MemoryKvBackend | LmdbKvBackend)[] {
    return [this.memory, this.lmdb];
  }

  watch(): void {
    this.watchers = this.all.map((backend) => backend.watch({ ...EVERYTHING, prevKv: true }));
  }

  apply(command: KvCommand): KvResult[] {
    return this.all.map((backend) => backend.applyBatch([{ index: backend.appliedIndex + 1, command }])[0]!);
  }

  /** LMDB closes and reopens (the index rebuilt from record heads); memory restarts from its snapshot. */
  async restart(): Promise<void> {
    const memory = new MemoryKvBackend();
    await memory.restore(this.memory.snapshot());
    await this.memory.close();
    this.memory = memory;
    await this.lmdb.close();
    this.lmdb = LmdbKvBackend.open(this.path);
    this.watch();
  }

  /** Each backend restores the other's snapshot (the index built from the stream). */
  async restore(): Promise<void> {
    const memory = new MemoryKvBackend();
    await memory.restore(this.lmdb.snapshot());
    await this.lmdb.restore(this.memory.snapshot());
    for (const watcher of this.watchers) watcher.cancel();
    await this.memory.close();
    this.memory = memory;
    this.watch();
  }

  /** Checks each backend against the model after a step that made `changes` at `model.revision`. */
  check(model: Model, changes: Changes | undefined): void {
    const expected = [...model.keys].sort(([a], [b]) => (a < b ? -1 : 1)).map(([key, kv]) => show(key, kv));
    for (const [position, backend] of this.all.entries()) {
      backend.verifyIndex();
      assert.equal(backend.revision, model.revision);
      assert.equal(backend.compactRevision, model.compactRevision);
      assert.deepEqual(backend.range(EVERYTHING).kvs.map(shown), expected);
      const events = drain(this.watchers[position]!).flatMap((batch) => batch.events);
      if (changes === undefined) continue;
      const expectedEvents = changes.map(({ key, previous }) => ({ key, prevKv: show(key, previous) }));
      assert.deepEqual(
        events.map((event) => ({ key: text(event.kv.key), prevKv: shown(event.prevKv) })),
        expectedEvents,
      );
    }
  }
}

async function run(steps: readonly Step[], watchers: boolean): Promise<void> {
  const subjects = new Subjects(join(root, `kv-${directories++}`));
  const model = new Model();
  try {
    if (!watchers) for (const watcher of subjects.watchers) watcher.cancel();
    for (const item of steps) {
      let changes: Changes | undefined;
      if (item.kind === 'restart') await subjects.restart();
      else if (item.kind === 'restore') await subjects.restore();
      else {
        const command: KvCommand =
          item.kind === 'compact'
            ? { type: 'compact', revision: Math.max(1, model.revision - item.back) }
            : item.command;
        let expected: unknown;
        try {
          const applied = model.apply(command);
          expected = applied.expected;
          changes = applied.changes;
        } catch (error) {
          if (!(error instanceof ModelError)) throw error;
          expected = { error: error.message };
          changes = [];
        }
        for (const result of subjects.apply(command)) {
          if (
            command.type === 'put' ||
            command.type === 'deleteRange' ||
            command.type === 'txn' ||
            !result.ok
          )
            assert.deepEqual(observed(result), expected);
        }
      }
      if (item.kind !== 'command' && item.kind !== 'compact') {
        if (!watchers) for (const watcher of subjects.watchers) watcher.cancel();
        changes = undefined;
      }
      subjects.check(model, watchers ? changes : undefined);
    }
  } finally {
    await subjects.memory.close();
    await subjects.lmdb.close();
  }
}

test('create revision, version and lease from the key index match the model and every stored record', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(step, { minLength: 10, maxLength: 80, size: 'max' }), fc.boolean(), run),
    {
      numRuns: 60,
    },
  );
});

test('the index check finds an index entry or a lease that disagrees with the stored record', () => {
  const kv: KeyValue = {
    key: bytes('k'),
    value: bytes('v'),
    createRevision: 2,
    modRevision: 3,
    version: 2,
    lease: 5,
  };
  const cases: [string, IndexEntry, boolean][] = [
    ['agrees', new IndexEntry(3, 0, 2, 2, 5), true],
    ['create revision', new IndexEntry(3, 0, 3, 2, 5), false],
    ['version', new IndexEntry(3, 0, 2, 1, 5), false],
    ['lease', new IndexEntry(3, 0, 2, 2, 0), false],
    ['tombstone', IndexEntry.tombstone(3, 0), false],
    ['revision', new IndexEntry(3, 1, 2, 2, 5), false],
  ];
  for (const [name, entry, agrees] of cases) {
    const store = new MemoryStore();
    store.putRecord({ main: 3, sub: 0, tombstone: false, kv });
    const index = new KeyIndex();
    index.append('k', entry);
    const leases = new LeaseTable();
    leases.add({ id: 5, ttlSeconds: 60, remainingTtlSeconds: 60, anchorMs: 0 });
    if (!entry.tombstone && entry.lease === 5) leases.move('k', 0, 5);
    const check = () => checkIndex(index, store, leases);
    if (agrees) check();
    else assert.throws(check, (error) => isKvError(error, 'CORRUPT'), name);
  }
  // The index agrees, but the lease table does not hold the key (or holds one too many).
  const store = new MemoryStore();
  store.putRecord({ main: 3, sub: 0, tombstone: false, kv });
  const index = new KeyIndex();
  index.append('k', new IndexEntry(3, 0, 2, 2, 5));
  const leases = new LeaseTable();
  leases.add({ id: 5, ttlSeconds: 60, remainingTtlSeconds: 60, anchorMs: 0 });
  assert.throws(
    () => checkIndex(index, store, leases),
    (error) => isKvError(error, 'CORRUPT'),
  );
  leases.move('k', 0, 5);
  leases.move('x', 0, 5);
  assert.throws(
    () => checkIndex(index, store, leases),
    (error) => isKvError(error, 'CORRUPT'),
  );
});

test('an index loaded with one sort answers every range as one built a key at a time', () => {
  const write = fc.record({
    key: fc.string({
      unit: fc.constantFrom('a', 'b', 'z', '\u0000', '\u00ff', 'k'),
      minLength: 1,
      maxLength: 4,
    }),
    tombstone: fc.boolean(),
  });
  fc.assert(
    fc.property(fc.array(write, { maxLength: 3000 }), fc.nat(3000), (writes, cut) => {
      const appended = new KeyIndex();
      const loaded = new KeyIndex();
      writes.forEach(({ key, tombstone }, i) => {
        const entry = tombstone ? IndexEntry.tombstone(i + 1, 0) : new IndexEntry(i + 1, 0, i + 1, 1, 0);
        appended.append(key, entry);
        loaded.load(key, entry);
      });
      loaded.loaded();
      const revision = Math.min(cut, writes.length) || writes.length;
      for (const range of [
        { start: '\u0000', end: null },
        { start: 'b', end: 'z' },
        { start: 'k', end: 'k\u0000' },
      ]) {
        const keys = (index: KeyIndex) => [...index.range(range, revision)].map((v) => [v.key, v.entry.main]);
        assert.deepEqual(keys(loaded), keys(appended));
      }
      assert.equal(loaded.size, appended.size);
      // A loaded index takes writes and compactions as any other.
      loaded.append('zz', new IndexEntry(writes.length + 1, 0, writes.length + 1, 1, 0));
      appended.append('zz', new IndexEntry(writes.length + 1, 0, writes.length + 1, 1, 0));
      assert.deepEqual(loaded.compact(revision), appended.compact(revision));
      assert.deepEqual(
        [...loaded.range({ start: '\u0000', end: null }, writes.length + 1)].map((v) => v.key),
        [...appended.range({ start: '\u0000', end: null }, writes.length + 1)].map((v) => v.key),
      );
    }),
    { numRuns: 60 },
  );
});
