// Letting go of a replaced route table's filter instances (Filter.release).
import type { CompiledRoute } from './types.js';

/** Calls release() of every filter instance of `routes`, once each; returns what threw, for the caller to log. */
export function releaseFilters(routes: readonly CompiledRoute[]): { readonly routeId: string; readonly filter: string; readonly error: Error }[] {
  const failures: { routeId: string; filter: string; error: Error }[] = [];
  const released = new Set<object>();
  for (const route of routes) {
    for (const { name, filter } of route.filters) {
      if (filter.release === undefined || released.has(filter)) continue;
      released.add(filter);
      try {
        filter.release();
      } catch (error) {
        failures.push({ routeId: route.id, filter: name, error: error instanceof Error ? error : new Error(String(error)) });
      }
    }
  }
  return failures;
}
