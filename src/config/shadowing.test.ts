import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildRouteTable, compileRouteTable, parseConfig } from '../../test/support/config.js';
import { findShadowing, missingChecks, securityFilters } from './shadowing.js';
import { createFilterDeps } from '../filters/deps.js';

function configOf(text: string) {
  const parsed = parseConfig(text, 'routes.yaml');
  assert.ok(parsed.ok, parsed.ok ? '' : parsed.errors.map((e) => e.format()).join('\n'));
  return parsed.config;
}

test('security filters: headers and sanitize guard nothing; a route lacking a filter another has is weaker', () => {
  const t = compileRouteTable(configOf(`
routes:
  - { id: strong, match: { path: { exact: /a } }, filters: [{ breaker: {} }, { headers: {} }] }
  - { id: weak, match: { path: { prefix: / } }, filters: [{ headers: {} }] }
`));
  const [strong, weak] = t.routes;
  assert.deepEqual([...securityFilters(strong)], ['breaker']);
  assert.deepEqual([...securityFilters(weak)], []);
  assert.deepEqual(missingChecks(weak, strong!), ['breaker']);
  assert.deepEqual(missingChecks(strong, weak!), []);
  assert.deepEqual(missingChecks(undefined, strong!), ['breaker']);
});

test('a weaker route written for a variant spelling itself is reported, and the path policy still decides the variant on the protected route', () => {
  const t = compileRouteTable(configOf(`
routes:
  - { id: legacy-slash, match: { path: { exact: /api/v1/transfers/ } } }
  - { id: transfers, match: { path: { exact: /api/v1/transfers }, methods: [POST] }, filters: [{ breaker: {} }] }
`));
  const findings = findShadowing(t).map((f) => `${f.sample} → ${f.weaker?.id ?? 'none'}: ${f.outcome}`);
  assert.ok(findings.includes('/api/v1/transfers/ → legacy-slash: decided'), findings.join('\n'));
});

test('pathPolicy.shadowing: refuse turns findings into config errors at the weaker route; warn (default) builds the table', () => {
  const routes = `
routes:
  - { id: transfers, match: { path: { exact: /api/v1/transfers } }, filters: [{ breaker: {} }] }
  - { id: api, match: { path: { prefix: /api/ } } }
`;
  const refused = buildRouteTable(configOf(`pathPolicy: { shadowing: refuse }\n${routes}`), { deps: createFilterDeps() });
  assert.ok(!refused.ok);
  assert.match(refused.errors.map((e) => e.format()).join('\n'), /routes\[1\] \(id "api"\): match\.path: receives variants of routes\[0\] \(id "transfers"\)'s path without its breaker/);
  assert.ok(buildRouteTable(configOf(routes), { deps: createFilterDeps() }).ok);
});
