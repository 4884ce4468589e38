/**
 * A host added to running groups: three hosts run counter groups, the groups' leaders add a
 * fourth host as a learner, the fourth host opens each group with `join: true` (an empty
 * log, no bootstrap of its own), catches up from its leader (a snapshot, then entries), is
 * promoted to voter and serves linearizable reads; restarted, it reopens the groups from
 * its own data. `openGroup` wants exactly one of `members` and `join`.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Counter } from '../examples/counter-machine.js';
import type { FlotillaHost } from '../src/index.js';
import { until } from './support/http.js';
import { type CounterGroup, openCounters, planHosts, range, startHosts } from './support/multiraft.js';

let root = '';
after(async () => {
  if (root !== '') await rm(root, { recursive: true, force: true });
});

/** The group's leader among `handles`, once one leads. */
async function leaderOf(handles: readonly CounterGroup[]): Promise<CounterGroup> {
  return until('a leader', 30_000, () => handles.find((h) => h.status().role === 'leader'));
}

test('a host added to running groups joins them with an empty log and catches up', {
  timeout: 120_000,
}, async () => {
  root = await mkdtemp(join(tmpdir(), 'flotilla-join-'));
  // Snapshots every 20 entries keeping 5: the joining replica needs a snapshot, then entries.
  const configs = await planHosts(root, 4, { snapshotEntries: 20, snapshotKeepEntries: 5 });
  const hosts: FlotillaHost[] = await startHosts(configs.slice(0, 3));
  try {
    const ids = range(3);
    const groups = await Promise.all(hosts.map((h) => openCounters(h, ids, [1, 2, 3])));
    const expected = new Map<number, number>();
    for (const g of ids) {
      const leader = await leaderOf(groups.map((h) => h.get(g)!));
      let value = 0;
      for (let i = 0; i < 30; i++) value = await leader.propose({ op: 'add', n: g });
      expected.set(g, value);
    }

    hosts.push((await startHosts([configs[3]!]))[0]!);
    const fourth = hosts[3]!;
    const counter = () => new Counter();
    await assert.rejects(fourth.openGroup(1, { stateMachine: counter() }), { code: 'INVALID_CONFIG' });
    await assert.rejects(
      fourth.openGroup(1, { stateMachine: counter(), members: [1, 2, 3, 4], join: true }),
      {
        code: 'INVALID_CONFIG',
      },
    );
    const joined = new Map<number, CounterGroup>();
    for (const g of ids) {
      const leader = await leaderOf(groups.map((h) => h.get(g)!));
      await leader.addLearner(4, configs[3]!.listen);
      const replica = (await fourth.openGroup(g, { stateMachine: counter(), join: true })) as CounterGroup;
      // Nothing of its own: a founding bootstrap would have written a first entry (index 1).
      assert.equal(replica.status().lastIndex, 0, `group ${g}: the joining replica's log is empty`);
      joined.set(g, replica);
    }
    for (const g of ids) {
      const replica = joined.get(g)!;
      await until(`group ${g} caught up on host 4`, 30_000, async () =>
        (await replica.read(null, { consistency: 'serializable' })) === expected.get(g) ? true : undefined,
      );
      assert.ok(replica.status().firstIndex > 1, `group ${g}: the joined replica started from a snapshot`);
      const leader = await leaderOf(groups.map((h) => h.get(g)!));
      await until(`group ${g}: host 4 promoted`, 30_000, () =>
        leader.promote(4).then(
          () => true,
          () => undefined,
        ),
      );
      expected.set(g, await leader.propose({ op: 'add', n: 100 }));
      assert.equal(await replica.read(null), expected.get(g), `group ${g}: a linearizable read on host 4`);
      assert.deepEqual(
        (await replica.members()).map((m) => m.id),
        [1, 2, 3, 4],
      );
    }

    // Host 4 restarted: `join` reopens what it has; the groups carry on with it.
    await fourth.close();
    hosts[3] = (await startHosts([configs[3]!]))[0]!;
    for (const g of ids) {
      const replica = (await hosts[3].openGroup(g, { stateMachine: counter(), join: true })) as CounterGroup;
      assert.equal(await replica.read(null), expected.get(g), `group ${g} after host 4 restarted`);
    }
  } finally {
    await Promise.all(hosts.map((h) => h.close()));
  }
});
