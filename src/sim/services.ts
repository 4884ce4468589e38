/** The services a run's groups can serve, by name (see `sim-service.ts`). */
import { CounterService } from './counter-service.js';
import { KvService } from './kv-service.js';
import type { ServiceFactory, ServiceName } from './sim-service.js';

/** Each service's constructor. */
export const SERVICES: Record<ServiceName, ServiceFactory> = {
  kv: (ctx, keyPrefix) => new KvService(ctx, keyPrefix),
  counter: (ctx) => new CounterService(ctx),
};
