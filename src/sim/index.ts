/** The deterministic simulator, its checkers and the in-process test harness. */
export { SafetyChecker, SafetyViolation } from './checkers.js';
export { type CounterCommand, SimCounter } from './counter-machine.js';
export { EventQueue } from './event-queue.js';
export {
  type AppliedConfChange,
  type AppliedEntry,
  Harness,
  type HarnessNode,
  type HarnessOptions,
  type HarnessRaftOptions,
  type MessageFilter,
} from './harness.js';
export { decodeCommand, encodeCommand, type KvCommand, KvMachine, type KvResult } from './kv-machine.js';
export * from './linearizability.js';
export { type RunSeedsOptions, runSeeds, type SimSummary } from './run.js';
export { SimMachineDriver, type SimStateMachine } from './sim-machine-driver.js';
export {
  runSimulation,
  type SimOptions,
  type SimParams,
  type SimResult,
  type SimStats,
} from './simulator.js';
