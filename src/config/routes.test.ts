import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runInNewContext } from 'node:vm';
import { HeaderMap } from '../pipeline/headers.js';
import { CONTINUE, type FilterDefinition, type FilterDeps } from '../pipeline/types.js';
import { FILTER_REGISTRY } from '../filters/registry.js';
import { z } from 'zod';
import { ConfigValidationError } from './errors.js';
import { benchRouteMatch } from './routes.bench.js';
import { buildRouteTable, compileRouteTable, parseConfig } from '../../test/support/config.js';
import type { RouteMatchInput as MatchRequest } from '../pipeline/routing.js';
import { normalizeAuthority } from './route-predicates.js';
import type { RouteTable } from './route-table.js';
import type { GatehouseConfig } from './types.js';
import { createFilterDeps } from '../filters/deps.js';
import { splitPath } from '../pipeline/context.js';

function config(text: string, registry?: ReadonlyMap<string, FilterDefinition>): GatehouseConfig {
  const result = parseConfig(text, 'routes.yaml', registry ? { registry } : {});
  assert.ok(result.ok, result.ok ? '' : result.errors.map((e) => e.format()).join('\n'));
  return result.config;
}

function table(text: string): RouteTable {
  return compileRouteTable(config(text));
}

function req(path: string, more: Partial<Omit<MatchRequest, 'headers'>> & { headers?: [string, string][] } = {}): MatchRequest {
  return { method: more.method ?? 'GET', authority: more.authority ?? 'api.example.com', ...splitPath(path), headers: new HeaderMap(more.headers ?? []) };
}

/** the id of the matched route, 'none' when nothing matches, 'refused: …' for a refused path */
function routeFor(t: RouteTable, r: MatchRequest): string {
  const m = t.match(r);
  if (m === undefined) return 'none';
  if ('refused' in m) return `refused: ${m.detail}`;
  return m.route.id;
}

const PRECEDENCE = `
routes:
  - { id: prefix-v1, match: { path: { prefix: /v1/ } } }
  - { id: prefix-accounts, match: { path: { prefix: /v1/accounts/ } } }
  - { id: template-any, match: { path: { template: "/v1/:resource/:id" } } }
  - { id: template-account, match: { path: { template: "/v1/accounts/:accountId" } } }
  - { id: exact-me, match: { path: { exact: /v1/accounts/me } } }
  - { id: regex-numeric, match: { path: { regex: "/v2/[0-9]+" } } }
  - { id: root, match: { path: { prefix: / }, methods: [GET] } }
`;

test('the most specific path kind wins regardless of config order: exact > template > prefix (longest first) > regex', () => {
  const t = table(PRECEDENCE);
  assert.equal(routeFor(t, req('/v1/accounts/me')), 'exact-me');
  assert.equal(routeFor(t, req('/v1/accounts/42')), 'template-account');
  assert.equal(routeFor(t, req('/v1/cards/42')), 'template-any');
  assert.equal(routeFor(t, req('/v1/accounts/42/history')), 'prefix-accounts');
  assert.equal(routeFor(t, req('/v1/cards/42/history')), 'prefix-v1');
  assert.equal(routeFor(t, req('/other')), 'root');
  assert.equal(routeFor(t, req('/v2/12', { method: 'POST' })), 'regex-numeric', 'regex routes are tried after prefixes');
  assert.equal(routeFor(t, req('/v2/12')), 'root', 'a prefix that covers the path beats a regex');
  assert.equal(routeFor(t, req('/v2/ab', { method: 'POST' })), 'none');
});

test('pathTemplate is the pattern text, never the raw path; template params are decoded', () => {
  const t = table(PRECEDENCE);
  const m = t.match(req('/v1/accounts/caf%C3%A9?x=1'));
  assert.ok(m && !('refused' in m));
  assert.equal(m.pathTemplate, '/v1/accounts/:accountId');
  assert.deepEqual({ ...m.params }, { accountId: 'café' });
  const prefix = t.match(req('/v1/accounts/1/2'));
  assert.ok(prefix && !('refused' in prefix));
  assert.equal(prefix.pathTemplate, '/v1/accounts/*');
  assert.deepEqual({ ...prefix.params }, {});
  const exact = t.match(req('/v1/accounts/me'));
  assert.ok(exact && !('refused' in exact));
  assert.equal(exact.pathTemplate, '/v1/accounts/me');
  const regex = t.match(req('/v2/7', { method: 'PUT' }));
  assert.ok(regex && !('refused' in regex));
  assert.equal(regex.pathTemplate, '/v2/[0-9]+');
  const multi = table('routes: [{ id: m, match: { path: { template: "/o/:org/r/:repo" } } }]').match(req('/o/acme/r/gh'));
  assert.ok(multi && !('refused' in multi));
  assert.deepEqual({ ...multi.params }, { org: 'acme', repo: 'gh' });
});

