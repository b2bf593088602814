import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { HeaderMap } from '../pipeline/headers.js';
import { findPackageRoot } from './load.js';
import type { RouteMatchInput as MatchRequest } from '../pipeline/routing.js';
import type { RouteTable } from './route-table.js';
import { compileRouteTable, parseConfig } from '../../test/support/config.js';
import { FILTER_REGISTRY } from '../filters/registry.js';
import { loadClientRegistry } from './clients-file.js';
import { createFilterDeps } from '../filters/deps.js';
import { splitPath } from '../pipeline/context.js';

function table(text: string, file = 'routes.yaml'): RouteTable {
  const result = parseConfig(text, file);
  assert.ok(result.ok, result.ok ? '' : result.errors.map((e) => e.format()).join('\n'));
  const clientsFile = result.config.mtls?.clientsFile;
  if (clientsFile === undefined) return compileRouteTable(result.config);
  const clients = loadClientRegistry(clientsFile);
  assert.ok(clients.ok);
  return compileRouteTable(result.config, FILTER_REGISTRY, createFilterDeps({ mtls: { clients: () => clients.registry, audit: () => undefined } }));
}

function req(path: string, method = 'POST'): MatchRequest {
  return { method, authority: 'api.example.com', ...splitPath(path), headers: new HeaderMap() };
}

function decision(t: RouteTable, r: MatchRequest): string {
  const m = t.match(r);
  if (m === undefined) return 'none';
  if ('refused' in m) return `refused ${m.refused}`;
  return m.route.id;
}

// a protected exact route, a protected template, a protected prefix, and a weak catch-all under /api/
const ROUTES = `
routes:
  - id: transfers
    match: { path: { exact: /api/v1/transfers }, methods: [POST] }
    filters: [{ breaker: {} }]
  - id: transfers-strict
    match: { path: { exact: /api/v1/strict }, trailingSlash: refuse }
    filters: [{ breaker: {} }]
  - id: transfers-anycase
    match: { path: { exact: /api/v1/AnyCase }, caseSensitive: false }
    filters: [{ breaker: {} }]
  - id: account
    match: { path: { template: "/api/v1/accounts/:accountId" }, caseSensitive: false }
    filters: [{ breaker: {} }]
  - id: partner
    match: { path: { prefix: /partner/v1/ } }
    filters: [{ breaker: {} }]
  - id: api
    match: { path: { prefix: /api/ } }
    filters: [{ headers: { request: { set: { x-gateway: gatehouse } } } }]
  - id: root
    match: { path: { prefix: / } }
`;

test('framework-equivalent variants of a protected exact path are decided on it or refused, never given to the weaker prefix', () => {
  const t = table(ROUTES);
  assert.equal(decision(t, req('/api/v1/transfers')), 'transfers');
  // normalized: matrix parameters, dot segments, merged slashes
  assert.equal(decision(t, req('/api/v1/transfers;jsessionid=x')), 'transfers');
  assert.equal(decision(t, req('/api/v1/transfers;a=1;b=2?x=1')), 'transfers');
  assert.equal(decision(t, req('/api/v1/../v1/transfers')), 'transfers');
  assert.equal(decision(t, req('/api/v1/..;/v1/transfers')), 'transfers', 'Tomcat reads "..;" as ".."');
  // trailing slash: match (the default) decides it on the route
  assert.equal(decision(t, req('/api/v1/transfers/')), 'transfers');
  assert.equal(decision(t, req('/api/v1/transfers/.')), 'transfers');
  assert.equal(decision(t, req('/api/v1/transfers///')), 'transfers');
  assert.equal(decision(t, req('/api/v1/transfers/;x')), 'transfers');
  // trailing dot or suffix: always refused
  assert.equal(decision(t, req('/api/v1/transfers%2e')), 'refused path_variant');
  assert.equal(decision(t, req('/api/v1/transfers.')), 'refused path_variant');
  assert.equal(decision(t, req('/api/v1/transfers..')), 'refused path_variant');
  assert.equal(decision(t, req('/api/v1/transfers.json')), 'refused path_variant');
  // case: refused by default
  assert.equal(decision(t, req('/api/v1/Transfers')), 'refused path_variant');
  assert.equal(decision(t, req('/API/V1/TRANSFERS')), 'refused path_variant', 'not even the weak catch-all takes it');
  assert.equal(decision(t, req('/api/v1/%54ransfers')), 'refused path_variant', 'an upper-case letter sent percent-encoded');
});

