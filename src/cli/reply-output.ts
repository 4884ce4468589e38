/**
 * What every client command shares on the command line: the `--endpoints` and `--json`
 * flags, and printing an API reply (its JSON, its error, or the command's text).
 */
import type { Command } from 'commander';

/** Adds `--endpoints` and `--json` to a client command. */
export function withCommon(command: Command): Command {
  return command
    .option('--endpoints <urls>', 'comma-separated client URLs')
    .option('--json', 'print the JSON response');
}

/** The part of an API reply {@link finish} looks at. */
export interface ErrorReply {
  readonly body: { readonly error?: { readonly code: string; readonly message: string } };
}

/**
 * Prints a reply: its JSON body with `--json`, else its error or `text()`. An error sets
 * exit code 1.
 */
export function finish(reply: ErrorReply, json: boolean, text: () => string): void {
  const error = reply.body.error;
  if (json) console.log(JSON.stringify(reply.body));
  else if (error !== undefined) console.error(`error: ${error.code}: ${error.message}`);
  else console.log(text());
  if (error !== undefined) process.exitCode = 1;
}
