// The process logger (pino, JSON lines on stdout) and the access log: one line per HTTP request.
// Secrets never reach a line: credential headers are censored wherever a `headers` object is
// logged, and query values are replaced in the access log's path (names kept, for debugging).
import { pino, type DestinationStream, type Level, type Logger } from 'pino';
import { HEADER } from '../pipeline/headers.js';
import { CREDENTIAL_HEADER, SIGNATURE_HEADER, SIGNATURE_INPUT_HEADER } from '../protocol/signing/profile.js';
import type { AccessLogEntry } from './types.js';
import { createBatchedFdWriter, type BatchedFdWriter } from './batched-fd.js';

export const REDACTED = '[Redacted]';

/** Headers whose values are credentials or bind to them. Lower case, as Envoy hands them over. */
export const SECRET_HEADERS: readonly string[] = [
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  HEADER.passport,
  'x-api-key',
  SIGNATURE_HEADER,
  SIGNATURE_INPUT_HEADER,
  CREDENTIAL_HEADER,
];

/** Where a headers object may sit in a log call's merge object; each secret header is censored there. */
const HEADER_CONTAINERS: readonly string[] = ['headers', 'requestHeaders', 'responseHeaders', 'req.headers', 'res.headers'];

function redactPaths(): string[] {
  const paths: string[] = [];
  for (const container of HEADER_CONTAINERS) {
    for (const name of SECRET_HEADERS) paths.push(`${container}["${name}"]`);
  }
  // a header logged on its own, e.g. `log.warn({ authorization }, ...)`
  for (const name of SECRET_HEADERS) paths.push(`["${name}"]`);
  return paths;
}

export interface LoggerOptions {
  readonly level: Level | 'silent';
  /** defaults to stdout (batched synchronous writes, batched-fd.ts; flushed by `flushLogger` and at exit) */
  readonly destination?: DestinationStream;
  /** the `service` base field; defaults to `gatehouse` */
  readonly service?: string;
  /** field names: gatehouse's own (default) or Elastic Common Schema's (`ecs`) */
  readonly format?: LogFormat;
}

/** `default`: gatehouse's field names (time, msg, level, service, request_id, ...); `ecs`: Elastic Common Schema's */
export type LogFormat = 'default' | 'ecs';

/** The ECS version the `ecs` format's field names follow (ecs.version in every line). */
export const ECS_VERSION = '8.11.0';

let lastMs = -1;
let lastTime = '';

/**
 * pino's `isoTime`, formatting once per millisecond: `toISOString` was a quarter of an access
 * line's cost, and under load many lines share a millisecond.
 */
export function isoTimeCached(): string {
  const now = Date.now();
  if (now !== lastMs) {
    lastMs = now;
    lastTime = `,"time":"${new Date(now).toISOString()}"`;
  }
  return lastTime;
}

let lastEcsMs = -1;
let lastEcsTime = '';

/** isoTimeCached for the ECS format: the same instant under `@timestamp`. */
export function isoTimeCachedEcs(): string {
  const now = Date.now();
  if (now !== lastEcsMs) {
    lastEcsMs = now;
    lastEcsTime = `,"@timestamp":"${new Date(now).toISOString()}"`;
  }
  return lastEcsTime;
}

/** Field names of ordinary log lines mapped to ECS's (the access line is built in ECS form directly). */
const ECS_FIELDS: Readonly<Record<string, string>> = {
  request_id: 'http.request.id',
  trace_id: 'trace.id',
  span_id: 'span.id',
  route_id: 'gatehouse.route_id',
  decision_id: 'gatehouse.decision_id',
};

/** An ordinary line's merge object with ECS names; pino's serialized `err` becomes error.type/message/stack_trace. */
function ecsFields(object: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(object)) {
    if (key === 'err' && typeof value === 'object' && value !== null) {
      // an Error here (pino's formatters.log sees it before its serializer), or an already serialized one
      const err = value as { type?: unknown; name?: unknown; message?: unknown; stack?: unknown };
      out['error.type'] = err.type ?? err.name;
      out['error.message'] = err.message;
      out['error.stack_trace'] = err.stack;
    } else out[ECS_FIELDS[key] ?? key] = value;
  }
  return out;
}

/** stdout for every logger of the process: one batch buffer, so lines keep their order (batched-fd.ts). */
let stdoutWriter: BatchedFdWriter | undefined;
function sharedStdout(): DestinationStream {
  return (stdoutWriter ??= createBatchedFdWriter(1));
}

export function createLogger(options: LoggerOptions): Logger {
  const destination = options.destination ?? sharedStdout();
  if (options.format === 'ecs') {
    return pino(
      {
        level: options.level,
        base: { 'service.name': options.service ?? 'gatehouse', 'ecs.version': ECS_VERSION },
        timestamp: isoTimeCachedEcs,
        messageKey: 'message',
        formatters: { level: (label) => ({ 'log.level': label }), log: ecsFields },
        redact: { paths: redactPaths(), censor: REDACTED },
      },
      destination,
    );
  }
  return pino(
    {
      level: options.level,
      base: { service: options.service ?? 'gatehouse' },
      timestamp: isoTimeCached,
      messageKey: 'msg',
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: redactPaths(), censor: REDACTED },
    },
    destination,
  );
}

/** Best effort: pushes buffered lines out before exit. */
export function flushLogger(logger: Logger): Promise<void> {
  return new Promise((resolve) => {
    try {
      logger.flush(() => { resolve(); });
    } catch {
      // a destination without flush support has nothing buffered
      resolve();
    }
  });
}

