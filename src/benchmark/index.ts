/** `flotilla bench`: an etcd-compatible benchmark client for any etcd v3 endpoint. */
export * from './connections.js';
export * from './options.js';
export * from './pacing.js';
export * from './report.js';
export * from './watch-latency.js';
export * from './workloads.js';
