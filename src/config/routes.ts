// Route compilation and matching. A validated config becomes a RouteTable once (at start and on each
// reload); the hot path only looks things up. Precedence (docs/config.md "Route matching"):
//
//   1. exact paths       (a hash lookup)
//   2. templates         (find-my-way: a literal segment beats a parameter, a constrained parameter
//                         beats a plain one, left to right)
//   3. prefixes          (find-my-way wildcards: the longest prefix first)
//   4. regex paths       (in config order)
//
// Routes with the very same path are tried in config order. A route is chosen only when its other
// predicates (hosts, methods, headers, query) hold too; when they do not, matching falls back to the
// next candidate that also covers the path, in the order above, rather than failing.
//
// The path policy (docs/security.md "Path policy"): the path is canonicalized once (path.ts), then
// matched; when it has a variant form an upstream framework may route to the same handler (trailing
// slash, case, trailing dot, `.suffix`), the folded form is matched too, against a second index of
// the routes' folded paths. When that finds a route with a security filter the first match lacks
// (or there was none), the request is decided on that route if the route accepts the variant
// (`match.trailingSlash`, `match.caseSensitive`), and refused 400 path_variant otherwise: a variant
// never moves a request to a route with fewer checks.
import FindMyWay from 'find-my-way';
import type { CompiledRoute, FilterDefinition, FilterDeps, FilterNeeds, RouteFilter } from '../pipeline/types.js';
import { ConfigValidationError, type ConfigError } from './errors.js';
import { issuesToErrors, type RawIssue } from './issues.js';
import { canonicalizePath, pathVariant, type PathVariant } from '../pipeline/path.js';
import { missingChecks, shadowingIssues } from './shadowing.js';
import type { GatehouseConfig, NamedPredicate, PathMatch, RouteConfig, RouteFilterConfig, Unmatched } from './types.js';
import { compileRegex } from './values.js';
import { dirname, resolve } from 'node:path';
import { parseFilterConfig, type FilterConfigScope } from '../pipeline/filter-config.js';
import { UNMATCHED_ROUTE_ID } from '../pipeline/routing.js';
import type { MatchRequest, MatchResult, MatchTrace, RouteMatch, TableRoute } from './route-types.js';

export type { MatchRequest, MatchResult, MatchTrace, PathRefusal, RouteMatch, TableRoute } from './route-types.js';

// ---- predicates ----------------------------------------------------------------------------------------

type ValueTest = (value: string | undefined) => boolean;

interface CompiledNamed {
  readonly name: string;
  readonly test: ValueTest;
}

interface HostMatcher {
  readonly any: boolean;
  readonly exact: ReadonlySet<string>;
  /** `.example.com` for `*.example.com` */
  readonly suffixes: readonly string[];
}

interface Candidate {
  readonly route: TableRoute;
  readonly hosts: HostMatcher | null;
  readonly methods: ReadonlySet<string> | null;
  readonly headers: readonly CompiledNamed[];
  readonly query: readonly CompiledNamed[];
}

function compileValueTest(p: NamedPredicate): ValueTest {
  switch (p.kind) {
    case 'exact': {
      const want = p.value;
      return (v) => v === want;
    }
    case 'prefix': {
      const want = p.value;
      return (v) => v !== undefined && v.startsWith(want);
    }
    case 'regex': {
      const compiled = compileRegex(p.value);
      // validated at load; a failure here means the config was built by hand
      if (!compiled.ok) throw new Error(compiled.message);
      const re = compiled.value;
      return (v) => v !== undefined && re.test(v);
    }
    case 'present': {
      const want = p.value;
      return (v) => (v !== undefined) === want;
    }
  }
}

function compileHosts(hosts: readonly string[] | undefined): HostMatcher | null {
  if (!hosts) return null;
  const exact = new Set<string>();
  const suffixes: string[] = [];
  let any = false;
  for (const host of hosts) {
    if (host === '*') any = true;
    else if (host.startsWith('*.')) suffixes.push(host.slice(1));
    else exact.add(host);
  }
  return { any, exact, suffixes };
}

