// Loading: YAML text → validated, defaulted, frozen GatehouseConfig; env-var overrides; the choice of
// file (GATEHOUSE_CONFIG, else the embedded dev default). Nothing here throws on a bad config: every
// problem comes back as a ConfigError naming file, line, route and field.
import { createHash } from 'node:crypto';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import type { FilterDefinition } from '../pipeline/types.js';
import { configError, type ConfigError } from './errors.js';
import { issuesToErrors, type AllowedKeys, type Locate, type RawIssue } from './issues.js';
import { checkRoutes } from './routes.js';
import { DEFAULTS } from './defaults.js';
import { buildConfigSchema } from './schema.js';
import { crossFieldIssues } from './schema/cross-field.js';
import { LOG_LEVELS, type GatehouseConfig, type LogLevel, type RedisConfig, type RouteConfig, type StoresConfig, type TlsConfig } from './types.js';
import { parseListenAddress, parseOtlpEndpoint, parseRedisUrl } from './values.js';

export type ConfigResult =
  | { readonly ok: true; readonly config: GatehouseConfig; readonly warnings: readonly ConfigError[] }
  | { readonly ok: false; readonly errors: readonly ConfigError[] };

export interface ParseOptions {
  /** the filters routes may name (FILTER_REGISTRY, passed in by the composition root) */
  readonly registry: ReadonlyMap<string, FilterDefinition>;
}

/** The environment variables gatehouse reads, in one place. */
export const ENV = {
  config: 'GATEHOUSE_CONFIG',
  grpcListen: 'GATEHOUSE_GRPC_LISTEN',
  adminListen: 'GATEHOUSE_ADMIN_LISTEN',
  logLevel: 'GATEHOUSE_LOG_LEVEL',
  otlpEndpoint: 'GATEHOUSE_OTLP_ENDPOINT',
  tlsCertFile: 'GATEHOUSE_TLS_CERT_FILE',
  tlsKeyFile: 'GATEHOUSE_TLS_KEY_FILE',
  tlsCaFile: 'GATEHOUSE_TLS_CA_FILE',
  unmatched: 'GATEHOUSE_UNMATCHED',
} as const;

export const ENVIRONMENT_FILE = 'environment';

// ---- helpers -------------------------------------------------------------------------------------------

export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key]);
  }
  return value;
}

function yamlLocator(doc: Document, lines: LineCounter): Locate {
  return (path) => {
    let node: unknown = doc.contents;
    let offset: number | undefined = (doc.contents as { range?: [number, number, number] } | null)?.range?.[0];
    for (const key of path) {
      if (isMap(node)) {
        const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(key));
        if (!pair) break;
        offset = (pair.key as { range?: [number, number, number] }).range?.[0] ?? offset;
        node = pair.value;
      } else if (isSeq(node) && typeof key === 'number') {
        const item: unknown = node.items[key];
        if (item === undefined) break;
        offset = (item as { range?: [number, number, number] }).range?.[0] ?? offset;
        node = item;
      } else break;
    }
    return offset === undefined ? undefined : lines.linePos(offset).line;
  };
}

export type YamlResult = { readonly ok: true; readonly raw: unknown; readonly locate: Locate } | { readonly ok: false; readonly errors: readonly ConfigError[] };

/** YAML text → plain data and a line locator; syntax errors and an empty file come back with their line. */
export function readYaml(text: string, fileName: string, expected: string): YamlResult {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true, merge: true });
  if (doc.errors.length > 0) {
    return {
      ok: false,
      errors: doc.errors.map((e) =>
        configError({ file: fileName, line: e.linePos?.[0].line ?? lines.linePos(e.pos[0]).line, field: '', message: `YAML syntax error: ${e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}` }),
      ),
    };
  }
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 1000 });
  } catch (err) {
    return { ok: false, errors: [configError({ file: fileName, field: '', message: `YAML error: ${err instanceof Error ? err.message : String(err)}` })] };
  }
  if (raw === null || raw === undefined) {
    return { ok: false, errors: [configError({ file: fileName, field: '', message: `the file is empty; expected ${expected}` })] };
  }
  return { ok: true, raw, locate: yamlLocator(doc, lines) };
}

interface SchemaLike {
  readonly _zod: { readonly def: { readonly type: string; readonly shape?: Record<string, SchemaLike>; readonly innerType?: SchemaLike; readonly in?: SchemaLike; readonly element?: SchemaLike } };
}

