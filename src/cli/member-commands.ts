/**
 * Membership commands over the HTTP API: `member list|add|remove|promote` and `move-leader`.
 * Changes are accepted by the leader only; {@link request} moves on from a follower's
 * retryable `NOT_LEADER`, so any `--endpoints` list that includes the leader works.
 */
import type { Command } from 'commander';
import { request, resolveEndpoints } from './api-client.js';
import { finish, withCommon } from './reply-output.js';

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

async function send(flags: MemberFlags, method: string, path: string, body?: unknown): Promise<MemberReply> {
  return (await request(resolveEndpoints(flags.endpoints), method, path, body)) as MemberReply;
}

/** Registers `member list|add|remove|promote` and `move-leader`. */
export function registerMemberCommands(program: Command): void {
  const member = program.command('member').description('list and change the members of the cluster');
  withCommon(member.command('list').description('every member: name, id, role, peer URL')).action(
    async (flags: MemberFlags) => {
      const reply = await send(flags, 'GET', '/v1/members');
      finish(reply, flags.json === true, () => (reply.body.members ?? []).map(row).join('\n'));
    },
  );
  withCommon(
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
  withCommon(
    member.command('remove <id>').description('remove a member (not the leader: move-leader first)'),
  ).action(async (id: string, flags: MemberFlags) => {
    const reply = await send(flags, 'DELETE', `/v1/members/${encodeURIComponent(id)}`);
    finish(reply, flags.json === true, () => `removed ${row(reply.body.removed)}`);
  });
  withCommon(member.command('promote <id>').description('make a caught-up learner a voter')).action(
    async (id: string, flags: MemberFlags) => {
      const reply = await send(flags, 'POST', `/v1/members/${encodeURIComponent(id)}/promote`);
      finish(reply, flags.json === true, () => `promoted ${row(reply.body.member)}`);
    },
  );
  withCommon(
    program.command('move-leader <id>').description('hand leadership to voter <id> (an id or a name)'),
  ).action(async (id: string, flags: MemberFlags) => {
    const reply = await send(flags, 'POST', '/v1/leader', { id });
    finish(reply, flags.json === true, () => `leader is ${reply.body.leader?.name ?? '?'}`);
  });
}
