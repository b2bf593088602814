// The schema of a route (match predicates, filter entries) and of defaults.filters. A filter entry is
// parsed by its filter's own schema from the registry, with the config directory passed in.
import { z } from 'zod';
import { configSchemaIn, MAX_BODY_BYTES_LIMIT, parseFilterConfig, type FilterConfigScope } from '../../pipeline/filter-config.js';
import { canonicalizePath } from '../../pipeline/path.js';
import type { FilterDefinition } from '../../pipeline/types.js';
import { HTTP_METHODS, unknownMethodMessage } from '../http-methods.js';
import type { NamedPredicate, PathMatch, RouteFilterConfig } from '../types.js';
import { HOSTNAME } from '../values.js';
import { positiveInt, regexString } from './fields.js';

export const ROUTE_ID = /^[a-z0-9_.-]{1,64}$/;

const hostPattern = z
  .string()
  .transform((s) => s.toLowerCase().replace(/\.$/, ''))
  .superRefine((host, ctx) => {
    if (host === '*') return;
    if (/:[0-9]*$/.test(host) && !host.endsWith(']')) {
      ctx.addIssue({ code: 'custom', message: `must not include a port (ports are ignored when matching), got ${JSON.stringify(host)}` });
      return;
    }
    const name = host.startsWith('*.') ? host.slice(2) : host;
    if (/^\[[0-9a-f:.]+\]$/.test(name) && !host.startsWith('*.')) return;
    if (!HOSTNAME.test(name)) {
      ctx.addIssue({ code: 'custom', message: `must be a host name, "*.suffix" or "*", got ${JSON.stringify(host)}` });
    }
  });

const METHOD = /^[A-Za-z]+$/;
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** one-of objects: exactly one of the listed keys, written as `{ exact: ... }` etc. */
function exactlyOne<K extends string>(value: Record<string, unknown>, keys: readonly K[], ctx: z.RefinementCtx): K | undefined {
  const present = keys.filter((k) => value[k] !== undefined);
  if (present.length === 1) return present[0];
  ctx.addIssue({
    code: 'custom',
    message: present.length === 0 ? `needs one of: ${keys.join(', ')}` : `needs exactly one of ${keys.join(', ')}, got ${present.join(' and ')}`,
  });
  return undefined;
}

function checkConfigPath(kind: 'exact' | 'prefix' | 'template', path: string, ctx: z.RefinementCtx): void {
  const at = [kind];
  // templates with constrained params carry a regex in parentheses: only the literal parts are checked
  const literal = kind === 'template' ? path.replace(/\([^)]*\)/g, '') : path;
  if (!literal.startsWith('/')) {
    ctx.addIssue({ code: 'custom', path: at, message: `must start with "/", got ${JSON.stringify(path)}` });
    return;
  }
  if (literal.includes('?')) {
    ctx.addIssue({ code: 'custom', path: at, message: 'must not contain "?" (match query parameters with match.query)' });
    return;
  }
  if (kind !== 'exact' && literal.includes('*')) {
    ctx.addIssue({ code: 'custom', path: at, message: kind === 'prefix' ? 'must not contain "*" (a prefix already matches everything after it; use regex for more)' : 'must not contain "*" (use a prefix path for "everything below")' });
    return;
  }
  const canonical = canonicalizePath(literal);
  if (!canonical.ok) {
    ctx.addIssue({ code: 'custom', path: at, message: `is not a usable path: ${canonical.reason.replace(/^the path /, '')}` });
  } else if (canonical.path !== literal) {
    ctx.addIssue({
      code: 'custom',
      path: at,
      message: `must be written in canonical form (decoded, no "." or ".." or empty segments), i.e. ${JSON.stringify(canonical.path)}; requests are matched after the same normalization`,
    });
  }
}

const pathMatch = z
  .strictObject({ exact: z.string().optional(), prefix: z.string().optional(), template: z.string().optional(), regex: regexString.optional() })
  .transform((value, ctx): PathMatch => {
    const kind = exactlyOne(value, ['exact', 'prefix', 'template', 'regex'] as const, ctx);
    if (kind === undefined) return z.NEVER;
    const text = value[kind]!;
    if (kind !== 'regex') checkConfigPath(kind, text, ctx);
    if (kind === 'template' && !/:[A-Za-z_]/.test(text)) {
      ctx.addIssue({ code: 'custom', path: [kind], message: 'has no ":param"; use an exact path' });
    }
    return { kind, value: text };
  });

