import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import type { Entry, MutationName } from '../src/raft/index.js';
import { runSeeds, runSimulation, type SimParams, type SimResult } from '../src/sim/index.js';
import { SimWal, WalStorage } from '../src/sim/sim-wal.js';

/** Fixes a seed to the multi-group profile with `groups` groups; the rest still comes from the seed. */
function multiGroup(groups: number): Partial<SimParams> {
  return { profile: 'multi-group', groups, membershipRate: 0 };
}

/** The run of `seed` and a hash of its narration: every event that mattered, in order. */
async function traced(
  seed: number,
  overrides: Partial<SimParams>,
): Promise<{ result: SimResult; hash: string; lines: string[] }> {
  const lines: string[] = [];
  const result = await runSimulation({ seed, overrides, narrate: (line) => lines.push(line) });
  return { result, hash: createHash('sha256').update(lines.join('\n')).digest('hex'), lines };
}

test('the multi-group profile: every group of every process stays safe and linearizable under process faults', async () => {
  let crashes = 0;
  let partitions = 0;
  let ops = 0;
  let kept = 0;
  let torn = 0;
  for (let seed = 1; seed <= 18; seed++) {
    const groups = 2 + (seed % 3);
    const { result, lines } = await traced(seed, multiGroup(groups));
    assert.equal(result.status, 'ok', `seed ${seed}: ${result.property}: ${result.detail}`);
    assert.equal(result.profile, 'multi-group');
    // Every group ran its own replicas, leaders and checks.
    for (let group = 1; group <= groups; group++) {
      assert.ok(
        lines.some((l) => l.includes(`[group ${group}] checks:`)),
        `seed ${seed}: group ${group} was checked`,
      );
    }
    crashes += result.stats.crashes;
    partitions += result.stats.partitions;
    ops += result.stats.ops;
    kept += result.stats.inFlightWritesKept;
    torn += result.stats.tornRecordsCut;
  }
  assert.ok(kept > 0, 'some Readies in flight at a crash reached the shared log');
  assert.ok(torn > 0, 'some crashes left a torn record, cut off on recovery');
  assert.ok(crashes > 50, `crashes ${crashes}`);
  assert.ok(partitions > 50, `partitions ${partitions}`);
  assert.ok(ops > 500, `ops ${ops}`);
});

test('a multi-group seed reproduces the same run exactly', async () => {
  for (const seed of [5, 21, 48]) {
    const a = await traced(seed, {});
    const b = await traced(seed, {});
    assert.equal(a.result.profile, 'multi-group', `seed ${seed} draws the profile`);
    assert.deepEqual(a.result, b.result);
    assert.equal(a.hash, b.hash);
  }
});

test('the default seed mix runs the multi-group profile on a share of seeds and counts them', async () => {
  const summary = await runSeeds({ first: 1, count: 60 });
  assert.deepEqual(summary.failures, []);
  const { 'multi-group': seeds = 0 } = summary.profiles;
  assert.ok(seeds >= 2 && seeds <= 12, JSON.stringify(summary.profiles));
});

/** The first multi-group seed in `[1, seedsMax]` that fails with `name` switched on. */
async function firstCaught(name: MutationName, seedsMax: number): Promise<SimResult | undefined> {
  for (let seed = 1; seed <= seedsMax; seed++) {
    const result = await runSimulation({ seed, mutation: name, overrides: multiGroup(2 + (seed % 3)) });
    if (result.status === 'failed') return result;
  }
  return undefined;
}

test('a shared log whose recovery mixes two groups’ entries is caught by the safety checkers', async () => {
  const caught = await firstCaught('wal-mixes-groups', 40);
  assert.ok(caught !== undefined, 'caught within 40 seeds');
  assert.ok(
    ['state-machine-safety', 'log-matching', 'leader-completeness', 'linearizability'].includes(
      caught.property ?? '',
    ),
    `${caught.property}: ${caught.detail}`,
  );
});

test('a process that routes a message to the wrong group is caught', async () => {
  const caught = await firstCaught('misroute-group-message', 40);
  assert.ok(caught !== undefined, 'caught within 40 seeds');
  assert.notEqual(caught.property, 'liveness', `${caught.property}: ${caught.detail}`);
});

function entry(index: number, term: number, text: string): Entry {
  return { index, term, type: 'normal', data: new TextEncoder().encode(text) };
}

function texts(storage: WalStorage): string[] {
  const entries = storage.entries(storage.firstIndex(), storage.lastIndex() + 1, Number.MAX_SAFE_INTEGER);
  return entries.map((e) => new TextDecoder().decode(e.data));
}

test('the shared log splits by group on recovery and cuts a torn tail off', () => {
  const wal = new SimWal();
  const one = new WalStorage(1).attach(wal);
  const two = new WalStorage(2).attach(wal);
  one.append([entry(1, 1, 'a1'), entry(2, 1, 'a2')]);
  two.append([entry(1, 1, 'b1')]);
  one.setHardState({ term: 1, vote: 1, commit: 2 });
  two.append([entry(2, 2, 'b2')]);
  wal.appendTorn();
  const recovered = wal.recover([1, 2], false);
  assert.deepEqual(texts(recovered.get(1)!), ['a1', 'a2']);
  assert.deepEqual(texts(recovered.get(2)!), ['b1', 'b2']);
  assert.deepEqual(recovered.get(1)!.initialState().hardState, { term: 1, vote: 1, commit: 2 });
  assert.equal(wal.length, 4, 'the torn record is gone');
  // Writes after recovery go on after the cut, as records of their group; a Ready's
  // entries and hard state are one record, kept or lost whole.
  recovered.get(2)!.saveSync({ entries: [entry(3, 2, 'b3')], hardState: { term: 2, vote: 2, commit: 3 } });
  assert.equal(wal.length, 5);
  assert.deepEqual(texts(wal.recover([1, 2], false).get(2)!), ['b1', 'b2', 'b3']);
  // The deliberate bug: entries keyed by index alone, the later group's entry wins.
  assert.deepEqual(texts(wal.recover([1, 2], true).get(1)!), ['b1', 'b2']);
  assert.throws(() => wal.recover([1], false), /group 2, which this process does not host/);
});