test('a variant is only checked against routes whose predicates hold: GET /api/v1/transfers/ is the api route\'s', () => {
  const t = table(ROUTES);
  assert.equal(decision(t, req('/api/v1/transfers/', 'GET')), 'api');
  assert.equal(decision(t, req('/api/v1/Transfers', 'GET')), 'api');
  assert.equal(decision(t, req('/api/v1/other/')), 'api');
  assert.equal(decision(t, req('/api/v1/Other')), 'api');
  assert.equal(decision(t, req('/static/app.js')), 'root');
});

test('trailingSlash: refuse and caseSensitive: false are honoured per route', () => {
  const t = table(ROUTES);
  assert.equal(decision(t, req('/api/v1/strict')), 'transfers-strict');
  assert.equal(decision(t, req('/api/v1/strict/')), 'refused path_variant');
  assert.equal(decision(t, req('/api/v1/anycase')), 'transfers-anycase');
  assert.equal(decision(t, req('/API/V1/ANYCASE/')), 'transfers-anycase');
  assert.equal(decision(t, req('/api/v1/anycase.')), 'refused path_variant');
});

test('a case-insensitive template keeps its parameters\' case; a case-sensitive decision ignores case in parameters', () => {
  const t = table(ROUTES);
  const m = t.match(req('/API/v1/Accounts/AbC/', 'GET'));
  assert.ok(m && 'route' in m);
  assert.equal(m.route.id, 'account');
  assert.deepEqual({ ...m.params }, { accountId: 'AbC' });
  const direct = t.match(req('/api/v1/accounts/AbC/', 'GET'));
  assert.ok(direct && 'route' in direct && direct.route.id === 'account');
});

test('a protected prefix: its slash-less and case variants are decided on it or refused', () => {
  const t = table(ROUTES);
  assert.equal(decision(t, req('/partner/v1/payments')), 'partner');
  assert.equal(decision(t, req('/partner/v1')), 'partner', '/partner/v1 is what an Express app.use("/partner/v1") also serves');
  assert.equal(decision(t, req('/Partner/v1/payments')), 'refused path_variant');
  assert.equal(decision(t, req('/partner/v1x')), 'root', 'a longer segment is not a variant');
});

test('with unmatched: pass, a variant of a protected path is not passed unchecked', () => {
  const t = table(`
unmatched: pass
routes:
  - id: transfers
    match: { path: { exact: /api/v1/transfers }, methods: [POST] }
    filters: [{ breaker: {} }]
`);
  assert.equal(decision(t, req('/api/v1/transfers/')), 'transfers');
  assert.equal(decision(t, req('/API/v1/transfers')), 'refused path_variant');
  assert.equal(decision(t, req('/api/v1/transfers.xml')), 'refused path_variant');
  assert.equal(decision(t, req('/api/v1/other/')), 'none');
});

