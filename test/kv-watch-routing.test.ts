/**
 * Checks watch routing against a naive reference: random writes (puts, deletes, prefix
 * deletes, two-key transactions), compactions and watches (single key, prefix, range, from a
 * key, all keys; live, from a past or a future revision; with filters and prevKv) over a
 * small key space, with consumers that read slowly so watchers fall behind, catch up from
 * history and rejoin. Every watch must see exactly the events its key range, filters and
 * start revision select, each once, in revision order — or a prefix of them and then
 * `COMPACTED` with the compacted revision. The reference offers every event to every watch;
 * the hub routes by key. A deliberate misrouting (a range holding its end key) must be caught.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { bytes, FROM_KEY, text } from '../src/kv/conformance-harness.js';
import { isKvError } from '../src/kv/errors.js';
import { MemoryStore } from '../src/kv/memory-backend.js';
import { DEFAULT_KV_OPTIONS, KvStateMachine } from '../src/kv/state-machine.js';
import type { KvCommand, WatchEvent, WatchRequest } from '../src/kv/types.js';
import type { Watcher } from '../src/kv/watch-hub.js';
import { NO_WATCH_MUTATIONS, type WatchMutations } from '../src/kv/watch-routes.js';

const KEYS = ['a', 'ab', 'b', 'ba', 'bb', 'c'];

type Op =
  | { readonly kind: 'put'; readonly key: string }
  | { readonly kind: 'delete'; readonly key: string; readonly prefix: boolean }
  | { readonly kind: 'txn'; readonly keys: readonly [string, string] }
  | { readonly kind: 'compact'; readonly back: number }
  | { readonly kind: 'watch'; readonly spec: WatchSpec }
  | { readonly kind: 'read'; readonly watch: number; readonly batches: number }
  | { readonly kind: 'cancel'; readonly watch: number };

interface WatchSpec {
  readonly shape: 'key' | 'prefix' | 'range' | 'from' | 'all';
  readonly key: string;
  readonly end: string;
  /** 0: live; otherwise this many revisions back from the next one (negative: in the future). */
  readonly back: number;
  readonly noPut: boolean;
  readonly noDelete: boolean;
  readonly prevKv: boolean;
}

const keyArb = fc.constantFrom(...KEYS);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('put' as const), key: keyArb }) },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('delete' as const), key: keyArb, prefix: fc.boolean() }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('txn' as const), keys: fc.tuple(keyArb, keyArb) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('compact' as const), back: fc.nat(6) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('watch' as const),
      spec: fc.record({
        shape: fc.constantFrom('key', 'prefix', 'range', 'from', 'all'),
        key: keyArb,
        end: keyArb,
        back: fc.integer({ min: -2, max: 8 }),
        noPut: fc.boolean(),
        noDelete: fc.boolean(),
        prevKv: fc.boolean(),
      }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({ kind: fc.constant('read' as const), watch: fc.nat(20), batches: fc.nat(3) }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('cancel' as const), watch: fc.nat(20) }) },
);

/** The key predicate of a spec, written out directly from etcd's rules. */
function selects(spec: WatchSpec): (key: string) => boolean {
  switch (spec.shape) {
    case 'key':
      return (key) => key === spec.key;
    case 'prefix':
      return (key) => key.startsWith(spec.key);
    case 'range':
      return (key) => key >= spec.key && key < spec.end;
    case 'from':
      return (key) => key >= spec.key;
    case 'all':
      return () => true;
  }
}

function prefixEnd(prefix: string): Uint8Array {
  return bytes(prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1));
}

function rangeEndOf(spec: WatchSpec): Uint8Array | undefined {
  switch (spec.shape) {
    case 'key':
      return undefined;
    case 'prefix':
      return prefixEnd(spec.key);
    case 'range':
      return bytes(spec.end);
    case 'from':
    case 'all':
      return FROM_KEY;
  }
}

