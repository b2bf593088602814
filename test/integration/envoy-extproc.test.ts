// gatehouse end to end behind the Envoy stand-in, configured with the shipped EnvoyFilter: what the
// client gets, what the upstream sees, and what Envoy would have done with gatehouse's answers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endToEnd } from '../support/gatehouse.js';
import { get, kinds } from '../harness/helpers.js';
import { ProcessingMode_BodySendMode } from '../../src/gen/envoy/extensions/filters/http/ext_proc/v3/processing_mode_pb.js';

const ROUTES = `
unmatched: deny
routes:
  - id: api
    match: { path: { prefix: /api/ }, methods: [GET, POST] }
    filters:
      - headers:
          request: { remove: [x-passport], set: { x-gateway: gatehouse }, append: { x-trail: gatehouse } }
          response: { set: { x-content-type-options: nosniff }, remove: [server-timing] }
  - id: upper
    match: { path: { prefix: /upper/ } }
    filters:
      - test-upper-body: { response: true }
  - id: slow
    match: { path: { prefix: /slow/ } }
    budgetMs: 50
    filters:
      - test-slow: { delayMs: 1000 }
  - id: deny-late
    match: { path: { prefix: /deny-late/ } }
    filters:
      - test-deny: { phase: responseHeaders, reason: dependency_unavailable }
  - id: small
    match: { path: { prefix: /small/ } }
    maxBodyBytes: 8
    filters:
      - test-upper-body: {}
`;

const json = (b: Buffer): Record<string, unknown> => JSON.parse(b.toString('utf8')) as Record<string, unknown>;

test('a headers route: upstream sees the request edits (forged x-passport gone), the client sees the response edits', async (t) => {
  const e2e = await endToEnd(t, ROUTES, () => ({ status: 200, headers: [['content-type', 'text/plain'], ['server-timing', 'db;dur=53']], body: 'ok' }));
  const r = await e2e.envoy.request({
    method: 'GET',
    path: '/api/accounts?page=2',
    authority: 'api.example.com',
    headers: [['x-passport', 'forged-by-client'], ['x-trail', 'client'], ['x-request-id', 'e2e-1']],
  });
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), 'ok');
  const up = r.upstreamRequest!;
  assert.equal(get(up.headers, 'x-passport'), undefined, 'the forged identity header never reaches the service');
  assert.equal(get(up.headers, 'x-gateway'), 'gatehouse');
  assert.deepEqual(up.headers.filter(([n]) => n === 'x-trail').map(([, v]) => v), ['client', 'gatehouse'], 'append adds a value');
  assert.equal(get(r.headers, 'x-content-type-options'), 'nosniff');
  assert.equal(get(r.headers, 'server-timing'), undefined);
  assert.deepEqual(kinds(r.sent), ['requestHeaders', 'responseHeaders'], 'no body messages for a headers-only route');
  assert.equal(r.counters.rejected_header_mutations, 0, 'Envoy accepted every mutation');
  assert.equal(r.dynamicMetadata['gatehouse']?.['route_id'], 'api');
  const line = await e2e.accessLine('e2e-1');
  assert.equal(line['route_id'], 'api');
  assert.equal(line['path_template'], '/api/*');
  assert.equal(line['status'], 200);
  assert.equal(line['decision'], 'allow');
});

test('an unmatched request gets 404 with the reason code and decision id, and never reaches the upstream', async (t) => {
  const e2e = await endToEnd(t, ROUTES);
  const r = await e2e.envoy.request({ method: 'GET', path: '/nothing-here', authority: 'api.example.com', headers: [['x-request-id', 'e2e-404']] });
  assert.equal(r.status, 404);
  assert.equal(r.upstreamRequest, undefined);
  assert.equal(get(r.headers, 'x-gatehouse-reason'), 'route_not_found');
  const decisionId = get(r.headers, 'x-gatehouse-decision-id');
  assert.match(decisionId ?? '', /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, "gatehouse's own id, not the client's x-request-id");
  assert.equal(get(r.headers, 'content-type'), 'application/json');
  assert.deepEqual(json(r.body), { error: 'route_not_found', message: 'no route matches this request', decision_id: decisionId });
  assert.equal((await e2e.accessLine(decisionId!))['request_id'], 'e2e-404', 'the log line has both ids');
  assert.equal(r.details, 'gatehouse_route_not_found');
  assert.equal(r.dynamicMetadata['gatehouse']?.['reason'], 'route_not_found');
  assert.equal((await e2e.accessLine('e2e-404'))['reason'], 'route_not_found');
});

