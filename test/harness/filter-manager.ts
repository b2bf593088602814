// A model of Envoy's HTTP connection manager + filter manager + router around ONE HTTP filter:
// the part of Envoy that the ext_proc / ext_authz filters talk to through their callbacks.
//
// * HCM (source/common/http/conn_manager_impl.cc, conn_manager_utility.cc): the downstream is
//   HTTP/2 (h2c) — pseudo-headers as given, names lower-cased; `x-forwarded-proto` and a uuid-v4
//   `x-request-id` are added when absent, before filters run (catalogue 1.3). On the way out it sets
//   `date` and `server: envoy`.
// * Filter manager (source/common/http/filter_manager.cc): header / data / trailer iteration with
//   StopIteration, StopIterationAndBuffer (buffer limit → 413 / 500, catalogue 1.8),
//   StopIterationAndWatermark, StopIterationNoBuffer; continueDecoding/Encoding (commonContinue);
//   injectDecodedDataToFilterChain; sendLocalReply (via the encoder chain in the request phase,
//   direct when response headers are already in the encoder chain, downstream reset once they were
//   sent, catalogue 7.7).
// * Router (source/common/router/router.cc) + HTTP/1.1 upstream codec: `Host` from `:authority`,
//   `x-envoy-expected-rq-timeout-ms: 15000` (default route timeout), request trailers and response
//   trailers only when the cluster enables HTTP/1 trailers (`enableTrailers`, Envoy default false),
//   `x-envoy-upstream-service-time` on the response, hop-by-hop headers dropped, a 503 local reply
//   when the upstream cannot be reached. Upstream body data reaches the filter as Envoy's HTTP/1
//   codec delivers it: each chunk once the next bytes (or the end) arrive, the last with end_stream.
import { peerCertificateFacts, type PeerCertificateFacts } from './peer-certificate.js';
import { randomUUID } from 'node:crypto';
import { request as httpRequest, type ClientRequest as NodeClientRequest, type IncomingMessage } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { HeaderMap, fromBytes, toBytes, type HeaderPair } from './headers.js';
import { isGrpcRequest, prepareLocalReply } from './local-reply.js';

export type HeadersStatus = 'Continue' | 'StopIteration';
export type DataStatus = 'Continue' | 'StopIterationAndBuffer' | 'StopIterationAndWatermark' | 'StopIterationNoBuffer';
export type TrailersStatus = 'Continue' | 'StopIteration';

/** What an HTTP filter sees of one direction of the filter manager. */
export interface DirectionCallbacks {
  readonly direction: 'request' | 'response';
  continue(): void;
  /** injectDecodedDataToFilterChain / injectEncodedDataToFilterChain. */
  inject(data: Buffer, endStream: boolean): void;
  bufferedData(): Buffer | null;
  /** addDecodedData: adds to the filter manager's buffer (limit applies). */
  addBufferedData(data: Buffer): void;
  setBufferedData(data: Buffer): void;
  readonly bufferLimit: number;
  /** setDecoderBufferLimit / setEncoderBufferLimit. */
  setBufferLimit(bytes: number): void;
  /** Have this direction's response headers already gone to the downstream codec? */
  headersSentDownstream(): boolean;
  /** Has a local reply (or reset) taken this direction over? */
  aborted(): boolean;
}

export interface LocalReplyRequest {
  status: number;
  body: Buffer;
  details: string;
  grpcStatus?: number | undefined;
  modifyHeaders?: ((h: HeaderMap) => void) | undefined;
}

export interface FilterCallbacks {
  decoder: DirectionCallbacks;
  encoder: DirectionCallbacks;
  sendLocalReply(reply: LocalReplyRequest): void;
  /** Stream dynamic metadata (namespace → Struct as JSON). */
  readonly dynamicMetadata: Record<string, Record<string, unknown>>;
  readonly requestHeaders: HeaderMap;
  readonly streamId: bigint;
  readonly startTime: Date;
  readonly downstreamRemote: { address: string; port: number };
  readonly downstreamLocal: { address: string; port: number };
  /** The client certificate Envoy verified on an mTLS downstream connection; undefined without mTLS. */
  readonly peerCertificate: PeerCertificateFacts | undefined;
  /** Bytes of request body received so far. */
  requestBytesReceived(): number;
}

