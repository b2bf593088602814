// Route predicates beside the path (hosts, methods, headers, query), compiled once per route; and
// the per-request facts they read, computed at most once (MatchState).
import type { HeaderMap } from '../pipeline/headers.js';
import type { RouteMatchInput } from '../pipeline/routing.js';
import type { TableRoute } from './route-types.js';
import type { NamedPredicate } from './types.js';
import { compileRegex } from './values.js';

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

export interface Candidate {
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
export class MatchState {
  private hostValue: string | undefined;
  private queryValue: Map<string, string> | undefined;

  constructor(readonly req: RouteMatchInput) {}

  get host(): string {
    return (this.hostValue ??= normalizeAuthority(this.req.authority));
  }

  queryParam(name: string): string | undefined {
    this.queryValue ??= parseQuery(this.req.query);
    return this.queryValue.get(name);
  }

  header(name: string): string | undefined {
    return joinedHeader(this.req.headers, name);
  }
}

function joinedHeader(headers: HeaderMap, name: string): string | undefined {
  const values = headers.getAll(name);
  if (values.length <= 1) return values[0];
  return values.join(',');
}

export function candidateMatches(c: Candidate, s: MatchState): boolean {
  if (c.methods && !c.methods.has(s.req.method)) return false;
  if (c.hosts && !hostMatches(c.hosts, s.host)) return false;
  for (const h of c.headers) if (!h.test(s.header(h.name))) return false;
  for (const q of c.query) if (!q.test(s.queryParam(q.name))) return false;
  return true;
}

/** A route's predicates, compiled; throws on a regex the schema would have refused (a hand-made config). */
export function compileCandidate(route: TableRoute): Candidate {
  const { match } = route;
  return {
    route,
    hosts: compileHosts(match.hosts),
    methods: match.methods ? new Set(match.methods) : null,
    headers: (match.headers ?? []).map((p) => ({ name: p.name, test: compileValueTest(p) })),
    query: (match.query ?? []).map((p) => ({ name: p.name, test: compileValueTest(p) })),
  };
}
