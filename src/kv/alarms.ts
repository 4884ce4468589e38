/**
 * Alarms (etcd's alarm store): which members raised which alarm. They are part of the
 * replicated state — raised and cleared by `alarm` commands through the log, persisted with
 * the store's position and carried by snapshots — so every member and every restart sees the
 * same alarms. While `NOSPACE` is raised the store refuses what could grow it, as etcd's
 * `applierV3Capped` does.
 */

import { KvError } from './errors.js';
import type { AlarmRequest, KvAlarm, KvCommand, RequestOp } from './types.js';

/** The raised alarms, ordered by member id then alarm type (a deterministic order). */
export class AlarmTable {
  private alarms: KvAlarm[] = [];

  /** Every raised alarm, in order. */
  list(): KvAlarm[] {
    return [...this.alarms];
  }

  /** Replaces every alarm (a restore or a load). */
  load(alarms: readonly KvAlarm[] | undefined): void {
    this.alarms = [...(alarms ?? [])].sort(compareAlarms);
  }

  /** Whether `alarm` is raised by any member. */
  raised(alarm: KvAlarm['alarm']): boolean {
    return this.alarms.some((a) => a.alarm === alarm);
  }

  /**
   * Applies an `alarm` command; returns the alarm it changed (empty when it was already
   * raised or not raised), as etcd's `AlarmResponse` lists it.
   */
  apply(request: AlarmRequest): KvAlarm[] {
    const alarm: KvAlarm = { memberId: request.memberId, alarm: request.alarm };
    const at = this.alarms.findIndex((a) => compareAlarms(a, alarm) === 0);
    if (request.action === 'activate') {
      if (at >= 0) return [];
      this.alarms.push(alarm);
      this.alarms.sort(compareAlarms);
      return [alarm];
    }
    if (at < 0) return [];
    this.alarms.splice(at, 1);
    return [alarm];
  }
}

function compareAlarms(a: KvAlarm, b: KvAlarm): number {
  return a.memberId - b.memberId || a.alarm.localeCompare(b.alarm);
}

/**
 * Whether `command` could grow the store, so `NOSPACE` refuses it: a put, a lease grant, or a
 * txn with a put in either branch (etcd's `applierV3Capped` and quota cost > 0).
 */
export function growsStore(command: KvCommand | RequestOp): boolean {
  switch (command.type) {
    case 'put':
    case 'leaseGrant':
      return true;
    case 'txn':
      return command.success.some(growsStore) || command.failure.some(growsStore);
    default:
      return false;
  }
}

/** Alarms stored or carried as [memberId, type] pairs; throws `CORRUPT` on a bad shape. */
export function parseAlarms(value: unknown): KvAlarm[] {
  if (!Array.isArray(value)) throw new KvError('CORRUPT', 'kv: malformed alarms');
  return value.map((pair: unknown) => {
    if (!Array.isArray(pair) || !Number.isSafeInteger(pair[0]) || pair[1] !== 'NOSPACE') {
      throw new KvError('CORRUPT', 'kv: malformed alarm');
    }
    return { memberId: pair[0] as number, alarm: 'NOSPACE' };
  });
}
