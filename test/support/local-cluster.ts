/**
 * A real local cluster for tests: `flotilla cluster start` in a temporary directory, its
 * `cluster.json`, and a runner for the real `etcdctl` binary against its etcd endpoints.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClusterNodeInfo } from '../../src/cli/cluster-command.js';
import { until } from './http.js';

/** The compiled CLI entry point. */
export const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

/** A running `cluster start` and what it wrote. */
export interface LocalCluster {
  readonly root: string;
  readonly nodes: ClusterNodeInfo[];
  /** The `cluster start` process (Ctrl-C / SIGTERM stops every node). */
  readonly process: ChildProcess;
  /** Its stdout so far. */
  output(): string;
  /** Every node's etcd gRPC endpoint, comma-separated (etcdctl's `--endpoints`). */
  readonly endpoints: string;
  /** Kills every node and the parent with SIGKILL and removes the directory. */
  destroy(): Promise<void>;
}

/** Starts `cluster start --nodes N` (default tick 50 ms) and waits until a leader is agreed on. */
export async function startLocalCluster(
  nodes = 3,
  extra: readonly string[] = ['--tick-ms', '50'],
): Promise<LocalCluster> {
  const root = await mkdtemp(join(tmpdir(), 'flotilla-local-'));
  const child = spawn(
    process.execPath,
    [MAIN, 'cluster', 'start', '--nodes', String(nodes), '--data-dir', root, '--base-port', '0', ...extra],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  let info: ClusterNodeInfo[] = [];
  const destroy = async (): Promise<void> => {
    for (const n of info) {
      try {
        process.kill(n.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    if (child.exitCode === null) child.kill('SIGKILL');
    await rm(root, { recursive: true, force: true });
  };
  try {
    await until('the cluster to be up', 30_000, () =>
      output.includes('etcd endpoints:') ? true : undefined,
    );
    if (!/cluster of \d+ nodes is up/.test(output)) throw new Error(`cluster did not come up:\n${output}`);
    info = (JSON.parse(await readFile(join(root, 'cluster.json'), 'utf8')) as { nodes: ClusterNodeInfo[] })
      .nodes;
  } catch (error) {
    await destroy();
    throw error;
  }
  return {
    root,
    nodes: info,
    process: child,
    output: () => output,
    endpoints: info.map((n) => n.grpcEndpoint).join(','),
    destroy,
  };
}

/** What a finished `etcdctl` run printed. */
export interface EtcdctlResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs the real `etcdctl` (API v3) with `args` against `endpoints`, feeding `input` on stdin;
 * resolves with its exit code and output (a non-zero exit does not reject).
 */
export function etcdctl(
  endpoints: string,
  args: readonly string[],
  options: { input?: string; timeoutMs?: number } = {},
): Promise<EtcdctlResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      'etcdctl',
      [`--endpoints=${endpoints}`, '--dial-timeout=3s', '--command-timeout=10s', ...args],
      { env: { ...process.env, ETCDCTL_API: '3' }, timeout: options.timeoutMs ?? 30_000 },
      (error, stdout, stderr) => {
        if (error !== null && typeof error.code !== 'number') {
          reject(new Error(`etcdctl ${args.join(' ')} failed to run: ${error.message}\n${stderr}`));
          return;
        }
        resolve({ code: error === null ? 0 : (error.code as number), stdout, stderr });
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
    else child.stdin?.end();
  });
}
