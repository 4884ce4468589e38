/** Client APIs: the HTTP/JSON server, its metrics and the structured logger. */
export { HttpError, type HttpErrorCode, toHttpError } from './errors.js';
export {
  CLIENT_ID_HEADER,
  HttpApi,
  type HttpApiOptions,
  REQUEST_BODY_BYTES_MAX,
  SEQ_HEADER,
  VALUE_BYTES_MAX,
} from './http.js';
export {
  createLogger,
  type FieldLogger,
  isLogLevel,
  LOG_LEVELS,
  type LogFields,
  type LogLevel,
} from './log.js';
export { LATENCY_BUCKETS_SECONDS, NodeMetrics } from './metrics.js';
