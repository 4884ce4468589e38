/**
 * A replicated counter: the smallest state machine on Flotilla's runtime, with an HTTP
 * front for trying it (and for test/example-counter.test.ts).
 *
 *   node dist/examples/counter.js --id 1 --listen 127.0.0.1:7001 --http 127.0.0.1:8001 \
 *     --peers 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003 --data-dir data/1
 *   curl -X POST 'localhost:8001/add?n=5'     -> {"value":5}   (once applied on this member)
 *   curl 'localhost:8001/value'               -> {"value":5}   (linearizable; ?consistency=lease|serializable)
 *
 * A member added later (`addLearner` on the leader) starts with `--join 127.0.0.1:7001` instead
 * of `--peers`.
 */
import { createServer, type ServerResponse } from 'node:http';
import { parseArgs } from 'node:util';
import { createNode, isFlotillaError } from '../src/index.js';
import { Counter } from './counter-machine.js';

const { values: args } = parseArgs({
  options: {
    id: { type: 'string' },
    listen: { type: 'string' },
    peers: { type: 'string' },
    join: { type: 'string' },
    'data-dir': { type: 'string' },
    http: { type: 'string' },
    'snapshot-entries': { type: 'string' },
  },
});
// A founder lists every founder (--peers 1=host:port,...); a member added later names running
// members to learn the cluster from (--join host:port,...).
const cluster =
  args.join === undefined
    ? { peers: Object.fromEntries((args.peers ?? '').split(',').map((p) => p.split('=') as [string, string])) }
    : { join: args.join.split(',') };
const node = await createNode({
  id: Number(args.id),
  listen: args.listen ?? '',
  ...cluster,
  dataDir: args['data-dir'] ?? '',
  stateMachine: new Counter(),
  requestTimeoutMs: 3000,
  ...(args['snapshot-entries'] === undefined
    ? {}
    : { snapshotEntries: Number(args['snapshot-entries']), snapshotKeepEntries: 10 }),
});

function reply(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

function route(method: string | undefined, url: URL): Promise<unknown> {
  if (method === 'POST' && url.pathname === '/add') {
    return node.propose({ op: 'add', n: Number(url.searchParams.get('n') ?? 1) }).then((value) => ({ value }));
  }
  if (url.pathname === '/value') {
    const asked = url.searchParams.get('consistency');
    const consistency = asked === 'serializable' || asked === 'lease' ? asked : 'linearizable';
    return node.read(null, { consistency }).then((value) => ({ value }));
  }
  return Promise.resolve(node.status());
}

const [host, port] = (args.http ?? '127.0.0.1:0').split(':') as [string, string];
const server = createServer((req, res) => {
  route(req.method, new URL(req.url ?? '/', 'http://counter')).then(
    (body) => reply(res, 200, body),
    (error: unknown) =>
      isFlotillaError(error)
        ? reply(res, 503, { code: error.code, message: error.message, leader: error.leaderHint })
        : reply(res, 500, { message: String(error) }),
  );
});
server.listen(Number(port), host, () => console.log(`counter ${args.id} serving on ${args.http}`));
process.on('SIGTERM', () => void node.close().then(() => process.exit(0)));