test('when the most specific candidate fails its predicates, matching falls back to the next one covering the path', () => {
  const t = table(`
routes:
  - { id: exact-get, match: { path: { exact: /v1/accounts/me }, methods: [GET] } }
  - { id: template-put, match: { path: { template: "/v1/accounts/:id" }, methods: [PUT] } }
  - { id: template-generic, match: { path: { template: "/v1/:kind/:id" }, methods: [PUT, POST] } }
  - { id: prefix-long, match: { path: { prefix: /v1/accounts/ }, hosts: [internal.example.com] } }
  - { id: prefix-short, match: { path: { prefix: /v1/ }, headers: [{ name: x-beta, present: true }] } }
  - { id: regex, match: { path: { regex: "/v1/.*" }, methods: [DELETE] } }
`);
  assert.equal(routeFor(t, req('/v1/accounts/me')), 'exact-get');
  assert.equal(routeFor(t, req('/v1/accounts/me', { method: 'PUT' })), 'template-put', 'exact → template');
  assert.equal(routeFor(t, req('/v1/accounts/me', { method: 'POST' })), 'template-generic', 'exact → a less specific template');
  assert.equal(routeFor(t, req('/v1/accounts/me', { method: 'PATCH', authority: 'internal.example.com' })), 'prefix-long', 'templates → prefix');
  assert.equal(routeFor(t, req('/v1/accounts/me', { method: 'PATCH', headers: [['x-beta', '1']] })), 'prefix-short', 'long prefix → shorter prefix');
  assert.equal(routeFor(t, req('/v1/accounts/me', { method: 'DELETE' })), 'regex', 'prefixes → regex');
  assert.equal(routeFor(t, req('/v1/accounts/me', { method: 'PATCH' })), 'none');
});

test('routes on the very same path are tried in config order', () => {
  const t = table(`
routes:
  - { id: partner, match: { path: { prefix: /api/ }, headers: [{ name: x-partner-id, present: true }] } }
  - { id: mobile, match: { path: { prefix: /api/ }, hosts: [m.example.com] } }
  - { id: api, match: { path: { prefix: /api/ } } }
`);
  assert.equal(routeFor(t, req('/api/x', { headers: [['x-partner-id', 'p'] ], authority: 'm.example.com' })), 'partner');
  assert.equal(routeFor(t, req('/api/x', { authority: 'm.example.com' })), 'mobile');
  assert.equal(routeFor(t, req('/api/x')), 'api');
});

test('a template parameter never matches an empty segment', () => {
  const t = table(`
routes:
  - { id: one, match: { path: { template: "/v1/accounts/:id" } } }
  - { id: list, match: { path: { prefix: /v1/accounts/ } } }
`);
  assert.equal(routeFor(t, req('/v1/accounts/')), 'list');
  assert.equal(routeFor(t, req('/v1/accounts/7')), 'one');
  assert.equal(routeFor(t, req('/v1/accounts')), 'none', 'a prefix is a plain string prefix: /v1/accounts/ does not cover /v1/accounts');
});

test('a constrained template parameter beats a plain one and falls back to it', () => {
  const t = table(`
routes:
  - { id: plain, match: { path: { template: "/v1/x/:name" } } }
  - { id: numeric, match: { path: { template: "/v1/x/:id(^\\\\d+$)" } } }
`);
  assert.equal(routeFor(t, req('/v1/x/12')), 'numeric');
  assert.equal(routeFor(t, req('/v1/x/ab')), 'plain');
});

