// The ext_proc HTTP filter (source/extensions/filters/http/ext_proc/ext_proc.cc) and its
// per-direction ProcessorState (processor_state.cc), ported statement by statement where the
// catalogue (/work/shared/envoy-behaviours.md) describes them. Section numbers refer to it.
import { create, type JsonObject } from '@bufbuild/protobuf';
import { HeaderMapSchema, HeaderValueSchema, MetadataSchema } from '../../src/gen/envoy/config/core/v3/base_pb.js';
import { ExternalProcessor_RouteCacheAction, type ExternalProcessor } from '../../src/gen/envoy/extensions/filters/http/ext_proc/v3/ext_proc_pb.js';
import {
  ProcessingMode_BodySendMode as BodyMode,
  ProcessingMode_HeaderSendMode as HeaderMode,
  type ProcessingMode,
} from '../../src/gen/envoy/extensions/filters/http/ext_proc/v3/processing_mode_pb.js';
import {
  CommonResponse_ResponseStatus as ResponseStatus,
  HttpBodySchema,
  HttpHeadersSchema,
  HttpTrailersSchema,
  ProcessingRequestSchema,
  type BodyResponse,
  type CommonResponse,
  type HeadersResponse,
  type ImmediateResponse,
  type ProcessingRequest,
  type ProcessingResponse,
  type TrailersResponse,
} from '../../src/gen/envoy/service/ext_proc/v3/external_processor_pb.js';
import type { GrpcService } from '../../src/gen/envoy/config/core/v3/grpc_service_pb.js';
import type { DataStatus, DirectionCallbacks, FilterCallbacks, HeadersStatus, StreamFilter, TrailersStatus } from './filter-manager.js';
import { applyBodyMutation, applyHeaderMutation, type HeaderLimits } from './header-mutation.js';
import type { HeaderMap } from './headers.js';
import { stringMatches, type MutationChecker } from './mutation-checker.js';
import { allDisabledMode, defaultMode, effectiveModeOverride, isAllowedOverride, mergePerRoute, type MergedPerRoute } from './processing-mode.js';
import type { ProcessorStream } from './ext-proc-stream.js';
import type { ExtProcPerRoute } from '../../src/gen/envoy/extensions/filters/http/ext_proc/v3/ext_proc_pb.js';

/** Fields of newer Envoy APIs that the vendored (≈1.31) protos cannot express. */
export interface NewerExtProcFields {
  /** ExternalProcessor.allowed_override_modes (2.6). */
  allowedOverrideModes?: ProcessingMode[];
  /** ExternalProcessor.status_on_error (default 500; only 400–599 accepted). */
  statusOnError?: number;
  /** ExtProcOverrides.failure_mode_allow (1.35+, 9.6) of the route. */
  routeFailureModeAllow?: boolean;
}

export interface ExtProcCounters {
  [name: string]: number;
  streams_started: number;
  streams_closed: number;
  streams_failed: number;
  stream_msgs_sent: number;
  stream_msgs_received: number;
  spurious_msgs_received: number;
  message_timeouts: number;
  rejected_header_mutations: number;
  failure_mode_allowed: number;
  override_message_timeout_received: number;
  override_message_timeout_ignored: number;
  server_half_closed: number;
  clear_route_cache_ignored: number;
  clear_route_cache_disabled: number;
}

export function newCounters(): ExtProcCounters {
  return {
    streams_started: 0, streams_closed: 0, streams_failed: 0, stream_msgs_sent: 0, stream_msgs_received: 0,
    spurious_msgs_received: 0, message_timeouts: 0, rejected_header_mutations: 0, failure_mode_allowed: 0,
    override_message_timeout_received: 0, override_message_timeout_ignored: 0, server_half_closed: 0,
    clear_route_cache_ignored: 0, clear_route_cache_disabled: 0,
  };
}

export interface ExtProcFilterConfig {
  proto: ExternalProcessor;
  perRoute: ExtProcPerRoute[];
  newer: NewerExtProcFields;
  checker: MutationChecker;
  limits: HeaderLimits;
  /** Opens the side stream for this grpc_service; the filter passes its event handlers. */
  openStream(service: GrpcService | undefined, events: { onMessage(m: ProcessingResponse): void; onStatus(code: number, details: string): void }): ProcessorStream;
  sent: ProcessingRequest[];
  received: ProcessingResponse[];
  counters: ExtProcCounters;
}

type CallbackState = 'idle' | 'headers' | 'bufferedBody' | 'streamedBody' | 'partialBody' | 'trailers';
type Status = { ok: true } | { ok: false; precondition: boolean; message: string };
const OK: Status = { ok: true };
const spurious = (message = 'spurious message'): Status => ({ ok: false, precondition: true, message });
const internal = (message: string): Status => ({ ok: false, precondition: false, message });

function durationMs(d: { seconds: bigint; nanos: number } | undefined, dflt: number): number {
  if (d === undefined) return dflt;
  return Number(d.seconds) * 1000 + Math.floor(d.nanos / 1e6);
}

/** ProcessorState: one per direction. */
class ProcessorState {
  sendHeaders = true;
  bodyMode: BodyMode = BodyMode.NONE;
  sendTrailers = false;
  callback: CallbackState = 'idle';
  /** headers_: set while header mutations may still apply. */
  headers: HeaderMap | null = null;
  trailers: HeaderMap | null = null;
  noBody = false;
  completeBodyAvailable = false;
  trailersAvailable = false;
  bodyReplaced = false;
  partialBodyProcessed = false;
  paused = false;
  /** ChunkQueue: lengths + end_stream flags, and the bytes. */
  queue: { len: number; eos: boolean }[] = [];
  queueData: Buffer = Buffer.alloc(0);
  private timer: NodeJS.Timeout | undefined;
  timerEnabled = false;
  private newTimeoutReceived = false;

