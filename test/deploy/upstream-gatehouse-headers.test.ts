// An upstream that sends gatehouse's own response headers (x-gatehouse-reason, x_gatehouse_decision_id,
// ...) to imitate a refusal (issue 21, item 11). Over ext_proc gatehouse removes them itself; over
// ext_authz it never sees the response, so the shipped wiring removes them in the route
// configuration (deploy/istio/envoyfilter-ext-authz.yaml, the chart's ext_authz EnvoyFilter), and a
// real denial still carries gatehouse's. Driven through the Envoy stand-ins, which apply the route's
// response_headers_to_remove where Envoy does (test/harness/BEHAVIOURS.md 11.22).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GATEHOUSE_HEADER_PREFIX, HEADER } from '../../src/pipeline/headers.js';
import { ExtAuthzStandIn } from '../harness/ext-authz.js';
import { get } from '../harness/helpers.js';
import { endToEnd } from '../support/gatehouse.js';
import { routeResponseHeadersToRemove, shippedExtAuthzConfig } from '../support/manifests.js';

const ROUTES = `
routes:
  - id: api
    match: { path: { prefix: /api/ } }
`;

/** every x-gatehouse-* header gatehouse names, in both spellings */
const GATEHOUSE_HEADERS = Object.values(HEADER).filter((name) => name.startsWith(GATEHOUSE_HEADER_PREFIX));
const IMITATION: [string, string][] = [
  ['x-gatehouse-reason', 'account_disabled'],
  ['x_gatehouse_decision_id', 'imitated-decision'],
  ['x-gatehouse-client', 'partner-bank'],
];

const gatehouseHeadersIn = (headers: [string, string][]): [string, string][] =>
  headers.filter(([name]) => name.replaceAll('_', '-').startsWith(GATEHOUSE_HEADER_PREFIX));

test('the shipped ext_authz wiring removes every x-gatehouse-* name gatehouse uses, in both spellings, from upstream responses', () => {
  const expected = [...GATEHOUSE_HEADERS, ...GATEHOUSE_HEADERS.map((n) => n.replaceAll('-', '_'))].sort();
  assert.ok(GATEHOUSE_HEADERS.includes(HEADER.reason) && GATEHOUSE_HEADERS.includes(HEADER.decisionId));
  assert.deepEqual([...routeResponseHeadersToRemove('envoyfilter-ext-authz.yaml')].sort(), expected);
});

for (const via of ['ext_proc', 'ext_authz'] as const) {
  test(`over ${via}: an upstream's x-gatehouse-* headers never reach the client; a denial carries gatehouse's own`, async (t) => {
    const e2e = await endToEnd(t, ROUTES, () => ({ headers: IMITATION, body: 'upstream' }));
    const exchange = via === 'ext_proc' ? e2e.envoy : e2e.authz;
    const allowed = await exchange.request({ method: 'GET', path: '/api/x', authority: 'api.example.com' });
    assert.equal(allowed.status, 200);
    assert.deepEqual(gatehouseHeadersIn(allowed.headers), [], 'no imitation reaches the client');
    const refused = await exchange.request({ method: 'GET', path: '/elsewhere', authority: 'api.example.com' });
    assert.equal(refused.status, 404);
    assert.equal(get(refused.headers, HEADER.reason), 'route_not_found');
    assert.match(get(refused.headers, HEADER.decisionId) ?? '', /^[0-9a-f-]{36}$/);
  });
}

test('without the route configuration\'s removal, an upstream over ext_authz could imitate a refusal (why the wiring is there)', async (t) => {
  const e2e = await endToEnd(t, ROUTES, () => ({ headers: IMITATION, body: 'upstream' }));
  const bare = new ExtAuthzStandIn({ authzAddress: `127.0.0.1:${e2e.gatehouse.grpcPort}`, filter: shippedExtAuthzConfig(), upstream: { host: '127.0.0.1', port: e2e.upstream.port } });
  t.after(() => { bare.close(); });
  const allowed = await bare.request({ method: 'GET', path: '/api/x', authority: 'api.example.com' });
  assert.equal(allowed.status, 200);
  assert.equal(get(allowed.headers, 'x-gatehouse-reason'), 'account_disabled');
});
