/**
 * Flotilla's gRPC server: gRPC over HTTP/2 (connection.ts, stream.ts) for the services of a
 * proto-loader definition, with handlers in grpc-js's shapes — a unary handler takes
 * `(call, callback)`, a streaming one takes a call stream (calls.ts) — so a service written
 * for grpc-js moves here by changing its types.
 *
 * It exists for speed: per unary call it costs a small fraction of the CPU of `@grpc/grpc-js`'s
 * server over Node's `http2` module (docs/grpc.md has the measurement), and on two cores every
 * microsecond per request is throughput. Clients are unchanged: etcd's Go client, etcdctl,
 * grpc-js and the `etcd3` package speak to it as to any gRPC server (test/grpc-server.test.ts).
 */
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';
import { status } from '@grpc/grpc-js';
import type { HeaderField } from '../http2/hpack.js';
import {
  type CallHost,
  callError,
  type Expiring,
  type MessageCodec,
  StreamingCall,
  type UnaryCall,
  type UnaryCallback,
  UnaryExchange,
} from './calls.js';
import { type ConnectionLimits, ServerConnection, type StreamAcceptor } from './connection.js';
import { CallMetadata, httpStatus, timeoutMs, trailersOnly } from './status.js';
import type { ServerStream } from './stream.js';

/** A unary method's handler. */
// biome-ignore lint/suspicious/noExplicitAny: handlers are typed by their services; the server routes them untyped.
export type UnaryHandler<Req = any, Res = any> = (call: UnaryCall<Req>, callback: UnaryCallback<Res>) => void;
/** A server-streaming or bidirectional method's handler. */
// biome-ignore lint/suspicious/noExplicitAny: as above.
export type StreamHandler<Req = any, Res = any> = (call: StreamingCall<Req, Res>) => void;
/** A service's handlers by method name. */
export type ServiceImplementation = Record<string, UnaryHandler | StreamHandler>;

/** Options of a {@link GrpcServer}. */
export interface GrpcServerOptions {
  /** The largest request message accepted, in bytes (larger: RESOURCE_EXHAUSTED). */
  readonly receiveBytesMax: number;
  /** Limits of each connection (defaults: etcd's unlimited streams, 1 MiB stream and 16 MiB connection windows, 64 KiB header blocks). */
  readonly connection?: Partial<ConnectionLimits>;
}

const DEFAULT_LIMITS: ConnectionLimits = Object.freeze({
  maxConcurrentStreams: 2 ** 32 - 1,
  streamWindow: 1024 * 1024,
  connectionWindow: 16 * 1024 * 1024,
  headerBlockBytesMax: 64 * 1024,
});

/** How often calls with a `grpc-timeout` are checked for expiry, in ms. */
const DEADLINE_SWEEP_MS = 50;

interface Route {
  readonly kind: 'unary' | 'server-streaming' | 'bidi';
  readonly codec: MessageCodec<unknown, unknown>;
  readonly handler: UnaryHandler | StreamHandler;
}

/** A gRPC server on one port. */
export class GrpcServer implements StreamAcceptor, CallHost {
  readonly receiveBytesMax: number;
  private readonly limits: ConnectionLimits;
  private readonly routes = new Map<string, Route>();
  private readonly connections = new Set<ServerConnection>();
  private readonly expiring = new Set<Expiring>();
  private sweeper: NodeJS.Timeout | undefined;
  private listener: NetServer | undefined;

  constructor(options: GrpcServerOptions) {
    this.receiveBytesMax = options.receiveBytesMax;
    this.limits = { ...DEFAULT_LIMITS, ...options.connection };
  }

  /** Serves every method of `definition` that `implementation` has (the others answer UNIMPLEMENTED). */
  addService(definition: ServiceDefinition, implementation: ServiceImplementation): void {
    for (const [name, method] of Object.entries(definition) as [
      string,
      MethodDefinition<unknown, unknown>,
    ][]) {
      const handler =
        implementation[name] ?? (method.originalName ? implementation[method.originalName] : undefined);
      if (handler === undefined) continue;
      if (method.requestStream && !method.responseStream) {
        throw new Error(`gRPC method ${method.path}: client-streaming methods are not supported`);
      }
      const kind = !method.responseStream ? 'unary' : method.requestStream ? 'bidi' : 'server-streaming';
      this.routes.set(method.path, { kind, codec: method, handler });
    }
  }

