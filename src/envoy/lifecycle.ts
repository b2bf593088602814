// One HTTP request's life, the same over ext_proc and ext_authz: the route is resolved by
// gatehouse's own matching (Envoy's route name is only compared, never obeyed), a refusal or an
// unmatched request is decided before any chain, `unmatched: pass` still runs the always-on
// baseline (sanitize), a route that checks the whole body refuses when Envoy did not deliver it
// whole, each phase races the route budget, and the request ends with one access-log line, its
// metrics and every filter's onComplete. The adapters only translate Envoy's messages into
// these calls and the answers back (docs/security.md "One request lifecycle").
import { randomUUID } from 'node:crypto';
import { completeFilters, withinBudget } from '../pipeline/chain.js';
import { createRequestContext, splitPath, type RequestLine } from '../pipeline/context.js';
import { renderDenial, type DenyReasonCode } from '../pipeline/deny.js';
import { GATEHOUSE_HEADER_PREFIX, HEADER, type HeaderMap } from '../pipeline/headers.js';
import { UNMATCHED_ROUTE_ID, type RouteMatch, type RouteRefusal, type Routes } from '../pipeline/routing.js';
import type { CompiledRoute, PeerInfo, Phase, PhaseResult, RequestContext } from '../pipeline/types.js';
import type { DenialObserver } from '../security/index.js';
import type { AccessLogEntry, Decision, Protocol, Telemetry } from '../telemetry/types.js';

export interface LifecycleOptions {
  readonly telemetry: Telemetry;
  /** told of every denial (security events decide which are suspicious) */
  readonly onDenial?: DenialObserver;
}

/** What an adapter read off Envoy's first message of a request. */
export interface IncomingRequest {
  readonly protocol: Protocol;
  readonly line: RequestLine;
  readonly headers: HeaderMap;
  readonly peer: PeerInfo;
  /** the route Envoy says it chose (route name, metadata, context extension): compared, never obeyed */
  readonly namedRouteId?: string;
  /** why the request cannot be routed at all (no :method or :path, e.g. a CONNECT): refused 400 */
  readonly malformed?: string;
}

/** What the adapter sends Envoy for a phase. */
export type Answer =
  | { readonly kind: 'continue'; readonly body?: Buffer }
  | {
      readonly kind: 'immediate';
      readonly status: number;
      readonly headers: Readonly<Record<string, string>>;
      readonly body: Buffer;
      /** Envoy's response code details, e.g. gatehouse_signature_invalid */
      readonly details: string;
    };

/** How a body reached gatehouse, as the adapter can tell from Envoy's messages. */
export type BodyDelivery =
  /** the whole body, as the request (or response) sent it */
  | { readonly kind: 'whole'; readonly body: Buffer }
  /** Envoy sent part of it (ext_authz allow_partial_message, a streamed chunk, BUFFERED_PARTIAL) */
  | { readonly kind: 'partial'; readonly detail: string }
  /** the message has a body and Envoy sent none of it (no body phase, mode_override ignored) */
  | { readonly kind: 'missing'; readonly detail: string };

/** A body phase's delivery refused before the chain: what the route needs was not delivered. */
const UNDELIVERED: Record<'requestBody' | 'responseBody', Record<'partial' | 'missing', DenyReasonCode>> = {
  requestBody: { partial: 'request_body_incomplete', missing: 'request_body_not_forwarded' },
  responseBody: { partial: 'response_body_incomplete', missing: 'response_body_not_forwarded' },
};

/**
 * Does the message declare a body? `content-length` above 0 or any `transfer-encoding` (chunked);
 * what Envoy later sends is compared with this, so a body Envoy did not forward is never taken for
 * an empty one.
 */
export function declaresBody(headers: HeaderMap): boolean {
  if (headers.has(HEADER.transferEncoding)) return true;
  const length = headers.get(HEADER.contentLength);
  return length !== undefined && length !== '0' && length.trim() !== '0';
}

/** `content-length` as a number when it is one plain decimal value, else undefined. */
export function declaredLength(headers: HeaderMap | undefined): number | undefined {
  const values = headers?.getAll(HEADER.contentLength);
  if (values?.length !== 1 || !/^\d{1,15}$/.test(values[0]!)) return undefined;
  return Number(values[0]);
}

export class RequestLifecycle {
  readonly ctx: RequestContext;
  /** the route whose chain runs: matched, or the unmatched baseline; undefined when refused first */
  readonly route: CompiledRoute | undefined;
  decision: Decision = 'allow';
  reason: DenyReasonCode | undefined;
  detail: string | undefined;
  /** the status the client got or will get */
  status: number | undefined;
  /** the trace the log line and a security event name, once the adapter knows it */
  traceId: string | undefined;
  readonly phaseMs: Partial<Record<Phase, number>> = {};
  processingMs = 0;
  private readonly refusal: { readonly reason: DenyReasonCode; readonly detail?: string } | undefined;
  /** made when a filter first asks for ctx.signal (an AbortController per request showed in profiles) */
  private abortController: AbortController | undefined;
  private finished = false;

