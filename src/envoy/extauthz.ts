// The ext_authz adapter: one Check = one HTTP request, run through the same chain's request phases
// (headers, and the body when Envoy sends one). It suits routes that need no response processing
// and no body rewrite; those need ext_proc. Follows ../shared/envoy-behaviours.md section 11.
import { create, type JsonObject } from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import { HeaderValueOptionSchema, HeaderValueSchema, type HeaderValueOption } from '../gen/envoy/config/core/v3/base_pb.js';
import {
  CheckResponseSchema,
  DeniedHttpResponseSchema,
  OkHttpResponseSchema,
  type CheckRequest,
  type CheckResponse,
} from '../gen/envoy/service/auth/v3/external_auth_pb.js';
import type { AttributeContext, AttributeContext_HttpRequest } from '../gen/envoy/service/auth/v3/attribute_context_pb.js';
import { StatusSchema } from '../gen/google/rpc/status_pb.js';
import { chainFor, completeFilters, withinBudget, type PhaseResult } from '../pipeline/chain.js';
import { createRequestContext } from '../pipeline/context.js';
import { renderDenial, type DenyReasonCode } from '../pipeline/deny.js';
import type { DenialObserver } from '../security/index.js';
import { HEADER, HeaderMap, type HeaderSet } from '../pipeline/headers.js';
import { UNMATCHED_ROUTE_ID, type RouteRefusal, type RoutesSource } from '../pipeline/routing.js';
import type { CompiledRoute, PeerInfo, RequestContext } from '../pipeline/types.js';
import { parseTraceparent } from '../telemetry/tracing.js';
import type { AccessLogEntry, Decision, Telemetry } from '../telemetry/types.js';
import { decisionMetadata, METADATA_NAMESPACE } from './extproc.js';
import { certificateFromPem } from './peer-certificate.js';
import { acceptedEdits, httpStatus, reportDroppedEdits } from './mutations.js';

export interface ExtAuthzOptions {
  readonly routes: RoutesSource;
  readonly telemetry: Telemetry;
  readonly accepting: () => boolean;
  /** told of every denial (security events decide which are suspicious) */
  readonly onDenial?: DenialObserver;
}

/** The context extension (ExtAuthzPerRoute.check_settings) that names gatehouse's route id. */
export const ROUTE_ID_EXTENSION = 'gatehouse_route_id';

const GRPC_OK = 0;

/** Envoy reads the denial's gRPC code only to tell OK from not OK (11.9); keep it meaningful. */
function grpcCodeFor(status: number): grpc.status {
  if (status === 401) return grpc.status.UNAUTHENTICATED;
  if (status === 429 || status === 503) return grpc.status.UNAVAILABLE;
  if (status >= 500) return grpc.status.INTERNAL;
  return grpc.status.PERMISSION_DENIED;
}

/** Headers from `header_map` (encode_raw_headers) or the comma-joined `headers` map (11.6). */
function requestHeaders(http: AttributeContext_HttpRequest | undefined): HeaderMap {
  const map = new HeaderMap();
  if (!http) return map;
  if (http.headerMap && http.headerMap.headers.length > 0) {
    const decoder = new TextDecoder();
    for (const h of http.headerMap.headers) map.add(h.key, h.rawValue.length > 0 ? decoder.decode(h.rawValue) : h.value);
  } else {
    for (const [name, value] of Object.entries(http.headers)) map.add(name, value);
  }
  return map;
}

function peerFrom(attributes: AttributeContext | undefined): PeerInfo {
  const source = attributes?.source;
  const socket = source?.address?.address.case === 'socketAddress' ? source.address.address.value : undefined;
  const sourceAddress = socket ? socket.address : undefined;
  const certificate = certificateFromPem(source?.certificate);
  return {
    ...(certificate ? { certificate } : {}),
    ...(sourceAddress ? { sourceAddress } : {}),
    ...(source?.principal ? { principal: source.principal } : {}),
  };
}

function routeIdFrom(attributes: AttributeContext | undefined): string | undefined {
  const fromExtension = attributes?.contextExtensions[ROUTE_ID_EXTENSION];
  if (fromExtension) return fromExtension;
  const fromMetadata = attributes?.routeMetadataContext?.filterMetadata[METADATA_NAMESPACE]?.['route_id'];
  return typeof fromMetadata === 'string' && fromMetadata.length > 0 ? fromMetadata : undefined;
}

/**
 * OkHttpResponse.headers: Envoy reads `value` here, not `raw_value` (11.10); `append: true` only
 * appends to a header that exists and is dropped otherwise, so an append to an absent header is
 * sent as a set.
 */
function okHeaders(sets: readonly HeaderSet[], present: HeaderMap): HeaderValueOption[] {
  return sets.map((s) =>
    create(HeaderValueOptionSchema, {
      header: create(HeaderValueSchema, { key: s.name, value: s.value }),
      append: s.append && present.has(s.name),
    }),
  );
}