  constructor(
    readonly dir: 'request' | 'response',
    private readonly cbs: FilterCallbacks,
    private readonly filter: ExtProcFilter,
  ) {}

  /** Looked up each time: a local reply replaces the encoder chain. */
  get cb(): DirectionCallbacks {
    return this.dir === 'request' ? this.cbs.decoder : this.cbs.encoder;
  }

  /** 1.1: DEFAULT header mode = SEND, DEFAULT trailer mode = SKIP. */
  setProcessingMode(mode: ProcessingMode): void {
    if (this.dir === 'request') {
      this.sendHeaders = mode.requestHeaderMode !== HeaderMode.SKIP;
      this.sendTrailers = mode.requestTrailerMode === HeaderMode.SEND;
      this.bodyMode = mode.requestBodyMode;
    } else {
      this.sendHeaders = mode.responseHeaderMode !== HeaderMode.SKIP;
      this.sendTrailers = mode.responseTrailerMode === HeaderMode.SEND;
      this.bodyMode = mode.responseBodyMode;
    }
  }

  /** 6.3 (PSH shouldRemoveContentLength). */
  shouldRemoveContentLength(): boolean {
    return (this.bodyMode === BodyMode.BUFFERED && !this.sendHeaders) || this.bodyMode === BodyMode.BUFFERED_PARTIAL || this.bodyMode === BodyMode.STREAMED;
  }

  noExternalProcess(): boolean {
    return !this.sendHeaders && !this.sendTrailers && this.bodyMode === BodyMode.NONE;
  }

