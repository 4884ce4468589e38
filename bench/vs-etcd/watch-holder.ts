/**
 * Holds idle watchers for the `put_100_with_*_watchers` rows: `--watchers` watchers, one key
 * each (`idle/<n>`, a key no workload writes), spread over `--conns` connections with the
 * `etcd3` npm client. Prints `ready <n>` once every watcher is created, then waits to be
 * killed; an event on any of them is an error (printed, exit 1).
 *
 *   node dist/bench/vs-etcd/watch-holder.js --endpoints a,b,c --watchers 10000 --conns 10
 */
import { connect, flag } from './etcd3-clients.js';

/** Watch creations in flight per connection. */
const CREATES_IN_FLIGHT = 64;

async function main(): Promise<void> {
  const endpoints = flag('endpoints', '').split(',');
  const watchers = Number(flag('watchers', '10000'));
  const clients = connect(endpoints, Number(flag('conns', '10')));
  let next = 0;
  const createOn = async (client: (typeof clients)[number]): Promise<void> => {
    while (next < watchers) {
      const key = `idle/${String(next++).padStart(8, '0')}`;
      const watcher = await client.watch().key(key).create();
      watcher.on('data', () => {
        console.error(`idle watcher of ${key} got an event`);
        process.exit(1);
      });
    }
  };
  const lanes = clients.flatMap((client) =>
    Array.from({ length: CREATES_IN_FLIGHT }, () => createOn(client)),
  );
  await Promise.all(lanes);
  console.log(`ready ${watchers}`);
  process.on('SIGTERM', () => {
    for (const client of clients) client.close();
    process.exit(0);
  });
}

await main();
