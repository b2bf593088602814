// What the adapters need from the route table (src/config/routes.ts implements it). A stream takes
// the table current when it starts and keeps it, so a hot reload never changes an open stream.
import type { DenyReasonCode } from './deny.js';
import type { HeaderMap } from './headers.js';
import type { CompiledRoute } from './types.js';

/** The route a request matched; a route table names its own route type (config's TableRoute). */
export interface RouteMatch<R extends CompiledRoute = CompiledRoute> {
  readonly route: R;
  /** template parameters, decoded; empty for other path kinds */
  readonly params: Readonly<Record<string, string>>;
  /** the metric label: the route's path pattern, never the raw path */
  readonly pathTemplate: string;
}

/**
 * The path is malformed or ambiguous (path.ts), or a refused variant of a protected route's path:
 * deny it with `refused` as the reason rather than guess a route.
 */
export interface RouteRefusal {
  readonly refused: Extract<DenyReasonCode, 'bad_request_headers' | 'path_variant'>;
  readonly detail: string;
}

/** What matching reads of a request. */
export interface RouteMatchInput {
  readonly method: string;
  /** `:authority` as Envoy sent it; a port is ignored */
  readonly authority: string;
  /** `:path` before the `?`, as sent (matching canonicalizes it); split once per request (context.ts splitPath) */
  readonly pathname: string;
  /** `:path` after the `?`, '' when none */
  readonly query: string;
  readonly headers: HeaderMap;
}

export interface Routes {
  match(input: RouteMatchInput): RouteMatch | RouteRefusal | undefined;
  byId(id: string): CompiledRoute | undefined;
  /** what happens to a request no route matches */
  readonly unmatched: 'deny' | 'pass';
  /**
   * The chain a request no route matches runs under `unmatched: pass`: the always-on filters
   * (sanitize), so passing through never means passing unsanitized.
   */
  readonly unmatchedRoute: CompiledRoute;
}

export interface RoutesSource {
  current(): Routes;
}

export const UNMATCHED_ROUTE_ID = 'unmatched';
