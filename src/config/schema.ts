// The config file's schema (zod, strict objects: an unknown key is an error) and the types the rest
// of gatehouse reads. Filter configs are validated against each filter's own schema from the
// registry, so the schema is built per registry (`buildConfigSchema`). docs/config.md is the
// reference for every field; keep the two in step.
import { HTTP_METHODS, unknownMethodMessage } from './http-methods.js';
import { setFlagsFromString } from 'node:v8';
import { z } from 'zod';
import { SUSPICIOUS_REASONS } from '../pipeline/deny.js';
import type { SecurityEventsConfig } from '../security/config.js';
import { DEFAULT_MAX_MEMORY_NONCES, type CacheConfig, type HostPort, type StoresConfig } from '../stores/config.js';
import { MAX_BODY_BYTES_LIMIT, parseFilterConfig, type FilterConfigScope } from '../pipeline/filter-config.js';
import type { FilterDefinition } from '../pipeline/types.js';
import { canonicalizePath } from '../pipeline/path.js';

// ---- the types the rest of gatehouse reads -------------------------------------------------------

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

// ---- defaults --------------------------------------------------------------------------------------

export const DEFAULTS = {
  grpcListen: '0.0.0.0:9001',
  adminListen: '0.0.0.0:9002',
  unmatched: 'deny' as Unmatched,
  budgetMs: 150,
  maxBodyBytes: 1_048_576,
  messageTimeoutMs: 200,
  maxStreams: 20_000,
  maxStreamsPerConnection: 1000,
  streamIdleTimeoutMs: 300_000,
  logLevel: 'info' as LogLevel,
  serviceName: 'gatehouse',
  accessLog: true,
  graceMs: 20_000,
  storesKind: 'memory' as StoresConfig['kind'],
  keyPrefix: 'gatehouse:',
  maxMemoryNonces: DEFAULT_MAX_MEMORY_NONCES,
  deviceCache: { maxEntries: 10_000, ttlMs: 5_000 },
  accountCache: { maxEntries: 10_000, ttlMs: 2_000 },
  securityStream: 'security-events',
  securityStreamMaxLen: 100_000,
  securityMaxBuffered: 1_000,
  securityBatchSize: 100,
  securityFlushTimeoutMs: 2_000,
  redisPort: 6379,
  redisSentinelPort: 26379,
  commandTimeoutMs: 50,
  connectTimeoutMs: 1_000,
} as const;

export const ROUTE_ID = /^[a-z0-9_.-]{1,64}$/;

// ---- value parsers shared with the env overrides ----------------------------------------------------

export type Parsed<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly message: string };

const HOSTNAME = /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/;

export function parseListenAddress(text: string): Parsed<ListenAddress> {
  const bad = (why: string): Parsed<ListenAddress> => ({ ok: false, message: `must be host:port (e.g. 0.0.0.0:9001 or [::]:9001): ${why}, got ${JSON.stringify(text)}` });
  let host: string;
  let portText: string;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close === -1 || text[close + 1] !== ':') return bad('an IPv6 host needs "]:" before the port');
    host = text.slice(1, close);
    portText = text.slice(close + 2);
    if (!/^[0-9A-Fa-f:.]+$/.test(host) || !host.includes(':')) return bad('not an IPv6 address');
  } else {
    const colon = text.lastIndexOf(':');
    if (colon === -1) return bad('no port');
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host === '') return bad('no host');
    if (host.includes(':')) return bad('an IPv6 host must be in brackets');
    if (!HOSTNAME.test(host)) return bad('not a host name or IPv4 address');
  }
  if (!/^[0-9]{1,5}$/.test(portText)) return bad('the port is not a number');
  const port = Number(portText);
  if (port > 65535) return bad('the port is above 65535');
  const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  return { ok: true, value: { host, port, address } };
}

export function parseOtlpEndpoint(text: string): Parsed<string> {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { ok: false, message: `must be an http(s) URL, got ${JSON.stringify(text)}` };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return { ok: false, message: `must be an http(s) URL, got ${JSON.stringify(text)}` };
  return { ok: true, value: text };
}

