// The composition root: config → telemetry → route table → servers, and the drain. main.ts is the
// process around it (env, signals, exit codes); tests, the demo and the bench start it directly.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startAdminServer, type AdminServer } from './admin/server.js';
import { ENV, findPackageRoot } from './config/load.js';
import type { RouteTable } from './config/route-table.js';
import { buildRouteTable } from './config/routes.js';
import type { GatehouseConfig, ListenAddress } from './config/types.js';
import { loadClientRegistry } from './config/clients-file.js';
import type { ClientRegistry } from './filters/mtls/clients.js';
import { FILTER_REGISTRY } from './filters/registry.js';
import { releaseFilters } from './pipeline/release.js';
import type { RoutesSource } from './pipeline/routing.js';
import { createFilterDeps } from './filters/deps.js';
import type { FilterDefinition, FilterDeps } from './pipeline/types.js';
import { GatehouseServer } from './server.js';
import { checkRedisRequirements, openStores, RedisConfigError } from './stores/index.js';
import { adminApiRoutes, readToken } from './security/admin.js';
import { createSecurityEvents, type SecurityEvents } from './security/index.js';
import { hostname } from 'node:os';
import { createTelemetry, type GatehouseTelemetry } from './telemetry/index.js';
import { resolveTelemetryExport } from './telemetry/otlp-env.js';
import type { DestinationStream } from 'pino';

export const VERSION: string = (JSON.parse(readFileSync(join(findPackageRoot(), 'package.json'), 'utf8')) as { version: string }).version;