  // ---- timer (4.2) ----
  onStartProcessorCall(state: CallbackState, timeoutMs: number, onTimeout: () => void): void {
    this.callback = state;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timerEnabled = false;
      onTimeout();
    }, timeoutMs);
    this.timerEnabled = true;
    this.newTimeoutReceived = false;
  }
  onFinishProcessorCall(next: CallbackState = 'idle'): void {
    this.stopMessageTimer();
    this.callback = next;
    this.newTimeoutReceived = false;
  }
  stopMessageTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerEnabled = false;
  }
  /** 4.6: only with a running timer, only the first override per call. */
  restartMessageTimer(ms: number, onTimeout: () => void): boolean {
    if (!this.timerEnabled || this.newTimeoutReceived) return false;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timerEnabled = false;
      onTimeout();
    }, ms);
    this.newTimeoutReceived = true;
    return true;
  }

  // ---- chunk queue ----
  enqueue(data: Buffer, eos: boolean): void {
    this.queue.push({ len: data.length, eos });
    this.queueData = Buffer.concat([this.queueData, data]);
  }
  dequeue(): { data: Buffer; eos: boolean } | undefined {
    const c = this.queue.shift();
    if (c === undefined) return undefined;
    const data = this.queueData.subarray(0, c.len);
    this.queueData = this.queueData.subarray(c.len);
    return { data: Buffer.from(data), eos: c.eos };
  }
  consolidate(): { eos: boolean } {
    const last = this.queue[this.queue.length - 1];
    const eos = last?.eos ?? false;
    if (this.queue.length > 1) this.queue = [{ len: this.queueData.length, eos }];
    return { eos };
  }
  clearQueue(): void {
    this.queue = [];
    this.queueData = Buffer.alloc(0);
  }
  queueOverHighLimit(): boolean {
    return this.queueData.length > this.cb.bufferLimit;
  }

  continueIfNecessary(): void {
    if (this.paused) {
      this.paused = false;
      this.cb.continue();
    }
  }

  hasBufferedData(): boolean {
    const b = this.cb.bufferedData();
    return b !== null && b.length > 0;
  }

  // ---- answers ----
  private processHeaderMutation(common: CommonResponse): Status {
    const err = applyHeaderMutation(common.headerMutation!, this.headers!, {
      replacingMessage: common.status === ResponseStatus.CONTINUE_AND_REPLACE,
      checker: this.filter.config.checker,
      counters: this.filter.config.counters,
      removeContentLength: this.shouldRemoveContentLength(),
      limits: this.filter.config.limits,
    });
    return err === undefined ? OK : internal(err);
  }

  /** PS sendBufferedDataInStreamedMode (1.9). */
  sendBufferedDataInStreamedMode(eos: boolean): void {
    if (this.hasBufferedData()) {
      const chunk = this.cb.bufferedData()!;
      this.cb.setBufferedData(Buffer.alloc(0));
      const req = this.filter.setupBodyChunk(this, chunk, eos);
      this.enqueue(chunk, eos);
      this.filter.sendBodyChunk(this, 'streamedBody', req);
    }
    this.continueIfNecessary();
  }

  /** PS handleHeadersResponse (3.1, 6.7, 6.8, 1.10). */
  handleHeadersResponse(response: HeadersResponse): Status {
    if (this.callback !== 'headers') return spurious();
    const common = response.response;
    if (common?.headerMutation !== undefined) {
      const s = this.processHeaderMutation(common);
      if (!s.ok) return s;
    }
    if (common !== undefined) this.filter.clearRouteCache(this, common);
    this.onFinishProcessorCall();
    if (common?.status === ResponseStatus.CONTINUE_AND_REPLACE) {
      // 6.7
      if (common.bodyMutation !== undefined) {
        this.headers!.remove('content-length');
        this.bodyReplaced = true;
        const cur = this.cb.bufferedData();
        this.cb.setBufferedData(applyBodyMutation(common.bodyMutation, cur ?? Buffer.alloc(0)));
      }
      this.clearQueue();
      this.bodyMode = BodyMode.NONE;
      this.sendTrailers = false;
    } else {
      if (this.noBody) {
        // no body in the first place
      } else if (this.completeBodyAvailable && this.bodyMode !== BodyMode.NONE) {
        // 1.10: the complete body arrived before the headers answer.
        const buffered = this.cb.bufferedData();
        if (buffered !== null) {
          const req = this.filter.setupBodyChunk(this, buffered, !this.trailersAvailable);
          this.filter.sendBodyChunk(this, 'bufferedBody', req);
          return OK;
        }
      } else if (this.bodyMode === BodyMode.BUFFERED) {
        // Keep the headers held until the body answer (1.7).
        return OK;
      } else if (this.bodyMode === BodyMode.STREAMED) {
        this.sendBufferedDataInStreamedMode(false);
        return OK;
      } else if (this.bodyMode === BodyMode.BUFFERED_PARTIAL) {
        if (this.hasBufferedData()) {
          const chunk = this.cb.bufferedData()!;
          this.cb.setBufferedData(Buffer.alloc(0));
          this.enqueue(chunk, false);
        }
        if (this.queueOverHighLimit()) {
          this.consolidate();
          const req = this.filter.setupBodyChunk(this, this.queueData, false);
          this.filter.sendBodyChunk(this, 'partialBody', req);
        }
        return OK;
      }
      if (this.sendTrailers && this.trailersAvailable) {
        this.filter.sendTrailersMessage(this, this.trailers!);
        return OK;
      }
    }
    this.headers = null;
    this.continueIfNecessary();
    return OK;
  }

  lastBodyAnswerWasEos = false;
  /** PSH sendAttributes: attributes go only with the first message of each direction (8.6). */
  sentAttributes = false;

  /** PS handleBodyResponse (6.1, 6.2, 6.4, 6.5, 5.17). */
  handleBodyResponse(response: BodyResponse): Status {
    this.lastBodyAnswerWasEos = false;
    const common = response.response;
    let shouldContinue = false;
    if (this.callback === 'bufferedBody') {
      if (common?.headerMutation !== undefined && this.headers !== null) {
        const s = this.processHeaderMutation(common);
        if (!s.ok) return s;
      }
      if (common?.bodyMutation !== undefined) {
        // 6.2: content-length (after this answer's header mutation) must match the new body.
        const cl = this.headers?.get('content-length');
        if (cl !== undefined && /^[0-9]+$/.test(cl)) {
          const newLen = common.bodyMutation.mutation.case === 'body' ? common.bodyMutation.mutation.value.length : 0;
          if (Number(cl) !== newLen) return internal('mismatch between content length and the length of the mutated body');
        }
        this.cb.setBufferedData(applyBodyMutation(common.bodyMutation, this.cb.bufferedData() ?? Buffer.alloc(0)));
      }
      this.onFinishProcessorCall();
      shouldContinue = true;
    } else if (this.callback === 'streamedBody') {
      // 5.17: header_mutation silently ignored.
      const chunk = this.dequeue();
      if (chunk === undefined) return spurious();
      let data = chunk.data;
      if (common?.bodyMutation !== undefined) data = applyBodyMutation(common.bodyMutation, data);
      shouldContinue = chunk.eos;
      this.lastBodyAnswerWasEos = chunk.eos;
      if (data.length > 0) this.cb.inject(data, chunk.eos);
      if (this.queue.length === 0) this.onFinishProcessorCall();
      else this.onFinishProcessorCall('streamedBody');
    } else if (this.callback === 'partialBody') {
      const chunk = this.dequeue();
      if (chunk === undefined) return spurious();
      if (common?.headerMutation !== undefined && this.headers !== null) {
        const s = this.processHeaderMutation(common);
        if (!s.ok) return s;
      }
      let data = chunk.data;
      if (common?.bodyMutation !== undefined) data = applyBodyMutation(common.bodyMutation, data);
      if (data.length > 0) this.cb.inject(data, chunk.eos);
      shouldContinue = true;
      this.onFinishProcessorCall();
      this.partialBodyProcessed = true;
      if (this.queueData.length > 0) {
        const { eos } = this.consolidate();
        const rest = this.queueData;
        this.clearQueue();
        this.cb.inject(rest, eos);
      }
    } else {
      return spurious();
    }
    if (common !== undefined) this.filter.clearRouteCache(this, common);
    this.headers = null;
    if (this.sendTrailers && this.trailersAvailable && this.queue.length === 0) {
      this.filter.sendTrailersMessage(this, this.trailers!);
      return OK;
    }
    // 1.15: held trailers are released once every queued chunk has been answered.
    if (this.trailersAvailable && this.queue.length === 0) shouldContinue = true;
    if (shouldContinue) this.continueIfNecessary();
    return OK;
  }

  /** PS handleTrailersResponse (5.18). */
  handleTrailersResponse(response: TrailersResponse): Status {
    if (this.callback !== 'trailers') return spurious();
    if (response.headerMutation !== undefined) {
      const err = applyHeaderMutation(response.headerMutation, this.trailers!, {
        replacingMessage: false,
        checker: this.filter.config.checker,
        counters: this.filter.config.counters,
        removeContentLength: false,
        limits: this.filter.config.limits,
      });
      if (err !== undefined) return internal(err);
    }
    this.trailers = null;
    this.onFinishProcessorCall();
    this.continueIfNecessary();
    return OK;
  }

  /** PS clearAsyncState: used on fail-open. */
  clearAsyncState(): void {
    this.onFinishProcessorCall();
    if (this.queueData.length > 0) {
      const { eos } = this.consolidate();
      const rest = this.queueData;
      this.clearQueue();
      this.cb.inject(rest, eos);
    }
    this.continueIfNecessary();
  }
}

