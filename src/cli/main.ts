#!/usr/bin/env node
/** The `flotilla` command line. */
import { Command } from 'commander';
import { registerBenchCommand } from './bench-command.js';
import { registerClientCommands } from './client-commands.js';
import { registerClusterCommand } from './cluster-command.js';
import { registerDemoCommand } from './demo-command.js';
import { registerRepairCommand } from './repair-command.js';
import { registerServeCommand } from './serve-command.js';
import { registerSimCommand } from './sim-command.js';

const program = new Command();
program.name('flotilla').description('Raft consensus and a replicated key-value database').version('0.1.0');
registerSimCommand(program);
registerRepairCommand(program);
registerServeCommand(program);
registerClusterCommand(program);
registerClientCommands(program);
registerDemoCommand(program);
registerBenchCommand(program);
program.parseAsync(process.argv).catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : String(error));
  process.exitCode = 1;
});