  constructor(
    readonly options: LifecycleOptions,
    private readonly protocol: Protocol,
    routes: Routes,
    request: IncomingRequest,
  ) {
    const { line, headers } = request;
    // split once: matching and the context share it
    const target = splitPath(line.path);
    const found: RouteMatch | RouteRefusal | undefined = request.malformed !== undefined
      ? { refused: 'bad_request_headers', detail: request.malformed }
      : routes.match({ method: line.method, authority: line.authority, pathname: target.pathname, query: target.query, headers });
    let route: CompiledRoute | undefined;
    let pathTemplate = UNMATCHED_ROUTE_ID;
    let params: Readonly<Record<string, string>> = {};
    if (found !== undefined && 'refused' in found) {
      this.refusal = { reason: found.refused, detail: found.detail };
    } else if (found !== undefined) {
      route = found.route;
      pathTemplate = found.pathTemplate;
      params = found.params;
    } else if (routes.unmatched === 'deny') {
      this.refusal = { reason: 'route_not_found' };
    } else {
      // pass: the always-on baseline still runs (forged identity headers, limits)
      route = routes.unmatchedRoute;
    }
    this.route = route;
    this.ctx = createRequestContext(line, headers, request.peer, { routeId: route?.id ?? UNMATCHED_ROUTE_ID, pathTemplate, params }, () => (this.abortController ??= new AbortController()).signal, randomUUID(), target);
    const named = request.namedRouteId;
    if (named !== undefined && named !== this.ctx.routeId) {
      // Envoy's routing and gatehouse's disagree: the request is decided on gatehouse's own match
      // (a name cannot move it to a weaker route); operators see the drift.
      options.telemetry.metrics.error('route_name_mismatch', this.ctx.routeId);
      options.telemetry.logger.debug({ request_id: this.ctx.requestId, route_id: this.ctx.routeId, envoy_route: named }, 'Envoy named another route; decided on the matched one');
    }
  }

  get telemetry(): Telemetry {
    return this.options.telemetry;
  }

  /**
   * The route's filters act on the upstream's answer (FilterNeeds.responseHeaders / responseBody:
   * response header edits, a breaker fed by the status, a sealed body). ext_proc always asks for
   * response headers (the status for the log; x-gatehouse-* stripped from every answer), so this
   * changes no processing mode; ext_authz never sees the answer, so there it is a route that
   * belongs on ext_proc.
   */
  actsOnResponse(): boolean {
    return this.route?.needs.responseHeaders === true || this.route?.needs.responseBody === true;
  }

  /** true when the route's filters need this body phase */
  needs(phase: 'requestBody' | 'responseBody'): boolean {
    return phase === 'requestBody' ? this.route?.needs.requestBody === true : this.route?.needs.responseBody === true;
  }

  /** The request headers phase: a refusal decided at resolution, else the chain. */
  requestHeaders(): Answer | Promise<Answer> {
    if (this.refusal) return this.deny(this.refusal.reason, this.refusal.detail);
    return this.run('requestHeaders');
  }

  /**
   * Response headers: gatehouse's own headers (x-gatehouse-*) never come from the upstream, so
   * an upstream cannot imitate a refusal; then the chain.
   */
  responseHeaders(headers: HeaderMap, status: number | undefined): Answer | Promise<Answer> {
    this.ctx.responseHeaders = headers;
    if (status !== undefined) {
      this.ctx.responseStatus = status;
      this.status = status;
    }
    for (let i = 0; i < headers.size; i++) {
      const name = headers.nameAt(i);
      // x-gatehouse-* and its underscore spellings; most names are ruled out by their first letter
      if (name.charCodeAt(0) === 0x78 /* x */ && (name.startsWith(GATEHOUSE_HEADER_PREFIX) || name.replaceAll('_', '-').startsWith(GATEHOUSE_HEADER_PREFIX))) this.ctx.responseEdits.remove(name);
    }
    return this.run('responseHeaders');
  }

  /**
   * A body phase. A route that checks the body refuses one Envoy did not deliver whole, before any
   * filter sees it: a signature or an envelope over part of a body proves nothing about the rest.
   */
  body(phase: 'requestBody' | 'responseBody', delivery: BodyDelivery): Answer | Promise<Answer> {
    const route = this.route;
    if (route === undefined || !this.needs(phase)) return CONTINUE_ANSWER;
    if (delivery.kind !== 'whole') return this.deny(UNDELIVERED[phase][delivery.kind], delivery.detail);
    if (delivery.body.length > route.maxBodyBytes) {
      return this.deny('body_too_large', `${phase === 'requestBody' ? 'request' : 'response'} body of ${delivery.body.length} bytes exceeds ${route.maxBodyBytes}`);
    }
    return this.run(phase, delivery.body);
  }

