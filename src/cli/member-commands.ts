/**
 * Membership commands over the HTTP API: `member list|add|remove|promote` and `move-leader`.
 * Changes are accepted by the leader only; {@link request} moves on from a follower's
 * retryable `NOT_LEADER`, so any `--endpoints` list that includes the leader works.
 */
import type { Command } from 'commander';
import { request, resolveEndpoints } from './client-commands.js';

interface MemberFlags {
  endpoints?: string;
  json?: boolean;
  peerUrl?: string;
  learner?: boolean;
}

interface MemberRow {
  readonly id: number;
  readonly name: string;
  readonly peerUrl: string;
  readonly role: string;
}

interface MemberReply {
  readonly status: number;
  readonly body: {
    readonly error?: { readonly code: string; readonly message: string };
    readonly members?: readonly MemberRow[];
    readonly member?: MemberRow;
    readonly removed?: MemberRow;
    readonly clusterId?: string;
    readonly leader?: { readonly id: number; readonly name: string };
  };
}

function row(m: MemberRow | undefined): string {
  return m === undefined ? '' : `${m.name}  id ${m.id}  ${m.role}  ${m.peerUrl}`;
}

function finish(reply: MemberReply, json: boolean, text: () => string): void {
  const error = reply.body.error;
  if (json) console.log(JSON.stringify(reply.body));
  else if (error !== undefined) console.error(`error: ${error.code}: ${error.message}`);
  else console.log(text());
  if (error !== undefined) process.exitCode = 1;
}

function common(command: Command): Command {
  return command
    .option('--endpoints <urls>', 'comma-separated client URLs')
    .option('--json', 'print the JSON response');
}

async function send(flags: MemberFlags, method: string, path: string, body?: unknown): Promise<MemberReply> {
  return (await request(resolveEndpoints(flags.endpoints), method, path, body)) as MemberReply;
}

/** Registers `member list|add|remove|promote` and `move-leader`. */
export function registerMemberCommands(program: Command): void {
  const member = program.command('member').description('list and change the members of the cluster');
  common(member.command('list').description('every member: name, id, role, peer URL')).action(
    async (flags: MemberFlags) => {
      const reply = await send(flags, 'GET', '/v1/members');
      finish(reply, flags.json === true, () => (reply.body.members ?? []).map(row).join('\n'));
    },
  );
  common(
    member.command('add <name>').description('add a member (start it with --initial-cluster-state existing)'),
  )
    .requiredOption('--peer-url <url>', "the new member's peer address, http://host:port")
    .option('--learner', 'add it as a learner (promote it once it has caught up)')
    .action(async (name: string, flags: MemberFlags) => {
      const reply = await send(flags, 'POST', '/v1/members', {
        name,
        peerUrl: flags.peerUrl,
        learner: flags.learner === true,
      });
      finish(
        reply,
        flags.json === true,
        () =>
          `added ${row(reply.body.member)}\nstart it with: flotilla serve --name ${name} ` +
          '--initial-cluster-state existing --initial-cluster <every member, itself included> ' +
          `(it learns cluster ${reply.body.clusterId ?? ''} and its id from the members)`,
      );
    });
  common(
    member.command('remove <id>').description('remove a member (not the leader: move-leader first)'),
  ).action(async (id: string, flags: MemberFlags) => {
    const reply = await send(flags, 'DELETE', `/v1/members/${encodeURIComponent(id)}`);
    finish(reply, flags.json === true, () => `removed ${row(reply.body.removed)}`);
  });
  common(member.command('promote <id>').description('make a caught-up learner a voter')).action(
    async (id: string, flags: MemberFlags) => {
      const reply = await send(flags, 'POST', `/v1/members/${encodeURIComponent(id)}/promote`);
      finish(reply, flags.json === true, () => `promoted ${row(reply.body.member)}`);
    },
  );
  common(
    program.command('move-leader <id>').description('hand leadership to voter <id> (an id or a name)'),
  ).action(async (id: string, flags: MemberFlags) => {
    const reply = await send(flags, 'POST', '/v1/leader', { id });
    finish(reply, flags.json === true, () => `leader is ${reply.body.leader?.name ?? '?'}`);
  });
}
