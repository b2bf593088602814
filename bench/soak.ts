// `npm run soak [-- --duration 600 --rate N --warm-up 60]`: gatehouse as its own process (the
// production command, Redis stores) on the full route (signed + e2ee + passport, bench/signed-routes.ts)
// at half its peak for `duration` seconds, every stream freshly signed, sent once and its answers
// checked. It reports the RSS and heap growth after warm-up (the promise: under 10 %), the event-loop
// lag p99 and the streams that failed, and exits 1 when the promise is not kept. Too long for CI;
// its last figures are in docs/resilience.md and docs/performance.md.
//
// Growth: the last `window` seconds against the first `window` seconds after warm-up, samples every
// 5 s. RSS: the windows' means. Heap: the windows' lowest samples — the heap saws between
// collections (tens of MiB of young garbage at this rate), and its low points are what survives
// them, where a leak shows; the means are printed beside.
// The peak is measured first (a short unpaced batch, as bench/signed-routes-bench.ts does), unless
// --rate says the rate; on a shared machine that peak is what the machine gives at the time.
import { connect, type ClientHttp2Session } from 'node:http2';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { enrollThroughStores, startBenchRedis } from './bench-stores.js';
import { verifyEnvoyStyle, verifyPreFramed } from './extproc-load.js';
import { NODE_FLAGS } from './node-flags.js';
import { prepareSignedRoutes, type SignedRoutes } from './signed-routes.js';
import { freePort, memoryOf, startProcess } from './target.js';
import { runUniqueLoad, sendStream } from './unique-load.js';

const ROUTE = 'signed + e2ee + passport';
const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const SAMPLE_EVERY_MS = 5000;
const TICK_MS = 50;
const CONNECTIONS = 4;
/** streams open at once at most: beyond it the server is not keeping up, and the stream is counted as shed, not queued without bound */
const MAX_IN_FLIGHT = 512;
/** the promise: growth after warm-up below this */
const MAX_GROWTH = 0.1;

interface Sample {
  readonly atSec: number;
  readonly rssMiB: number;
  readonly heapUsedMiB: number;
  /** V8's old space in use: what survived the young collections */
  readonly oldSpaceMiB: number;
  readonly lagP99Ms: number;
  readonly inFlight: number;
}

interface Options {
  readonly durationSec: number;
  readonly warmUpSec: number;
  readonly windowSec: number;
  readonly rate: number | undefined;
}

function options(): Options {
  const { values } = parseArgs({
    options: { duration: { type: 'string', default: '600' }, 'warm-up': { type: 'string', default: '60' }, window: { type: 'string', default: '60' }, rate: { type: 'string' } },
  });
  const positive = (name: string, text: string): number => {
    const n = Number(text);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name}: a positive number, not ${JSON.stringify(text)}`);
    return n;
  };
  const durationSec = positive('duration', values.duration);
  const warmUpSec = positive('warm-up', values['warm-up']);
  const windowSec = positive('window', values.window);
  if (warmUpSec + 2 * windowSec > durationSec) throw new Error(`--duration ${durationSec} is too short for a warm-up of ${warmUpSec} s and two windows of ${windowSec} s`);
  return { durationSec, warmUpSec, windowSec, rate: values.rate === undefined ? undefined : positive('rate', values.rate) };
}

/** One value of a Prometheus text exposition (the first series of that name). */
function metricValue(text: string, name: string): number {
  const match = new RegExp(`^${name}(?:\\{[^}]*\\})? ([^\\s]+)`, 'm').exec(text);
  return match?.[1] === undefined ? Number.NaN : Number(match[1]);
}

/** The sum of every series of a metric (e.g. the in-flight gauge per protocol). */
function metricSum(text: string, name: string): number {
  let sum = 0;
  for (const match of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? ([^\\s]+)`, 'gm'))) sum += Number(match[1]);
  return sum;
}

const mean = (values: readonly number[]): number => values.reduce((a, b) => a + b, 0) / values.length;
const lowest = (values: readonly number[]): number => Math.min(...values);
const sorted = (values: readonly number[]): number[] => [...values].sort((a, b) => a - b);
const fixed = (n: number, digits = 1): string => n.toFixed(digits);

