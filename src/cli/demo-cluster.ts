/**
 * The cluster `flotilla demo` runs and the checks it makes: five `serve` processes on
 * loopback, started, signalled and stopped; narration (`✔`/`✘` per check); and the reads
 * and writes the scenarios are built from (writes are retried and remembered once
 * acknowledged, so a scenario can check that none was lost).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
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
export const ELECTION_MS_MAX = 2 * DEMO_ELECTION_TICKS * DEMO_TICK_MS;
/** How long any single wait of the demo may take before its check fails. */
export const WAIT_MS = 10_000;
const SERVE_EXTRA = ['--tick-ms', String(DEMO_TICK_MS), '--election-ticks', String(DEMO_ELECTION_TICKS)];

/** The fields of API responses the demo looks at. */
export interface ApiBody {
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
export interface Reply {
  readonly status: number;
  readonly body: ApiBody;
}

type NodeState = 'up' | 'killed' | 'stopped';

/** One node of the demo cluster: its plan, its process while it runs, and its state. */
export interface DemoNode {
  readonly info: ClusterNodeInfo;
  child: ChildProcess | undefined;
  state: NodeState;
}

/** One check a scenario made. */
export interface CheckResult {
  readonly scenario: string;
  readonly ok: boolean;
}

/** Resolves after `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** One HTTP request; never throws (a failure is status 0 with the message as the error). */
export async function call(
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
export async function until<T>(
  timeoutMs: number,
  probe: () => Promise<T | undefined>,
): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) return undefined;
    await sleep(25);
  }
}

/** The demo: the cluster it runs and the checks it has made. */
export class DemoCluster {
  readonly nodes: DemoNode[] = [];
  readonly results: CheckResult[] = [];
  /** Every write a node acknowledged: key → value. */
  readonly acknowledged = new Map<string, string>();
  private scenarioName = '';
  private writes = 0;

  constructor(private readonly dataDir: string) {}

  // ---- narration -------------------------------------------------------------------------

  /** Starts scenario `name`: its checks count under it. */
  scenario(name: string, title: string): void {
    this.scenarioName = name;
    console.log(`\n${name}) ${title}`);
  }

  /** Narrates a step. */
  say(text: string): void {
    console.log(`   · ${text}`);
  }

  /** Records and prints a check; returns `ok`. */
  check(ok: boolean, text: string): boolean {
    this.results.push({ scenario: this.scenarioName, ok });
    console.log(`   ${ok ? '✔' : '✘'} ${text}`);
    return ok;
  }

  // ---- processes -------------------------------------------------------------------------

  /** Plans the nodes (names, ports, data directories); none runs yet. */
  async plan(): Promise<void> {
    for (let i = 1; i <= DEMO_NODES; i++) {
      this.nodes.push({
        info: await planNode(`n${i}`, this.dataDir),
        child: undefined,
        state: 'killed',
      });
    }
  }

  /** Spawns `node`'s `serve` process, its output appended to `<name>.log`. */
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

  /** Sends `signal` to `node`'s process and records its new state. */
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

  /** Writes `cluster.json` (as `cluster start` does), so the client commands find the nodes. */
  async writeClusterFile(): Promise<void> {
    const file = join(this.dataDir, 'cluster.json');
    await writeFile(`${file}.tmp`, `${JSON.stringify({ nodes: this.nodes.map((n) => n.info) }, null, 2)}\n`);
    await rename(`${file}.tmp`, file);
  }

  // ---- cluster views ---------------------------------------------------------------------

  /** The nodes running (neither killed nor stopped). */
  up(): DemoNode[] {
    return this.nodes.filter((n) => n.state === 'up');
  }

  /** The node named `name`. */
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

  /** `node`'s `/v1/cluster` view, if it answers. */
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
}
