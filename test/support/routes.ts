// A minimal route source for adapter tests: prefix routes built from filters given in the test, so
// the adapter is tested apart from the YAML config module.
import type { RouteMatch, Routes, RoutesSource } from '../../src/pipeline/routing.js';
import type { CompiledRoute, Filter, FilterNeeds } from '../../src/pipeline/types.js';

export interface TestRoute {
  id: string;
  prefix: string;
  filters: Filter[];
  needs?: FilterNeeds;
  budgetMs?: number;
  maxBodyBytes?: number;
}

export function testRoutes(list: TestRoute[], unmatched: 'deny' | 'pass' = 'deny'): RoutesSource {
  const compiled = list.map((r): [string, CompiledRoute] => [
    r.prefix,
    {
      id: r.id,
      filters: r.filters.map((filter, i) => ({ name: `test-${i}`, order: i, filter })),
      needs: { requestBody: false, responseHeaders: true, responseBody: false, ...r.needs },
      budgetMs: r.budgetMs ?? 100,
      maxBodyBytes: r.maxBodyBytes ?? 1024 * 1024,
    },
  ]);
  const routes: Routes = {
    unmatched,
    match: ({ path }): RouteMatch | undefined => {
      const hit = compiled.find(([prefix]) => path.startsWith(prefix));
      return hit ? { route: hit[1], params: {}, pathTemplate: `${hit[0]}*` } : undefined;
    },
    byId: (id) => compiled.find(([, r]) => r.id === id)?.[1],
  };
  return { current: () => routes };
}