test('hosts: case-insensitive, port ignored, wildcard covers subdomains but not the bare domain', () => {
  const t = table(`
routes:
  - { id: exact-host, match: { path: { prefix: / }, hosts: [api.example.com, "[::1]"] } }
  - { id: wildcard, match: { path: { prefix: / }, hosts: ["*.example.com"] } }
  - { id: any, match: { path: { prefix: / }, hosts: ["*"] } }
`);
  assert.equal(routeFor(t, req('/', { authority: 'API.Example.COM:8443' })), 'exact-host');
  assert.equal(routeFor(t, req('/', { authority: 'api.example.com.' })), 'exact-host');
  assert.equal(routeFor(t, req('/', { authority: '[::1]:9001' })), 'exact-host');
  assert.equal(routeFor(t, req('/', { authority: 'a.b.example.com' })), 'wildcard');
  assert.equal(routeFor(t, req('/', { authority: 'example.com' })), 'any');
  assert.equal(routeFor(t, req('/', { authority: 'evil-example.com' })), 'any');
  assert.equal(normalizeAuthority('Host.Example:80'), 'host.example');
});

test('header predicates: exact, prefix, regex (full match), present; repeated headers are joined with ","', () => {
  const t = table(`
routes:
  - { id: exact, match: { path: { exact: /h }, headers: [{ name: X-App-Version, exact: "1.2" }] } }
  - { id: prefix, match: { path: { exact: /h }, headers: [{ name: user-agent, prefix: "ios/" }] } }
  - { id: regex, match: { path: { exact: /h }, headers: [{ name: x-tenant, regex: "t[0-9]+" }] } }
  - { id: absent, match: { path: { exact: /h }, headers: [{ name: authorization, present: false }] } }
  - { id: present, match: { path: { exact: /h }, headers: [{ name: authorization, present: true }] } }
`);
  assert.equal(routeFor(t, req('/h', { headers: [['x-app-version', '1.2']] })), 'exact');
  assert.equal(routeFor(t, req('/h', { headers: [['x-app-version', '1.20'], ['authorization', 'x']] })), 'present');
  assert.equal(routeFor(t, req('/h', { headers: [['user-agent', 'ios/17'], ['authorization', 'x']] })), 'prefix');
  assert.equal(routeFor(t, req('/h', { headers: [['x-tenant', 't42'], ['authorization', 'x']] })), 'regex');
  assert.equal(routeFor(t, req('/h', { headers: [['x-tenant', 't42x'], ['authorization', 'x']] })), 'present', 'regex is a full match');
  assert.equal(routeFor(t, req('/h', { headers: [['x-tenant', 't1'], ['x-tenant', 't2'], ['authorization', 'x']] })), 'present', 'joined "t1,t2" is not t[0-9]+');
  assert.equal(routeFor(t, req('/h')), 'absent');
});

test('query predicates: decoded values, first occurrence, present and absent', () => {
  const t = table(`
routes:
  - { id: ko, match: { path: { exact: /q }, query: [{ name: lang, exact: ko }] } }
  - { id: spaced, match: { path: { exact: /q }, query: [{ name: q, exact: "a b" }] } }
  - { id: regex, match: { path: { exact: /q }, query: [{ name: page, regex: "[0-9]+" }] } }
  - { id: flag, match: { path: { exact: /q }, query: [{ name: debug, present: true }] } }
  - { id: plain, match: { path: { exact: /q }, query: [{ name: debug, present: false }] } }
`);
  assert.equal(routeFor(t, req('/q?lang=ko')), 'ko');
  assert.equal(routeFor(t, req('/q?lang=en&lang=ko')), 'plain', 'the first value counts');
  assert.equal(routeFor(t, req('/q?q=a+b')), 'spaced');
  assert.equal(routeFor(t, req('/q?q=a%20b')), 'spaced');
  assert.equal(routeFor(t, req('/q?page=12')), 'regex');
  assert.equal(routeFor(t, req('/q?page=12a')), 'plain');
  assert.equal(routeFor(t, req('/q?debug')), 'flag');
  assert.equal(routeFor(t, req('/q')), 'plain');
});

test('methods: any method when absent, only the listed ones when present', () => {
  const t = table(`
routes:
  - { id: read, match: { path: { prefix: /r/ }, methods: [get, HEAD] } }
  - { id: all, match: { path: { prefix: / } } }
`);
  assert.equal(routeFor(t, req('/r/x', { method: 'HEAD' })), 'read');
  assert.equal(routeFor(t, req('/r/x', { method: 'DELETE' })), 'all');
});

