// Shadowing found at load: a route with fewer security filters that would receive a variant of a
// more protected route's path (the `api` prefix covering `/api/v1/transfers/`). For every route
// with a security filter and a literal path (exact, prefix, template), a request on its path is
// respelled the ways upstream frameworks still route to the same handler (trailing slash, `;`
// parameters, dot segments, doubled slashes, an encoded trailing dot, a `.suffix`, case) and
// matched. A finding says where the variant would land without the path policy and what the policy
// does with it: decided on the protected route, refused 400 path_variant, or — not covered, the
// loud case — given to the weaker route. `pathPolicy.shadowing: warn` (default) reports findings at
// `npm run check` and at start; `refuse` makes them config errors. docs/security.md "Path policy".
import type { CompiledRoute } from '../pipeline/types.js';
import { HeaderMap } from '../pipeline/headers.js';
import type { RawIssue } from './issues.js';
import type { RouteMatchInput } from '../pipeline/routing.js';
import type { RouteTableView as RouteTable, TableRoute } from './route-types.js';

/** Filters that do not guard anything (or run on every route alike): not counted when comparing routes. */
const NOT_SECURITY_FILTERS: ReadonlySet<string> = new Set(['headers', 'sanitize']);

/** the names of a route's filters that check or refuse something */
export function securityFilters(route: CompiledRoute | undefined): ReadonlySet<string> {
  const out = new Set<string>();
  for (const f of route?.filters ?? []) if (!NOT_SECURITY_FILTERS.has(f.name)) out.add(f.name);
  return out;
}

/** the security filters `stronger` has and `weaker` lacks (no route at all lacks them all) */
export function missingChecks(weaker: CompiledRoute | undefined, stronger: CompiledRoute): string[] {
  const have = securityFilters(weaker);
  return [...securityFilters(stronger)].filter((name) => !have.has(name));
}

export interface ShadowFinding {
  /** the route whose path was respelled */
  readonly protectedRoute: TableRoute;
  /** where the variant lands by its own path; undefined: no route (unmatched: pass) */
  readonly weaker: TableRoute | undefined;
  /** the checks the weaker route lacks */
  readonly missing: readonly string[];
  /** the respelled request path */
  readonly sample: string;
  /** what the path policy does with it */
  readonly outcome: 'decided' | 'refused' | 'not covered';
}

const SAMPLE_PARAM = '1';

/** A request path on the route's own path, or undefined when one cannot be written down (regex). */
function samplePath(route: TableRoute): string | undefined {
  const { kind, value } = route.match.path;
  switch (kind) {
    case 'exact':
      return value;
    case 'prefix':
      return value.endsWith('/') ? `${value}${SAMPLE_PARAM}` : value;
    case 'template':
      // `:id` and `:id(regex)` → a value; a constrained param may refuse it, and then the route is skipped
      return value.replace(/:[A-Za-z_][A-Za-z0-9_]*(\([^)]*\))?/g, SAMPLE_PARAM);
    case 'regex':
      return undefined;
  }
}

/** the respellings of `path` an upstream framework may route to the same handler */
function variantsOf(path: string, route: TableRoute): string[] {
  const out = path.endsWith('/') && path.length > 1 ? [path.slice(0, -1)] : [`${path}/`, `${path}/.`, `${path}//`];
  out.push(`${path};jsessionid=x`, `${path}%2e`, `${path}.json`);
  const upper = path.replace(/[a-z](?=[^a-z]*$)/, (c) => c.toUpperCase());
  if (upper !== path) out.push(upper);
  // a prefix route also serves its slash-less prefix (Express `app.use`)
  if (route.match.path.kind === 'prefix' && route.match.path.value.endsWith('/') && route.match.path.value.length > 1) out.push(route.match.path.value.slice(0, -1));
  return out;
}

/** A request the route's other predicates accept, or undefined when that cannot be written down. */
function sampleRequest(route: TableRoute, path: string): RouteMatchInput | undefined {
  const { hosts, methods, headers, query } = route.match;
  const host = hosts === undefined || hosts.includes('*') ? 'gatehouse.invalid' : hosts[0]!.replace(/^\*\./, 'a.');
  const headerMap = new HeaderMap();
  for (const h of headers ?? []) {
    if (h.kind === 'regex') return undefined;
    if (h.kind === 'present') {
      if (h.value) headerMap.add(h.name, 'x');
    } else headerMap.add(h.name, h.value);
  }
  const params: string[] = [];
  for (const q of query ?? []) {
    if (q.kind === 'regex') return undefined;
    if (q.kind === 'present') {
      if (q.value) params.push(encodeURIComponent(q.name));
    } else params.push(`${encodeURIComponent(q.name)}=${encodeURIComponent(q.value)}`);
  }
  return { method: methods?.[0] ?? 'GET', authority: host, pathname: path, query: params.join('&'), headers: headerMap };
}

export function findShadowing(table: RouteTable): ShadowFinding[] {
  const findings: ShadowFinding[] = [];
  for (const route of table.routes) {
    if (securityFilters(route).size === 0) continue;
    const path = samplePath(route);
    if (path === undefined) continue;
    const own = sampleRequest(route, path);
    if (own === undefined) continue;
    const itself = table.match(own);
    if (!itself || !('route' in itself) || itself.route !== route) continue;
    for (const variant of variantsOf(path, route)) {
      const request = sampleRequest(route, variant);
      if (request === undefined) continue;
      const { result, trace } = table.explain(request);
      const weaker = trace.direct?.route;
      if (weaker === route) continue;
      // no route: denied 404 anyway unless unmatched is pass
      if (weaker === undefined && table.unmatched === 'deny') continue;
      const missing = missingChecks(weaker, route);
      if (missing.length === 0) continue;
      const outcome = result === undefined ? 'not covered' : 'refused' in result ? 'refused' : result.route === route ? 'decided' : missingChecks(result.route, route).length > 0 ? 'not covered' : 'decided';
      findings.push({ protectedRoute: route, weaker, missing, sample: variant, outcome });
    }
  }
  return findings;
}

const OUTCOME_TEXT: Record<ShadowFinding['outcome'], (f: ShadowFinding) => string> = {
  decided: (f) => `decided on ${f.protectedRoute.id} by the path policy`,
  refused: () => 'refused 400 path_variant by the path policy',
  'not covered': (f) => `NOT covered by the path policy: it reaches ${f.weaker?.id ?? 'the upstream unmatched'} without ${f.missing.join(', ')}`,
};

/** One issue per (weaker route, protected route), at the weaker route's path (or `unmatched`). */
export function shadowingIssues(table: RouteTable): RawIssue[] {
  const grouped = new Map<string, ShadowFinding[]>();
  for (const finding of findShadowing(table)) {
    const key = `${finding.weaker?.index ?? -1} ${finding.protectedRoute.index}`;
    const list = grouped.get(key);
    if (list) list.push(finding);
    else grouped.set(key, [finding]);
  }
  return [...grouped.values()].map((list) => {
    const first = list[0]!;
    const who = first.weaker === undefined ? 'unmatched: pass would pass' : 'receives';
    const samples = list.map((f) => `${f.sample} (${OUTCOME_TEXT[f.outcome](f)})`).join('; ');
    return {
      path: first.weaker === undefined ? ['unmatched'] : ['routes', first.weaker.index, 'match', 'path'],
      message: `${who} variants of routes[${first.protectedRoute.index}] (id ${JSON.stringify(first.protectedRoute.id)})'s path without its ${first.missing.join(', ')}: ${samples}`,
    };
  });
}
