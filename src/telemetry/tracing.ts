// W3C trace context for each request. Gatehouse continues the request's trace (or starts one when
// the incoming `traceparent` is absent or invalid), gives its own span a fresh id, and hands
// upstream a traceparent whose parent is that span. With an OTLP endpoint configured the spans are
// exported through the OpenTelemetry SDK (batched); without one no SDK object exists and a request
// costs two random ids and a string.
import { randomFillSync } from 'node:crypto';
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  createTraceState,
  trace,
  type Span,
  type SpanContext,
  type Tracer,
} from '@opentelemetry/api';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  type BufferConfig,
  type ReadableSpan,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-base';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { Logger } from 'pino';
import type { Decision, RequestSpan, Tracing } from './types.js';

// ---- parsing --------------------------------------------------------------------------------

export interface TraceParent {
  readonly traceId: string;
  /** the caller's span id: gatehouse's span is its child */
  readonly parentId: string;
  /** trace-flags; bit 0 is `sampled` */
  readonly flags: number;
}

const HEX_LOWER = /^[0-9a-f]+$/;
const ZERO_TRACE_ID = '0'.repeat(32);
const ZERO_SPAN_ID = '0'.repeat(16);

/**
 * Parses a `traceparent` header per W3C Trace Context level 1: lowercase hex only, non-zero ids,
 * version `ff` invalid, version `00` exactly 55 characters. A higher version is read as `00`
 * when its first 55 characters are well-formed and what follows starts with `-` (the spec's
 * forward-compatibility rule). Anything else: undefined, and the caller starts a new trace.
 */
export function parseTraceparent(header: string | undefined): TraceParent | undefined {
  if (header === undefined) return undefined;
  const value = header.trim();
  if (value.length < 55) return undefined;
  const version = value.slice(0, 2);
  if (!HEX_LOWER.test(version) || version === 'ff') return undefined;
  if (version === '00' ? value.length !== 55 : value.length > 55 && value[55] !== '-') return undefined;
  if (value[2] !== '-' || value[35] !== '-' || value[52] !== '-') return undefined;
  const traceId = value.slice(3, 35);
  const parentId = value.slice(36, 52);
  const flags = value.slice(53, 55);
  if (!HEX_LOWER.test(traceId) || !HEX_LOWER.test(parentId) || !HEX_LOWER.test(flags)) return undefined;
  if (traceId === ZERO_TRACE_ID || parentId === ZERO_SPAN_ID) return undefined;
  return { traceId, parentId, flags: Number.parseInt(flags, 16) };
}