function requestOf(spec: WatchSpec, startRevision: number): WatchRequest {
  const rangeEnd = rangeEndOf(spec);
  const key = spec.shape === 'all' ? FROM_KEY : bytes(spec.key);
  const { noPut, noDelete, prevKv } = spec;
  return { key, ...(rangeEnd === undefined ? {} : { rangeEnd }), startRevision, noPut, noDelete, prevKv };
}

/** An event as compared: revision, type, key, value and the previous value when wanted. */
type Seen = string;

interface RefEvent {
  readonly revision: number;
  readonly type: 'PUT' | 'DELETE';
  readonly key: string;
  readonly value: string;
  readonly prev: string | undefined;
}

function seenOf(event: RefEvent, prevKv: boolean): Seen {
  const prev = prevKv && event.prev !== undefined ? ` prev=${event.prev}` : '';
  return `${event.revision} ${event.type} ${event.key}=${event.value}${prev}`;
}

function seenOfWatch(revision: number, event: WatchEvent, prevKv: boolean): Seen {
  assert(prevKv || event.prevKv === undefined, 'prevKv sent to a watch that did not ask for it');
  const prev = prevKv && event.prevKv !== undefined ? ` prev=${text(event.prevKv.value)}` : '';
  return `${revision} ${event.type} ${text(event.kv.key)}=${text(event.kv.value)}${prev}`;
}

interface Watch {
  readonly spec: WatchSpec;
  readonly from: number;
  readonly watcher: Watcher;
  readonly seen: Seen[];
  compacted: number | undefined;
}

/** Runs `ops` on a state machine and on the reference, then checks every watch. */
function run(ops: readonly Op[], mutations: WatchMutations): void {
  const options = { ...DEFAULT_KV_OPTIONS, watchQueueBatchesMax: 2, watchCatchUpRevisionsMax: 3 };
  const machine = new KvStateMachine(new MemoryStore(), options, mutations);
  const state = new Map<string, string>();
  const events: RefEvent[] = [];
  const watches: Watch[] = [];
  let index = 0;
  let compactRevision = 0;
  const apply = (command: KvCommand) => {
    machine.applyEntry({ index: ++index, command });
    machine.publishWatchEvents();
  };
  for (const op of ops) {
    switch (op.kind) {
      case 'compact': {
        const revision = machine.revision - op.back;
        if (revision <= compactRevision) break;
        apply({ type: 'compact', revision });
        compactRevision = revision;
        break;
      }
      case 'watch':
        startWatch(machine, op.spec, compactRevision, watches);
        break;
      case 'read':
        read(watches[op.watch], op.batches, compactRevision);
        break;
      case 'cancel':
        watches[op.watch]?.watcher.cancel();
        break;
      default:
        write(op, machine.revision + 1, state, events, apply);
    }
  }
  for (const watch of watches)
    if (!watch.watcher.isCanceled) read(watch, Number.POSITIVE_INFINITY, compactRevision);
  for (const watch of watches) check(watch, events, compactRevision);
}

function write(
  op: Extract<Op, { kind: 'put' | 'delete' | 'txn' }>,
  revision: number,
  state: Map<string, string>,
  events: RefEvent[],
  apply: (command: KvCommand) => void,
): void {
  const put = (key: string): RefEvent => {
    const value = `v${revision}`;
    const event = { revision, type: 'PUT' as const, key, value, prev: state.get(key) };
    state.set(key, value);
    return event;
  };
  let batch: RefEvent[];
  if (op.kind === 'put') {
    batch = [put(op.key)];
    apply({ type: 'put', key: bytes(op.key), value: bytes(`v${revision}`) });
  } else if (op.kind === 'txn') {
    if (op.keys[0] === op.keys[1]) return;
    batch = op.keys.map(put);
    const success = op.keys.map((key) => ({
      type: 'put' as const,
      key: bytes(key),
      value: bytes(`v${revision}`),
    }));
    apply({ type: 'txn', compare: [], success, failure: [] });
  } else {
    const gone = [...state.keys()]
      .filter((key) => (op.prefix ? key.startsWith(op.key) : key === op.key))
      .sort();
    batch = gone.map((key) => ({ revision, type: 'DELETE' as const, key, value: '', prev: state.get(key) }));
    for (const key of gone) state.delete(key);
    const rangeEnd = op.prefix ? prefixEnd(op.key) : undefined;
    apply({ type: 'deleteRange', key: bytes(op.key), ...(rangeEnd === undefined ? {} : { rangeEnd }) });
  }
  events.push(...batch);
}

