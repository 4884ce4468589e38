/**
 * Backups with real processes: `snapshot save` from a running node, `snapshot restore` into
 * the data directories of a new three-member cluster, which then serves the saved keys and
 * accepts new writes.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { freePorts } from '../src/cli/cluster-command.js';

const MAIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const run = promisify(execFile);
const children: ChildProcess[] = [];
/** Each served member's stderr, shown when a wait times out. */
const logs = new Map<string, string>();
let root = '';
after(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  if (root !== '') await rm(root, { recursive: true, force: true });
});

async function until(what: string, timeoutMs: number, probe: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) {
      const states = children.map((c, i) => `member ${i}: exit ${c.exitCode ?? 'running'}`).join(', ');
      const stderr = [...logs].map(([name, text]) => `--- ${name}\n${text.slice(-2000)}`).join('\n');
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${states})\n${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function healthy(url: string): Promise<boolean> {
  return fetch(`${url}/health`).then(
    (r) => r.status === 200,
    () => false,
  );
}

function serve(name: string, peer: number, client: number, cluster: string): ChildProcess {
  const args = [
    'serve',
    '--name',
    name,
    '--data-dir',
    join(root, name),
    '--listen-peer',
    `127.0.0.1:${peer}`,
  ];
  args.push('--listen-client', `127.0.0.1:${client}`, '--initial-cluster', cluster, '--tick-ms', '50');
  const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  logs.set(name, '');
  child.stderr?.on('data', (d: Buffer) => logs.set(name, logs.get(name) + d.toString()));
  children.push(child);
  return child;
}

test('snapshot save from one cluster, restore into a new one', async () => {
  root = await mkdtemp(join(tmpdir(), 'flotilla-backup-'));
  const [peer, client] = (await freePorts(2)) as [number, number];
  const source = serve('src', peer, client, `src=127.0.0.1:${peer}`);
  const sourceUrl = `http://127.0.0.1:${client}`;
  await until('the source node', 30_000, () => healthy(sourceUrl));
  for (let i = 0; i < 20; i++) {
    const res = await fetch(`${sourceUrl}/v1/kv/b${i}`, {
      method: 'PUT',
      body: JSON.stringify({ value: `v${i}` }),
    });
    assert.equal(res.status, 200);
  }
  const file = join(root, 'backup.snap');
  const saved = await run(process.execPath, [
    MAIN,
    'snapshot',
    'save',
    file,
    '--endpoints',
    sourceUrl,
    '--json',
  ]);
  const report = JSON.parse(saved.stdout) as { bytes: number; revision: number };
  assert.ok(report.bytes > 0);
  assert.equal(report.revision, 21);
  source.kill('SIGTERM');

  const ports = await freePorts(6);
  const names = ['r1', 'r2', 'r3'];
  const cluster = names.map((n, i) => `${n}=127.0.0.1:${ports[2 * i]}`).join(',');
  for (const name of names) {
    const restored = await run(process.execPath, [
      MAIN,
      'snapshot',
      'restore',
      file,
      '--name',
      name,
      '--data-dir',
      join(root, name),
      '--initial-cluster',
      cluster,
    ]);
    assert.match(restored.stdout, /restored r\d at index \d+, revision 21/);
  }
  // Restoring over an existing data directory is refused.
  await assert.rejects(
    run(process.execPath, [
      MAIN,
      'snapshot',
      'restore',
      file,
      '--name',
      'r1',
      '--data-dir',
      join(root, 'r1'),
      '--initial-cluster',
      cluster,
    ]),
    (error: { code?: number; stderr?: string }) => error.code === 2 && /not empty/.test(error.stderr ?? ''),
  );
  for (const [i, name] of names.entries()) serve(name, ports[2 * i]!, ports[2 * i + 1]!, cluster);
  const urls = names.map((_, i) => `http://127.0.0.1:${ports[2 * i + 1]}`);
  // 30 s as the other real-process tests: three processes starting on a loaded 2-core machine.
  await until('the restored cluster', 30_000, async () =>
    (await Promise.all(urls.map(healthy))).every(Boolean),
  );
  const range = (await (await fetch(`${urls[1]}/v1/kv?prefix=b`)).json()) as {
    count: number;
    revision: number;
  };
  assert.equal(range.count, 20);
  const put = await fetch(`${urls[2]}/v1/kv/after`, {
    method: 'PUT',
    body: JSON.stringify({ value: 'restore' }),
  });
  assert.equal(((await put.json()) as { revision: number }).revision, 22);
});
