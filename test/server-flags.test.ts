/**
 * `flotilla serve` and `flotilla cluster start` refuse bad flags with a clear message and
 * exit code 2, before touching the disk or the network; and a data directory of another
 * cluster is refused the same way.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePort } from '../src/cli/cluster-command.js';

const MAIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const RUN_TIMEOUT_MS = 15_000;
const dirs: string[] = [];
after(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

function run(args: readonly string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

test('serve: every bad flag exits 2 with a message naming it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-flags-'));
  dirs.push(dir);
  const good = {
    '--name': 'a',
    '--data-dir': join(dir, 'a'),
    '--listen-peer': '127.0.0.1:7001',
    '--listen-client': '127.0.0.1:7002',
    '--initial-cluster': 'a=127.0.0.1:7001,b=127.0.0.1:7003,c=127.0.0.1:7005',
  };
  const argsWith = (changes: Record<string, string | undefined>): string[] =>
    Object.entries({ ...good, ...changes }).flatMap(([flag, value]) =>
      value === undefined ? [] : [flag, value],
    );
  const cases: [string[], RegExp][] = [
    [argsWith({ '--name': undefined }), /--name is required/],
    [argsWith({ '--data-dir': undefined }), /--data-dir is required/],
    [argsWith({ '--listen-client': undefined }), /--listen-client is required/],
    [argsWith({ '--name': 'bad/name' }), /invalid name/],
    [argsWith({ '--name': 'zed' }), /not a member of --initial-cluster/],
    [argsWith({ '--listen-peer': 'localhost' }), /--listen-peer: expected host:port/],
    [argsWith({ '--listen-peer': '127.0.0.1:70000' }), /port 70000 out of range/],
    [argsWith({ '--listen-peer': '127.0.0.1:7009' }), /differs from a's port 7001/],
    [argsWith({ '--listen-client': '127.0.0.1:7001' }), /must differ/],
    [argsWith({ '--initial-cluster': 'a=127.0.0.1:7001,a=127.0.0.1:7003' }), /duplicate name 'a'/],
    [argsWith({ '--initial-cluster': 'a=127.0.0.1:7001,b=127.0.0.1:7001' }), /duplicate address/],
    [argsWith({ '--initial-cluster': 'a127.0.0.1:7001' }), /expected name=host:port/],
    [argsWith({ '--initial-cluster': ',' }), /no members/],
    [[...argsWith({}), '--initial-cluster-state', 'old'], /must be new or existing/],
    [[...argsWith({}), '--tick-ms', 'fast'], /--tick-ms must be an integer/],
    [[...argsWith({}), '--election-ticks', '1'], /--election-ticks must be an integer in \[3/],
    [[...argsWith({}), '--bogus'], /unknown option '--bogus'/],
    [
      [...argsWith({}), '--log-level', 'verbose'],
      /--log-level must be one of debug, info, warn, error, got 'verbose'/,
    ],
  ];
  const results = await Promise.all(cases.map(([args]) => run(['serve', ...args])));
  results.forEach((result, i) => {
    const [args, message] = cases[i]!;
    assert.equal(result.code, 2, `serve ${args.join(' ')} → ${result.stderr}`);
    assert.match(result.stderr, message, `serve ${args.join(' ')}`);
  });
});

test('cluster start: bad --nodes or --log-level exits 2', async () => {
  for (const nodes of ['0', 'three', '99']) {
    const result = await run([
      'cluster',
      'start',
      '--nodes',
      nodes,
      '--data-dir',
      join(tmpdir(), 'never-created'),
    ]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /--nodes must be an integer/);
  }
  const logLevel = await run([
    'cluster',
    'start',
    '--log-level',
    'loud',
    '--data-dir',
    join(tmpdir(), 'never-created'),
  ]);
  assert.equal(logLevel.code, 2);
  assert.match(logLevel.stderr, /--log-level must be one of debug, info, warn, error, got 'loud'/);
  for (const entries of ['0', 'many', '-5']) {
    const result = await run([
      'cluster',
      'start',
      '--snapshot-entries',
      entries,
      '--data-dir',
      join(tmpdir(), 'never-created'),
    ]);
    assert.equal(result.code, 2, `--snapshot-entries ${entries}`);
    assert.match(result.stderr, /--snapshot-entries must be a positive integer/);
  }
});

test("cluster start hands serve's flags to every node", async () => {
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-flags-'));
  dirs.push(dir);
  const flags = ['--snapshot-entries', '50', '--tick-ms', '20', '--quota-backend-bytes', '4194304'];
  const child = spawn(
    process.execPath,
    [MAIN, 'cluster', 'start', '--nodes', '2', '--base-port', '0', '--data-dir', dir, ...flags],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  try {
    let out = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no cluster within ${RUN_TIMEOUT_MS} ms:\n${out}`)),
        RUN_TIMEOUT_MS,
      );
      child.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('etcd endpoints:')) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    const pids = [...out.matchAll(/ pid (\d+) /g)].map((m) => Number(m[1]));
    assert.equal(pids.length, 2);
    for (const pid of pids) {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
      for (let i = 0; i < flags.length; i += 2) assert.ok(argv.includes(`${flags[i]} ${flags[i + 1]}`), argv);
    }
  } finally {
    child.kill('SIGINT');
    await new Promise((resolve) => child.once('exit', resolve));
  }
});

test('cluster start: a bad --base-port, or a port in use, exits 2 and starts nothing', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-flags-'));
  dirs.push(dir);
  for (const basePort of ['-1', 'x', '80', '65500']) {
    const result = await run(['cluster', 'start', '--base-port', basePort, '--data-dir', join(dir, 'bad')]);
    assert.equal(result.code, 2, `--base-port ${basePort}`);
    assert.match(result.stderr, /--base-port must be 0 or a port from 1024/);
  }
  // Hold node 2's etcd port (base + 200 + 79); the refusal names it and no node starts.
  const holder = createServer();
  const base = 20_000 + Math.floor(Math.random() * 20_000);
  await new Promise<void>((resolve) => holder.listen(base + 279, '127.0.0.1', resolve));
  try {
    const result = await run([
      'cluster',
      'start',
      '--base-port',
      String(base),
      '--data-dir',
      join(dir, 'busy'),
    ]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, new RegExp(`n2's port ${base + 279} is in use`));
    assert.equal(existsSync(join(dir, 'busy', 'cluster.json')), false);
  } finally {
    holder.close();
  }
});

test('serve: a data directory of another cluster is refused with exit 2', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-flags-'));
  dirs.push(dir);
  const [peer, client, other] = [await freePort(), await freePort(), await freePort()];
  const args = (cluster: string): string[] => [
    'serve',
    '--name',
    'a',
    '--data-dir',
    join(dir, 'a'),
    '--listen-peer',
    `127.0.0.1:${peer}`,
    '--listen-client',
    `127.0.0.1:${client}`,
    '--initial-cluster',
    cluster,
  ];
  // A single-member cluster starts; SIGTERM stops it cleanly.
  const first = spawn(process.execPath, [MAIN, ...args(`a=127.0.0.1:${peer}`)], { stdio: 'ignore' });
  const deadline = Date.now() + RUN_TIMEOUT_MS;
  for (;;) {
    const up = await fetch(`http://127.0.0.1:${client}/health`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (up) break;
    assert.ok(Date.now() < deadline, 'single node became healthy');
    await new Promise((r) => setTimeout(r, 25));
  }
  const exited = new Promise<number | null>((resolve) => first.on('exit', (code) => resolve(code)));
  first.kill('SIGTERM');
  assert.equal(await exited, 0);
  const result = await run(args(`a=127.0.0.1:${peer},b=127.0.0.1:${other}`));
  assert.equal(result.code, 2, result.stderr);
  assert.match(result.stderr, /belongs to cluster/);
});

/** The fields of a JSON log line these tests look at. */
interface LogLine {
  readonly name?: unknown;
  readonly msg?: unknown;
  readonly time?: unknown;
  readonly level?: unknown;
  readonly method?: unknown;
  readonly path?: unknown;
  readonly status?: unknown;
  readonly ms?: unknown;
}