/** Signed streams ahead of the sender, made in the background; a signature lives 30 s, so only a few seconds' worth is kept. */
class StreamSupply {
  private readonly queue: Buffer[] = [];
  private making: Promise<void> | undefined;
  constructor(private readonly routes: SignedRoutes, private readonly keep: number) {}
  take(): Buffer | undefined {
    if (this.queue.length < this.keep) this.making ??= this.routes.streams(ROUTE, Math.max(64, Math.ceil(this.keep / 2))).then((made) => {
      this.queue.push(...made);
      this.making = undefined;
    });
    return this.queue.shift();
  }
  async filled(): Promise<void> {
    this.take();
    while (this.queue.length < this.keep) {
      await this.making;
      this.take();
    }
  }
}

async function main(): Promise<void> {
  const o = options();
  const workDir = mkdtempSync(join(tmpdir(), 'gatehouse-soak-'));
  const redis = await startBenchRedis();
  if (redis === undefined) throw new Error('redis-server is not installed (Debian: redis-server): the full route keeps its nonces in Redis');
  try {
    const routes = await prepareSignedRoutes(workDir, redis.url);
    await enrollThroughStores(routes.config.stores, routes.device);
    const port = await freePort();
    const adminPort = await freePort();
    const logFile = join(workDir, 'gatehouse.out');
    const proc = await startProcess({
      command: ['node', ...NODE_FLAGS, 'dist/src/main.js'], cwd: repoRoot, port, readyTimeoutMs: 60_000, logFile,
      env: { GATEHOUSE_CONFIG: routes.configFile, GATEHOUSE_GRPC_LISTEN: `127.0.0.1:${port}`, GATEHOUSE_ADMIN_LISTEN: `127.0.0.1:${adminPort}` },
    });
    try {
      // the route really verifies, decrypts and issues a passport: else the figures mean nothing
      await verifyPreFramed(port, await routes.scenario(ROUTE), 1, 30_000);
      await verifyEnvoyStyle(port, await routes.scenario(ROUTE), 1, 30_000);
      let rate = o.rate;
      if (rate === undefined) {
        const peak = await runUniqueLoad(port, await routes.streams(ROUTE, 3000), CONNECTIONS, 16);
        if (peak.ok === 0) throw new Error(`measuring the peak: every stream failed: ${peak.errors.join('; ')}`);
        rate = Math.max(1, Math.round(peak.streamsPerSec / 2));
        // unpaced, 64 streams in flight queue past the 150 ms route budget on a busy machine: a few 504s are the peak's, not the soak's
        console.log(`peak on [${ROUTE}]: ${Math.round(peak.streamsPerSec)} streams/s (3,000 streams unpaced, this machine now; ${peak.failed} answered otherwise${peak.errors[0] === undefined ? '' : `, e.g. ${peak.errors[0]}`}); soaking at half: ${rate}/s`);
      }
      console.log(`soak: ${o.durationSec} s at ${rate} streams/s, warm-up ${o.warmUpSec} s, growth windows ${o.windowSec} s; gatehouse pid ${proc.pid}, log ${logFile}`);
      const result = await soak(port, adminPort, proc.pid, routes, rate, o, () => proc.exited);
      report(result, rate, o);
      // every sample, for a second look at the curve (bench/results/*.json is not committed)
      writeFileSync(join(repoRoot, 'bench/results/soak-latest.json'), `${JSON.stringify({ rate, options: o, sent: result.sent, failed: result.failed, failures: Object.fromEntries(result.failures), samples: result.samples }, null, 1)}\n`);
      if (proc.exited) throw new Error(`gatehouse exited during the soak:\n${proc.recentOutput()}`);
      process.exitCode = result.rssGrowth >= MAX_GROWTH || result.heapGrowth >= MAX_GROWTH ? 1 : 0;
    } finally {
      await proc.stop(10_000);
    }
  } finally {
    await redis.close();
    rmSync(workDir, { recursive: true, force: true });
  }
}

