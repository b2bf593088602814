// Route compilation: a validated config becomes a RouteTable (route-table.ts) once, at start and on
// each reload. Each route's filters are instantiated from their parsed configs (parseConfig parsed
// them; a hand-made config is parsed here, in the config file's directory), ordered, shadowed as the
// route says, and their needs united; its predicates are compiled (route-predicates.ts) and its path
// put in the path index (path-index.ts). checkRoutes: the load-time checks of the route list.
import { dirname, resolve } from 'node:path';
import { CompiledChain } from '../pipeline/chain.js';
import { configSchemaIn, parseFilterConfig, type FilterConfigScope } from '../pipeline/filter-config.js';
import { UNMATCHED_ROUTE_ID } from '../pipeline/routing.js';
import type { CompiledRoute, FilterDefinition, FilterDeps, FilterNeeds, RouteFilter } from '../pipeline/types.js';
import { ConfigValidationError, type ConfigError } from './errors.js';
import { issuesToErrors, type RawIssue } from './issues.js';
import { buildPathIndex, buildVariantIndex, pathLabel, type IndexEntry } from './path-index.js';
import { compileCandidate, type Candidate } from './route-predicates.js';
import { RouteTable } from './route-table.js';
import type { TableRoute } from './route-types.js';
import { shadowingIssues } from './shadowing.js';
import type { GatehouseConfig, RouteConfig, RouteFilterConfig } from './types.js';

export interface BuildOptions {
  /** the filters routes may name (FILTER_REGISTRY, passed in by the composition root) */
  readonly registry: ReadonlyMap<string, FilterDefinition>;
  readonly deps: FilterDeps;
}

export type BuildResult = { readonly ok: true; readonly table: RouteTable } | { readonly ok: false; readonly errors: readonly ConfigError[] };

const NO_NEEDS: Required<FilterNeeds> = Object.freeze({ requestBody: false, responseHeaders: false, responseBody: false });

