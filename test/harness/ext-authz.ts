// ExtAuthzStandIn: Envoy's ext_authz HTTP filter (gRPC flavour) in front of a real HTTP/1.1
// upstream. Catalogue section 11. Sources: source/extensions/filters/http/ext_authz/ext_authz.cc,
// source/extensions/filters/common/ext_authz/{ext_authz_grpc_impl,check_request_utils}.cc.
import { create, type JsonObject } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import * as grpc from '@grpc/grpc-js';
import { authorizationService } from '../../src/envoy/grpc-services.js';
import { AddressSchema, SocketAddressSchema } from '../../src/gen/envoy/config/core/v3/address_pb.js';
import { HeaderMapSchema, HeaderValueOption_HeaderAppendAction as AppendAction, HeaderValueSchema, MetadataSchema, type HeaderValueOption } from '../../src/gen/envoy/config/core/v3/base_pb.js';
import type { BufferSettings, ExtAuthz, ExtAuthzPerRoute } from '../../src/gen/envoy/extensions/filters/http/ext_authz/v3/ext_authz_pb.js';
import { AttributeContextSchema, AttributeContext_HttpRequestSchema, AttributeContext_PeerSchema, AttributeContext_RequestSchema } from '../../src/gen/envoy/service/auth/v3/attribute_context_pb.js';
import { CheckRequestSchema, type CheckRequest, type CheckResponse, type OkHttpResponse } from '../../src/gen/envoy/service/auth/v3/external_auth_pb.js';
import { Exchange, type ClientRequest, type DataStatus, type ExchangeResult, type FilterCallbacks, type HeadersStatus, type RequestOptions, type StreamFilter, type TrailersStatus } from './filter-manager.js';
import { HeaderMap, toBytes } from './headers.js';
import { MutationChecker, headerNameIsValid, headerValueIsValid, stringMatches } from './mutation-checker.js';

export interface ExtAuthzStandInOptions {
  authzAddress: string;
  filter: ExtAuthz;
  /** One per-route config, or a chain from least to most specific. */
  perRoute?: ExtAuthzPerRoute | ExtAuthzPerRoute[];
  upstream: { host: string; port: number };
  /** Overrides filter.status_on_error (handy since HttpStatus wraps an enum). */
  statusOnError?: number;
  bufferLimitBytes?: number;
  headerPrefix?: string;
  maxHeadersCount?: number;
  maxHeadersKb?: number;
  enableTrailers?: boolean;
  /** the route configuration's response_headers_to_remove (ExchangeConfig.routeResponseHeadersToRemove) */
  routeResponseHeadersToRemove?: readonly string[];
}

export interface ExtAuthzRequestOptions extends RequestOptions {
  dynamicMetadata?: Record<string, JsonObject>;
}

export type AuthzOutcome = 'skipped' | 'ok' | 'denied' | 'error' | 'pending';

export interface ExtAuthzResult extends ExchangeResult {
  checkRequest?: CheckRequest;
  checkResponse?: CheckResponse;
  /** gRPC failure of the Check call, if any. */
  grpcError?: { code: number; details: string };
  outcome: AuthzOutcome;
  /** grpc-timeout Envoy put on the Check call (11.1), if any. */
  grpcTimeout?: string;
  dynamicMetadata: Record<string, Record<string, unknown>>;
  /** The Check call was cancelled because the client went away (11.20). */
  checkCancelled: boolean;
}

const FILTER_NS = 'envoy.filters.http.ext_authz';

