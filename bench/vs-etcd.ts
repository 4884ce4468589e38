/**
 * Flotilla against etcd, side by side on one machine:
 *
 *   npm run bench:vs-etcd [-- --rounds N] [--scale X] [--json] [--quick] [--dir D] [--no-write]
 *                            [--no-neutral] [--breakdown] [--watchers-100k]
 *
 * Starts a 3-node etcd (the `etcd` binary) and a 3-node Flotilla (`flotilla cluster start`)
 * on loopback, both with their data under one temporary directory (one disk) and both
 * syncing to disk (etcd's default; Flotilla without `--kv-no-sync`), and runs the same
 * workloads against each with two clients, each run in its own child process: ours,
 * `flotilla bench` (etcd's benchmark tool's semantics), and a neutral one, etcd-load
 * (bench/etcd-load, on etcd's own Go client; built at the start, skipped with `--no-neutral`).
 * Runs alternate between the systems and between the clients (which goes first swaps every
 * round), and each figure is the median over the rounds:
 *
 *   put_1        put, 1 client over 1 connection
 *   put_100      put, 100 clients over 10 connections
 *   put_1000     put, 1000 clients over 100 connections
 *                (puts: 8-byte keys out of a 100,000-key space, at random; 256-byte values)
 *   range_l_100  linearizable range of one key, 100 clients over 10 connections
 *   range_s_100  serializable range of one key, 100 clients over 10 connections
 *   txn_put_100  transactions of one put, 100 clients over 10 connections
 *   mixed_100    90% linearizable range of one key, 10% put, 100 clients over 10 connections
 *   watch_latency  watch-latency: 10 streams of 10 watchers, puts at 100/s (ours only)
 *   put_100_with_10k_watchers  put_100 while 10,000 idle watchers of other keys exist (held
 *                by bench/vs-etcd/watch-holder.ts, etcd3 npm client, 10 connections); its JSON
 *                adds each system's watch_slowdown (put_100's rate over this one's) and the
 *                members' RSS growth per watcher
 *   put_100_with_100k_watchers  the same with 100,000 watchers (only with --watchers-100k)
 *   watch_fanout 1,000 watchers of one key (etcd3 npm client, 10 connections), puts one at a
 *                time; latency from each put's start until every watcher has its event (ours only)
 *
 * Around every run it reads the CPU time of the system's three member processes
 * (/proc/<pid>/stat) and of the client process, for server CPU per request. With
 * `--breakdown` it scrapes Flotilla's per-stage write histograms around put_1 and put_100.
 * In the same run it measures the machine's physical limits: the rate of 4 KiB write +
 * fdatasync on the data disk, and the round trip of a 1-byte ping-pong over loopback TCP.
 *
 * It prints a table (and with `--json`, a last line `{"put_1": {...}, ..., "limits": {...}}`)
 * and replaces its section of bench/RESULTS.md (between `<!-- vs-etcd:start -->` and
 * `<!-- vs-etcd:end -->`; not with `--quick` or `--no-write`). `--quick`: tiny totals, one
 * round, short limit measurements (a smoke test). Every process it started and the
 * temporary directory are removed on exit, on errors and on Ctrl-C.
 *
 * The code is in bench/vs-etcd/: args, workloads, processes and cpu, clusters, clients,
 * limits, rounds, summary, report, breakdown and prom-histogram, main.
 */
import { main } from './vs-etcd/main.js';
import { runBench } from './vs-etcd/processes.js';

await runBench(main);
