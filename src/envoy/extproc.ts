// The ext_proc adapter: one Process stream = one HTTP request = one RequestContext. It turns Envoy's
// messages into chain phases and the chain's outcomes into the answers Envoy expects, following
// ../shared/envoy-behaviours.md (section numbers cited below). Filters never see protobuf.
import * as grpc from '@grpc/grpc-js';
import type { HttpHeaders, ProcessingRequest, ProcessingResponse } from '../gen/envoy/service/ext_proc/v3/external_processor_pb.js';
import type { DenialObserver } from '../security/index.js';
import { HEADER, type HeaderMap } from '../pipeline/headers.js';
import { UNMATCHED_ROUTE_ID, type RoutesSource } from '../pipeline/routing.js';
import type { Phase } from '../pipeline/types.js';
import type { Decision, ErrorKind, Telemetry } from '../telemetry/types.js';
import { decisionMetadata } from './decision-metadata.js';
import { bodyAnswer, headersAnswer, immediateAnswer, processingRequests, trailersAnswer, withMetadata } from './extproc-answers.js';
import { bodyDelivery, envoyRouteId, peerFrom } from './extproc-messages.js';
import { declaredLength, RequestLifecycle, type Answer } from './lifecycle.js';
import { fromEnvoyHeaders, reportDroppedEdits } from './mutations.js';

export interface ExtProcOptions {
  readonly routes: RoutesSource;
  readonly telemetry: Telemetry;
  /** false once shutdown starts: new streams are refused with UNAVAILABLE */
  readonly accepting: () => boolean;
  /** told of every denial (security events decide which are suspicious) */
  readonly onDenial?: DenialObserver;
  /** bounds on what Envoy (or anyone reaching the port) can make gatehouse hold */
  readonly limits?: StreamLimits;
}

export interface StreamLimits {
  /** open Process streams at once, over every connection; more are refused RESOURCE_EXHAUSTED */
  readonly maxStreams: number;
  /** a stream with no message for this long is ended DEADLINE_EXCEEDED (longer than the slowest upstream) */
  readonly idleTimeoutMs: number;
}

export const DEFAULT_STREAM_LIMITS: StreamLimits = Object.freeze({ maxStreams: 20_000, idleTimeoutMs: 300_000 });

type StreamCall = grpc.ServerDuplexStream<ProcessingRequest, ProcessingResponse>;

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

/**
 * Where a body of one direction is, on a route that checks it: none (the headers ended the
 * message), expected (the headers said more follows), or checked whole; on a route that does not
 * check it, every chunk Envoy sends (whatever mode it runs) is passed through unchanged.
 */
type BodyState = 'none' | 'expected' | 'checked' | 'passthrough';

function bodyStateAfterHeaders(needed: boolean, endOfStream: boolean): BodyState {
  if (!needed) return 'passthrough';
  return endOfStream ? 'none' : 'expected';
}

export class ExtProcStream {
  private stage: StreamStage = 'requestHeaders';
  private lifecycle: RequestLifecycle | undefined;
  private readonly queue: ProcessingRequest[] = [];
  private busy = false;
  private finished = false;
  private halfClosed = false;
  private span: ReturnType<Telemetry['tracing']['startRequestSpan']> | undefined;
  /** where each direction's body is (see BodyState) */
  private readonly bodies: Record<'requestBody' | 'responseBody', BodyState> = { requestBody: 'none', responseBody: 'none' };
  /** Envoy sent a body message on this stream: it honours the body modes gatehouse asks for */
  private sawBodyMessage = false;
  /**
   * Ends the stream when Envoy sends nothing for limits.idleTimeoutMs: refreshed by each message,
   * cleared at the end. A timer per stream rather than a registry of streams: a registry kept every
   * request's objects reachable until its stream ended, which cost the headers-only route about a
   * third of its throughput in young-generation GC (measured: 60% of the ceiling against 95%).
   */
  private readonly idleTimer: NodeJS.Timeout;

  constructor(
    private readonly call: StreamCall,
    private readonly options: ExtProcOptions,
    private readonly onEnd: () => void = () => undefined,
    idleTimeoutMs: number = DEFAULT_STREAM_LIMITS.idleTimeoutMs,
  ) {
    options.telemetry.metrics.streamOpened('ext_proc');
    this.idleTimer = setTimeout(() => {
      this.expireIdle(idleTimeoutMs);
    }, idleTimeoutMs);
    this.idleTimer.unref();
    call.on('data', (message: ProcessingRequest) => {
      this.idleTimer.refresh();
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
      this.finish(this.busy ? 'cancelled' : undefined);
    });
    call.on('error', () => {
      this.finish(this.busy ? 'cancelled' : undefined);
    });
  }