export interface StreamFilter {
  decodeHeaders(headers: HeaderMap, endStream: boolean): HeadersStatus;
  decodeData(data: Buffer, endStream: boolean): { status: DataStatus; data: Buffer };
  decodeTrailers(trailers: HeaderMap): TrailersStatus;
  encodeHeaders(headers: HeaderMap, endStream: boolean): HeadersStatus;
  encodeData(data: Buffer, endStream: boolean): { status: DataStatus; data: Buffer };
  encodeTrailers(trailers: HeaderMap): TrailersStatus;
  onDestroy(): void;
}

export interface ClientRequest {
  method: string;
  path: string;
  authority: string;
  scheme?: string;
  headers?: HeaderPair[];
  /** An array = chunks delivered as separate data callbacks. */
  body?: string | Buffer | Buffer[];
  trailers?: HeaderPair[];
}

export interface RequestOptions {
  /** The downstream client goes away after this many ms (catalogue 10.5, 11.20). */
  abortAfterMs?: number;
  /**
   * How the client's body chunks and trailers arrive:
   * 'eager' (default) — all at once, as from a fast client (so usually before a headers answer);
   * 'lockstep' — each only once the filter has no answer outstanding in that direction;
   * { trickleMs } — each request chunk that long after the one before, as from a slow (or hostile) uploader.
   */
  pace?: 'eager' | 'lockstep' | { readonly trickleMs: number };
  /** Harness guard: give up after this long (default 20 s) with status 0, details `stand_in_timeout`. */
  maxDurationMs?: number;
  /** The downstream connection is mTLS and the client presented (and Envoy verified) this PEM certificate. */
  peerCertificate?: string;
}

export interface UpstreamRecord {
  method: string;
  path: string;
  headers: HeaderPair[];
  body: Buffer;
  trailers: HeaderPair[];
}

export interface ExchangeResult {
  status: number;
  headers: HeaderPair[];
  body: Buffer;
  trailers?: HeaderPair[];
  /** %RESPONSE_CODE_DETAILS% */
  details: string;
  /** What the router sent upstream (after all request filtering), or undefined if never reached. */
  upstreamRequest?: UpstreamRecord;
  /** The downstream stream was reset after response headers had been sent (catalogue 7.7). */
  downstreamReset: boolean;
  /** The client went away (RequestOptions.abortAfterMs). */
  clientAborted: boolean;
}

export interface ExchangeConfig {
  upstream: { host: string; port: number };
  bufferLimitBytes: number;
  /** The upstream cluster's http_protocol_options.enable_trailers (Envoy default false). */
  enableTrailers: boolean;
  /** Does the filter have an answer outstanding in this direction? (for 'lockstep' pacing) */
  isWaiting?: (direction: 'request' | 'response') => boolean;
  /**
   * The route's response_headers_to_remove (at route, virtual host or RouteConfiguration level:
   * RouteEntryImplBase::finalizeResponseHeaders applies all three). Envoy applies it to the
   * upstream's response headers before the encoder filters (router.cc Filter::onUpstreamHeaders),
   * and to a local reply before the replying filter's modify_headers (filter_manager.cc
   * sendLocalReplyViaFilterChain / sendDirectLocalReply).
   */
  routeResponseHeadersToRemove?: readonly string[];
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'proxy-connection', 'upgrade']);
const ROUTE_TIMEOUT_MS = 15000;
const PACE_STEP_MS = 2;
const PACE_MAX_MS = 30000;

const STATUS_TEXT: Record<number, string> = { 413: 'Payload Too Large', 500: 'Internal Server Error' };

interface Sink {
  headers(h: HeaderMap, eos: boolean): void;
  data(d: Buffer, eos: boolean): void;
  trailers(t: HeaderMap): void;
}

/** One direction of the filter manager around the single filter. */
class DirectionPipe implements DirectionCallbacks {
  headers: HeaderMap | undefined;
  private headersEos = false;
  private headersContinued = false;
  private stopped = false;
  private buffered: Buffer | null = null;
  private complete = false;
  private trailersMap: HeaderMap | null = null;
  private trailersContinued = false;
  private eosForwarded = false;
  abandoned = false;

  constructor(
    readonly direction: 'request' | 'response',
    private readonly sink: Sink,
    public bufferLimit: number,
    private readonly onTooLarge: () => void,
    private readonly downstreamHeadersSent: () => boolean,
  ) {}

  headersSentDownstream(): boolean {
    return this.downstreamHeadersSent();
  }
  aborted(): boolean {
    return this.abandoned;
  }
  setBufferLimit(bytes: number): void {
    this.bufferLimit = bytes;
  }

