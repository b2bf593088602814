// `npm run bench`: what an ext_proc stream costs on this machine, and what the protocol layer costs
// over its crypto primitives.
//
//  1. ext_proc throughput and latency, h2load as the load generator (a Node client saturates its own
//     core first). Each server under test runs as its own process pinned to core 0, h2load to core 1:
//       - the ceiling (bench/ceiling-server.ts: grpc-js + protobuf-es answering every message empty),
//       - the targets (gatehouse), skipped with a message while their entry point is not built.
//     Per server: a verification pass (the exact pre-framed bytes over node:http2 with grpc-status
//     and answer kinds checked, then Envoy's one-message-at-a-time sequence over grpc-js, then a
//     small h2load count run checking that every stream got its gRPC frames), a saturation run for
//     the peak streams/s, a rate-limited run at half that peak for p50/p99, and the RSS.
//  2. the protocol benchmarks of bench/protocol/ that exist.
//  3. the stores (bench/stores/): nonce claims/s and client CPU per claim, memory and Redis (when
//     redis-server is installed), serial and with claims in flight, and what a Redis outage costs.
//
// Results: a table on stdout, everything as JSON in bench/results/latest.json.
//
//   npm run bench -- [--duration 5] [--warm-up 1] [--only <name part, or a scenario: headers-only, with-bodies, e2ee>] [--no-protocol] [--no-extproc] [--no-signed] [--no-stores]
//                    [--gatehouse-config bench/gatehouse-bench.yaml] [--gatehouse-command "node dist/src/main.js"]
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import { NODE_FLAGS } from './node-flags.js';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  buildScenario,
  frameMessages,
  probeEnvoyStyle,
  readLatencyLog,
  runH2load,
  SCRIPTED_RPS_PER_CLIENT,
  timingScript,
  verifyEnvoyStyle,
  verifyPreFramed,
  type H2loadSummary,
  type LatencyStats,
  type ProbeResult,
  type Scenario,
  type ScenarioName,
  type VerifyResult,
} from './extproc-load.js';
import { startE2eeRouteOnRedis, type E2eeRoute } from './e2ee-route.js';
import { runSignedRoutesBench, signedRoutesTable, type SignedRoutesResult } from './signed-routes-bench.js';
import { protocolTable, toModuleResult, type ProtocolModuleResult } from './protocol/index.js';
import { runStoreBenchesPinned, storesTable, type StoreBenchResult } from './stores/index.js';
import { fmt, table } from './table.js';
import { commandVersion, cpuSecondsOf, freePort, hasCommand, memoryOf, startProcess, type MemoryStats, type RunningProcess } from './target.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const SERVER_CPU = '0';
const LOAD_CPU = '1';
/** Envoy-style probe streams per second during the saturation run (a Node client: kept small) */
const PROBE_RATE = 50;

/** A server under test, given the ports chosen for this run. */
interface TargetSpec {
  name: string;
  /** 'ceiling' for the reference servers, whose figures the others are divided by */
  role: 'ceiling' | 'target';
  scenario: Scenario;
  command: string[];
  env?: Record<string, string>;
  /** files (relative to the repository) that must exist, else the target is skipped */
  requires: string[];
}

const GATEHOUSE_COMMAND = `node ${NODE_FLAGS.join(' ')} dist/src/main.js`;

async function targets(gatehouseConfig: string, gatehouseCommand = GATEHOUSE_COMMAND, e2eeRoute?: E2eeRoute): Promise<TargetSpec[]> {
  const ceiling = async ({ name, messages }: Scenario): Promise<TargetSpec> => {
    const port = await freePort();
    return {
      // the same messages, without the route's check: a ceiling answers everything empty
      name: 'ceiling (grpc-js, empty answers)', role: 'ceiling', scenario: { name, messages },
      command: ['node', ...NODE_FLAGS, 'dist/bench/ceiling-server.js', '--port', String(port)], requires: ['dist/bench/ceiling-server.js'],
    };
  };
  const gatehouse = async (name: string, scenario: Scenario, configFile: string): Promise<TargetSpec> => ({
    name, role: 'target', scenario,
    command: gatehouseCommand.split(' ').filter((w) => w !== ''),
    env: {
      GATEHOUSE_CONFIG: configFile,
      GATEHOUSE_GRPC_LISTEN: `127.0.0.1:${await freePort()}`,
      GATEHOUSE_ADMIN_LISTEN: `127.0.0.1:${await freePort()}`,
    },
    requires: gatehouseCommand === GATEHOUSE_COMMAND ? ['dist/src/main.js', configFile] : [configFile],
  });
  const specs = [
    await ceiling(buildScenario('headers-only')),
    await ceiling(buildScenario('with-bodies')),
    await gatehouse('gatehouse headers-only route', buildScenario('headers-only'), gatehouseConfig),
  ];
  if (e2eeRoute !== undefined) specs.push(await ceiling(e2eeRoute.scenario), await gatehouse('gatehouse e2ee route', e2eeRoute.scenario, e2eeRoute.configFile));
  return specs;
}