/** `:authority` → lower-case host without port or trailing dot */
export function normalizeAuthority(authority: string): string {
  let host = authority;
  if (host.charCodeAt(0) === 0x5b) {
    const end = host.indexOf(']');
    if (end !== -1) host = host.slice(0, end + 1);
  } else {
    const colon = host.lastIndexOf(':');
    if (colon !== -1) host = host.slice(0, colon);
  }
  if (host.endsWith('.')) host = host.slice(0, -1);
  return host.toLowerCase();
}

function hostMatches(m: HostMatcher, host: string): boolean {
  if (m.any || m.exact.has(host)) return true;
  for (const suffix of m.suffixes) if (host.length > suffix.length && host.endsWith(suffix)) return true;
  return false;
}

function parseQuery(query: string): Map<string, string> {
  const out = new Map<string, string>();
  if (query === '') return out;
  for (const part of query.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const name = decodeQueryComponent(eq === -1 ? part : part.slice(0, eq));
    if (!out.has(name)) out.set(name, eq === -1 ? '' : decodeQueryComponent(part.slice(eq + 1)));
  }
  return out;
}

function decodeQueryComponent(s: string): string {
  const plus = s.includes('+') ? s.replace(/\+/g, ' ') : s;
  if (!plus.includes('%')) return plus;
  try {
    return decodeURIComponent(plus);
  } catch {
    return plus;
  }
}

/** Per-request facts, computed at most once and only when some candidate asks. */
class MatchState {
  private hostValue: string | undefined;
  private queryValue: Map<string, string> | undefined;

  constructor(
    readonly req: MatchRequest,
    private readonly rawQuery: string,
  ) {}

  get host(): string {
    return (this.hostValue ??= normalizeAuthority(this.req.authority));
  }

  queryParam(name: string): string | undefined {
    this.queryValue ??= parseQuery(this.rawQuery);
    return this.queryValue.get(name);
  }

  header(name: string): string | undefined {
    const values = this.req.headers.getAll(name);
    if (values.length <= 1) return values[0];
    return values.join(',');
  }
}

function candidateMatches(c: Candidate, s: MatchState): boolean {
  if (c.methods && !c.methods.has(s.req.method)) return false;
  if (c.hosts && !hostMatches(c.hosts, s.host)) return false;
  for (const h of c.headers) if (!h.test(s.header(h.name))) return false;
  for (const q of c.query) if (!q.test(s.queryParam(q.name))) return false;
  return true;
}

// ---- the path index ----------------------------------------------------------------------------------

type Router = FindMyWay.Instance<FindMyWay.HTTPVersion.V1>;

const NOOP_HANDLER = (): void => undefined;
const EMPTY_PARAMS: Readonly<Record<string, string>> = Object.freeze({});
const ROUTER_OPTIONS = { maxParamLength: 8192, caseSensitive: true, ignoreTrailingSlash: false, ignoreDuplicateSlashes: false, querystringParser: () => EMPTY_PARAMS } as const;
/** the variant index: literal parts compared case-insensitively, parameters keep their case */
const VARIANT_ROUTER_OPTIONS = { ...ROUTER_OPTIONS, caseSensitive: false } as const;

/** `/a/` → `/a`; `/` stays */
function trimSlash(path: string): string {
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
}

interface Bucket<T> {
  readonly label: string;
  /** config index of the first route with this path: the tie-break between buckets */
  readonly firstIndex: number;
  readonly items: T[];
}

interface TemplateBucket<T> extends Bucket<T> {
  readonly router: Router;
  readonly rank: readonly (readonly [number, string])[];
  fallbacks: TemplateBucket<T>[];
}

interface PrefixBucket<T> extends Bucket<T> {
  readonly prefix: string;
  fallbacks: PrefixBucket<T>[];
}

interface RegexBucket<T> extends Bucket<T> {
  readonly regex: RegExp;
}

interface PathIndex<T> {
  readonly exact: Map<string, Bucket<T>>;
  readonly templates: Router | null;
  readonly prefixes: Router | null;
  readonly regexes: readonly RegexBucket<T>[];
}

function pathLabel(path: PathMatch): string {
  switch (path.kind) {
    case 'exact':
    case 'template':
    case 'regex':
      return path.value;
    case 'prefix':
      return `${path.value}*`;
  }
}