/** Validate and instantiate every route's filters and build the matcher; errors name route and field. */
export function buildRouteTable(config: GatehouseConfig, options: BuildOptions): BuildResult {
  const { registry } = options;
  const file = config.source?.file ?? 'config';
  const issues: RawIssue[] = [];
  const candidates: IndexEntry<Candidate>[] = [];
  const routes: TableRoute[] = [];

  // An entry of defaults.filters, or an always-on filter's empty config, that fails to set up fails
  // on every route alike: reported once, at its own place.
  const reported = new Set<string>();
  const report = (issue: RawIssue, shared: boolean): void => {
    const key = JSON.stringify(issue.path);
    if (shared && reported.has(key)) return;
    reported.add(key);
    issues.push(issue);
  };

  const scope = { configDir: config.source === undefined ? undefined : dirname(resolve(config.source.file)) };
  // an entry shared by every route (defaults.filters, an always-on filter) is parsed once, not per route
  const parsedShared = new Map<RouteFilterConfig, ReturnType<FilterDefinition['configSchema']['safeParse']>>();
  const alwaysOn = alwaysOnEntries(registry);
  config.routes.forEach((route, index) => {
    const filters: RouteFilter[] = [];
    const seen = new Map<string, number>();
    let needs = NO_NEEDS;
    let failed = false;
    const parsedConfigs = new Map<string, unknown>();
    const routeChecks: (() => void)[] = [];
    for (const { entry, at: entryAt, shared } of effectiveFilters(route, config, alwaysOn, index)) {
      const at = [...entryAt];
      const first = shared ? undefined : seen.get(entry.name);
      if (first !== undefined) {
        report({ path: at, message: `filter ${JSON.stringify(entry.name)} is listed twice (also filters[${first}]); a route runs each filter once` }, shared);
        failed = true;
        continue;
      }
      if (!shared) seen.set(entry.name, at.at(-1) as number);
      const definition = registry.get(entry.name);
      if (!definition) {
        report({ path: [...at, entry.name], message: `unknown filter ${JSON.stringify(entry.name)}; known filters: ${[...registry.keys()].sort().join(', ')}` }, shared);
        failed = true;
        continue;
      }
      let parsed: ReturnType<typeof definition.configSchema.safeParse>;
      try {
        // parseConfig parsed it already (and read its files); a hand-made config is parsed here
        const known = entry.parsed === undefined ? (shared ? parsedShared.get(entry) : undefined) : { success: true as const, data: entry.parsed.value };
        parsed = known ?? parseFilterConfig(configSchemaIn(definition), entry.config ?? {}, scope);
        if (shared) parsedShared.set(entry, parsed);
      } catch (err) {
        report({ path: [...at, entry.name], message: `the filter's config check failed: ${err instanceof Error ? err.message : String(err)}` }, shared);
        failed = true;
        continue;
      }
      if (!parsed.success) {
        for (const issue of parsed.error.issues) report({ path: [...at, entry.name, ...issue.path], message: '', zod: issue }, shared);
        failed = true;
        continue;
      }
      const filterConfig: unknown = parsed.data;
      parsedConfigs.set(definition.name, filterConfig);
      if (definition.checkRoute) {
        routeChecks.push(() => {
          const problem = definition.checkRoute?.(filterConfig, parsedConfigs);
          if (problem !== undefined) {
            report({ path: [...at, entry.name], message: problem }, shared);
            failed = true;
          }
        });
      }
      try {
        const wanted = definition.needs(parsed.data);
        needs = {
          requestBody: needs.requestBody || wanted.requestBody === true,
          responseHeaders: needs.responseHeaders || wanted.responseHeaders === true,
          responseBody: needs.responseBody || wanted.responseBody === true,
        };
        filters.push(Object.freeze({ name: definition.name, order: definition.order, filter: definition.create(parsed.data, options.deps) }));
      } catch (err) {
        report({ path: [...at, entry.name], message: `could not be set up: ${err instanceof Error ? err.message : String(err)}` }, shared);
        failed = true;
      }
    }
    for (const check of routeChecks) check();
    const running = new Set(filters.map((f) => f.name));
    (route.shadowFilters ?? []).forEach((name, k) => {
      if (running.has(name)) return;
      issues.push({ path: ['routes', index, 'shadowFilters', k], message: `${JSON.stringify(name)} is not a filter this route runs (${[...running].sort().join(', ')})` });
      failed = true;
    });
    if (failed) return;
    // stable: filters of equal order keep their listed order
    filters.sort((a, b) => a.order - b.order);
    // a shadow route tries its own filters; the always-on baseline keeps enforcing unless listed
    const shadow =
      route.mode === 'shadow'
        ? new Set([...running].filter((name) => registry.get(name)?.alwaysOn !== true || route.shadowFilters?.includes(name) === true))
        : route.shadowFilters === undefined
          ? undefined
          : new Set(route.shadowFilters);
    const tableRoute: TableRoute = Object.freeze({
      id: route.id,
      index,
      filters: Object.freeze(filters),
      chain: new CompiledChain(filters, shadow),
      needs: Object.freeze({ ...needs }),
      budgetMs: route.budgetMs ?? config.defaults.budgetMs,
      maxBodyBytes: route.maxBodyBytes ?? config.defaults.maxBodyBytes,
      ...(shadow === undefined ? {} : { shadow }),
      pathTemplate: pathLabel(route.match.path),
      match: route.match,
    });
    routes.push(tableRoute);
    try {
      candidates.push({ index, path: route.match.path, item: compileCandidate(tableRoute) });
    } catch (err) {
      issues.push({ path: ['routes', index, 'match'], message: err instanceof Error ? err.message : String(err) });
    }
  });

  const built = buildPathIndex(candidates);
  issues.push(...built.issues);
  const table = issues.length === 0 ? new RouteTable(config, routes, built.index, buildVariantIndex(candidates), unmatchedRoute(config, registry, options.deps, scope)) : undefined;
  // pathPolicy.shadowing: refuse — a config that relies on the path policy to keep variants off weaker routes is an error
  if (table && config.pathPolicy?.shadowing === 'refuse') issues.push(...shadowingIssues(table));
  if (!table || issues.length > 0) {
    // the routes in the shape they were written, so messages can quote ids and offending values
    const written = {
      defaults: { filters: config.defaults.filters.map((f) => ({ [f.name]: f.config })) },
      routes: config.routes.map((r) => ({ id: r.id, filters: r.filters.map((f) => ({ [f.name]: f.config })) })),
    };
    return { ok: false, errors: issuesToErrors(file, written, issues) };
  }
  return { ok: true, table };
}

/**
 * The chain of a request no route matches (`unmatched: pass`): the always-on filters only, each with
 * its defaults.filters entry when there is one. Those entries were validated with the routes above.
 */