/** Walks the zod schema (through optional/default/pipe wrappers) to list an object's keys. */
export function schemaKeys(schema: SchemaLike, path: readonly PropertyKey[]): readonly string[] | undefined {
  let node: SchemaLike | undefined = schema;
  let i = 0;
  for (let guard = 0; node && guard < 256; guard++) {
    const def: SchemaLike['_zod']['def'] = node._zod.def;
    if (def.innerType) node = def.innerType;
    else if (def.in) node = def.in;
    else if (i === path.length) return def.type === 'object' && def.shape ? Object.keys(def.shape) : undefined;
    else if (def.type === 'object' && def.shape) node = def.shape[String(path[i++])];
    else if (def.type === 'array' && def.element) {
      i++;
      node = def.element;
    } else return undefined;
  }
  return undefined;
}

function allowedKeysFor(schema: z.ZodType, registry: ReadonlyMap<string, FilterDefinition>): AllowedKeys {
  return (path) => {
    // inside a filter's config: walk that filter's own schema
    if (path[0] === 'routes' && path[2] === 'filters' && typeof path[4] === 'string') {
      const definition = registry.get(path[4]);
      return definition ? schemaKeys(definition.configSchema, path.slice(5)) : undefined;
    }
    return schemaKeys(schema, path);
  };
}

function resolveFrom(base: string, file: string): string {
  return isAbsolute(file) ? file : resolve(base, file);
}

// ---- parsing -------------------------------------------------------------------------------------------

/** Parse and validate config text. `fileName` is used in messages and to resolve relative TLS paths. */
export function parseConfig(text: string, fileName: string, options: ParseOptions): ConfigResult {
  const { registry } = options;
  const yaml = readYaml(text, fileName, 'a map with listen, routes, ...');
  if (!yaml.ok) return yaml;
  const { raw, locate } = yaml;
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    return { ok: false, errors: [configError({ file: fileName, line: 1, field: '', message: 'the top level must be a map (listen, tls, unmatched, pathPolicy, defaults, envoy, telemetry, shutdown, stores, mtls, securityEvents, admin, routes)' })] };
  }
  // every relative path in the file (tls, mtls.clientsFile, the files filters read) is this directory's
  const base = dirname(resolve(fileName));
  // built per parse: filter configs read files relative to this config's directory
  const schema = buildConfigSchema(registry, { configDir: base });
  const parsed = schema.safeParse(raw);
  const cross: RawIssue[] = crossFieldIssues(raw);
  if (!parsed.success || cross.length > 0) {
    const issues: RawIssue[] = parsed.success ? [] : parsed.error.issues.map((zod) => ({ path: zod.path, message: zod.message, zod }));
    return { ok: false, errors: issuesToErrors(fileName, raw, [...issues, ...cross], locate, allowedKeysFor(schema, registry)) };
  }

  const c = parsed.data;
  const routes: RouteConfig[] = c.routes.map((r) => ({
    id: r.id,
    match: {
      path: r.match.path,
      ...(r.match.hosts ? { hosts: r.match.hosts } : {}),
      ...(r.match.methods ? { methods: r.match.methods } : {}),
      ...(r.match.headers ? { headers: r.match.headers } : {}),
      ...(r.match.query ? { query: r.match.query } : {}),
      ...(r.match.trailingSlash === undefined ? {} : { trailingSlash: r.match.trailingSlash }),
      ...(r.match.caseSensitive === undefined ? {} : { caseSensitive: r.match.caseSensitive }),
    },
    ...(r.budgetMs === undefined ? {} : { budgetMs: r.budgetMs }),
    ...(r.maxBodyBytes === undefined ? {} : { maxBodyBytes: r.maxBodyBytes }),
    ...(r.mode === undefined ? {} : { mode: r.mode }),
    ...(r.shadowFilters === undefined ? {} : { shadowFilters: r.shadowFilters }),
    filters: r.filters,
  }));
  const checked = checkRoutes(routes);
  if (checked.issues.length > 0) return { ok: false, errors: issuesToErrors(fileName, raw, checked.issues, locate) };

  let tls: TlsConfig | undefined;
  if (c.tls) {
    tls = {
      certFile: resolveFrom(base, c.tls.certFile),
      keyFile: resolveFrom(base, c.tls.keyFile),
      ...(c.tls.caFile === undefined ? {} : { caFile: resolveFrom(base, c.tls.caFile) }),
    };
  }
  const config: GatehouseConfig = {
    source: { file: fileName },
    listen: c.listen,
    ...(tls ? { tls } : {}),
    unmatched: c.unmatched,
    pathPolicy: c.pathPolicy,
    defaults: c.defaults,
    envoy: c.envoy,
    telemetry: {
      logLevel: c.telemetry.logLevel,
      serviceName: c.telemetry.serviceName,
      accessLog: c.telemetry.accessLog,
      logFormat: c.telemetry.logFormat,
      ...(c.telemetry.otlpEndpoint === undefined ? {} : { otlpEndpoint: c.telemetry.otlpEndpoint }),
      ...(c.telemetry.sampleRatio === undefined ? {} : { sampleRatio: c.telemetry.sampleRatio }),
    },
    shutdown: c.shutdown,
    stores: storesConfig(c.stores, base),
    ...(c.mtls ? { mtls: { clientsFile: resolveFrom(base, c.mtls.clientsFile) } } : {}),
    securityEvents: {
      streamKey: c.securityEvents.stream.key ?? `${c.stores.keyPrefix}${DEFAULTS.securityStream}`,
      streamMaxLen: c.securityEvents.stream.maxLen,
      maxBuffered: c.securityEvents.maxBuffered,
      batchSize: c.securityEvents.batchSize,
      flushTimeoutMs: c.securityEvents.flushTimeoutMs,
      rules: c.securityEvents.rules.map((r) => ({
        name: r.name,
        codes: r.codes,
        threshold: r.threshold,
        windowSeconds: r.windowSeconds,
        minTrust: r.minTrust,
        reason: r.reason ?? `${r.threshold} events of ${r.codes.join(', ')} within ${r.windowSeconds} s`,
      })),
    },
    ...(c.admin ? { admin: { tokenFile: resolveFrom(base, c.admin.tokenFile), ...(c.admin.listen ? { listen: c.admin.listen } : {}) } } : {}),
    routes,
  };
  const warnings = issuesToErrors(fileName, raw, checked.warnings, locate);
  if (routes.length === 0) {
    warnings.push(configError({ file: fileName, field: 'routes', message: `no routes: every request is ${c.unmatched === 'deny' ? 'denied (unmatched: deny)' : 'passed through unprocessed (unmatched: pass)'}` }));
  }
  return { ok: true, config: deepFreeze(config), warnings };
}