  private out(): Sink | undefined {
    return this.abandoned ? undefined : this.sink;
  }
  private sendHeaders(eos: boolean): void {
    this.headersContinued = true;
    if (eos) this.eosForwarded = true;
    this.out()?.headers(this.headers!, eos);
  }
  private sendData(d: Buffer, eos: boolean): void {
    if (this.eosForwarded) return;
    if (eos) this.eosForwarded = true;
    this.out()?.data(d, eos);
  }
  private sendTrailers(t: HeaderMap): void {
    this.trailersContinued = true;
    this.eosForwarded = true;
    this.out()?.trailers(t);
  }

  feedHeaders(h: HeaderMap, eos: boolean, filter: (h: HeaderMap, eos: boolean) => HeadersStatus): void {
    this.headers = h;
    this.headersEos = eos;
    if (eos) this.complete = true;
    const status = filter(h, eos);
    if (this.abandoned) return;
    if (status === 'Continue') this.commonContinue();
    else this.stopped = true;
  }

  feedData(d: Buffer, eos: boolean, filter: (d: Buffer, eos: boolean) => { status: DataStatus; data: Buffer }): void {
    if (eos) this.complete = true;
    if (this.abandoned) return;
    const { status, data } = filter(d, eos);
    if (this.abandoned) return;
    switch (status) {
      case 'Continue':
        if (this.stopped || !this.headersContinued) {
          this.append(data, false);
          this.commonContinue();
        } else if (data.length > 0 || eos) {
          this.sendData(data, eos && this.trailersMap === null);
        }
        break;
      case 'StopIterationAndBuffer':
        this.stopped = true;
        this.append(data, true);
        break;
      case 'StopIterationAndWatermark':
        this.stopped = true;
        this.append(data, false);
        break;
      case 'StopIterationNoBuffer':
        this.stopped = true;
        break;
    }
  }

  feedTrailers(t: HeaderMap, filter: (t: HeaderMap) => TrailersStatus): void {
    this.complete = true;
    this.trailersMap = t;
    if (this.abandoned) return;
    const status = filter(t);
    if (this.abandoned) return;
    if (status === 'Continue') {
      if (this.stopped || !this.headersContinued) this.commonContinue();
      else this.sendTrailers(t);
    } else {
      this.stopped = true;
    }
  }

  private append(data: Buffer, checkLimit: boolean): void {
    this.buffered = this.buffered === null ? Buffer.from(data) : Buffer.concat([this.buffered, data]);
    if (checkLimit && this.buffered.length > this.bufferLimit) this.onTooLarge();
  }

  // ---- DirectionCallbacks ----
  continue(): void {
    this.commonContinue();
  }
  /** FilterManager commonContinue: headers, then buffered data, then trailers. */
  private commonContinue(): void {
    if (this.abandoned) return;
    this.stopped = false;
    if (!this.headersContinued) {
      const eos = this.headersEos && this.buffered === null && this.trailersMap === null;
      this.sendHeaders(eos);
    }
    if (this.buffered !== null) {
      const b = this.buffered;
      this.buffered = null;
      const eos = this.complete && this.trailersMap === null;
      if (b.length > 0 || eos) this.sendData(b, eos);
    } else if (this.complete && this.trailersMap === null && !this.eosForwarded) {
      // Zero-byte end-of-stream data frame.
      this.sendData(Buffer.alloc(0), true);
    }
    if (this.trailersMap !== null && !this.trailersContinued && this.complete) this.sendTrailers(this.trailersMap);
  }
  inject(data: Buffer, endStream: boolean): void {
    if (this.abandoned) return;
    if (!this.headersContinued) {
      this.append(data, false);
      return;
    }
    if (data.length > 0 || endStream) this.sendData(data, endStream);
  }
  bufferedData(): Buffer | null {
    return this.buffered;
  }
  addBufferedData(data: Buffer): void {
    this.append(data, true);
  }
  setBufferedData(data: Buffer): void {
    this.buffered = data;
  }
}