// Config regexes run on V8's linear-time engine (the `l` flag), as Envoy runs its RE2: a path or
// header a client sends can never make matching backtrack exponentially ((a+)+ on "aaaa…b" takes
// microseconds, not hours). The flag only gates that engine; it is read when a RegExp is built.
setFlagsFromString('--enable-experimental-regexp-engine');
/** V8's flag for its linear-time engine (not in ECMAScript, hence unknown to the linter). */
const LINEAR = 'l';
const LINEAR_REGEXP_AVAILABLE = ((): boolean => {
  try {
    return new RegExp('a', LINEAR).flags.includes(LINEAR);
  } catch {
    return false;
  }
})();

/**
 * Compile a config regex once, for linear-time matching; a syntax error, or a construct only a
 * backtracking engine can run (back-references, lookahead, lookbehind), becomes the message.
 * Matching is full-string (anchored).
 */
export function compileRegex(source: string): Parsed<RegExp> {
  if (!LINEAR_REGEXP_AVAILABLE) {
    return { ok: false, message: `regular expression ${JSON.stringify(source)} refused: this Node.js cannot match in linear time (V8's experimental regexp engine is missing)` };
  }
  try {
    new RegExp(`^(?:${source})$`); // syntax first, so a syntax error gets its own message
  } catch (err) {
    const detail = err instanceof Error ? err.message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /s, '') : String(err);
    return { ok: false, message: `invalid regular expression ${JSON.stringify(source)}: ${detail}` };
  }
  try {
    // Newer V8 (Node 22) runs some lookbehinds in linear time; RE2 has none, so they stay refused
    // whatever the Node version: a config means the same here as in Envoy.
    if (hasLookaround(source)) throw new Error('lookaround');
    return { ok: true, value: new RegExp(`^(?:${source})$`, LINEAR) };
  } catch {
    return {
      ok: false,
      message: `regular expression ${JSON.stringify(source)} needs back-references or lookahead/lookbehind, which cannot match in linear time: gatehouse, like Envoy's RE2, does not support them`,
    };
  }
}