export class ExtProcFilter implements StreamFilter {
  readonly decoding: ProcessorState;
  readonly encoding: ProcessorState;
  processingComplete = false;
  stream: ProcessorStream | undefined;
  private routeMerged = false;
  private grpcService: GrpcService | undefined;
  private untypedForwarding: string[];
  private untypedReceiving: string[];
  private failureModeAllowValue: boolean;
  private readonly messageTimeoutMs: number;
  private readonly maxMessageTimeoutMs: number;
  private readonly statusOnError: number;

  constructor(readonly config: ExtProcFilterConfig, private readonly cbs: FilterCallbacks) {
    const p = config.proto;
    this.decoding = new ProcessorState('request', cbs, this);
    this.encoding = new ProcessorState('response', cbs, this);
    const mode = p.processingMode ?? defaultMode();
    this.decoding.setProcessingMode(mode);
    this.encoding.setProcessingMode(mode);
    this.grpcService = p.grpcService;
    this.untypedForwarding = [...(p.metadataOptions?.forwardingNamespaces?.untyped ?? [])];
    this.untypedReceiving = [...(p.metadataOptions?.receivingNamespaces?.untyped ?? [])];
    this.failureModeAllowValue = p.failureModeAllow;
    this.messageTimeoutMs = durationMs(p.messageTimeout, 200); // 4.1
    this.maxMessageTimeoutMs = durationMs(p.maxMessageTimeout, 0); // 4.6
    const soe = config.newer.statusOnError ?? 500;
    this.statusOnError = soe >= 400 && soe <= 599 ? soe : 500;
  }

  get observability(): boolean {
    return this.config.proto.observabilityMode;
  }
  failureModeAllow(): boolean {
    return this.failureModeAllowValue;
  }
  /** The merged per-route config (9.8), read by the stand-in for grpc_initial_metadata (9.4). */
  merged: MergedPerRoute | undefined;

  /** EP mergePerRouteConfig (9.1–9.9), once per request. */
  private mergePerRouteConfig(): void {
    if (this.routeMerged) return;
    this.routeMerged = true;
    if (this.config.newer.routeFailureModeAllow !== undefined) this.failureModeAllowValue = this.config.newer.routeFailureModeAllow;
    const merged = mergePerRoute(this.config.perRoute);
    this.merged = merged;
    if (merged === undefined) return;
    if (merged.disabled) {
      this.decoding.setProcessingMode(allDisabledMode());
      this.encoding.setProcessingMode(allDisabledMode());
      return;
    }
    if (merged.processingMode !== undefined) {
      this.decoding.setProcessingMode(merged.processingMode);
      this.encoding.setProcessingMode(merged.processingMode);
    }
    if (merged.grpcService !== undefined) this.grpcService = merged.grpcService;
    if (merged.untypedForwarding !== undefined) this.untypedForwarding = merged.untypedForwarding;
    if (merged.untypedReceiving !== undefined) this.untypedReceiving = merged.untypedReceiving;
  }

  // ---- stream ----
  private openStream(): boolean {
    if (this.processingComplete) return false;
    if (this.stream === undefined) {
      this.stream = this.config.openStream(this.grpcService, {
        onMessage: (m) => { this.onReceiveMessage(m); },
        onStatus: (code, details) => { this.onGrpcStatus(code, details); },
      });
      this.config.counters.streams_started++;
    }
    return true;
  }
  closeStream(): void {
    if (this.stream !== undefined) {
      if (this.stream.close()) this.config.counters.streams_closed++;
    }
  }
  private send(req: ProcessingRequest): void {
    this.config.sent.push(req);
    this.config.counters.stream_msgs_sent++;
    this.stream?.send(req);
  }

