/**
 * The etcd v3 gRPC API of one node: the services of etcd's `rpc.proto` (KV, Watch, Lease,
 * Cluster, Maintenance, Auth) on their own port, answering as etcd does so that etcdctl and
 * etcd client libraries work unchanged. Each service lives in its own file; this one binds
 * them to Flotilla's gRPC server (src/grpc/).
 */
import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';
import type { KvNode } from '../db/index.js';
import { GrpcServer, type ServiceImplementation } from '../grpc/index.js';
import type { NodeLogger } from '../index.js';
import { authService } from './auth-service.js';
import { clusterService } from './cluster-service.js';
import { RESPONSE_ENCODERS } from './codec.js';
import { EtcdContext, type EtcdServiceOptions } from './context.js';
import { kvService } from './kv-service.js';
import { leaseService } from './lease-service.js';
import { maintenanceService } from './maintenance-service.js';
import { type EtcdServiceName, etcdService } from './proto.js';
import { watchService } from './watch-service.js';

/** Largest gRPC message received, in bytes: etcd's default request limit (1.5 MiB) plus gRPC overhead. */
export const GRPC_RECEIVE_BYTES_MAX = 1.5 * 1024 * 1024 + 512 * 1024;

/** Options of {@link EtcdGrpcServer}. */
export interface EtcdGrpcServerOptions {
  readonly node: KvNode;
  readonly host: string;
  /** 0 picks an ephemeral port. */
  readonly port: number;
  readonly logger: NodeLogger;
  /** Tunables of the services (etcd's values by default; tests shorten the watch progress interval). */
  readonly services?: Partial<EtcdServiceOptions>;
}

/** One node's etcd v3 gRPC server. */
export class EtcdGrpcServer {
  private readonly server: GrpcServer;
  readonly context: EtcdContext;

  constructor(private readonly options: EtcdGrpcServerOptions) {
    this.context = new EtcdContext(options.node, options.logger, options.services);
    this.server = new GrpcServer({ receiveBytesMax: GRPC_RECEIVE_BYTES_MAX });
    const services: Record<EtcdServiceName, (ctx: EtcdContext) => ServiceImplementation> = {
      KV: kvService,
      Watch: watchService,
      Lease: leaseService,
      Cluster: clusterService,
      Maintenance: maintenanceService,
      Auth: authService,
    };
    for (const [name, implementation] of Object.entries(services)) {
      this.server.addService(serviceDefinition(name as EtcdServiceName), implementation(this.context));
    }
  }

  /** Starts listening; resolves with the bound port. */
  async start(): Promise<{ port: number }> {
    return { port: await this.server.listen(this.options.host, this.options.port) };
  }

  /** Stops: refuses new calls and ends open streams (watches, keep-alives) at once. */
  async stop(): Promise<void> {
    await this.server.close();
  }
}

/**
 * The definition a service is registered with: etcd's from the proto loader, with the
 * hand-written response encoders of codec.ts where it has them (their handlers answer in the
 * shapes those encoders take).
 */
function serviceDefinition(name: EtcdServiceName): ServiceDefinition {
  const base = etcdService(name).service;
  const encoders: Readonly<Record<string, (response: never) => Buffer>> | undefined =
    name === 'KV' || name === 'Watch' ? RESPONSE_ENCODERS[name] : undefined;
  if (encoders === undefined) return base;
  const definition: Record<string, MethodDefinition<unknown, unknown>> = { ...base };
  for (const [method, encode] of Object.entries(encoders)) {
    const original = base[method];
    if (original === undefined) throw new Error(`etcd ${name} service has no method ${method}`);
    definition[method] = { ...original, responseSerialize: encode as (response: unknown) => Buffer };
  }
  return definition;
}