function unmatchedRoute(config: GatehouseConfig, registry: ReadonlyMap<string, FilterDefinition>, deps: FilterDeps, scope: FilterConfigScope): CompiledRoute {
  const filters: RouteFilter[] = [];
  for (const definition of registry.values()) {
    if (definition.alwaysOn !== true) continue;
    const entry = config.defaults.filters.find((f) => f.name === definition.name);
    let filterConfig = entry?.parsed?.value;
    if (filterConfig === undefined) {
      const parsed = parseFilterConfig(configSchemaIn(definition), entry?.config ?? {}, scope);
      if (!parsed.success) throw new Error(`the ${definition.name} baseline for unmatched requests: ${parsed.error.message}`);
      filterConfig = parsed.data;
    }
    filters.push(Object.freeze({ name: definition.name, order: definition.order, filter: definition.create(filterConfig, deps) }));
  }
  filters.sort((a, b) => a.order - b.order);
  return Object.freeze({ id: UNMATCHED_ROUTE_ID, filters: Object.freeze(filters), chain: new CompiledChain(filters), needs: NO_NEEDS, budgetMs: config.defaults.budgetMs, maxBodyBytes: config.defaults.maxBodyBytes });
}

interface EffectiveFilter {
  readonly entry: RouteFilterConfig;
  /** where its config was written, for messages */
  readonly at: readonly (string | number)[];
  /** from defaults.filters or always on: the same entry for every route */
  readonly shared: boolean;
}

/**
 * The filters a route runs: its own entries; then each entry of defaults.filters it does not list
 * itself; then each always-on filter named in neither, with the empty config.
 */
function effectiveFilters(route: RouteConfig, config: GatehouseConfig, alwaysOn: readonly RouteFilterConfig[], index: number): EffectiveFilter[] {
  const out: EffectiveFilter[] = route.filters.map((entry, k) => ({ entry, at: ['routes', index, 'filters', k], shared: false }));
  const named = new Set(route.filters.map((f) => f.name));
  config.defaults.filters.forEach((entry, k) => {
    if (named.has(entry.name)) return;
    named.add(entry.name);
    out.push({ entry, at: ['defaults', 'filters', k], shared: true });
  });
  for (const entry of alwaysOn) {
    if (!named.has(entry.name)) out.push({ entry, at: ['defaults', 'filters'], shared: true });
  }
  return out;
}

/** one empty-config entry per always-on filter, shared by every route of a build */
function alwaysOnEntries(registry: ReadonlyMap<string, FilterDefinition>): RouteFilterConfig[] {
  return [...registry.values()].filter((definition) => definition.alwaysOn === true).map((definition) => ({ name: definition.name, config: {} }));
}

/** As buildRouteTable, but throws ConfigValidationError (carrying every error) on a bad config. */
export function compileRouteTable(config: GatehouseConfig, registry: ReadonlyMap<string, FilterDefinition>, deps: FilterDeps): RouteTable {
  const built = buildRouteTable(config, { registry, deps });
  if (!built.ok) throw new ConfigValidationError(built.errors);
  return built.table;
}

/**
 * Path checks that need the whole route list (template syntax, template shape clashes) and
 * warnings about routes that can never match. Used by parseConfig so that a load reports them.
 */
export function checkRoutes(routes: readonly RouteConfig[]): { issues: RawIssue[]; warnings: RawIssue[] } {
  const { issues } = buildPathIndex(routes.map((r, index) => ({ index, path: r.match.path, item: r })));
  const warnings: RawIssue[] = [];
  const unconditional = (r: RouteConfig) => !r.match.hosts && !r.match.methods && !r.match.headers && !r.match.query;
  // routes on one path are tried in config order: one without predicates hides the later ones
  const firstUnconditional = new Map<string, number>();
  routes.forEach((r, index) => {
    const key = `${r.match.path.kind} ${r.match.path.value}`;
    const hider = firstUnconditional.get(key);
    if (hider !== undefined) {
      warnings.push({ path: ['routes', index, 'match', 'path'], message: `can never match: routes[${hider}] has the same path and no other predicates, and routes on one path are tried in config order` });
    } else if (unconditional(r)) firstUnconditional.set(key, index);
  });
  // a predicate-free catch-all prefix "/" takes every request before any regex route is tried
  const catchAll = firstUnconditional.get('prefix /');
  if (catchAll !== undefined) {
    routes.forEach((r, index) => {
      if (r.match.path.kind === 'regex') {
        warnings.push({ path: ['routes', index, 'match', 'path', 'regex'], message: `can never match: regex paths are tried after prefixes, and routes[${catchAll}] (prefix "/" with no other predicates) takes every request first` });
      }
    });
  }
  return { issues, warnings };
}