/** Whether a (syntactically valid) regex has a lookahead or lookbehind group outside a character class. */
export function hasLookaround(source: string): boolean {
  let inClass = false;
  for (let i = 0; i < source.length; i++) {
    const c = source[i];
    if (c === '\\') {
      i++; // an escaped character is a literal, whatever it is
    } else if (inClass) {
      if (c === ']') inClass = false;
    } else if (c === '[') {
      inClass = true;
    } else if (c === '(' && /^\(\?(?:=|!|<=|<!)/.test(source.slice(i, i + 4))) {
      return true;
    }
  }
  return false;
}

// ---- the schema ------------------------------------------------------------------------------------

const listenAddress = z.string().transform((text, ctx) => {
  const parsed = parseListenAddress(text);
  if (parsed.ok) return parsed.value;
  ctx.addIssue({ code: 'custom', message: parsed.message });
  return z.NEVER;
});

const positiveInt = (max: number) => z.int().min(1).max(max);

/** a string kept as written once `parse` accepts it; its message otherwise */
const checkedString = (parse: (text: string) => Parsed<unknown>) =>
  z.string().superRefine((text, ctx) => {
    const parsed = parse(text);
    if (!parsed.ok) ctx.addIssue({ code: 'custom', message: parsed.message });
  });

const regexString = z.string().superRefine((source, ctx) => {
  const compiled = compileRegex(source);
  if (!compiled.ok) ctx.addIssue({ code: 'custom', message: compiled.message });
});

const hostPattern = z
  .string()
  .transform((s) => s.toLowerCase().replace(/\.$/, ''))
  .superRefine((host, ctx) => {
    if (host === '*') return;
    if (/:[0-9]*$/.test(host) && !host.endsWith(']')) {
      ctx.addIssue({ code: 'custom', message: `must not include a port (ports are ignored when matching), got ${JSON.stringify(host)}` });
      return;
    }
    const name = host.startsWith('*.') ? host.slice(2) : host;
    if (/^\[[0-9a-f:.]+\]$/.test(name) && !host.startsWith('*.')) return;
    if (!HOSTNAME.test(name)) {
      ctx.addIssue({ code: 'custom', message: `must be a host name, "*.suffix" or "*", got ${JSON.stringify(host)}` });
    }
  });

const METHOD = /^[A-Za-z]+$/;
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** one-of objects: exactly one of the listed keys, written as `{ exact: ... }` etc. */
function exactlyOne<K extends string>(value: Record<string, unknown>, keys: readonly K[], ctx: z.RefinementCtx): K | undefined {
  const present = keys.filter((k) => value[k] !== undefined);
  if (present.length === 1) return present[0];
  ctx.addIssue({
    code: 'custom',
    message: present.length === 0 ? `needs one of: ${keys.join(', ')}` : `needs exactly one of ${keys.join(', ')}, got ${present.join(' and ')}`,
  });
  return undefined;
}

function checkConfigPath(kind: 'exact' | 'prefix' | 'template', path: string, ctx: z.RefinementCtx): void {
  const at = [kind];
  // templates with constrained params carry a regex in parentheses: only the literal parts are checked
  const literal = kind === 'template' ? path.replace(/\([^)]*\)/g, '') : path;
  if (!literal.startsWith('/')) {
    ctx.addIssue({ code: 'custom', path: at, message: `must start with "/", got ${JSON.stringify(path)}` });
    return;
  }
  if (literal.includes('?')) {
    ctx.addIssue({ code: 'custom', path: at, message: 'must not contain "?" (match query parameters with match.query)' });
    return;
  }
  if (kind !== 'exact' && literal.includes('*')) {
    ctx.addIssue({ code: 'custom', path: at, message: kind === 'prefix' ? 'must not contain "*" (a prefix already matches everything after it; use regex for more)' : 'must not contain "*" (use a prefix path for "everything below")' });
    return;
  }
  const canonical = canonicalizePath(literal);
  if (!canonical.ok) {
    ctx.addIssue({ code: 'custom', path: at, message: `is not a usable path: ${canonical.reason.replace(/^the path /, '')}` });
  } else if (canonical.path !== literal) {
    ctx.addIssue({
      code: 'custom',
      path: at,
      message: `must be written in canonical form (decoded, no "." or ".." or empty segments), i.e. ${JSON.stringify(canonical.path)}; requests are matched after the same normalization`,
    });
  }
}

const pathMatch = z
  .strictObject({ exact: z.string().optional(), prefix: z.string().optional(), template: z.string().optional(), regex: regexString.optional() })
  .transform((value, ctx): PathMatch => {
    const kind = exactlyOne(value, ['exact', 'prefix', 'template', 'regex'] as const, ctx);
    if (kind === undefined) return z.NEVER;
    const text = value[kind]!;
    if (kind !== 'regex') checkConfigPath(kind, text, ctx);
    if (kind === 'template' && !/:[A-Za-z_]/.test(text)) {
      ctx.addIssue({ code: 'custom', path: [kind], message: 'has no ":param"; use an exact path' });
    }
    return { kind, value: text };
  });

const namedPredicate = (what: 'header' | 'query parameter') =>
  z
    .strictObject({
      name: what === 'header' ? z.string().regex(HEADER_NAME, 'must be an HTTP header name (token characters)').transform((s) => s.toLowerCase()) : z.string().min(1, 'must not be empty'),
      exact: z.string().optional(),
      prefix: z.string().optional(),
      regex: regexString.optional(),
      present: z.boolean().optional(),
    })
    .transform((value, ctx): NamedPredicate => {
      const kind = exactlyOne(value, ['exact', 'prefix', 'regex', 'present'] as const, ctx);
      if (kind === undefined) return z.NEVER;
      if (kind === 'present') return { name: value.name, kind, value: value.present! };
      return { name: value.name, kind, value: value[kind]! };
    });