/** Sort key of a template: per segment, 0 literal, 1 constrained param(s), 2 plain param(s). */
function templateRank(template: string): [number, string][] {
  return template
    .split('/')
    .slice(1)
    .map((segment): [number, string] => (segment.includes(':') ? [segment.includes('(') ? 1 : 2, ''] : [0, segment]));
}

function compareRank(a: TemplateBucket<unknown>, b: TemplateBucket<unknown>): number {
  const n = Math.min(a.rank.length, b.rank.length);
  for (let i = 0; i < n; i++) {
    const [ka, ta] = a.rank[i]!;
    const [kb, tb] = b.rank[i]!;
    if (ka !== kb) return ka - kb;
    if (ta !== tb) return ta < tb ? -1 : 1;
  }
  return b.rank.length - a.rank.length || a.firstIndex - b.firstIndex;
}

/** the template with parameter names erased: `/a/:id` and `/a/:key` have one shape */
function templateShape(template: string): string {
  return template.replace(/:[A-Za-z_][A-Za-z0-9_]*/g, ':');
}

function literalHead(template: string): string {
  const i = template.search(/[:(]/);
  return i === -1 ? template : template.slice(0, i);
}

/** Conservative: could one path match both templates? (params never span a `/`) */
function templatesMayOverlap(a: string, b: string): boolean {
  if (a.split('/').length !== b.split('/').length) return false;
  const ha = literalHead(a);
  const hb = literalHead(b);
  return ha.startsWith(hb) || hb.startsWith(ha);
}

interface IndexEntry<T> {
  readonly index: number;
  readonly path: PathMatch;
  readonly item: T;
}

/** Builds the path index; template errors and shape clashes come back as issues (path from the config root). */
function buildPathIndex<T>(entries: readonly IndexEntry<T>[]): { index: PathIndex<T>; issues: RawIssue[] } {
  return buildIndex(entries, false);
}

/**
 * The variant index: the routes' paths folded as pathVariant folds a request's (no trailing slash,
 * lower-cased exact keys, case-insensitive routers); a prefix `/a/` also answers `/a`. Regex paths
 * are not in it (a regex says itself which spellings it takes). Its issues are those of the main index.
 */
function buildVariantIndex<T>(entries: readonly IndexEntry<T>[]): PathIndex<T> {
  const folded: IndexEntry<T>[] = [];
  for (const entry of entries) {
    const { kind, value } = entry.path;
    if (kind === 'regex') continue;
    if (kind === 'prefix') {
      folded.push(entry);
      if (value.length > 1 && value.endsWith('/')) folded.push({ ...entry, path: { kind: 'exact', value: trimSlash(value) } });
    } else folded.push({ ...entry, path: { kind, value: trimSlash(value) } });
  }
  return buildIndex(folded, true).index;
}

function buildIndex<T>(entries: readonly IndexEntry<T>[], variants: boolean): { index: PathIndex<T>; issues: RawIssue[] } {
  const issues: RawIssue[] = [];
  const exact = new Map<string, Bucket<T>>();
  const templateByText = new Map<string, TemplateBucket<T>>();
  const prefixByText = new Map<string, PrefixBucket<T>>();
  const regexByText = new Map<string, RegexBucket<T>>();
  const routerOptions = variants ? VARIANT_ROUTER_OPTIONS : ROUTER_OPTIONS;
  const templates = FindMyWay(routerOptions);
  const prefixes = FindMyWay(routerOptions);
  const textKey = (text: string) => (variants ? text.toLowerCase() : text);

  for (const { index, path, item } of entries) {
    const at = ['routes', index, 'match', 'path', path.kind];
    switch (path.kind) {
      case 'exact': {
        const key = textKey(path.value);
        const bucket = exact.get(key);
        if (bucket) bucket.items.push(item);
        else exact.set(key, { label: path.value, firstIndex: index, items: [item] });
        break;
      }
      case 'template': {
        const existing = templateByText.get(textKey(path.value));
        if (existing) {
          existing.items.push(item);
          break;
        }
        const own = FindMyWay(routerOptions);
        try {
          own.on('GET', path.value, NOOP_HANDLER);
        } catch (err) {
          issues.push({ path: at, message: `is not a valid path template: ${err instanceof Error ? err.message : String(err)}` });
          break;
        }
        const bucket: TemplateBucket<T> = { label: path.value, firstIndex: index, items: [item], router: own, rank: templateRank(path.value), fallbacks: [] };
        try {
          templates.on('GET', path.value, NOOP_HANDLER, bucket);
        } catch {
          // folded, two templates of one shape may differ only in case: the first one answers for both
          if (variants) break;
          // find-my-way refuses two templates of one shape (`/a/:id` and `/a/:key`): it could not tell them apart
          const clash = [...templateByText.values()].find((b) => templateShape(b.label) === templateShape(path.value));
          issues.push({
            path: at,
            message: clash
              ? `has the same shape as routes[${clash.firstIndex}]'s template ${JSON.stringify(clash.label)}; routes on one path shape must use the same template text (parameter names included)`
              : 'clashes with another template',
          });
          break;
        }
        templateByText.set(textKey(path.value), bucket);
        break;
      }
      case 'prefix': {
        const existing = prefixByText.get(textKey(path.value));
        if (existing) {
          existing.items.push(item);
          break;
        }
        const bucket: PrefixBucket<T> = { label: `${path.value}*`, firstIndex: index, items: [item], prefix: path.value, fallbacks: [] };
        prefixes.on('GET', `${path.value.replace(/:/g, '::')}*`, NOOP_HANDLER, bucket);
        prefixByText.set(textKey(path.value), bucket);
        break;
      }
      case 'regex': {
        const existing = regexByText.get(path.value);
        if (existing) {
          existing.items.push(item);
          break;
        }
        const compiled = compileRegex(path.value);
        if (!compiled.ok) {
          issues.push({ path: at, message: compiled.message });
          break;
        }
        regexByText.set(path.value, { label: path.value, firstIndex: index, items: [item], regex: compiled.value });
        break;
      }
    }
  }

  const templateBuckets = [...templateByText.values()].sort(compareRank);
  for (const bucket of templateBuckets) {
    bucket.fallbacks = templateBuckets.filter((other) => other !== bucket && templatesMayOverlap(textKey(other.label), textKey(bucket.label)));
  }
  const prefixBuckets = [...prefixByText.values()].sort((a, b) => b.prefix.length - a.prefix.length);
  for (const bucket of prefixBuckets) {
    bucket.fallbacks = prefixBuckets.filter((other) => other !== bucket && textKey(bucket.prefix).startsWith(textKey(other.prefix)));
  }
  const regexes = [...regexByText.values()].sort((a, b) => a.firstIndex - b.firstIndex);
  templates.compile();
  prefixes.compile();
  return {
    index: { exact, templates: templateByText.size > 0 ? templates : null, prefixes: prefixByText.size > 0 ? prefixes : null, regexes },
    issues,
  };
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

function hasEmptyParam(params: Readonly<Record<string, string | undefined>>): boolean {
  for (const key in params) if (params[key] === '') return true;
  return false;
}

// ---- the table ---------------------------------------------------------------------------------------

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

/**
 * The first route in precedence order covering the path whose predicates hold (and that `accept`s,
 * when given: the variant lookup only looks for routes stronger than the direct match).
 */
function lookup(index: PathIndex<Candidate>, exactKey: string, routerPath: string, regexPath: string, state: MatchState, accept?: (route: TableRoute) => boolean): RouteMatch | undefined {
  const exact = index.exact.get(exactKey);
  if (exact) {
    const found = firstMatching(exact, state, EMPTY_PARAMS, accept);
    if (found) return found;
  }

  if (index.templates) {
    const hit = index.templates.find('GET', routerPath);
    if (hit) {
      const bucket = hit.store as TemplateBucket<Candidate>;
      const params = hit.params as Record<string, string>;
      const found = hasEmptyParam(params) ? undefined : firstMatching(bucket, state, params, accept);
      if (found) return found;
      for (const fallback of bucket.fallbacks) {
        const other = fallback.router.find('GET', routerPath);
        if (!other) continue;
        const otherParams = other.params as Record<string, string>;
        if (hasEmptyParam(otherParams)) continue;
        const again = firstMatching(fallback, state, otherParams, accept);
        if (again) return again;
      }
    }
  }

  if (index.prefixes) {
    const hit = index.prefixes.find('GET', routerPath);
    if (hit) {
      const bucket = hit.store as PrefixBucket<Candidate>;
      const found = firstMatching(bucket, state, EMPTY_PARAMS, accept);
      if (found) return found;
      // every shorter prefix of this prefix also covers the path: no second lookup needed
      for (const fallback of bucket.fallbacks) {
        const again = firstMatching(fallback, state, EMPTY_PARAMS, accept);
        if (again) return again;
      }
    }
  }

  for (const bucket of index.regexes) {
    if (!bucket.regex.test(regexPath)) continue;
    const found = firstMatching(bucket, state, EMPTY_PARAMS, accept);
    if (found) return found;
  }
  return undefined;
}

export class RouteTable {
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
  match(req: MatchRequest): MatchResult {
    return this.resolve(req, undefined);
  }

  /** As match, recording each step in `trace` (for --explain; never on the request path). */
  explain(req: MatchRequest): { result: MatchResult; trace: MatchTrace } {
    const trace: MatchTrace = {};
    return { result: this.resolve(req, trace), trace };
  }

  private resolve(req: MatchRequest, trace: MatchTrace | undefined): MatchResult {
    const raw = req.path;
    const q = raw.indexOf('?');
    const canonical = canonicalizePath(q === -1 ? raw : raw.slice(0, q));
    if (!canonical.ok) return { refused: 'bad_request_headers', detail: canonical.reason };
    const state = new MatchState(req, q === -1 ? '' : raw.slice(q + 1));
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
    // only a route with a check the direct match lacks matters: the first such one, in precedence order
    const rules = this.variantRules;
    const viaVariant = lookup(this.variantIndex, variant.key, variant.routerPath, variant.path, state, (route) => missingChecks(direct?.route, route).length > 0 && rules.get(route)?.(variant).differs === true);
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
    const rival =
      direct !== undefined && missingChecks(chosen, direct.route).length > 0
        ? direct
        : lookup(this.variantIndex, variant.key, variant.routerPath, variant.path, state, (route) => route !== chosen && missingChecks(chosen, route).length > 0 && missingChecks(direct?.route, route).length > 0 && rules.get(route)?.(variant).differs === true);
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

function firstMatching(bucket: Bucket<Candidate>, state: MatchState, params: Readonly<Record<string, string>>, accept?: (route: TableRoute) => boolean): RouteMatch | undefined {
  for (const candidate of bucket.items) {
    if (candidateMatches(candidate, state) && (accept === undefined || accept(candidate.route))) return { route: candidate.route, params, pathTemplate: candidate.route.pathTemplate };
  }
  return undefined;
}

// ---- compilation --------------------------------------------------------------------------------------

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
        parsed = known ?? parseFilterConfig(definition.configSchema, entry.config ?? {}, scope);
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
      needs: Object.freeze({ ...needs }),
      budgetMs: route.budgetMs ?? config.defaults.budgetMs,
      maxBodyBytes: route.maxBodyBytes ?? config.defaults.maxBodyBytes,
      ...(shadow === undefined ? {} : { shadow }),
      pathTemplate: pathLabel(route.match.path),
      match: route.match,
    });
    routes.push(tableRoute);
    try {
      candidates.push({
        index,
        path: route.match.path,
        item: {
          route: tableRoute,
          hosts: compileHosts(route.match.hosts),
          methods: route.match.methods ? new Set(route.match.methods) : null,
          headers: (route.match.headers ?? []).map((p) => ({ name: p.name, test: compileValueTest(p) })),
          query: (route.match.query ?? []).map((p) => ({ name: p.name, test: compileValueTest(p) })),
        },
      });
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
      const parsed = parseFilterConfig(definition.configSchema, entry?.config ?? {}, scope);
      if (!parsed.success) throw new Error(`the ${definition.name} baseline for unmatched requests: ${parsed.error.message}`);
      filterConfig = parsed.data;
    }
    filters.push(Object.freeze({ name: definition.name, order: definition.order, filter: definition.create(filterConfig, deps) }));
  }
  filters.sort((a, b) => a.order - b.order);
  return Object.freeze({ id: UNMATCHED_ROUTE_ID, filters: Object.freeze(filters), needs: NO_NEEDS, budgetMs: config.defaults.budgetMs, maxBodyBytes: config.defaults.maxBodyBytes });
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