type ParsedStores = z.output<ReturnType<typeof buildConfigSchema>>['stores'];

/** The validated stores section in the shape the stores read: one topology per mode, paths absolute. */
function storesConfig(s: ParsedStores, base: string): StoresConfig {
  return {
    kind: s.kind,
    keyPrefix: s.keyPrefix,
    maxMemoryNonces: s.memory.maxNonces,
    deviceCache: s.deviceCache,
    accountCache: s.accountCache,
    ...(s.kind === 'redis' && s.redis ? { redis: redisConfig(s.redis, base) } : {}),
  };
}

function redisConfig(r: NonNullable<ParsedStores['redis']>, base: string): RedisConfig {
  // the schema has checked the URL and which fields each mode needs
  const url = r.url === undefined ? undefined : parseRedisUrl(r.url);
  const fromUrl = url?.ok === true ? url.value : undefined;
  const common = {
    commandTimeoutMs: r.commandTimeoutMs,
    connectTimeoutMs: r.connectTimeoutMs,
    ...((r.username ?? fromUrl?.username) === undefined ? {} : { username: (r.username ?? fromUrl?.username)! }),
    ...(r.passwordEnv !== undefined ? { password: { env: r.passwordEnv } } : r.passwordFile !== undefined ? { password: { file: resolveFrom(base, r.passwordFile) } } : {}),
    ...(r.tls === true || (r.tls === undefined && fromUrl?.tls === true) ? { tls: {} } : {}),
    ...(typeof r.tls === 'object'
      ? { tls: { ...(r.tls.caFile === undefined ? {} : { caFile: resolveFrom(base, r.tls.caFile) }), ...(r.tls.serverName === undefined ? {} : { serverName: r.tls.serverName }) } }
      : {}),
  };
  switch (r.mode) {
    case 'standalone':
      return fromUrl
        ? { mode: 'standalone', host: fromUrl.host, port: fromUrl.port, db: fromUrl.db, ...common }
        : { mode: 'standalone', host: r.host!, port: r.port ?? DEFAULTS.redisPort, db: r.db ?? 0, ...common };
    case 'sentinel':
      return { mode: 'sentinel', sentinels: r.sentinels!, masterName: r.masterName!, db: r.db ?? 0, ...common };
    case 'cluster':
      return { mode: 'cluster', nodes: r.nodes!, ...common };
  }
}