interface SoakResult {
  readonly samples: Sample[];
  readonly sent: number;
  readonly ok: number;
  readonly failed: number;
  readonly shed: number;
  readonly unsigned: number;
  readonly errors: string[];
  readonly failures: ReadonlyMap<string, number>;
  readonly latenciesMs: Float64Array;
  readonly rssGrowth: number;
  readonly heapGrowth: number;
}

async function soak(port: number, adminPort: number, pid: number, routes: SignedRoutes, rate: number, o: Options, exited: () => boolean): Promise<SoakResult> {
  const supply = new StreamSupply(routes, Math.ceil(rate * 2));
  await supply.filled();
  const sessions: ClientHttp2Session[] = Array.from({ length: CONNECTIONS }, () => {
    const session = connect(`http://127.0.0.1:${port}`);
    session.on('error', () => { /* each stream reports its own failure */ });
    return session;
  });
  const samples: Sample[] = [];
  const latencies: number[] = [];
  const errors: string[] = [];
  const failures = new Map<string, number>();
  let sent = 0;
  let ok = 0;
  let failed = 0;
  let shed = 0;
  /** shed because the signer fell behind: the generator's shortfall, not the server's */
  let unsigned = 0;
  let inFlight = 0;
  const pending = new Set<Promise<void>>();
  const t0 = performance.now();
  const endAt = t0 + o.durationSec * 1000;
  let nextSample = t0;
  const sample = async (): Promise<void> => {
    const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
    samples.push({
      atSec: (performance.now() - t0) / 1000,
      rssMiB: memoryOf(pid).rssMiB,
      heapUsedMiB: metricValue(text, 'nodejs_heap_size_used_bytes') / 2 ** 20,
      oldSpaceMiB: metricValue(text, 'nodejs_heap_space_size_used_bytes\\{space="old"\\}') / 2 ** 20,
      // prom-client resets its event-loop histogram at each scrape: this is the last 5 s's p99
      lagP99Ms: metricValue(text, 'nodejs_eventloop_lag_p99_seconds') * 1000,
      inFlight: metricSum(text, 'gatehouse_streams_in_flight'),
    });
  };
  try {
    // open loop: each tick starts what the rate says is due, whatever the answers' pace
    while (performance.now() < endAt && !exited()) {
      const now = performance.now();
      if (now >= nextSample) {
        nextSample += SAMPLE_EVERY_MS;
        await sample();
        const last = samples.at(-1)!;
        if (samples.length % 12 === 1) console.log(`  ${fixed(last.atSec, 0)} s: rss ${fixed(last.rssMiB)} MiB, heap ${fixed(last.heapUsedMiB)} MiB, lag p99 ${fixed(last.lagP99Ms)} ms, ${sent} sent, ${failed} failed, ${shed} shed`);
      }
      const due = Math.floor(((now - t0) / 1000) * rate) - sent - shed;
      for (let i = 0; i < due; i++) {
        const stream = supply.take();
        if (stream === undefined || inFlight >= MAX_IN_FLIGHT) {
          shed++;
          if (stream === undefined) unsigned++;
          continue;
        }
        sent++;
        inFlight++;
        const session = sessions[sent % CONNECTIONS]!;
        const one = sendStream(session, stream, sent % 16 === 0).then((answer) => {
          inFlight--;
          latencies.push(answer.ms);
          if (answer.problem === undefined) ok++;
          else {
            failed++;
            // by kind, e.g. "504 processing_timeout" (the budget, on a busy machine) or "grpc-status 14"
            const kind = /: (\d{3} \S+)$/.exec(answer.problem)?.[1] ?? answer.problem.slice(0, 80);
            failures.set(kind, (failures.get(kind) ?? 0) + 1);
            if (errors.length < 5) errors.push(answer.problem);
          }
        });
        pending.add(one);
        void one.finally(() => pending.delete(one));
      }
      await new Promise((r) => setTimeout(r, TICK_MS));
    }
    await Promise.all(pending);
    await sample();
  } finally {
    for (const session of sessions) session.close();
  }
  const measured = samples.filter((s) => s.atSec >= o.warmUpSec);
  const first = measured.filter((s) => s.atSec < o.warmUpSec + o.windowSec);
  const last = measured.filter((s) => s.atSec >= o.durationSec - o.windowSec);
  const growth = (pick: (s: Sample) => number, of: (values: number[]) => number): number => (of(last.map(pick)) - of(first.map(pick))) / of(first.map(pick));
  return {
    samples, sent, ok, failed, shed, unsigned, errors, failures,
    latenciesMs: Float64Array.from(latencies).sort(),
    rssGrowth: growth((s) => s.rssMiB, mean),
    heapGrowth: growth((s) => s.heapUsedMiB, lowest),
  };
}

