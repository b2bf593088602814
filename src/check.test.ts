// `--check` in-process: shadowing warnings and `--explain` (the CLI itself: test/integration/check.test.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkConfig, explainRequest, parseExplainRequest } from './check.js';
import { parseConfig } from '../test/support/config.js';

function checked(yaml: string) {
  const parsed = parseConfig(yaml, 'c.yaml');
  assert.ok(parsed.ok, parsed.ok ? '' : parsed.errors.map((e) => e.format()).join('\n'));
  const result = checkConfig(parsed.config);
  assert.ok(result.ok, result.ok ? '' : result.errors.join('\n'));
  return result;
}

const ROUTES = `routes:
  - id: transfers
    match: { path: { exact: /api/v1/transfers }, methods: [POST] }
    filters: [{ breaker: {} }]
  - id: api
    match: { path: { prefix: /api/ } }
`;

test('shadowing warnings: at the weaker route, or at unmatched with unmatched: pass; none when nothing weaker receives a variant', () => {
  assert.match(checked(ROUTES).warnings.join('\n'), /c\.yaml: routes\[1\] \(id "api"\): match\.path: receives variants of routes\[0\] \(id "transfers"\)'s path without its breaker: \/api\/v1\/transfers\/ \(decided on transfers by the path policy\)/);
  const pass = checked('unmatched: pass\nroutes:\n  - id: transfers\n    match: { path: { exact: /api/v1/transfers } }\n    filters: [{ breaker: {} }]\n');
  assert.match(pass.warnings.join('\n'), /c\.yaml: unmatched: unmatched: pass would pass variants of routes\[0\] \(id "transfers"\)'s path without its breaker/);
  assert.deepEqual(checked('routes:\n  - id: transfers\n    match: { path: { exact: /api/v1/transfers } }\n    filters: [{ breaker: {} }]\n').warnings, []);
});

test('explain: the route, the steps that chose it, the chain with what each filter needs, and what Envoy must send', () => {
  const { table } = checked(ROUTES);
  const explain = (text: string) => {
    const request = parseExplainRequest(text);
    assert.ok(request.ok);
    return explainRequest(table, request).join('\n');
  };
  const decided = explain('POST https://api.example.com/api/v1/transfers/');
  assert.match(decided, /^POST \/\/api\.example\.com\/api\/v1\/transfers\/$/m);
  assert.match(decided, /^ {2}matched by its path: api \(prefix \/api\/\)$/m);
  assert.match(decided, /^ {2}variant form: \/api\/v1\/transfers \(folded: trailing slash\)$/m);
  assert.match(decided, /^ {2}→ route transfers \(routes\[0\]: exact \/api\/v1\/transfers; methods POST\)/m);
  assert.match(decided, /^ {4}1\. sanitize: needs nothing from the client/m);
  assert.match(decided, /^ {4}2\. breaker: needs the route's \(or its feature's\) breaker not open/m);
  assert.match(decided, /^ {2}Envoy must send: the request headers, the response headers$/m);
  assert.match(explain('GET /nowhere'), /→ no route: unmatched: deny answers 404 route_not_found/);
  assert.match(explain('GET /a%2fb'), /→ refused 400 bad_request_headers: the path contains an encoded "\/"/);
  assert.match(explain('POST /api/v1/transfers.json'), /→ refused 400 path_variant: the path is a variant \(trailing dot or "\.suffix"\)/);
  assert.match(explain('GET /api/x'), /→ route api/);
});

test('parseExplainRequest keeps the path as written (no URL normalization) and refuses what is not a request', () => {
  const r = parseExplainRequest('post https://h.example:8443/a/./b%2e?x=1', ['X-Tenant: t1']);
  assert.ok(r.ok);
  assert.deepEqual([r.method, r.authority, r.path, r.headers.get('x-tenant')], ['POST', 'h.example:8443', '/a/./b%2e?x=1', 't1']);
  const bare = parseExplainRequest('/healthz');
  assert.ok(bare.ok && bare.method === 'GET' && bare.authority === '');
  assert.ok(!parseExplainRequest('not a request').ok);
  assert.ok(!parseExplainRequest('GET /x', ['no-colon']).ok);
});