function portOf(t: TargetSpec): number {
  const listen = t.env?.['GATEHOUSE_GRPC_LISTEN'];
  const raw = listen !== undefined ? listen.slice(listen.lastIndexOf(':') + 1) : t.command[t.command.indexOf('--port') + 1];
  const port = Number(raw);
  if (!Number.isInteger(port) || port <= 0) throw new Error(`${t.name}: no gRPC port in its command or env`);
  return port;
}

interface ExtprocResult {
  name: string;
  role: TargetSpec['role'];
  scenario: ScenarioName;
  messagesPerStream: number;
  status: 'ok' | 'skipped' | 'failed';
  reason?: string;
  verification?: { preFramed: VerifyResult; envoyStyle: VerifyResult; h2loadSanity: { streams: number; dataBytesPerStream: number } };
  peak?: {
    streamsPerSec: number;
    messagesPerSec: number;
    /** server CPU seconds per wall second during the saturation run (1 = its whole core) */
    serverCpuCores: number;
    /** streams/s divided by the CPU share: what a whole core would do, less skewed by other load */
    streamsPerCpuSec: number;
    h2load: H2loadSummary;
    /** Envoy-style streams at PROBE_RATE on their own connection during the run, each answer checked */
    probe: ProbeResult;
  };
  /** one stream in flight at a time (h2load -c 1 -m 1): the service time of a stream, no queueing */
  serial?: { streamsPerSec: number; latency: LatencyStats };
  /** closed loop: the fewest streams in flight on one connection that reach half the peak */
  closedHalfPeak?: { streamsInFlight: number; streamsPerSec: number; latency: LatencyStats };
  halfPeak?: { targetRps: number; clients: number; rpsPerClient: number; achievedRps: number; latency: LatencyStats; h2load: H2loadSummary };
  memory?: MemoryStats;
  /** what the server wrote to stdout/stderr over the whole measurement (its log, e.g. the access log) */
  serverOutputBytes?: number;
  /** peak streams/s of this server / of the ceiling for the same scenario */
  ratioToCeiling?: number;
  /** the same with streams per CPU-second */
  ratioToCeilingPerCpu?: number;
}

interface Options {
  durationSec: number;
  warmUpSec: number;
  pin: boolean;
}

