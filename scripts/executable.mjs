// Sets the execute bit on the compiled CLI entry point after a build. `bin/flotilla.js` is the
// package's command and is checked in executable; this keeps older links to the compiled file
// (npx caches a package's bin link from its first run) working after a clean rebuild too.
import { chmodSync } from 'node:fs';

chmodSync(new URL('../dist/src/cli/main.js', import.meta.url), 0o755);