  // ---- building messages ----
  private metadataContext(): ReturnType<typeof create<typeof MetadataSchema>> {
    // 8.5: forwarding namespaces from stream dynamic metadata.
    const filterMetadata: Record<string, JsonObject> = {};
    for (const ns of this.untypedForwarding) {
      const v = this.cbs.dynamicMetadata[ns];
      if (v !== undefined) filterMetadata[ns] = v as JsonObject;
    }
    return create(MetadataSchema, { filterMetadata });
  }
  private headersToProto(h: HeaderMap): ReturnType<typeof create<typeof HeaderMapSchema>> {
    // 1.3: lower-case keys, raw_value only, filtered by forward_rules.
    const rules = this.config.proto.forwardRules;
    const allowed = rules?.allowedHeaders?.patterns ?? [];
    const disallowed = rules?.disallowedHeaders?.patterns ?? [];
    const headers = h
      .pairs()
      .filter(([k]) => {
        if (disallowed.some((m) => stringMatches(m, k))) return false;
        return allowed.length === 0 || allowed.some((m) => stringMatches(m, k));
      })
      .map(([k, v]) => create(HeaderValueSchema, { key: k, rawValue: Buffer.from(v, 'latin1') }));
    return create(HeaderMapSchema, { headers });
  }
  private buildHeaderRequest(state: ProcessorState, h: HeaderMap, eos: boolean, observability: boolean): ProcessingRequest {
    const value = create(HttpHeadersSchema, { headers: this.headersToProto(h), endOfStream: eos });
    return this.addAttributes(state, create(ProcessingRequestSchema, {
      request: state.dir === 'request' ? { case: 'requestHeaders', value } : { case: 'responseHeaders', value },
      metadataContext: this.metadataContext(),
      observabilityMode: observability,
    }));
  }
  setupBodyChunk(state: ProcessorState, data: Buffer, eos: boolean): ProcessingRequest {
    const value = create(HttpBodySchema, { body: Buffer.from(data), endOfStream: eos });
    return this.addAttributes(state, create(ProcessingRequestSchema, {
      request: state.dir === 'request' ? { case: 'requestBody', value } : { case: 'responseBody', value },
      metadataContext: this.metadataContext(),
    }));
  }
  /**
   * 8.6 (EP addAttributes). The stand-in has no CEL engine: it evaluates plain attribute names
   * (request.path, request.url_path, request.host, request.scheme, request.method, request.id,
   * request.referer, request.useragent, request.protocol, request.query, source.address,
   * source.port, destination.address, destination.port, connection.mtls, response.code, and the
   * peer certificate's connection.{uri,dns}_san_peer_certificate, subject_peer_certificate and
   * sha256_peer_certificate_digest when the downstream is mTLS).
   * Anything else — like an expression that errors or has no value in Envoy — is left out.
   */
  private addAttributes(state: ProcessorState, req: ProcessingRequest): ProcessingRequest {
    const exprs = state.dir === 'request' ? this.config.proto.requestAttributes : this.config.proto.responseAttributes;
    if (exprs.length === 0 || state.sentAttributes) return req;
    state.sentAttributes = true;
    const out: JsonObject = {};
    for (const e of exprs) {
      const v = this.evalAttribute(e);
      if (v !== undefined) out[e] = v;
    }
    req.attributes['envoy.filters.http.ext_proc'] = out;
    return req;
  }
  private evalAttribute(name: string): string | number | boolean | undefined {
    const rq = this.cbs.requestHeaders;
    const path = rq.get(':path') ?? '';
    const q = path.indexOf('?');
    const remote = this.cbs.downstreamRemote;
    const local = this.cbs.downstreamLocal;
    switch (name) {
      case 'request.path': return path;
      case 'request.url_path': return q < 0 ? path : path.slice(0, q);
      case 'request.query': return q < 0 ? '' : path.slice(q + 1);
      case 'request.host': return rq.get(':authority');
      case 'request.scheme': return rq.get(':scheme');
      case 'request.method': return rq.get(':method');
      case 'request.id': return rq.get('x-request-id');
      case 'request.referer': return rq.get('referer');
      case 'request.useragent': return rq.get('user-agent');
      case 'request.protocol': return 'HTTP/2';
      case 'source.address': return `${remote.address}:${remote.port}`;
      case 'source.port': return remote.port;
      case 'destination.address': return `${local.address}:${local.port}`;
      case 'destination.port': return local.port;
      case 'connection.mtls': return this.cbs.peerCertificate !== undefined;
      case 'connection.uri_san_peer_certificate': return this.cbs.peerCertificate?.uriSan;
      case 'connection.dns_san_peer_certificate': return this.cbs.peerCertificate?.dnsSan;
      case 'connection.subject_peer_certificate': return this.cbs.peerCertificate?.subject;
      case 'connection.sha256_peer_certificate_digest': return this.cbs.peerCertificate?.sha256;
      case 'response.code': {
        const st = this.encoding.headers?.get(':status');
        return st === undefined ? undefined : Number(st);
      }
      default: return undefined;
    }
  }

  sendBodyChunk(state: ProcessorState, cbState: CallbackState, req: ProcessingRequest): void {
    state.onStartProcessorCall(cbState, this.messageTimeoutMs, () => { this.onMessageTimeout(); });
    this.send(req);
  }
  sendTrailersMessage(state: ProcessorState, t: HeaderMap, observability = false): void {
    const value = create(HttpTrailersSchema, { trailers: this.headersToProto(t) });
    const req = this.addAttributes(state, create(ProcessingRequestSchema, {
      request: state.dir === 'request' ? { case: 'requestTrailers', value } : { case: 'responseTrailers', value },
      metadataContext: this.metadataContext(),
      observabilityMode: observability,
    }));
    if (!observability) state.onStartProcessorCall('trailers', this.messageTimeoutMs, () => { this.onMessageTimeout(); });
    this.send(req);
  }

  // ---- filter callbacks ----
  private onHeaders(state: ProcessorState, h: HeaderMap, eos: boolean): HeadersStatus {
    if (!this.openStream()) return 'Continue';
    state.headers = h;
    state.noBody = eos;
    const req = this.buildHeaderRequest(state, h, eos, false);
    state.onStartProcessorCall('headers', this.messageTimeoutMs, () => { this.onMessageTimeout(); });
    this.send(req);
    state.paused = true;
    return 'StopIteration';
  }

