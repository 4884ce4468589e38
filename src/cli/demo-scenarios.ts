/**
 * The partition and crash scenarios of `flotilla demo`, (a) to (e), each a function of the
 * running {@link DemoCluster}: what it does to the cluster, narrated, and the checks it makes.
 */
import { call, DEMO_NODES, type DemoCluster, type DemoNode, ELECTION_MS_MAX, sleep } from './demo-cluster.js';

/** (a) every node agrees on a leader, and a write through a follower reaches every node. */
export async function normalReplication(demo: DemoCluster): Promise<void> {
  demo.scenario('a', 'normal replication');
  const leader = await demo.agreedLeader(demo.up());
  if (!demo.check(leader !== undefined, `all ${DEMO_NODES} nodes agree on a leader: ${leader?.info.name}`))
    return;
  const follower = demo.up().find((n) => n !== leader)!;
  const ok = await demo.put(follower, 'demo/greeting', 'hello');
  demo.check(ok, `PUT demo/greeting=hello through follower ${follower.info.name} acknowledged`);
  const applied = await Promise.all(demo.up().map((n) => demo.appliedOn(n, 'demo/greeting', 'hello')));
  demo.check(
    applied.every(Boolean),
    `serializable read of demo/greeting returns 'hello' on every node (${demo
      .up()
      .map((n, i) => `${n.info.name}${applied[i] ? '' : ' NOT'}`)
      .join(', ')})`,
  );
}

/** (b) a follower is SIGKILLed: writes through the survivors continue, none lost. */
export async function followerKilled(demo: DemoCluster): Promise<void> {
  demo.scenario('b', 'a follower is killed (SIGKILL): writes continue');
  const leader = await demo.agreedLeader(demo.up());
  if (!demo.check(leader !== undefined, `leader is ${leader?.info.name}`)) return;
  const victim = demo.up().find((n) => n !== leader)!;
  demo.signal(victim, 'SIGKILL');
  demo.say(
    `SIGKILL follower ${victim.info.name} (pid ${victim.info.pid}); ${demo.up().length} of ${DEMO_NODES} alive`,
  );
  const started = Date.now();
  const acked = await demo.writeMany(demo.up(), 10, 'b');
  demo.check(
    acked === 10,
    `${acked}/10 writes through the survivors acknowledged (${Date.now() - started} ms)`,
  );
  const missing = await demo.missingOn(leader!, 'linearizable');
  demo.check(
    missing === 0,
    `linearizable range read on leader ${leader!.info.name}: ${missing ?? '?'} acknowledged writes missing`,
  );
}

/** (c) the leader is SIGKILLed: the survivors elect another and keep every acknowledged write. */
export async function leaderKilled(demo: DemoCluster): Promise<void> {
  demo.scenario('c', 'the leader is killed (SIGKILL): a new leader is elected, no acknowledged write lost');
  const leader = await demo.agreedLeader(demo.up());
  if (!demo.check(leader !== undefined, `leader is ${leader?.info.name}`)) return;
  demo.signal(leader!, 'SIGKILL');
  const killedAt = Date.now();
  demo.say(
    `SIGKILL leader ${leader!.info.name} (pid ${leader!.info.pid}); ${demo.up().length} of ${DEMO_NODES} alive`,
  );
  const next = await demo.agreedLeader(demo.up(), leader!.info.name);
  const electionMs = Date.now() - killedAt;
  demo.check(
    next !== undefined,
    `new leader ${next?.info.name ?? '(none)'} agreed on by the survivors ${electionMs} ms after the kill (election timeout ${ELECTION_MS_MAX / 2}–${ELECTION_MS_MAX} ms)`,
  );
  if (next === undefined) return;
  const missing = await Promise.all(demo.up().map((n) => demo.missingOn(n, 'linearizable')));
  demo.check(
    missing.every((m) => m === 0),
    `all ${demo.acknowledged.size} acknowledged writes read back (linearizable) on every survivor`,
  );
}

/** (d) 3 of 5 alive still commit; the killed nodes restart and catch up. */
export async function threeOfFive(demo: DemoCluster): Promise<void> {
  demo.scenario('d', 'only 3 of 5 alive: still commits');
  const alive = demo.up();
  demo.say(`alive: ${alive.map((n) => n.info.name).join(', ')} (a majority of ${DEMO_NODES} is 3)`);
  const acked = await demo.writeMany(alive, 10, 'd');
  demo.check(acked === 10, `${acked}/10 writes through the 3 survivors acknowledged`);
  const caught = await Promise.all(alive.map((n) => demo.caughtUp(n)));
  demo.check(caught.every(Boolean), 'every survivor applied every acknowledged write');
  const dead = demo.nodes.filter((n) => n.state === 'killed');
  for (const node of dead) demo.start(node);
  await demo.writeClusterFile();
  demo.say(
    `restart ${dead.map((n) => `${n.info.name} (pid ${n.info.pid})`).join(', ')} from their data directories`,
  );
  const restarted = await Promise.all(dead.map((n) => demo.caughtUp(n)));
  demo.check(
    restarted.every(Boolean),
    `the restarted nodes caught up: all ${demo.acknowledged.size} acknowledged writes applied on ${dead.map((n) => n.info.name).join(', ')}`,
  );
}

/**
 * (e) A minority of 2 (the leader and a follower) is SIGSTOPped: the majority elects a
 * leader and commits, the minority resumes, catches up and serves no stale read.
 */