/** Starts a single-member `serve` in `dir` with `extra` flags; resolves with its client URL once healthy. */
async function serveSolo(
  dir: string,
  extra: readonly string[],
): Promise<{ url: string; child: ReturnType<typeof spawn>; stderr: () => string }> {
  const [peer, client] = [await freePort(), await freePort()];
  const child = spawn(
    process.execPath,
    [
      MAIN,
      'serve',
      '--name',
      'solo',
      '--data-dir',
      dir,
      '--listen-peer',
      `127.0.0.1:${peer}`,
      '--listen-client',
      `127.0.0.1:${client}`,
      '--initial-cluster',
      `solo=127.0.0.1:${peer}`,
      '--tick-ms',
      '20',
      '--kv-no-sync',
      ...extra,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const url = `http://127.0.0.1:${client}`;
  const deadline = Date.now() + RUN_TIMEOUT_MS;
  for (;;) {
    const up = await fetch(`${url}/health`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (up) break;
    assert.ok(Date.now() < deadline, 'single node became healthy');
    await new Promise((r) => setTimeout(r, 25));
  }
  return { url, child, stderr: () => stderr };
}

async function stopped(child: ReturnType<typeof spawn>): Promise<number | null> {
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  return exited;
}

test('serve: JSON log lines on stderr (level, time, name, msg, fields); --log-level filters them', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-logs-'));
  dirs.push(dir);
  const debug = await serveSolo(join(dir, 'debug'), ['--log-level', 'debug']);
  await fetch(`${debug.url}/v1/kv/logged`, { method: 'PUT', body: '{"value":"v"}' });
  assert.equal(await stopped(debug.child), 0);
  const lines = debug
    .stderr()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as LogLine);
  assert.ok(lines.length >= 4, debug.stderr());
  for (const line of lines) {
    assert.equal(line.name, 'solo');
    assert.equal(typeof line.msg, 'string');
    assert.ok(!Number.isNaN(Date.parse(String(line.time))));
    assert.ok(['debug', 'info', 'warn', 'error'].includes(String(line.level)));
  }
  assert.ok(lines.some((l) => l.level === 'info' && /leader is solo/.test(String(l.msg))));
  const request = lines.find((l) => l.level === 'debug' && l.method === 'PUT');
  assert.equal(request?.path, '/v1/kv/logged');
  assert.equal(request?.status, 200);
  assert.equal(typeof request?.ms, 'number');

  // At --log-level warn, a clean bootstrap, start and stop log nothing.
  const quiet = await serveSolo(join(dir, 'warn'), ['--log-level', 'warn']);
  await fetch(`${quiet.url}/v1/kv/logged`);
  assert.equal(await stopped(quiet.child), 0);
  assert.equal(quiet.stderr(), '');
});
