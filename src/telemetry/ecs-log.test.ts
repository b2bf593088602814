// telemetry.logFormat: ecs writes Elastic Common Schema field names (the logs go to Elasticsearch);
// the default format is unchanged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTelemetry } from './index.js';
import { ECS_VERSION, REDACTED } from './logger.js';
import type { AccessLogEntry } from './types.js';

const ENTRY: AccessLogEntry = {
  protocol: 'ext_proc',
  requestId: 'req-1',
  traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
  routeId: 'transfers',
  pathTemplate: '/api/v1/transfers/{id}',
  method: 'POST',
  authority: 'api.example.com',
  path: '/api/v1/transfers/42?token=secret&x=1',
  status: 401,
  decision: 'deny',
  reason: 'signature_invalid',
  detail: 'bad signature',
  processingMs: 1.5,
  phases: { requestHeaders: 1.5 },
  sourceAddress: '203.0.113.7',
};

function capture(logFormat: 'default' | 'ecs') {
  const lines: Record<string, unknown>[] = [];
  const telemetry = createTelemetry({ version: '0.0.0', logLevel: 'info', logFormat, defaultMetrics: false, logDestination: { write: (line: string) => { lines.push(JSON.parse(line) as Record<string, unknown>); } } });
  return { telemetry, lines };
}

test('the ecs access line: @timestamp, message, log.level, service.name, url.*, http.*, trace.id, event.* and gatehouse.*', async () => {
  const { telemetry, lines } = capture('ecs');
  telemetry.accessLog(ENTRY);
  await telemetry.shutdown();
  const line = lines.find((l) => l['message'] === 'request')!;
  assert.match(String(line['@timestamp']), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.equal(line['log.level'], 'info');
  assert.equal(line['service.name'], 'gatehouse');
  assert.equal(line['ecs.version'], ECS_VERSION);
  assert.equal(line['url.path'], '/api/v1/transfers/42');
  assert.equal(line['url.query'], `token=${REDACTED}&x=${REDACTED}`, 'query values stay redacted');
  assert.equal(line['url.domain'], 'api.example.com');
  assert.equal(line['http.request.method'], 'POST');
  assert.equal(line['http.response.status_code'], 401);
  assert.equal(line['http.request.id'], 'req-1');
  assert.equal(line['trace.id'], ENTRY.traceId);
  assert.equal(line['source.address'], '203.0.113.7');
  assert.equal(line['event.outcome'], 'failure');
  assert.equal(line['event.duration'], 1_500_000, 'nanoseconds, as ECS defines it');
  assert.equal(line['gatehouse.reason'], 'signature_invalid');
  assert.equal(line['gatehouse.route_id'], 'transfers');
  for (const key of ['time', 'msg', 'level', 'service', 'status', 'path', 'trace_id', 'request_id']) assert.ok(!(key in line), `no default-format ${key}`);
});

test('ordinary ecs lines: error.* from err, trace.id and http.request.id from their default names, secrets still censored', async () => {
  const { telemetry, lines } = capture('ecs');
  telemetry.logger.error({ err: new Error('redis down'), request_id: 'r-2', trace_id: 't-2', headers: { authorization: 'Bearer x' } }, 'store failed');
  await telemetry.shutdown();
  const line = lines.find((l) => l['message'] === 'store failed')!;
  assert.equal(line['log.level'], 'error');
  assert.equal(line['error.message'], 'redis down');
  assert.equal(line['error.type'], 'Error');
  assert.match(String(line['error.stack_trace']), /redis down\n\s+at /);
  assert.equal(line['http.request.id'], 'r-2');
  assert.equal(line['trace.id'], 't-2');
  assert.deepEqual(line['headers'], { authorization: REDACTED });
});

test('the default format is unchanged', async () => {
  const { telemetry, lines } = capture('default');
  telemetry.accessLog(ENTRY);
  await telemetry.shutdown();
  const line = lines.find((l) => l['msg'] === 'request')!;
  for (const key of ['time', 'level', 'service', 'status', 'path', 'trace_id', 'request_id', 'route_id']) assert.ok(key in line, key);
  assert.ok(!('@timestamp' in line));
});