  /** The stream sat idle past the limit: end it (Envoy has long given up on it, or never will send). */
  private expireIdle(idleMs: number): void {
    if (this.finished) return;
    this.options.telemetry.metrics.error('stream_idle_timeout', this.lifecycle?.ctx.routeId ?? UNMATCHED_ROUTE_ID);
    this.lifecycle?.failed(`no message from Envoy for ${idleMs} ms`);
    this.finish('cancelled');
    this.call.emit('error', { code: grpc.status.DEADLINE_EXCEEDED, details: `gatehouse: the stream was idle for ${idleMs} ms`, metadata: new grpc.Metadata() });
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
    const undecodableReason = processingRequests.undecodable(message);
    if (undecodableReason !== undefined) {
      throw new StreamError(grpc.status.INVALID_ARGUMENT, `ProcessingRequest could not be decoded: ${undecodableReason}`, 'malformed_message');
    }
    // After an immediate response Envoy sends nothing more (1.18) and ignores what comes (3.6): a
    // client that sent ahead is ignored the same way.
    if (this.stage === 'done') return undefined;
    const request = message.request;
    switch (request.case) {
      case 'requestHeaders':
        this.expect('requestHeaders', 'request_headers');
        return this.onRequestHeaders(message, request.value);
      case 'requestBody':
        // the request direction may still send after response headers (1.17)
        this.expect('request', 'request_body', 'response');
        this.sawBodyMessage = true;
        return this.onBody('requestBody', Buffer.from(request.value.body), request.value.endOfStream);
      case 'requestTrailers':
        this.expect('request', 'request_trailers', 'response');
        return this.onRequestTrailers();
      case 'responseHeaders':
        this.expect('request', 'response_headers');
        return this.onResponseHeaders(request.value);
      case 'responseBody':
        this.expect('response', 'response_body');
        this.sawBodyMessage = true;
        return this.onBody('responseBody', Buffer.from(request.value.body), request.value.endOfStream);
      case 'responseTrailers':
        this.expect('response', 'response_trailers');
        return this.onResponseTrailers();
      case undefined:
        throw new StreamError(grpc.status.INVALID_ARGUMENT, 'ProcessingRequest has no request set (request_headers, request_body, ...)', 'malformed_message');
    }
  }

  /** Envoy's message order (1.2–1.17): request headers first, then request body/trailers, then response. */
  private expect(stage: StreamStage, what: string, alsoIn?: StreamStage): void {
    if (this.stage === stage || (alsoIn !== undefined && this.stage === alsoIn)) return;
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
    const namedRouteId = envoyRouteId(message);
    // A request without :method or :path (an HTTP/2 CONNECT has no :path) cannot be routed: it is
    // denied 400 like any request, never failed, since a gRPC error passes it under
    // failure_mode_allow: true.
    const malformed = !method || !path ? `request_headers lacks ${method ? ':path' : ':method'}` : undefined;
    const lifecycle = new RequestLifecycle(this.options, 'ext_proc', this.options.routes.current(), {
      protocol: 'ext_proc',
      line: { method: method ?? '', authority: map.get(':authority') ?? map.get('host') ?? '', path: path ?? '', scheme: map.get(':scheme') ?? 'http', bodyFollows: !headers.endOfStream },
      headers: map,
      peer: peerFrom(message),
      ...(namedRouteId === undefined ? {} : { namedRouteId }),
      ...(malformed === undefined ? {} : { malformed }),
    });
    this.lifecycle = lifecycle;
    this.span = this.options.telemetry.tracing.startRequestSpan('gatehouse ext_proc', map.get(HEADER.traceparent), map.get(HEADER.tracestate));
    lifecycle.traceId = this.span.traceId;
    this.stage = 'request';
    this.bodies.requestBody = bodyStateAfterHeaders(lifecycle.needs('requestBody'), headers.endOfStream);
    return this.answer('requestHeaders', started, lifecycle.requestHeaders(), () => {
      this.answerHeaders('requestHeaders', started);
    });
  }

  /**
   * A body message of either direction. On a route that checks the body, the first message must be
   * the whole body (else the lifecycle refuses it) and bytes after it are refused; on any other, every
   * chunk is answered unchanged, whatever mode Envoy runs. The response's body ends the request.
   */
  private onBody(phase: 'requestBody' | 'responseBody', body: Buffer, endOfStream: boolean): Promise<void> | undefined {
    const started = performance.now();
    const lifecycle = this.lifecycle!;
    const direction = phase === 'requestBody' ? 'request' : 'response';
    const ends = phase === 'responseBody';
    const state = this.bodies[phase];
    if (state !== 'expected') {
      if (state === 'passthrough' || body.length === 0) {
        this.answerBody(phase, undefined, started);
        if (ends && endOfStream) this.complete();
        return undefined;
      }
      // bytes beyond the body that was checked (or than the headers announced) were never verified
      this.refuseUndelivered(phase, `${body.length} ${direction} body bytes after the checked body`, started, 'partial');
      return undefined;
    }
    this.bodies[phase] = 'checked';
    const delivery = bodyDelivery(direction, body, endOfStream, declaredLength(phase === 'requestBody' ? lifecycle.ctx.requestHeaders : lifecycle.ctx.responseHeaders));
    return this.answer(phase, started, lifecycle.body(phase, delivery), (replacement) => {
      this.answerBody(phase, replacement, started);
      if (ends) this.complete();
    });
  }