const routeMatch = z.strictObject({
  hosts: z.array(hostPattern).min(1, 'must list at least one host (leave hosts out to match any host)').optional(),
  path: pathMatch,
  methods: z
    .array(
      z
        .string()
        .regex(METHOD, 'must be an HTTP method name (letters only)')
        .transform((s) => s.toUpperCase())
        .refine((m) => HTTP_METHODS.has(m), { error: (issue) => unknownMethodMessage(String(issue.input)) }),
    )
    .min(1, 'must list at least one method (leave methods out to match any method)')
    .optional(),
  headers: z.array(namedPredicate('header')).optional(),
  query: z.array(namedPredicate('query parameter')).optional(),
  trailingSlash: z.enum(['match', 'refuse']).optional(),
  caseSensitive: z.boolean().optional(),
});

function filterEntry(registry: ReadonlyMap<string, FilterDefinition>, scope: FilterConfigScope) {
  return z.record(z.string(), z.unknown()).transform((entry, ctx): RouteFilterConfig => {
    const keys = Object.keys(entry);
    if (keys.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        message: `must be a map with exactly one key, the filter name (e.g. "- headers: {...}"), got ${keys.length === 0 ? 'none' : `${keys.length}: ${keys.join(', ')}`}`,
      });
      return z.NEVER;
    }
    const name = keys[0]!;
    const config = entry[name];
    const definition = registry.get(name);
    if (!definition) {
      ctx.addIssue({ code: 'custom', path: [name], message: `unknown filter ${JSON.stringify(name)}; known filters: ${[...registry.keys()].sort().join(', ')}` });
      return z.NEVER;
    }
    // `- headers:` with nothing after it is YAML null: treat as an empty config
    let parsed: ReturnType<typeof definition.configSchema.safeParse>;
    try {
      parsed = parseFilterConfig(definition.configSchema, config ?? {}, scope);
    } catch (err) {
      ctx.addIssue({ code: 'custom', path: [name], message: `the filter's config check failed: ${err instanceof Error ? err.message : String(err)}` });
      return z.NEVER;
    }
    if (!parsed.success) {
      // carried whole in params so the message can describe the offending value (issues.ts)
      for (const issue of parsed.error.issues) ctx.addIssue({ code: 'custom', path: [name, ...issue.path], message: issue.message, params: { filterIssue: issue } });
      return z.NEVER;
    }
    return withParsedConfig({ name, config: config ?? {} }, parsed.data);
  });
}

/**
 * The entry with its parsed config attached, so buildRouteTable does not parse it (and read its key
 * files) again. Not enumerable: the config stays plain data to freeze, compare and print, and a
 * parsed config may hold what cannot be frozen (buffers, key objects).
 */
function withParsedConfig(entry: { name: string; config: unknown }, parsed: unknown): RouteFilterConfig {
  Object.defineProperty(entry, 'parsed', { value: { value: parsed }, enumerable: false });
  return entry;
}

// ---- stores ------------------------------------------------------------------------------------------

/** `host` or `host:port` (IPv6 in brackets), for Redis nodes and sentinels */
export function parseHostPort(text: string, defaultPort: number): Parsed<HostPort> {
  const hasPort = text.startsWith('[') ? text.includes(']:') : text.includes(':');
  const withPort = hasPort ? text : `${text}:${defaultPort}`;
  const parsed = parseListenAddress(withPort);
  if (!parsed.ok) return { ok: false, message: parsed.message.replace('must be host:port', `must be host or host:port (port default ${defaultPort})`) };
  return { ok: true, value: { host: parsed.value.host, port: parsed.value.port } };
}

const hostPort = (defaultPort: number) =>
  z.string().transform((text, ctx) => {
    const parsed = parseHostPort(text, defaultPort);
    if (parsed.ok) return parsed.value;
    ctx.addIssue({ code: 'custom', message: parsed.message });
    return z.NEVER;
  });

export interface RedisUrl {
  readonly host: string;
  readonly port: number;
  readonly db: number;
  readonly username?: string;
  readonly tls: boolean;
}