/** sha256 of config text: the watcher compares it to tell a real change from a touch */
export function contentHash(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Read and parse a config file; a missing or unreadable file is an error like any other. */
export function loadConfigFile(path: string, options: ParseOptions): ConfigResult & { readonly hash?: string } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    return { ok: false, errors: [configError({ file: path, field: '', message: `cannot read the file: ${err instanceof Error ? err.message : String(err)}` })] };
  }
  const result = parseConfig(text, path, options);
  return result.ok ? { ...result, hash: contentHash(text) } : result;
}

// ---- environment overrides -----------------------------------------------------------------------------

export type EnvResult =
  | { readonly ok: true; readonly config: GatehouseConfig; /** the variables that changed something */ readonly applied: readonly string[] }
  | { readonly ok: false; readonly errors: readonly ConfigError[] };

/**
 * Apply the GATEHOUSE_* overrides (env wins over the file). An empty variable counts as unset.
 * Relative TLS paths from the environment resolve against the working directory.
 */
export function applyEnv(config: GatehouseConfig, env: Readonly<Record<string, string | undefined>>): EnvResult {
  const errors: ConfigError[] = [];
  const applied: string[] = [];
  const fail = (variable: string, message: string) => errors.push(configError({ file: ENVIRONMENT_FILE, field: variable, message }));
  const get = (variable: string): string | undefined => {
    const value = env[variable];
    if (value === undefined || value === '') return undefined;
    applied.push(variable);
    return value;
  };

  let listen = config.listen;
  for (const [variable, key] of [
    [ENV.grpcListen, 'grpc'],
    [ENV.adminListen, 'admin'],
  ] as const) {
    const value = get(variable);
    if (value === undefined) continue;
    const parsed = parseListenAddress(value);
    if (parsed.ok) listen = { ...listen, [key]: parsed.value };
    else fail(variable, parsed.message);
  }

  let telemetry = config.telemetry;
  const logLevel = get(ENV.logLevel);
  if (logLevel !== undefined) {
    if ((LOG_LEVELS as readonly string[]).includes(logLevel)) telemetry = { ...telemetry, logLevel: logLevel as LogLevel };
    else fail(ENV.logLevel, `must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(logLevel)}`);
  }
  const otlp = get(ENV.otlpEndpoint);
  if (otlp !== undefined) {
    const parsed = parseOtlpEndpoint(otlp);
    if (parsed.ok) telemetry = { ...telemetry, otlpEndpoint: parsed.value };
    else fail(ENV.otlpEndpoint, parsed.message);
  }

  let unmatched = config.unmatched;
  const unmatchedValue = get(ENV.unmatched);
  if (unmatchedValue !== undefined) {
    if (unmatchedValue === 'deny' || unmatchedValue === 'pass') unmatched = unmatchedValue;
    else fail(ENV.unmatched, `must be deny or pass, got ${JSON.stringify(unmatchedValue)}`);
  }

  let tls = config.tls;
  const cert = get(ENV.tlsCertFile);
  const key = get(ENV.tlsKeyFile);
  const ca = get(ENV.tlsCaFile);
  if (cert !== undefined || key !== undefined || ca !== undefined) {
    const certFile = cert === undefined ? tls?.certFile : resolve(cert);
    const keyFile = key === undefined ? tls?.keyFile : resolve(key);
    const caFile = ca === undefined ? tls?.caFile : resolve(ca);
    if (certFile === undefined) fail(ENV.tlsCertFile, `must be set too: the config file has no tls section, and ${key !== undefined ? ENV.tlsKeyFile : ENV.tlsCaFile} alone does not enable TLS`);
    if (keyFile === undefined) fail(ENV.tlsKeyFile, `must be set too: the config file has no tls section, and ${cert !== undefined ? ENV.tlsCertFile : ENV.tlsCaFile} alone does not enable TLS`);
    if (certFile !== undefined && keyFile !== undefined) tls = { certFile, keyFile, ...(caFile === undefined ? {} : { caFile }) };
  }

  if (errors.length > 0) return { ok: false, errors };
  if (applied.length === 0) return { ok: true, config, applied };
  const { tls: _old, ...rest } = config;
  const next: GatehouseConfig = { ...rest, listen, telemetry, unmatched, ...(tls ? { tls } : {}) };
  return { ok: true, config: deepFreeze(next), applied };
}