  private headersObservability(state: ProcessorState, h: HeaderMap, eos: boolean): HeadersStatus {
    if (!this.openStream()) return 'Continue';
    this.send(this.buildHeaderRequest(state, h, eos, true));
    return 'Continue';
  }

  decodeHeaders(h: HeaderMap, eos: boolean): HeadersStatus {
    this.mergePerRouteConfig();
    if (this.decoding.sendHeaders && this.observability) return this.headersObservability(this.decoding, h, eos);
    if (eos) this.decoding.completeBodyAvailable = true;
    let status: HeadersStatus = 'Continue';
    if (this.decoding.sendHeaders) status = this.onHeaders(this.decoding, h, eos);
    if (!this.processingComplete && this.decoding.shouldRemoveContentLength()) h.remove('content-length');
    return status;
  }

  encodeHeaders(h: HeaderMap, eos: boolean): HeadersStatus {
    this.mergePerRouteConfig();
    if (this.encoding.sendHeaders && this.observability) return this.headersObservability(this.encoding, h, eos);
    if (eos) this.encoding.completeBodyAvailable = true;
    let status: HeadersStatus = 'Continue';
    if (!this.processingComplete && this.encoding.sendHeaders) {
      status = this.onHeaders(this.encoding, h, eos);
    } else if (!this.processingComplete && this.encoding.noExternalProcess()) {
      this.closeStream(); // 10.3: nothing to process on the response path
    }
    if (!this.processingComplete && this.encoding.shouldRemoveContentLength()) h.remove('content-length');
    return status;
  }

  private onData(state: ProcessorState, data: Buffer, eos: boolean): { status: DataStatus; data: Buffer } {
    if (this.observability) {
      // 8.7: only STREAMED bodies are sent; never paused.
      if (state.bodyMode === BodyMode.STREAMED && this.openStream()) {
        const req = this.setupBodyChunk(state, data, eos);
        req.observabilityMode = true;
        this.send(req);
      }
      return { status: 'Continue', data };
    }
    if (eos) state.completeBodyAvailable = true;
    if (state.bodyReplaced) return { status: 'Continue', data: Buffer.alloc(0) }; // 6.7: drained
    if (this.processingComplete) return { status: 'Continue', data };
    if (state.callback === 'headers') {
      // 1.6: held until the headers answer. In BUFFERED mode the filter manager's buffer limit
      // applies (→ 413, 1.8); otherwise only a watermark is raised (EP onData).
      state.paused = true;
      return { status: state.bodyMode === BodyMode.BUFFERED ? 'StopIterationAndBuffer' : 'StopIterationAndWatermark', data };
    }
    switch (state.bodyMode) {
      case BodyMode.BUFFERED: {
        if (eos) {
          if (!this.openStream()) return { status: 'Continue', data };
          state.cb.addBufferedData(data);
          if (state.cb.aborted()) return { status: 'StopIterationNoBuffer', data: Buffer.alloc(0) };
          const req = this.setupBodyChunk(state, state.cb.bufferedData() ?? Buffer.alloc(0), true);
          this.sendBodyChunk(state, 'bufferedBody', req);
          state.paused = true;
          return { status: 'StopIterationNoBuffer', data: Buffer.alloc(0) };
        }
        state.paused = true;
        return { status: 'StopIterationAndBuffer', data };
      }
      case BodyMode.STREAMED: {
        if (!this.openStream()) return { status: 'Continue', data };
        const req = this.setupBodyChunk(state, data, eos);
        state.enqueue(data, eos);
        this.sendBodyChunk(state, 'streamedBody', req);
        if (eos) {
          state.paused = true;
          return { status: 'StopIterationNoBuffer', data: Buffer.alloc(0) };
        }
        return { status: 'Continue', data: Buffer.alloc(0) };
      }
      case BodyMode.BUFFERED_PARTIAL: {
        if (state.partialBodyProcessed) {
          state.headers = null;
          return { status: 'Continue', data };
        }
        if (state.callback === 'partialBody') {
          state.enqueue(data, eos);
          state.paused = true;
          return { status: 'StopIterationNoBuffer', data: Buffer.alloc(0) };
        }
        state.enqueue(data, eos);
        if (eos || state.queueOverHighLimit()) {
          if (!this.openStream()) return { status: 'Continue', data: Buffer.alloc(0) };
          const { eos: allEos } = state.consolidate();
          const req = this.setupBodyChunk(state, state.queueData, allEos);
          this.sendBodyChunk(state, 'partialBody', req);
          state.paused = true;
        }
        return { status: 'StopIterationNoBuffer', data: Buffer.alloc(0) };
      }
      case BodyMode.NONE:
        return { status: 'Continue', data };
    }
  }

  decodeData(data: Buffer, eos: boolean): { status: DataStatus; data: Buffer } {
    return this.onData(this.decoding, data, eos);
  }
  encodeData(data: Buffer, eos: boolean): { status: DataStatus; data: Buffer } {
    return this.onData(this.encoding, data, eos);
  }