  private run(phase: Phase, body?: Buffer): Answer | Promise<Answer> {
    const route = this.route!;
    const result = withinBudget(
      route.chain.run(phase, this.ctx, body),
      route.budgetMs,
      phase,
      (reason) => {
        this.options.telemetry.metrics.error('budget_exceeded', route.id);
        this.abortController?.abort(reason);
      },
      () => {
        this.options.telemetry.metrics.error('filter_error', route.id);
      },
    );
    if (!('then' in result)) return this.settle(result);
    return result.then((settled) => this.settle(settled));
  }

  private settle(result: PhaseResult): Answer {
    const outcome = result.outcome;
    switch (outcome.kind) {
      case 'continue':
        this.noteShadowDenials();
        return result.body === undefined ? CONTINUE_ANSWER : { kind: 'continue', body: result.body };
      case 'deny':
        return this.deny(outcome.reason, outcome.detail, outcome.headers);
      case 'respond':
        this.decision = 'respond';
        this.status = outcome.status;
        return { kind: 'immediate', status: outcome.status, headers: outcome.headers ?? {}, body: outcome.body ?? EMPTY, details: 'gatehouse_response' };
    }
  }

  /**
   * Shadowed filters denied and the request goes on: the decision is `shadow_deny` with the first
   * reason (dynamic metadata, access log, metrics). Security events are not told: a rule on trial
   * must not disable accounts.
   */
  private noteShadowDenials(): void {
    const first = this.ctx.shadowDenials?.[0];
    if (first === undefined || this.decision !== 'allow') return;
    this.decision = 'shadow_deny';
    this.reason = first.reason;
    if (first.detail !== undefined) this.detail = first.detail;
  }

  /** A denial: the stable reason, the decision id, security events told. */
  deny(reason: DenyReasonCode, detail?: string, headers: Readonly<Record<string, string>> = {}): Answer {
    const rendered = renderDenial(reason, this.ctx.decisionId, headers);
    this.decision = 'deny';
    this.reason = reason;
    this.detail = detail;
    this.status = rendered.status;
    this.options.onDenial?.(this.ctx, reason, detail, this.traceId);
    return { kind: 'immediate', status: rendered.status, headers: rendered.headers, body: rendered.body, details: `gatehouse_${reason}` };
  }

  recordPhase(phase: Phase, started: number): void {
    const ms = performance.now() - started;
    this.phaseMs[phase] = (this.phaseMs[phase] ?? 0) + ms;
    this.processingMs += ms;
    this.options.telemetry.metrics.phaseDuration(this.ctx.routeId, phase, ms / 1000);
  }

  /** The client went away or the call failed while the chain ran: abort the chain's work. */
  abort(reason: Error): void {
    if (this.abortController && !this.abortController.signal.aborted) this.abortController.abort(reason);
  }

  /**
   * The request is over (answered, refused, cancelled, failed): one access-log line, its metrics,
   * every filter's onComplete. Idempotent. `status` is what the log records, when the adapter
   * knows better (ext_authz never sees the upstream's answer).
   */
  finish(decision: Decision = this.decision, status: number | undefined = this.status): AccessLogEntry | undefined {
    if (this.finished) return undefined;
    this.finished = true;
    if (decision === 'cancelled') this.abort(new Error('request cancelled'));
    const ctx = this.ctx;
    const telemetry = this.options.telemetry;
    const entry: AccessLogEntry = {
      protocol: this.protocol,
      requestId: ctx.requestId,
      decisionId: ctx.decisionId,
      ...(this.traceId ? { traceId: this.traceId } : {}),
      routeId: ctx.routeId,
      pathTemplate: ctx.pathTemplate,
      method: ctx.method,
      authority: ctx.authority,
      path: ctx.path,
      ...(status !== undefined ? { status } : {}),
      decision,
      ...(this.reason ? { reason: this.reason } : {}),
      ...(this.detail ? { detail: this.detail } : {}),
      processingMs: this.processingMs,
      phases: this.phaseMs,
      ...(ctx.peer.sourceAddress ? { sourceAddress: ctx.peer.sourceAddress } : {}),
      ...(ctx.peer.principal ? { principal: ctx.peer.principal } : {}),
      ...(ctx.actions ? { actions: ctx.actions } : {}),
      ...(ctx.shadowDenials ? { shadow: ctx.shadowDenials } : {}),
    };
    telemetry.accessLog(entry);
    telemetry.metrics.requestCompleted(entry);
    if (this.route) completeFilters(this.route, ctx, { decision, ...(status !== undefined ? { status } : {}) }, telemetry);
    return entry;
  }

  /** the error detail for a stream or call that failed outside the chain */
  failed(detail: string): void {
    this.decision = 'error';
    this.detail = detail;
  }
}

const EMPTY = Buffer.alloc(0);
const CONTINUE_ANSWER: Answer = Object.freeze({ kind: 'continue' });