export class Exchange implements FilterCallbacks {
  readonly dynamicMetadata: Record<string, Record<string, unknown>> = {};
  readonly streamId: bigint = BigInt.asUintN(64, BigInt(`0x${randomUUID().replaceAll('-', '').slice(0, 16)}`));
  readonly startTime = new Date();
  readonly downstreamRemote = { address: '127.0.0.1', port: 0 };
  readonly downstreamLocal = { address: '127.0.0.1', port: 0 };
  peerCertificate: PeerCertificateFacts | undefined;
  requestHeaders!: HeaderMap;
  decoder!: DirectionPipe;
  encoder!: DirectionPipe;
  private filter!: StreamFilter;
  private reqBytes = 0;
  private finished = false;
  private resolveDone!: (r: ExchangeResult) => void;
  private readonly done: Promise<ExchangeResult>;
  private result: ExchangeResult = { status: 0, headers: [], body: Buffer.alloc(0), details: '', downstreamReset: false, clientAborted: false };
  private downstreamBody: Buffer[] = [];
  private downstreamHeadersSent = false;
  private upstreamReq: NodeClientRequest | undefined;
  private upstreamRecord: UpstreamRecord | undefined;
  private upstreamStart = 0;
  private isHead = false;
  private isGrpc = false;
  private localReplySent = false;

  constructor(private readonly cfg: ExchangeConfig) {
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
  }

  requestBytesReceived(): number {
    return this.reqBytes;
  }

  /** Runs one HTTP request through HCM → filter → router → upstream → filter → downstream. */
  async run(filterFactory: (cb: FilterCallbacks) => StreamFilter, req: ClientRequest, opts: RequestOptions = {}): Promise<ExchangeResult> {
    this.peerCertificate = opts.peerCertificate === undefined ? undefined : peerCertificateFacts(opts.peerCertificate);
    this.decoder = new DirectionPipe('request', this.routerSink(), this.cfg.bufferLimitBytes, () => {
      this.sendLocalReply({ status: 413, body: Buffer.from(STATUS_TEXT[413]!), details: 'request_payload_too_large' });
    }, () => this.downstreamHeadersSent);
    this.encoder = this.newEncoderPipe();
    this.filter = filterFactory(this);

    // HCM: build the request header map.
    const h = new HeaderMap('request');
    h.set(':authority', toBytes(req.authority));
    h.set(':path', toBytes(req.path));
    h.set(':method', req.method);
    h.set(':scheme', req.scheme ?? 'http');
    for (const [n, v] of req.headers ?? []) h.addEntry(n.toLowerCase(), toBytes(v));
    if (!h.has('x-forwarded-proto')) h.set('x-forwarded-proto', req.scheme ?? 'http');
    if (!h.has('x-request-id')) h.set('x-request-id', randomUUID());
    this.requestHeaders = h;
    this.isHead = req.method === 'HEAD';
    this.isGrpc = isGrpcRequest(h.get('content-type'));

    const chunks = req.body === undefined ? [] : Array.isArray(req.body) ? req.body : [Buffer.from(req.body)];
    const trailers = req.trailers !== undefined && req.trailers.length > 0 ? req.trailers : undefined;
    const headersEos = chunks.length === 0 && trailers === undefined;

    let abortTimer: NodeJS.Timeout | undefined;
    if (opts.abortAfterMs !== undefined) {
      abortTimer = setTimeout(() => { this.clientGone(); }, opts.abortAfterMs);
    }
    const guard = setTimeout(() => {
      if (this.finished) return;
      this.result.details = 'stand_in_timeout';
      this.result.status = 0;
      this.finish();
    }, opts.maxDurationMs ?? 20000);
    void this.feedRequest(h, headersEos, chunks, trailers, opts.pace ?? 'eager');
    const r = await this.done;
    if (abortTimer !== undefined) clearTimeout(abortTimer);
    clearTimeout(guard);
    return r;
  }

  private async feedRequest(h: HeaderMap, eos: boolean, chunks: Buffer[], trailers: HeaderPair[] | undefined, pace: NonNullable<RequestOptions['pace']>): Promise<void> {
    this.decoder.feedHeaders(h, eos, (hh, e) => this.filter.decodeHeaders(hh, e));
    for (let i = 0; i < chunks.length; i++) {
      await this.pace(pace, 'request');
      if (this.finished) return;
      const c = chunks[i]!;
      this.reqBytes += c.length;
      const last = i === chunks.length - 1 && trailers === undefined;
      this.decoder.feedData(c, last, (d, e) => this.filter.decodeData(d, e));
    }
    if (trailers !== undefined) {
      await this.pace(pace, 'request');
      if (this.finished) return;
      const t = new HeaderMap('request-trailers', trailers.map(([n, v]) => [n.toLowerCase(), toBytes(v)]));
      this.decoder.feedTrailers(t, (tt) => this.filter.decodeTrailers(tt));
    }
  }

