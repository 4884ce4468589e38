/** Client APIs: the HTTP/JSON server, its metrics and the structured logger. */
export { HttpError, type HttpErrorCode, toHttpError } from './errors.js';
export { HttpApi, type HttpApiOptions } from './http.js';
export { VALUE_BYTES_MAX } from './kv-routes.js';
export {
  createLogger,
  type FieldLogger,
  isLogLevel,
  LOG_LEVELS,
  type LogFields,
  type LogLevel,
} from './log.js';
export { LATENCY_BUCKETS_SECONDS, NodeMetrics } from './metrics.js';
export { CLIENT_ID_HEADER, REQUEST_BODY_BYTES_MAX, SEQ_HEADER } from './request.js';
