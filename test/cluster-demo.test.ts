/**
 * `flotilla demo` end to end: runs it as a child process (in its own process group, so the
 * `after` hook can kill it and every node it spawned at once) with a bounded timeout, and
 * checks it exits 0 with every scenario of the summary reported ✔ and no ✘ anywhere.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
/** The demo takes about 10 s; this bounds a hang. */
const DEMO_TIMEOUT_MS = 55_000;
const SCENARIOS = ['a', 'b', 'c', 'd', 'e', 'f'];

let demo: ChildProcess | undefined;
let root = '';
after(async () => {
  if (demo?.pid !== undefined && demo.exitCode === null && demo.signalCode === null) {
    try {
      process.kill(-demo.pid, 'SIGCONT');
      process.kill(-demo.pid, 'SIGKILL');
    } catch {
      // the group is gone already
    }
  }
  if (root !== '') await rm(root, { recursive: true, force: true });
});

test('flotilla demo: every scenario passes on a real 5-node cluster', {
  timeout: DEMO_TIMEOUT_MS + 5000,
}, async () => {
  root = await mkdtemp(join(tmpdir(), 'flotilla-demo-test-'));
  const dataDir = join(root, 'demo');
  const child = spawn(process.execPath, [MAIN, 'demo', '--data-dir', dataDir, '--keep'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  demo = child;
  let output = '';
  child.stdout?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  const code = await new Promise<number | string>((resolve) => {
    const timer = setTimeout(() => resolve('timeout'), DEMO_TIMEOUT_MS);
    child.on('exit', (c, signal) => {
      clearTimeout(timer);
      resolve(c ?? signal ?? 'unknown');
    });
  });
  assert.equal(code, 0, `demo exit: ${code}\n${output}`);
  assert.doesNotMatch(output, /✘/, output);
  for (const name of SCENARIOS) {
    assert.match(
      output,
      new RegExp(`^✔ ${name}\\) .* \\((\\d+)/\\1 checks\\)$`, 'm'),
      `scenario ${name}\n${output}`,
    );
  }
  assert.ok((output.match(/^ {3}✔ /gm) ?? []).length >= 20, 'every check narrated');
  assert.match(output, /all checks passed/);
});