/** Longest path written to the access log; the rest is cut (attackers choose path length). */
export const MAX_LOGGED_PATH = 2048;

/**
 * The path with each query parameter's value replaced by `[Redacted]`; names stay. Parameters
 * without `=` and empty values are kept as they are (they carry nothing to hide).
 */
export function redactQuery(path: string): string {
  const clipped = path.length > MAX_LOGGED_PATH ? `${path.slice(0, MAX_LOGGED_PATH)}…` : path;
  const q = clipped.indexOf('?');
  if (q < 0 || q === clipped.length - 1) return clipped;
  let out = clipped.slice(0, q + 1);
  let start = q + 1;
  while (start <= clipped.length) {
    let end = clipped.indexOf('&', start);
    if (end < 0) end = clipped.length;
    const param = clipped.slice(start, end);
    const eq = param.indexOf('=');
    out += eq >= 0 && eq < param.length - 1 ? `${param.slice(0, eq + 1)}${REDACTED}` : param;
    if (end < clipped.length) out += '&';
    start = end + 1;
  }
  return out;
}

/** Per-phase processing time, ms, as logged (`phases_ms`). */
type PhasesMs = AccessLogEntry['phases'];

/** The access-log line's shape: snake_case fields, absent values omitted by pino. */
interface AccessLine {
  protocol: AccessLogEntry['protocol'];
  route_id: string;
  path_template: string;
  method: string;
  authority: string;
  path: string;
  status: number | undefined;
  decision: AccessLogEntry['decision'];
  reason: string | undefined;
  detail: string | undefined;
  processing_ms: number;
  phases_ms: PhasesMs | undefined;
  request_id: string;
  decision_id: string;
  trace_id: string | undefined;
  source: string | undefined;
  principal: string | undefined;
  actions: AccessLogEntry['actions'];
  shadow: AccessLogEntry['shadow'];
}

/**
 * Returns the access-log writer bound to `logger`: one `info` line with `msg: "request"` per call.
 * `detail` is written only for denials (it explains the reason to operators, never to clients).
 */
export function createAccessLog(logger: Logger, format: LogFormat = 'default'): (entry: AccessLogEntry) => void {
  if (format === 'ecs') return createEcsAccessLog(logger);
  return (entry) => {
    if (!logger.isLevelEnabled('info')) return;
    const line: AccessLine = {
      protocol: entry.protocol,
      route_id: entry.routeId,
      path_template: entry.pathTemplate,
      method: entry.method,
      authority: entry.authority,
      path: redactQuery(entry.path),
      status: entry.status,
      decision: entry.decision,
      reason: entry.reason,
      detail: entry.decision === 'deny' || entry.decision === 'shadow_deny' ? entry.detail : undefined,
      processing_ms: roundMs(entry.processingMs),
      phases_ms: hasPhases(entry.phases) ? roundPhases(entry.phases) : undefined,
      request_id: entry.requestId,
      decision_id: entry.decisionId ?? entry.requestId,
      trace_id: entry.traceId,
      source: entry.sourceAddress,
      principal: entry.principal,
      actions: entry.actions,
      shadow: entry.shadow,
    };
    logger.info(line, 'request');
  };
}

/**
 * The access line with Elastic Common Schema names: url.*, http.*, event.*, trace.id, source.address;
 * what ECS has no field for under `gatehouse.*`. event.duration is in nanoseconds, as ECS defines it.
 */
function createEcsAccessLog(logger: Logger): (entry: AccessLogEntry) => void {
  return (entry) => {
    if (!logger.isLevelEnabled('info')) return;
    const path = redactQuery(entry.path);
    const q = path.indexOf('?');
    const line: Record<string, unknown> = {
      'event.kind': 'event',
      'event.category': ['web'],
      'event.dataset': 'gatehouse.access',
      'event.outcome': entry.decision === 'deny' ? 'failure' : 'success',
      'event.duration': Math.round(entry.processingMs * 1e6),
      'http.request.method': entry.method,
      'http.request.id': entry.requestId,
      'http.response.status_code': entry.status,
      'url.domain': entry.authority,
      'url.path': q < 0 ? path : path.slice(0, q),
      'url.query': q < 0 ? undefined : path.slice(q + 1),
      'trace.id': entry.traceId,
      'source.address': entry.sourceAddress,
      'gatehouse.protocol': entry.protocol,
      'gatehouse.route_id': entry.routeId,
      'gatehouse.path_template': entry.pathTemplate,
      'gatehouse.decision': entry.decision,
      'gatehouse.decision_id': entry.requestId,
      'gatehouse.reason': entry.reason,
      'gatehouse.detail': entry.decision === 'deny' ? entry.detail : undefined,
      'gatehouse.principal': entry.principal,
      'gatehouse.phases_ms': hasPhases(entry.phases) ? roundPhases(entry.phases) : undefined,
      'gatehouse.actions': entry.actions,
    };
    logger.info(line, 'request');
  };
}

/** µs resolution is plenty and keeps lines short. */
function roundMs(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

function hasPhases(phases: PhasesMs): boolean {
  for (const _ in phases) return true;
  return false;
}

function roundPhases(phases: PhasesMs): PhasesMs {
  const out: Record<string, number> = {};
  for (const [phase, ms] of Object.entries(phases)) out[phase] = roundMs(ms);
  return out;
}
