import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Entry } from '../src/raft/types.js';
import { SnapshotPolicy } from '../src/storage/snapshot-policy.js';

function applied(first: number, last: number, dataBytes = 0): Entry[] {
  const entries: Entry[] = [];
  for (let index = first; index <= last; index++) {
    entries.push({ index, term: 1, type: 'normal', data: new Uint8Array(dataBytes) });
  }
  return entries;
}

describe('SnapshotPolicy', () => {
  test('is due after the configured number of applied entries', () => {
    const policy = new SnapshotPolicy({ entriesPerSnapshot: 10, logSizeBytesMax: Infinity });
    policy.applied(applied(1, 9));
    assert.equal(policy.due(), false);
    policy.applied(applied(10, 10));
    assert.equal(policy.due(), true);
  });

  test('is due once the applied log reaches the byte limit', () => {
    const policy = new SnapshotPolicy({ entriesPerSnapshot: 1_000_000, logSizeBytesMax: 1000 });
    policy.applied(applied(1, 3, 300)); // 3 × (300 + 24) = 972 bytes
    assert.equal(policy.due(), false);
    policy.applied(applied(4, 4, 4));
    assert.equal(policy.due(), true);
  });

  test('never stacks snapshots and counts from the completed one', () => {
    const policy = new SnapshotPolicy({ entriesPerSnapshot: 5 });
    policy.applied(applied(1, 5));
    assert.equal(policy.begin(), 5);
    policy.applied(applied(6, 12));
    assert.equal(policy.due(), false, 'one snapshot at a time');
    policy.completed(5);
    assert.deepEqual(policy.sinceSnapshot().entries, 7);
    assert.equal(policy.due(), true);
    assert.equal(policy.begin(), 12);
    policy.completed(12);
    assert.equal(policy.due(), false);
  });

  test('an abandoned snapshot can be retried', () => {
    const policy = new SnapshotPolicy({ entriesPerSnapshot: 2 });
    policy.applied(applied(1, 2));
    policy.begin();
    policy.abandoned();
    assert.equal(policy.due(), true);
  });

  test('bytes since the snapshot exclude what the snapshot covers', () => {
    const policy = new SnapshotPolicy({ entriesPerSnapshot: 1_000_000, logSizeBytesMax: 100_000 });
    policy.applied(applied(1, 4, 76));
    policy.begin();
    policy.applied(applied(5, 5, 76));
    policy.completed(4);
    assert.deepEqual(policy.sinceSnapshot(), { entries: 1, bytes: 100 });
  });

  test('starts from a restored snapshot index and rejects misuse', () => {
    const policy = new SnapshotPolicy({ entriesPerSnapshot: 3 }, 100);
    assert.throws(() => policy.applied(applied(5, 5)));
    assert.throws(() => policy.begin(), /nothing applied/);
    policy.applied(applied(101, 103));
    assert.equal(policy.due(), true);
    assert.throws(() => policy.completed(103), /not the one begun/);
    assert.throws(() => new SnapshotPolicy({ entriesPerSnapshot: 0 }));
  });
});
