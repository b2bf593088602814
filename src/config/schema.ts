// The config file's schema (zod, strict objects: an unknown key is an error), assembled from its
// sections (schema/: routes, stores, security events; shared fields). Filter configs are validated
// against each filter's own schema from the registry, so the schema is built per registry and config
// directory (`buildConfigSchema`). The types it produces are types.ts's; docs/config.md is the
// reference for every field: keep the three in step.
import { z } from 'zod';
import { MAX_BODY_BYTES_LIMIT, type FilterConfigScope } from '../pipeline/filter-config.js';
import type { FilterDefinition } from '../pipeline/types.js';
import { DEFAULTS } from './defaults.js';
import { checkedString, listenAddress, positiveInt } from './schema/fields.js';
import { filterList, routeSchema } from './schema/routes.js';
import { securityEventsSection } from './schema/security.js';
import { storesSection } from './schema/stores.js';
import { LOG_FORMATS, LOG_LEVELS, type LogLevel } from './types.js';
import { parseOtlpEndpoint } from './values.js';

/** The schema of a config file in `scope.configDir`, whose filter entries are parsed by `registry`'s schemas. */
export function buildConfigSchema(registry: ReadonlyMap<string, FilterDefinition>, scope: FilterConfigScope) {
  return z
    .strictObject({
      listen: z
        .strictObject({ grpc: listenAddress.prefault(DEFAULTS.grpcListen), admin: listenAddress.prefault(DEFAULTS.adminListen) })
        .prefault({}),
      tls: z
        .strictObject({
          certFile: z.string().min(1, 'must not be empty'),
          keyFile: z.string().min(1, 'must not be empty'),
          caFile: z.string().min(1, 'must not be empty').optional(),
        })
        .optional(),
      unmatched: z.enum(['deny', 'pass']).default(DEFAULTS.unmatched),
      pathPolicy: z.strictObject({ shadowing: z.enum(['warn', 'refuse']).default('warn') }).prefault({}),
      defaults: z
        .strictObject({
          budgetMs: positiveInt(60_000).default(DEFAULTS.budgetMs),
          maxBodyBytes: positiveInt(MAX_BODY_BYTES_LIMIT).default(DEFAULTS.maxBodyBytes),
          filters: filterList(registry, scope),
        })
        .prefault({}),
      envoy: z
        .strictObject({
          messageTimeoutMs: positiveInt(600_000).default(DEFAULTS.messageTimeoutMs),
          maxStreams: positiveInt(1_000_000).default(DEFAULTS.maxStreams),
          maxStreamsPerConnection: positiveInt(100_000).default(DEFAULTS.maxStreamsPerConnection),
          streamIdleTimeoutMs: positiveInt(3_600_000).default(DEFAULTS.streamIdleTimeoutMs),
        })
        .prefault({}),
      telemetry: z
        .strictObject({
          logLevel: z.enum(LOG_LEVELS as [LogLevel, ...LogLevel[]]).default(DEFAULTS.logLevel),
          serviceName: z.string().min(1, 'must not be empty').default(DEFAULTS.serviceName),
          otlpEndpoint: checkedString(parseOtlpEndpoint).optional(),
          sampleRatio: z.number().min(0).max(1).optional(),
          accessLog: z.boolean().default(DEFAULTS.accessLog),
          logFormat: z.enum(LOG_FORMATS).default('default'),
        })
        .prefault({}),
      shutdown: z.strictObject({ graceMs: z.int().min(0).max(600_000).default(DEFAULTS.graceMs) }).prefault({}),
      stores: storesSection.prefault({}),
      mtls: z.strictObject({ clientsFile: z.string().min(1, 'must not be empty') }).optional(),
      securityEvents: securityEventsSection.prefault({}),
      admin: z.strictObject({ tokenFile: z.string().min(1, 'must not be empty'), listen: listenAddress.optional() }).optional(),
      routes: z.array(routeSchema(registry, scope)).default([]),
    });
}

export type ConfigSchema = ReturnType<typeof buildConfigSchema>;
