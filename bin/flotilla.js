#!/usr/bin/env node
// The `flotilla` command. This launcher is checked in with its execute bit, so the command
// starts after any rebuild: `tsc` writes `dist/` without execute bits, and npm sets them only
// when it first links a package's `bin`.
try {
  await import('../dist/src/cli/main.js');
} catch (error) {
  if (error?.code === 'ERR_MODULE_NOT_FOUND' && String(error.message).includes('dist/src/cli/main.js')) {
    console.error('flotilla: not built yet; run `npm run build` in the package directory');
    process.exit(1);
  }
  throw error;
}
