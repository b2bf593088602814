// ExtProcStandIn: drives an ext_proc processor exactly as Envoy's HCM + ext_proc filter + router
// would, against a real HTTP/1.1 upstream. See BEHAVIOURS.md for the catalogue mapping.
import type { JsonObject } from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import type { GrpcService } from '../../src/gen/envoy/config/core/v3/grpc_service_pb.js';
import type { HeaderValue } from '../../src/gen/envoy/config/core/v3/base_pb.js';
import type { ExternalProcessor, ExtProcPerRoute } from '../../src/gen/envoy/extensions/filters/http/ext_proc/v3/ext_proc_pb.js';
import type { ProcessingRequest, ProcessingResponse } from '../../src/gen/envoy/service/ext_proc/v3/external_processor_pb.js';
import { ExtProcFilter, newCounters, type ExtProcCounters, type NewerExtProcFields } from './ext-proc-filter.js';
import { ProcessorStream, type StreamClosedBy } from './ext-proc-stream.js';
import { Exchange, type ClientRequest, type ExchangeResult, type FilterCallbacks, type RequestOptions } from './filter-manager.js';
import type { HeaderMap } from './headers.js';
import { MutationChecker } from './mutation-checker.js';
import { mergeHeaderValues } from './processing-mode.js';

export type { ClientRequest, RequestOptions } from './filter-manager.js';

export interface ExtProcStandInOptions {
  /** host:port of the processor (h2c). Every cluster name resolves here unless `clusters` says otherwise. */
  processorAddress: string;
  filter: ExternalProcessor;
  /** One per-route config, or a chain from least to most specific (virtual host → route), 9.8. */
  perRoute?: ExtProcPerRoute | ExtProcPerRoute[];
  upstream: { host: string; port: number };
  bufferLimitBytes?: number; // default 1 MiB
  headerPrefix?: string; // default 'x-envoy'
  maxHeadersCount?: number; // default 100
  maxHeadersKb?: number; // default 60
  /** Cluster name → host:port for grpc_service overrides (9.3). */
  clusters?: Record<string, string>;
  /** Upstream cluster http_protocol_options.enable_trailers (Envoy default false). */
  enableTrailers?: boolean;
  /** Fields of newer Envoy APIs the vendored protos cannot express. */
  newer?: NewerExtProcFields;
}

export interface ExtProcRequestOptions extends RequestOptions {
  /** Stream dynamic metadata set by earlier filters (for forwarding_namespaces, 8.5). */
  dynamicMetadata?: Record<string, JsonObject>;
}

export interface ExtProcResult extends ExchangeResult {
  sent: ProcessingRequest[];
  received: ProcessingResponse[];
  dynamicMetadata: Record<string, Record<string, unknown>>;
  counters: ExtProcCounters;
  /** 'none': no stream was opened; 'envoy': Envoy closed it (half-close + cancel); 'server': the server finished it first. */
  streamClosedBy: StreamClosedBy;
  /** The server's final status, if it finished the stream before Envoy closed it. */
  serverStatus?: { code: number; details: string };
  /** Initial metadata Envoy put on the Process stream (10.6). */
  streamMetadata?: Record<string, string>;
}

/** Envoy header formatter, minimal: %REQ(name)% only. */
function formatValue(v: string, req: HeaderMap): string {
  return v.replace(/%REQ\(([^)]+)\)%/g, (_m, name: string) => req.get(name.toLowerCase()) ?? '');
}

export class ExtProcStandIn {
  private readonly clients = new Map<string, grpc.Client>();
  private readonly checker: MutationChecker;

  constructor(private readonly opts: ExtProcStandInOptions) {
    this.checker = new MutationChecker(opts.filter.mutationRules, opts.headerPrefix ?? 'x-envoy');
  }

  private client(address: string, authority: string): grpc.Client {
    const key = `${address}|${authority}`;
    let c = this.clients.get(key);
    if (c === undefined) {
      c = new grpc.Client(address, grpc.credentials.createInsecure(), { 'grpc.default_authority': authority });
      this.clients.set(key, c);
    }
    return c;
  }

  async request(req: ClientRequest, ropts: ExtProcRequestOptions = {}): Promise<ExtProcResult> {
    const sent: ProcessingRequest[] = [];
    const received: ProcessingResponse[] = [];
    const counters = newCounters();
    const perRoute = this.opts.perRoute === undefined ? [] : Array.isArray(this.opts.perRoute) ? this.opts.perRoute : [this.opts.perRoute];
    let filter: ExtProcFilter | undefined;
    let stream: ProcessorStream | undefined;
    let streamMetadata: Record<string, string> | undefined;
    const exchange = new Exchange({
      upstream: this.opts.upstream,
      bufferLimitBytes: this.opts.bufferLimitBytes ?? 1024 * 1024,
      enableTrailers: this.opts.enableTrailers ?? false,
      isWaiting: (dir) => filter?.isWaiting(dir) ?? false,
    });
    Object.assign(exchange.dynamicMetadata, structuredClone(ropts.dynamicMetadata ?? {}));
    const factory = (cbs: FilterCallbacks): ExtProcFilter => {
      filter = new ExtProcFilter(
        {
          proto: this.opts.filter,
          perRoute,
          newer: this.opts.newer ?? {},
          checker: this.checker,
          limits: { maxHeadersCount: this.opts.maxHeadersCount ?? 100, maxHeadersKb: this.opts.maxHeadersKb ?? 60 },
          sent,
          received,
          counters,
          openStream: (service, events) => {
            const { metadata, authority, address, record } = this.streamSetup(service, filter?.merged?.grpcInitialMetadata ?? [], cbs.requestHeaders);
            streamMetadata = record;
            stream = new ProcessorStream(this.client(address, authority), metadata, events);
            return stream;
          },
        },
        cbs,
      );
      return filter;
    };
    const result = await exchange.run(factory, req, ropts);
    const out: ExtProcResult = {
      ...result,
      sent,
      received,
      dynamicMetadata: exchange.dynamicMetadata,
      counters,
      streamClosedBy: stream?.closedBy ?? 'none',
    };
    if (stream?.serverStatus !== undefined) out.serverStatus = stream.serverStatus;
    if (streamMetadata !== undefined) out.streamMetadata = streamMetadata;
    return out;
  }

  /** 10.6: stream initial metadata and target. */
  private streamSetup(service: GrpcService | undefined, routeMetadata: HeaderValue[], reqHeaders: HeaderMap): { metadata: grpc.Metadata; authority: string; address: string; record: Record<string, string> } {
    const envoyGrpc = service?.targetSpecifier.case === 'envoyGrpc' ? service.targetSpecifier.value : undefined;
    const cluster = envoyGrpc?.clusterName ?? '';
    const authority = envoyGrpc !== undefined && envoyGrpc.authority !== '' ? envoyGrpc.authority : cluster || 'ext_proc';
    const address = this.opts.clusters?.[cluster] ?? this.opts.processorAddress;
    const md = new grpc.Metadata();
    const record: Record<string, string> = {};
    const put = (k: string, v: string): void => {
      md.set(k, v);
      record[k] = v;
    };
    for (const h of mergeHeaderValues(service?.initialMetadata ?? [], routeMetadata)) {
      const raw = h.rawValue.length > 0 ? Buffer.from(h.rawValue).toString('latin1') : h.value;
      put(h.key.toLowerCase(), formatValue(raw, reqHeaders));
    }
    if (envoyGrpc?.skipEnvoyHeaders !== true) {
      put('x-envoy-internal', 'true');
      put('x-forwarded-for', '127.0.0.1');
    }
    return { metadata: md, authority, address, record };
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}