/**
 * Envoy applies `headers_to_remove` after `headers` (11.10, 11.11), the reverse of the chain's
 * order (removals first): a header removed and then set (sanitize strips a client's
 * x-gatehouse-client, mtls sets the real one) is sent as a set alone, its first value replacing.
 */
function removalsBeforeSets(edits: { removals: string[]; sets: HeaderSet[] }): { removals: string[]; sets: HeaderSet[] } {
  const setNames = new Set(edits.sets.map((s) => s.name));
  if (!edits.removals.some((name) => setNames.has(name))) return edits;
  const replaced = new Set<string>();
  const sets = edits.sets.map((s) => {
    if (!edits.removals.includes(s.name) || replaced.has(s.name)) return s;
    replaced.add(s.name);
    return { ...s, append: false };
  });
  return { removals: edits.removals.filter((name) => !setNames.has(name)), sets };
}

class Check {
  private decision: Decision = 'allow';
  private reason: DenyReasonCode | undefined;
  private detail: string | undefined;
  private status: number | undefined;
  private readonly started = performance.now();
  private readonly abort = new AbortController();

  constructor(
    private readonly options: ExtAuthzOptions,
    private readonly ctx: RequestContext,
    private readonly route: CompiledRoute | undefined,
    private readonly refusal: RouteRefusal | undefined,
  ) {}

  /**
   * ext_authz starts no span of its own: the trace is the caller's, read from the request's
   * `traceparent` (Envoy's, when its tracer is on), so the access line and a security event name it.
   */
  private get traceId(): string | undefined {
    return parseTraceparent(this.ctx.requestHeaders.get(HEADER.traceparent))?.traceId;
  }

  async run(body: Buffer | undefined): Promise<CheckResponse> {
    const routes = this.options.routes.current();
    if (this.refusal) return this.denied(this.refusal.refused, this.refusal.detail);
    if (!this.route) return routes.unmatched === 'deny' ? this.denied('route_not_found') : this.ok();
    const chain = chainFor(this.route);
    let result = await this.withinBudget(chain.run('requestHeaders', this.ctx));
    if (result.outcome.kind === 'continue' && body !== undefined && chain.hasSteps('requestBody')) {
      if (body.length > this.route.maxBodyBytes) return this.denied('body_too_large', `request body of ${body.length} bytes exceeds ${this.route.maxBodyBytes}`);
      result = await this.withinBudget(chain.run('requestBody', this.ctx, body));
      if (result.body) return this.denied('internal_error', 'a filter rewrote the body, which ext_authz cannot do: serve this route over ext_proc');
    }
    const outcome = result.outcome;
    switch (outcome.kind) {
      case 'continue':
        return this.ok();
      case 'deny':
        return this.denied(outcome.reason, outcome.detail, outcome.headers);
      case 'respond':
        this.decision = 'respond';
        return this.deniedWith(outcome.status, outcome.headers ?? {}, outcome.body ?? Buffer.alloc(0));
    }
  }

  private withinBudget(result: PhaseResult | Promise<PhaseResult>): PhaseResult | Promise<PhaseResult> {
    return withinBudget(result, this.route!.budgetMs, 'the chain', (reason) => {
      this.abort.abort(reason);
      this.options.telemetry.metrics.error('budget_exceeded', this.ctx.routeId);
    }, () => {
      this.options.telemetry.metrics.error('filter_error', this.ctx.routeId);
    });
  }


  private ok(): CheckResponse {
    const accepted = acceptedEdits(this.ctx.requestEdits.drain(), 'request');
    reportDroppedEdits(this.options.telemetry, this.ctx.routeId, this.ctx.requestId, accepted.dropped);
    const edits = removalsBeforeSets(accepted);
    return create(CheckResponseSchema, {
      status: create(StatusSchema, { code: GRPC_OK }),
      httpResponse: {
        case: 'okResponse',
        value: create(OkHttpResponseSchema, {
          headers: okHeaders(edits.sets, this.ctx.requestHeaders),
          headersToRemove: edits.removals,
        }),
      },
      dynamicMetadata: this.metadata(),
    });
  }

  denied(reason: DenyReasonCode, detail?: string, headers: Readonly<Record<string, string>> = {}): CheckResponse {
    this.decision = 'deny';
    this.reason = reason;
    this.detail = detail;
    this.options.onDenial?.(this.ctx, reason, detail, this.traceId);
    const rendered = renderDenial(reason, this.ctx.requestId, headers);
    return this.deniedWith(rendered.status, rendered.headers, rendered.body);
  }

  private deniedWith(status: number, headers: Readonly<Record<string, string>>, body: Buffer): CheckResponse {
    this.status = status;
    return create(CheckResponseSchema, {
      status: create(StatusSchema, { code: grpcCodeFor(status) }),
      httpResponse: {
        case: 'deniedResponse',
        value: create(DeniedHttpResponseSchema, {
          status: httpStatus(status),
          // Envoy drops denial headers with append: true (11.17): send every one as a set.
          headers: Object.entries(headers).map(([key, value]) =>
            create(HeaderValueOptionSchema, { header: create(HeaderValueSchema, { key, value }), append: false }),
          ),
          body: body.toString('utf8'),
        }),
      },
      dynamicMetadata: this.metadata(),
    });
  }

