// Checks across fields, on the config as written (before or without the schema's acceptance).
import { DEFAULTS } from '../defaults.js';

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

export interface CrossIssue {
  readonly path: readonly (string | number)[];
  readonly message: string;
}

/**
 * Checks across fields (duplicate route ids, a filter listed twice, budgets against Envoy's
 * timeout). They run on the config as written, whether or not the schema accepted it, so that one
 * load reports them together with the field errors; values of the wrong type are left to the schema.
 */
export function crossFieldIssues(raw: unknown): CrossIssue[] {
  const issues: CrossIssue[] = [];
  if (!isRecord(raw)) return issues;
  const envoy = raw.envoy;
  const timeout = isRecord(envoy) && envoy.messageTimeoutMs !== undefined ? envoy.messageTimeoutMs : DEFAULTS.messageTimeoutMs;
  const limit = typeof timeout === 'number' && Number.isInteger(timeout) && timeout > 0 ? timeout : undefined;
  const checkBudget = (budget: unknown, path: readonly (string | number)[]) => {
    if (limit !== undefined && typeof budget === 'number' && budget >= limit) {
      issues.push({ path, message: `${budget} ms must stay below envoy.messageTimeoutMs (${limit} ms), or Envoy gives up before gatehouse answers` });
    }
  };
  const defaults = raw.defaults;
  checkBudget(isRecord(defaults) && defaults.budgetMs !== undefined ? defaults.budgetMs : DEFAULTS.budgetMs, ['defaults', 'budgetMs']);
  if (isRecord(defaults)) duplicateFilters(defaults.filters, ['defaults', 'filters'], issues);
  if (!Array.isArray(raw.routes)) return issues;
  const ids = new Map<string, number>();
  raw.routes.forEach((route: unknown, i) => {
    if (!isRecord(route)) return;
    checkBudget(route.budgetMs, ['routes', i, 'budgetMs']);
    if (typeof route.id === 'string') {
      const first = ids.get(route.id);
      if (first !== undefined) issues.push({ path: ['routes', i, 'id'], message: `duplicate route id ${JSON.stringify(route.id)} (also routes[${first}])` });
      else ids.set(route.id, i);
    }
    duplicateFilters(route.filters, ['routes', i, 'filters'], issues);
  });
  return issues;
}

/** A filter named twice in one list (a route's, or defaults.filters): each runs once per route. */
function duplicateFilters(list: unknown, at: readonly (string | number)[], issues: CrossIssue[]): void {
  if (!Array.isArray(list)) return;
  const seen = new Map<string, number>();
  list.forEach((entry: unknown, k) => {
    if (!isRecord(entry)) return;
    const names = Object.keys(entry);
    if (names.length !== 1) return;
    const name = names[0]!;
    const first = seen.get(name);
    if (first !== undefined) issues.push({ path: [...at, k], message: `filter ${JSON.stringify(name)} is listed twice (also filters[${first}]); a route runs each filter once` });
    else seen.set(name, k);
  });
}
