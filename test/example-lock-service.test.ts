/**
 * The lock service example (examples/lock-service.ts) as three real processes: two owners
 * contend for a lock; the holder's lease runs out and the other takes it with a newer
 * fencing token, after which the first holder's writes and release are refused; the leader
 * is SIGKILLed and restarted, and the cluster keeps the locks, the guarded value and the
 * token sequence.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import * as examples from './support/examples.js';
import { until } from './support/http.js';

const LOCKS = examples.examplePath('lock-service');
const children = new Map<number, ChildProcess>();

/** The fields of the lock service's answers the test looks at. */
interface LockBody {
  readonly ok?: boolean;
  readonly token?: number;
  readonly holder?: string | null;
  readonly value?: string | null;
}

/** A POST to `path` with `query` on `url`, retried while the cluster has no leader (503). */
async function post(url: string, path: string, query: Record<string, string | number>): Promise<LockBody> {
  const search = new URLSearchParams(Object.entries(query).map(([k, v]): [string, string] => [k, String(v)]));
  return until(`${path} on ${url}`, 20_000, async () => {
    try {
      const { status, body } = await examples.callExample<LockBody>(`${url}${path}?${search}`, {
        method: 'POST',
      });
      return status === 200 ? body : undefined;
    } catch {
      return undefined;
    }
  });
}

async function view(url: string): Promise<LockBody> {
  return until(`a read on ${url}`, 20_000, async () => {
    try {
      const { status, body } = await examples.callExample<LockBody>(`${url}/lock?lock=db`);
      return status === 200 ? body : undefined;
    } catch {
      return undefined;
    }
  });
}

test('lock service example: fencing tokens, lease expiry, leader SIGKILL and restart', async (t) => {
  const root = await examples.exampleRoot(t, 'flotilla-locks-', children);
  const members = await examples.exampleCluster(root, 3, ['--snapshot-entries', '5']);
  for (const m of members) examples.startExample(LOCKS, m, children);
  await until('a leader', 20_000, () => examples.exampleLeader(members));
  const [m1, m2, m3] = members.map((m) => m.url) as [string, string, string];

  const a = await post(m1, '/acquire', { lock: 'db', owner: 'a', ttl: 1500 });
  assert.equal(a.ok, true);
  const refused = await post(m2, '/acquire', { lock: 'db', owner: 'b', ttl: 1500 });
  assert.deepEqual([refused.ok, refused.holder], [false, 'a'], 'one holder at a time');
  assert.equal((await post(m3, '/write', { lock: 'db', token: a.token!, value: 'from-a' })).ok, true);
  assert.equal((await view(m2)).holder, 'a');

  await sleep(1600); // a's lease runs out: b may take the lock, with a newer token
  const b = await post(m2, '/acquire', { lock: 'db', owner: 'b', ttl: 60_000 });
  assert.equal(b.ok, true);
  assert.ok(b.token! > a.token!, `fencing tokens grow: ${a.token} then ${b.token}`);
  assert.equal((await post(m1, '/write', { lock: 'db', token: b.token!, value: 'from-b' })).ok, true);
  assert.equal(
    (await post(m1, '/write', { lock: 'db', token: a.token!, value: 'stale' })).ok,
    false,
    'a is fenced off',
  );
  assert.equal((await post(m1, '/release', { lock: 'db', owner: 'a', token: a.token! })).ok, false);

  const leader = (await examples.exampleLeader(members))!;
  children.get(leader)!.kill('SIGKILL');
  const other = members.find((m) => m.id !== leader)!.url;
  const seen = await view(other);
  assert.deepEqual(
    [seen.holder, seen.token, seen.value],
    ['b', b.token, 'from-b'],
    'the survivors keep the lock',
  );
  assert.equal((await post(other, '/release', { lock: 'db', owner: 'b', token: b.token! })).ok, true);
  examples.startExample(LOCKS, members[leader - 1]!, children);
  const restarted = members[leader - 1]!.url;
  const c = await post(restarted, '/acquire', { lock: 'db', owner: 'c', ttl: 60_000 });
  assert.equal(c.ok, true);
  assert.ok(
    c.token! > b.token!,
    `the token sequence survives the leader's restart: ${b.token} then ${c.token}`,
  );
  for (const m of members) {
    const v = await view(m.url);
    assert.deepEqual([v.holder, v.value], ['c', 'from-b'], `member ${m.id}`);
  }
});
