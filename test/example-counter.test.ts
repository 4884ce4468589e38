/**
 * Real processes on loopback running a user's state machine (examples/counter.ts) on the
 * runtime: three counter processes, ten concurrent clients incrementing through every
 * member, SIGKILL of the leader mid-run and its restart (it catches up from a snapshot of
 * the in-memory state machine, taken every 200 entries). Afterwards every member's
 * linearizable value lies between the acknowledged increments and those plus the ones whose
 * outcome is unknown (an answer lost with the killed leader, a timeout), and equals the
 * acknowledged count when none is unknown.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  callExample,
  type ExampleMember,
  exampleCluster,
  exampleLeader,
  examplePath,
  exampleRoot,
  startExample,
} from './support/examples.js';
import { until } from './support/http.js';

const COUNTER = examplePath('counter');
const CLIENTS = 10;
const children = new Map<number, ChildProcess>();

/** The fields of the counter's answers the test looks at. */
interface CounterBody {
  readonly code?: string;
  readonly value?: number;
}

const call = (url: string, init: RequestInit = {}) => callExample<CounterBody>(url, init);
const start = (member: ExampleMember): void => startExample(COUNTER, member, children);

/** How one increment ended: applied, certainly not applied, or unknown. */
async function increment(url: string): Promise<'acked' | 'refused' | 'unknown'> {
  try {
    const { status, body } = await call(`${url}/add?n=1`, { method: 'POST' });
    if (status === 200) return 'acked';
    // Never handed to the core (no leader in time) or refused by back-pressure: not written.
    return body.code === 'NO_LEADER' || body.code === 'TOO_MANY_REQUESTS' ? 'refused' : 'unknown';
  } catch (error) {
    // Connection refused: the process is down and never saw the request.
    return (error as { cause?: { code?: string } }).cause?.code === 'ECONNREFUSED' ? 'refused' : 'unknown';
  }
}

test('counter example: 3 processes, concurrent increments, leader SIGKILL and restart, every member agrees', async (t) => {
  const root = await exampleRoot(t, 'flotilla-counter-', children);
  const members = await exampleCluster(root, 3, ['--snapshot-entries', '200']);
  for (const m of members) start(m);
  const firstLeader = await until('a leader', 20_000, () => exampleLeader(members));

  const tally = { acked: 0, refused: 0, unknown: 0 };
  let running = true;
  const clients = Array.from({ length: CLIENTS }, async (_, k) => {
    for (let n = k; running; n++) {
      const outcome = await increment(members[n % 3]!.url);
      tally[outcome]++;
      if (outcome !== 'acked') await sleep(50);
    }
  });
  await sleep(1500);
  const leader = (await exampleLeader(members)) ?? firstLeader;
  children.get(leader)!.kill('SIGKILL');
  const ackedAtKill = tally.acked;
  // The two survivors elect a leader and go on (waited for, not slept: a loaded machine may
  // take a few election timeouts); a cluster that never recovers fails here.
  await until('an increment acknowledged after the kill', 20_000, () =>
    tally.acked > ackedAtKill ? true : undefined,
  );
  start(members[leader - 1]!);
  const ackedAtRestart = tally.acked;
  await until('increments acknowledged after the restart', 20_000, () =>
    tally.acked > ackedAtRestart + 20 ? true : undefined,
  );
  running = false;
  await Promise.all(clients);

  assert.ok(ackedAtKill > 20, `increments acknowledged before the kill: ${ackedAtKill}`);
  const values: number[] = [];
  for (const m of members) {
    const value = await until(`a linearizable read on member ${m.id}`, 20_000, async () => {
      try {
        const { status, body } = await call(`${m.url}/value`);
        return status === 200 ? body.value : undefined;
      } catch {
        return undefined;
      }
    });
    values.push(value);
  }
  const summary = `values ${values.join(',')}; ${JSON.stringify(tally)}; leader ${leader} killed`;
  t.diagnostic(summary);
  assert.ok(
    values.every((v) => v === values[0]),
    `every member has the same value: ${summary}`,
  );
  const value = values[0]!;
  assert.ok(tally.acked <= value && value <= tally.acked + tally.unknown, summary);
  if (tally.unknown === 0) assert.equal(value, tally.acked, summary);
});