/** MessageUtil::sanitizeUtf8String: every byte of an invalid UTF-8 sequence becomes '!'. */
export function sanitizeUtf8(bytes: Buffer): string {
  let out = '';
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i]!;
    let n = 0;
    if (b < 0x80) n = 1;
    else if (b >= 0xc2 && b <= 0xdf) n = 2;
    else if (b >= 0xe0 && b <= 0xef) n = 3;
    else if (b >= 0xf0 && b <= 0xf4) n = 4;
    let ok = n > 0 && i + n <= bytes.length;
    for (let k = 1; ok && k < n; k++) ok = (bytes[i + k]! & 0xc0) === 0x80;
    if (ok && n > 1) ok = Buffer.from(bytes.subarray(i, i + n)).toString('utf8') !== '\ufffd';
    if (ok) {
      out += bytes.subarray(i, i + n).toString('utf8');
      i += n;
    } else {
      out += '!';
      i += 1;
    }
  }
  return out;
}

interface MergedAuthzRoute {
  disabled: boolean;
  contextExtensions: Record<string, string>;
  withRequestBody: BufferSettings | undefined;
  disableRequestBodyBuffering: boolean;
}

function mergeRoutes(list: readonly ExtAuthzPerRoute[]): MergedAuthzRoute {
  const m: MergedAuthzRoute = { disabled: false, contextExtensions: {}, withRequestBody: undefined, disableRequestBodyBuffering: false };
  for (const c of list) {
    if (c.override.case === 'disabled') {
      m.disabled = c.override.value;
    } else if (c.override.case === 'checkSettings') {
      m.disabled = false;
      const cs = c.override.value;
      Object.assign(m.contextExtensions, cs.contextExtensions); // 11.8: more specific key wins
      if (cs.withRequestBody !== undefined) m.withRequestBody = cs.withRequestBody;
      if (cs.disableRequestBodyBuffering) m.disableRequestBodyBuffering = true;
    }
  }
  return m;
}

class ExtAuthzFilter implements StreamFilter {
  outcome: AuthzOutcome = 'skipped';
  checkRequest: CheckRequest | undefined;
  checkResponse: CheckResponse | undefined;
  grpcError: { code: number; details: string } | undefined;
  grpcTimeout: string | undefined;
  checkCancelled = false;
  private call: grpc.ClientUnaryCall | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false; // filter_return_ == StopDecoding
  private bufferData = false;
  private maxRequestBytes = 0;
  private allowPartial = false;
  private packAsBytes = false;
  private responseHeadersToAdd: HeaderValueOption[] = [];
  private readonly route: MergedAuthzRoute;
  private requestHeaders: HeaderMap | undefined;
  private readonly checker: MutationChecker | undefined;

  constructor(
    private readonly opts: ExtAuthzStandInOptions,
    private readonly cbs: FilterCallbacks,
    private readonly client: grpc.Client,
  ) {
    const list = opts.perRoute === undefined ? [] : Array.isArray(opts.perRoute) ? opts.perRoute : [opts.perRoute];
    this.route = mergeRoutes(list);
    const rules = opts.filter.decoderHeaderMutationRules;
    this.checker = rules === undefined ? undefined : new MutationChecker(rules, opts.headerPrefix ?? 'x-envoy');
  }

  decodeHeaders(h: HeaderMap, eos: boolean): HeadersStatus {
    if (this.route.disabled) return 'Continue'; // 11.3
    this.requestHeaders = h;
    const settings = this.route.withRequestBody ?? this.opts.filter.withRequestBody;
    // 11.2
    this.bufferData = settings !== undefined && !this.route.disableRequestBodyBuffering && !eos;
    if (settings !== undefined) {
      this.maxRequestBytes = settings.maxRequestBytes;
      this.allowPartial = settings.allowPartialMessage;
      this.packAsBytes = settings.packAsBytes;
    }
    if (this.bufferData) {
      // 11.7: without allow_partial_message the decoder buffer limit becomes max_request_bytes (→ 413).
      if (!this.allowPartial) this.cbs.decoder.setBufferLimit(this.maxRequestBytes);
      this.stopped = true;
      return 'StopIteration';
    }
    this.initiateCall();
    return this.stopped ? 'StopIteration' : 'Continue';
  }

