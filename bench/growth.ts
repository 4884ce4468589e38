/**
 * Data at scale, side by side with etcd:
 *
 *   npm run bench:growth [-- --keys N] [--value-size B] [--clients C] [--conns K]
 *                           [--systems flotilla,etcd] [--quick] [--json] [--no-write] [--dir D]
 *
 * Puts N distinct keys (default 100,000; 20,000 with `--quick`) with B-byte values (1024)
 * into a 3-node Flotilla (`flotilla cluster start`, syncing to disk) and then a 3-node etcd
 * (the `etcd` binary, default settings), one system at a time on the same disk, with
 * etcd-load (bench/etcd-load, on etcd's own Go client: C = 100 clients over K = 10
 * connections spread over the members). After a warm-up (N/20 puts of the first key, at
 * most 5,000) the load goes in ten steps of a tenth each; after
 * each step it samples every member's resident memory by kind (RssAnon and RssFile of
 * /proc/PID/status), heap (Flotilla's `/metrics` heap gauge, etcd's Go heap) and disk (its
 * data directory's allocated blocks), and a sampler tracks each member's peak RSS every
 * 250 ms throughout. Per system it reports put/s, p99 and max per tenth, failed requests by
 * error, and the last tenth's rate over the first's.
 *
 * It prints a Markdown section (written to bench/RESULTS.md between `<!-- growth:start -->`
 * and `<!-- growth:end -->`, not with `--quick` or `--no-write`) and with `--json` a last
 * line `{"keys","value_size","clients","rps_ratio","p99_ratio","rss_ratio","disk_ratio",
 * "errors","last_decile_over_first","systems":{...}}`; the ratios are Flotilla's over etcd's
 * (null unless both ran). Every process it started and its data are removed on exit, on
 * errors and on Ctrl-C.
 *
 * The code is in bench/growth/ (args, members, load, report, main) and reuses the vs-etcd
 * harness's clusters, processes and client runner.
 */
import { main } from './growth/main.js';
import { runBench } from './vs-etcd/processes.js';

await runBench(main);
