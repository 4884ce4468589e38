/** Client APIs: the HTTP/JSON server and its metrics. */
export { HttpError, type HttpErrorCode, toHttpError } from './errors.js';
export { HttpApi, type HttpApiOptions, REQUEST_BODY_BYTES_MAX, VALUE_BYTES_MAX } from './http.js';
export { HttpMetrics, renderMetrics } from './metrics.js';
