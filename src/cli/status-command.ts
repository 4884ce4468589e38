/**
 * `flotilla status`: each endpoint's view of the cluster (role, term, commit, applied, leader,
 * process id); `--leader-pid` prints only the leader's process id, for scripts
 * (`kill -9 $(flotilla status --leader-pid)`).
 */
import type { Command } from 'commander';
import { REQUEST_TIMEOUT_MS, resolveEndpoints } from './api-client.js';
import { withCommon } from './reply-output.js';

interface StatusFlags {
  endpoints?: string;
  json?: boolean;
  leaderPid?: boolean;
}

type StatusRow =
  | {
      name: string;
      id: number;
      pid: number;
      role: string;
      term: number;
      commit: number;
      applied: number;
      leader: string;
      endpoint: string;
    }
  | { endpoint: string; error: string };

/**
 * Registers `status`: one row per endpoint, exit code 1 if any is unreachable; with
 * `--leader-pid`, the process id of the endpoint that says it leads (exit 1 if none does).
 */
export function registerStatusCommand(program: Command): void {
  withCommon(
    program.command('status').description("each endpoint's view: role, term, commit, applied, leader, pid"),
  )
    .option('--leader-pid', "print only the leader's process id (exit 1 if no endpoint is the leader)")
    .action(async (flags: StatusFlags) => {
      const rows = await Promise.all(resolveEndpoints(flags.endpoints).map(statusOf));
      if (flags.leaderPid === true) printLeaderPid(rows);
      else printRows(rows, flags.json === true);
    });
}

/** Prints the pid of the row that is the leader, or an error. */
function printLeaderPid(rows: readonly StatusRow[]): void {
  const leader = rows.find((r) => 'role' in r && r.role === 'leader');
  if (leader === undefined || !('pid' in leader)) {
    console.error('error: no endpoint answered as the leader');
    process.exitCode = 1;
    return;
  }
  console.log(String(leader.pid));
}

/** One line per endpoint, or the rows as JSON; exit code 1 if any is unreachable. */
function printRows(rows: readonly StatusRow[], json: boolean): void {
  if (json) {
    console.log(JSON.stringify(rows));
  } else {
    for (const r of rows) {
      console.log(
        'error' in r
          ? `${r.endpoint}  unreachable: ${r.error}`
          : `${r.name}  id ${r.id}  pid ${r.pid}  ${r.role}  term ${r.term}  commit ${r.commit}  applied ${r.applied}  leader ${r.leader}`,
      );
    }
  }
  if (rows.some((r) => 'error' in r)) process.exitCode = 1;
}

async function statusOf(endpoint: string): Promise<StatusRow> {
  try {
    const res = await fetch(`${endpoint}/v1/cluster`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    const body = (await res.json()) as {
      member: { id: number; name: string; pid: number };
      role: string;
      term: number;
      commit: number;
      applied: number;
      leader: { name: string } | null;
    };
    return {
      name: body.member.name,
      id: body.member.id,
      pid: body.member.pid,
      role: body.role,
      term: body.term,
      commit: body.commit,
      applied: body.applied,
      leader: body.leader?.name ?? '',
      endpoint,
    };
  } catch (error) {
    return { endpoint, error: (error as Error).message };
  }
}
