// The ext_authz adapter: one Check = one HTTP request, run through the same chain's request phases
// (headers, and the body when Envoy sends one). It suits routes that need no response processing
// and no body rewrite; those need ext_proc. Follows ../shared/envoy-behaviours.md section 11.
import { create, type JsonObject } from '@bufbuild/protobuf';
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { HeaderValueOptionSchema, HeaderValueSchema, type HeaderValueOption } from '../gen/envoy/config/core/v3/base_pb.js';
import {
  CheckRequestSchema,
  CheckResponseSchema,
  DeniedHttpResponseSchema,
  OkHttpResponseSchema,
  type CheckRequest,
  type CheckResponse,
} from '../gen/envoy/service/auth/v3/external_auth_pb.js';
import type { AttributeContext, AttributeContext_HttpRequest } from '../gen/envoy/service/auth/v3/attribute_context_pb.js';
import { StatusSchema } from '../gen/google/rpc/status_pb.js';
import { renderDenial } from '../pipeline/deny.js';
import type { DenialObserver } from '../security/index.js';
import { HEADER, HeaderMap, type HeaderSet } from '../pipeline/headers.js';
import { UNMATCHED_ROUTE_ID, type RoutesSource } from '../pipeline/routing.js';
import type { CompiledRoute, PeerInfo } from '../pipeline/types.js';
import { parseTraceparent } from '../telemetry/tracing.js';
import type { Telemetry } from '../telemetry/types.js';
import { decisionMetadata, METADATA_NAMESPACE } from './decision-metadata.js';
import { authorizationService, lenientDeserializer } from './grpc-services.js';
import { declaredLength, declaresBody, RequestLifecycle, type Answer, type BodyDelivery } from './lifecycle.js';
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

/**
 * The body as the Check carries it: raw_body (pack_as_bytes), else the `body` string, which Envoy
 * makes valid UTF-8 by replacing the bytes that are not (11.6): `asText` says it may not be the bytes
 * the upstream gets.
 */
function checkBody(http: AttributeContext_HttpRequest | undefined): { readonly bytes: Buffer; readonly asText: boolean } | undefined {
  if (!http) return undefined;
  if (http.rawBody.length > 0) return { bytes: Buffer.from(http.rawBody), asText: false };
  return http.body.length > 0 ? { bytes: Buffer.from(http.body, 'utf8'), asText: true } : undefined;
}

/**
 * What Envoy delivered of a body the request declares (11.x with_request_body): none (no
 * with_request_body), part (allow_partial_message cut it at max_request_bytes, which Envoy marks
 * with x-envoy-auth-partial-body: true), or all of it.
 */
function authzBodyDelivery(headers: HeaderMap, sent: ReturnType<typeof checkBody>): BodyDelivery | undefined {
  if (sent === undefined) {
    return declaresBody(headers) ? { kind: 'missing', detail: `the request declares a body (content-length ${headers.get(HEADER.contentLength) ?? 'none'}, transfer-encoding ${headers.get(HEADER.transferEncoding) ?? 'none'}) and the Check carries none` } : undefined;
  }
  // the string form is sanitised to UTF-8 by Envoy: a digest or an envelope over it checks other bytes
  if (sent.asText) return { kind: 'missing', detail: 'Envoy sent the body as text (`body`), not its bytes: set with_request_body.pack_as_bytes' };
  const body = sent.bytes;
  if (headers.getAll(HEADER.authzPartialBody).includes('true')) return { kind: 'partial', detail: `Envoy sent the first ${body.length} bytes (x-envoy-auth-partial-body: true)` };
  const declared = declaredLength(headers);
  if (declared !== undefined && body.length !== declared) return { kind: 'partial', detail: `Envoy sent ${body.length} bytes of a content-length ${declared} body` };
  return { kind: 'whole', body };
}