test('request paths are normalized before matching, and ambiguous ones are refused', () => {
  const t = table(`
routes:
  - { id: admin, match: { path: { prefix: /admin/ } } }
  - { id: transfer, match: { path: { exact: /v1/transfer } } }
  - { id: public, match: { path: { prefix: /public/ } } }
`);
  assert.equal(routeFor(t, req('/public/../admin/users')), 'admin');
  assert.equal(routeFor(t, req('/public/%2e%2e/admin/users')), 'admin');
  assert.equal(routeFor(t, req('//admin//users')), 'admin');
  assert.equal(routeFor(t, req('/v1/transf%65r?x=1')), 'transfer');
  assert.equal(routeFor(t, req('/public/..%2Fadmin/users')), 'refused: the path contains an encoded "/" or "\\"');
  assert.equal(routeFor(t, req('/public\\..\\admin')), 'refused: the path contains a backslash');
  const refusal = t.match(req('/a%ZZ'));
  assert.deepEqual(refusal, { refused: 'bad_request_headers', detail: 'the path has a malformed percent-escape' });
});

test('byId finds a compiled route with its resolved budget, body limit and chain', () => {
  const t = table(`
defaults: { budgetMs: 120, maxBodyBytes: 1000 }
unmatched: pass
routes:
  - id: a
    match: { path: { exact: /a } }
    budgetMs: 50
    filters: [{ headers: { response: { set: { x-a: "1" } } } }]
  - { id: b, match: { path: { exact: /b } }, maxBodyBytes: 10 }
`);
  assert.equal(t.unmatched, 'pass');
  assert.deepEqual(
    t.routes.map((r) => r.id),
    ['a', 'b'],
  );
  const a = t.byId('a');
  assert.ok(a);
  assert.equal(a.budgetMs, 50);
  assert.equal(a.maxBodyBytes, 1000);
  assert.deepEqual(a.needs, { requestBody: false, responseHeaders: true, responseBody: false });
  assert.deepEqual(
    a.filters.map((f) => f.name),
    ['sanitize', 'headers'],
    'sanitize is always on',
  );
  assert.equal(typeof a.filters[1]!.filter.onRequestHeaders, 'function');
  const b = t.byId('b');
  assert.ok(b);
  assert.equal(b.budgetMs, 120);
  assert.equal(b.maxBodyBytes, 10);
  assert.deepEqual(b.needs, { requestBody: false, responseHeaders: false, responseBody: false });
  assert.equal(t.byId('c'), undefined);
});

/** a registry with two extra filters to prove ordering, needs union and create errors */
function testRegistry(created: string[]): ReadonlyMap<string, FilterDefinition> {
  const early: FilterDefinition = {
    name: 'early',
    order: 100,
    configSchema: z.strictObject({ body: z.boolean().default(false) }),
    needs: (c: { body: boolean }) => ({ requestBody: c.body }),
    create: (c: { body: boolean }, deps: FilterDeps) => {
      created.push(`early:${String(c.body)}:${typeof deps.now}`);
      return { onRequestHeaders: () => CONTINUE };
    },
  } as unknown as FilterDefinition;
  const broken: FilterDefinition = {
    name: 'broken',
    order: 200,
    configSchema: z.strictObject({}),
    needs: () => ({}),
    create: () => {
      throw new Error('no key material');
    },
  };
  return new Map([...FILTER_REGISTRY, ['early', early], ['broken', broken]]);
}

test('filters run in FILTER_ORDER whatever their listed order; needs are the union; create gets the config and deps', () => {
  const created: string[] = [];
  const registry = testRegistry(created);
  const c = config(
    `routes:
  - id: a
    match: { path: { prefix: / } }
    filters:
      - headers: { response: { set: { x-a: "1" } } }
      - early: { body: true }
`,
    registry,
  );
  const t = compileRouteTable(c, registry, createFilterDeps({ now: () => 0 }));
  const a = t.byId('a')!;
  assert.deepEqual(
    a.filters.map((f) => [f.name, f.order]),
    [
      ['early', 100],
      ['sanitize', 100],
      ['headers', 900],
    ],
  );
  assert.deepEqual(a.needs, { requestBody: true, responseHeaders: true, responseBody: false });
  assert.deepEqual(created, ['early:true:function']);
});