async function measure(t: TargetSpec, opts: Options, workDir: string): Promise<ExtprocResult> {
  const scenario = t.scenario;
  const base = { name: t.name, role: t.role, scenario: scenario.name, messagesPerStream: scenario.messages.length };
  const missing = t.requires.filter((f) => !existsSync(resolve(repoRoot, f)));
  if (missing.length > 0) return { ...base, status: 'skipped', reason: `not built/written yet: ${missing.join(', ')}` };

  const dataFile = join(workDir, `${scenario.name}.bin`);
  writeFileSync(dataFile, frameMessages(scenario.messages));
  const port = portOf(t);
  const cpu = opts.pin ? LOAD_CPU : undefined;
  const h2 = { port, dataFile, ...(cpu !== undefined ? { cpu } : {}) };
  let proc: RunningProcess;
  try {
    proc = await startProcess({
      command: t.command, ...(t.env !== undefined ? { env: t.env } : {}), cwd: repoRoot,
      ...(opts.pin ? { cpu: SERVER_CPU } : {}), port, readyTimeoutMs: 20_000,
      logFile: join(workDir, `${t.role}-${scenario.name}-${String(port)}.out`),
    });
  } catch (err) {
    return { ...base, status: 'failed', reason: `could not start: ${err instanceof Error ? err.message : String(err)}` };
  }
  try {
    // 1. are the answers real successes?
    const preFramed = await verifyPreFramed(port, scenario);
    const envoyStyle = await verifyEnvoyStyle(port, scenario);
    const sanity = await runH2load({ ...h2, clients: 4, maxStreams: 8, requests: 2000, timeoutMs: 30_000 });
    const minData = sanity.done * scenario.messages.length * 5; // a trailers-only gRPC error has no DATA
    if (sanity.dataBytes < minData) {
      throw new Error(`h2load sanity run: ${sanity.dataBytes} response bytes for ${sanity.done} streams, expected ≥ ${minData}: some streams got no gRPC answers`);
    }
    // 2. saturation
    const cpu0 = cpuSecondsOf(proc.pid);
    const t0 = process.hrtime.bigint();
    const [peakRun, probe] = await Promise.all([
      runH2load({
        ...h2, clients: 32, maxStreams: 16, durationSec: opts.durationSec, warmUpSec: opts.warmUpSec,
        timeoutMs: (opts.durationSec + opts.warmUpSec) * 1000 + 30_000,
      }),
      // beside it, Envoy-style streams checked one by one: are the answers still right under load?
      probeEnvoyStyle(port, scenario, PROBE_RATE, (opts.durationSec + opts.warmUpSec) * 1000),
    ]);
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    const serverCpuCores = (cpuSecondsOf(proc.pid) - cpu0) / wall;
    // 3. half the peak, evenly spaced arrivals (h2load timing script), per-request latency from the log
    const targetRps = peakRun.reqPerSec / 2;
    const clients = Math.max(1, Math.ceil(targetRps / SCRIPTED_RPS_PER_CLIENT));
    const rpsPerClient = targetRps / clients;
    const scriptFile = join(workDir, `${scenario.name}-${t.role}-timing.txt`);
    await writeFile(scriptFile, timingScript(port, rpsPerClient, opts.durationSec));
    const logFile = join(workDir, `${scenario.name}-${t.role}-latency.log`);
    const halfRun = await runH2load({
      ...h2, clients, maxStreams: 64, timingScriptFile: scriptFile, logFile,
      timeoutMs: opts.durationSec * 3000 + 30_000,
    });
    const latency = await readLatencyLog(logFile, Math.min(1, opts.durationSec / 5));
    // 4. one stream at a time
    const serialSec = Math.min(3, opts.durationSec);
    const serialLog = join(workDir, `${scenario.name}-${t.role}-serial.log`);
    const serialRun = await runH2load({ ...h2, clients: 1, maxStreams: 1, durationSec: serialSec, logFile: serialLog, timeoutMs: serialSec * 1000 + 30_000 });
    const serialLatency = await readLatencyLog(serialLog, serialSec / 5);
    // 5. closed loop at half the peak: k streams in flight, the smallest k that reaches it
    let closedHalfPeak: ExtprocResult['closedHalfPeak'];
    for (const k of [1, 2, 3, 4, 6, 8, 12, 16]) {
      const closedLog = join(workDir, `${scenario.name}-${t.role}-closed-${String(k)}.log`);
      const run = await runH2load({ ...h2, clients: 1, maxStreams: k, durationSec: serialSec, logFile: closedLog, timeoutMs: serialSec * 1000 + 30_000 });
      closedHalfPeak = { streamsInFlight: k, streamsPerSec: run.reqPerSec, latency: await readLatencyLog(closedLog, serialSec / 5) };
      if (run.reqPerSec >= peakRun.reqPerSec / 2) break;
    }
    const memory = memoryOf(proc.pid);
    if (proc.exited) throw new Error('the server exited during the run');
    return {
      ...base,
      status: 'ok',
      verification: { preFramed, envoyStyle, h2loadSanity: { streams: sanity.done, dataBytesPerStream: sanity.dataBytes / sanity.done } },
      peak: {
        streamsPerSec: peakRun.reqPerSec, messagesPerSec: peakRun.reqPerSec * scenario.messages.length, serverCpuCores,
        streamsPerCpuSec: peakRun.reqPerSec / serverCpuCores, h2load: peakRun, probe,
      },
      serial: { streamsPerSec: serialRun.reqPerSec, latency: serialLatency },
      ...(closedHalfPeak ? { closedHalfPeak } : {}),
      halfPeak: { targetRps, clients, rpsPerClient, achievedRps: halfRun.reqPerSec, latency, h2load: halfRun },
      memory,
      serverOutputBytes: proc.outputBytes(),
    };
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    return { ...base, status: 'failed', reason: `${msg}\n--- server output (last lines) ---\n${proc.recentOutput()}` };
  } finally {
    await proc.stop();
  }
}