/** A denied Check: gatehouse's status, headers and body for the client. */
function deniedResponse(denial: { readonly status: number; readonly headers: Readonly<Record<string, string>>; readonly body: Buffer }, metadata: JsonObject): CheckResponse {
  return create(CheckResponseSchema, {
    status: create(StatusSchema, { code: grpcCodeFor(denial.status) }),
    httpResponse: {
      case: 'deniedResponse',
      value: create(DeniedHttpResponseSchema, {
        status: httpStatus(denial.status),
        // Envoy drops denial headers with append: true (11.17): send every one as a set.
        headers: Object.entries(denial.headers).map(([key, value]) =>
          create(HeaderValueOptionSchema, { header: create(HeaderValueSchema, { key, value }), append: false }),
        ),
        body: denial.body.toString('utf8'),
      }),
    },
    dynamicMetadata: metadata,
  });
}

function checkResponse(lifecycle: RequestLifecycle, answer: Answer): CheckResponse {
  const ctx = lifecycle.ctx;
  const metadata = decisionMetadata(ctx.routeId, lifecycle.decision, lifecycle.reason ? { reason: lifecycle.reason, decisionId: ctx.decisionId } : undefined);
  if (answer.kind === 'immediate') return deniedResponse(answer, metadata);
  return create(CheckResponseSchema, {
    status: create(StatusSchema, { code: GRPC_OK }),
    httpResponse: { case: 'okResponse', value: create(OkHttpResponseSchema, okEdits(lifecycle)) },
    dynamicMetadata: metadata,
  });
}

function okEdits(lifecycle: RequestLifecycle): { headers: HeaderValueOption[]; headersToRemove: string[] } {
  const ctx = lifecycle.ctx;
  const accepted = acceptedEdits(ctx.requestEdits.drain(), 'request');
  reportDroppedEdits(lifecycle.telemetry, ctx.routeId, ctx.requestId, accepted.dropped);
  const edits = removalsBeforeSets(accepted);
  return { headers: okHeaders(edits.sets, ctx.requestHeaders), headersToRemove: edits.removals };
}

/** The request phases of one Check: headers, then the body when the route checks it. */
async function decide(lifecycle: RequestLifecycle, delivery: BodyDelivery | undefined): Promise<Answer> {
  const headers = await lifecycle.requestHeaders();
  if (headers.kind !== 'continue' || delivery === undefined) return headers;
  const body = await lifecycle.body('requestBody', delivery);
  if (body.kind === 'continue' && body.body !== undefined) return lifecycle.deny('internal_error', 'a filter rewrote the body, which ext_authz cannot do: serve this route over ext_proc');
  return body;
}

/** An undecodable Check is handed over as an empty marker, to be refused rather than failed. */
const checkRequests = lenientDeserializer(CheckRequestSchema);

/** The Check method with a deserializer that never throws: an undecodable Check is refused, never INTERNAL. */
export const authorizationServiceDefinition: grpc.ServiceDefinition = {
  check: { ...authorizationService.check, requestDeserialize: checkRequests.deserialize },
};

/**
 * A Check that cannot be decoded (a string field with bytes that are not UTF-8: Envoy sends the
 * body as `body` unless pack_as_bytes), or that names no method or path (an HTTP/2 CONNECT has no
 * :path), is denied, not failed: a gRPC error would let the request through under
 * failure_mode_allow.
 */
function malformedCheckDenial(detail: string, telemetry: Telemetry): CheckResponse {
  telemetry.metrics.error('malformed_message', UNMATCHED_ROUTE_ID);
  telemetry.logger.warn({ err: detail }, 'ext_authz Check is malformed: denied');
  const decisionId = randomUUID();
  return deniedResponse(renderDenial('bad_request_headers', decisionId), decisionMetadata(UNMATCHED_ROUTE_ID, 'deny', { reason: 'bad_request_headers', decisionId }));
}

/** Routes already logged as acting on answers ext_authz never shows (once per route of a table, not per request). */
const warnedUnseen = new WeakSet<CompiledRoute>();

