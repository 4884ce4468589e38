/**
 * A replicated counter: the smallest state machine on Flotilla's runtime (counter-machine.ts),
 * with an HTTP front for trying it (and for test/example-counter.test.ts).
 *
 *   node dist/examples/counter.js --id 1 --listen 127.0.0.1:7001 --http 127.0.0.1:8001 \
 *     --peers 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003 --data-dir data/1
 *   curl -X POST 'localhost:8001/add?n=5'     -> {"value":5}   (once applied on this member)
 *   curl 'localhost:8001/value'               -> {"value":5}   (linearizable; ?consistency=lease|serializable)
 *
 * A member added later (`addLearner` on the leader) starts with `--join 127.0.0.1:7001` instead
 * of `--peers` (see example-server.ts for the command line).
 */
import { Counter } from './counter-machine.js';
import { serveExample } from './example-server.js';

await serveExample(new Counter(), (node, method, url) => {
  if (method === 'POST' && url.pathname === '/add') {
    return node.propose({ op: 'add', n: Number(url.searchParams.get('n') ?? 1) }).then((value) => ({ value }));
  }
  if (url.pathname === '/value') {
    const asked = url.searchParams.get('consistency');
    const consistency = asked === 'serializable' || asked === 'lease' ? asked : 'linearizable';
    return node.read(null, { consistency }).then((value) => ({ value }));
  }
  return undefined;
});