  private metadata(): JsonObject {
    return decisionMetadata(this.ctx.routeId, this.decision, this.reason ? { reason: this.reason, decisionId: this.ctx.requestId } : undefined);
  }


  cancel(): void {
    this.abort.abort(new Error('check cancelled'));
    this.decision = 'cancelled';
  }

  log(): void {
    const ms = performance.now() - this.started;
    const entry: AccessLogEntry = {
      protocol: 'ext_authz',
      requestId: this.ctx.requestId,
      routeId: this.ctx.routeId,
      pathTemplate: this.ctx.pathTemplate,
      method: this.ctx.method,
      authority: this.ctx.authority,
      path: this.ctx.path,
      ...(this.status !== undefined ? { status: this.status } : {}),
      decision: this.decision,
      ...(this.reason ? { reason: this.reason } : {}),
      ...(this.detail ? { detail: this.detail } : {}),
      processingMs: ms,
      phases: { requestHeaders: ms },
      ...(this.traceId === undefined ? {} : { traceId: this.traceId }),
      ...(this.ctx.peer.sourceAddress ? { sourceAddress: this.ctx.peer.sourceAddress } : {}),
      ...(this.ctx.peer.principal ? { principal: this.ctx.peer.principal } : {}),
      ...(this.ctx.actions ? { actions: this.ctx.actions } : {}),
    };
    this.options.telemetry.metrics.phaseDuration(this.ctx.routeId, 'requestHeaders', ms / 1000);
    this.options.telemetry.accessLog(entry);
    this.options.telemetry.metrics.requestCompleted(entry);
    // ext_authz never sees the upstream's answer: an allowed request completes without a status
    if (this.route) completeFilters(this.route, this.ctx, { decision: this.decision, ...(this.status !== undefined && this.decision !== 'allow' ? { status: this.status } : {}) }, this.options.telemetry);
  }

  get signal(): AbortSignal {
    return this.abort.signal;
  }
}

export function extAuthzHandler(options: ExtAuthzOptions): grpc.handleUnaryCall<CheckRequest, CheckResponse> {
  return (call, callback) => {
    if (!options.accepting()) {
      callback({ code: grpc.status.UNAVAILABLE, details: 'gatehouse is shutting down' });
      return;
    }
    const attributes = call.request.attributes;
    const http = attributes?.request?.http;
    const headers = requestHeaders(http);
    const method = http?.method || headers.get(':method');
    const path = http?.path || headers.get(':path');
    if (!method || !path) {
      callback({ code: grpc.status.INVALID_ARGUMENT, details: `CheckRequest lacks attributes.request.http.${method ? 'path' : 'method'}` });
      return;
    }
    const authority = http?.host || headers.get(':authority') || headers.get('host') || '';
    const routes = options.routes.current();
    const namedId = routeIdFrom(attributes);
    const named = namedId === undefined ? undefined : routes.byId(namedId);
    const found = named ? { route: named, params: {}, pathTemplate: named.id } : routes.match({ method, authority, path, headers });
    const refusal = found && 'refused' in found ? found : undefined;
    const matched = found && 'route' in found ? found : undefined;
    options.telemetry.metrics.streamOpened('ext_authz');
    const body = http && (http.rawBody.length > 0 ? Buffer.from(http.rawBody) : http.body.length > 0 ? Buffer.from(http.body, 'utf8') : undefined);
    const abort = new AbortController();
    const ctx = createRequestContext(
      { method, authority, path, scheme: http?.scheme || headers.get(':scheme') || 'http', bodyFollows: body !== undefined },
      headers,
      peerFrom(attributes),
      { routeId: matched?.route.id ?? UNMATCHED_ROUTE_ID, pathTemplate: matched?.pathTemplate ?? UNMATCHED_ROUTE_ID, params: matched?.params ?? {} },
      () => abort.signal,
    );
    const check = new Check(options, ctx, matched?.route, refusal);
    check.signal.addEventListener('abort', () => { abort.abort(check.signal.reason); });
    // Envoy cancels the call when the client goes away (11.20).
    call.on('cancelled', () => { check.cancel(); });
    check.run(body).then(
      (response) => {
        options.telemetry.metrics.streamClosed('ext_authz');
        check.log();
        callback(null, response);
      },
      (error: unknown) => {
        options.telemetry.metrics.streamClosed('ext_authz');
        options.telemetry.metrics.error('authz_error', ctx.routeId);
        const response = check.denied('internal_error', error instanceof Error ? error.message : String(error));
        check.log();
        callback(null, response);
      },
    );
  };
}


