// The path index: where a request's canonical path finds its candidate routes, in precedence order
// (routes.ts's header comment), and the variant index of the routes' folded paths (the path policy).
// `lookup` walks it, trying each candidate's other predicates (route-predicates.ts).
import FindMyWay from 'find-my-way';
import type { RouteMatch } from '../pipeline/routing.js';
import type { RawIssue } from './issues.js';
import { candidateMatches, type Candidate, type MatchState } from './route-predicates.js';
import type { TableRoute } from './route-types.js';
import type { PathMatch } from './types.js';
import { compileRegex } from './values.js';

export type Router = FindMyWay.Instance<FindMyWay.HTTPVersion.V1>;

export const NOOP_HANDLER = (): void => undefined;
export const EMPTY_PARAMS: Readonly<Record<string, string>> = Object.freeze({});
export const ROUTER_OPTIONS = { maxParamLength: 8192, caseSensitive: true, ignoreTrailingSlash: false, ignoreDuplicateSlashes: false, querystringParser: () => EMPTY_PARAMS } as const;
/** the variant index: literal parts compared case-insensitively, parameters keep their case */
const VARIANT_ROUTER_OPTIONS = { ...ROUTER_OPTIONS, caseSensitive: false } as const;

/** `/a/` → `/a`; `/` stays */
export function trimSlash(path: string): string {
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

export interface PathIndex<T> {
  readonly exact: Map<string, Bucket<T>>;
  readonly templates: Router | null;
  readonly prefixes: Router | null;
  readonly regexes: readonly RegexBucket<T>[];
}

export function pathLabel(path: PathMatch): string {
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

export interface IndexEntry<T> {
  readonly index: number;
  readonly path: PathMatch;
  readonly item: T;
}

/** Builds the path index; template errors and shape clashes come back as issues (path from the config root). */
export function buildPathIndex<T>(entries: readonly IndexEntry<T>[]): { index: PathIndex<T>; issues: RawIssue[] } {
  return buildIndex(entries, false);
}

/**
 * The variant index: the routes' paths folded as pathVariant folds a request's (no trailing slash,
 * lower-cased exact keys, case-insensitive routers); a prefix `/a/` also answers `/a`. Regex paths
 * are not in it (a regex says itself which spellings it takes). Its issues are those of the main index.
 */
export function buildVariantIndex<T>(entries: readonly IndexEntry<T>[]): PathIndex<T> {
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

function hasEmptyParam(params: Readonly<Record<string, string | undefined>>): boolean {
  for (const key in params) if (params[key] === '') return true;
  return false;
}

/**
 * The first route in precedence order covering the path whose predicates hold (and that `accept`s,
 * when given: the variant lookup only looks for routes stronger than the direct match).
 */
export function lookup(index: PathIndex<Candidate>, exactKey: string, routerPath: string, regexPath: string, state: MatchState, accept?: (route: TableRoute) => boolean): RouteMatch<TableRoute> | undefined {
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

function firstMatching(bucket: Bucket<Candidate>, state: MatchState, params: Readonly<Record<string, string>>, accept?: (route: TableRoute) => boolean): RouteMatch<TableRoute> | undefined {
  for (const candidate of bucket.items) {
    if (candidateMatches(candidate, state) && (accept === undefined || accept(candidate.route))) return { route: candidate.route, params, pathTemplate: candidate.route.pathTemplate };
  }
  return undefined;
}
