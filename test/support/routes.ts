// A minimal route source for adapter tests: prefix routes built from filters given in the test, so
// the adapter is tested apart from the YAML config module.
import type { RouteMatch, Routes, RoutesSource } from '../../src/pipeline/routing.js';
import { CompiledChain } from '../../src/pipeline/chain.js';
import type { CompiledRoute, Filter, FilterNeeds } from '../../src/pipeline/types.js';
import { UNMATCHED_ROUTE_ID } from '../../src/pipeline/routing.js';
import { sanitizeFilter } from '../../src/filters/sanitize/sanitize.js';
import { createFilterDeps } from '../../src/filters/deps.js';

export interface TestRoute {
  id: string;
  prefix: string;
  filters: Filter[];
  needs?: FilterNeeds;
  budgetMs?: number;
  maxBodyBytes?: number;
}

export function testRoutes(list: TestRoute[], unmatched: 'deny' | 'pass' = 'deny'): RoutesSource {
  const compiled = list.map((r): [string, CompiledRoute] => {
    const filters = r.filters.map((filter, i) => ({ name: `test-${i}`, order: i, filter }));
    const route: CompiledRoute = {
      id: r.id,
      filters,
      chain: new CompiledChain(filters),
      needs: { requestBody: false, responseHeaders: true, responseBody: false, ...r.needs },
      budgetMs: r.budgetMs ?? 100,
      maxBodyBytes: r.maxBodyBytes ?? 1024 * 1024,
    };
    return [r.prefix, route];
  });
  // under unmatched: pass, the always-on baseline runs as the config module builds it
  const baseline = sanitizeFilter.create(sanitizeFilter.configSchema.parse({}), createFilterDeps());
  const baselineFilters = [{ name: sanitizeFilter.name, order: sanitizeFilter.order, filter: baseline }];
  const routes: Routes = {
    unmatched,
    unmatchedRoute: {
      id: UNMATCHED_ROUTE_ID,
      filters: baselineFilters,
      chain: new CompiledChain(baselineFilters),
      needs: { requestBody: false, responseHeaders: false, responseBody: false },
      budgetMs: 100,
      maxBodyBytes: 1024 * 1024,
    },
    match: ({ pathname }): RouteMatch | undefined => {
      const hit = compiled.find(([prefix]) => pathname.startsWith(prefix));
      return hit ? { route: hit[1], params: {}, pathTemplate: `${hit[0]}*` } : undefined;
    },
    byId: (id) => compiled.find(([, r]) => r.id === id)?.[1],
  };
  return { current: () => routes };
}
