import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMetrics, methodLabel, statusLabel, PHASE_BUCKETS } from './metrics.js';
import type { AccessLogEntry } from './types.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { findPackageRoot } from '../config/load.js';
import { METRIC } from './metric-names.js';
import { promtoolCheck, skipWithoutPromtool } from '../../test/support/promtool.js';

const entry = (over: Partial<AccessLogEntry> = {}): AccessLogEntry => ({
  protocol: 'ext_proc',
  requestId: 'r',
  routeId: 'orders',
  pathTemplate: '/orders/{id}',
  method: 'GET',
  authority: 'api',
  path: '/orders/1',
  status: 200,
  decision: 'allow',
  processingMs: 0.3,
  phases: {},
  ...over,
});

/** the sample value of the line `name{labels}`, labels in the order rendered */
function sample(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

test('requests, denials and processing time after requestCompleted', async () => {
  const m = createMetrics({ version: '1.2.3', defaultMetrics: false });
  m.requestCompleted(entry());
  m.requestCompleted(entry({ processingMs: 2 }));
  m.requestCompleted(entry({ decision: 'deny', reason: 'route_not_found', status: 404, method: 'BREW' }));
  const { status: _status, ...noStatus } = entry({ protocol: 'ext_authz', decision: 'cancelled' });
  m.requestCompleted(noStatus);
  const text = await m.render();
  const req = (method: string, decision: string, status: string, protocol = 'ext_proc') =>
    `gatehouse_requests_total{protocol="${protocol}",route="orders",path_template="/orders/{id}",method="${method}",decision="${decision}",status="${status}"}`;
  assert.equal(sample(text, req('GET', 'allow', '200')), 2);
  assert.equal(sample(text, req('OTHER', 'deny', '404')), 1);
  assert.equal(sample(text, req('GET', 'cancelled', '0', 'ext_authz')), 1);
  assert.equal(sample(text, 'gatehouse_denials_total{route="orders",reason="route_not_found"}'), 1);
  const proc = (suffix: string, le = '') => `gatehouse_request_processing_seconds_${suffix}{protocol="ext_proc",route="orders"${le}}`;
  assert.equal(sample(text, proc('count')), 3);
  assert.ok(Math.abs(sample(text, proc('sum'))! - 0.0026) < 1e-12);
  assert.equal(sample(text, proc('bucket', ',le="0.00025"')), 0);
  assert.equal(sample(text, proc('bucket', ',le="0.0005"')), 2, '0.3 ms twice');
  assert.equal(sample(text, proc('bucket', ',le="0.001"')), 2);
  assert.equal(sample(text, proc('bucket', ',le="0.0025"')), 3, '2 ms');
  assert.equal(sample(text, proc('bucket', ',le="+Inf"')), 3);
  assert.equal(sample(text, 'gatehouse_build_info{version="1.2.3",node="' + process.versions.node + '"}'), 1);
});

test('phase histogram: buckets are cumulative, bounds inclusive', async () => {
  const m = createMetrics({ version: 'x', defaultMetrics: false });
  m.phaseDuration('orders', 'requestHeaders', 0.00005);
  m.phaseDuration('orders', 'requestHeaders', 0.00006);
  m.phaseDuration('orders', 'requestHeaders', 10);
  m.phaseDuration('orders', 'responseBody', 0.001);
  const text = await m.render();
  const b = (le: string, phase = 'requestHeaders') => sample(text, `gatehouse_phase_duration_seconds_bucket{route="orders",phase="${phase}",le="${le}"}`);
  assert.equal(b('0.00005'), 1);
  assert.equal(b('0.0001'), 2);
  assert.equal(b('0.25'), 2);
  assert.equal(b('+Inf'), 3);
  assert.equal(b('0.0005', 'responseBody'), 0);
  assert.equal(b('0.001', 'responseBody'), 1);
  assert.equal(sample(text, 'gatehouse_phase_duration_seconds_count{route="orders",phase="requestHeaders"}'), 3);
  assert.equal(PHASE_BUCKETS[0], 0.00005);
  assert.equal(PHASE_BUCKETS.at(-1), 0.25);
});

test('streams in flight, errors and config reloads', async () => {
  const m = createMetrics({ version: 'x', defaultMetrics: false });
  const before = await m.render();
  assert.equal(sample(before, 'gatehouse_streams_in_flight{protocol="ext_proc"}'), 0, 'pre-created');
  assert.equal(sample(before, 'gatehouse_config_reloads_total{result="failure"}'), 0, 'pre-created');
  m.streamOpened('ext_proc');
  m.streamOpened('ext_proc');
  m.streamOpened('ext_authz');
  m.streamClosed('ext_proc');
  m.error('filter_error', 'orders');
  m.error('filter_error', 'orders');
  m.error('malformed_message', 'unmatched');
  m.configReload('success');
  m.configReload('failure');
  m.configReload('success');
  m.userApiCall('ok', 0.004);
  m.userApiCall('breaker_open', undefined);
  const text = await m.render();
  assert.equal(sample(text, 'gatehouse_streams_in_flight{protocol="ext_proc"}'), 1);
  assert.equal(sample(text, 'gatehouse_streams_in_flight{protocol="ext_authz"}'), 1);
  assert.equal(sample(text, 'gatehouse_errors_total{kind="filter_error",route="orders"}'), 2);
  assert.equal(sample(text, 'gatehouse_errors_total{kind="malformed_message",route="unmatched"}'), 1);
  assert.equal(sample(text, 'gatehouse_config_reloads_total{result="success"}'), 2);
  assert.equal(sample(text, 'gatehouse_config_reloads_total{result="failure"}'), 1);
});

test('registries are independent', async () => {
  const a = createMetrics({ version: 'x', defaultMetrics: false });
  const b = createMetrics({ version: 'x', defaultMetrics: false });
  a.error('stream_error', 'r');
  assert.equal(sample(await a.render(), 'gatehouse_errors_total{kind="stream_error",route="r"}'), 1);
  assert.equal(sample(await b.render(), 'gatehouse_errors_total{kind="stream_error",route="r"}'), undefined);
});

test('series beyond the cap fold into one overflow series', async () => {
  const m = createMetrics({ version: 'x', defaultMetrics: false, maxSeriesPerFamily: 2 });
  for (const route of ['a', 'b', 'c', 'd', 'a']) m.error('filter_error', route);
  const text = await m.render();
  assert.equal(sample(text, 'gatehouse_errors_total{kind="filter_error",route="a"}'), 2);
  assert.equal(sample(text, 'gatehouse_errors_total{kind="filter_error",route="b"}'), 1);
  assert.equal(sample(text, 'gatehouse_errors_total{kind="filter_error",route="c"}'), undefined);
  assert.equal(sample(text, 'gatehouse_errors_total{kind="overflow",route="overflow"}'), 2);
});

test('label helpers bound client-chosen values', () => {
  assert.equal(methodLabel('GET'), 'GET');
  assert.equal(methodLabel('get'), 'OTHER');
  assert.equal(methodLabel('X'.repeat(100)), 'OTHER');
  assert.equal(statusLabel(204), '204');
  assert.equal(statusLabel(599), '599');
  assert.equal(statusLabel(undefined), '0');
  assert.equal(statusLabel(0), '0');
  assert.equal(statusLabel(600), '0');
  assert.equal(statusLabel(200.5), '0');
});

test('the exposition passes promtool check metrics (runtime metrics included)', { skip: skipWithoutPromtool() }, async () => {
  const m = createMetrics({ version: '0.1.0', defaultMetrics: true });
  m.streamOpened('ext_proc');
  m.requestCompleted(entry());
  m.requestCompleted(entry({ decision: 'deny', reason: 'body_too_large', status: 413 }));
  m.requestCompleted(entry({ routeId: 'we"ird\\route\nid', pathTemplate: '/a/{b}' }));
  m.phaseDuration('orders', 'requestBody', 0.0004);
  m.error('budget_exceeded', 'orders');
  m.configReload('success');
  const text = await m.render();
  assert.match(text, /^process_cpu_user_seconds_total /m, 'runtime metrics are there');
  assert.match(text, /^nodejs_eventloop_lag_seconds /m);
  const { code, out } = await promtoolCheck(text);
  assert.equal(out.trim(), '', `promtool complained:\n${out}`);
  assert.equal(code, 0);
  // and promtool does catch a broken exposition, so the check above can fail
  const broken = await promtoolCheck('# TYPE bad_total counter\nbad_total{x="1"} 1\nbad_total{x="1"} 2\n');
  assert.notEqual(broken.code, 0);
});

test('user API calls: every outcome counted from start, calls timed by outcome', async () => {
  const m = createMetrics({ version: '0.1.0', defaultMetrics: false });
  assert.match(await m.render(), /^gatehouse_user_api_calls_total\{outcome="timeout"\} 0$/m);
  m.userApiCall('timeout', 0.1);
  m.userApiCall('breaker_open', undefined);
  const text = await m.render();
  assert.match(text, /^gatehouse_user_api_calls_total\{outcome="timeout"\} 1$/m);
  assert.match(text, /^gatehouse_user_api_calls_total\{outcome="breaker_open"\} 1$/m);
  assert.match(text, /^gatehouse_user_api_call_duration_seconds_count\{outcome="timeout"\} 1$/m);
  assert.doesNotMatch(text, /gatehouse_user_api_call_duration_seconds_count\{outcome="breaker_open"\}/, 'a call not made is not timed');
});

test('docs/operations.md\'s metrics table lists exactly the families of METRIC', () => {
  const doc = readFileSync(join(findPackageRoot(), 'docs', 'operations.md'), 'utf8');
  const section = doc.slice(doc.indexOf('## Metrics'), doc.indexOf('Label values:'));
  const documented = [...section.matchAll(/^\| `(gatehouse_[a-z_]+)` \|/gm)].map((m) => m[1]!).sort();
  assert.deepEqual(documented, Object.values(METRIC).sort());
});
