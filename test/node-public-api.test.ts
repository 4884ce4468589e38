/**
 * The client APIs (src/etcd/, src/server/) and the KV database's node (src/db/) use the
 * runtime only as a library user can: through the package's `.` entry (src/index.ts, or
 * src/node/library.ts behind it), and only names of the generated public API (docs/api/).
 * A lint-level check on the import and export lines of their sources.
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../src/', import.meta.url));
const API_DOCS = fileURLToPath(new URL('../../docs/api/', import.meta.url));
/** The layers held to the rule. */
const LAYERS = ['etcd', 'server', 'db'] as const;
/** The runtime's public entries, relative to src/. */
const PUBLIC_ENTRIES = new Set(['index.js', 'node/library.js']);

/** Every symbol of the generated API reference: one page per class, function, interface... */
async function publicNames(): Promise<Set<string>> {
  const names = new Set<string>();
  for (const kind of await readdir(API_DOCS, { withFileTypes: true })) {
    if (!kind.isDirectory()) continue;
    for (const page of await readdir(join(API_DOCS, kind.name))) names.add(page.replace(/\.md$/, ''));
  }
  return names;
}

/** The names an import or export clause takes (`a, type b, c as d` in braces: a, b, c); `*` for a namespace. */
function clauseNames(clause: string): string[] {
  const braces = /\{([^}]*)\}/.exec(clause);
  const names = (braces?.[1] ?? '')
    .split(',')
    .map((part) =>
      part
        .trim()
        .replace(/^type\s+/, '')
        .split(/\s+as\s+/)[0]!
        .trim(),
    )
    .filter((name) => name !== '');
  const outside = (braces === null ? clause : clause.replace(braces[0], '')).replace(/^\s*type\s/, '');
  if (/\*/.test(outside)) names.push('*');
  else if (/^\s*[A-Za-z_$][\w$]*\s*(,|$)/.test(outside)) names.push('default');
  return names;
}

/** What `source` (the text of `file`, under src/) takes from the runtime that it must not. */
function violations(file: string, source: string, api: ReadonlySet<string>): string[] {
  const found: string[] = [];
  const statements = [
    ...source.matchAll(/(?:^|[;\n])\s*(?:import|export)\s+((?:type\s+)?[^;'"]*?)\s*from\s*'([^']+)'/g),
  ].map((m) => ({ clause: m[1]!, target: m[2]! }));
  const dynamic = [...source.matchAll(/import\(\s*'([^']+)'\s*\)/g)].map((m) => ({
    clause: '*',
    target: m[1]!,
  }));
  for (const { clause, target } of [...statements, ...dynamic]) {
    if (!target.startsWith('.')) continue;
    const resolved = relative(ROOT, resolve(dirname(join(ROOT, file)), target))
      .split('\\')
      .join('/');
    if (PUBLIC_ENTRIES.has(resolved)) {
      for (const name of clauseNames(clause)) {
        if (!api.has(name)) found.push(`src/${file}: ${name} from ${target} is not in the public API`);
      }
    } else if (resolved.startsWith('node/')) {
      found.push(`src/${file}: ${target} is a runtime internal`);
    }
  }
  return found;
}

test('src/etcd, src/server and src/db take from the runtime only its public API', async () => {
  const api = await publicNames();
  assert.ok(api.has('FlotillaNode') && api.has('startNode'), 'read the generated API reference');
  const offending: string[] = [];
  let checked = 0;
  for (const layer of LAYERS) {
    for (const file of await readdir(join(ROOT, layer), { recursive: true })) {
      if (!file.endsWith('.ts')) continue;
      checked++;
      offending.push(...violations(join(layer, file), await readFile(join(ROOT, layer, file), 'utf8'), api));
    }
  }
  assert.ok(checked > 20, `found the sources (${checked} files)`);
  assert.deepEqual(offending, []);
});

test('the check finds an internal module, a name outside the API and a namespace import', () => {
  const api = new Set(['FlotillaNode', 'isFlotillaError']);
  const source = [
    "import { FlotillaNode, type Secret } from '../index.js';",
    "import { Host } from '../node/host.js';",
    "import type { FlotillaNode as Node } from '../node/library.js';",
    "import * as everything from '../node/library.js';",
    "export { isFlotillaError } from '../index.js';",
    "import { LmdbKvBackend } from '../kv/index.js';",
  ].join('\n');
  assert.deepEqual(violations('db/example.ts', source, api), [
    'src/db/example.ts: Secret from ../index.js is not in the public API',
    'src/db/example.ts: ../node/host.js is a runtime internal',
    'src/db/example.ts: * from ../node/library.js is not in the public API',
  ]);
});