test('compile errors (a filter that cannot be created, an unknown filter, a duplicate) name route and field', () => {
  const registry = testRegistry([]);
  const c = config('routes:\n  - { id: a, match: { path: { prefix: / } }, filters: [{ broken: {} }] }\n', registry);
  const built = buildRouteTable(c, { registry, deps: createFilterDeps({ now: () => 0 }) });
  assert.ok(!built.ok);
  assert.deepEqual(
    built.errors.map((e) => e.format()),
    ['routes.yaml: routes[0] (id "a"): filters[0].broken: could not be set up: no key material'],
  );
  // a config compiled against a registry that lacks its filter (e.g. built by hand)
  const unknown = buildRouteTable(config('routes:\n  - { id: a, match: { path: { prefix: / } }, filters: [{ early: {} }] }\n', registry), { deps: createFilterDeps({ now: () => 0 }) });
  assert.ok(!unknown.ok);
  assert.deepEqual(
    unknown.errors.map((e) => e.format()),
    ['routes.yaml: routes[0] (id "a"): filters[0].early: unknown filter "early"; known filters: breaker, e2ee, e2eeKeys, headers, issuance, mtls, passport, passportKeys, sanitize, signed'],
  );
  const handMade: GatehouseConfig = { ...c, routes: [{ id: 'x', match: { path: { kind: 'exact', value: '/x' } }, filters: [{ name: 'headers', config: {} }, { name: 'headers', config: { request: { set: { a: 1 } } } }] }] };
  assert.throws(
    () => compileRouteTable(handMade),
    (err: unknown) =>
      err instanceof ConfigValidationError &&
      err.errors.map((e) => e.format()).join('\n') === 'routes.yaml: routes[0] (id "x"): filters[1]: filter "headers" is listed twice (also filters[0]); a route runs each filter once',
  );
  const badValue: GatehouseConfig = { ...c, routes: [{ id: 'x', match: { path: { kind: 'exact', value: '/x' } }, filters: [{ name: 'headers', config: { request: { set: { a: 1 } } } }] }] };
  const bad = buildRouteTable(badValue, { deps: createFilterDeps({ now: () => 0 }) });
  assert.ok(!bad.ok);
  assert.deepEqual(
    bad.errors.map((e) => e.format()),
    ['routes.yaml: routes[0] (id "x"): filters[0].headers.request.set.a: must be a string, got number 1'],
  );
});

test('a table and its routes are frozen', () => {
  const t = table(PRECEDENCE);
  assert.ok(Object.isFrozen(t) && Object.isFrozen(t.routes) && Object.isFrozen(t.routes[0]));
});

test('the route-match benchmark runs and reports a positive rate', () => {
  const result = benchRouteMatch(50);
  assert.ok(result.opsPerSec > 0);
  assert.ok(result.routes > 10);
});

test('a path with a space is written plainly in the config and matches its %20 form', () => {
  const t = table('routes:\n  - { id: s, match: { path: { exact: "/my files/a" } } }\n');
  assert.equal(routeFor(t, req('/my%20files/a')), 's');
});

test("a filter schema that throws is reported at the filter, at load and at compile, not a crash", () => {
  const explosive: FilterDefinition = {
    name: 'explosive',
    order: 300,
    configSchema: z.unknown().transform(() => {
      throw new Error('boom');
    }),
    needs: () => ({}),
    create: () => ({}),
  };
  const registry = new Map([...FILTER_REGISTRY, ['explosive', explosive]]);
  const text = 'routes:\n  - { id: a, match: { path: { prefix: / } }, filters: [{ explosive: {} }] }\n';
  const loaded = parseConfig(text, 'routes.yaml', { registry });
  assert.ok(!loaded.ok);
  assert.deepEqual(
    loaded.errors.map((e) => e.format()),
    ["routes.yaml:2: routes[0] (id \"a\"): filters[0].explosive: the filter's config check failed: boom"],
  );
  const plain = config('routes:\n  - { id: a, match: { path: { prefix: / } }, filters: [{ headers: {} }] }\n');
  const handMade: GatehouseConfig = { ...plain, routes: [{ ...plain.routes[0]!, filters: [{ name: 'explosive', config: {} }] }] };
  const built = buildRouteTable(handMade, { registry, deps: createFilterDeps({ now: () => 0 }) });
  assert.ok(!built.ok);
  assert.deepEqual(
    built.errors.map((e) => e.format()),
    ["routes.yaml: routes[0] (id \"a\"): filters[0].explosive: the filter's config check failed: boom"],
  );
});