test('a request without x-request-id still gets a decision id, which the log can find', async (t) => {
  const e2e = await endToEnd(t, ROUTES);
  const r = await e2e.envoy.request({ method: 'GET', path: '/nothing-here', authority: 'api.example.com' });
  const id = get(r.headers, 'x-gatehouse-decision-id');
  assert.match(id ?? '', /^[0-9a-f-]{36}$/);
  assert.equal((await e2e.accessLine(id!))['status'], 404);
});

test('a route whose filter needs the bodies gets them BUFFERED via mode_override, and Envoy accepts the rewritten bodies with content-length kept right', async (t) => {
  const e2e = await endToEnd(t, ROUTES);
  const r = await e2e.envoy.request({ method: 'POST', path: '/upper/x', authority: 'api.example.com', headers: [['content-type', 'text/plain'], ['content-length', '5']], body: 'hello' });
  assert.equal(r.status, 200, `details: ${r.details}`);
  assert.equal(r.upstreamRequest?.body.toString(), 'HELLO!');
  assert.equal(get(r.upstreamRequest!.headers, 'content-length'), '6');
  assert.deepEqual(kinds(r.sent), ['requestHeaders', 'requestBody', 'responseHeaders', 'responseBody']);
  const override = r.received[0]?.modeOverride;
  assert.equal(override?.requestBodyMode, ProcessingMode_BodySendMode.BUFFERED);
  assert.equal(override?.responseBodyMode, ProcessingMode_BodySendMode.BUFFERED);
  const echoed = r.body.toString();
  assert.ok(echoed.startsWith('[') && echoed.endsWith(']'), 'the response body was rewritten');
  assert.equal(get(r.headers, 'content-length'), String(r.body.length));
});

test('a body larger than the route allows is refused 413 body_too_large before the upstream', async (t) => {
  const e2e = await endToEnd(t, ROUTES);
  const r = await e2e.envoy.request({ method: 'POST', path: '/small/x', authority: 'api.example.com', headers: [['content-length', '20']], body: 'x'.repeat(20) });
  assert.equal(r.status, 413);
  assert.equal(get(r.headers, 'x-gatehouse-reason'), 'body_too_large');
  assert.equal(r.upstreamRequest, undefined);
});

test("a filter slower than the route budget: the client gets gatehouse's 504 processing_timeout, not Envoy's message timeout", async (t) => {
  const e2e = await endToEnd(t, ROUTES);
  const r = await e2e.envoy.request({ method: 'GET', path: '/slow/x', authority: 'api.example.com' });
  assert.equal(r.status, 504);
  assert.equal(r.details, 'gatehouse_processing_timeout');
  assert.equal(get(r.headers, 'x-gatehouse-reason'), 'processing_timeout');
  assert.equal(r.counters.message_timeouts, 0, "Envoy's own timer never fired");
  assert.equal(r.upstreamRequest, undefined);
});

test('a denial in the response phase replaces the upstream response', async (t) => {
  const e2e = await endToEnd(t, ROUTES, () => ({ status: 200, body: 'secret upstream body' }));
  const r = await e2e.envoy.request({ method: 'GET', path: '/deny-late/x', authority: 'api.example.com' });
  assert.equal(r.status, 503);
  assert.equal(get(r.headers, 'x-gatehouse-reason'), 'dependency_unavailable');
  assert.ok(!r.body.toString().includes('secret'), 'the upstream body is not leaked');
  assert.ok(r.upstreamRequest, 'the upstream was called before the response phase');
});

test('a client that goes away while gatehouse is working: the stream is cancelled and the log says so', async (t) => {
  // the filter takes far longer than the client waits, so the client is gone first however busy the machine
  const e2e = await endToEnd(t, ROUTES.replace("budgetMs: 50", "budgetMs: 15000").replace("delayMs: 1000", "delayMs: 10000"));
  const r = await e2e.envoy.request({ method: 'GET', path: '/slow/x', authority: 'api.example.com', headers: [['x-request-id', 'e2e-gone']] }, { abortAfterMs: 50 });
  assert.equal(r.clientAborted, true);
  const line = await e2e.accessLine('e2e-gone');
  assert.equal(line['decision'], 'cancelled');
});
