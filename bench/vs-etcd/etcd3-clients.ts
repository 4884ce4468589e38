/**
 * What the watch rows' child processes share: their flags, and `etcd3` npm clients each on a
 * connection of its own (grpc-js would otherwise share one connection between clients of
 * the same endpoints).
 */
import { Etcd3 } from 'etcd3';

/** Flags of the form `--name value`, as numbers or strings. */
export function flag(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? (process.argv[at + 1] ?? fallback) : fallback;
}

/** `count` clients of `endpoints`, each on its own connection. */
export function connect(endpoints: readonly string[], count: number): Etcd3[] {
  return Array.from(
    { length: count },
    (_, i) =>
      new Etcd3({
        hosts: endpoints[i % endpoints.length]!,
        grpcOptions: { 'grpc.use_local_subchannel_pool': 1 },
      }),
  );
}

/** The value at quantile `q` of ascending `sorted`, 0 when empty. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}
