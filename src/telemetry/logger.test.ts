import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Level } from 'pino';
import { createAccessLog, createLogger, REDACTED, redactQuery } from './logger.js';
import type { AccessLogEntry } from './types.js';

function capture(level: Level | 'silent' = 'info') {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({
    level,
    service: 'gatehouse-test',
    destination: { write: (s: string) => { lines.push(JSON.parse(s) as Record<string, unknown>); } },
  });
  return { logger, lines };
}

const allow: AccessLogEntry = {
  protocol: 'ext_proc',
  requestId: 'req-1',
  traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
  routeId: 'orders',
  pathTemplate: '/orders/{id}',
  method: 'GET',
  authority: 'api.example.com',
  path: '/orders/42?token=s3cret&page=2&flag',
  status: 200,
  decision: 'allow',
  detail: 'must not be logged for allows',
  processingMs: 0.4321234,
  phases: { requestHeaders: 0.3, responseHeaders: 0.1321234 },
  sourceAddress: '10.0.0.7:51234',
  principal: 'spiffe://cluster.local/ns/a/sa/b',
};

test('access log: one info line with msg "request" and the documented fields', () => {
  const { logger, lines } = capture();
  createAccessLog(logger)(allow);
  assert.equal(lines.length, 1);
  const line = lines[0]!;
  assert.equal(line.msg, 'request');
  assert.equal(line.level, 'info');
  assert.equal(line.service, 'gatehouse-test');
  assert.equal(typeof line.time, 'string');
  assert.ok(!Number.isNaN(Date.parse(line.time as string)));
  assert.equal(line.protocol, 'ext_proc');
  assert.equal(line.route_id, 'orders');
  assert.equal(line.path_template, '/orders/{id}');
  assert.equal(line.method, 'GET');
  assert.equal(line.authority, 'api.example.com');
  assert.equal(line.path, `/orders/42?token=${REDACTED}&page=${REDACTED}&flag`);
  assert.equal(line.status, 200);
  assert.equal(line.decision, 'allow');
  assert.equal(line.request_id, 'req-1');
  assert.equal(line.decision_id, 'req-1');
  assert.equal(line.trace_id, allow.traceId);
  assert.equal(line.source, '10.0.0.7:51234');
  assert.equal(line.principal, 'spiffe://cluster.local/ns/a/sa/b');
  assert.equal(line.processing_ms, 0.432);
  assert.deepEqual(line.phases_ms, { requestHeaders: 0.3, responseHeaders: 0.132 });
  assert.equal('detail' in line, false, 'detail is only written on denials');
  assert.equal('reason' in line, false, 'absent fields are omitted');
  assert.doesNotMatch(JSON.stringify(line), /s3cret/);
});

test('access log: denials carry reason and detail; absent optional fields are omitted', () => {
  const { logger, lines } = capture();
  createAccessLog(logger)({
    protocol: 'ext_authz',
    requestId: 'req-2',
    routeId: 'unmatched',
    pathTemplate: 'unmatched',
    method: 'POST',
    authority: 'x',
    path: '/nope',
    status: 404,
    decision: 'deny',
    reason: 'route_not_found',
    detail: 'no route for POST /nope',
    processingMs: 0.01,
    phases: {},
  });
  const line = lines[0]!;
  assert.equal(line.decision, 'deny');
  assert.equal(line.reason, 'route_not_found');
  assert.equal(line.detail, 'no route for POST /nope');
  assert.equal(line.path, '/nope');
  for (const absent of ['trace_id', 'source', 'principal', 'phases_ms']) assert.equal(absent in line, false, absent);
});

test('access log: nothing is written when info is disabled', () => {
  const { logger, lines } = capture('warn');
  createAccessLog(logger)(allow);
  assert.equal(lines.length, 0);
});

test('logger: credential headers are censored wherever headers are logged', () => {
  const { logger, lines } = capture();
  const secret = 'Bearer eyJhbGciOi.secret.sig';
  logger.warn(
    {
      headers: { authorization: secret, cookie: 'sid=secret', 'x-passport': 'secret', signature: 'sig1=:secret:', accept: 'text/html' },
      requestHeaders: { 'proxy-authorization': secret, 'x-api-key': 'secret' },
      responseHeaders: { 'set-cookie': 'sid=secret' },
      authorization: secret,
    },
    'bad request',
  );
  const line = lines[0]!;
  assert.doesNotMatch(JSON.stringify(line), /secret/);
  const headers = line.headers as Record<string, string>;
  assert.equal(headers.authorization, REDACTED);
  assert.equal(headers.cookie, REDACTED);
  assert.equal(headers['x-passport'], REDACTED);
  assert.equal(headers.signature, REDACTED);
  assert.equal(headers.accept, 'text/html', 'other headers stay');
  assert.equal(line.authorization, REDACTED);
});

test('redactQuery: values go, names stay', () => {
  const cases: [string, string][] = [
    ['/a', '/a'],
    ['/a?', '/a?'],
    ['/a?x=1', `/a?x=${REDACTED}`],
    ['/a?x=1&y=2', `/a?x=${REDACTED}&y=${REDACTED}`],
    ['/a?flag&x=', '/a?flag&x='],
    ['/a?x=1&', `/a?x=${REDACTED}&`],
    ['/a?&&x=1', `/a?&&x=${REDACTED}`],
    ['/a?x==y', `/a?x=${REDACTED}`],
    ['/a?code=abc#frag', `/a?code=${REDACTED}`],
  ];
  for (const [input, expected] of cases) assert.equal(redactQuery(input), expected, input);
});

test('redactQuery: long paths are cut, and the work stays linear', () => {
  const long = `/a?${'p&'.repeat(50_000)}x=secret`;
  const t = performance.now();
  const out = redactQuery(long);
  assert.ok(performance.now() - t < 50);
  assert.ok(out.length < 2100);
  assert.ok(out.endsWith('…'));
  assert.equal(redactQuery(`/b?t=${'s'.repeat(5000)}`), `/b?t=${REDACTED}`);
});

test('the cached ISO timestamp is the current millisecond, in pino\'s time format', async () => {
  const { isoTimeCached } = await import('./logger.js');
  const before = Date.now();
  const first = isoTimeCached();
  const match = /^,"time":"(.+)"$/.exec(first);
  assert.ok(match);
  const at = Date.parse(match[1]!);
  assert.ok(at >= before && at <= Date.now());
  await new Promise((resolve) => setTimeout(resolve, 5));
  const later = /^,"time":"(.+)"$/.exec(isoTimeCached());
  assert.ok(later);
  assert.ok(Date.parse(later[1]!) > at, 'advances with the clock');
});