/** redis://[user@]host[:port][/db] or rediss:// (TLS); a password in the URL is refused: it would sit in the config file */
export function parseRedisUrl(text: string): Parsed<RedisUrl> {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { ok: false, message: `must be a redis:// or rediss:// URL, got ${JSON.stringify(text)}` };
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') return { ok: false, message: `must be a redis:// or rediss:// URL, got ${JSON.stringify(text)}` };
  if (url.password !== '') return { ok: false, message: 'must not carry a password (it would sit in the config file): use passwordFile or passwordEnv' };
  if (url.search !== '' || url.hash !== '') return { ok: false, message: 'must not have a query or fragment; put options in the stores.redis fields' };
  const dbText = url.pathname.replace(/^\//, '');
  if (dbText !== '' && !/^[0-9]{1,5}$/.test(dbText)) return { ok: false, message: `the path must be a database number (e.g. redis://host:6379/0), got ${JSON.stringify(url.pathname)}` };
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (host === '') return { ok: false, message: 'has no host' };
  return {
    ok: true,
    value: {
      host,
      port: url.port === '' ? DEFAULTS.redisPort : Number(url.port),
      db: dbText === '' ? 0 : Number(dbText),
      ...(url.username === '' ? {} : { username: decodeURIComponent(url.username) }),
      tls: url.protocol === 'rediss:',
    },
  };
}

const REDIS_MODE_FIELDS = {
  standalone: ['url', 'host', 'port', 'db'],
  sentinel: ['sentinels', 'masterName', 'db'],
  cluster: ['nodes'],
} as const;

const redisSection = z
  .strictObject({
    mode: z.enum(['standalone', 'sentinel', 'cluster']).default('standalone'),
    url: checkedString(parseRedisUrl).optional(),
    host: z.string().regex(HOSTNAME, 'must be a host name or IPv4 address').optional(),
    port: positiveInt(65535).optional(),
    db: z.int().min(0).max(65535).optional(),
    sentinels: z.array(hostPort(DEFAULTS.redisSentinelPort)).min(1, 'must list at least one sentinel').optional(),
    masterName: z.string().min(1, 'must not be empty').optional(),
    nodes: z.array(hostPort(DEFAULTS.redisPort)).min(1, 'must list at least one node').optional(),
    username: z.string().min(1, 'must not be empty').optional(),
    passwordEnv: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name').optional(),
    passwordFile: z.string().min(1, 'must not be empty').optional(),
    tls: z
      .union([z.boolean(), z.strictObject({ caFile: z.string().min(1, 'must not be empty').optional(), serverName: z.string().min(1, 'must not be empty').optional() })])
      .optional(),
    commandTimeoutMs: positiveInt(10_000).default(DEFAULTS.commandTimeoutMs),
    connectTimeoutMs: positiveInt(60_000).default(DEFAULTS.connectTimeoutMs),
  })
  .superRefine((redis, ctx) => {
    const mode = redis.mode;
    for (const [other, fields] of Object.entries(REDIS_MODE_FIELDS)) {
      if (other === mode) continue;
      for (const field of fields) {
        if (redis[field] !== undefined && !(REDIS_MODE_FIELDS[mode] as readonly string[]).includes(field)) {
          ctx.addIssue({ code: 'custom', path: [field], message: `is only read with mode: ${other} (this is mode: ${mode})` });
        }
      }
    }
    if (mode === 'standalone') {
      if (redis.url === undefined && redis.host === undefined) ctx.addIssue({ code: 'custom', message: 'mode standalone needs url or host' });
      if (redis.url !== undefined) {
        for (const field of ['host', 'port', 'db'] as const) {
          if (redis[field] !== undefined) ctx.addIssue({ code: 'custom', path: [field], message: 'must not be set with url (the URL already says it)' });
        }
      }
    }
    if (mode === 'sentinel') {
      if (redis.sentinels === undefined) ctx.addIssue({ code: 'custom', message: 'mode sentinel needs sentinels (host:port list)' });
      if (redis.masterName === undefined) ctx.addIssue({ code: 'custom', message: 'mode sentinel needs masterName' });
    }
    if (mode === 'cluster' && redis.nodes === undefined) ctx.addIssue({ code: 'custom', message: 'mode cluster needs nodes (host:port list of some cluster nodes)' });
    if (redis.passwordEnv !== undefined && redis.passwordFile !== undefined) ctx.addIssue({ code: 'custom', path: ['passwordFile'], message: 'set passwordEnv or passwordFile, not both' });
  });

const cacheSection = (defaults: CacheConfig) =>
  z
    .strictObject({
      maxEntries: z.int().min(0).max(10_000_000).default(defaults.maxEntries),
      ttlMs: z.int().min(0).max(60_000).default(defaults.ttlMs),
    })
    .prefault({});

const storesSection = z
  .strictObject({
    kind: z.enum(['memory', 'redis']).default(DEFAULTS.storesKind),
    keyPrefix: z
      .string()
      .regex(/^[A-Za-z0-9:._-]{0,64}$/, { error: (issue) => `must be at most 64 characters of A-Z a-z 0-9 : . _ - (no braces: they would change the Cluster hash tag), got ${JSON.stringify(issue.input)}` })
      .default(DEFAULTS.keyPrefix),
    memory: z.strictObject({ maxNonces: positiveInt(100_000_000).default(DEFAULTS.maxMemoryNonces) }).prefault({}),
    deviceCache: cacheSection(DEFAULTS.deviceCache),
    accountCache: cacheSection(DEFAULTS.accountCache),
    redis: redisSection.optional(),
  })
  .superRefine((stores, ctx) => {
    if (stores.kind === 'redis' && stores.redis === undefined) ctx.addIssue({ code: 'custom', path: ['redis'], message: 'kind redis needs a redis section (mode, url or host, ...)' });
    if (stores.kind === 'memory' && stores.redis !== undefined) ctx.addIssue({ code: 'custom', path: ['redis'], message: 'is only read with kind: redis (this is kind: memory)' });
  });

// ---- security events (src/security/) ---------------------------------------------------------------

const RULE_NAME = /^[a-z0-9_.-]{1,64}$/;

const disableRule = z
  .strictObject({
    name: z.string().regex(RULE_NAME, 'must be 1-64 characters of a-z 0-9 _ . - (it is a metric label and goes into `by`)'),
    codes: z
      .array(
        z.string().refine((code) => Object.hasOwn(SUSPICIOUS_REASONS, code), {
          error: (issue) => `${JSON.stringify(issue.input)} is not a suspicious deny code (one of ${Object.keys(SUSPICIOUS_REASONS).join(', ')})`,
        }),
      )
      .min(1, 'must list at least one code'),
    threshold: positiveInt(10_000),
    windowSeconds: positiveInt(86_400),
    // only events proven to come from the account's key count: events at trust credential (a
    // replayable credential, a replay, a body cut by Envoy) are reported but never disable an account
    minTrust: z.enum(['verified']).default('verified'),
    reason: z.string().min(1, 'must not be empty').max(200, 'must be at most 200 characters').optional(),
  });

const securityEventsSection = z
  .strictObject({
    stream: z
      .strictObject({
        key: z.string().regex(/^[A-Za-z0-9:._{}-]{1,128}$/, 'must be 1-128 characters of A-Z a-z 0-9 : . _ - { }').optional(),
        maxLen: positiveInt(100_000_000).default(DEFAULTS.securityStreamMaxLen),
      })
      .prefault({}),
    maxBuffered: positiveInt(1_000_000).default(DEFAULTS.securityMaxBuffered),
    batchSize: positiveInt(10_000).default(DEFAULTS.securityBatchSize),
    flushTimeoutMs: z.int().min(0).max(60_000).default(DEFAULTS.securityFlushTimeoutMs),
    rules: z.array(disableRule).default([]),
  })
  .superRefine((section, ctx) => {
    const seen = new Set<string>();
    section.rules.forEach((rule, i) => {
      if (seen.has(rule.name)) ctx.addIssue({ code: 'custom', path: ['rules', i, 'name'], message: `rule ${rule.name} is defined twice` });
      seen.add(rule.name);
    });
  });

/** The schema of a config file in `scope.configDir`, whose filter entries are parsed by `registry`'s schemas. */
export function buildConfigSchema(registry: ReadonlyMap<string, FilterDefinition>, scope: FilterConfigScope) {
  const route = z
    .strictObject({
      id: z.string().regex(ROUTE_ID, 'must be 1-64 characters of a-z 0-9 _ . - (it is a metric label)'),
      match: routeMatch,
      budgetMs: positiveInt(60_000).optional(),
      maxBodyBytes: positiveInt(MAX_BODY_BYTES_LIMIT).optional(),
      mode: z.enum(['enforce', 'shadow']).optional(),
      shadowFilters: z.array(z.string().min(1)).min(1).optional(),
      filters: z.array(filterEntry(registry, scope)).default([]),
    });

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
          filters: z.array(filterEntry(registry, scope)).default([]),
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
      routes: z.array(route).default([]),
    });
}

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