  private isBufferFull(n: number): boolean {
    if (!this.allowPartial) return false;
    return (this.cbs.decoder.bufferedData()?.length ?? 0) + n >= this.maxRequestBytes;
  }

  decodeData(data: Buffer, eos: boolean): { status: DataStatus; data: Buffer } {
    if (this.bufferData && this.outcome === 'skipped') {
      if (eos || this.isBufferFull(data.length)) {
        this.cbs.decoder.addBufferedData(data);
        if (this.cbs.decoder.aborted()) return { status: 'StopIterationNoBuffer', data: Buffer.alloc(0) };
        this.initiateCall();
        return { status: this.stopped ? 'StopIterationNoBuffer' : 'Continue', data: Buffer.alloc(0) };
      }
      return { status: 'StopIterationAndBuffer', data };
    }
    return { status: this.stopped ? 'StopIterationAndWatermark' : 'Continue', data };
  }

  decodeTrailers(_t: HeaderMap): TrailersStatus {
    if (this.bufferData && this.outcome === 'skipped') this.initiateCall();
    return this.stopped ? 'StopIteration' : 'Continue';
  }

  encodeHeaders(h: HeaderMap, _eos: boolean): HeadersStatus {
    // 11.12: response_headers_to_add on OK.
    for (const o of this.responseHeadersToAdd) {
      if (o.header === undefined) continue;
      const key = o.header.key.toLowerCase();
      const value = toBytes(o.header.value);
      if (o.append !== undefined) {
        if (o.append) h.addEntry(key, value);
        else h.set(key, value);
        continue;
      }
      switch (o.appendAction) {
        case AppendAction.APPEND_IF_EXISTS_OR_ADD:
          h.addEntry(key, value);
          break;
        case AppendAction.ADD_IF_ABSENT:
          if (!h.has(key)) h.addEntry(key, value);
          break;
        case AppendAction.OVERWRITE_IF_EXISTS_OR_ADD:
          h.set(key, value);
          break;
        case AppendAction.OVERWRITE_IF_EXISTS:
          if (h.has(key)) h.set(key, value);
          break;
      }
    }
    return 'Continue';
  }
  encodeData(data: Buffer): { status: DataStatus; data: Buffer } {
    return { status: 'Continue', data };
  }
  encodeTrailers(): TrailersStatus {
    return 'Continue';
  }

  onDestroy(): void {
    // 11.20
    if (this.outcome === 'pending') {
      this.checkCancelled = true;
      this.call?.cancel();
      if (this.timer !== undefined) clearTimeout(this.timer);
    }
  }

