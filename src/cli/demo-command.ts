/**
 * `flotilla demo`: the classic Raft scenarios on a real local 5-node cluster, narrated.
 *
 * It spawns five `serve` processes on loopback (as `cluster start` does, in a temporary
 * directory unless `--data-dir` is given) and then, step by step, printing `✔` or `✘` for
 * every check: (a) normal replication, (b) a follower SIGKILLed, (c) the leader SIGKILLed and
 * a new one elected with no acknowledged write lost, (d) only 3 of 5 alive still commit (then
 * the two killed nodes restart and catch up), (e) a minority of 2 (the leader and a follower)
 * SIGSTOPped: the majority elects a leader and commits, the minority resumes, catches up and
 * serves no stale read, (f) a counter incremented concurrently through every node by
 * compare-and-swap transactions ends exact. Every process is stopped at the end; the exit
 * code is 1 if any check failed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { type ClusterNodeInfo, initialClusterOf, planNode, serveArgs } from './cluster-command.js';

/** Nodes in the demo cluster. */
export const DEMO_NODES = 5;
/** Milliseconds per raft tick in the demo cluster (elections take 0.5–1 s). */
export const DEMO_TICK_MS = 50;
/** Election timeout of the demo cluster, in ticks (randomized in `[t, 2t)`). */
export const DEMO_ELECTION_TICKS = 10;
/** Increments each node makes to the replicated counter in scenario (f). */
export const DEMO_COUNTER_INCREMENTS = 10;

/** The longest randomized election timeout, in milliseconds. */
const ELECTION_MS_MAX = 2 * DEMO_ELECTION_TICKS * DEMO_TICK_MS;
/** How long any single wait of the demo may take before its check fails. */
const WAIT_MS = 10_000;
const SERVE_EXTRA = ['--tick-ms', String(DEMO_TICK_MS), '--election-ticks', String(DEMO_ELECTION_TICKS)];

interface DemoFlags {
  dataDir?: string;
  keep?: boolean;
}

/** The fields of API responses the demo looks at. */
interface ApiBody {
  readonly error?: { readonly code: string; readonly message: string };
  readonly value?: string;
  readonly count?: number;
  readonly kvs?: readonly { readonly key: string; readonly value: string }[];
  readonly succeeded?: boolean;
  readonly responses?: readonly { readonly get?: { readonly kvs: readonly { readonly value: string }[] } }[];
  readonly role?: string;
  readonly leader?: { readonly name: string } | null;
  readonly term?: number;
  readonly commit?: number;
  readonly applied?: number;
}

/** A reply, or status 0 when the request failed (connection refused, reset, timed out). */
interface Reply {
  readonly status: number;
  readonly body: ApiBody;
}

type NodeState = 'up' | 'killed' | 'stopped';

interface DemoNode {
  readonly info: ClusterNodeInfo;
  child: ChildProcess | undefined;
  state: NodeState;
}