  private onRequestTrailers(): Promise<void> | undefined {
    const started = performance.now();
    if (this.bodies.requestBody === 'expected') {
      this.refuseUndelivered('requestBody', 'request trailers came before any request body', started);
      return undefined;
    }
    this.send(trailersAnswer('requestTrailers'));
    return undefined;
  }

  private onResponseHeaders(headers: HttpHeaders): Promise<void> | undefined {
    const started = performance.now();
    const lifecycle = this.lifecycle!;
    // A route that checks the request body and never got it: the upstream's answer is not released.
    if (this.bodies.requestBody === 'expected') {
      this.refuseUndelivered('requestBody', 'response headers came before any request body (mode_override not honoured?)', started);
      return undefined;
    }
    const map = fromEnvoyHeaders(headers.headers);
    const status = Number(map.get(':status'));
    this.stage = 'response';
    this.bodies.responseBody = bodyStateAfterHeaders(lifecycle.needs('responseBody'), headers.endOfStream);
    if (this.bodies.responseBody === 'expected' && !this.sawBodyMessage) {
      // Envoy has shown no sign of honouring the body modes asked for: the body this route must
      // rewrite (seal) could pass in clear. Refuse rather than hope.
      this.refuseUndelivered('responseBody', 'no body message on this stream: Envoy may not send the response body', started);
      return undefined;
    }
    return this.answer('responseHeaders', started, lifecycle.responseHeaders(map, Number.isInteger(status) ? status : undefined), () => {
      this.answerHeaders('responseHeaders', started);
    });
  }

  private onResponseTrailers(): Promise<void> | undefined {
    const started = performance.now();
    if (this.bodies.responseBody === 'expected') {
      this.refuseUndelivered('responseBody', 'response trailers came before any response body', started);
      return undefined;
    }
    this.send(trailersAnswer('responseTrailers'));
    this.complete();
    return undefined;
  }

  /** A body the route checks was not delivered whole: the lifecycle's refusal, at once. */
  private refuseUndelivered(phase: 'requestBody' | 'responseBody', detail: string, started: number, kind: 'missing' | 'partial' = 'missing'): void {
    const answer = this.lifecycle!.body(phase, { kind, detail });
    if ('then' in answer || answer.kind !== 'immediate') throw new Error('an undelivered body is refused synchronously');
    this.immediate(phase, answer, started);
  }

  /** Sends a phase's answer: a continue through `onContinue`, a denial or response as an immediate response. */
  private answer(phase: Phase, started: number, answer: Answer | Promise<Answer>, onContinue: (body: Buffer | undefined) => void): Promise<void> | undefined {
    const settle = (settled: Answer): void => {
      if (this.finished || this.stage === 'done') return;
      if (settled.kind === 'continue') onContinue(settled.body);
      else this.immediate(phase, settled, started);
    };
    if (!('then' in answer)) {
      settle(answer);
      return undefined;
    }
    return answer.then(settle);
  }

  private answerHeaders(phase: 'requestHeaders' | 'responseHeaders', started: number): void {
    const lifecycle = this.lifecycle!;
    const ctx = lifecycle.ctx;
    const edits = phase === 'requestHeaders' ? ctx.requestEdits : ctx.responseEdits;
    const { response, dropped } = headersAnswer(lifecycle.route!, phase, edits.drain());
    reportDroppedEdits(this.options.telemetry, ctx.routeId, ctx.requestId, dropped);
    lifecycle.recordPhase(phase, started);
    // a shadowed denial tells Envoy's access log too: the cached answer says allow
    if (lifecycle.decision === 'shadow_deny' && phase === 'requestHeaders') {
      this.send(withMetadata(response, decisionMetadata(ctx.routeId, 'shadow_deny', { reason: lifecycle.reason!, decisionId: ctx.decisionId })));
    } else this.send(response);
    if (phase === 'responseHeaders' && this.bodies.responseBody !== 'expected') this.complete();
  }

