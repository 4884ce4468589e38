/** `flotilla status`: each endpoint's view of the cluster (role, term, commit, applied, leader). */
import type { Command } from 'commander';
import { REQUEST_TIMEOUT_MS, resolveEndpoints } from './api-client.js';
import { withCommon } from './reply-output.js';

interface StatusFlags {
  endpoints?: string;
  json?: boolean;
}

type StatusRow =
  | {
      name: string;
      id: number;
      role: string;
      term: number;
      commit: number;
      applied: number;
      leader: string;
      endpoint: string;
    }
  | { endpoint: string; error: string };

/** Registers `status`: one row per endpoint, exit code 1 if any is unreachable. */
export function registerStatusCommand(program: Command): void {
  withCommon(
    program.command('status').description("each endpoint's view: role, term, commit, applied, leader"),
  ).action(async (flags: StatusFlags) => {
    const rows = await Promise.all(resolveEndpoints(flags.endpoints).map(statusOf));
    if (flags.json === true) {
      console.log(JSON.stringify(rows));
    } else {
      for (const r of rows) {
        console.log(
          'error' in r
            ? `${r.endpoint}  unreachable: ${r.error}`
            : `${r.name}  id ${r.id}  ${r.role}  term ${r.term}  commit ${r.commit}  applied ${r.applied}  leader ${r.leader}`,
        );
      }
    }
    if (rows.some((r) => 'error' in r)) process.exitCode = 1;
  });
}

async function statusOf(endpoint: string): Promise<StatusRow> {
  try {
    const res = await fetch(`${endpoint}/v1/cluster`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    const body = (await res.json()) as {
      member: { id: number; name: string };
      role: string;
      term: number;
      commit: number;
      applied: number;
      leader: { name: string } | null;
    };
    return {
      name: body.member.name,
      id: body.member.id,
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