/**
 * An allowed request on a route whose filters act on the upstream's answer: those phases never run
 * over ext_authz (no response header edits, no breaker fed, no sealed body), so operators see it,
 * counted per request and logged once per route, and move the route to ext_proc.
 */
function responsePhasesUnseen(lifecycle: RequestLifecycle, telemetry: Telemetry): void {
  const route = lifecycle.route!;
  telemetry.metrics.error('response_phases_unseen', route.id);
  if (warnedUnseen.has(route)) return;
  warnedUnseen.add(route);
  const filters = route.filters.filter((f) => f.filter.onResponseHeaders !== undefined || f.filter.onResponseBody !== undefined).map((f) => f.name);
  telemetry.logger.warn({ route_id: route.id, filters }, "ext_authz serves a route whose filters act on the upstream's answer, which ext_authz never sees: serve it over ext_proc");
}

export function extAuthzHandler(options: ExtAuthzOptions): grpc.handleUnaryCall<CheckRequest, CheckResponse> {
  return (call, callback) => {
    if (!options.accepting()) {
      callback({ code: grpc.status.UNAVAILABLE, details: 'gatehouse is shutting down' });
      return;
    }
    const broken = checkRequests.undecodable(call.request);
    if (broken !== undefined) {
      callback(null, malformedCheckDenial(`CheckRequest could not be decoded: ${broken}`, options.telemetry));
      return;
    }
    const attributes = call.request.attributes;
    const http = attributes?.request?.http;
    const headers = requestHeaders(http);
    const method = http?.method || headers.get(':method');
    const path = http?.path || headers.get(':path');
    if (!method || !path) {
      callback(null, malformedCheckDenial(`CheckRequest lacks attributes.request.http.${method ? 'path' : 'method'}`, options.telemetry));
      return;
    }
    const body = checkBody(http);
    const namedRouteId = routeIdFrom(attributes);
    const lifecycle = new RequestLifecycle(options, 'ext_authz', options.routes.current(), {
      protocol: 'ext_authz',
      // a body is declared by the request's own headers, whether or not Envoy forwarded it
      line: { method, authority: http?.host || headers.get(':authority') || headers.get('host') || '', path, scheme: http?.scheme || headers.get(':scheme') || 'http', bodyFollows: body !== undefined || declaresBody(headers) },
      headers,
      peer: peerFrom(attributes),
      ...(namedRouteId === undefined ? {} : { namedRouteId }),
    });
    // ext_authz starts no span of its own: the trace is the caller's (Envoy's tracer, when on)
    const traceId = parseTraceparent(headers.get(HEADER.traceparent))?.traceId;
    if (traceId !== undefined) lifecycle.traceId = traceId;
    options.telemetry.metrics.streamOpened('ext_authz');
    let cancelled = false;
    // Envoy cancels the call when the client goes away (11.20).
    call.on('cancelled', () => {
      cancelled = true;
      lifecycle.abort(new Error('check cancelled'));
    });
    const started = performance.now();
    const end = (answer: Answer): void => {
      options.telemetry.metrics.streamClosed('ext_authz');
      if (answer.kind === 'continue' && lifecycle.actsOnResponse()) responsePhasesUnseen(lifecycle, options.telemetry);
      const response = checkResponse(lifecycle, answer);
      lifecycle.recordPhase('requestHeaders', started);
      // ext_authz never sees the upstream's answer: an allowed request is logged without a status
      lifecycle.finish(cancelled ? 'cancelled' : lifecycle.decision, lifecycle.decision === 'allow' ? undefined : lifecycle.status);
      callback(null, response);
    };
    decide(lifecycle, authzBodyDelivery(headers, body)).then(end, (error: unknown) => {
      options.telemetry.metrics.error('authz_error', lifecycle.ctx.routeId);
      end(lifecycle.deny('internal_error', error instanceof Error ? error.message : String(error)));
    });
  };
}