  private async pace(pace: NonNullable<RequestOptions['pace']>, dir: 'request' | 'response'): Promise<void> {
    if (typeof pace === 'object') {
      await sleep(pace.trickleMs);
      return;
    }
    if (pace === 'eager') {
      await new Promise<void>((r) => setImmediate(r));
      return;
    }
    for (let waited = 0; waited < PACE_MAX_MS && !this.finished && this.cfg.isWaiting?.(dir) === true; waited += PACE_STEP_MS) {
      await sleep(PACE_STEP_MS);
    }
    await sleep(PACE_STEP_MS);
  }

  // ---- router → HTTP/1.1 upstream ----
  private routerSink(): Sink {
    let bodyParts: Buffer[] = [];
    const record = (): void => {
      if (this.upstreamRecord !== undefined) this.upstreamRecord.body = Buffer.concat(bodyParts);
    };
    return {
      headers: (h, eos) => {
        const method = h.get(':method') ?? 'GET';
        const path = h.get(':path') ?? '/';
        const out: HeaderPair[] = [['host', h.get(':authority') ?? '']];
        for (const [n, v] of h.pairs()) if (!n.startsWith(':') && n !== 'host') out.push([n, v]);
        out.push(['x-envoy-expected-rq-timeout-ms', String(ROUTE_TIMEOUT_MS)]);
        this.upstreamRecord = { method, path, headers: out, body: Buffer.alloc(0), trailers: [] };
        bodyParts = [];
        const flat: string[] = [];
        for (const [n, v] of out) flat.push(n, v);
        this.upstreamStart = Date.now();
        let req: NodeClientRequest;
        try {
          req = httpRequest({ host: this.cfg.upstream.host, port: this.cfg.upstream.port, method, path, headers: flat, setHost: false });
        } catch {
          this.upstreamFailure();
          return;
        }
        this.upstreamReq = req;
        req.on('response', (res) => { this.onUpstreamResponse(res); });
        req.on('error', () => { this.upstreamFailure(); });
        if (eos) req.end();
      },
      data: (d, eos) => {
        bodyParts.push(d);
        record();
        const req = this.upstreamReq;
        if (req === undefined || req.destroyed) return;
        if (d.length > 0) req.write(d);
        if (eos) req.end();
      },
      trailers: (t) => {
        const req = this.upstreamReq;
        if (this.upstreamRecord !== undefined && this.cfg.enableTrailers) this.upstreamRecord.trailers = t.pairs();
        if (req === undefined || req.destroyed) return;
        if (this.cfg.enableTrailers && !req.hasHeader('content-length')) req.addTrailers(Object.fromEntries(t.pairs()));
        req.end();
      },
    };
  }

  private upstreamFailure(): void {
    if (this.finished || this.localReplySent || this.encoder.headers !== undefined) {
      if (this.encoder.headers !== undefined && !this.finished && !this.localReplySent) this.resetDownstream('upstream_reset_after_response_started{remote_reset}');
      return;
    }
    this.sendLocalReply({
      status: 503,
      body: Buffer.from('upstream connect error or disconnect/reset before headers. reset reason: connection failure'),
      details: 'upstream_reset_before_response_started{connection_failure}',
    });
  }

