// What the rest of gatehouse asks of telemetry. The adapters call these on the hot path, so each is
// cheap: label values are bounded (route ids and path templates, never raw paths).
import type { Logger } from 'pino';
import type { FilterAction, Phase, ShadowDenial } from '../pipeline/types.js';

/** shadow_deny: a shadowed filter denied (logged, counted) and the request went on */
export type Decision = 'allow' | 'deny' | 'respond' | 'error' | 'cancelled' | 'shadow_deny';
export type Protocol = 'ext_proc' | 'ext_authz';

/** One line per HTTP request, written when its stream ends. */
export interface AccessLogEntry {
  readonly protocol: Protocol;
  readonly requestId: string;
  /** gatehouse's own id for the decision (RequestContext.decisionId) */
  readonly decisionId?: string;
  readonly traceId?: string;
  readonly routeId: string;
  readonly pathTemplate: string;
  readonly method: string;
  readonly authority: string;
  /** path with the query; the query's values are redacted by the logger */
  readonly path: string;
  /** the status the client got or will get (upstream's, or gatehouse's own on deny) */
  readonly status?: number;
  readonly decision: Decision;
  readonly reason?: string;
  /** for the log only */
  readonly detail?: string;
  /** gatehouse's own processing time for this request, ms (sum over phases, not Envoy's wait) */
  readonly processingMs: number;
  readonly phases: Partial<Record<Phase, number>>;
  readonly sourceAddress?: string;
  readonly principal?: string;
  /** what filters changed or refused to pass on (names only, never values) */
  readonly actions?: readonly FilterAction[];
  /** denials of shadowed filters: what enforcing them would have refused */
  readonly shadow?: readonly ShadowDenial[];
}

export type ErrorKind =
  | 'malformed_message'
  | 'out_of_order_message'
  | 'filter_error'
  | 'budget_exceeded'
  | 'stream_error'
  | 'authz_error'
  /** Envoy named a route other than the one gatehouse matched (the request is decided on the match) */
  | 'route_name_mismatch'
  /** an ext_proc stream ended for sending nothing within limits.idleTimeoutMs */
  | 'stream_idle_timeout'
  /** a new stream refused: limits.maxStreams were open */
  | 'stream_limit'
  /** ext_authz let a request through on a route whose filters act on the upstream's answer, which ext_authz never shows gatehouse */
  | 'response_phases_unseen';

export interface Metrics {
  streamOpened(protocol: Protocol): void;
  streamClosed(protocol: Protocol): void;
  requestCompleted(entry: AccessLogEntry): void;
  phaseDuration(routeId: string, phase: Phase, seconds: number): void;
  error(kind: ErrorKind, routeId: string): void;
  configReload(result: 'success' | 'failure'): void;
  /** the mtls client registry file was reloaded, or a bad one refused */
  clientRegistryReload(result: 'success' | 'failure'): void;
  /** text exposition for /metrics */
  render(): Promise<string>;
  readonly contentType: string;
}

export interface RequestSpan {
  readonly traceId: string;
  /** the traceparent to hand upstream (child of the request's span) */
  readonly traceparent: string;
  /**
   * the tracestate to hand upstream: the incoming one validated and normalised, or undefined when
   * it was absent or invalid, or the trace is new (then upstream must get none: remove the header)
   */
  readonly tracestate?: string | undefined;
  setAttribute(key: string, value: string | number | boolean): void;
  end(decision: Decision, status?: number): void;
}

export interface Tracing {
  /** continue the W3C trace context of the request, or start a new trace */
  startRequestSpan(name: string, traceparent: string | undefined, tracestate: string | undefined): RequestSpan;
  shutdown(): Promise<void>;
}

export interface Telemetry {
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly tracing: Tracing;
  accessLog(entry: AccessLogEntry): void;
  shutdown(): Promise<void>;
}
