/**
 * What the examples share: their command line (a member's id, peer address, data directory,
 * founders or members to join, HTTP address) and a small JSON-over-HTTP front on a
 * {@link FlotillaNode}. Each example gives its state machine and its routes.
 *
 *   --id 1 --listen 127.0.0.1:7001 --http 127.0.0.1:8001 --data-dir data/1
 *   --peers 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003   (a founder)
 *   --join 127.0.0.1:7001                                          (a member added later)
 *   --snapshot-entries 200                                         (optional)
 *
 * `GET /status` (any path no route takes) answers the node's status. A {@link FlotillaError}
 * answers 503 `{code, message, leader}`; anything else 500.
 */
import { createServer, type ServerResponse } from 'node:http';
import { parseArgs } from 'node:util';
import { createNode, type FlotillaNode, isFlotillaError, type StateMachine } from '../src/index.js';

/** An example's routes: the answer to a request, or undefined for one it does not serve. */
export type Routes<C, R, Q, A> = (
  node: FlotillaNode<C, R, Q, A>,
  method: string,
  url: URL,
) => Promise<unknown> | undefined;

/** Starts the member the command line describes, with `stateMachine`, and serves `routes` over HTTP. */
export async function serveExample<C, R, Q, A>(
  stateMachine: StateMachine<C, R, Q, A>,
  routes: Routes<C, R, Q, A>,
): Promise<FlotillaNode<C, R, Q, A>> {
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
    stateMachine,
    requestTimeoutMs: 3000,
    ...(args['snapshot-entries'] === undefined
      ? {}
      : { snapshotEntries: Number(args['snapshot-entries']), snapshotKeepEntries: 10 }),
  });
  const [host, port] = (args.http ?? '127.0.0.1:0').split(':') as [string, string];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://example');
    const answer = routes(node, req.method ?? 'GET', url) ?? Promise.resolve(node.status());
    answer.then(
      (body) => reply(res, 200, body),
      (error: unknown) =>
        isFlotillaError(error)
          ? reply(res, 503, { code: error.code, message: error.message, leader: error.leaderHint })
          : reply(res, 500, { message: String(error) }),
    );
  });
  server.listen(Number(port), host, () => console.log(`member ${args.id} serving on ${args.http}`));
  process.on('SIGTERM', () => void node.close().then(() => process.exit(0)));
  return node;
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}