  // ---- the Check call ----
  private buildCheckRequest(h: HeaderMap): CheckRequest {
    const f = this.opts.filter;
    const allowed = f.allowedHeaders?.patterns ?? [];
    const disallowed = f.disallowedHeaders?.patterns ?? [];
    const pairs = h.pairs().filter(([k]) => {
      if (k === 'x-envoy-auth-partial-body') return false; // 11.6
      if (allowed.length > 0 && !allowed.some((m) => stringMatches(m, k))) return false;
      return !disallowed.some((m) => stringMatches(m, k));
    });
    const body = this.bufferData || (this.cbs.decoder.bufferedData() !== null && (this.route.withRequestBody ?? f.withRequestBody) !== undefined)
      ? this.cbs.decoder.bufferedData() ?? Buffer.alloc(0)
      : undefined;
    const http = create(AttributeContext_HttpRequestSchema, {
      id: this.cbs.streamId.toString(10),
      method: h.get(':method') ?? '',
      host: h.get(':authority') ?? '',
      path: h.get(':path') ?? '',
      scheme: h.get(':scheme') ?? '',
      protocol: 'HTTP/2',
      size: BigInt(this.cbs.requestBytesReceived()),
      query: '',
      fragment: '',
    });
    const extraHeaders: [string, string][] = [];
    if (body !== undefined) {
      const slice = body.subarray(0, this.maxRequestBytes);
      if (this.packAsBytes) http.rawBody = Buffer.from(slice);
      else http.body = sanitizeUtf8(slice);
      extraHeaders.push(['x-envoy-auth-partial-body', body.length >= this.maxRequestBytes ? 'true' : 'false']);
    }
    if (f.encodeRawHeaders) {
      http.headerMap = create(HeaderMapSchema, {
        headers: [...pairs, ...extraHeaders].map(([k, v]) => create(HeaderValueSchema, { key: k, rawValue: Buffer.from(v, 'latin1') })),
      });
    } else {
      for (const [k, v] of [...pairs, ...extraHeaders]) {
        const s = sanitizeUtf8(Buffer.from(v, 'latin1'));
        http.headers[k] = k in http.headers ? `${http.headers[k]!},${s}` : s;
      }
    }
    const filterMetadata: Record<string, JsonObject> = {};
    for (const ns of f.metadataContextNamespaces) {
      const v = this.cbs.dynamicMetadata[ns];
      if (v !== undefined) filterMetadata[ns] = v as JsonObject;
    }
    const peer = (a: { address: string; port: number }, service = ''): ReturnType<typeof create<typeof AttributeContext_PeerSchema>> =>
      create(AttributeContext_PeerSchema, {
        address: create(AddressSchema, { address: { case: 'socketAddress', value: create(SocketAddressSchema, { address: a.address, portSpecifier: { case: 'portValue', value: a.port } }) } }),
        service,
      });
    // 11.4: the peer certificate's first URI SAN, else DNS SAN, else subject; the PEM only with include_peer_certificate
    const client = this.cbs.peerCertificate;
    const source = peer(this.cbs.downstreamRemote, h.get('x-envoy-downstream-service-cluster') ?? '');
    if (client) {
      source.principal = client.uriSan ?? client.dnsSan ?? client.subject;
      if (f.includePeerCertificate) source.certificate = client.urlEncodedPem;
    }
    return create(CheckRequestSchema, {
      attributes: create(AttributeContextSchema, {
        source,
        destination: peer(this.cbs.downstreamLocal),
        request: create(AttributeContext_RequestSchema, { time: timestampFromDate(this.cbs.startTime), http }),
        contextExtensions: { ...this.route.contextExtensions },
        metadataContext: create(MetadataSchema, { filterMetadata }),
      }),
    });
  }

  private initiateCall(): void {
    const h = this.requestHeaders!;
    this.outcome = 'pending';
    this.callStart = Date.now();
    this.stopped = true;
    const req = this.buildCheckRequest(h);
    this.checkRequest = req;
    const gs = this.opts.filter.services.case === 'grpcService' ? this.opts.filter.services.value : undefined;
    const timeoutMs = gs?.timeout === undefined ? 200 : Number(gs.timeout.seconds) * 1000 + Math.floor(gs.timeout.nanos / 1e6); // 11.1
    const md = new grpc.Metadata();
    if (timeoutMs > 0) {
      this.grpcTimeout = `${timeoutMs}m`;
      md.set('grpc-timeout', this.grpcTimeout);
    }
    for (const hv of gs?.initialMetadata ?? []) md.set(hv.key.toLowerCase(), hv.value);
    const def = authorizationService.check;
    let settled = false;
    const settle = (resp: CheckResponse | undefined, err: { code: number; details: string } | undefined): void => {
      if (settled || this.outcome !== 'pending') return;
      settled = true;
      if (this.timer !== undefined) clearTimeout(this.timer);
      this.onComplete(resp, err);
    };
    this.call = this.client.makeUnaryRequest(def.path, def.requestSerialize, def.responseDeserialize, req, md, {}, (err, resp) => {
      if (err !== null) settle(undefined, { code: err.code, details: err.details });
      else settle(resp, undefined);
    });
    if (timeoutMs > 0) {
      this.timer = setTimeout(() => {
        this.call?.cancel();
        settle(undefined, { code: grpc.status.DEADLINE_EXCEEDED, details: 'timeout' });
      }, timeoutMs);
    }
  }

