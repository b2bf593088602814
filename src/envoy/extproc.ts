// The ext_proc adapter: one Process stream = one HTTP request = one RequestContext. It turns Envoy's
// messages into chain phases and the chain's outcomes into the answers Envoy expects, following
// ../shared/envoy-behaviours.md (section numbers cited below). Filters never see protobuf.
import { create, fromBinary, type JsonObject } from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import {
  ProcessingMode_BodySendMode,
  ProcessingMode_HeaderSendMode,
  ProcessingModeSchema,
  type ProcessingMode,
} from '../gen/envoy/extensions/filters/http/ext_proc/v3/processing_mode_pb.js';
import {
  BodyMutationSchema,
  BodyResponseSchema,
  CommonResponseSchema,
  HeadersResponseSchema,
  ImmediateResponseSchema,
  ProcessingRequestSchema,
  ProcessingResponseSchema,
  TrailersResponseSchema,
  type HttpHeaders,
  type ProcessingRequest,
  type ProcessingResponse,
} from '../gen/envoy/service/ext_proc/v3/external_processor_pb.js';
import { chainFor, completeFilters, withinBudget, type PhaseResult } from '../pipeline/chain.js';
import { createRequestContext } from '../pipeline/context.js';
import { renderDenial, type DenyReasonCode } from '../pipeline/deny.js';
import type { DenialObserver } from '../security/index.js';
import { HEADER, type HeaderMap, type HeaderSet } from '../pipeline/headers.js';
import { UNMATCHED_ROUTE_ID, type RoutesSource } from '../pipeline/routing.js';
import type { CompiledRoute, Outcome, PeerInfo, Phase, RequestContext } from '../pipeline/types.js';
import type { Decision, ErrorKind, Telemetry } from '../telemetry/types.js';
import { extProcService } from './grpc-services.js';
import { certificateFromAttributes, PEER_CERTIFICATE_ATTRIBUTES } from './peer-certificate.js';
import { fromEnvoyHeaders, httpStatus, immediateResponseHeaders, reportDroppedEdits, toHeaderMutation, type DroppedEdit } from './mutations.js';

/** The key Envoy uses for CEL attributes, whatever the filter instance is named (8.6). */
const ATTRIBUTES_KEY = 'envoy.filters.http.ext_proc';
/** The namespace of the dynamic metadata gatehouse hands Envoy's access log (8.4). */
export const METADATA_NAMESPACE = 'gatehouse';

/**
 * gatehouse's decision for Envoy's access log (%DYNAMIC_METADATA(gatehouse:reason)%), the same shape
 * over ext_proc and ext_authz. The decision id goes with denials only: an allowed request's decision
 * id is its x-request-id (%REQ(X-REQUEST-ID)%), which keeps allow answers cacheable per route.
 */
export function decisionMetadata(routeId: string, decision: Decision, denial?: { reason: string; decisionId: string }): JsonObject {
  const fields: JsonObject = { route_id: routeId, decision };
  if (denial) {
    fields['reason'] = denial.reason;
    fields['decision_id'] = denial.decisionId;
  }
  return { [METADATA_NAMESPACE]: fields };
}

export interface ExtProcOptions {
  readonly routes: RoutesSource;
  readonly telemetry: Telemetry;
  /** false once shutdown starts: new streams are refused with UNAVAILABLE */
  readonly accepting: () => boolean;
  /** told of every denial (security events decide which are suspicious) */
  readonly onDenial?: DenialObserver;
}

type StreamCall = grpc.ServerDuplexStream<ProcessingRequest, ProcessingResponse>;

// Messages that failed to decode are handed to the stream as this marker, so the stream can end
// with a precise INVALID_ARGUMENT instead of grpc-js's generic INTERNAL.
const undecodable = new WeakMap<ProcessingRequest, string>();

/**
 * Answers built once and reused (see `headersAnswer`) are encoded once: their bytes are kept here.
 * Only messages that are never changed after construction may be registered.
 */
const encodedOnce = new WeakMap<ProcessingResponse, Buffer | null>();

/** The Process method with a deserializer that never throws (see `undecodable`). */
export const extProcServiceDefinition: grpc.ServiceDefinition = {
  process: {
    ...extProcService.process,
    responseSerialize: (message: ProcessingResponse): Buffer => {
      const cached = encodedOnce.get(message);
      if (cached) return cached;
      const bytes = extProcService.process.responseSerialize(message);
      if (cached === null) encodedOnce.set(message, bytes);
      return bytes;
    },
    requestDeserialize: (bytes: Buffer): ProcessingRequest => {
      try {
        return fromBinary(ProcessingRequestSchema, bytes, { readUnknownFields: false });
      } catch (error) {
        const marker = create(ProcessingRequestSchema);
        undecodable.set(marker, error instanceof Error ? error.message : String(error));
        return marker;
      }
    },
  },
};

