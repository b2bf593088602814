// `npm run bench`, routes with signed requests: gatehouse (core 0) on bench/signed-routes.ts's three
// routes, its stores on a redis-server (core 1), loaded by bench/unique-load.ts (core 1) with streams
// signed just before each run, each sent once. The same generator against the ceiling server on the
// same streams gives each route's ceiling; the ratio compares streams per server CPU-second, which
// does not depend on how fast the generator is. Per route: a verification (the route's answers
// checked, pre-framed and Envoy-style), a warm-up batch, then a batch sized for the duration.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { REDIS_SERVER } from '../test/support/redis.js';
import { enrollThroughStores, startBenchRedis } from './bench-stores.js';
import { verifyEnvoyStyle, verifyPreFramed } from './extproc-load.js';
import { NODE_FLAGS } from './node-flags.js';
import { prepareSignedRoutes, SIGNED_ROUTE_KINDS, type SignedRouteKind, type SignedRoutes } from './signed-routes.js';
import { fmt, table } from './table.js';
import { cpuSecondsOf, freePort, startProcess, type RunningProcess } from './target.js';
import { writeStreamsFile, type UniqueLoadResult } from './unique-load.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const WARM_UP_STREAMS = 1500;
const MIN_STREAMS = 2000;
/** signatures older than the route's maxAgeSeconds (30 s) are refused: a batch must be made and sent well within it */
const MAX_STREAMS = 30_000;
const CONNECTIONS = 4;
/** 64 in flight keep gatehouse's core busy (at 16 it idled ~8% of the time) */
const IN_FLIGHT_PER_CONNECTION = 16;

export interface SignedRouteRow {
  readonly server: 'ceiling' | 'gatehouse';
  readonly route: SignedRouteKind;
  readonly messagesPerStream: number;
  readonly load: UniqueLoadResult;
  /** the server's CPU share while the batch ran (1 = its whole core) */
  readonly serverCpuCores: number;
  readonly streamsPerCpuSec: number;
  /** the warm-up batch's failures (reported; its streams are not measured) */
  readonly warmUp: { readonly failed: number; readonly errors: readonly string[] };
  /** gatehouse's streams per CPU-second over the ceiling's on the same route */
  readonly ofCeilingPerCpu?: number;
}

export interface SignedRoutesResult {
  readonly status: 'ok' | 'skipped' | 'failed';
  readonly reason?: string;
  readonly rows: SignedRouteRow[];
}

interface Options {
  readonly durationSec: number;
  readonly pin: boolean;
  readonly workDir: string;
  readonly serverCpu: string;
  readonly loadCpu: string;
  /** gatehouse's command line, as for the h2load targets */
  readonly gatehouseCommand: readonly string[];
}

export async function runSignedRoutesBench(options: Options): Promise<SignedRoutesResult> {
  const redis = await startBenchRedis(options.pin ? options.loadCpu : undefined);
  if (redis === undefined) return { status: 'skipped', reason: `${REDIS_SERVER} not installed (Debian: redis-server)`, rows: [] };
  const rows: SignedRouteRow[] = [];
  try {
    const routes = await prepareSignedRoutes(options.workDir, redis.url);
    await enrollThroughStores(routes.config.stores, routes.device);
    for (const server of ['ceiling', 'gatehouse'] as const) {
      const port = await freePort();
      const command = server === 'ceiling' ? ['node', ...NODE_FLAGS, 'dist/bench/ceiling-server.js', '--port', String(port)] : [...options.gatehouseCommand];
      const proc = await startProcess({
        command, cwd: repoRoot, port, readyTimeoutMs: 20_000,
        env: { GATEHOUSE_CONFIG: routes.configFile, GATEHOUSE_GRPC_LISTEN: `127.0.0.1:${port}`, GATEHOUSE_ADMIN_LISTEN: `127.0.0.1:${await freePort()}` },
        ...(options.pin ? { cpu: options.serverCpu } : {}),
        logFile: join(options.workDir, `signed-routes-${server}.out`),
      });
      try {
        for (const route of SIGNED_ROUTE_KINDS) {
          process.stdout.write(`  ${server} [${route}] … `);
          const row = await measureRoute(server, route, routes, proc, port, options);
          console.log(`${fmt(row.load.streamsPerSec)} streams/s${row.load.failed > 0 ? `, ${row.load.failed} FAILED` : ''}`);
          rows.push(row);
        }
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        return { status: 'failed', reason: `${server}: ${message}\n--- server output (last lines) ---\n${proc.recentOutput()}`, rows };
      } finally {
        await proc.stop();
      }
    }
  } finally {
    await redis.close();
  }
  const withRatios = rows.map((row) => {
    const ceiling = rows.find((c) => c.server === 'ceiling' && c.route === row.route);
    return row.server === 'gatehouse' && ceiling !== undefined ? { ...row, ofCeilingPerCpu: row.streamsPerCpuSec / ceiling.streamsPerCpuSec } : row;
  });
  const failed = withRatios.some((row) => row.load.failed > 0 || row.load.ok === 0);
  return { status: failed ? 'failed' : 'ok', ...(failed ? { reason: 'some streams were refused or failed (see errors in the JSON)' } : {}), rows: withRatios };
}

