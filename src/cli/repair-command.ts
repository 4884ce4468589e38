/** `flotilla repair`: checks a node's write-ahead log and, only with consent, cuts a corrupt tail. */
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { repairWal } from '../storage/repair.js';

interface RepairFlags {
  dataDir: string;
  yes?: boolean;
  json?: boolean;
}

/** Registers the `repair` command. */
export function registerRepairCommand(program: Command): void {
  program
    .command('repair')
    .description("check a node's write-ahead log; with --yes, cut it at the first corrupt record")
    .requiredOption('--data-dir <dir>', "the node's data directory")
    .option(
      '--yes',
      'consent to dropping every record after the corruption (acknowledged writes may be lost)',
    )
    .option('--json', 'print the report as JSON')
    .action(async (flags: RepairFlags) => {
      if (!existsSync(flags.dataDir)) {
        console.error(`error: data directory ${flags.dataDir} does not exist`);
        process.exitCode = 2;
        return;
      }
      const report = await repairWal(flags.dataDir, { consent: flags.yes === true });
      if (flags.json === true) {
        console.log(JSON.stringify(report));
      } else if (report.problem === null) {
        console.log('the write-ahead log is intact: nothing to repair');
      } else {
        console.log(`problem: ${report.problem}`);
        if (report.unrepairable) {
          console.log('cutting the log cannot make it usable: restore this node from a snapshot or a peer');
        } else if (report.cutAt !== null) {
          const where = `${report.cutAt.file} at byte ${report.cutAt.offset}`;
          const what = `${report.droppedEntries} entries and ${report.removedSegments.length} later segments`;
          console.log(
            report.applied ? `cut ${where}: dropped ${what}` : `would cut ${where}, dropping ${what}`,
          );
          if (!report.applied) console.log('nothing was changed; run again with --yes to cut');
        }
      }
      // Still broken (refused or unrepairable) is a failure; an intact or repaired log is not.
      if (report.problem !== null && !report.applied) process.exitCode = 1;
    });
}
