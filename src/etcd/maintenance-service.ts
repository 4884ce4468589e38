/** etcd's `Maintenance` service. */
import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import type { EtcdContext } from './context.js';

/** The `Maintenance` service of one node. */
export function maintenanceService(_ctx: EtcdContext): UntypedServiceImplementation {
  return {};
}