  private setMetadata(resp: CheckResponse | undefined, okResp: OkHttpResponse | undefined): void {
    // 11.14: fixed namespace; the deprecated ok_response.dynamic_metadata replaces the top-level one;
    // ext_authz_duration (ms) added.
    if (this.opts.filter.enableDynamicMetadataIngestion === false) return;
    const md = okResp?.dynamicMetadata ?? resp?.dynamicMetadata ?? {};
    this.cbs.dynamicMetadata[FILTER_NS] = { ...(this.cbs.dynamicMetadata[FILTER_NS] ?? {}), ...md, ext_authz_duration: Date.now() - this.callStart };
  }
  private callStart = 0;

  private onComplete(resp: CheckResponse | undefined, err: { code: number; details: string } | undefined): void {
    this.checkResponse = resp;
    this.grpcError = err;
    const code = resp?.status?.code ?? 0;
    // 11.9
    const outcome: 'ok' | 'denied' | 'error' = resp === undefined ? 'error' : code === 0 ? 'ok' : 'denied';
    this.outcome = outcome;
    const okResp = resp?.httpResponse.case === 'okResponse' ? resp.httpResponse.value : undefined;
    this.setMetadata(resp, okResp);
    switch (outcome) {
      case 'ok':
        this.onOk(okResp);
        return;
      case 'denied': {
        const denied = resp?.httpResponse.case === 'deniedResponse' ? resp.httpResponse.value : undefined;
        const deniedCode: number = denied?.status?.code ?? 0;
        const status = deniedCode > 0 ? deniedCode : 403; // 11.17
        const headers = (denied?.headers ?? []).filter((o) => o.append !== true && o.header !== undefined);
        this.cbs.sendLocalReply({
          status,
          body: Buffer.from(denied?.body ?? '', 'utf8'),
          details: 'ext_authz_denied',
          modifyHeaders: (m) => {
            for (const o of headers) m.remove(o.header!.key);
            for (const o of headers) m.addEntry(o.header!.key.toLowerCase(), toBytes(o.header!.value));
          },
        });
        return;
      }
      case 'error':
        if (this.opts.filter.failureModeAllow) {
          if (this.opts.filter.failureModeAllowHeaderAdd) this.requestHeaders!.set('x-envoy-auth-failure-mode-allowed', 'true');
          this.resume();
          return;
        }
        this.cbs.sendLocalReply({ status: this.statusOnError(), body: Buffer.alloc(0), details: 'ext_authz_error' }); // 11.18
        return;
    }
  }

  private statusOnError(): number {
    const s = this.opts.statusOnError ?? this.opts.filter.statusOnError?.code ?? 403;
    return s >= 100 && s <= 511 ? s : 403;
  }

  private resume(): void {
    this.stopped = false;
    this.cbs.decoder.continue();
  }

  private invalid(): void {
    this.cbs.sendLocalReply({ status: 500, body: Buffer.alloc(0), details: 'ext_authz_invalid' });
  }

  /** Returns false when the mutation must fail the request (11.15). */
  private checkMutation(op: 'set' | 'append' | 'remove', key: string, value: string): 'ok' | 'ignore' | 'fail' {
    if (this.opts.filter.validateMutations && (!headerNameIsValid(key) || !headerValueIsValid(value))) return 'fail';
    if (this.checker === undefined) {
      if (op === 'remove' && (key.startsWith(':') || key === 'host')) return 'ignore';
      return headerNameIsValid(key) && headerValueIsValid(value) ? 'ok' : 'ignore';
    }
    return this.checker.check(op, key, value);
  }

