// Matching: the route for a request, from a table routes.ts compiled; the hot path only looks things
// up. Precedence (docs/config.md "Route matching"):
//
//   1. exact paths       (a hash lookup)
//   2. templates         (find-my-way: a literal segment beats a parameter, a constrained parameter
//                         beats a plain one, left to right)
//   3. prefixes          (find-my-way wildcards: the longest prefix first)
//   4. regex paths       (in config order)
//
// Routes with the very same path are tried in config order. A route is chosen only when its other
// predicates (hosts, methods, headers, query: route-predicates.ts) hold too; when they do not,
// matching falls back to the next candidate that also covers the path, in the order above, rather
// than failing (path-index.ts).
//
// The path policy (docs/security.md "Path policy"): the path is canonicalized once (pipeline/path.ts),
// then matched; when it has a variant form an upstream framework may route to the same handler
// (trailing slash, case, trailing dot, `.suffix`), the folded form is matched too, against a second
// index of the routes' folded paths. When that finds a route with a security filter the first match
// lacks (or there was none), the request is decided on that route if the route accepts the variant
// (`match.trailingSlash`, `match.caseSensitive`), and refused 400 path_variant otherwise: a variant
// never moves a request to a route with fewer checks.
import FindMyWay from 'find-my-way';
import { canonicalizePath, pathVariant, type PathVariant } from '../pipeline/path.js';
import type { RouteMatchInput, Routes } from '../pipeline/routing.js';
import type { CompiledRoute } from '../pipeline/types.js';
import { lookup, NOOP_HANDLER, ROUTER_OPTIONS, trimSlash, type PathIndex } from './path-index.js';
import { MatchState, type Candidate } from './route-predicates.js';
import type { MatchResult, MatchTrace, RouteTableView, TableRoute } from './route-types.js';
import { missingChecks } from './shadowing.js';
import type { GatehouseConfig, Unmatched } from './types.js';

/**
 * How a request that reached a route only through its folded path relates to the route's own path:
 * `differs` false when it is the route's path as written (then it is no variant of it: the direct
 * match chose another route by precedence), else `refusal`: undefined when the route accepts the
 * variant, or why not (the refusal's detail).
 */
type VariantRule = (variant: PathVariant) => { readonly differs: boolean; readonly refusal?: string };

function variantRule(route: TableRoute): VariantRule {
  const { kind, value } = route.match.path;
  const caseSensitive = route.match.caseSensitive ?? true;
  const slashStrict = (route.match.trailingSlash ?? 'match') === 'refuse';
  // the route's own case-sensitive matcher for its slash-less path
  let sameCase: (v: PathVariant) => boolean;
  let slashDiffers: (v: PathVariant) => boolean;
  if (kind === 'template') {
    const own = FindMyWay(ROUTER_OPTIONS);
    own.on('GET', trimSlash(value), NOOP_HANDLER);
    sameCase = (v) => own.find('GET', v.routerPath) !== null;
    slashDiffers = (v) => v.trailingSlash !== (value.length > 1 && value.endsWith('/'));
  } else if (kind === 'prefix') {
    const withSlash = (v: PathVariant) => (v.trailingSlash ? `${v.path}/` : v.path);
    sameCase = (v) => withSlash(v).startsWith(value) || v.path === trimSlash(value);
    slashDiffers = (v) => !withSlash(v).toLowerCase().startsWith(value.toLowerCase());
  } else {
    sameCase = (v) => v.path === trimSlash(value);
    slashDiffers = (v) => v.trailingSlash !== (value.length > 1 && value.endsWith('/'));
  }
  const id = JSON.stringify(route.id);
  return (v) => {
    if (v.suffix) return { differs: true, refusal: `the path is a variant (trailing dot or ".suffix") of route ${id}'s path; send the route's own path` };
    const caseDiffers = !sameCase(v);
    const slash = slashDiffers(v);
    if (caseSensitive && caseDiffers) return { differs: true, refusal: `the path differs only in case from route ${id}'s path, which is case-sensitive (match.caseSensitive)` };
    if (slashStrict && slash) return { differs: true, refusal: `the path differs only in its trailing slash from route ${id}'s path, which refuses that (match.trailingSlash: refuse)` };
    return { differs: caseDiffers || slash };
  };
}

export class RouteTable implements Routes, RouteTableView {
  /** every route, in config order */
  readonly routes: readonly TableRoute[];
  readonly unmatched: Unmatched;
  readonly unmatchedRoute: CompiledRoute;
  /** the config this table was compiled from */
  readonly config: GatehouseConfig;
  private readonly ids: ReadonlyMap<string, TableRoute>;
  private readonly index: PathIndex<Candidate>;
  private readonly variantIndex: PathIndex<Candidate>;
  private readonly variantRules: ReadonlyMap<CompiledRoute, VariantRule>;
  /** canonical paths that are a route's path without its trailing slash (`/a` for prefix `/a/`): they have a variant too */
  private readonly slashless: ReadonlySet<string>;
  /** some route's path has upper case: a lower-case request may be a variant of it, so every request is folded */
  private readonly foldAlways: boolean;