const namedPredicate = (what: 'header' | 'query parameter') =>
  z
    .strictObject({
      name: what === 'header' ? z.string().regex(HEADER_NAME, 'must be an HTTP header name (token characters)').transform((s) => s.toLowerCase()) : z.string().min(1, 'must not be empty'),
      exact: z.string().optional(),
      prefix: z.string().optional(),
      regex: regexString.optional(),
      present: z.boolean().optional(),
    })
    .transform((value, ctx): NamedPredicate => {
      const kind = exactlyOne(value, ['exact', 'prefix', 'regex', 'present'] as const, ctx);
      if (kind === undefined) return z.NEVER;
      if (kind === 'present') return { name: value.name, kind, value: value.present! };
      return { name: value.name, kind, value: value[kind]! };
    });

const routeMatch = z.strictObject({
  hosts: z.array(hostPattern).min(1, 'must list at least one host (leave hosts out to match any host)').optional(),
  path: pathMatch,
  methods: z
    .array(
      z
        .string()
        .regex(METHOD, 'must be an HTTP method name (letters only)')
        .transform((s) => s.toUpperCase())
        .refine((m) => HTTP_METHODS.has(m), { error: (issue) => unknownMethodMessage(String(issue.input)) }),
    )
    .min(1, 'must list at least one method (leave methods out to match any method)')
    .optional(),
  headers: z.array(namedPredicate('header')).optional(),
  query: z.array(namedPredicate('query parameter')).optional(),
  trailingSlash: z.enum(['match', 'refuse']).optional(),
  caseSensitive: z.boolean().optional(),
});

function filterEntry(registry: ReadonlyMap<string, FilterDefinition>, scope: FilterConfigScope) {
  return z.record(z.string(), z.unknown()).transform((entry, ctx): RouteFilterConfig => {
    const keys = Object.keys(entry);
    if (keys.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        message: `must be a map with exactly one key, the filter name (e.g. "- headers: {...}"), got ${keys.length === 0 ? 'none' : `${keys.length}: ${keys.join(', ')}`}`,
      });
      return z.NEVER;
    }
    const name = keys[0]!;
    const config = entry[name];
    const definition = registry.get(name);
    if (!definition) {
      ctx.addIssue({ code: 'custom', path: [name], message: `unknown filter ${JSON.stringify(name)}; known filters: ${[...registry.keys()].sort().join(', ')}` });
      return z.NEVER;
    }
    // `- headers:` with nothing after it is YAML null: treat as an empty config
    let parsed: ReturnType<typeof definition.configSchema.safeParse>;
    try {
      parsed = parseFilterConfig(configSchemaIn(definition), config ?? {}, scope);
    } catch (err) {
      ctx.addIssue({ code: 'custom', path: [name], message: `the filter's config check failed: ${err instanceof Error ? err.message : String(err)}` });
      return z.NEVER;
    }
    if (!parsed.success) {
      // carried whole in params so the message can describe the offending value (issues.ts)
      for (const issue of parsed.error.issues) ctx.addIssue({ code: 'custom', path: [name, ...issue.path], message: issue.message, params: { filterIssue: issue } });
      return z.NEVER;
    }
    return withParsedConfig({ name, config: config ?? {} }, parsed.data);
  });
}

/**
 * The entry with its parsed config attached, so buildRouteTable does not parse it (and read its key
 * files) again. Not enumerable: the config stays plain data to freeze, compare and print, and a
 * parsed config may hold what cannot be frozen (buffers, key objects).
 */
function withParsedConfig(entry: { name: string; config: unknown }, parsed: unknown): RouteFilterConfig {
  Object.defineProperty(entry, 'parsed', { value: { value: parsed }, enumerable: false });
  return entry;
}

/** A route's schema; its filter entries parsed by `registry`'s schemas in `scope`. */
export function routeSchema(registry: ReadonlyMap<string, FilterDefinition>, scope: FilterConfigScope) {
  return z.strictObject({
    id: z.string().regex(ROUTE_ID, 'must be 1-64 characters of a-z 0-9 _ . - (it is a metric label)'),
    match: routeMatch,
    budgetMs: positiveInt(60_000).optional(),
    maxBodyBytes: positiveInt(MAX_BODY_BYTES_LIMIT).optional(),
    mode: z.enum(['enforce', 'shadow']).optional(),
    shadowFilters: z.array(z.string().min(1)).min(1).optional(),
    filters: filterList(registry, scope),
  });
}

/** a `filters:` list (a route's or defaults.filters) */
export function filterList(registry: ReadonlyMap<string, FilterDefinition>, scope: FilterConfigScope) {
  return z.array(filterEntry(registry, scope)).default([]);
}
