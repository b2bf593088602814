// The config as the rest of gatehouse reads it: validated, defaulted, frozen (load.ts makes it from
// the file through the schema in schema.ts). docs/config.md is the reference for every field.
import type { SecurityEventsConfig } from '../security/config.js';
import type { StoresConfig } from '../stores/config.js';

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
  /** `host:port` as grpc-js binds it (IPv6 in brackets) */
  readonly address: string;
}

export interface TlsConfig {
  /** absolute (relative paths in the file are resolved against the file's directory) */
  readonly certFile: string;
  readonly keyFile: string;
  /** when set, Envoy must present a client certificate signed by this CA */
  readonly caFile?: string;
}

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
export const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export type Unmatched = 'deny' | 'pass';

export type PathMatch =
  | { readonly kind: 'exact'; readonly value: string }
  | { readonly kind: 'prefix'; readonly value: string }
  | { readonly kind: 'template'; readonly value: string }
  | { readonly kind: 'regex'; readonly value: string };

export type ValuePredicate =
  | { readonly kind: 'exact'; readonly value: string }
  | { readonly kind: 'prefix'; readonly value: string }
  | { readonly kind: 'regex'; readonly value: string }
  | { readonly kind: 'present'; readonly value: boolean };

export type NamedPredicate = { readonly name: string } & ValuePredicate;

export interface RouteMatchConfig {
  /** lower-case host names, `*.suffix` wildcards or `*`; absent = any host */
  readonly hosts?: readonly string[];
  readonly path: PathMatch;
  /** upper-case; absent = any method */
  readonly methods?: readonly string[];
  readonly headers?: readonly NamedPredicate[];
  readonly query?: readonly NamedPredicate[];
  /**
   * a request that reaches this route only through its path without (or with) a trailing slash:
   * `match` (default) decides it here, `refuse` answers 400 path_variant (docs/security.md "Path policy")
   */
  readonly trailingSlash?: 'match' | 'refuse';
  /** true (default): a request that differs from this path only in case is refused 400 path_variant rather than given to a weaker route; false: decided here */
  readonly caseSensitive?: boolean;
}

export interface RouteFilterConfig {
  readonly name: string;
  /** the filter's config as written */
  readonly config: unknown;
  /** the config parsed by the filter's schema, when parseConfig did it (a hand-made config has none: buildRouteTable parses it) */
  readonly parsed?: { readonly value: unknown };
}

export interface RouteConfig {
  readonly id: string;
  readonly match: RouteMatchConfig;
  readonly budgetMs?: number;
  readonly maxBodyBytes?: number;
  /** shadow: every filter's denials are logged and counted, and the request continues */
  readonly mode?: RouteMode;
  /** the filters of an enforcing route whose denials are shadowed (a new rule tried before it enforces) */
  readonly shadowFilters?: readonly string[];
  readonly filters: readonly RouteFilterConfig[];
}

export type RouteMode = 'enforce' | 'shadow';

// the stores' and security events' sections are typed where they are read (stores/, security/)
export type { CacheConfig, HostPort, RedisConfig, RedisTlsConfig, RedisTopology, SecretSource, StoresConfig } from '../stores/config.js';
export type { DisableRuleConfig, SecurityEventsConfig } from '../security/config.js';
export type { IdentityTrust } from '../pipeline/state.js';

/** `default`: gatehouse's field names; `ecs`: Elastic Common Schema's (@timestamp, message, log.level, trace.id, url.path, ...) */
export const LOG_FORMATS = ['default', 'ecs'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export interface GatehouseConfig {
  /** where the config came from, for messages (set by parseConfig) */
  readonly source?: { readonly file: string };
  readonly listen: { readonly grpc: ListenAddress; readonly admin: ListenAddress };
  readonly tls?: TlsConfig;
  readonly unmatched: Unmatched;
  /** absent: the defaults (docs/security.md "Path policy") */
  readonly pathPolicy?: {
    /** a route with fewer security filters that receives a variant of a more protected route's path: warn at load, or refuse the config */
    readonly shadowing: 'warn' | 'refuse';
  };
  readonly defaults: {
    readonly budgetMs: number;
    readonly maxBodyBytes: number;
    /** filters every route runs unless it lists the same filter itself (whose entry then wins) */
    readonly filters: readonly RouteFilterConfig[];
  };
  /** what gatehouse must know about the Envoy in front of it */
  readonly envoy: {
    readonly messageTimeoutMs: number;
    /** ext_proc streams open at once over all connections; more are refused RESOURCE_EXHAUSTED */
    readonly maxStreams: number;
    /** concurrent gRPC streams on one connection (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS) */
    readonly maxStreamsPerConnection: number;
    /** an ext_proc stream with no message for this long is ended (above the slowest upstream's answer time) */
    readonly streamIdleTimeoutMs: number;
  };
  readonly telemetry: {
    readonly logLevel: LogLevel;
    readonly serviceName: string;
    readonly otlpEndpoint?: string;
    /** share of new traces sampled (0..1); absent: OTEL_TRACES_SAMPLER(_ARG), else 1 */
    readonly sampleRatio?: number;
    readonly accessLog: boolean;
    /** log field names: gatehouse's own (default), or Elastic Common Schema's */
    readonly logFormat: LogFormat;
  };
  readonly shutdown: { readonly graceMs: number };
  /** nonces, challenges, devices, disabled accounts: memory (one process) or Redis (the fleet) */
  readonly stores: StoresConfig;
  /** the mtls filter's client registry (absolute path); a change needs a restart, the file's content reloads live */
  readonly mtls?: { readonly clientsFile: string };
  /** suspicious denials reported to fraud detection, and the rules that disable accounts (src/security/) */
  readonly securityEvents: SecurityEventsConfig;
  /**
   * the admin API (account enable/disable, device revoke); absent: those endpoints refuse. On its own
   * listener when `listen` is set (so /metrics and the probes can be open to monitoring while the
   * API is not), else on the admin listener.
   */
  readonly admin?: { readonly tokenFile: string; readonly listen?: ListenAddress };
  readonly routes: readonly RouteConfig[];
}