test('the dev config: every variant from the attack run is decided on the protected route or refused', () => {
  const root = findPackageRoot();
  const file = join(root, 'config', 'gatehouse.dev.yaml');
  const t = table(readFileSync(file, 'utf8'), file);
  const cases: [string, string][] = [
    ['/api/v1/transfers', 'transfers-signed'],
    ['/api/v1/transfers/', 'transfers-signed'],
    ['/api/v1/transfers;jsessionid=x', 'transfers-signed'],
    ['/api/v1/transfers/.', 'transfers-signed'],
    ['/api/v1/transfers///', 'transfers-signed'],
    ['/api/v1/transfers%2e', 'refused path_variant'],
    ['/api/v1/Transfers', 'refused path_variant'],
    ['/api/v1/e2ee/transfers/', 'transfers-e2ee'],
    ['/api/v1/e2ee/Transfers', 'refused path_variant'],
    ['/api/v1/passport/transfers/', 'transfers-passport'],
  ];
  for (const [path, want] of cases) assert.equal(decision(t, req(path)), want, path);
});

test('explain records each step: canonical path, direct match, variant, and the policy', () => {
  const t = table(ROUTES);
  const { result, trace } = t.explain(req('/api/v1/transfers/'));
  assert.ok(result && 'route' in result && result.route.id === 'transfers');
  assert.equal(trace.canonicalPath, '/api/v1/transfers/');
  assert.equal(trace.direct?.route.id, 'api');
  assert.equal(trace.variant?.key, '/api/v1/transfers');
  assert.match(trace.policy ?? '', /decided on transfers: route api would skip breaker/);
});

test('the common case is not folded: a request with nothing to fold is looked up once, even when a template has a camelCase parameter', () => {
  const t = table(`routes:\n  - { id: account, match: { path: { template: "/api/v1/accounts/:accountId" } }, filters: [{ breaker: {} }] }\n  - { id: api, match: { path: { prefix: /api/ } } }\n`);
  const { trace } = t.explain(req('/api/v1/accounts/abc', 'GET'));
  assert.equal(trace.direct?.route.id, 'account');
  assert.equal(trace.variant, undefined, 'no second lookup');
  const upper = table(`routes:\n  - { id: a, match: { path: { exact: /api/V1/x } }, filters: [{ breaker: {} }] }\n  - { id: b, match: { path: { prefix: / } } }\n`);
  assert.equal(decision(upper, req('/api/v1/x')), 'refused path_variant', 'a route path with upper case makes every request folded');
});

test('overlapping mixed-case prefixes: every spelling of a protected route\'s path lands on a route with its checks, or is refused', async () => {
  // found by the variants property test: p1's own path folds onto p2's wider prefix (more checks),
  // while the lower-case spelling is p1's case variant and, as written, under the weaker w0
  const { TEST_REGISTRY } = await import('../../test/support/test-filters.js');
  const parsed = parseConfig(`routes:
  - { id: p0, match: { path: { prefix: "/Pay/x/" }, caseSensitive: false }, filters: [{ breaker: {} }] }
  - { id: p1, match: { path: { prefix: "/Pay/x/pay/" }, caseSensitive: false }, filters: [{ breaker: {} }] }
  - { id: p2, match: { path: { prefix: "/pay/" }, caseSensitive: false }, filters: [{ breaker: {} }, { test-deny: { phase: requestHeaders, reason: circuit_open } }] }
  - { id: w0, match: { path: { prefix: "/pay/x/" } }, filters: [{ headers: {} }] }`, 'overlap.yaml', { registry: TEST_REGISTRY });
  assert.ok(parsed.ok);
  const t = compileRouteTable(parsed.config, TEST_REGISTRY);
  const { missingChecks } = await import('./shadowing.js');
  const p1 = t.byId('p1');
  assert.ok(p1);
  for (const spelling of ['/Pay/x/pay/q', '/pay/x/pay/q', '/PAY/X/PAY/q', '/pay/X/Pay/q']) {
    const m = t.match(req(spelling));
    assert.ok(m !== undefined, spelling);
    if ('refused' in m) continue;
    assert.deepEqual(missingChecks(m.route, p1), [], `${spelling} is decided on ${m.route.id}, without p1's checks`);
    assert.notEqual(m.route.id, 'w0', `${spelling} never lands on the weak route`);
  }
});