/** Where a stream is: which message it may accept next. */
type StreamStage = 'requestHeaders' | 'request' | 'response' | 'done';

class StreamError extends Error {
  constructor(
    readonly code: grpc.status,
    message: string,
    readonly kind: ErrorKind,
  ) {
    super(message);
  }
}

/** The processing mode gatehouse asks for after request headers, from the route's needs (2.4). */
const modeOverrides = new WeakMap<CompiledRoute, ProcessingMode>();
function modeOverrideFor(route: CompiledRoute | undefined): ProcessingMode {
  const cached = route && modeOverrides.get(route);
  if (cached) return cached;
  // Body modes are always replaced by an override, so they are set explicitly. Response headers are
  // always asked for: the access log and metrics need the status.
  const mode = create(ProcessingModeSchema, {
    requestHeaderMode: ProcessingMode_HeaderSendMode.DEFAULT,
    responseHeaderMode: ProcessingMode_HeaderSendMode.SEND,
    requestBodyMode: route?.needs.requestBody ? ProcessingMode_BodySendMode.BUFFERED : ProcessingMode_BodySendMode.NONE,
    responseBodyMode: route?.needs.responseBody ? ProcessingMode_BodySendMode.BUFFERED : ProcessingMode_BodySendMode.NONE,
    requestTrailerMode: ProcessingMode_HeaderSendMode.SKIP,
    responseTrailerMode: ProcessingMode_HeaderSendMode.SKIP,
  });
  if (route) modeOverrides.set(route, mode);
  return mode;
}

/**
 * A headers answer is a function of the route, the phase and the header edits: a route whose filters
 * make the same edits every time (the usual case: static header rules) gets the same message, built
 * and encoded once. Bounded per route so edits that vary per request (ids, tokens) cannot grow it.
 */
const ANSWERS_PER_ROUTE = 64;
interface HeadersAnswer {
  readonly response: ProcessingResponse;
  readonly dropped: readonly DroppedEdit[];
}
const headersAnswers = new WeakMap<CompiledRoute, Map<string, HeadersAnswer>>();
const unmatchedAnswers = new Map<string, HeadersAnswer>();

function editsKey(phase: string, edits: { removals: readonly string[]; sets: readonly HeaderSet[] }): string {
  let key = phase;
  for (const name of edits.removals) key += `\u0000-${name}`;
  for (const set of edits.sets) key += `\u0000${set.append ? '+' : '='}${set.name}\u0001${set.value}`;
  return key;
}

function headersAnswer(
  route: CompiledRoute | undefined,
  phase: 'requestHeaders' | 'responseHeaders',
  edits: { removals: string[]; sets: HeaderSet[] },
): HeadersAnswer {
  let cache = route ? headersAnswers.get(route) : unmatchedAnswers;
  if (!cache) {
    cache = new Map();
    headersAnswers.set(route!, cache);
  }
  const key = editsKey(phase, edits);
  const hit = cache.get(key);
  if (hit) return hit;
  const { mutation, dropped } = toHeaderMutation(edits, phase === 'requestHeaders' ? 'request' : 'response');
  const common = create(CommonResponseSchema, mutation ? { headerMutation: mutation } : {});
  const response = create(ProcessingResponseSchema, {
    response: { case: phase, value: create(HeadersResponseSchema, { response: common }) },
  });
  if (phase === 'requestHeaders') {
    // Ask for exactly what the route's filters need (2.4); honoured where allow_mode_override is on.
    response.modeOverride = modeOverrideFor(route);
    response.dynamicMetadata = decisionMetadata(route?.id ?? UNMATCHED_ROUTE_ID, 'allow');
  }
  const answer = { response, dropped };
  if (cache.size < ANSWERS_PER_ROUTE) {
    cache.set(key, answer);
    encodedOnce.set(response, null);
  }
  return answer;
}