test('a client cannot make regex matching backtrack: nested quantifiers against a hostile path and header finish (linear-time engine)', () => {
  // On a backtracking engine each of these 5,000-character inputs would take longer than the age of
  // the universe.
  const t = table(`
routes:
  - id: hostile
    match:
      path: { regex: "/(a+)+" }
      headers: [{ name: x-a, regex: "(x|x)*y" }]
`);
  const longA = 'a'.repeat(5000);
  const longX = 'x'.repeat(5000);
  // Matching runs under vm's watchdog, which interrupts even a regex mid-backtrack: a regression
  // fails here with "Script execution timed out" instead of hanging the suite.
  const within5s = (r: MatchRequest): string => String(runInNewContext('routeFor(t, r)', { routeFor, t, r }, { timeout: 5_000 }));
  assert.equal(within5s(req(`/${longA}b`, { headers: [['x-a', `${longX}y`]] })), 'none');
  assert.equal(within5s(req(`/${longA}`, { headers: [['x-a', `${longX}z`]] })), 'none');
  assert.equal(within5s(req(`/${longA}`, { headers: [['x-a', `${longX}y`]] })), 'hostile');
});

test('defaults.filters: every route runs them unless it lists the same filter; a failing default is reported once, at its own place', () => {
  const created: string[] = [];
  const registry = testRegistry(created);
  const t = compileRouteTable(
    config(
      `defaults:
  filters:
    - early: { body: true }
routes:
  - { id: plain, match: { path: { prefix: /a/ } } }
  - { id: own, match: { path: { prefix: /b/ } }, filters: [{ early: { body: false } }] }
`,
      registry,
    ),
    registry,
    createFilterDeps({ now: () => 0 }),
  );
  assert.deepEqual(t.byId('plain')!.filters.map((f) => f.name), ['early', 'sanitize']);
  assert.equal(t.byId('plain')!.needs.requestBody, true, 'the default entry, with its config');
  assert.equal(t.byId('own')!.needs.requestBody, false, "the route's own entry wins");
  assert.deepEqual(created, ['early:true:function', 'early:false:function']);

  const broken = buildRouteTable(
    config('defaults:\n  filters: [{ broken: {} }]\nroutes:\n  - { id: a, match: { path: { prefix: /a/ } } }\n  - { id: b, match: { path: { prefix: /b/ } } }\n', registry),
    { registry, deps: createFilterDeps({ now: () => 0 }) },
  );
  assert.ok(!broken.ok);
  assert.deepEqual(broken.errors.map((e) => e.format()), ['routes.yaml: defaults.filters[0].broken: could not be set up: no key material']);
});

test('defaults.filters is checked like a route list: unknown filters, bad configs and duplicates are errors with their line', () => {
  const result = parseConfig(
    `defaults:
  filters:
    - sanitize: { stripHeaders: [x-envoy-internal] }
    - sanitize: {}
    - nonesuch: {}
`,
    'routes.yaml',
  );
  assert.ok(!result.ok);
  assert.deepEqual(result.errors.map((e) => e.format()), [
    'routes.yaml:3: defaults.filters[0].sanitize.stripHeaders[0]: cannot strip "x-envoy-internal": Envoy ignores ext_proc edits of x-envoy* headers; Envoy itself strips its internal x-envoy-* headers from external requests when use_remote_address is true (Istio ingress default)',
    'routes.yaml:4: defaults.filters[1]: filter "sanitize" is listed twice (also filters[0]); a route runs each filter once',
    'routes.yaml:5: defaults.filters[2].nonesuch: unknown filter "nonesuch"; known filters: breaker, e2ee, e2eeKeys, headers, issuance, mtls, passport, passportKeys, sanitize, signed',
  ]);
});