  private onUpstreamResponse(res: IncomingMessage): void {
    if (this.finished || this.localReplySent) {
      res.destroy();
      return;
    }
    const h = new HeaderMap('response');
    h.set(':status', String(res.statusCode ?? 0));
    for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) {
      const n = res.rawHeaders[i]!.toLowerCase();
      if (!HOP_BY_HOP.has(n)) h.addEntry(n, res.rawHeaders[i + 1]!);
    }
    h.set('x-envoy-upstream-service-time', String(Date.now() - this.upstreamStart));
    this.finalizeResponseHeaders(h);
    const status = res.statusCode ?? 0;
    const eos = this.isHead || status === 204 || status === 304 || res.headers['content-length'] === '0';
    this.result.details = 'via_upstream';
    const encoder = this.encoder;
    encoder.feedHeaders(h, eos, (hh, e) => this.filter.encodeHeaders(hh, e));
    if (eos) {
      res.resume();
      return;
    }
    let pending: Buffer | undefined;
    res.on('data', (c: Buffer) => {
      if (pending !== undefined) encoder.feedData(pending, false, (d, e) => this.filter.encodeData(d, e));
      pending = c;
    });
    res.on('end', () => {
      const trailers = this.cfg.enableTrailers && res.rawTrailers.length > 0 ? res.rawTrailers : undefined;
      encoder.feedData(pending ?? Buffer.alloc(0), trailers === undefined, (d, e) => this.filter.encodeData(d, e));
      if (trailers !== undefined) {
        const t = new HeaderMap('response-trailers');
        for (let i = 0; i + 1 < trailers.length; i += 2) t.addEntry(trailers[i]!.toLowerCase(), trailers[i + 1]!);
        encoder.feedTrailers(t, (tt) => this.filter.encodeTrailers(tt));
      }
    });
    res.on('error', () => undefined);
  }

  private abortUpstream(): void {
    const req = this.upstreamReq;
    if (req !== undefined && !req.destroyed) req.destroy();
  }

  // ---- downstream (HTTP/2 client) ----
  private newEncoderPipe(): DirectionPipe {
    return new DirectionPipe('response', this.downstreamSink(), this.cfg.bufferLimitBytes, () => {
      if (this.downstreamHeadersSent) this.resetDownstream('response_payload_too_large');
      else this.sendLocalReply({ status: 500, body: Buffer.from(STATUS_TEXT[500]!), details: 'response_payload_too_large' });
    }, () => this.downstreamHeadersSent);
  }

  private downstreamSink(): Sink {
    return {
      headers: (h, eos) => {
        if (this.finished) return;
        // HCM encodeHeaders: date, server.
        h.set('date', new Date().toUTCString());
        h.set('server', 'envoy');
        this.downstreamHeadersSent = true;
        this.result.status = Number(h.get(':status') ?? '0');
        this.result.headers = h.pairs().filter(([n]) => n !== ':status').map(([n, v]) => [n, fromBytes(v)]);
        if (eos) this.finish();
      },
      data: (d, eos) => {
        if (this.finished) return;
        this.downstreamBody.push(d);
        if (eos) this.finish();
      },
      trailers: (t) => {
        if (this.finished) return;
        this.result.trailers = t.pairs().map(([n, v]) => [n, fromBytes(v)]);
        this.finish();
      },
    };
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.result.body = Buffer.concat(this.downstreamBody);
    if (this.upstreamRecord !== undefined) this.result.upstreamRequest = this.upstreamRecord;
    this.abortUpstream();
    this.filter.onDestroy();
    this.resolveDone(this.result);
  }

  private resetDownstream(details: string): void {
    if (this.finished) return;
    this.result.downstreamReset = true;
    this.result.details = details;
    this.finish();
  }

  private clientGone(): void {
    if (this.finished) return;
    this.result.clientAborted = true;
    this.result.details = 'downstream_remote_disconnect';
    this.finish();
  }

  /** RouteEntryImplBase::finalizeResponseHeaders, as far as the stand-in models routes: removals only. */
  private finalizeResponseHeaders(h: HeaderMap): void {
    for (const name of this.cfg.routeResponseHeadersToRemove ?? []) h.remove(name);
  }

  /** FilterManager::sendLocalReply (catalogue 7.7). */
  sendLocalReply(reply: LocalReplyRequest): void {
    if (this.finished) return;
    if (this.downstreamHeadersSent) {
      this.resetDownstream(reply.details);
      return;
    }
    this.localReplySent = true;
    // the route's header edits first, then the replying filter's own (filter_manager.cc)
    const modifyHeaders = (h: HeaderMap): void => {
      this.finalizeResponseHeaders(h);
      reply.modifyHeaders?.(h);
    };
    const lr = prepareLocalReply({ ...reply, modifyHeaders, isGrpc: this.isGrpc, isHeadRequest: this.isHead });
    this.decoder.abandoned = true;
    this.abortUpstream();
    const responseInChain = this.encoder.headers !== undefined;
    this.encoder.abandoned = true;
    this.result.details = lr.details;
    if (responseInChain) {
      // Response headers already in the encoder chain but not sent: straight to the codec.
      this.downstreamSink().headers(lr.headers, lr.body.length === 0);
      if (lr.body.length > 0) this.downstreamSink().data(lr.body, true);
      return;
    }
    // Request phase: through the encoder filter chain (the filter sees encodeHeaders, 1.19).
    this.encoder = this.newEncoderPipe();
    const enc = this.encoder;
    enc.feedHeaders(lr.headers, lr.body.length === 0, (hh, e) => this.filter.encodeHeaders(hh, e));
    if (lr.body.length > 0) enc.feedData(lr.body, true, (d, e) => this.filter.encodeData(d, e));
  }
}