  private onTrailers(state: ProcessorState, t: HeaderMap): TrailersStatus {
    if (this.processingComplete) return 'Continue';
    if (state.sendTrailers && this.observability) {
      if (this.openStream()) this.sendTrailersMessage(state, t, true);
      return 'Continue';
    }
    const bodyDelivered = state.completeBodyAvailable;
    state.completeBodyAvailable = true;
    state.trailersAvailable = true;
    state.trailers = t;
    if (state.callback !== 'idle') {
      // 1.15: held until the outstanding answer.
      state.paused = true;
      return 'StopIteration';
    }
    const buffered = state.cb.bufferedData();
    if (!bodyDelivered && ((buffered !== null && state.bodyMode === BodyMode.BUFFERED) || (state.queue.length > 0 && state.bodyMode === BodyMode.BUFFERED_PARTIAL))) {
      if (!this.openStream()) return 'Continue';
      // 1.7: trailers end the body — send it with end_of_stream false.
      if (state.bodyMode === BodyMode.BUFFERED) {
        this.sendBodyChunk(state, 'bufferedBody', this.setupBodyChunk(state, buffered!, false));
      } else {
        state.consolidate();
        this.sendBodyChunk(state, 'partialBody', this.setupBodyChunk(state, state.queueData, false));
      }
      state.paused = true;
      return 'StopIteration';
    }
    if (!state.sendTrailers) return 'Continue'; // 1.16
    if (!this.openStream()) return 'Continue';
    this.sendTrailersMessage(state, t);
    state.paused = true;
    return 'StopIteration';
  }

  decodeTrailers(t: HeaderMap): TrailersStatus {
    return this.onTrailers(this.decoding, t);
  }
  encodeTrailers(t: HeaderMap): TrailersStatus {
    return this.onTrailers(this.encoding, t);
  }

  onDestroy(): void {
    // 10.5
    this.processingComplete = true;
    this.decoding.stopMessageTimer();
    this.encoding.stopMessageTimer();
    if (this.observability) {
      const ms = durationMs(this.config.proto.deferredCloseTimeout, 5000);
      setTimeout(() => { this.closeStream(); }, ms).unref();
    } else {
      this.closeStream();
    }
  }

  // ---- answers ----
  private inHeaderProcessState(): boolean {
    return this.decoding.callback === 'headers' || this.encoding.callback === 'headers';
  }

  private setDynamicMetadata(resp: ProcessingResponse): void {
    // 8.4
    if (this.untypedReceiving.length === 0 || resp.dynamicMetadata === undefined) return;
    for (const [ns, value] of Object.entries(resp.dynamicMetadata)) {
      if (!this.untypedReceiving.includes(ns)) continue;
      const struct = value !== null && typeof value === 'object' && !Array.isArray(value) ? value : {};
      this.cbs.dynamicMetadata[ns] = { ...(this.cbs.dynamicMetadata[ns] ?? {}), ...struct };
    }
  }

  clearRouteCache(state: ProcessorState, common: CommonResponse): void {
    // 8.1/8.2: only counters are observable here (no routes in the stand-in).
    if (state.dir !== 'request') return;
    if (common.headerMutation === undefined) {
      if (common.clearRouteCache) this.config.counters.clear_route_cache_ignored++;
      return;
    }
    if (common.clearRouteCache && (this.config.proto.disableClearRouteCache || this.config.proto.routeCacheAction === ExternalProcessor_RouteCacheAction.RETAIN)) {
      this.config.counters.clear_route_cache_disabled++;
    }
  }

  onReceiveMessage(resp: ProcessingResponse): void {
    this.config.received.push(resp);
    if (this.observability) return; // 8.7
    if (this.processingComplete) return; // 3.6
    if (resp.overrideMessageTimeout !== undefined) {
      this.onNewTimeout(durationMs(resp.overrideMessageTimeout, 0)); // 4.5
      return;
    }
    // 2.1–2.7
    if (this.config.proto.allowModeOverride && this.inHeaderProcessState() && resp.modeOverride !== undefined) {
      const effective = effectiveModeOverride(resp.modeOverride, this.config.proto.processingMode);
      if (isAllowedOverride(effective, this.config.newer.allowedOverrideModes ?? [])) {
        this.decoding.setProcessingMode(effective);
        this.encoding.setProcessingMode(effective);
      }
    }
    let status: Status;
    const r = resp.response;
    switch (r.case) {
      case 'requestHeaders':
        this.setDynamicMetadata(resp);
        status = this.decoding.handleHeadersResponse(r.value);
        break;
      case 'responseHeaders':
        this.setDynamicMetadata(resp);
        status = this.encoding.handleHeadersResponse(r.value);
        break;
      case 'requestBody':
        this.setDynamicMetadata(resp);
        status = this.decoding.handleBodyResponse(r.value);
        break;
      case 'responseBody':
        this.setDynamicMetadata(resp);
        status = this.encoding.handleBodyResponse(r.value);
        break;
      case 'requestTrailers':
        this.setDynamicMetadata(resp);
        status = this.decoding.handleTrailersResponse(r.value);
        break;
      case 'responseTrailers':
        this.setDynamicMetadata(resp);
        status = this.encoding.handleTrailersResponse(r.value);
        break;
      case 'immediateResponse':
        if (this.config.proto.disableImmediateResponse) {
          status = spurious('unhandled immediate response due to config disabled it'); // 3.12
        } else {
          // 7.2
          this.setDynamicMetadata(resp);
          this.processingComplete = true;
          this.onFinishProcessorCalls();
          this.closeStream();
          this.sendImmediateResponse(r.value);
          status = OK;
        }
        break;
      case undefined:
        status = spurious('unhandled message'); // 3.3
        break;
    }
    if (status.ok) {
      this.config.counters.stream_msgs_received++;
      if (!this.processingComplete) this.closeGrpcStreamIfLastRespReceived(resp);
    } else if (status.precondition) {
      this.config.counters.spurious_msgs_received++;
      this.handleErrorResponse(status.message);
    } else {
      // 3.7: always a local reply, whatever failure_mode_allow says.
      this.config.counters.stream_msgs_received++;
      this.processingComplete = true;
      this.onFinishProcessorCalls();
      this.closeStream();
      this.sendLocalError(this.statusOnError, status.message);
    }
  }