function attributeString(message: ProcessingRequest, name: string): string | undefined {
  const value = message.attributes[ATTRIBUTES_KEY]?.[name];
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

function peerFrom(message: ProcessingRequest): PeerInfo {
  const sourceAddress = attributeString(message, 'source.address');
  const principal =
    attributeString(message, PEER_CERTIFICATE_ATTRIBUTES.uriSan) ??
    attributeString(message, 'connection.dns_san_peer_certificate') ??
    attributeString(message, PEER_CERTIFICATE_ATTRIBUTES.subject);
  const certificate = certificateFromAttributes((name) => attributeString(message, name));
  return { ...(sourceAddress ? { sourceAddress } : {}), ...(principal ? { principal } : {}), ...(certificate ? { certificate } : {}) };
}

/** The route id Envoy named for this request, from its route name attribute or forwarded metadata. */
function envoyRouteId(message: ProcessingRequest): string | undefined {
  const fromMetadata = message.metadataContext?.filterMetadata[METADATA_NAMESPACE]?.['route_id'];
  if (typeof fromMetadata === 'string' && fromMetadata.length > 0) return fromMetadata;
  return attributeString(message, 'xds.route_name');
}

export class ExtProcStream {
  private stage: StreamStage = 'requestHeaders';
  private ctx: RequestContext | undefined;
  private route: CompiledRoute | undefined;
  /** made when a filter first asks for ctx.signal (an AbortController per stream showed in profiles) */
  private abortController: AbortController | undefined;
  private readonly queue: ProcessingRequest[] = [];
  private busy = false;
  private finished = false;
  private halfClosed = false;
  private decision: Decision = 'allow';
  private reason: DenyReasonCode | undefined;
  private detail: string | undefined;
  private status: number | undefined;
  private readonly phaseMs: Partial<Record<Phase, number>> = {};
  private processingMs = 0;
  private span: ReturnType<Telemetry['tracing']['startRequestSpan']> | undefined;
  /** the response is expected to carry a body we asked for */
  private awaitingResponseBody = false;

  constructor(
    private readonly call: StreamCall,
    private readonly options: ExtProcOptions,
  ) {
    options.telemetry.metrics.streamOpened('ext_proc');
    call.on('data', (message: ProcessingRequest) => {
      this.enqueue(message);
    });
    // Envoy half-closes and then resets (10.4); a client that only half-closes gets the answers
    // still owed, then OK.
    call.on('end', () => {
      this.halfClosed = true;
      this.maybeEndCall();
    });
    // A reset after the last answer is Envoy's normal close; one while a phase is still running
    // means the client went away (10.5): abort the chain's work.
    call.on('cancelled', () => {
      this.finish(this.busy ? 'cancelled' : this.decision);
    });
    call.on('error', () => {
      this.finish(this.busy ? 'cancelled' : this.decision);
    });
  }

  private enqueue(message: ProcessingRequest): void {
    if (this.finished) return;
    this.queue.push(message);
    if (!this.busy) this.drain();
  }

  /** Handles queued messages one at a time, in order; answers leave in the order asked. */
  private drain(): void {
    while (!this.finished && this.queue.length > 0) {
      const message = this.queue.shift()!;
      let pending: Promise<void> | undefined;
      try {
        pending = this.handle(message);
      } catch (error) {
        this.fail(error);
        return;
      }
      if (pending) {
        this.busy = true;
        pending.then(
          () => {
            this.busy = false;
            this.drain();
          },
          (error: unknown) => {
            this.busy = false;
            this.fail(error);
          },
        );
        return;
      }
    }
    this.maybeEndCall();
  }

  private handle(message: ProcessingRequest): Promise<void> | undefined {
    const undecodableReason = undecodable.get(message);
    if (undecodableReason !== undefined) {
      throw new StreamError(grpc.status.INVALID_ARGUMENT, `ProcessingRequest could not be decoded: ${undecodableReason}`, 'malformed_message');
    }
    const request = message.request;
    switch (request.case) {
      case 'requestHeaders':
        this.expect('requestHeaders', 'request_headers');
        return this.onRequestHeaders(message, request.value);
      case 'requestBody':
        this.expect('request', 'request_body');
        return this.onBody('requestBody', Buffer.from(request.value.body));
      case 'requestTrailers':
        this.expect('request', 'request_trailers');
        this.send(create(ProcessingResponseSchema, { response: { case: 'requestTrailers', value: create(TrailersResponseSchema) } }));
        return undefined;
      case 'responseHeaders':
        this.expect('request', 'response_headers');
        return this.onResponseHeaders(request.value);
      case 'responseBody':
        this.expect('response', 'response_body');
        return this.onBody('responseBody', Buffer.from(request.value.body));
      case 'responseTrailers':
        this.expect('response', 'response_trailers');
        this.send(create(ProcessingResponseSchema, { response: { case: 'responseTrailers', value: create(TrailersResponseSchema) } }));
        return undefined;
      case undefined:
        throw new StreamError(grpc.status.INVALID_ARGUMENT, 'ProcessingRequest has no request set (request_headers, request_body, ...)', 'malformed_message');
    }
  }

  /** Envoy's message order (1.2–1.17): request headers first, then request body/trailers, then response. */
  private expect(stage: StreamStage, what: string): void {
    if (this.stage === stage) return;
    const where =
      this.stage === 'requestHeaders'
        ? 'before request_headers'
        : this.stage === 'response'
          ? 'after response_headers'
          : this.stage === 'done'
            ? 'after the request was decided'
            : 'before response_headers';
    throw new StreamError(grpc.status.FAILED_PRECONDITION, `${what} received ${where}`, 'out_of_order_message');
  }

  private onRequestHeaders(message: ProcessingRequest, headers: HttpHeaders): Promise<void> | undefined {
    const started = performance.now();
    const map = fromEnvoyHeaders(headers.headers);
    const method = map.get(':method');
    const path = map.get(':path');
    if (!method || !path) {
      throw new StreamError(grpc.status.INVALID_ARGUMENT, `request_headers lacks ${method ? ':path' : ':method'}`, 'malformed_message');
    }
    const authority = map.get(':authority') ?? map.get('host') ?? '';
    const routes = this.options.routes.current();
    const namedId = envoyRouteId(message);
    const named = namedId === undefined ? undefined : routes.byId(namedId);
    const found = named ? { route: named, params: {}, pathTemplate: named.id } : routes.match({ method, authority, path, headers: map });
    const refusal = found && 'refused' in found ? found : undefined;
    const matched = found && 'route' in found ? found : undefined;
    this.route = matched?.route;
    this.ctx = createRequestContext(
      { method, authority, path, scheme: map.get(':scheme') ?? 'http', bodyFollows: !headers.endOfStream },
      map,
      peerFrom(message),
      {
        routeId: matched?.route.id ?? UNMATCHED_ROUTE_ID,
        pathTemplate: matched?.pathTemplate ?? UNMATCHED_ROUTE_ID,
        params: matched?.params ?? {},
      },
      () => (this.abortController ??= new AbortController()).signal,
    );
    this.span = this.options.telemetry.tracing.startRequestSpan('gatehouse ext_proc', map.get(HEADER.traceparent), map.get(HEADER.tracestate));
    this.stage = 'request';
    this.awaitingResponseBody = false;

    if (refusal) {
      this.deny('requestHeaders', refusal.refused, refusal.detail, {}, started);
      return undefined;
    }
    if (!this.route) {
      if (routes.unmatched === 'deny') {
        this.deny('requestHeaders', 'route_not_found', undefined, {}, started);
        return undefined;
      }
      // pass: let it through untouched and ask for nothing more than the response status.
      this.answerHeaders('requestHeaders', started);
      return undefined;
    }
    return this.runPhase('requestHeaders', started, undefined, () => {
      this.answerHeaders('requestHeaders', started);
    });
  }

  private onResponseHeaders(headers: HttpHeaders): Promise<void> | undefined {
    const started = performance.now();
    const ctx = this.ctx!;
    const map = fromEnvoyHeaders(headers.headers);
    const status = Number(map.get(':status'));
    this.status = Number.isInteger(status) ? status : undefined;
    if (this.status !== undefined) ctx.responseStatus = this.status;
    ctx.responseHeaders = map;
    this.stage = 'response';
    this.awaitingResponseBody = !headers.endOfStream && (this.route?.needs.responseBody ?? false);
    if (!this.route) {
      this.answerHeaders('responseHeaders', started);
      return undefined;
    }
    return this.runPhase('responseHeaders', started, undefined, () => {
      this.answerHeaders('responseHeaders', started);
    });
  }

  private onBody(phase: 'requestBody' | 'responseBody', body: Buffer): Promise<void> | undefined {
    const started = performance.now();
    const route = this.route;
    if (!route) {
      this.answerBody(phase, undefined, started);
      return undefined;
    }
    if (phase === 'responseBody') this.awaitingResponseBody = false;
    if (body.length > route.maxBodyBytes) {
      this.deny(phase, 'body_too_large', `${phase === 'requestBody' ? 'request' : 'response'} body of ${body.length} bytes exceeds ${route.maxBodyBytes}`, {}, started);
      return undefined;
    }
    return this.runPhase(phase, started, body, (result) => {
      this.answerBody(phase, result.body, started);
    });
  }

  /**
   * Runs a phase of the chain and hands a `continue` to `onContinue`; a deny or respond becomes an
   * immediate response. A chain that goes async races the route's budget, so Envoy always gets an
   * answer before its message_timeout (4.1–4.3) and the client a stable reason instead of a bare 504.
   */
  private runPhase(phase: Phase, started: number, body: Buffer | undefined, onContinue: (result: PhaseResult) => void): Promise<void> | undefined {
    const ctx = this.ctx!;
    const route = this.route!;
    const settle = (result: PhaseResult): void => {
      if (this.finished || this.stage === 'done') return;
      const outcome: Outcome = result.outcome;
      switch (outcome.kind) {
        case 'continue':
          onContinue(result);
          return;
        case 'deny':
          this.deny(phase, outcome.reason, outcome.detail, outcome.headers ?? {}, started);
          return;
        case 'respond':
          this.respond(phase, outcome.status, outcome.headers ?? {}, outcome.body ?? Buffer.alloc(0), started);
          return;
      }
    };
    const result = withinBudget(chainFor(route).run(phase, ctx, body), route.budgetMs, phase, (reason) => {
      this.options.telemetry.metrics.error('budget_exceeded', route.id);
      this.abortController?.abort(reason);
    }, () => {
      this.options.telemetry.metrics.error('filter_error', route.id);
    });
    if (!('then' in result)) {
      settle(result);
      return undefined;
    }
    return result.then(settle);
  }

  private answerHeaders(phase: 'requestHeaders' | 'responseHeaders', started: number): void {
    const ctx = this.ctx!;
    const edits = phase === 'requestHeaders' ? ctx.requestEdits : ctx.responseEdits;
    const { response, dropped } = headersAnswer(this.route, phase, edits.drain());
    reportDroppedEdits(this.options.telemetry, this.ctx?.routeId ?? UNMATCHED_ROUTE_ID, this.ctx?.requestId, dropped);
    this.recordPhase(phase, started);
    this.send(response);
    if (phase === 'responseHeaders' && !this.awaitingResponseBody) this.complete();
  }

  private answerBody(phase: 'requestBody' | 'responseBody', replacement: Buffer | undefined, started: number): void {
    const ctx = this.ctx!;
    const edits = phase === 'requestBody' ? ctx.requestEdits : ctx.responseEdits;
    if (replacement) {
      // In BUFFERED mode Envoy keeps content-length and fails the request if it disagrees with the
      // new body (6.2): set it in the same answer whenever the message had one.
      const headers: HeaderMap | undefined = phase === 'requestBody' ? ctx.requestHeaders : ctx.responseHeaders;
      if (headers?.has(HEADER.contentLength)) edits.set(HEADER.contentLength, String(replacement.length));
    }
    const { mutation, dropped } = toHeaderMutation(edits.drain(), phase === 'requestBody' ? 'request' : 'response');
    reportDroppedEdits(this.options.telemetry, this.ctx?.routeId ?? UNMATCHED_ROUTE_ID, this.ctx?.requestId, dropped);
    const common = create(CommonResponseSchema, {
      ...(mutation ? { headerMutation: mutation } : {}),
      ...(replacement ? { bodyMutation: create(BodyMutationSchema, { mutation: { case: 'body', value: replacement } }) } : {}),
    });
    this.recordPhase(phase, started);
    this.send(create(ProcessingResponseSchema, { response: { case: phase, value: create(BodyResponseSchema, { response: common }) } }));
    if (phase === 'responseBody') this.complete();
  }

  private deny(phase: Phase, reason: DenyReasonCode, detail: string | undefined, headers: Readonly<Record<string, string>>, started: number): void {
    const requestId = this.ctx?.requestId ?? 'unknown';
    const rendered = renderDenial(reason, requestId, headers);
    this.decision = 'deny';
    this.reason = reason;
    this.detail = detail;
    if (this.ctx) this.options.onDenial?.(this.ctx, reason, detail, this.span?.traceId);
    this.immediate(phase, rendered.status, rendered.headers, rendered.body, `gatehouse_${reason}`, started);
  }

  private respond(phase: Phase, status: number, headers: Readonly<Record<string, string>>, body: Buffer, started: number): void {
    this.decision = 'respond';
    this.immediate(phase, status, headers, body, 'gatehouse_response', started);
  }

  /** Envoy marks processing complete and sends the local reply (7.2); nothing more will come. */
  private immediate(phase: Phase, status: number, headers: Readonly<Record<string, string>>, body: Buffer, details: string, started: number): void {
    this.status = status;
    this.recordPhase(phase, started);
    this.send(
      create(ProcessingResponseSchema, {
        response: {
          case: 'immediateResponse',
          value: create(ImmediateResponseSchema, {
            status: httpStatus(status),
            headers: immediateResponseHeaders(headers),
            body,
            details,
          }),
        },
        dynamicMetadata: this.metadata(),
      }),
    );
    this.complete();
  }

  private metadata(): JsonObject {
    const routeId = this.ctx?.routeId ?? UNMATCHED_ROUTE_ID;
    return decisionMetadata(routeId, this.decision, this.reason ? { reason: this.reason, decisionId: this.ctx?.requestId ?? '' } : undefined);
  }


  private recordPhase(phase: Phase, started: number): void {
    const ms = performance.now() - started;
    this.phaseMs[phase] = (this.phaseMs[phase] ?? 0) + ms;
    this.processingMs += ms;
    this.options.telemetry.metrics.phaseDuration(this.ctx?.routeId ?? UNMATCHED_ROUTE_ID, phase, ms / 1000);
  }

  private send(response: ProcessingResponse): void {
    if (this.finished) return;
    this.call.write(response);
  }

  /** Everything this request needs has been answered: write its log line now. */
  private complete(): void {
    this.stage = 'done';
    this.finish(this.decision);
  }

  private fail(error: unknown): void {
    const streamError =
      error instanceof StreamError ? error : new StreamError(grpc.status.INTERNAL, `gatehouse failed: ${error instanceof Error ? error.message : String(error)}`, 'stream_error');
    this.options.telemetry.metrics.error(streamError.kind, this.ctx?.routeId ?? UNMATCHED_ROUTE_ID);
    this.options.telemetry.logger.warn({ request_id: this.ctx?.requestId, grpc_code: streamError.code, err: streamError.message }, 'ext_proc stream ended with an error');
    this.decision = 'error';
    this.detail = streamError.message;
    if (!this.finished) {
      this.finish('error');
      this.call.emit('error', { code: streamError.code, details: streamError.message, metadata: new grpc.Metadata() });
      this.call.end();
    }
  }

  private maybeEndCall(): void {
    if (this.halfClosed && !this.busy && this.queue.length === 0) {
      if (!this.finished) this.finish(this.decision);
      this.call.end();
    }
  }

  private finish(decision: Decision): void {
    if (this.finished) return;
    this.finished = true;
    this.queue.length = 0;
    if (decision === 'cancelled' && this.abortController && !this.abortController.signal.aborted) this.abortController.abort(new Error('stream cancelled'));
    this.stage = 'done';
    const telemetry = this.options.telemetry;
    telemetry.metrics.streamClosed('ext_proc');
    const ctx = this.ctx;
    if (!ctx) return; // a stream that never carried request headers is no HTTP request
    const entry = {
      protocol: 'ext_proc' as const,
      requestId: ctx.requestId,
      ...(this.span ? { traceId: this.span.traceId } : {}),
      routeId: ctx.routeId,
      pathTemplate: ctx.pathTemplate,
      method: ctx.method,
      authority: ctx.authority,
      path: ctx.path,
      ...(this.status !== undefined ? { status: this.status } : {}),
      decision,
      ...(this.reason ? { reason: this.reason } : {}),
      ...(this.detail ? { detail: this.detail } : {}),
      processingMs: this.processingMs,
      phases: this.phaseMs,
      ...(ctx.peer.sourceAddress ? { sourceAddress: ctx.peer.sourceAddress } : {}),
      ...(ctx.peer.principal ? { principal: ctx.peer.principal } : {}),
      ...(ctx.actions ? { actions: ctx.actions } : {}),
    };
    telemetry.accessLog(entry);
    telemetry.metrics.requestCompleted(entry);
    if (this.route) completeFilters(this.route, ctx, { decision, ...(this.status !== undefined ? { status: this.status } : {}) }, telemetry);
    this.span?.end(decision, this.status);
  }
}

export function extProcHandler(options: ExtProcOptions): grpc.handleBidiStreamingCall<ProcessingRequest, ProcessingResponse> {
  return (call) => {
    if (!options.accepting()) {
      call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'gatehouse is shutting down', metadata: new grpc.Metadata() });
      return;
    }
    new ExtProcStream(call, options);
  };
}