  /** Starts listening on `host:port` (0: an ephemeral port); resolves with the bound port. */
  async listen(host: string, port: number): Promise<number> {
    const listener = createServer({ noDelay: true }, (socket) => this.accept(socket));
    this.listener = listener;
    await new Promise<void>((resolve, reject) => {
      listener.once('error', reject);
      listener.listen(port, host, () => {
        listener.off('error', reject);
        resolve();
      });
    });
    const address = listener.address();
    return typeof address === 'object' && address !== null ? address.port : port;
  }

  /** Stops: no new connections; every connection gets GOAWAY and its open calls are cancelled. */
  async close(): Promise<void> {
    const listener = this.listener;
    this.listener = undefined;
    for (const connection of this.connections) connection.shutdown();
    this.connections.clear();
    if (this.sweeper !== undefined) clearInterval(this.sweeper);
    this.sweeper = undefined;
    if (listener === undefined) return;
    await new Promise<void>((resolve) => {
      // The listener's callback waits for every socket; closed sockets are gone within a second.
      const timer = setTimeout(resolve, 1500);
      listener.close(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private accept(socket: Socket): void {
    if (this.listener === undefined) {
      socket.destroy();
      return;
    }
    const connection = new ServerConnection(socket, this, this.limits);
    this.connections.add(connection);
    socket.once('close', () => this.connections.delete(connection));
  }

  /** A new stream: routed by `:path` to its method's call. */
  open(stream: ServerStream, fields: HeaderField[], end: boolean): void {
    let method: string | undefined;
    let path: string | undefined;
    let contentType: string | undefined;
    let timeout: string | undefined;
    for (const [name, value] of fields) {
      if (name === ':method') method = value;
      else if (name === ':path') path = value;
      else if (name === 'content-type') contentType = value;
      else if (name === 'grpc-timeout') timeout = value;
    }
    if (method !== 'POST') {
      stream.refuse(httpStatus(405));
      return;
    }
    if (contentType === undefined || !contentType.startsWith('application/grpc')) {
      stream.refuse(httpStatus(415));
      return;
    }
    const route = path === undefined ? undefined : this.routes.get(path);
    if (route === undefined) {
      stream.refuse(trailersOnly(status.UNIMPLEMENTED, `The server does not implement the method ${path}`));
      return;
    }
    const ms = timeoutMs(timeout);
    const deadline = ms === undefined ? Number.POSITIVE_INFINITY : Date.now() + ms;
    const metadata = new CallMetadata(fields);
    if (route.kind === 'unary') {
      const exchange = new UnaryExchange(
        stream,
        metadata,
        deadline,
        route.codec,
        route.handler as UnaryHandler,
        this,
      );
      stream.events = exchange;
      if (end) exchange.data(Buffer.alloc(0), true);
      return;
    }
    this.openStreaming(stream, metadata, deadline, route, end);
  }

  private openStreaming(
    stream: ServerStream,
    metadata: CallMetadata,
    deadline: number,
    route: Route,
    end: boolean,
  ): void {
    const call = new StreamingCall(stream, metadata, deadline, route.codec, this);
    stream.events = call;
    const handler = route.handler as StreamHandler;
    const run = (): void => {
      try {
        handler(call);
      } catch {
        call.destroy(callError(status.UNKNOWN, 'grpc: the method handler failed'));
      }
    };
    if (route.kind === 'server-streaming') call.startAfterRequest(run);
    else run();
    if (end) call.data(Buffer.alloc(0), true);
  }

  // --- CallHost: deadlines ---------------------------------------------------------------

  watch(call: Expiring): void {
    this.expiring.add(call);
    if (this.sweeper === undefined) {
      this.sweeper = setInterval(() => this.sweep(), DEADLINE_SWEEP_MS);
      this.sweeper.unref();
    }
  }

  unwatch(call: Expiring): void {
    this.expiring.delete(call);
  }

  /** Expires the calls past their deadline; the timer stops once no call has one. */
  private sweep(): void {
    if (this.expiring.size === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
      return;
    }
    const now = Date.now();
    for (const call of [...this.expiring]) if (call.deadline <= now) call.expire();
  }
}