  /** @internal use compileRouteTable / buildRouteTable */
  constructor(config: GatehouseConfig, routes: readonly TableRoute[], index: PathIndex<Candidate>, variantIndex: PathIndex<Candidate>, unmatchedRoute: CompiledRoute) {
    this.config = config;
    this.routes = Object.freeze([...routes]);
    this.unmatched = config.unmatched;
    this.unmatchedRoute = unmatchedRoute;
    this.ids = new Map(routes.map((r) => [r.id, r]));
    this.index = index;
    this.variantIndex = variantIndex;
    this.variantRules = new Map(routes.map((r) => [r, variantRule(r)]));
    this.slashless = new Set(routes.filter((r) => r.match.path.kind !== 'regex' && r.match.path.kind !== 'template' && trimSlash(r.match.path.value) !== r.match.path.value).map((r) => trimSlash(r.match.path.value)));
    this.foldAlways = routes.some((r) => {
      const { kind, value } = r.match.path;
      if (kind === 'regex') return false;
      // a template's parameter names (`:accountId`) and constraints are not path text
      const literal = kind === 'template' ? value.replace(/:[A-Za-z_][A-Za-z0-9_]*(\([^)]*\))?/g, '') : value;
      return literal.toLowerCase() !== literal;
    });
    Object.freeze(this);
  }

  /** a route named by id, e.g. from Envoy per-route metadata */
  byId(id: string): TableRoute | undefined {
    return this.ids.get(id);
  }

  /**
   * The route for a request, `undefined` when none matches (then `unmatched` decides), or a refusal
   * when the path is malformed or ambiguous, or a variant of a protected route's path that the route
   * does not accept (deny it with `refused` as the reason: 400).
   */
  match(req: RouteMatchInput): MatchResult {
    return this.resolve(req, undefined);
  }

  /** As match, recording each step in `trace` (for --explain; never on the request path). */
  explain(req: RouteMatchInput): { result: MatchResult; trace: MatchTrace } {
    const trace: MatchTrace = {};
    return { result: this.resolve(req, trace), trace };
  }

  private resolve(req: RouteMatchInput, trace: MatchTrace | undefined): MatchResult {
    const canonical = canonicalizePath(req.pathname);
    if (!canonical.ok) return { refused: 'bad_request_headers', detail: canonical.reason };
    const state = new MatchState(req);
    const { path, routerPath } = canonical;
    const direct = lookup(this.index, path, routerPath, path, state);
    if (trace) {
      trace.canonicalPath = path;
      if (direct) trace.direct = direct;
    }
    // the common case: nothing to fold, one lookup
    const forced = this.foldAlways || this.slashless.has(path);
    if (!canonical.variant && !forced) return direct;
    const variant = pathVariant(path, routerPath) ?? (forced ? { path, routerPath, key: path.toLowerCase(), trailingSlash: false, suffix: false } : undefined);
    if (!variant) return direct;
    // Only a route with a check the direct match lacks matters, and only when the variant is not
    // that route's own path: the first such one in precedence order, beyond each of `weaker`.
    const rules = this.variantRules;
    const strongerViaVariant = (...weaker: (TableRoute | undefined)[]) =>
      lookup(this.variantIndex, variant.key, variant.routerPath, variant.path, state, (route) => weaker.every((w) => missingChecks(w, route).length > 0) && rules.get(route)?.(variant).differs === true);
    const viaVariant = strongerViaVariant(direct?.route);
    if (trace) {
      trace.variant = variant;
      if (viaVariant) trace.viaVariant = viaVariant;
    }
    if (!viaVariant) {
      if (trace) trace.policy = 'no route its variant form reaches has a check the direct match lacks: the direct match stands';
      return direct;
    }
    // two protected routes the variant form reaches, with different checks: which handler the upstream
    // picks is its own business, so neither decision is safe
    const chosen = viaVariant.route;
    const rival = direct !== undefined && missingChecks(chosen, direct.route).length > 0 ? direct : strongerViaVariant(direct?.route, chosen);
    if (rival) {
      const detail = `the path is a variant of both route ${JSON.stringify(chosen.id)}'s and route ${JSON.stringify(rival.route.id)}'s paths, whose checks differ`;
      if (trace) trace.policy = `refused: ${detail}`;
      return { refused: 'path_variant', detail };
    }
    const missing = missingChecks(direct?.route, viaVariant.route);
    const refusal = rules.get(viaVariant.route)?.(variant).refusal;
    if (refusal !== undefined) {
      if (trace) trace.policy = `refused: ${refusal}`;
      return { refused: 'path_variant', detail: refusal };
    }
    if (trace) trace.policy = `decided on ${viaVariant.route.id}: ${direct ? `route ${direct.route.id}` : 'no route'} would skip ${missing.join(', ')}, and ${viaVariant.route.id} accepts this variant of its path`;
    return viaVariant;
  }

}
