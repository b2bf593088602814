// The admin HTTP server: Prometheus scrape, liveness and readiness probes, and routes other parts
// of gatehouse add (e.g. /.well-known/jwks.json). Plain node:http: a handful of fixed paths.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Metrics } from '../telemetry/types.js';

export interface Health {
  /** false: the process is wedged and should be restarted (liveness) */
  live(): boolean;
  /** false: don't send traffic (config not loaded yet, draining, dependency down) */
  ready(): boolean;
  /** why: merged into the /readyz body (its `status` field is the server's), e.g. `{ config: "loaded", draining: false }` */
  details?(): object;
}

/** Answers a GET or HEAD on its path (a HEAD's body is dropped by node:http). */
export type AdminHandler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

export interface AdminServerOptions {
  readonly host: string;
  /** 0 picks a free port (tests) */
  readonly port: number;
  /** /metrics, /healthz and /readyz: absent on a listener that serves only the admin API */
  readonly metrics?: Pick<Metrics, 'render' | 'contentType'>;
  readonly health?: Health;
  /** path (no query) → handler; may not shadow the built-in paths */
  readonly extraRoutes?: ReadonlyMap<string, AdminHandler>;
  /** path (no query) → the methods it answers and its handler (the admin API: GET and POST; it authenticates itself) */
  readonly apiRoutes?: ReadonlyMap<string, { readonly methods: readonly string[]; readonly handler: AdminHandler }>;
  /** handler failures are reported here; the client gets a 500 */
  readonly onError?: (err: unknown, path: string) => void;
}

export interface AdminServer {
  readonly port: number;
  close(): Promise<void>;
}

/** The built-in endpoints' paths: Kubernetes probes and Prometheus point here (deploy/kubernetes). */
export const ADMIN_PATHS = { metrics: '/metrics', live: '/healthz', ready: '/readyz' } as const;

const JSON_TYPE = 'application/json; charset=utf-8';
/** how long close() lets requests in progress finish before dropping their connections */
const CLOSE_GRACE_MS = 1_000;

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': JSON_TYPE,
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

function pathOf(url: string | undefined): string {
  if (url === undefined) return '/';
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

export async function startAdminServer(options: AdminServerOptions): Promise<AdminServer> {
  const builtIn = options.metrics && options.health ? probeAndMetricRoutes(options.metrics, options.health) : new Map<string, AdminHandler>();
  const routes = new Map(builtIn);
  for (const [path, handler] of options.extraRoutes ?? []) {
    if (builtIn.has(path)) throw new Error(`admin route ${path} is built in`);
    routes.set(path, handler);
  }
  const methodsOf = new Map<string, readonly string[]>();
  for (const [path, { methods, handler }] of options.apiRoutes ?? []) {
    if (routes.has(path)) throw new Error(`admin route ${path} is defined twice`);
    routes.set(path, handler);
    methodsOf.set(path, methods);
  }

  const server = createServer((req, res) => {
    const path = pathOf(req.url);
    const handler = routes.get(path);
    if (handler === undefined) {
      sendJson(res, 404, { error: 'not_found', path });
      return;
    }
    const methods = methodsOf.get(path) ?? ['GET', 'HEAD'];
    if (!methods.includes(req.method ?? '')) {
      sendJson(res, 405, { error: 'method_not_allowed' }, { allow: methods.join(', ') });
      return;
    }
    Promise.resolve()
      .then(() => handler(req, res))
      .catch((err: unknown) => {
        options.onError?.(err, path);
        if (!res.headersSent) sendJson(res, 500, { error: 'internal_error' });
        else res.destroy();
      });
  });
  // probes and scrapes are small and quick; don't let idle or slow clients hold sockets
  server.keepAliveTimeout = 5_000;
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => { reject(err); };
    server.once('error', onError);
    server.listen(options.port, options.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;

  return {
    port,
    close() {
      return new Promise<void>((resolve, reject) => {
        server.close((err) => { if (err) reject(err); else resolve(); });
        server.closeIdleConnections();
        // a client in the middle of a request (an admin API body that never ends) does not hold the stop
        setTimeout(() => { server.closeAllConnections(); }, CLOSE_GRACE_MS).unref();
      });
    },
  };
}

function safeProbe(probe: () => boolean): boolean {
  try {
    return probe();
  } catch {
    return false;
  }
}

function probeAndMetricRoutes(metrics: Pick<Metrics, 'render' | 'contentType'>, health: Health): Map<string, AdminHandler> {
  return new Map<string, AdminHandler>([
    [
      ADMIN_PATHS.metrics,
      async (_req, res) => {
        const text = await metrics.render();
        res.writeHead(200, {
          'content-type': metrics.contentType,
          'content-length': Buffer.byteLength(text),
          'cache-control': 'no-store',
        });
        res.end(text);
      },
    ],
    [
      ADMIN_PATHS.live,
      (_req, res) => {
        const live = safeProbe(() => health.live());
        sendJson(res, live ? 200 : 503, { status: live ? 'ok' : 'unhealthy' });
      },
    ],
    [
      ADMIN_PATHS.ready,
      (_req, res) => {
        const ready = safeProbe(() => health.ready());
        let details: object = {};
        try {
          details = health.details?.() ?? {};
        } catch (err) {
          details = { details_error: err instanceof Error ? err.message : String(err) };
        }
        sendJson(res, ready ? 200 : 503, { ...details, status: ready ? 'ready' : 'not_ready' });
      },
    ],
  ]);
}
