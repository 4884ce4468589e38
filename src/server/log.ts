/**
 * Structured logs: one JSON object per line (pino), with `level` (a name), `time` (ISO 8601),
 * `pid`, `name` (the node's name), `msg`, and whatever fields the caller adds. The runtime
 * only knows {@link NodeLogger} (`info`/`warn`/`error` of a message); a {@link FieldLogger}
 * is one, and also takes fields and `debug`.
 */
import { type DestinationStream, pino } from 'pino';
import type { NodeLogger } from '../index.js';

/** The levels `--log-level` accepts, most verbose first. */
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Structured fields of one log line. */
export type LogFields = Readonly<Record<string, unknown>>;

/** A {@link NodeLogger} whose methods also take structured fields. */
export interface FieldLogger extends NodeLogger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  /** Whether lines of `level` are written (to skip building fields that would be dropped). */
  enabled(level: LogLevel): boolean;
}

/** Whether `text` is one of {@link LOG_LEVELS}. */
export function isLogLevel(text: string): text is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(text);
}

/**
 * A logger writing JSON lines for node `name`, by default synchronously to stderr (so the
 * last lines before a fatal exit are not lost).
 */
export function createLogger(options: {
  readonly name: string;
  readonly level?: LogLevel;
  readonly destination?: DestinationStream;
}): FieldLogger {
  const logger = pino(
    {
      name: options.name,
      level: options.level ?? 'info',
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination ?? pino.destination({ fd: 2, sync: true }),
  );
  const method =
    (level: LogLevel) =>
    (message: string, fields?: LogFields): void => {
      if (fields === undefined) logger[level](message);
      else logger[level](fields, message);
    };
  return {
    debug: method('debug'),
    info: method('info'),
    warn: method('warn'),
    error: method('error'),
    enabled: (level) => logger.isLevelEnabled(level),
  };
}