export interface StartOptions {
  readonly config: GatehouseConfig;
  /** where the log goes; stdout by default */
  readonly logDestination?: DestinationStream;
  /** Node runtime metrics (off in tests that start many instances) */
  readonly runtimeMetrics?: boolean;
  /** the filters routes may name; FILTER_REGISTRY unless a test adds its own */
  readonly registry?: ReadonlyMap<string, FilterDefinition>;
  /** the OTEL_* variables are read from here; process.env by default */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

/** Holds the current route table; streams take it when they start (RoutesSource). */
export class LiveRoutes implements RoutesSource {
  constructor(private table: RouteTable) {}
  current(): RouteTable {
    return this.table;
  }
  replace(table: RouteTable): void {
    this.table = table;
  }
}

/** Holds the current client registry; the mtls filter asks it per request. */
export class LiveClientRegistry {
  constructor(
    readonly file: string,
    private registry: ClientRegistry,
    /** of the file's content the registry came from */
    public hash: string,
  ) {}
  readonly current = (): ClientRegistry => this.registry;
  replace(registry: ClientRegistry, hash: string): void {
    this.registry = registry;
    this.hash = hash;
  }
}

/** `msg` of the audit line the mtls filter writes per decision (docs/operations.md) */
export const MTLS_AUDIT_MESSAGE = 'mtls_audit';

export interface RunningGatehouse {
  readonly grpcPort: number;
  readonly adminPort: number;
  /** the admin API's own port when admin.listen is set; undefined: the API is on adminPort */
  readonly adminApiPort: number | undefined;
  readonly telemetry: GatehouseTelemetry;
  readonly routes: LiveRoutes;
  readonly server: GatehouseServer;
  /** the filter services of this process (stores, breakers); a reload builds its table with these, so they keep their state */
  readonly deps: FilterDeps;
  /** the filters routes may name: a reload builds its table with the same */
  readonly registry: ReadonlyMap<string, FilterDefinition>;
  /** set when the config has mtls.clientsFile */
  readonly clients: LiveClientRegistry | undefined;
  /** suspicious denials → FDS stream, log, metrics; the disable rules */
  readonly security: SecurityEvents;
  /** readiness off, refuse new streams, let open ones finish within graceMs; true if they all did */
  drain(graceMs?: number): Promise<boolean>;
  /** drain, then close the admin server and the stores' connections, and flush telemetry */
  stop(graceMs?: number): Promise<boolean>;
}

export class StartupError extends Error {}

/**
 * A listener that cannot bind (port taken, or privileged), said with the config field and the
 * environment variable that move it; any other error as it is.
 */
export function listenError(error: unknown, field: string, variable: string | undefined, address: ListenAddress): unknown {
  const text = error instanceof Error ? `${(error as NodeJS.ErrnoException).code ?? ''} ${error.message}` : String(error);
  const how = `set ${variable ? `${variable} or ` : ''}${field} in the config to another host:port`;
  if (text.includes('EADDRINUSE')) return new StartupError(`${field}: ${address.host}:${address.port} is already in use by another process; stop it, or ${how}`);
  if (text.includes('EACCES')) return new StartupError(`${field}: not allowed to listen on ${address.host}:${address.port} (a port below 1024 needs privileges); ${how}`);
  return error;
}

export async function startGatehouse(options: StartOptions): Promise<RunningGatehouse> {
  // Every check here that can refuse a start without a listener or a connection (client registry,
  // admin token, route table) is also in src/check.ts, which `--check` runs: keep the two in step.
  const { config } = options;
  const exported = resolveTelemetryExport(config.telemetry, options.env ?? process.env);
  if (!exported.ok) throw new StartupError(exported.error);
  const { otlp, sampleRatio } = exported.value;
  const created = createTelemetry({
    service: config.telemetry.serviceName,
    version: VERSION,
    logLevel: config.telemetry.logLevel,
    defaultMetrics: options.runtimeMetrics ?? true,
    ...(options.logDestination ? { logDestination: options.logDestination } : {}),
    logFormat: config.telemetry.logFormat,
    tracing: { ...(otlp ? { otlp } : {}), ...(sampleRatio === undefined ? {} : { sampleRatio }) },
  });
  // telemetry.accessLog: false keeps metrics and traces but writes no per-request line.
  const telemetry: GatehouseTelemetry = config.telemetry.accessLog ? created : { ...created, accessLog: () => undefined };
  // the client registry first: a bad file stops the start before any connection is opened
  let clients: LiveClientRegistry | undefined;
  if (config.mtls) {
    const loaded = loadClientRegistry(config.mtls.clientsFile);
    if (!loaded.ok) throw new StartupError(loaded.errors.map((e) => e.format()).join('\n'));
    clients = new LiveClientRegistry(config.mtls.clientsFile, loaded.registry, loaded.hash);
  }
  // A Redis that is down at start does not stop the start: routes have failure modes, ioredis keeps
  // reconnecting, and /readyz and the log say so. Readiness stays on (see the readyz details below).
  let opened: Awaited<ReturnType<typeof openStores>>;
  try {
    opened = await openStores(config.stores, { registry: telemetry.metrics.registry });
  } catch (error) {
    if (error instanceof RedisConfigError) throw new StartupError(error.message);
    throw error;
  }
  const { stores } = opened;
  if (opened.connectError !== undefined) {
    telemetry.logger.error({ stores: stores.status() }, `redis unreachable at start (${opened.connectError}): store calls answer unavailable, so routes apply their failure mode, until it is back`);
  } else if (opened.redis !== undefined && config.stores.redis !== undefined) {
    // what gatehouse needs of Redis (src/stores/requirements.ts): each shortfall a warning, not a refusal
    for (const unmet of await checkRedisRequirements(opened.redis.connection, config.stores.redis.connectTimeoutMs)) {
      telemetry.logger.warn({ redis_setting: unmet.setting, found: unmet.found }, `redis requirement not met: ${unmet.warning}`);
    }
  }
  // The admin token is read on every admin call (rotation without restart); a missing one stops the start here.
  if (config.admin !== undefined) {
    const token = readToken(config.admin.tokenFile);
    if (!token.ok) {
      await stores.close();
      throw new StartupError(`${config.source?.file ?? 'config'}: admin.tokenFile: ${token.message}`);
    }
  }
  const security = createSecurityEvents({
    config: config.securityEvents,
    stores,
    ...(opened.redis === undefined ? {} : { redis: opened.redis }),
    logger: telemetry.logger,
    registry: telemetry.metrics.registry,
    instance: `${config.telemetry.serviceName}@${hostname()}:${process.pid}`,
  });
  const ruleNames = config.securityEvents.rules.map((r) => `${r.name} (${r.threshold} × [${r.codes.join(', ')}] in ${r.windowSeconds} s)`);
  if (opened.redis === undefined) {
    telemetry.logger.warn(
      { security_events: security.output, rules: ruleNames },
      'SECURITY EVENTS GO TO THE LOG ONLY: stores.kind is memory, so there is no FDS stream and disable-rule counts are this process\'s own (use stores.kind redis for a fleet)',
    );
  } else {
    telemetry.logger.info({ security_events: security.output, rules: ruleNames }, 'security events go to the FDS stream; disable rules count in Redis');
  }
  // One set of filter services for the process: reloads build new tables with the same deps, so
  // breakers and stores keep their state.
  const known = new Set<string>();
  const deps = createFilterDeps({
    stores,
    ...(clients ? { mtls: { clients: clients.current, audit: (record) => { telemetry.logger.info(record, MTLS_AUDIT_MESSAGE); } } } : {}),
    userApiCalls: telemetry.metrics,
    breakerEvents: {
      onStateChange(route, feature, state) {
        const key = `${route}\u0000${feature}`;
        const transition = known.has(key);
        known.add(key);
        telemetry.metrics.breakerState(route, feature, state, transition);
        if (!transition) return;
        const line = { route_id: route, feature, state };
        if (state === 'open') telemetry.logger.warn(line, 'breaker opened: requests are refused with 503 circuit_open until a probe succeeds');
        else telemetry.logger.info(line, state === 'closed' ? 'breaker closed: the probe succeeded' : 'breaker half-open: the next request is a probe');
      },
    },
  });
  const registry = options.registry ?? FILTER_REGISTRY;
  const built = buildRouteTable(config, { registry, deps });
  if (!built.ok) {
    await stores.close();
    throw new StartupError(built.errors.map((e) => e.format()).join('\n'));
  }
  const routes = new LiveRoutes(built.table);
  const server = new GatehouseServer({
    host: config.listen.grpc.host,
    port: config.listen.grpc.port,
    ...(config.tls ? { tls: config.tls } : {}),
    routes,
    telemetry,
    onDenial: security.onDenial,
    limits: { maxStreams: config.envoy.maxStreams, maxStreamsPerConnection: config.envoy.maxStreamsPerConnection, idleTimeoutMs: config.envoy.streamIdleTimeoutMs },
  });
  let grpcPort: number;
  try {
    grpcPort = await server.start();
  } catch (error) {
    await stores.close();
    throw listenError(error, 'listen.grpc', ENV.grpcListen, config.listen.grpc);
  }
  const apiRoutes = adminApiRoutes({ tokenFile: config.admin?.tokenFile, accounts: stores.accounts, devices: stores.devices, rules: security.rules, sink: security.sink, logger: telemetry.logger, registry: telemetry.metrics.registry });
  const onAdminError = (err: unknown, path: string): void => {
    telemetry.logger.error({ err, path }, 'admin handler failed');
  };
  // admin.listen: the API on a listener of its own, so the NetworkPolicy and AuthorizationPolicy can
  // open /metrics and the probes to monitoring without opening the API
  const apiListen = config.admin?.listen;
  let admin: AdminServer;
  let adminApi: AdminServer | undefined;
  try {
    admin = await startAdminServer({
      host: config.listen.admin.host,
      port: config.listen.admin.port,
      metrics: telemetry.metrics,
      health: {
        live: () => true,
        // Not ready only while draining. A Redis outage shows in the details but leaves readiness on:
        // it hits every replica at once, so taking them out would turn the routes' failure modes
        // (some fail open) into a total outage.
        ready: () => server.isAccepting,
        details: () => ({ draining: !server.isAccepting, routes: routes.current().routes.length, stores: stores.status(), securityEvents: { output: security.output, buffered: security.sink.pending } }),
      },
      ...(apiListen ? {} : { apiRoutes }),
      onError: onAdminError,
    });
  } catch (error) {
    server.forceStop();
    await stores.close();
    throw listenError(error, 'listen.admin', ENV.adminListen, config.listen.admin);
  }
  try {
    if (apiListen) adminApi = await startAdminServer({ host: apiListen.host, port: apiListen.port, apiRoutes, onError: onAdminError });
  } catch (error) {
    server.forceStop();
    await admin.close();
    await stores.close();
    throw apiListen ? listenError(error, 'admin.listen', undefined, apiListen) : error;
  }
  const graceDefault = config.shutdown.graceMs;
  let drained: Promise<boolean> | undefined;
  let stopped: Promise<boolean> | undefined;
  const drain = (graceMs = graceDefault): Promise<boolean> => {
    drained ??= server.drain(graceMs);
    return drained;
  };
  return {
    grpcPort,
    adminPort: admin.port,
    adminApiPort: adminApi?.port,
    telemetry,
    routes,
    clients,
    server,
    deps,
    registry,
    security,
    drain,
    stop(graceMs = graceDefault) {
      // once: a second call (a test's cleanup, a second signal) waits for the first
      stopped ??= (async () => {
        const finished = await drain(graceMs);
        deps.breakers.shutdown();
        for (const failure of releaseFilters(routes.current().routes)) {
          telemetry.logger.warn({ err: failure.error, route_id: failure.routeId, filter: failure.filter }, 'a filter failed to release what it holds');
        }
        await admin.close();
        await adminApi?.close();
        // after the drain (its requests may still report events), before the stores close
        await security.close(config.securityEvents.flushTimeoutMs);
        await stores.close();
        await telemetry.shutdown();
        return finished;
      })();
      return stopped;
    },
  };
}
