// Hot-path cost of telemetry, CPU ns per call: `npx tsx src/telemetry/telemetry.bench.ts`.
// Compares gatehouse's metric families with prom-client's labelled calls for the same series, and
// times one access-log line into a discarding destination.
import { Counter, Histogram, Registry } from 'prom-client';
import { createAccessLog, createLogger } from './logger.js';
import { createMetrics, PHASE_BUCKETS, PROCESSING_BUCKETS } from './metrics.js';
import { createTracing } from './tracing.js';
import type { AccessLogEntry } from './types.js';

const entries: AccessLogEntry[] = ['orders', 'users', 'carts'].map((routeId) => ({
  protocol: 'ext_proc',
  requestId: '0f8fad5b-d9cb-469f-a165-70867728950e',
  traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
  routeId,
  pathTemplate: `/${routeId}/{id}`,
  method: 'GET',
  authority: 'api.example.com',
  path: `/${routeId}/42?page=2`,
  status: 200,
  decision: 'allow',
  processingMs: 0.43,
  phases: { requestHeaders: 0.3 },
  sourceAddress: '10.0.0.7:51234',
}));
const at = (i: number): AccessLogEntry => entries[i % entries.length]!;

const metrics = createMetrics({ version: 'bench', defaultMetrics: false });
const registry = new Registry();
const counter = new Counter({
  name: 'requests_total',
  help: 'h',
  labelNames: ['protocol', 'route', 'path_template', 'method', 'decision', 'status'],
  registers: [registry],
});
const histogram = new Histogram({ name: 'processing_seconds', help: 'h', labelNames: ['protocol', 'route'], buckets: [...PROCESSING_BUCKETS], registers: [registry] });
const phaseHistogram = new Histogram({ name: 'phase_seconds', help: 'h', labelNames: ['route', 'phase'], buckets: [...PHASE_BUCKETS], registers: [registry] });
const accessLog = createAccessLog(createLogger({ level: 'info', destination: { write: () => undefined } }));
const tracing = createTracing({ serviceName: 'bench' });

const cases: Record<string, (i: number) => void> = {
  'requestCompleted (gatehouse)': (i) => { metrics.requestCompleted(at(i)); },
  'requestCompleted (prom-client)': (i) => {
    const e = at(i);
    counter.inc({ protocol: e.protocol, route: e.routeId, path_template: e.pathTemplate, method: e.method, decision: e.decision, status: String(e.status) });
    histogram.observe({ protocol: e.protocol, route: e.routeId }, e.processingMs / 1000);
  },
  'phaseDuration (gatehouse)': (i) => { metrics.phaseDuration(at(i).routeId, 'requestHeaders', 0.0003); },
  'phaseDuration (prom-client)': (i) => { phaseHistogram.observe({ route: at(i).routeId, phase: 'requestHeaders' }, 0.0003); },
  'accessLog line': (i) => { accessLog(at(i)); },
  'startRequestSpan, no exporter': () => {
    tracing.startRequestSpan('ext_proc', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', undefined).end('allow', 200);
  },
};

const N = 200_000;
for (const [name, run] of Object.entries(cases)) {
  let best = Infinity;
  for (let round = 0; round < 5; round++) {
    const start = process.cpuUsage();
    for (let i = 0; i < N; i++) run(i);
    const used = process.cpuUsage(start);
    best = Math.min(best, ((used.user + used.system) * 1000) / N);
  }
  console.log(`${name.padEnd(34)} ${best.toFixed(0).padStart(6)} ns`);
}