const TRACESTATE_KEY = /^(?:[a-z][a-z0-9_\-*/]{0,255}|[a-z0-9][a-z0-9_\-*/]{0,240}@[a-z][a-z0-9_\-*/]{0,13})$/;
// printable ASCII except `,` and `=`; spaces allowed inside but not at the end
const TRACESTATE_VALUE = /^[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$/;
export const MAX_TRACESTATE_MEMBERS = 32;

/**
 * Validates a `tracestate` header (W3C list-members: keys, values, at most 32, no duplicate keys;
 * empty members and optional whitespace around them are allowed) and returns it normalised
 * (`k=v,k=v`), or undefined when absent, empty or invalid: an invalid tracestate is dropped whole.
 */
export function parseTracestate(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const members: string[] = [];
  const keys = new Set<string>();
  for (const raw of header.split(',')) {
    const member = raw.trim();
    if (member === '') continue;
    const eq = member.indexOf('=');
    if (eq <= 0) return undefined;
    const key = member.slice(0, eq);
    const value = member.slice(eq + 1);
    if (!TRACESTATE_KEY.test(key) || !TRACESTATE_VALUE.test(value) || keys.has(key)) return undefined;
    keys.add(key);
    members.push(member);
    if (members.length > MAX_TRACESTATE_MEMBERS) return undefined;
  }
  return members.length === 0 ? undefined : members.join(',');
}

// ---- ids ------------------------------------------------------------------------------------

const POOL_BYTES = 4096;
const pool = Buffer.alloc(POOL_BYTES);
let poolOffset = POOL_BYTES;

/** `bytes` random bytes as lowercase hex, never all zero; one randomFill per ~170 requests. */
export function randomHexId(bytes: number): string {
  for (;;) {
    if (poolOffset + bytes > POOL_BYTES) {
      randomFillSync(pool);
      poolOffset = 0;
    }
    const start = poolOffset;
    poolOffset += bytes;
    for (let i = start; i < poolOffset; i++) {
      if (pool[i] !== 0) return pool.toString('hex', start, poolOffset);
    }
  }
}

function formatTraceparent(traceId: string, spanId: string, sampled: boolean): string {
  return `00-${traceId}-${spanId}-${sampled ? '01' : '00'}`;
}

// ---- spans ----------------------------------------------------------------------------------

/** The span of a request when nothing is exported: ids only. */
class IdOnlySpan implements RequestSpan {
  constructor(
    readonly traceId: string,
    readonly traceparent: string,
    readonly tracestate: string | undefined,
  ) {}
  setAttribute(): void {
    /* nothing is recorded without an exporter */
  }
  end(): void {
    /* nothing is recorded without an exporter */
  }
}

class SdkSpan implements RequestSpan {
  constructor(
    private readonly span: Span,
    readonly traceId: string,
    readonly traceparent: string,
    readonly tracestate: string | undefined,
  ) {}
  setAttribute(key: string, value: string | number | boolean): void {
    this.span.setAttribute(key, value);
  }
  end(decision: Decision, status?: number): void {
    this.span.setAttribute('gatehouse.decision', decision);
    if (status !== undefined) this.span.setAttribute('http.response.status_code', status);
    if (decision === 'error' || (status !== undefined && status >= 500)) {
      this.span.setStatus({ code: SpanStatusCode.ERROR, message: decision === 'error' ? 'gatehouse error' : `status ${status}` });
    }
    this.span.end();
  }
}

// ---- tracing --------------------------------------------------------------------------------

export interface OtlpOptions {
  /** the OTLP/HTTP traces URL, e.g. `http://otel-collector:4318/v1/traces` */
  readonly url: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly timeoutMillis?: number;
}

export interface TracingOptions {
  /** the `service.name` resource attribute */
  readonly serviceName: string;
  readonly serviceVersion?: string;
  /** export spans here; absent: ids only, nothing recorded */
  readonly otlp?: OtlpOptions;
  /** share of new traces (no valid incoming traceparent) gatehouse samples; default 1. Continued traces follow the caller's sampled flag. */
  readonly sampleRatio?: number;
  readonly batch?: BufferConfig;
  /** export failures are logged here (at most once a minute) */
  readonly logger?: Logger;
  /** for tests: replaces the OTLP exporter */
  readonly exporter?: SpanExporter;
}

export function createTracing(options: TracingOptions): Tracing {
  const exporter = options.exporter ?? (options.otlp === undefined ? undefined : otlpExporter(options.otlp));
  return exporter === undefined ? new IdOnlyTracing() : new SdkTracing(options, exporter);
}

class IdOnlyTracing implements Tracing {
  startRequestSpan(_name: string, traceparent: string | undefined, tracestate: string | undefined): RequestSpan {
    const parent = parseTraceparent(traceparent);
    const spanId = randomHexId(8);
    if (parent === undefined) {
      // nothing records this trace: say so, so that upstream's parent-based samplers agree
      const traceId = randomHexId(16);
      return new IdOnlySpan(traceId, formatTraceparent(traceId, spanId, false), undefined);
    }
    return new IdOnlySpan(
      parent.traceId,
      formatTraceparent(parent.traceId, spanId, (parent.flags & 1) === 1),
      parseTracestate(tracestate),
    );
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

class SdkTracing implements Tracing {
  private readonly provider: BasicTracerProvider;
  private readonly tracer: Tracer;
  private readonly logger: Logger | undefined;

  constructor(options: TracingOptions, exporter: SpanExporter) {
    this.logger = options.logger;
    const attributes: Record<string, string> = { 'service.name': options.serviceName };
    if (options.serviceVersion !== undefined) attributes['service.version'] = options.serviceVersion;
    this.provider = new BasicTracerProvider({
      resource: resourceFromAttributes(attributes),
      sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(options.sampleRatio ?? 1) }),
      spanProcessors: [
        new BatchSpanProcessor(options.logger === undefined ? exporter : new LoggingExporter(exporter, options.logger), options.batch),
      ],
    });
    this.tracer = this.provider.getTracer('gatehouse', options.serviceVersion);
  }

  startRequestSpan(name: string, traceparent: string | undefined, tracestate: string | undefined): RequestSpan {
    const parent = parseTraceparent(traceparent);
    let context = ROOT_CONTEXT;
    let state: string | undefined;
    if (parent !== undefined) {
      state = parseTracestate(tracestate);
      const remote: SpanContext = {
        traceId: parent.traceId,
        spanId: parent.parentId,
        traceFlags: parent.flags & 1,
        isRemote: true,
      };
      if (state !== undefined) remote.traceState = createTraceState(state);
      context = trace.setSpanContext(ROOT_CONTEXT, remote);
    }
    const span = this.tracer.startSpan(name, { kind: SpanKind.SERVER }, context);
    const own = span.spanContext();
    return new SdkSpan(span, own.traceId, formatTraceparent(own.traceId, own.spanId, (own.traceFlags & 1) === 1), state);
  }

  /** flushes what is batched; an export failure here is logged, not thrown (shutdown goes on) */
  async shutdown(): Promise<void> {
    try {
      await this.provider.shutdown();
    } catch (err) {
      this.logger?.warn({ err }, 'span export at shutdown failed');
    }
  }
}

function otlpExporter(otlp: OtlpOptions): SpanExporter {
  return new OTLPTraceExporter({
    url: otlp.url,
    ...(otlp.headers === undefined ? {} : { headers: { ...otlp.headers } }),
    ...(otlp.timeoutMillis === undefined ? {} : { timeoutMillis: otlp.timeoutMillis }),
  });
}

type ExportResult = Parameters<Parameters<SpanExporter['export']>[1]>[0];

const EXPORT_FAILURE_LOG_INTERVAL_MS = 60_000;

/** Surfaces export failures (the SDK only reports them to the global diag logger, off by default). */
class LoggingExporter implements SpanExporter {
  private lastLogged = -Infinity;
  private dropped = 0;

  constructor(
    private readonly inner: SpanExporter,
    private readonly logger: Logger,
  ) {}

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    this.inner.export(spans, (result) => {
      if (result.error !== undefined) {
        this.dropped += spans.length;
        const now = Date.now();
        if (now - this.lastLogged >= EXPORT_FAILURE_LOG_INTERVAL_MS) {
          this.lastLogged = now;
          this.logger.warn({ err: result.error, dropped_spans: this.dropped }, 'span export failed');
          this.dropped = 0;
        }
      }
      resultCallback(result);
    });
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}
