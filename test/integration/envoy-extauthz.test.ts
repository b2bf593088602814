// gatehouse over ext_authz behind the Envoy stand-in, configured with the shipped EnvoyFilter: the
// same routes and chain as ext_proc, for routes that need no body rewrite or response processing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endToEnd } from '../support/gatehouse.js';
import { get } from '../harness/helpers.js';

const ROUTES = `
unmatched: deny
routes:
  - id: api
    match: { path: { prefix: /api/ } }
    filters:
      - headers:
          request: { remove: [x-passport], set: { x-gateway: gatehouse }, append: { x-trail: gatehouse, x-new: one } }
  - id: slow
    match: { path: { prefix: /slow/ } }
    budgetMs: 50
    filters:
      - test-slow: { delayMs: 1000 }
  - id: denied
    match: { path: { prefix: /denied/ } }
    filters:
      - test-deny: { phase: requestHeaders, reason: dependency_unavailable }
`;

test('ext_authz allow: the upstream sees the edits Envoy applies from OkHttpResponse (value, not raw_value; append to an absent header still lands)', async (t) => {
  const e2e = await endToEnd(t, ROUTES);
  const r = await e2e.authz.request({
    method: 'GET',
    path: '/api/accounts?x=1',
    authority: 'api.example.com',
    headers: [['x-passport', 'forged'], ['x-trail', 'client'], ['x-request-id', 'authz-1']],
  });
  assert.equal(r.outcome, 'ok');
  assert.equal(r.status, 200);
  const up = r.upstreamRequest!;
  assert.equal(get(up.headers, 'x-passport'), undefined);
  assert.equal(get(up.headers, 'x-gateway'), 'gatehouse');
  assert.equal(get(up.headers, 'x-new'), 'one', 'an append to a header the request lacks is sent as a set, or Envoy would drop it');
  assert.match(up.headers.filter(([n]) => n === 'x-trail').map(([, v]) => v).join(','), /client.*gatehouse/);
  assert.equal(r.dynamicMetadata['envoy.filters.http.ext_authz']?.['gatehouse'] !== undefined, true, 'the decision reaches Envoy dynamic metadata');
  const line = await e2e.accessLine('authz-1');
  assert.equal(line['protocol'], 'ext_authz');
  assert.equal(line['route_id'], 'api');
  assert.equal(line['decision'], 'allow');
});

test('ext_authz deny: the client gets the denial status, reason code and decision id; the upstream is never called', async (t) => {
  const e2e = await endToEnd(t, ROUTES);
  const r = await e2e.authz.request({ method: 'GET', path: '/denied/x', authority: 'api.example.com', headers: [['x-request-id', 'authz-2']] });
  assert.equal(r.outcome, 'denied');
  assert.equal(r.status, 503);
  assert.equal(get(r.headers, 'x-gatehouse-reason'), 'dependency_unavailable');
  // gatehouse's own decision id, never the client's x-request-id (which Envoy may preserve)
  const decisionId = get(r.headers, 'x-gatehouse-decision-id');
  assert.match(decisionId ?? '', /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  assert.deepEqual(JSON.parse(r.body.toString()), { error: 'dependency_unavailable', message: 'a service gatehouse depends on is unavailable', decision_id: decisionId });
  assert.equal(r.upstreamRequest, undefined);
  assert.equal(r.details, 'ext_authz_denied');
});

test('ext_authz unmatched: 404 route_not_found', async (t) => {
  const e2e = await endToEnd(t, ROUTES);
  const r = await e2e.authz.request({ method: 'GET', path: '/elsewhere', authority: 'api.example.com' });
  assert.equal(r.status, 404);
  assert.equal(get(r.headers, 'x-gatehouse-reason'), 'route_not_found');
});

test("ext_authz: a slow chain is answered within the route budget, before Envoy's 200 ms grpc-timeout turns it into an error", async (t) => {
  const e2e = await endToEnd(t, ROUTES);
  const r = await e2e.authz.request({ method: 'GET', path: '/slow/x', authority: 'api.example.com' });
  assert.equal(r.grpcTimeout !== undefined, true, 'Envoy put a deadline on the Check');
  assert.equal(r.outcome, 'denied', `outcome ${r.outcome} ${JSON.stringify(r.grpcError)}`);
  assert.equal(r.status, 504);
  assert.equal(get(r.headers, 'x-gatehouse-reason'), 'processing_timeout');
});

test("ext_authz on a route whose filters act on the upstream's answer: allowed as before, counted per request and logged once, naming the filters", async (t) => {
  const e2e = await endToEnd(
    t,
    `
routes:
  - id: edits-answer
    match: { path: { prefix: /edits/ } }
    filters:
      - headers: { response: { set: { x-content-type-options: nosniff } } }
  - id: request-only
    match: { path: { prefix: /api/ } }
    filters:
      - headers: { request: { set: { x-gateway: gatehouse } } }
`,
  );
  for (const id of ['unseen-1', 'unseen-2']) {
    const r = await e2e.authz.request({ method: 'GET', path: '/edits/x', authority: 'api.example.com', headers: [['x-request-id', id]] });
    assert.equal(r.status, 200);
    assert.equal(get(r.headers, 'x-content-type-options'), undefined, 'ext_authz never carries a response edit');
  }
  assert.equal((await e2e.authz.request({ method: 'GET', path: '/api/x', authority: 'api.example.com' })).status, 200);
  const metrics = await (await fetch(`http://127.0.0.1:${e2e.gatehouse.adminPort}/metrics`)).text();
  assert.match(metrics, /^gatehouse_errors_total\{[^}]*kind="response_phases_unseen"[^}]*\} 2$/m, metrics.split('\n').filter((l) => l.startsWith('gatehouse_errors_total')).join('\n'));
  assert.doesNotMatch(metrics, /kind="response_phases_unseen"[^}]*route="request-only"|route="request-only"[^}]*kind="response_phases_unseen"/);
  const warnings = e2e.logs.filter((l) => l['route_id'] === 'edits-answer' && typeof l['msg'] === 'string' && l['msg'].includes('serve it over ext_proc'));
  assert.equal(warnings.length, 1, 'one line per route, not per request');
  assert.deepEqual(warnings[0]!['filters'], ['headers']);
});