function report(r: SoakResult, rate: number, o: Options): void {
  const measured = r.samples.filter((s) => s.atSec >= o.warmUpSec);
  const first = measured.filter((s) => s.atSec < o.warmUpSec + o.windowSec);
  const last = measured.filter((s) => s.atSec >= o.durationSec - o.windowSec);
  const lags = sorted(r.samples.filter((s) => s.atSec >= o.warmUpSec).map((s) => s.lagP99Ms));
  const at = (values: ArrayLike<number>, q: number): number => values[Math.min(values.length - 1, Math.floor(q * values.length))] ?? Number.NaN;
  const achieved = r.sent / o.durationSec;
  console.log([
    `soak result (${o.durationSec} s on [${ROUTE}], ${rate}/s asked, ${fixed(achieved, 0)}/s sent):`,
    `  streams: ${r.sent} sent, ${r.ok} ok, ${r.failed} failed, ${r.shed} shed (${r.shed - r.unsigned} with ${MAX_IN_FLIGHT} open already, ${r.unsigned} with no signed stream ready)`,
    ...[...r.failures].map(([kind, count]) => `    failed: ${count} × ${kind}`),
    ...r.errors.map((e) => `    e.g.: ${e}`),
    `  latency per stream: p50 ${fixed(at(r.latenciesMs, 0.5))} ms, p99 ${fixed(at(r.latenciesMs, 0.99))} ms`,
    `  RSS: ${fixed(mean(first.map((s) => s.rssMiB)))} MiB after warm-up → ${fixed(mean(last.map((s) => s.rssMiB)))} MiB at the end: growth ${fixed(r.rssGrowth * 100)} % (max ${fixed(Math.max(...measured.map((s) => s.rssMiB)))} MiB)`,
    `  heap used, lowest in the window: ${fixed(lowest(first.map((s) => s.heapUsedMiB)))} MiB after warm-up → ${fixed(lowest(last.map((s) => s.heapUsedMiB)))} MiB at the end: growth ${fixed(r.heapGrowth * 100)} % (means ${fixed(mean(first.map((s) => s.heapUsedMiB)))} → ${fixed(mean(last.map((s) => s.heapUsedMiB)))} MiB, max ${fixed(Math.max(...measured.map((s) => s.heapUsedMiB)))} MiB)`,
    `  old space used, means: ${fixed(mean(first.map((s) => s.oldSpaceMiB)))} → ${fixed(mean(last.map((s) => s.oldSpaceMiB)))} MiB`,
    `  event-loop lag p99 (per 5 s window after warm-up): median ${fixed(at(lags, 0.5))} ms, max ${fixed(lags.at(-1) ?? Number.NaN)} ms`,
    `  streams in flight (5 s samples after warm-up): max ${Math.max(...measured.map((s) => s.inFlight))}; at the end ${r.samples.at(-1)?.inFlight ?? Number.NaN}`,
    `  RSS every minute: ${r.samples.filter((_, i) => i % 12 === 0).map((s) => s.rssMiB.toFixed(0)).join(', ')} MiB`,
    `  verdict: ${r.rssGrowth < MAX_GROWTH && r.heapGrowth < MAX_GROWTH ? 'PASS' : 'FAIL'} (promise: RSS and heap growth < ${MAX_GROWTH * 100} % after warm-up; failures are reported, the route budget being the production 150 ms)`,
  ].join('\n'));
}

await main();
