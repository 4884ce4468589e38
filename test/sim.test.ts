import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { MUTATION_NAMES, type MutationName } from '../src/raft/index.js';
import { runSeeds, runSimulation, SimCounter, SimMachineDriver } from '../src/sim/index.js';

const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

function flotilla(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('a CI-sized simulation passes every checker, and the faults really happened', async () => {
  const summary = await runSeeds({ first: 1, count: 300 });
  assert.deepEqual(summary.failures, []);
  assert.equal(summary.failed, 0);
  assert.equal(summary.unknown, 0);
  assert.ok(summary.crashes > 300, `crashes ${summary.crashes}`);
  assert.ok(summary.pauses > 100, `pauses ${summary.pauses}`);
  assert.ok(summary.partitions > 300, `partitions ${summary.partitions}`);
  assert.ok(summary.snapshots_installed > 20, `snapshots installed ${summary.snapshots_installed}`);
  // Snapshots travel as streams, some cut mid-way (a crash at either end, a cut link) and some
  // overtaken by the receiver's log before they end (its core refuses them).
  assert.ok(
    summary.snapshot_streams_ended > summary.snapshots_installed / 2,
    `${summary.snapshot_streams_ended}`,
  );
  assert.ok(summary.snapshot_streams_cut > 10, `snapshot streams cut ${summary.snapshot_streams_cut}`);
  assert.ok(summary.snapshot_streams_overtaken > 10, `overtaken ${summary.snapshot_streams_overtaken}`);
  assert.ok(summary.elections > summary.seeds, `elections ${summary.elections}`);
  // Proposals reached nodes that had stopped leading, which handed them on to the new leader.
  assert.ok(summary.proposals_handed_on > 0, `proposals handed on ${summary.proposals_handed_on}`);
  assert.ok(summary.ops > 10_000, `ops ${summary.ops}`);
  assert.ok(summary.messages_dropped > 0);
});

test('one seed reproduces the same run exactly', async () => {
  for (const seed of [3, 17, 99]) {
    assert.deepEqual(await runSimulation({ seed }), await runSimulation({ seed }));
  }
});

test('every cluster size the simulator supports stays safe', async () => {
  for (const nodes of [1, 3, 5, 7]) {
    const summary = await runSeeds({ first: 1000, count: 20, nodes });
    assert.deepEqual(summary.failures, [], `nodes ${nodes}`);
  }
});

const SAFETY_PROPERTIES = new Set([
  'election-safety',
  'vote-once',
  'leader-completeness',
  'state-machine-safety',
  'log-matching',
  'linearizability',
  'invariant',
  'commit-monotonic',
]);

/** The first seed in `[1, seedsMax]` on which a safety checker fails with `name` switched on. */
async function firstSafetyFailure(
  name: MutationName,
  seedsMax: number,
): Promise<{ seed: number; property: string; profile: string } | undefined> {
  for (let seed = 1; seed <= seedsMax; seed++) {
    const result = await runSimulation({ seed, mutation: name });
    if (result.status === 'failed' && SAFETY_PROPERTIES.has(result.property ?? '')) {
      return { seed, property: result.property ?? '', profile: result.profile };
    }
  }
  return undefined;
}

for (const name of Object.keys(MUTATION_NAMES) as MutationName[]) {
  test(`the checkers catch the deliberate bug "${name}" within 600 seeds`, async () => {
    const caught = await firstSafetyFailure(name, 600);
    assert.ok(caught !== undefined, `"${name}" was not caught in 600 seeds`);
  });
}

test('the counter profile: a user-level state machine, driven through the public interface, stays linearizable', async () => {
  let duplicates = 0;
  for (let seed = 1; seed <= 40; seed++) {
    const result = await runSimulation({ seed, overrides: { service: 'counter' } });
    assert.equal(result.status, 'ok', `seed ${seed}: ${result.property}: ${result.detail}`);
    duplicates += result.stats.duplicatesSuppressed;
  }
  assert.ok(duplicates > 0, 'some retried adds reached the counter and were suppressed');
  const summary = await runSeeds({ first: 1, count: 60 });
  const { counter = 0 } = summary.profiles;
  assert.ok(counter > 0, JSON.stringify(summary.profiles));
});

test('a retried add applied twice by the counter is caught, by the linearizability checker alone', async () => {
  const caught = await firstSafetyFailure('counter-reapplies-retry', 600);
  assert.ok(caught !== undefined);
  assert.equal(caught.property, 'linearizability');
  // The counter runs in the counter profile, and in some groups of the multi-group profile.
  assert.ok(['counter', 'multi-group'].includes(caught.profile), caught.profile);
});

test('the simulator drives state machines under the interface contract: consecutive indexes, one result each', async () => {
  const driver = new SimMachineDriver(new SimCounter() as never);
  await driver.restore(1, new Uint8Array());
  assert.deepEqual(driver.apply([{ index: 2, command: { client: 1, seq: 1, n: 3 } }]), [3]);
  assert.throws(
    () => driver.apply([{ index: 4, command: null }]),
    /apply from index 4, but the state machine is at 2/,
  );
  const image = driver.snapshot();
  const copy = new SimMachineDriver(new SimCounter() as never);
  await copy.restore(2, image);
  assert.equal(copy.query(null), 3);
  assert.deepEqual(
    copy.apply([{ index: 3, command: { client: 1, seq: 1, n: 3 } }]),
    [3],
    'a retry after restore is suppressed',
  );
  const short = new SimMachineDriver({ ...new SimCounter(), apply: () => [] } as never);
  assert.throws(() => short.apply([{ index: 1, command: null }]), /returned 0 results for 1 entries/);
});

test('flotilla sim --json ends with the summary object', () => {
  const r = flotilla('sim', '--seeds', '5', '--json');
  assert.equal(r.status, 0, r.stderr);
  const last = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
  for (const key of [
    'seeds',
    'failed',
    'unknown',
    'ops',
    'elections',
    'crashes',
    'partitions',
    'snapshots_installed',
    'max_term',
  ]) {
    assert.ok(key in last, `missing ${key}`);
  }
  assert.equal(last.seeds, 5);
  assert.equal(last.failed, 0);
});

test('flotilla sim names the violated property and prints the command that reproduces it', () => {
  const r = flotilla('sim', '--seeds', '40', '--mutate', 'vote-without-log-check');
  assert.equal(r.status, 0, 'a caught mutation is the expected outcome');
  const match = /seed (\d+): FAILED ([a-z-]+):/.exec(r.stdout);
  assert.ok(match, r.stdout);
  assert.match(
    r.stdout,
    new RegExp(`reproduce: npx flotilla sim --seed ${match[1]} --mutate vote-without-log-check`),
  );
  const again = flotilla('sim', '--seed', match[1]!, '--mutate', 'vote-without-log-check');
  assert.match(again.stdout, new RegExp(`seed ${match[1]}: FAILED ${match[2]}:`));
});

test('flotilla sim rejects bad flags with a clear error', () => {
  const nodes = flotilla('sim', '--nodes', '4');
  assert.notEqual(nodes.status, 0);
  assert.match(nodes.stderr, /cluster size must be 1, 3, 5 or 7/);
  const mutation = flotilla('sim', '--mutate', 'no-such-bug');
  assert.notEqual(mutation.status, 0);
  assert.match(mutation.stderr, /unknown mutation "no-such-bug"/);
  const seeds = flotilla('sim', '--seeds', 'many');
  assert.notEqual(seeds.status, 0);
  assert.match(seeds.stderr, /non-negative integer/);
});