/** TLS files must be readable at start; a reload re-checks them. */
export function checkFiles(config: GatehouseConfig, applied: readonly string[] = []): ConfigError[] {
  const errors: ConfigError[] = [];
  const file = config.source?.file ?? 'config';
  const redis = config.stores.redis;
  for (const [field, path] of [
    ['stores.redis.passwordFile', redis?.password !== undefined && 'file' in redis.password ? redis.password.file : undefined],
    ['stores.redis.tls.caFile', redis?.tls?.caFile],
  ] as const) {
    if (path === undefined) continue;
    try {
      accessSync(path, constants.R_OK);
    } catch (err) {
      errors.push(configError({ file, field, message: `cannot read ${JSON.stringify(path)}: ${(err as NodeJS.ErrnoException).code ?? String(err)}` }));
    }
  }
  if (!config.tls) return errors;
  for (const [field, variable] of [
    ['certFile', ENV.tlsCertFile],
    ['keyFile', ENV.tlsKeyFile],
    ['caFile', ENV.tlsCaFile],
  ] as const) {
    const path = config.tls[field];
    if (path === undefined) continue;
    try {
      accessSync(path, constants.R_OK);
    } catch (err) {
      const message = `cannot read ${JSON.stringify(path)}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`;
      errors.push(applied.includes(variable) ? configError({ file: ENVIRONMENT_FILE, field: variable, message }) : configError({ file, field: `tls.${field}`, message }));
    }
  }
  return errors;
}

// ---- the whole load --------------------------------------------------------------------------------------

let packageRoot: string | undefined;

/** The directory holding gatehouse's package.json, found by walking up from this module (src/ or dist/src/). */
export function findPackageRoot(from: string = import.meta.dirname): string {
  if (packageRoot !== undefined && from === import.meta.dirname) return packageRoot;
  let dir = from;
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'config'))) {
      if (from === import.meta.dirname) packageRoot = dir;
      return dir;
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no package root (a directory with package.json and config/) above ${from}`);
    dir = parent;
  }
}

/** The embedded default config: for development only (main.ts warns loudly when it is used). */
export function defaultConfigPath(): string {
  return join(findPackageRoot(), 'config', 'gatehouse.dev.yaml');
}

/**
 * Why start-up cannot even pick a file: GATEHOUSE_CONFIG unset where there is no embedded
 * development default (the container image ships none). Undefined when there is a file to load.
 */
export function configNotSet(env: Readonly<Record<string, string | undefined>> = process.env, defaultPath: string = defaultConfigPath()): string | undefined {
  const named = env[ENV.config];
  if ((named !== undefined && named !== '') || existsSync(defaultPath)) return undefined;
  return `${ENV.config} is not set: set it to your config file (docs/config.md). This installation has no embedded development default to fall back to (production images ship none).`;
}

export type LoadResult =
  | {
      readonly ok: true;
      readonly config: GatehouseConfig;
      readonly file: string;
      /** true when GATEHOUSE_CONFIG was unset and the embedded dev default was used */
      readonly embeddedDefault: boolean;
      /** the GATEHOUSE_* variables that overrode the file */
      readonly envOverrides: readonly string[];
      readonly warnings: readonly ConfigError[];
      /** of the file's text: hand it to ConfigWatcher as `initialHash` */
      readonly hash: string;
    }
  | { readonly ok: false; readonly file: string; readonly errors: readonly ConfigError[] };

export interface LoadOptions extends ParseOptions {
  readonly env?: Readonly<Record<string, string | undefined>>;
}

/** Load a given file with the env overrides and file checks: what start-up and every reload do. */
export function loadConfigFrom(file: string, options: LoadOptions): ConfigResult & { readonly envOverrides?: readonly string[]; readonly hash?: string } {
  const loaded = loadConfigFile(file, options);
  if (!loaded.ok) return loaded;
  const withEnv = applyEnv(loaded.config, options.env ?? process.env);
  if (!withEnv.ok) return withEnv;
  const missing = checkFiles(withEnv.config, withEnv.applied);
  if (missing.length > 0) return { ok: false, errors: missing };
  return { ok: true, config: withEnv.config, warnings: loaded.warnings, envOverrides: withEnv.applied, hash: loaded.hash ?? '' };
}

/** Start-up: GATEHOUSE_CONFIG names the file, else the embedded dev default; then env overrides. */
export function loadConfig(options: LoadOptions): LoadResult {
  const env = options.env ?? process.env;
  const named = env[ENV.config];
  const embeddedDefault = named === undefined || named === '';
  const file = embeddedDefault ? defaultConfigPath() : named;
  const loaded = loadConfigFrom(file, { ...options, env });
  if (!loaded.ok) return { ok: false, file, errors: loaded.errors };
  return { ok: true, config: loaded.config, file, embeddedDefault, envOverrides: loaded.envOverrides ?? [], warnings: loaded.warnings, hash: loaded.hash ?? '' };
}