export async function minorityPartition(demo: DemoCluster): Promise<void> {
  demo.scenario('e', 'a minority (the leader and one follower) is cut off by SIGSTOP, then heals');
  const leader = await demo.agreedLeader(demo.up());
  if (!demo.check(leader !== undefined, `all ${demo.up().length} nodes agree on leader ${leader?.info.name}`))
    return;
  const old = leader!;
  demo.check(
    await demo.put(old, STALE_KEY, 'old'),
    `PUT ${STALE_KEY}=old through leader ${old.info.name} acknowledged`,
  );
  const applied = await Promise.all(demo.up().map((n) => demo.appliedOn(n, STALE_KEY, 'old')));
  demo.check(applied.every(Boolean), `every node applied ${STALE_KEY}=old`);
  const partition = await pauseMinority(demo, old);
  if (partition === undefined) return;
  const resumedAt = await readThroughResumingLeader(demo, partition);
  await checkRejoined(demo, partition, resumedAt);
}

/** The key scenario (e) writes before and during the partition; the old leader must never read the old value. */
const STALE_KEY = 'demo/e/stale';

/** Scenario (e) once the minority is paused and the majority has a leader. */
interface Partition {
  /** The paused old leader and the follower paused with it. */
  readonly old: DemoNode;
  readonly follower: DemoNode;
  /** The majority's new leader. */
  readonly next: DemoNode;
  readonly stoppedAt: number;
  /** The new leader's applied index after the majority's writes. */
  readonly target: number;
}

/**
 * Pauses `old` and a follower; the majority must elect a leader and commit `new` to the
 * stale key and more writes. Undefined when it elects none.
 */
async function pauseMinority(demo: DemoCluster, old: DemoNode): Promise<Partition | undefined> {
  const key = STALE_KEY;
  const follower = demo.up().find((n) => n !== old)!;
  demo.signal(old, 'SIGSTOP');
  demo.signal(follower, 'SIGSTOP');
  const stoppedAt = Date.now();
  const majority = demo.up();
  demo.say(
    `SIGSTOP ${old.info.name} (leader) and ${follower.info.name}; majority ${majority.map((n) => n.info.name).join(', ')} keeps running`,
  );
  const next = await demo.agreedLeader(majority, old.info.name);
  demo.check(
    next !== undefined,
    `the majority elected ${next?.info.name ?? '(none)'} ${Date.now() - stoppedAt} ms after the pause`,
  );
  if (next === undefined) return undefined;
  demo.check(
    await demo.put(majority[0]!, key, 'new'),
    `PUT ${key}=new through ${majority[0]!.info.name} acknowledged`,
  );
  const acked = await demo.writeMany(majority, 5, 'e');
  demo.check(acked === 5, `${acked}/5 more writes through the majority acknowledged`);
  const target = (await demo.status(next))?.applied ?? Number.POSITIVE_INFINITY;
  return { old, follower, next, stoppedAt, target };
}

/**
 * Resumes the minority and checks that linearizable reads through the old leader never
 * return the stale value; resolves with when it resumed.
 */
async function readThroughResumingLeader(demo: DemoCluster, partition: Partition): Promise<number> {
  const { old, follower, stoppedAt } = partition;
  const key = STALE_KEY;
  // Keep the minority paused past several election timeouts, then read through the old leader:
  // one request queued while it is still stopped, one right after it resumes.
  await sleep(Math.max(0, stoppedAt + 3 * ELECTION_MS_MAX - Date.now()));
  const queued = call(old.info.clientUrl, 'GET', `/v1/kv/${key}`, undefined, 8000);
  await sleep(50);
  demo.signal(old, 'SIGCONT');
  demo.signal(follower, 'SIGCONT');
  const resumedAt = Date.now();
  demo.say(`SIGCONT ${old.info.name} and ${follower.info.name} after ${resumedAt - stoppedAt} ms`);
  const immediate = await call(old.info.clientUrl, 'GET', `/v1/kv/${key}`, undefined, 8000);
  for (const [when, reply] of [
    ['queued while paused', await queued],
    ['right after resuming', immediate],
  ] as const) {
    const shown =
      reply.status === 200
        ? `'${reply.body.value}'`
        : `error ${reply.status} ${reply.body.error?.code ?? ''}`;
    demo.check(
      !(reply.status === 200 && reply.body.value !== 'new'),
      `linearizable read of ${key} through old leader ${old.info.name} (${when}): ${shown} — never 'old'`,
    );
  }
  return resumedAt;
}

/** The resumed minority catches up, follows the new leader, and reads the new value. */
async function checkRejoined(demo: DemoCluster, partition: Partition, resumedAt: number): Promise<void> {
  const { old, follower, next, target } = partition;
  const key = STALE_KEY;
  const caught = await Promise.all([old, follower].map((n) => demo.appliedReaches(n, target)));
  demo.check(
    caught.every((a) => a !== undefined),
    `${old.info.name} and ${follower.info.name} rejoined: applied index ${caught.map((a) => a ?? '?').join(', ')} reached the leader's ${target} in ${Date.now() - resumedAt} ms`,
  );
  const views = await Promise.all([old, follower].map((n) => demo.status(n)));
  demo.check(
    views.every((v) => v?.leader?.name === next.info.name && v.role !== 'leader'),
    `both now follow ${next.info.name} (${views.map((v, i) => `${[old, follower][i]!.info.name}: ${v?.role ?? '?'}`).join(', ')})`,
  );
  const after = await call(old.info.clientUrl, 'GET', `/v1/kv/${key}`, undefined, 8000);
  demo.check(
    after.status === 200 && after.body.value === 'new',
    `read through ${old.info.name} now returns '${after.body.value ?? after.body.error?.code}'`,
  );
  const missing = await Promise.all(demo.up().map((n) => demo.caughtUp(n)));
  demo.check(
    missing.every(Boolean),
    `all ${demo.acknowledged.size} acknowledged writes applied on all ${demo.up().length} nodes`,
  );
}
