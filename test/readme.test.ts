/**
 * The README and the docs, run as a newcomer runs them. The test makes a clean clone of the
 * working tree (`git clone`, then the uncommitted changes copied over), runs `npm ci` in it,
 * and then every command of every ```sh and ```console block of README.md and docs/*.md,
 * in document order, each through bash in the clone as a user types it (`npx flotilla ...`,
 * `etcdctl ...`, `curl ...`). A command that exits non-zero fails the test, and so does a
 * ```console command whose output no longer shows the lines printed under it.
 *
 * Processes a command leaves in the background (`cmd &`) are stopped when its document ends.
 *
 * Three kinds of command are not run exactly as written, each listed below with its reason:
 * long runs are shortened (fewer seeds, a smaller total) through the same entry point; a
 * command that stays in the foreground (`npm start`) runs in the background until the test
 * stops it as Ctrl-C would; a few are not run at all (`npm test` is this suite). Before each
 * block, a local cluster that a block left with a dead member is restarted, as a user would
 * with Ctrl-C and `npm start` again.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type DocCommand, docCommands, showsLines } from './support/doc-commands.js';

/** The checkout this test was built from (dist/test/ → the repository root). */
const REPO = fileURLToPath(new URL('../../', import.meta.url));
/** Longest a single documented command may take (the demo and the quick benchmark are the long ones). */
const COMMAND_TIMEOUT_MS = 240_000;
/** The HTTP endpoints of the cluster `npm start` runs (cluster start's default ports). */
const CLUSTER_URLS = ['http://127.0.0.1:4100', 'http://127.0.0.1:4200', 'http://127.0.0.1:4300'];

/** Documented commands run in a shorter form through the same entry point. */
const SHORTENED: ReadonlyMap<string, string> = new Map([
  ['npx flotilla sim --seeds 2000 --json', 'npx flotilla sim --seeds 20 --json'],
  ['npm run bench:vs-etcd -- --json', 'npm run bench:vs-etcd -- --quick --no-neutral --no-write --json'],
]);
/**
 * A documented command that stays in the foreground (a local cluster) runs in the background
 * until the test stops it as Ctrl-C would; this is what to run for it, or undefined.
 */
function foregroundRun(command: string): string | undefined {
  // `npm ci` has just run in the clean clone; `npm start` builds and starts the cluster.
  if (command === 'npm ci && npm start') return 'npm start';
  return /^npx flotilla cluster start\b/.test(command) ? command : undefined;
}
/** What a local cluster prints once it serves. */
const CLUSTER_READY = /^press Ctrl-C to stop$/m;
/** Documented commands not run here, and why. */
const NOT_RUN: ReadonlyMap<string, string> = new Map([['npm test', 'this suite is what it runs']]);

/** Rewrites of totals for the benchmark lines (same command, a smaller run). */
function shortened(command: string): string {
  return SHORTENED.get(command) ?? command.replace(/--total \d+/, '--total 1000');
}

let root = '';
let clone = '';
let cluster: ChildProcess | undefined;
let clusterOutput = '';
/** The environment carried from one command to the next (what `export` sets persists). */
let environment: NodeJS.ProcessEnv = {};
/**
 * The process groups of the commands run so far: a command may leave processes behind it in
 * the background (`cmd &`), which are stopped at the end of each document and of the test.
 */
const groups = new Set<number>();

/** Runs a shell command in the clone; resolves with its exit code and output. */
function sh(
  command: string,
  timeoutMs = COMMAND_TIMEOUT_MS,
): Promise<{ code: number | null; output: string }> {
  const envFile = join(root, 'env');
  const script = `${command}\nrc=$?\nenv -0 > '${envFile}'\nexit $rc\n`;
  return new Promise((resolve) => {
    const child = spawn('bash', ['-c', script], { cwd: clone, env: environment, detached: true });
    if (child.pid !== undefined) groups.add(child.pid);
    let output = '';
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      output += d.toString();
    });
    const timer = setTimeout(() => killGroup(child, 'SIGKILL'), timeoutMs);
    let done = false;
    const finish = (code: number | null): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (existsSync(envFile)) environment = parseEnv(readFileSync(envFile, 'utf8'));
      resolve({ code, output });
    };
    child.on('close', (code) => finish(code));
    // A process the command left in the background (`cmd &`) keeps the output pipes open:
    // the command is over when bash exits; its last output arrives within a moment.
    child.on('exit', (code) => setTimeout(() => finish(code), 200));
  });
}

