/**
 * The client APIs (src/etcd/, src/server/) use the runtime only through its public surface,
 * src/node/index.ts: no import of a runtime module by path. A lint-level check on the
 * import lines of their sources.
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../src/', import.meta.url));

test('src/etcd and src/server import nothing from src/node but its index', async () => {
  const offending: string[] = [];
  let checked = 0;
  for (const layer of ['etcd', 'server']) {
    for (const file of await readdir(join(ROOT, layer), { recursive: true })) {
      if (!file.endsWith('.ts')) continue;
      const source = await readFile(join(ROOT, layer, file), 'utf8');
      checked++;
      for (const match of source.matchAll(/(?:import|export)[^;]*?from\s+'([^']+)'/g)) {
        const target = match[1]!;
        if (/(^|\/)node\//.test(target) && !/\.\.\/node\/index\.js$/.test(target)) {
          offending.push(`src/${layer}/${file}: ${target}`);
        }
      }
    }
  }
  assert.ok(checked > 10, `found the sources (${checked} files)`);
  assert.deepEqual(offending, []);
});