  private onOk(ok: OkHttpResponse | undefined): void {
    const h = this.requestHeaders!;
    if (ok !== undefined) {
      // 11.10: value from HeaderValue.value; append true → only if present (comma-joined).
      for (const o of ok.headers) {
        if (o.header === undefined) continue;
        const key = o.header.key.toLowerCase();
        const value = toBytes(o.header.value);
        const append = o.append === true;
        if (append && !h.has(key)) continue;
        const r = this.checkMutation(append ? 'append' : 'set', key, value);
        if (r === 'fail') { this.invalid(); return; }
        if (r === 'ignore') continue;
        if (append) {
          const all = h.getAll(key);
          h.set(key, [...all, value].join(','));
        } else {
          h.set(key, value);
        }
      }
      // 11.11
      for (const name of ok.headersToRemove) {
        const key = name.toLowerCase();
        const r = this.checkMutation('remove', key, '');
        if (r === 'fail') { this.invalid(); return; }
        if (r === 'ignore') continue;
        h.remove(key);
      }
      // 11.13
      if (ok.queryParametersToSet.length > 0 || ok.queryParametersToRemove.length > 0) {
        const path = h.get(':path') ?? '/';
        const q = path.indexOf('?');
        const base = q < 0 ? path : path.slice(0, q);
        const params = new URLSearchParams(q < 0 ? '' : path.slice(q + 1));
        for (const p of ok.queryParametersToSet) params.set(p.key, p.value);
        for (const k of ok.queryParametersToRemove) params.delete(k);
        const qs = params.toString();
        h.set(':path', qs === '' ? base : `${base}?${qs}`);
      }
      this.responseHeadersToAdd = [...ok.responseHeadersToAdd];
    }
    const count = this.opts.maxHeadersCount ?? 100;
    const kb = this.opts.maxHeadersKb ?? 60;
    if (h.size > count || h.byteSize() > kb * 1024) { this.invalid(); return; }
    this.resume();
  }
}

export class ExtAuthzStandIn {
  private readonly client: grpc.Client;

  constructor(private readonly opts: ExtAuthzStandInOptions) {
    const gs = opts.filter.services.case === 'grpcService' ? opts.filter.services.value : undefined;
    const eg = gs?.targetSpecifier.case === 'envoyGrpc' ? gs.targetSpecifier.value : undefined;
    const authority = eg !== undefined ? (eg.authority !== '' ? eg.authority : eg.clusterName) : 'ext_authz';
    this.client = new grpc.Client(opts.authzAddress, grpc.credentials.createInsecure(), { 'grpc.default_authority': authority });
  }

  async request(req: ClientRequest, ropts: ExtAuthzRequestOptions = {}): Promise<ExtAuthzResult> {
    let filter: ExtAuthzFilter | undefined;
    const exchange = new Exchange({
      upstream: this.opts.upstream,
      bufferLimitBytes: this.opts.bufferLimitBytes ?? 1024 * 1024,
      enableTrailers: this.opts.enableTrailers ?? false,
      isWaiting: () => filter?.outcome === 'pending',
      ...(this.opts.routeResponseHeadersToRemove === undefined ? {} : { routeResponseHeadersToRemove: this.opts.routeResponseHeadersToRemove }),
    });
    Object.assign(exchange.dynamicMetadata, structuredClone(ropts.dynamicMetadata ?? {}));
    const result = await exchange.run((cbs) => (filter = new ExtAuthzFilter(this.opts, cbs, this.client)), req, ropts);
    const f = filter!;
    const out: ExtAuthzResult = { ...result, outcome: f.outcome, dynamicMetadata: exchange.dynamicMetadata, checkCancelled: f.checkCancelled };
    if (f.checkRequest !== undefined) out.checkRequest = f.checkRequest;
    if (f.checkResponse !== undefined) out.checkResponse = f.checkResponse;
    if (f.grpcError !== undefined) out.grpcError = f.grpcError;
    if (f.grpcTimeout !== undefined) out.grpcTimeout = f.grpcTimeout;
    return out;
  }

  close(): void {
    this.client.close();
  }
}
