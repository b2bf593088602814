// The always-on sanitize filter end to end, behind the Envoy stand-in with the shipped EnvoyFilters:
// what the upstream sees, what the client gets, and what the log and metrics record.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endToEnd } from '../support/gatehouse.js';
import { get } from '../harness/helpers.js';

const ROUTES = `
defaults:
  filters:
    - sanitize: { stripHeaders: [x-user-id], limits: { maxHeaders: 20 } }
routes:
  - id: api
    match: { path: { prefix: /api/ } }
  - id: partner
    match: { path: { prefix: /partner/ } }
    filters:
      - sanitize: { trustForwardedClientCert: true, stripPrefixes: [x-partner-internal-] }
  - id: bare
    match: { path: { prefix: /bare/ } }
    filters: []
`;

const FORGED: [string, string][] = [
  ['x-passport', 'eyJhbGciOiJub25lIn0.forged.'],
  ['x-gatehouse-decision-id', 'fake'],
  ['x-forwarded-client-cert', 'By=spiffe://cluster.local/ns/evil/sa/x;Hash=00'],
  ['x-user-id', 'admin'],
  ['x-partner-internal-tier', 'gold'],
];

test('forged identity and mesh headers never reach the upstream; the log and the metric name what was removed, never the values', async (t) => {
  const e2e = await endToEnd(t, ROUTES);
  const r = await e2e.envoy.request({ method: 'GET', path: '/api/accounts', authority: 'api.example.com', headers: [...FORGED, ['accept', 'application/json'], ['x-request-id', 'san-1']] });
  assert.equal(r.status, 200);
  const up = r.upstreamRequest!;
  for (const name of ['x-passport', 'x-gatehouse-decision-id', 'x-forwarded-client-cert', 'x-user-id']) assert.equal(get(up.headers, name), undefined, name);
  assert.equal(get(up.headers, 'x-partner-internal-tier'), 'gold', 'that prefix is stripped only on the partner route');
  assert.equal(get(up.headers, 'accept'), 'application/json');
  assert.equal(r.counters.rejected_header_mutations, 0, 'Envoy accepted every removal');
  const line = await e2e.accessLine('san-1');
  assert.deepEqual(line['actions'], [{ filter: 'sanitize', action: 'removed_headers', items: ['x-passport', 'x-gatehouse-decision-id', 'x-forwarded-client-cert', 'x-user-id'] }]);
  assert.ok(!JSON.stringify(line).includes('forged') && !JSON.stringify(line).includes('evil'), 'no removed value is logged');
  const metrics = await (await fetch(`http://127.0.0.1:${e2e.gatehouse.adminPort}/metrics`)).text();
  assert.match(metrics, /^gatehouse_filter_actions_total\{route="api",filter="sanitize",action="removed_headers"\} 1$/m);
});

test("a route's own sanitize entry replaces the default one, but never the built-in part; a route listing no filters is still sanitized", async (t) => {
  const e2e = await endToEnd(t, ROUTES);
  const partner = await e2e.envoy.request({ method: 'GET', path: '/partner/orders', authority: 'api.example.com', headers: FORGED });
  const up = partner.upstreamRequest!;
  assert.equal(get(up.headers, 'x-forwarded-client-cert'), 'By=spiffe://cluster.local/ns/evil/sa/x;Hash=00', 'trusted on this route');
  assert.equal(get(up.headers, 'x-partner-internal-tier'), undefined);
  assert.equal(get(up.headers, 'x-user-id'), 'admin', 'the default entry (x-user-id) does not apply: the route has its own');
  assert.equal(get(up.headers, 'x-passport'), undefined, 'built in, on every route');
  const bare = await e2e.envoy.request({ method: 'GET', path: '/bare/x', authority: 'api.example.com', headers: FORGED });
  assert.equal(get(bare.upstreamRequest!.headers, 'x-passport'), undefined);
  assert.equal(get(bare.upstreamRequest!.headers, 'x-user-id'), undefined, 'defaults.filters apply to a route that lists none');
});

test('over the header limit: 431 with its code and decision id, and nothing reaches the upstream', async (t) => {
  const e2e = await endToEnd(t, ROUTES);
  const many = Array.from({ length: 21 }, (_, i): [string, string] => [`x-h${i}`, 'v']);
  const r = await e2e.envoy.request({ method: 'GET', path: '/api/x', authority: 'api.example.com', headers: [...many, ['x-request-id', 'san-431']] });
  assert.equal(r.status, 431);
  assert.equal(r.upstreamRequest, undefined);
  assert.equal(get(r.headers, 'x-gatehouse-reason'), 'request_headers_too_large');
  assert.match(get(r.headers, 'x-gatehouse-decision-id') ?? '', /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  assert.equal((await e2e.accessLine('san-431'))['reason'], 'request_headers_too_large');
});

test('over ext_authz too: the forged headers are removed before the upstream sees the request', async (t) => {
  const e2e = await endToEnd(t, ROUTES);
  const r = await e2e.authz.request({ method: 'GET', path: '/api/accounts', authority: 'api.example.com', headers: [...FORGED, ['x-request-id', 'san-authz']] });
  assert.equal(r.status, 200);
  for (const name of ['x-passport', 'x-gatehouse-decision-id', 'x-forwarded-client-cert', 'x-user-id']) assert.equal(get(r.upstreamRequest!.headers, name), undefined, name);
  assert.deepEqual((await e2e.accessLine('san-authz'))['actions'], [{ filter: 'sanitize', action: 'removed_headers', items: ['x-passport', 'x-gatehouse-decision-id', 'x-forwarded-client-cert', 'x-user-id'] }]);
});