function machine(): Record<string, unknown> {
  // absent on a machine without nghttp2-client: the rest of the bench runs, and says so
  const h2loadVersion = commandVersion('h2load');
  return {
    date: new Date().toISOString(),
    node: process.version,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    cpus: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    h2load: h2loadVersion ?? 'absent (Debian: apt-get install nghttp2-client)',
    /** other work on the machine skews every figure: 1-minute load average when the bench started */
    loadAverage1mAtStart: loadavg()[0] ?? Number.NaN,
  };
}

const METHOD_NOTES = [
  'Load: h2load POSTs one pre-framed gRPC body per stream (every ProcessingRequest of the stream, 5-byte frame header each) to the Process path, headers content-type: application/grpc, te: trailers; it sends all messages at once and half-closes. Envoy instead sends request_headers, waits for the answer, later sends response_headers and waits again, then half-closes and resets. The server does the same work per message; h2load measures its processing ceiling and the service time of a whole stream, not Envoy\'s two round trips around the upstream.',
  'Peak: h2load -c 32 -m 16 for the duration after a warm-up, one stream = one HTTP request through Envoy. Latency: at half the measured peak, arrivals evenly spaced by an h2load timing script (--timing-script-file, at most ' + String(SCRIPTED_RPS_PER_CLIENT) + ' req/s per connection, as many connections as needed), p50/p99 from --log-file (start to end of response, both answers and trailers), the first second (or a fifth of the duration) left out.',
  'Closed loop at half the peak: h2load -c 1 -m k for k = 1, 2, 3, 4, 6, 8, 12, 16 until the rate reaches half the peak; p50/p99 of that run. It has no arrival bursts, so it isolates the server from the load generator; the open-loop run above includes whatever bursts h2load makes.',
  'The connections of the half-peak run follow the same script, so up to one request per connection can arrive together; h2load --rps was not used because it fires each connection\'s requests in bursts every 10 ms. The serial columns (h2load -c 1 -m 1, one stream in flight) give the service time of one stream without queueing.',
  'Server pinned to core 0 and h2load to core 1 with taskset; RSS from /proc/<pid>/status after the runs (VmHWM = peak, VmRSS = now); server CPU = (utime+stime) during the saturation run (warm-up included) / its wall time; streams per CPU-second = peak / that share, a figure less skewed when other processes take part of core 0. The ceiling is measured again after the targets when a target ran; ratios are to the mean of the ceiling runs.',
  `During the saturation run a Node client sends ${PROBE_RATE} Envoy-style streams/s (request_headers, wait for the answer, response_headers, wait, half-close, status OK) on its own connection and checks every answer: h2load only sees HTTP 200, the probe sees wrong or failed answers under load. Its p50/p99 are an Envoy-style stream's duration while the server is saturated (queueing behind h2load's 512 streams in flight included).`,
  'Verified per server before measuring: the same bytes over node:http2 (HTTP 200, grpc-status 0, answers decode to the matching ProcessingResponse oneofs), Envoy\'s one-message-at-a-time sequence over grpc-js, and an h2load count run in which every stream received at least one gRPC frame per message. h2load itself only counts HTTP 2xx.',
];

/** a failed measurement, or wrong answers seen by the probe under load */
function isFailure(r: ExtprocResult): boolean {
  return r.status === 'failed' || (r.peak !== undefined && (r.peak.probe.failed > 0 || r.peak.probe.ok === 0));
}