function parseEnv(text: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const entry of text.split('\0')) {
    const eq = entry.indexOf('=');
    if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return env;
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

/** The command that started the running cluster (run again to restart it). */
let clusterCommand = '';

/** Stops whatever the commands left running in the background (SIGTERM, then SIGKILL). */
async function stopLeftovers(): Promise<void> {
  const signal = (name: NodeJS.Signals): boolean => {
    let any = false;
    for (const pid of groups) {
      try {
        process.kill(-pid, name);
        any = true;
      } catch {
        groups.delete(pid); // the whole group is gone
      }
    }
    return any;
  };
  if (!signal('SIGTERM')) return;
  await new Promise((r) => setTimeout(r, 1000));
  signal('SIGKILL');
  groups.clear();
}

/** Starts a local cluster's foreground command in the background; resolves once it serves. */
async function startForeground(run: string): Promise<void> {
  clusterOutput = '';
  clusterCommand = run;
  const child = spawn('bash', ['-c', run], { cwd: clone, env: environment, detached: true });
  cluster = child;
  child.stdout?.on('data', (d: Buffer) => {
    clusterOutput += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    clusterOutput += d.toString();
  });
  const deadline = Date.now() + 120_000;
  while (!CLUSTER_READY.test(clusterOutput)) {
    assert.ok(child.exitCode === null, `\`${run}\` exited: ${child.exitCode}\n${clusterOutput}`);
    assert.ok(Date.now() < deadline, `\`${run}\` did not get ready:\n${clusterOutput}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Stops the background cluster as Ctrl-C does, and waits for it to exit. */
async function stopForeground(): Promise<void> {
  const child = cluster;
  if (child === undefined) return;
  cluster = undefined;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  killGroup(child, 'SIGINT');
  const timer = setTimeout(() => killGroup(child, 'SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

/** Whether every member of the `npm start` cluster answers. */
async function clusterHealthy(): Promise<boolean> {
  const answers = await Promise.all(
    CLUSTER_URLS.map((url) =>
      fetch(`${url}/v1/cluster`, { signal: AbortSignal.timeout(2000) }).then(
        (r) => r.ok,
        () => false,
      ),
    ),
  );
  return answers.every(Boolean);
}

/** A clean clone of the working tree: committed files by `git clone`, then local changes copied in. */
function cloneWorkingTree(into: string): void {
  execFileSync('git', ['clone', '--quiet', '--no-hardlinks', REPO, into]);
  const changed = execFileSync('git', [
    '-C',
    REPO,
    'ls-files',
    '-z',
    '--modified',
    '--others',
    '--exclude-standard',
  ])
    .toString()
    .split('\0')
    .filter((f) => f !== '');
  for (const file of changed) {
    const from = join(REPO, file);
    const to = join(into, file);
    if (existsSync(from)) {
      mkdirSync(dirname(to), { recursive: true });
      copyFileSync(from, to);
    } else {
      rmSync(to, { force: true });
    }
  }
}

/** The documents whose commands run: the README, then docs/*.md in name order. */
function documents(): { file: string; commands: DocCommand[] }[] {
  const files = [
    'README.md',
    ...readdirSync(join(clone, 'docs'))
      .filter((f) => f.endsWith('.md'))
      .sort()
      .map((f) => `docs/${f}`),
  ];
  return files.map((file) => ({
    file,
    commands: docCommands(file, readFileSync(join(clone, file), 'utf8')),
  }));
}

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'flotilla-readme-'));
  clone = join(root, 'flotilla');
  cloneWorkingTree(clone);
  environment = { ...process.env };
  for (const name of Object.keys(environment)) {
    if (name.startsWith('ETCDCTL_') || name.startsWith('FLOTILLA_')) delete environment[name];
  }
  const install = await sh('npm ci --no-audit --no-fund', 600_000);
  assert.equal(install.code, 0, `npm ci in a clean clone failed:\n${install.output}`);
});

after(async () => {
  await stopForeground();
  await stopLeftovers();
  if (root !== '') rmSync(root, { recursive: true, force: true });
});

test('the CLI starts after a clean rebuild, and installed globally or linked', {
  timeout: 300_000,
}, async () => {
  const rebuilt = await sh('rm -rf dist && npm run build && npx flotilla sim --seeds 3 --json');
  assert.equal(rebuilt.code, 0, rebuilt.output);
  const summary = JSON.parse(rebuilt.output.trim().split('\n').at(-1)!) as { seeds: number; failed: number };
  assert.deepEqual([summary.seeds, summary.failed], [3, 0]);
  const help = await sh('npx flotilla --help');
  assert.equal(help.code, 0, help.output);
  for (const command of [
    'sim',
    'repair',
    'serve',
    'cluster',
    'put',
    'get',
    'del',
    'txn',
    'status',
    'demo',
    'bench',
  ]) {
    assert.match(help.output, new RegExp(`^  ${command}\\b`, 'm'), `--help lists ${command}`);
  }
  for (const install of ['npm install -g --prefix "$G" .', 'npm_config_prefix="$G" npm link']) {
    const installed = await sh(
      `G=$(mktemp -d) && ${install} >/dev/null 2>&1 && "$G/bin/flotilla" --version; rc=$?; rm -rf "$G"; exit $rc`,
    );
    assert.equal(installed.code, 0, `${install}: ${installed.output}`);
    assert.match(installed.output, /^\d+\.\d+\.\d+$/m);
  }
});

test('every command in README.md and docs/*.md works as written', { timeout: 1_800_000 }, async (t) => {
  const blocksRun = new Set<string>();
  for (const { file, commands } of documents()) {
    // Each document starts without a cluster, or anything else, a previous one left running.
    await stopForeground();
    await stopLeftovers();
    for (const doc of commands) {
      const where = `${doc.file}:${doc.line}`;
      const notRun = NOT_RUN.get(doc.command);
      if (notRun !== undefined) {
        t.diagnostic(`${where}: not run (${notRun}): ${doc.command}`);
        continue;
      }
      const blockKey = `${file}#${doc.block}`;
      if (!blocksRun.has(blockKey)) {
        blocksRun.add(blockKey);
        // A block starts with a whole cluster if one is running, as after Ctrl-C and `npm start`.
        if (cluster !== undefined && !(await clusterHealthy())) {
          const again = clusterCommand;
          await stopForeground();
          await startForeground(again);
        }
      }
      const foreground = foregroundRun(doc.command);
      if (foreground !== undefined) {
        await startForeground(foreground);
        assert.match(clusterOutput, /cluster of 3 nodes is up/, `${where}: ${clusterOutput}`);
        t.diagnostic(`${where}: ${foreground} (in the background)`);
        continue;
      }
      const command = shortened(doc.command);
      const started = Date.now();
      const result = await sh(command);
      t.diagnostic(`${where}: ${command} (${Date.now() - started} ms, exit ${result.code})`);
      assert.equal(
        result.code,
        0,
        `${where}: \`${command}\` exited ${result.code}:\n${result.output.slice(-4000)}`,
      );
      const missing = showsLines(result.output, doc.expected);
      assert.equal(
        missing,
        undefined,
        `${where}: \`${command}\` no longer prints "${missing}":\n${result.output.slice(-4000)}`,
      );
    }
  }
  assert.ok(blocksRun.size >= 4, `ran ${blocksRun.size} blocks`);
});