  private answerBody(phase: 'requestBody' | 'responseBody', replacement: Buffer | undefined, started: number): void {
    const lifecycle = this.lifecycle!;
    const ctx = lifecycle.ctx;
    const edits = phase === 'requestBody' ? ctx.requestEdits : ctx.responseEdits;
    if (replacement) {
      // In BUFFERED mode Envoy keeps content-length and fails the request if it disagrees with the
      // new body (6.2): set it in the same answer whenever the message had one.
      const headers: HeaderMap | undefined = phase === 'requestBody' ? ctx.requestHeaders : ctx.responseHeaders;
      if (headers?.has(HEADER.contentLength)) edits.set(HEADER.contentLength, String(replacement.length));
    }
    const { response, dropped } = bodyAnswer(phase, edits.drain(), replacement);
    reportDroppedEdits(this.options.telemetry, ctx.routeId, ctx.requestId, dropped);
    lifecycle.recordPhase(phase, started);
    this.send(response);
  }

  /** Envoy marks processing complete and sends the local reply (7.2); nothing more will come. */
  private immediate(phase: Phase, answer: Extract<Answer, { kind: 'immediate' }>, started: number): void {
    const lifecycle = this.lifecycle!;
    lifecycle.recordPhase(phase, started);
    this.send(immediateAnswer(answer, decisionMetadata(lifecycle.ctx.routeId, lifecycle.decision, lifecycle.reason ? { reason: lifecycle.reason, decisionId: lifecycle.ctx.decisionId } : undefined)));
    this.stage = 'done';
    this.complete();
  }

  private send(response: ProcessingResponse): void {
    if (this.finished) return;
    this.call.write(response);
  }

  /** Everything this request needs has been answered: write its log line now (later messages are still answered). */
  private complete(): void {
    this.lifecycle?.finish();
    this.span?.end(this.lifecycle!.decision, this.lifecycle!.status);
    this.span = undefined;
  }

  private fail(error: unknown): void {
    const streamError =
      error instanceof StreamError ? error : new StreamError(grpc.status.INTERNAL, `gatehouse failed: ${error instanceof Error ? error.message : String(error)}`, 'stream_error');
    this.options.telemetry.metrics.error(streamError.kind, this.lifecycle?.ctx.routeId ?? UNMATCHED_ROUTE_ID);
    this.options.telemetry.logger.warn({ request_id: this.lifecycle?.ctx.requestId, grpc_code: streamError.code, err: streamError.message }, 'ext_proc stream ended with an error');
    this.lifecycle?.failed(streamError.message);
    if (!this.finished) {
      this.finish('error');
      this.call.emit('error', { code: streamError.code, details: streamError.message, metadata: new grpc.Metadata() });
      this.call.end();
    }
  }

  private maybeEndCall(): void {
    if (this.halfClosed && !this.busy && this.queue.length === 0) {
      this.finish(undefined);
      this.call.end();
    }
  }

  /** The stream is over: the request's log line if not written yet, the gauges, the idle registry. */
  private finish(decision: Decision | undefined): void {
    if (this.finished) return;
    this.finished = true;
    this.queue.length = 0;
    this.stage = 'done';
    this.options.telemetry.metrics.streamClosed('ext_proc');
    clearTimeout(this.idleTimer);
    this.onEnd();
    const lifecycle = this.lifecycle;
    if (!lifecycle) return; // a stream that never carried request headers is no HTTP request
    // Reset while a body the route checks was still owed: the request never got past its checks
    // (Envoy held it back), so it was not allowed, whatever its headers' answer said.
    if (decision === undefined && (this.bodies.requestBody === 'expected' || this.bodies.responseBody === 'expected')) decision = 'cancelled';
    if (decision === 'cancelled' || decision === 'error') lifecycle.abort(new Error(`stream ${decision}`));
    lifecycle.finish(decision);
    this.span?.end(decision ?? lifecycle.decision, lifecycle.status);
    this.span = undefined;
  }
}

export function extProcHandler(options: ExtProcOptions): grpc.handleBidiStreamingCall<ProcessingRequest, ProcessingResponse> {
  const limits = options.limits ?? DEFAULT_STREAM_LIMITS;
  let open = 0;
  const ended = (): void => {
    open--;
  };
  return (call) => {
    if (!options.accepting()) {
      call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'gatehouse is shutting down', metadata: new grpc.Metadata() });
      return;
    }
    if (open >= limits.maxStreams) {
      options.telemetry.metrics.error('stream_limit', UNMATCHED_ROUTE_ID);
      call.emit('error', { code: grpc.status.RESOURCE_EXHAUSTED, details: `gatehouse holds ${limits.maxStreams} streams already (limits.maxStreams)`, metadata: new grpc.Metadata() });
      return;
    }
    open++;
    new ExtProcStream(call, options, ended, limits.idleTimeoutMs);
  };
}