function extprocTable(results: readonly ExtprocResult[]): string {
  const ok = results.filter((r) => r.status === 'ok');
  const rows = ok.map((r) => [
    r.name, r.scenario, r.peak?.streamsPerSec ?? Number.NaN, r.peak?.messagesPerSec ?? Number.NaN,
    r.peak !== undefined ? `${Math.round(r.peak.serverCpuCores * 100)}%` : '', r.peak?.streamsPerCpuSec ?? Number.NaN,
    r.halfPeak?.achievedRps ?? Number.NaN, r.halfPeak?.latency.p50Ms ?? Number.NaN, r.halfPeak?.latency.p99Ms ?? Number.NaN,
    r.serial?.latency.p50Ms ?? Number.NaN, r.serial?.latency.p99Ms ?? Number.NaN,
    r.closedHalfPeak?.streamsPerSec ?? Number.NaN, r.closedHalfPeak?.streamsInFlight ?? Number.NaN, r.closedHalfPeak?.latency.p50Ms ?? Number.NaN, r.closedHalfPeak?.latency.p99Ms ?? Number.NaN,
    r.peak?.probe.latency?.p50Ms ?? Number.NaN, r.peak?.probe.latency?.p99Ms ?? Number.NaN,
    r.memory?.peakRssMiB ?? Number.NaN, r.memory?.rssMiB ?? Number.NaN,
    r.ratioToCeiling !== undefined ? `${(r.ratioToCeiling * 100).toFixed(0)}%` : '',
    r.ratioToCeilingPerCpu !== undefined ? `${(r.ratioToCeilingPerCpu * 100).toFixed(0)}%` : '',
  ]);
  const lines = [table(['server', 'scenario', 'peak streams/s', 'msgs/s', 'srv CPU', '/CPU-s', '½-peak rate/s', 'p50 ms', 'p99 ms', 'serial p50', 'serial p99', 'closed rate/s', 'in flight', 'closed p50', 'closed p99', 'probe p50', 'probe p99', 'RSS peak MiB', 'RSS MiB', 'of ceiling', 'per CPU-s'], rows)];
  for (const r of ok) {
    const p = r.peak?.probe;
    if (p !== undefined && (p.failed > 0 || p.ok === 0)) {
      lines.push(`  ${r.name} [${r.scenario}]: PROBE FAILED under load: ${p.failed} of ${p.started} Envoy-style streams: ${p.errors.join('; ')}`);
    }
    const h = r.halfPeak;
    if (h !== undefined && h.achievedRps < 0.9 * h.targetRps) {
      lines.push(`  ${r.name} [${r.scenario}]: only ${fmt(h.achievedRps)} of ${fmt(h.targetRps)} req/s reached at half its peak: its latency figures are queueing`);
    }
  }
  for (const r of results.filter((x) => x.status !== 'ok')) {
    lines.push(`  ${r.name} [${r.scenario}]: ${r.status.toUpperCase()}: ${r.reason ?? ''}`);
  }
  return lines.join('\n');
}

/**
 * The protocol benches in their own process on core 1 (the core h2load used, idle now), with the
 * servers' node flags; in this process when taskset or a second core is missing.
 */
