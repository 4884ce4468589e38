/**
 * Helpers of the tests that run the examples (examples/*.ts) as real processes: a cluster's
 * command lines on free ports, starting a member, JSON calls to its HTTP front, finding the
 * leader.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePorts } from '../../src/cli/cluster-command.js';

/** One member of an example cluster: its id, its command line and its HTTP base URL. */
export interface ExampleMember {
  readonly id: number;
  readonly args: string[];
  readonly url: string;
}

/** The built example `name` (e.g. `counter`), as a path to run with node. */
export function examplePath(name: string): string {
  return fileURLToPath(new URL(`../../examples/${name}.js`, import.meta.url));
}

/** The command lines of `size` founders on free ports, data directories under `root`. */
export async function exampleCluster(
  root: string,
  size: number,
  extra: string[] = [],
): Promise<ExampleMember[]> {
  // Every port taken in one go, so none is handed out twice (see freePorts).
  const ports = await freePorts(2 * size);
  const peerPorts = ports.slice(0, size);
  const peers = peerPorts.map((p, i) => `${i + 1}=127.0.0.1:${p}`).join(',');
  const members: ExampleMember[] = [];
  for (let i = 0; i < size; i++) {
    const http = `127.0.0.1:${ports[size + i]}`;
    const args = ['--id', String(i + 1), '--listen', `127.0.0.1:${peerPorts[i]}`, '--peers', peers];
    args.push('--data-dir', join(root, String(i + 1)), '--http', http, ...extra);
    members.push({ id: i + 1, args, url: `http://${http}` });
  }
  return members;
}

/**
 * A scratch directory for test `t`'s example processes: once the test ends, every process in
 * `children` still running is killed and the directory removed.
 */
export async function exampleRoot(
  t: TestContext,
  prefix: string,
  children: Map<number, ChildProcess>,
): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), prefix));
  t.after(async () => {
    for (const child of children.values()) if (child.exitCode === null) child.kill('SIGKILL');
    await rm(root, { recursive: true, force: true });
  });
  return root;
}

/** Starts `member` of example `script`, recorded in `children` by id (stderr shown, stdout not). */
export function startExample(
  script: string,
  member: ExampleMember,
  children: Map<number, ChildProcess>,
): void {
  const child = spawn(process.execPath, [script, ...member.args], { stdio: ['ignore', 'ignore', 'inherit'] });
  children.set(member.id, child);
}

/** A JSON call to an example's HTTP front: status and body. */
export async function callExample<B>(
  url: string,
  init: RequestInit = {},
): Promise<{ status: number; body: B }> {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(8000) });
  return { status: response.status, body: (await response.json()) as B };
}

/** The member whose status says it leads, if one answers so. */
export async function exampleLeader(members: readonly ExampleMember[]): Promise<number | undefined> {
  for (const m of members) {
    try {
      const { body } = await callExample<{ role?: string }>(`${m.url}/status`);
      if (body.role === 'leader') return m.id;
    } catch {}
  }
  return undefined;
}
