// What the adapters need from the route table (src/config/routes.ts implements it). A stream takes
// the table current when it starts and keeps it, so a hot reload never changes an open stream.
import type { DenyReasonCode } from './deny.js';
import type { HeaderMap } from './headers.js';
import type { CompiledRoute } from './types.js';

export interface RouteMatch {
  readonly route: CompiledRoute;
  readonly params: Readonly<Record<string, string>>;
  /** the metric label: the route's path pattern, never the raw path */
  readonly pathTemplate: string;
}

/** The path is malformed or ambiguous: deny rather than guess a route. */
export interface RouteRefusal {
  readonly refused: DenyReasonCode;
  readonly detail: string;
}

export interface RouteMatchInput {
  readonly method: string;
  readonly authority: string;
  readonly path: string;
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
