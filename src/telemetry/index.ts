// Telemetry wiring: the logger, the metrics registry and tracing, built once at startup.
import type { DestinationStream, Level } from 'pino';
import { createAccessLog, createLogger, flushLogger, type LogFormat } from './logger.js';
import { createMetrics, type GatehouseMetrics } from './metrics.js';
import { createTracing, type OtlpOptions } from './tracing.js';
import type { Telemetry } from './types.js';

export type * from './types.js';
export { createAccessLog, createLogger, flushLogger, redactQuery, REDACTED, SECRET_HEADERS } from './logger.js';
export { createMetrics, methodLabel, statusLabel, type GatehouseMetrics, type MetricsOptions } from './metrics.js';
export { createTracing, parseTraceparent, parseTracestate, type OtlpOptions, type TracingOptions } from './tracing.js';

export interface TelemetryOptions {
  /** `service` in every log line and `service.name` of exported spans; default `gatehouse` */
  readonly service?: string;
  /** gatehouse's version: `gatehouse_build_info` and `service.version` */
  readonly version: string;
  readonly logLevel: Level | 'silent';
  /** log field names; default gatehouse's own */
  readonly logFormat?: LogFormat;
  /** defaults to stdout */
  readonly logDestination?: DestinationStream;
  /** Node runtime metrics; default true */
  readonly defaultMetrics?: boolean;
  readonly tracing?: {
    /** absent: trace ids are propagated but no span is recorded */
    readonly otlp?: OtlpOptions;
    /** share of new traces sampled; default 1 */
    readonly sampleRatio?: number;
  };
}

export interface GatehouseTelemetry extends Telemetry {
  readonly metrics: GatehouseMetrics;
}

/**
 * `accessLog` writes the log line only; the adapters also call `metrics.requestCompleted` with the
 * same entry (and `metrics.phaseDuration` per phase), so each stays usable on its own.
 */
export function createTelemetry(options: TelemetryOptions): GatehouseTelemetry {
  const service = options.service ?? 'gatehouse';
  const logger = createLogger({
    level: options.logLevel,
    service,
    ...(options.logFormat === undefined ? {} : { format: options.logFormat }),
    ...(options.logDestination === undefined ? {} : { destination: options.logDestination }),
  });
  const metrics = createMetrics({
    version: options.version,
    ...(options.defaultMetrics === undefined ? {} : { defaultMetrics: options.defaultMetrics }),
  });
  const tracing = createTracing({
    serviceName: service,
    serviceVersion: options.version,
    logger,
    ...(options.tracing?.otlp === undefined ? {} : { otlp: options.tracing.otlp }),
    ...(options.tracing?.sampleRatio === undefined ? {} : { sampleRatio: options.tracing.sampleRatio }),
  });
  return {
    logger,
    metrics,
    tracing,
    accessLog: createAccessLog(logger, options.logFormat),
    async shutdown() {
      try {
        await tracing.shutdown();
      } catch (err) {
        logger.warn({ err }, 'tracing shutdown failed');
      }
      await flushLogger(logger);
    },
  };
}
