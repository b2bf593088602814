// The path policy as a property (issue 21): on random route tables (protected exact, template and
// prefix routes with random trailingSlash/caseSensitive options, behind weak catch-all prefixes), no
// framework-equivalent variant of a protected route's path (trailing slash, `;` parameters, case, dot
// segments, doubled slashes, percent-encoding, trailing dot, `.suffix`) is decided on a route lacking
// a security filter the path's own route has: it lands on a route with every one of those checks,
// or is refused. (A variant reaching two protected routes with different checks is refused.)
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { HeaderMap } from '../pipeline/headers.js';
import { TEST_REGISTRY } from '../../test/support/test-filters.js';
import type { RouteTable } from './route-table.js';
import { compileRouteTable, parseConfig } from '../../test/support/config.js';
import { missingChecks } from './shadowing.js';
import { splitPath } from '../pipeline/context.js';

const SEGMENTS = ['a', 'B', 'pay', 'Pay', 'v1', 'x'] as const;
const segment = fc.constantFrom(...SEGMENTS);
const literalPath = fc.array(segment, { minLength: 1, maxLength: 3 }).map((s) => `/${s.join('/')}`);

const SECURITY = ['{ breaker: {} }', '{ test-deny: { phase: requestHeaders, reason: circuit_open } }', '{ breaker: {} }, { test-deny: { phase: requestHeaders, reason: circuit_open } }'];

const protectedRoute = fc.record({
  kind: fc.constantFrom('exact', 'template', 'prefix'),
  path: literalPath,
  filters: fc.constantFrom(...SECURITY),
  trailingSlash: fc.constantFrom(undefined, 'match', 'refuse'),
  caseSensitive: fc.constantFrom(undefined, true, false),
});
const weakPrefix = fc.oneof(fc.constant('/'), literalPath.map((p) => `${p}/`), literalPath);

function ownPath(r: { kind: string; path: string }): string {
  if (r.kind === 'template') return r.path.replace(/\/[^/]+$/, '/q');
  if (r.kind === 'prefix') return `${r.path}/q`;
  return r.path;
}

interface ProtectedSpec {
  readonly kind: string;
  readonly path: string;
  readonly filters: string;
  readonly trailingSlash: string | undefined;
  readonly caseSensitive: boolean | undefined;
}

function yamlOf(protectedRoutes: readonly ProtectedSpec[], weak: readonly string[]): string {
  const lines = ['routes:'];
  protectedRoutes.forEach((r, i) => {
    // a template: its last segment a parameter
    const path = r.kind === 'template' ? r.path.replace(/\/[^/]+$/, '/:p') : r.kind === 'prefix' ? `${r.path}/` : r.path;
    const options = `${r.trailingSlash === undefined ? '' : `, trailingSlash: ${r.trailingSlash}`}${r.caseSensitive === undefined ? '' : `, caseSensitive: ${r.caseSensitive}`}`;
    lines.push(`  - { id: p${i}, match: { path: { ${r.kind}: "${path}" }${options} }, filters: [${r.filters}] }`);
  });
  weak.forEach((w, i) => lines.push(`  - { id: w${i}, match: { path: { prefix: "${w}" } }, filters: [{ headers: {} }] }`));
  return lines.join('\n');
}

function tableOf(yaml: string): RouteTable | undefined {
  const parsed = parseConfig(yaml, 'prop.yaml', { registry: TEST_REGISTRY });
  if (!parsed.ok) return undefined; // e.g. two templates of one shape: a config error, not a case
  return compileRouteTable(parsed.config, TEST_REGISTRY);
}

const trimmed = (path: string): string => (path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path);

/** framework-equivalent respellings of `path` */
const variant = (path: string) =>
  fc.oneof(
    fc.constant(path.endsWith('/') ? path.slice(0, -1) || '/' : `${path}/`),
    fc.constant(`${path};jsessionid=x`),
    fc.nat().map((n) => {
      const parts = path.split('/');
      const i = 1 + (n % Math.max(1, parts.length - 1));
      parts[i] = `${parts[i] ?? ''};v=1`;
      return parts.join('/');
    }),
    fc.nat().map((n) => {
      const letters = Array.from(path).map((c, i) => [c, i] as const).filter(([c]) => /[a-zA-Z]/.test(c));
      if (letters.length === 0) return path;
      const [c, i] = letters[n % letters.length]!;
      return path.slice(0, i) + (c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase()) + path.slice(i + 1);
    }),
    fc.constant(`${path}/.`),
    fc.constant(path.replace(/\//g, '//')),
    fc.constant(`${path.replace(/\/[^/]*$/, '')}/zz/..${path.slice(path.lastIndexOf('/'))}`),
    fc.nat().map((n) => {
      const letters = Array.from(path).map((c, i) => [c, i] as const).filter(([c]) => /[a-zA-Z]/.test(c));
      if (letters.length === 0) return path;
      const [c, i] = letters[n % letters.length]!;
      return `${path.slice(0, i)}%${c.charCodeAt(0).toString(16).toUpperCase()}${path.slice(i + 1)}`;
    }),
    // a suffix goes on the last segment, not after a trailing slash
    fc.constant(`${trimmed(path)}%2e`),
    fc.constant(`${trimmed(path)}.json`),
  );

test('property: a variant of a protected route\'s path is never decided on a route lacking a security filter the path\'s own route has', () => {
  const scenario = fc
    .record({
      protectedRoutes: fc.array(protectedRoute, { minLength: 1, maxLength: 4 }),
      weak: fc.array(weakPrefix, { maxLength: 3 }),
      which: fc.nat(),
      method: fc.constantFrom('GET', 'POST'),
    })
    // the path: a protected route's own path as written (a template's parameter and what follows a
    // prefix filled in); its variants are generated from it
    .map((s) => ({ ...s, path: ownPath(s.protectedRoutes[s.which % s.protectedRoutes.length]!) }))
    .chain((s) => fc.tuple(fc.constant(s), variant(s.path)));
  let checked = 0;
  fc.assert(
    fc.property(scenario, ([s, respelled]) => {
      const table = tableOf(yamlOf(s.protectedRoutes, [...new Set(s.weak)]));
      if (!table) return;
      const request = (path: string) => ({ method: s.method, authority: 'api.example.com', ...splitPath(path), headers: new HeaderMap() });
      // the path's own route: the one precedence gives the path as written (what an upstream that
      // routes the same way picks for it). Not the route the path is decided on: that may be a
      // stronger one its folded form also reaches, which a variant need not reach too.
      const { result: decided, trace } = table.explain(request(s.path));
      const own = trace.direct?.route;
      if (!own || !decided || 'refused' in decided) return;
      const other = table.match(request(respelled));
      if (other && 'refused' in other) return;
      checked++;
      const missing = missingChecks(other?.route, own);
      assert.deepEqual(missing, [], `${s.path} is ${own.id}'s path, but its variant ${respelled} is decided on ${other?.route.id ?? 'no route'}, without ${missing.join(', ')}`);
    }),
    { numRuns: 600 },
  );
  assert.ok(checked > 100, `only ${checked} runs had a decided path and a decided variant`);
});