async function measureRoute(server: SignedRouteRow['server'], route: SignedRouteKind, routes: SignedRoutes, proc: RunningProcess, port: number, options: Options): Promise<SignedRouteRow> {
  const scenario = await routes.scenario(route);
  if (server === 'gatehouse') {
    // the route really verifies, decrypts, issues a passport: else the figures mean nothing
    await verifyPreFramed(port, scenario, 1);
    await verifyEnvoyStyle(port, await routes.scenario(route), 1);
  }
  const warmUp = load(await routes.streams(route, WARM_UP_STREAMS), port, options);
  const count = Math.max(MIN_STREAMS, Math.min(MAX_STREAMS, Math.round(warmUp.streamsPerSec * options.durationSec)));
  const streams = await routes.streams(route, count);
  const cpu0 = cpuSecondsOf(proc.pid);
  const measured = load(streams, port, options);
  const serverCpuSeconds = cpuSecondsOf(proc.pid) - cpu0;
  if (proc.exited) throw new Error('the server exited during the run');
  return {
    server, route, messagesPerStream: scenario.messages.length, load: measured,
    serverCpuCores: serverCpuSeconds / measured.seconds,
    streamsPerCpuSec: measured.streams / serverCpuSeconds,
    warmUp: { failed: warmUp.failed, errors: warmUp.errors },
  };
}

/** Runs the generator in its own process on the load core; its answer is its last stdout line. */
function load(streams: Buffer[], port: number, options: Options): UniqueLoadResult {
  const file = join(options.workDir, 'signed-streams.bin');
  writeStreamsFile(file, streams);
  const generator = fileURLToPath(new URL('./unique-load.js', import.meta.url));
  const node = [process.execPath, generator, '--port', String(port), '--file', file, '--connections', String(CONNECTIONS), '--in-flight', String(IN_FLIGHT_PER_CONNECTION)];
  const command = options.pin ? ['taskset', '-c', options.loadCpu, ...node] : node;
  const run = spawnSync(command[0]!, command.slice(1), { encoding: 'utf8', maxBuffer: 4 * 1024 * 1024 });
  if (run.status !== 0) throw new Error(`the load generator failed (exit ${String(run.status)}): ${run.stderr.slice(0, 2000)}`);
  return JSON.parse(run.stdout.trim().split('\n').at(-1) ?? '') as UniqueLoadResult;
}

export function signedRoutesTable(result: SignedRoutesResult): string {
  if (result.status === 'skipped') return `  skipped: ${result.reason ?? ''}`;
  const lines = [table(
    ['server', 'route', 'msgs', 'streams/s', 'srv CPU', '/CPU-s', 'µs/stream', 'p50 ms', 'p99 ms', 'of ceiling /CPU-s', 'failed', 'gen µs/stream'],
    result.rows.map((row) => [
      row.server, row.route, row.messagesPerStream, row.load.streamsPerSec, `${Math.round(row.serverCpuCores * 100)}%`, row.streamsPerCpuSec,
      (1e6 / row.streamsPerCpuSec).toFixed(0), row.load.latency.p50Ms, row.load.latency.p99Ms,
      row.ofCeilingPerCpu === undefined ? '' : `${(row.ofCeilingPerCpu * 100).toFixed(0)}%`,
      `${row.load.failed}${row.warmUp.failed > 0 ? ` (+${row.warmUp.failed} in warm-up)` : ''}`, row.load.clientCpuUsPerStream.toFixed(0),
    ]),
  )];
  for (const row of result.rows) {
    for (const error of row.load.errors) lines.push(`  ${row.server} [${row.route}]: ${error}`);
    for (const error of row.warmUp.errors) lines.push(`  ${row.server} [${row.route}], warm-up: ${error}`);
  }
  if (result.status === 'failed') lines.push(`  FAILED: ${result.reason ?? ''}`);
  lines.push(
    `  Server on core 0; the generator (raw node:http2, ${CONNECTIONS} connections × ${IN_FLIGHT_PER_CONNECTION} streams in flight, every stream sent once)`,
    '  and redis-server on core 1. streams/s: wall clock after the first fifth of the batch; /CPU-s: streams per server CPU-second;',
    '  "of ceiling": per CPU-second against the ceiling server answering the same streams empty.',
  );
  return lines.join('\n');
}