  /** 3.4 / 3.5 */
  private handleErrorResponse(message: string): void {
    if (this.failureModeAllow()) {
      this.processingComplete = true;
      this.closeStream();
      this.config.counters.failure_mode_allowed++;
      this.clearAsyncState();
    } else {
      this.processingComplete = true;
      this.onFinishProcessorCalls();
      this.closeStream();
      this.sendLocalError(this.statusOnError, message);
    }
  }

  /** 10.3 (EP closeGrpcStreamIfLastRespReceived, runtime ext_proc_stream_close_optimization). */
  private closeGrpcStreamIfLastRespReceived(resp: ProcessingResponse): void {
    const d = this.decoding;
    const e = this.encoding;
    let last = false;
    switch (resp.response.case) {
      case 'requestHeaders':
        last = d.callback === 'idle' && (d.noBody || (d.bodyMode === BodyMode.NONE && !d.sendTrailers)) && e.noExternalProcess();
        break;
      case 'requestBody':
        last = d.lastBodyAnswerWasEos && d.callback === 'idle' && e.noExternalProcess();
        break;
      case 'requestTrailers':
        last = e.noExternalProcess();
        break;
      case 'responseHeaders':
        last = e.callback === 'idle' && (e.noBody || (e.bodyMode === BodyMode.NONE && !e.sendTrailers));
        break;
      case 'responseBody':
        last = e.lastBodyAnswerWasEos && e.callback === 'idle';
        break;
      case 'responseTrailers':
        last = true;
        break;
      case 'immediateResponse':
      case undefined:
        break;
    }
    if (last) this.closeStream();
  }

  private onFinishProcessorCalls(): void {
    this.decoding.onFinishProcessorCall();
    this.encoding.onFinishProcessorCall();
  }
  private clearAsyncState(): void {
    this.decoding.clearAsyncState();
    this.encoding.clearAsyncState();
  }

  /** 4.6 */
  private onNewTimeout(ms: number): void {
    if (ms < 1 || ms > this.maxMessageTimeoutMs) {
      this.config.counters.override_message_timeout_ignored++;
      return;
    }
    const cb = (): void => { this.onMessageTimeout(); };
    const dec = this.decoding.restartMessageTimer(ms, cb);
    const enc = this.encoding.restartMessageTimer(ms, cb);
    if (!dec && !enc) {
      this.config.counters.override_message_timeout_ignored++;
      return;
    }
    this.config.counters.override_message_timeout_received++;
  }

  /** 4.3 / 4.4 */
  private onMessageTimeout(): void {
    this.config.counters.message_timeouts++;
    if (this.processingComplete) return;
    if (this.failureModeAllow()) {
      this.processingComplete = true;
      this.closeStream();
      this.config.counters.failure_mode_allowed++;
      this.clearAsyncState();
    } else {
      this.processingComplete = true;
      this.closeStream();
      this.onFinishProcessorCalls();
      this.sendLocalError(504, 'ext_proc_error_per-message_timeout_exceeded');
    }
  }

  /** The server finished the stream (3.8–3.11). */
  private onGrpcStatus(code: number, message: string): void {
    if (code === 0) {
      this.onGrpcClose();
      return;
    }
    this.config.counters.streams_failed++;
    this.config.counters.server_half_closed++;
    if (this.processingComplete) return;
    if (this.failureModeAllow()) {
      this.onGrpcClose();
      this.config.counters.failure_mode_allowed++;
    } else {
      this.processingComplete = true;
      this.onFinishProcessorCalls();
      this.closeStream();
      this.sendLocalError(this.statusOnError, `ext_proc_error_gRPC_error_${code}{${message}}`);
    }
  }

  private onGrpcClose(): void {
    // 3.11: clean close → continue unmodified for the rest of the request and response.
    if (this.processingComplete) return;
    this.processingComplete = true;
    this.config.counters.streams_closed++;
    this.closeStream();
    this.clearAsyncState();
  }

  private sendLocalError(status: number, details: string): void {
    this.cbs.sendLocalReply({ status, body: Buffer.alloc(0), details: details.replace(/\s/g, '_') });
  }

  /** 7.3–7.6, 5.19 */
  private sendImmediateResponse(ir: ImmediateResponse): void {
    let status = ir.status !== undefined ? ir.status.code : 200;
    if (status < 200) status = 200;
    const mutation = ir.headers;
    this.cbs.sendLocalReply({
      status,
      body: Buffer.from(ir.body),
      details: ir.details.replace(/\s/g, '_'),
      grpcStatus: ir.grpcStatus?.status,
      modifyHeaders: mutation === undefined ? undefined : (h) => {
        // A failure here is only logged; the reply is still sent.
        applyHeaderMutation(mutation, h, {
          replacingMessage: false,
          checker: this.config.checker,
          counters: this.config.counters,
          removeContentLength: false,
          limits: this.config.limits,
        });
      },
    });
  }

  /** Does a direction have an answer outstanding? (used for 'lockstep' pacing) */
  isWaiting(dir: 'request' | 'response'): boolean {
    if (this.processingComplete) return false;
    return (dir === 'request' ? this.decoding : this.encoding).callback !== 'idle';
  }
}