function startWatch(
  machine: KvStateMachine,
  spec: WatchSpec,
  compactRevision: number,
  watches: Watch[],
): void {
  if (spec.shape === 'range' && spec.end < spec.key) return;
  const next = machine.revision + 1;
  const startRevision = spec.back === 0 ? 0 : Math.max(1, next - spec.back);
  const request = requestOf(spec, startRevision);
  if (startRevision > 0 && startRevision < compactRevision) {
    assert.throws(
      () => machine.watch(request),
      (error) => isKvError(error, 'COMPACTED'),
    );
    return;
  }
  const watcher = machine.watch(request);
  watches.push({
    spec,
    from: startRevision === 0 ? next : startRevision,
    watcher,
    seen: [],
    compacted: undefined,
  });
}

/** Takes up to `batches` batches from a watch, as a consumer would. */
function read(watch: Watch | undefined, batches: number, compactRevision: number): void {
  if (watch === undefined || watch.compacted !== undefined) return;
  for (let taken = 0; taken < batches; taken++) {
    let batch: ReturnType<Watcher['poll']>;
    try {
      batch = watch.watcher.poll();
    } catch (error) {
      if (!isKvError(error, 'COMPACTED')) throw error;
      assert.equal(error.compactRevision, compactRevision, 'COMPACTED names the compacted revision');
      watch.compacted = error.compactRevision;
      return;
    }
    if (batch === undefined) return;
    assert(batch.events.length > 0, 'an empty batch was delivered');
    for (const event of batch.events) watch.seen.push(seenOfWatch(batch.revision, event, watch.spec.prevKv));
  }
}

/**
 * Whether history may have lost an event's prevKv: a replay (like etcd's) leaves it out once
 * the previous version is compacted. Values are `v<revision>`, so a value names its revision.
 */
function prevMayBeLost(event: RefEvent, compactRevision: number): boolean {
  return event.prev !== undefined && Number(event.prev.slice(1)) < compactRevision;
}

function check(watch: Watch, events: readonly RefEvent[], compactRevision: number): void {
  const { spec } = watch;
  const inRange = selects(spec);
  const expected = events
    .filter((event) => event.revision >= watch.from && inRange(event.key))
    .filter((event) => !(event.type === 'PUT' ? spec.noPut : spec.noDelete))
    .map((event, at) => {
      const bare = seenOf(event, false);
      const lost = spec.prevKv && prevMayBeLost(event, compactRevision) && watch.seen[at] === bare;
      return lost ? bare : seenOf(event, spec.prevKv);
    });
  const label = JSON.stringify({ ...spec, from: watch.from });
  if (watch.compacted !== undefined) {
    assert.deepEqual(watch.seen, expected.slice(0, watch.seen.length), `${label}: events before COMPACTED`);
  } else if (watch.watcher.isCanceled) {
    assert.deepEqual(watch.seen, expected.slice(0, watch.seen.length), `${label}: events before the cancel`);
  } else {
    assert.deepEqual(watch.seen, expected, `${label}: events`);
  }
}

const property = (mutations: WatchMutations) =>
  fc.property(fc.array(opArb, { minLength: 1, maxLength: 80, size: 'medium' }), (ops) => run(ops, mutations));

test('each watch sees exactly the events its range, filters and start revision select, once, in order', () => {
  fc.assert(property(NO_WATCH_MUTATIONS), { numRuns: 400 });
});

test('checker sanity: a range that also routes its end key is caught', () => {
  const result = fc.check(property({ rangeEndInclusive: true }), { numRuns: 400 });
  assert.equal(result.failed, true, 'the misrouting mutation went unnoticed');
  assert.match(String(result.errorInstance), /events/);
});
