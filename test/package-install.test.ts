/**
 * The package as a user gets it: `npm pack` of this checkout (already built by pretest),
 * installed with typescript and @types/node into an empty project, and a strict NodeNext
 * TypeScript program there that imports 'flotilla', runs a one-node counter (the class of
 * examples/counter-machine.ts), proposes three increments and reads the value linearizably. It must
 * type-check against the shipped declarations — without `skipLibCheck`: the `.` entry's
 * declarations reach no lmdb types — and print 3. The package's `flotilla` command
 * and the `flotilla/raft` subpath must work from that project too.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { freePort } from '../src/cli/cluster-command.js';

const run = promisify(execFile);
const REPO = fileURLToPath(new URL('../../', import.meta.url));
const temps: string[] = [];
after(async () => {
  for (const dir of temps) await rm(dir, { recursive: true, force: true });
});

/** This process's environment without what `npm test` sets for the repository's own scripts. */
const ENV = Object.fromEntries(
  Object.entries(process.env).filter(
    ([key]) => !/^npm_(package_|lifecycle_)/i.test(key) && key.toLowerCase() !== 'npm_config_local_prefix',
  ),
);

/** Runs a command; a failure's message carries its output (tsc reports errors on stdout). */
async function sh(cwd: string, file: string, args: string[], timeout = 60_000): Promise<string> {
  try {
    const { stdout } = await run(file, args, { cwd, env: ENV, timeout, maxBuffer: 16 << 20 });
    return stdout;
  } catch (error) {
    const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
    throw new Error(`${file} ${args.join(' ')} failed:\n${stdout}${stderr}`, { cause: error });
  }
}

/** The counter of examples/counter-machine.ts: its `Command` type and `Counter` class, verbatim. */
function exampleCounter(): string {
  const source = readFileSync(join(REPO, 'examples/counter-machine.ts'), 'utf8');
  const from = source.indexOf('type Command');
  const to = source.indexOf('\n}\n', source.indexOf('class Counter'));
  assert.ok(from >= 0 && to > from, 'examples/counter-machine.ts defines Command and Counter');
  return source.slice(from, to + 3);
}

const COUNTER_TS = (port: number, dataDir: string): string => `
import { createNode, type InMemoryStateMachine, type StateMachineEntry } from 'flotilla';

${exampleCounter()}
const node = await createNode({
  id: 1,
  listen: '127.0.0.1:${port}',
  peers: { 1: '127.0.0.1:${port}' },
  dataDir: ${JSON.stringify(dataDir)},
  stateMachine: new Counter(),
  tickMs: 20,
});
for (let i = 0; i < 3; i++) await node.propose({ op: 'add', n: 1 }, { timeoutMs: 10_000 });
const value: number = await node.read(null, { consistency: 'linearizable' });
console.log(\`value=\${value}\`);
await node.close();
`;

test('the packed tarball installs, type-checks and runs a counter', { timeout: 180_000 }, async () => {
  assert.ok(existsSync(join(REPO, 'dist/src/index.js')), 'built by pretest');
  const packDir = await mkdtemp(join(tmpdir(), 'flotilla-pack-'));
  const project = await mkdtemp(join(tmpdir(), 'flotilla-user-'));
  temps.push(packDir, project);

  // --ignore-scripts: `prepare` would rebuild dist/ under the tests that are running from it.
  const packed = JSON.parse(
    await sh(REPO, 'npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', packDir]),
  ) as { filename: string; files: { path: string }[] }[];
  const [info] = packed;
  assert.ok(info);
  const paths = info.files.map((f) => f.path);
  for (const path of [
    'dist/src/index.js',
    'dist/src/index.d.ts',
    'bin/flotilla.js',
    'proto/etcd/rpc.proto',
  ]) {
    assert.ok(paths.includes(path), `tarball holds ${path}`);
  }
  assert.deepEqual(
    paths.filter((p) => !/^(dist\/src\/|bin\/|proto\/|README\.md$|LICENSE$|package\.json$)/.test(p)),
    [],
  );

  const manifest = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as {
    devDependencies: { typescript: string; '@types/node': string };
  };
  const devDependencies = manifest.devDependencies;
  await writeFile(
    join(project, 'package.json'),
    JSON.stringify({ name: 'flotilla-user', private: true, type: 'module' }, null, 2),
  );
  await sh(
    project,
    'npm',
    [
      'install',
      '--no-audit',
      '--no-fund',
      join(packDir, info.filename),
      `typescript@${devDependencies.typescript}`,
      `@types/node@${devDependencies['@types/node']}`,
    ],
    150_000,
  );

  await writeFile(
    join(project, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        lib: ['ES2022'],
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        types: ['node'],
        skipLibCheck: false,
      },
      include: ['counter.ts'],
    }),
  );
  await writeFile(join(project, 'counter.ts'), COUNTER_TS(await freePort(), join(project, 'data')));
  await sh(project, 'npx', ['--no', '--', 'tsc', '-p', '.']);
  assert.match(await sh(project, process.execPath, ['counter.js'], 30_000), /^value=3$/m);

  assert.match(await sh(project, 'npx', ['--no', '--', 'flotilla', '--help']), /Usage: flotilla/);
  const raft = await sh(project, process.execPath, [
    '--input-type=module',
    '-e',
    "console.log(Object.keys(await import('flotilla/raft')).length)",
  ]);
  assert.ok(Number(raft) > 0, `flotilla/raft exports ${raft}`);
});