export interface CrossIssue {
  readonly path: readonly (string | number)[];
  readonly message: string;
}

/**
 * Checks across fields (duplicate route ids, a filter listed twice, budgets against Envoy's
 * timeout). They run on the config as written, whether or not the schema accepted it, so that one
 * load reports them together with the field errors; values of the wrong type are left to the schema.
 */
export function crossFieldIssues(raw: unknown): CrossIssue[] {
  const issues: CrossIssue[] = [];
  if (!isRecord(raw)) return issues;
  const envoy = raw.envoy;
  const timeout = isRecord(envoy) && envoy.messageTimeoutMs !== undefined ? envoy.messageTimeoutMs : DEFAULTS.messageTimeoutMs;
  const limit = typeof timeout === 'number' && Number.isInteger(timeout) && timeout > 0 ? timeout : undefined;
  const checkBudget = (budget: unknown, path: readonly (string | number)[]) => {
    if (limit !== undefined && typeof budget === 'number' && budget >= limit) {
      issues.push({ path, message: `${budget} ms must stay below envoy.messageTimeoutMs (${limit} ms), or Envoy gives up before gatehouse answers` });
    }
  };
  const defaults = raw.defaults;
  checkBudget(isRecord(defaults) && defaults.budgetMs !== undefined ? defaults.budgetMs : DEFAULTS.budgetMs, ['defaults', 'budgetMs']);
  if (isRecord(defaults)) duplicateFilters(defaults.filters, ['defaults', 'filters'], issues);
  if (!Array.isArray(raw.routes)) return issues;
  const ids = new Map<string, number>();
  raw.routes.forEach((route: unknown, i) => {
    if (!isRecord(route)) return;
    checkBudget(route.budgetMs, ['routes', i, 'budgetMs']);
    if (typeof route.id === 'string') {
      const first = ids.get(route.id);
      if (first !== undefined) issues.push({ path: ['routes', i, 'id'], message: `duplicate route id ${JSON.stringify(route.id)} (also routes[${first}])` });
      else ids.set(route.id, i);
    }
    duplicateFilters(route.filters, ['routes', i, 'filters'], issues);
  });
  return issues;
}

/** A filter named twice in one list (a route's, or defaults.filters): each runs once per route. */
function duplicateFilters(list: unknown, at: readonly (string | number)[], issues: CrossIssue[]): void {
  if (!Array.isArray(list)) return;
  const seen = new Map<string, number>();
  list.forEach((entry: unknown, k) => {
    if (!isRecord(entry)) return;
    const names = Object.keys(entry);
    if (names.length !== 1) return;
    const name = names[0]!;
    const first = seen.get(name);
    if (first !== undefined) issues.push({ path: [...at, k], message: `filter ${JSON.stringify(name)} is listed twice (also filters[${first}]); a route runs each filter once` });
    else seen.set(name, k);
  });
}

export type ConfigSchema = ReturnType<typeof buildConfigSchema>;