interface CheckResult {
  readonly scenario: string;
  readonly ok: boolean;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** One HTTP request; never throws (a failure is status 0 with the message as the error). */
async function call(
  url: string,
  method: string,
  path: string,
  body?: unknown,
  timeoutMs = 3000,
): Promise<Reply> {
  try {
    const res = await fetch(`${url}${path}`, {
      method,
      ...(body === undefined
        ? {}
        : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    return { status: res.status, body: text === '' ? {} : (JSON.parse(text) as ApiBody) };
  } catch (error) {
    return { status: 0, body: { error: { code: 'UNREACHABLE', message: (error as Error).message } } };
  }
}

/** Polls `probe` until it returns a value or `timeoutMs` passes (then `undefined`). */
async function until<T>(timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) return undefined;
    await sleep(25);
  }
}

/** The demo: the cluster it runs and the checks it has made. */
class Demo {
  readonly nodes: DemoNode[] = [];
  readonly results: CheckResult[] = [];
  /** Every write a node acknowledged: key → value. */
  readonly acknowledged = new Map<string, string>();
  private scenarioName = '';
  private writes = 0;

  constructor(private readonly dataDir: string) {}

  // ---- narration -------------------------------------------------------------------------

  scenario(name: string, title: string): void {
    this.scenarioName = name;
    console.log(`\n${name}) ${title}`);
  }

  say(text: string): void {
    console.log(`   · ${text}`);
  }

  check(ok: boolean, text: string): boolean {
    this.results.push({ scenario: this.scenarioName, ok });
    console.log(`   ${ok ? '✔' : '✘'} ${text}`);
    return ok;
  }

  // ---- processes -------------------------------------------------------------------------

  async plan(): Promise<void> {
    for (let i = 1; i <= DEMO_NODES; i++) {
      this.nodes.push({
        info: await planNode(`n${i}`, this.dataDir),
        child: undefined,
        state: 'killed',
      });
    }
  }

  start(node: DemoNode): void {
    const main = fileURLToPath(new URL('./main.js', import.meta.url));
    const log = createWriteStream(join(this.dataDir, `${node.info.name}.log`), { flags: 'a' });
    const args = serveArgs(node.info, initialClusterOf(this.nodes.map((n) => n.info)), SERVE_EXTRA);
    const child = spawn(process.execPath, [main, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.pipe(log);
    child.stderr?.pipe(log);
    child.on('exit', () => {
      if (node.child === child) {
        node.child = undefined;
        node.state = 'killed';
      }
    });
    node.child = child;
    node.info.pid = child.pid ?? 0;
    node.state = 'up';
  }

  signal(node: DemoNode, signal: 'SIGKILL' | 'SIGSTOP' | 'SIGCONT'): void {
    node.child?.kill(signal);
    if (signal === 'SIGKILL') {
      node.child = undefined;
      node.state = 'killed';
    } else {
      node.state = signal === 'SIGSTOP' ? 'stopped' : 'up';
    }
  }

  /** Stops every process: resumes the stopped ones, SIGTERM, then SIGKILL after 3 s. */
  async stopAll(): Promise<void> {
    const running = this.nodes.flatMap((n) => (n.child === undefined ? [] : [n.child]));
    for (const child of running) {
      child.kill('SIGCONT');
      child.kill('SIGTERM');
    }
    const deadline = Date.now() + 3000;
    while (running.some((c) => c.exitCode === null && c.signalCode === null) && Date.now() < deadline) {
      await sleep(25);
    }
    for (const child of running)
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await until(2000, async () =>
      running.every((c) => c.exitCode !== null || c.signalCode !== null) ? true : undefined,
    );
  }

  /** Last resort on exit: SIGKILL whatever still runs (synchronous). */
  killAllNow(): void {
    for (const node of this.nodes) {
      node.child?.kill('SIGCONT');
      node.child?.kill('SIGKILL');
    }
  }

  async writeClusterFile(): Promise<void> {
    const file = join(this.dataDir, 'cluster.json');
    await writeFile(`${file}.tmp`, `${JSON.stringify({ nodes: this.nodes.map((n) => n.info) }, null, 2)}\n`);
    await rename(`${file}.tmp`, file);
  }

  // ---- cluster views ---------------------------------------------------------------------

  up(): DemoNode[] {
    return this.nodes.filter((n) => n.state === 'up');
  }

  byName(name: string): DemoNode {
    const node = this.nodes.find((n) => n.info.name === name);
    if (node === undefined) throw new Error(`no node ${name}`);
    return node;
  }

  /** Waits until every node of `among` names the same leader, itself one of `among`. */
  async agreedLeader(among: readonly DemoNode[], not = ''): Promise<DemoNode | undefined> {
    const name = await until(WAIT_MS, async () => {
      const views = await Promise.all(among.map((n) => call(n.info.clientUrl, 'GET', '/v1/cluster')));
      const names = views.map((v) => (v.status === 200 ? (v.body.leader?.name ?? '') : ''));
      const first = names[0] ?? '';
      const ok =
        first !== '' &&
        first !== not &&
        names.every((x) => x === first) &&
        among.some((n) => n.info.name === first);
      return ok ? first : undefined;
    });
    return name === undefined ? undefined : this.byName(name);
  }

  async status(node: DemoNode): Promise<ApiBody | undefined> {
    const reply = await call(node.info.clientUrl, 'GET', '/v1/cluster');
    return reply.status === 200 ? reply.body : undefined;
  }

  /** A put through `node`, retried on retryable errors for up to `timeoutMs`; true once acknowledged. */
  async put(node: DemoNode, key: string, value: string, timeoutMs = WAIT_MS): Promise<boolean> {
    const ok = await until(timeoutMs, async () => {
      const reply = await call(node.info.clientUrl, 'PUT', `/v1/kv/${key}`, { value }, 6000);
      if (reply.status === 200) return true;
      if (reply.status === 503 || reply.status === 429 || reply.status === 0) {
        await sleep(50);
        return undefined;
      }
      return false; // not retryable (a 504's outcome is unknown, so it is not acknowledged)
    });
    if (ok === true) this.acknowledged.set(key, value);
    return ok === true;
  }

  /** `count` writes spread over `through`, each retried; returns how many were acknowledged. */
  async writeMany(through: readonly DemoNode[], count: number, tag: string): Promise<number> {
    let acknowledged = 0;
    for (let i = 0; i < count; i++) {
      const node = through[i % through.length]!;
      this.writes++;
      if (await this.put(node, `demo/${tag}/${i}`, `w${this.writes}`)) acknowledged++;
    }
    return acknowledged;
  }

  /** Waits until a serializable (local) read of `key` on `node` returns `value`. */
  async appliedOn(node: DemoNode, key: string, value: string): Promise<boolean> {
    const ok = await until(WAIT_MS, async () => {
      const reply = await call(node.info.clientUrl, 'GET', `/v1/kv/${key}?consistency=serializable`);
      return reply.status === 200 && reply.body.value === value ? true : undefined;
    });
    return ok === true;
  }

  /** The acknowledged writes missing (or different) in `node`'s store, read with `consistency`. */
  async missingOn(node: DemoNode, consistency: 'linearizable' | 'serializable'): Promise<number | undefined> {
    const reply = await call(
      node.info.clientUrl,
      'GET',
      `/v1/kv?prefix=${encodeURIComponent('demo/')}&consistency=${consistency}`,
      undefined,
      6000,
    );
    if (reply.status !== 200) return undefined;
    const kvs = new Map((reply.body.kvs ?? []).map((kv) => [kv.key, kv.value]));
    let missing = 0;
    for (const [key, value] of this.acknowledged) if (kvs.get(key) !== value) missing++;
    return missing;
  }

  /** Waits until `node` holds every acknowledged write (serializable reads: what it applied). */
  async caughtUp(node: DemoNode): Promise<boolean> {
    return (
      (await until(WAIT_MS, async () =>
        (await this.missingOn(node, 'serializable')) === 0 ? true : undefined,
      )) === true
    );
  }

  /** Waits until `node`'s applied index reaches `index`. */
  async appliedReaches(node: DemoNode, index: number): Promise<number | undefined> {
    return until(WAIT_MS, async () => {
      const applied = (await this.status(node))?.applied ?? 0;
      return applied >= index ? applied : undefined;
    });
  }

  // ---- scenarios -------------------------------------------------------------------------

  async normalReplication(): Promise<void> {
    this.scenario('a', 'normal replication');
    const leader = await this.agreedLeader(this.up());
    if (!this.check(leader !== undefined, `all ${DEMO_NODES} nodes agree on a leader: ${leader?.info.name}`))
      return;
    const follower = this.up().find((n) => n !== leader)!;
    const ok = await this.put(follower, 'demo/greeting', 'hello');
    this.check(ok, `PUT demo/greeting=hello through follower ${follower.info.name} acknowledged`);
    const applied = await Promise.all(this.up().map((n) => this.appliedOn(n, 'demo/greeting', 'hello')));
    this.check(
      applied.every(Boolean),
      `serializable read of demo/greeting returns 'hello' on every node (${this.up()
        .map((n, i) => `${n.info.name}${applied[i] ? '' : ' NOT'}`)
        .join(', ')})`,
    );
  }

  async followerKilled(): Promise<void> {
    this.scenario('b', 'a follower is killed (SIGKILL): writes continue');
    const leader = await this.agreedLeader(this.up());
    if (!this.check(leader !== undefined, `leader is ${leader?.info.name}`)) return;
    const victim = this.up().find((n) => n !== leader)!;
    this.signal(victim, 'SIGKILL');
    this.say(
      `SIGKILL follower ${victim.info.name} (pid ${victim.info.pid}); ${this.up().length} of ${DEMO_NODES} alive`,
    );
    const started = Date.now();
    const acked = await this.writeMany(this.up(), 10, 'b');
    this.check(
      acked === 10,
      `${acked}/10 writes through the survivors acknowledged (${Date.now() - started} ms)`,
    );
    const missing = await this.missingOn(leader!, 'linearizable');
    this.check(
      missing === 0,
      `linearizable range read on leader ${leader!.info.name}: ${missing ?? '?'} acknowledged writes missing`,
    );
  }

  async leaderKilled(): Promise<void> {
    this.scenario('c', 'the leader is killed (SIGKILL): a new leader is elected, no acknowledged write lost');
    const leader = await this.agreedLeader(this.up());
    if (!this.check(leader !== undefined, `leader is ${leader?.info.name}`)) return;
    this.signal(leader!, 'SIGKILL');
    const killedAt = Date.now();
    this.say(
      `SIGKILL leader ${leader!.info.name} (pid ${leader!.info.pid}); ${this.up().length} of ${DEMO_NODES} alive`,
    );
    const next = await this.agreedLeader(this.up(), leader!.info.name);
    const electionMs = Date.now() - killedAt;
    this.check(
      next !== undefined,
      `new leader ${next?.info.name ?? '(none)'} agreed on by the survivors ${electionMs} ms after the kill (election timeout ${ELECTION_MS_MAX / 2}–${ELECTION_MS_MAX} ms)`,
    );
    if (next === undefined) return;
    const missing = await Promise.all(this.up().map((n) => this.missingOn(n, 'linearizable')));
    this.check(
      missing.every((m) => m === 0),
      `all ${this.acknowledged.size} acknowledged writes read back (linearizable) on every survivor`,
    );
  }

  async threeOfFive(): Promise<void> {
    this.scenario('d', 'only 3 of 5 alive: still commits');
    const alive = this.up();
    this.say(`alive: ${alive.map((n) => n.info.name).join(', ')} (a majority of ${DEMO_NODES} is 3)`);
    const acked = await this.writeMany(alive, 10, 'd');
    this.check(acked === 10, `${acked}/10 writes through the 3 survivors acknowledged`);
    const caught = await Promise.all(alive.map((n) => this.caughtUp(n)));
    this.check(caught.every(Boolean), 'every survivor applied every acknowledged write');
    const dead = this.nodes.filter((n) => n.state === 'killed');
    for (const node of dead) this.start(node);
    await this.writeClusterFile();
    this.say(
      `restart ${dead.map((n) => `${n.info.name} (pid ${n.info.pid})`).join(', ')} from their data directories`,
    );
    const restarted = await Promise.all(dead.map((n) => this.caughtUp(n)));
    this.check(
      restarted.every(Boolean),
      `the restarted nodes caught up: all ${this.acknowledged.size} acknowledged writes applied on ${dead.map((n) => n.info.name).join(', ')}`,
    );
  }

  async minorityPartition(): Promise<void> {
    this.scenario('e', 'a minority (the leader and one follower) is cut off by SIGSTOP, then heals');
    const leader = await this.agreedLeader(this.up());
    if (
      !this.check(leader !== undefined, `all ${this.up().length} nodes agree on leader ${leader?.info.name}`)
    )
      return;
    const old = leader!;
    const key = 'demo/e/stale';
    this.check(
      await this.put(old, key, 'old'),
      `PUT ${key}=old through leader ${old.info.name} acknowledged`,
    );
    const applied = await Promise.all(this.up().map((n) => this.appliedOn(n, key, 'old')));
    this.check(applied.every(Boolean), `every node applied ${key}=old`);
    const follower = this.up().find((n) => n !== old)!;
    this.signal(old, 'SIGSTOP');
    this.signal(follower, 'SIGSTOP');
    const stoppedAt = Date.now();
    const majority = this.up();
    this.say(
      `SIGSTOP ${old.info.name} (leader) and ${follower.info.name}; majority ${majority.map((n) => n.info.name).join(', ')} keeps running`,
    );
    const next = await this.agreedLeader(majority, old.info.name);
    this.check(
      next !== undefined,
      `the majority elected ${next?.info.name ?? '(none)'} ${Date.now() - stoppedAt} ms after the pause`,
    );
    if (next === undefined) return;
    this.check(
      await this.put(majority[0]!, key, 'new'),
      `PUT ${key}=new through ${majority[0]!.info.name} acknowledged`,
    );
    const acked = await this.writeMany(majority, 5, 'e');
    this.check(acked === 5, `${acked}/5 more writes through the majority acknowledged`);
    const target = (await this.status(next))?.applied ?? Number.POSITIVE_INFINITY;
    // Keep the minority paused past several election timeouts, then read through the old leader:
    // one request queued while it is still stopped, one right after it resumes.
    await sleep(Math.max(0, stoppedAt + 3 * ELECTION_MS_MAX - Date.now()));
    const queued = call(old.info.clientUrl, 'GET', `/v1/kv/${key}`, undefined, 8000);
    await sleep(50);
    this.signal(old, 'SIGCONT');
    this.signal(follower, 'SIGCONT');
    const resumedAt = Date.now();
    this.say(`SIGCONT ${old.info.name} and ${follower.info.name} after ${resumedAt - stoppedAt} ms`);
    const immediate = await call(old.info.clientUrl, 'GET', `/v1/kv/${key}`, undefined, 8000);
    for (const [when, reply] of [
      ['queued while paused', await queued],
      ['right after resuming', immediate],
    ] as const) {
      const shown =
        reply.status === 200
          ? `'${reply.body.value}'`
          : `error ${reply.status} ${reply.body.error?.code ?? ''}`;
      this.check(
        !(reply.status === 200 && reply.body.value !== 'new'),
        `linearizable read of ${key} through old leader ${old.info.name} (${when}): ${shown} — never 'old'`,
      );
    }
    const caught = await Promise.all([old, follower].map((n) => this.appliedReaches(n, target)));
    this.check(
      caught.every((a) => a !== undefined),
      `${old.info.name} and ${follower.info.name} rejoined: applied index ${caught.map((a) => a ?? '?').join(', ')} reached the leader's ${target} in ${Date.now() - resumedAt} ms`,
    );
    const views = await Promise.all([old, follower].map((n) => this.status(n)));
    this.check(
      views.every((v) => v?.leader?.name === next.info.name && v.role !== 'leader'),
      `both now follow ${next.info.name} (${views.map((v, i) => `${[old, follower][i]!.info.name}: ${v?.role ?? '?'}`).join(', ')})`,
    );
    const after = await call(old.info.clientUrl, 'GET', `/v1/kv/${key}`, undefined, 8000);
    this.check(
      after.status === 200 && after.body.value === 'new',
      `read through ${old.info.name} now returns '${after.body.value ?? after.body.error?.code}'`,
    );
    const missing = await Promise.all(this.up().map((n) => this.caughtUp(n)));
    this.check(
      missing.every(Boolean),
      `all ${this.acknowledged.size} acknowledged writes applied on all ${this.up().length} nodes`,
    );
  }

  async counter(): Promise<void> {
    this.scenario(
      'f',
      `a counter incremented concurrently through every node (${DEMO_COUNTER_INCREMENTS} each, compare-and-swap)`,
    );
    const key = 'counter/value';
    const writers = this.up();
    if (!this.check(await this.put(writers[0]!, key, '0'), `PUT ${key}=0`)) return;
    const started = Date.now();
    const outcomes = await Promise.all(writers.map((n) => this.incrementMany(n, key)));
    const total = writers.length * DEMO_COUNTER_INCREMENTS;
    const done = outcomes.reduce((s, o) => s + o.done, 0);
    const conflicts = outcomes.reduce((s, o) => s + o.conflicts, 0);
    this.check(
      done === total,
      `${done}/${total} increments committed from ${writers.length} nodes in ${Date.now() - started} ms (${conflicts} compare failures retried)`,
    );
    const finals = await Promise.all(
      writers.map((n) =>
        until(WAIT_MS, async () => {
          const r = await call(n.info.clientUrl, 'GET', `/v1/kv/${key}?consistency=serializable`);
          return r.status === 200 && r.body.value === String(total) ? r.body.value : undefined;
        }),
      ),
    );
    const linear = await call(writers[0]!.info.clientUrl, 'GET', `/v1/kv/${key}`);
    this.check(
      finals.every((v) => v === String(total)) && linear.body.value === String(total),
      `final value ${linear.body.value ?? '?'} == ${total} (linearizable), and on every node once applied`,
    );
  }

  /**
   * `DEMO_COUNTER_INCREMENTS` exactly-once increments through `node`: each is a transaction
   * "if counter == v and my op key does not exist, then counter = v+1 and create my op key,
   * else return both", so a retry after an unknown outcome can never count twice.
   */
  private async incrementMany(node: DemoNode, key: string): Promise<{ done: number; conflicts: number }> {
    let done = 0;
    let conflicts = 0;
    let current: string | undefined;
    for (let i = 0; i < DEMO_COUNTER_INCREMENTS; i++) {
      const opKey = `counter/ops/${node.info.name}-${i}`;
      const ok = await until(WAIT_MS * 2, async () => {
        if (current === undefined) {
          const r = await call(node.info.clientUrl, 'GET', `/v1/kv/${key}`);
          if (r.status !== 200 || r.body.value === undefined) return undefined;
          current = r.body.value;
        }
        const reply = await call(
          node.info.clientUrl,
          'POST',
          '/v1/txn',
          {
            compare: [
              { key, target: 'VALUE', result: 'EQUAL', value: current },
              { key: opKey, target: 'VERSION', result: 'EQUAL', value: 0 },
            ],
            success: [
              { put: { key, value: String(Number(current) + 1) } },
              { put: { key: opKey, value: '1' } },
            ],
            failure: [{ get: { key } }, { get: { key: opKey } }],
          },
          6000,
        );
        if (reply.status !== 200) {
          current = undefined; // unknown outcome or no leader: re-read and let the op key decide
          await sleep(50);
          return undefined;
        }
        if (reply.body.succeeded === true) {
          current = String(Number(current) + 1);
          return true;
        }
        const [counterGet, opGet] = reply.body.responses ?? [];
        if ((opGet?.get?.kvs.length ?? 0) > 0) return true; // an earlier attempt did commit
        conflicts++;
        current = counterGet?.get?.kvs[0]?.value;
        await sleep(Math.random() * 10);
        return undefined;
      });
      if (ok === true) done++;
    }
    return { done, conflicts };
  }
}

/** Runs the demo in `dataDir`; resolves with true when every check passed. */
export async function runDemo(dataDir: string): Promise<boolean> {
  const demo = new Demo(dataDir);
  const onSignal = (): void => {
    demo.killAllNow();
    process.exit(130);
  };
  const onExit = (): void => demo.killAllNow();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', onExit);
  const started = Date.now();
  try {
    await demo.plan();
    for (const node of demo.nodes) demo.start(node);
    await demo.writeClusterFile();
    console.log(
      `flotilla demo: ${DEMO_NODES} nodes on loopback, tick ${DEMO_TICK_MS} ms, election timeout ${ELECTION_MS_MAX / 2}–${ELECTION_MS_MAX} ms`,
    );
    console.log(`data, logs and cluster.json in ${dataDir}`);
    for (const n of demo.nodes)
      console.log(`   ${n.info.name}  pid ${n.info.pid}  client ${n.info.clientUrl}`);
    const scenarios: [string, () => Promise<void>][] = [
      ['a', () => demo.normalReplication()],
      ['b', () => demo.followerKilled()],
      ['c', () => demo.leaderKilled()],
      ['d', () => demo.threeOfFive()],
      ['e', () => demo.minorityPartition()],
      ['f', () => demo.counter()],
    ];
    for (const [, run] of scenarios) {
      try {
        await run();
      } catch (error) {
        demo.check(false, `unexpected error: ${(error as Error).message}`);
      }
    }
  } finally {
    await demo.stopAll();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('exit', onExit);
  }
  const titles: Record<string, string> = {
    a: 'normal replication',
    b: 'follower killed, writes continue',
    c: 'leader killed, new leader, no acknowledged write lost',
    d: '3 of 5 alive still commit; restarted nodes catch up',
    e: 'minority paused: majority commits, minority heals, no stale read',
    f: 'concurrent compare-and-swap counter is exact',
  };
  console.log(`\nsummary (${((Date.now() - started) / 1000).toFixed(1)} s):`);
  let allOk = true;
  for (const [name, title] of Object.entries(titles)) {
    const checks = demo.results.filter((r) => r.scenario === name);
    const failed = checks.filter((r) => !r.ok).length;
    const ok = checks.length > 0 && failed === 0;
    allOk &&= ok;
    console.log(`${ok ? '✔' : '✘'} ${name}) ${title} (${checks.length - failed}/${checks.length} checks)`);
  }
  const failedAll = demo.results.filter((r) => !r.ok).length;
  console.log(failedAll === 0 && allOk ? 'all checks passed' : `${failedAll} check(s) failed`);
  return failedAll === 0 && allOk;
}

/** Registers `demo`. */
export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description('run the classic Raft scenarios on a real local 5-node cluster, narrated and checked')
    .option(
      '--data-dir <dir>',
      'where the nodes’ data and logs go (must be empty or absent; default: a temp dir)',
    )
    .option('--keep', 'keep the data directory (logs, cluster.json, node data) afterwards')
    .action(async (flags: DemoFlags) => {
      let dataDir: string;
      if (flags.dataDir === undefined) {
        dataDir = await mkdtemp(join(tmpdir(), 'flotilla-demo-'));
      } else {
        dataDir = resolve(flags.dataDir);
        if (existsSync(dataDir) && (await readdir(dataDir)).length > 0) {
          console.error(`error: --data-dir ${dataDir} is not empty`);
          process.exit(2);
        }
        await mkdir(dataDir, { recursive: true });
      }
      const ok = await runDemo(dataDir);
      if (flags.keep === true) console.log(`kept ${dataDir}`);
      else await rm(dataDir, { recursive: true, force: true });
      process.exit(ok ? 0 : 1);
    });
}