function runProtocolBenchesPinned(): ProtocolModuleResult[] {
  const child = fileURLToPath(new URL(`./protocol/child${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url));
  const pin = hasCommand('taskset', ['-c', '1', 'true']) && cpus().length >= 2;
  const node = [process.execPath, ...process.execArgv, ...NODE_FLAGS, child];
  const command = pin ? ['taskset', '-c', '1', ...node] : node;
  console.log(`  (${pin ? 'own process pinned to core 1' : 'own process, not pinned: taskset or a second core unavailable'})`);
  const run = spawnSync(command[0]!, command.slice(1), { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024, stdio: ['ignore', 'pipe', 'inherit'] });
  const lastLine = run.stdout.trim().split('\n').at(-1) ?? '';
  try {
    if (run.status !== 0) throw new Error(`exit status ${String(run.status)}${run.signal === null ? '' : `, signal ${run.signal}`}`);
    const parsed: unknown = JSON.parse(lastLine);
    if (!Array.isArray(parsed)) throw new Error('not a JSON array');
    return parsed.map((m: { module: string; status: ProtocolModuleResult['status']; error?: string; rows: unknown }) =>
      (m.status === 'ok' ? toModuleResult(m.module, m.rows) : { module: m.module, status: m.status, ...(m.error === undefined ? {} : { error: m.error }), rows: [] }));
  } catch (error) {
    return [{ module: 'protocol', status: 'failed', error: `bench child: ${error instanceof Error ? error.message : String(error)}`, rows: [] }];
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string', default: '5' },
      'warm-up': { type: 'string', default: '1' },
      only: { type: 'string' },
      'gatehouse-config': { type: 'string', default: 'bench/gatehouse-bench.yaml' },
      /** e.g. "node --cpu-prof dist/src/main.js" (split on spaces) */
      'gatehouse-command': { type: 'string', default: GATEHOUSE_COMMAND },
      'no-protocol': { type: 'boolean', default: false },
      'no-extproc': { type: 'boolean', default: false },
      'no-stores': { type: 'boolean', default: false },
      'no-signed': { type: 'boolean', default: false },
    },
  });
  const durationSec = Number(values.duration);
  const warmUpSec = Number(values['warm-up']);
  if (!(durationSec > 0 && durationSec <= 60) || !(warmUpSec >= 0 && warmUpSec <= 30)) throw new Error('--duration must be in (0, 60] and --warm-up in [0, 30] seconds');

  const facts = machine();
  console.log(`gatehouse bench — ${String(facts['date'])}, node ${process.version}, ${String(facts['cpuModel'])} ×${String(facts['cpus'])}`);
  const load = loadavg()[0] ?? 0;
  if (load > 0.5) console.log(`warning: load average ${load.toFixed(2)} before the run: other processes share these cores, figures will be low and noisy`);
  let failed = false;
  let extproc: ExtprocResult[] = [];
  let extprocNote: string | undefined;

  if (!values['no-extproc']) {
    console.log('\n== ext_proc Process streams (h2load) ==');
    if (!hasCommand('h2load')) {
      extprocNote = 'h2load not found (Debian: apt-get install nghttp2-client): ext_proc benchmarks skipped';
      console.log(extprocNote);
    } else {
      const pin = hasCommand('taskset', ['-c', '0', 'true']) && cpus().length >= 2;
      if (!pin) console.log('warning: taskset or a second core unavailable: server and h2load share the CPUs');
      const workDir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-'));
      let e2ee: Awaited<ReturnType<typeof startE2eeRouteOnRedis>>;
      try {
        e2ee = await startE2eeRouteOnRedis(workDir, pin ? LOAD_CPU : undefined);
        if (e2ee === undefined) console.log('  redis-server not installed (Debian: redis-server): the e2ee route is skipped');
      } catch (error) {
        console.log(`  the e2ee route could not be prepared, skipped: ${error instanceof Error ? error.message : String(error)}`);
        failed = true;
      }
      try {
        for (const t of await targets(values['gatehouse-config'], values['gatehouse-command'], e2ee?.route)) {
          if (values.only !== undefined && !t.name.includes(values.only) && t.scenario.name !== values.only) continue;
          process.stdout.write(`  ${t.name} [${t.scenario.name}] … `);
          const r = await measure(t, { durationSec, warmUpSec, pin }, workDir);
          console.log(r.status === 'ok' ? `${fmt(r.peak?.streamsPerSec ?? Number.NaN)} streams/s` : `${r.status}: ${(r.reason ?? '').split('\n')[0] ?? ''}`);
          if (isFailure(r)) failed = true;
          extproc.push(r);
        }
        // The machine may be shared: measure the ceiling again after the targets, so that a drift in
        // what the cores give shows (and the ratios use the mean of both ceiling runs).
        const first = extproc.find((r) => r.role === 'ceiling' && r.status === 'ok');
        if (first !== undefined && extproc.some((r) => r.role === 'target' && r.status === 'ok')) {
          const again = (await targets(values['gatehouse-config'], values['gatehouse-command'])).find((t) => t.role === 'ceiling' && t.scenario.name === first.scenario);
          if (again !== undefined) {
            process.stdout.write(`  ${again.name} [${again.scenario.name}], again … `);
            const r = await measure({ ...again, name: `${again.name}, again` }, { durationSec, warmUpSec, pin }, workDir);
            console.log(r.status === 'ok' ? `${fmt(r.peak?.streamsPerSec ?? Number.NaN)} streams/s` : `${r.status}: ${(r.reason ?? '').split('\n')[0] ?? ''}`);
            if (isFailure(r)) failed = true;
            extproc.push(r);
          }
        }
      } finally {
        await e2ee?.stop();
        rmSync(workDir, { recursive: true, force: true });
      }
      extproc = extproc.map((r) => {
        // a repeated ceiling (after the targets) counts too: the ratio is to their mean
        const ceilings = extproc.filter((c) => c.role === 'ceiling' && c.scenario === r.scenario).flatMap((c) => (c.peak !== undefined ? [c.peak] : []));
        if (r.peak === undefined || ceilings.length === 0) return r;
        const mean = (f: (p: NonNullable<ExtprocResult['peak']>) => number): number => ceilings.reduce((a, p) => a + f(p), 0) / ceilings.length;
        return {
          ...r,
          ratioToCeiling: r.peak.streamsPerSec / mean((p) => p.streamsPerSec),
          ratioToCeilingPerCpu: r.peak.streamsPerCpuSec / mean((p) => p.streamsPerCpuSec),
        };
      });
      console.log(`\n${extprocTable(extproc)}`);
      console.log(`\n  Peak: h2load -c 32 -m 16, ${durationSec} s after ${warmUpSec} s warm-up. p50/p99: start to end of the whole stream at half that peak`);
      console.log('  (evenly spaced arrivals from an h2load timing script); serial: one stream in flight. Server on core 0, h2load on core 1.');
      console.log('  closed: one connection keeping k streams in flight, the smallest k that reaches half the peak (no arrival bursts, no queueing');
      console.log('  beyond those k); its rate, k and p50/p99.');
      console.log(`  probe: ${PROBE_RATE} Envoy-style streams/s (one message, wait, next, half-close) on their own connection during the peak run,`);
      console.log('  every answer checked; p50/p99 of those streams while the server is saturated.');
      console.log('  srv CPU: the server\'s share of its core during the peak run; /CPU-s: peak streams/s per CPU-second (less skewed by other');
      console.log('  load on the core); "of ceiling": vs the mean of the ceiling runs of the same scenario, by peak and per CPU-second.');
      console.log('  h2load sends all of a stream\'s messages at once and half-closes; Envoy waits for each answer (see "method" in the JSON).');
    }
  }

  let signedRoutes: SignedRoutesResult | undefined;
  if (!values['no-signed']) {
    console.log('\n== routes with signed requests (distinct streams: bench/unique-load.ts) ==');
    const pin = hasCommand('taskset', ['-c', '0', 'true']) && cpus().length >= 2;
    const workDir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-signed-'));
    try {
      signedRoutes = await runSignedRoutesBench({
        durationSec, pin, workDir, serverCpu: SERVER_CPU, loadCpu: LOAD_CPU,
        gatehouseCommand: values['gatehouse-command'].split(' ').filter((w) => w !== ''),
      });
    } catch (error) {
      signedRoutes = { status: 'failed', reason: error instanceof Error ? error.message : String(error), rows: [] };
    } finally {
      rmSync(workDir, { recursive: true, force: true });
    }
    console.log(`\n${signedRoutesTable(signedRoutes)}`);
    if (signedRoutes.status === 'failed') failed = true;
  }

  let protocol: ProtocolModuleResult[] = [];
  if (!values['no-protocol']) {
    console.log('\n== protocol layer vs its node:crypto primitives ==');
    protocol = runProtocolBenchesPinned();
    console.log(protocolTable(protocol));
    if (protocol.some((m) => m.status === 'failed')) failed = true;
  }

  let stores: StoreBenchResult | undefined;
  if (!values['no-stores']) {
    console.log('\n== stores: nonce claims (memory, Redis) ==');
    stores = runStoreBenchesPinned(NODE_FLAGS);
    console.log(storesTable(stores));
    if (stores.status === 'failed') failed = true;
  }

  const resultsDir = join(repoRoot, 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  const out = join(resultsDir, 'latest.json');
  writeFileSync(out, `${JSON.stringify({ machine: facts, method: METHOD_NOTES, durationSec, warmUpSec, extproc, extprocNote, signedRoutes, protocol, stores }, null, 2)}\n`);
  console.log(`\nwritten: ${out}`);
  return failed ? 1 : 0;
}

main().then((code) => { process.exitCode = code; }, (err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
