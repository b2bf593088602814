// The composition root: config → telemetry → route table → servers, and the drain. main.ts is the
// process around it (env, signals, exit codes); tests, the demo and the bench start it directly.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startAdminServer, type AdminServer } from './admin/server.js';
import { findPackageRoot } from './config/load.js';
import { buildRouteTable, type RouteTable } from './config/routes.js';
import type { GatehouseConfig } from './config/schema.js';
import { FILTER_REGISTRY } from './filters/registry.js';
import type { RoutesSource } from './pipeline/routing.js';
import type { FilterDefinition } from './pipeline/types.js';
import { GatehouseServer } from './server.js';
import { createTelemetry, type GatehouseTelemetry } from './telemetry/index.js';
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

export interface RunningGatehouse {
  readonly grpcPort: number;
  readonly adminPort: number;
  readonly telemetry: GatehouseTelemetry;
  readonly routes: LiveRoutes;
  readonly server: GatehouseServer;
  /** readiness off, refuse new streams, let open ones finish within graceMs; true if they all did */
  drain(graceMs?: number): Promise<boolean>;
  /** drain, then close the admin server and flush telemetry */
  stop(graceMs?: number): Promise<boolean>;
}

export class StartupError extends Error {}

export async function startGatehouse(options: StartOptions): Promise<RunningGatehouse> {
  const { config } = options;
  const created = createTelemetry({
    service: config.telemetry.serviceName,
    version: VERSION,
    logLevel: config.telemetry.logLevel,
    defaultMetrics: options.runtimeMetrics ?? true,
    ...(options.logDestination ? { logDestination: options.logDestination } : {}),
    ...(config.telemetry.otlpEndpoint ? { tracing: { otlp: { url: config.telemetry.otlpEndpoint } } } : {}),
  });
  // telemetry.accessLog: false keeps metrics and traces but writes no per-request line.
  const telemetry: GatehouseTelemetry = config.telemetry.accessLog ? created : { ...created, accessLog: () => undefined };
  const built = buildRouteTable(config, { registry: options.registry ?? FILTER_REGISTRY, deps: { now: Date.now } });
  if (!built.ok) throw new StartupError(built.errors.map((e) => e.format()).join('\n'));
  const routes = new LiveRoutes(built.table);
  const server = new GatehouseServer({
    host: config.listen.grpc.host,
    port: config.listen.grpc.port,
    ...(config.tls ? { tls: config.tls } : {}),
    routes,
    telemetry,
  });
  const grpcPort = await server.start();
  let admin: AdminServer;
  try {
    admin = await startAdminServer({
      host: config.listen.admin.host,
      port: config.listen.admin.port,
      metrics: telemetry.metrics,
      health: {
        live: () => true,
        ready: () => server.isAccepting,
        details: () => ({ draining: !server.isAccepting, routes: routes.current().routes.length }),
      },
      onError: (err, path) => {
        telemetry.logger.error({ err, path }, 'admin handler failed');
      },
    });
  } catch (error) {
    server.forceStop();
    throw error;
  }
  const graceDefault = config.shutdown.graceMs;
  let drained: Promise<boolean> | undefined;
  const drain = (graceMs = graceDefault): Promise<boolean> => {
    drained ??= server.drain(graceMs);
    return drained;
  };
  return {
    grpcPort,
    adminPort: admin.port,
    telemetry,
    routes,
    server,
    drain,
    async stop(graceMs = graceDefault) {
      const finished = await drain(graceMs);
      await admin.close();
      await telemetry.shutdown();
      return finished;
    },
  };
}
