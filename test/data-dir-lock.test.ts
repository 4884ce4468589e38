/**
 * The data directory lock dies with its process (data-dir-lock.ts): a member restarted right
 * after a `kill -9` takes its directory over even while the killed process is an unreaped
 * zombie, and a stale `LOCK` naming some other live process (a pid reused after a reboot)
 * does not keep it out; a live owner in another process still does.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { acquireLock } from '../src/node/data-dir-lock.js';
import { until } from './support/http.js';

const dirs: string[] = [];
after(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});
const lockModule = fileURLToPath(new URL('../src/node/data-dir-lock.js', import.meta.url));

function processState(pid: number): Promise<string> {
  return readFile(`/proc/${pid}/stat`, 'utf8').then(
    (text) => text.slice(text.lastIndexOf(')') + 2, text.lastIndexOf(')') + 3),
    () => 'gone',
  );
}

test('a lock held by a process killed with SIGKILL is free at once, even while the process is a zombie', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-lock-'));
  dirs.push(dir);
  // The owner's parent never reaps it (`exec sleep`), so once killed it stays a zombie.
  const script = `import(${JSON.stringify(lockModule)}).then(async (m) => { await m.acquireLock(${JSON.stringify(dir)}); console.log('locked'); setInterval(() => {}, 1000); })`;
  const shell = spawn('sh', ['-c', `node -e '${script.replace(/'/g, "'\\''")}' & exec sleep 60`], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    let out = '';
    shell.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    await until('the child to take the lock', 10_000, () => (out.includes('locked') ? true : undefined));
    const owner = Number.parseInt(await readFile(join(dir, 'LOCK'), 'utf8'), 10);
    await assert.rejects(acquireLock(dir), new RegExp(`in use by process ${owner}`));
    process.kill(owner, 'SIGKILL');
    await until('the owner to be a zombie', 5000, async () =>
      (await processState(owner)) === 'Z' ? true : undefined,
    );
    process.kill(owner, 0); // still "alive" to kill(2): what a pid file alone would trust
    // The leader thread shows Z while the process's other threads may still be exiting; the
    // socket is freed with the last of them, a moment later. The owner stays a zombie
    // (never reaped) all along.
    const lock = await until('the lock to be free', 5000, () => acquireLock(dir).catch(() => undefined));
    assert.equal(await processState(owner), 'Z', 'taken while the owner is still a zombie');
    assert.equal(await readFile(join(dir, 'LOCK'), 'utf8'), `${process.pid}\n`);
    await lock.release();
  } finally {
    shell.kill('SIGKILL');
  }
});

test('a stale LOCK naming another live process (a reused pid) does not keep the owner out', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-lock-'));
  dirs.push(dir);
  await writeFile(join(dir, 'LOCK'), `${process.ppid}\n`);
  const lock = await acquireLock(dir);
  await assert.rejects(acquireLock(dir), /in use by process/);
  await lock.release();
  const again = await acquireLock(dir);
  await again.release();
});
