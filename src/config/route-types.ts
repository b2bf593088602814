// The shapes of a compiled route table: what routes.ts builds and matches, and what shadowing.ts
// (the load-time check of path variants) reads. Apart from routes.ts so neither imports the other.
import type { DenyReasonCode } from '../pipeline/deny.js';
import type { HeaderMap } from '../pipeline/headers.js';
import type { PathVariant } from '../pipeline/path.js';
import type { CompiledRoute } from '../pipeline/types.js';
import type { RouteMatchConfig, Unmatched } from './types.js';

/** A compiled route as the table holds it: a CompiledRoute plus where it came from. */
export interface TableRoute extends CompiledRoute {
  /** position in the config's `routes` list */
  readonly index: number;
  /** the metric label for the path: the exact path, template, `prefix*`, or the regex */
  readonly pathTemplate: string;
  readonly match: RouteMatchConfig;
}

export interface MatchRequest {
  readonly method: string;
  /** `:authority` as Envoy sent it; a port is ignored */
  readonly authority: string;
  /** the raw `:path`, query included */
  readonly path: string;
  readonly headers: HeaderMap;
}

export interface RouteMatch {
  readonly route: TableRoute;
  /** template parameters, decoded; empty for other path kinds */
  readonly params: Readonly<Record<string, string>>;
  /** the metric label, never the raw path */
  readonly pathTemplate: string;
}

/** The request path is ambiguous or malformed (see path.ts), or a refused variant of a protected route's path; deny it rather than guess a route. */
export interface PathRefusal {
  readonly refused: Extract<DenyReasonCode, 'bad_request_headers' | 'path_variant'>;
  readonly detail: string;
}

/** How a request was matched, step by step: what `npm run check -- --explain` prints. */
export interface MatchTrace {
  canonicalPath?: string;
  /** the route the canonical path itself matches */
  direct?: RouteMatch;
  variant?: PathVariant;
  /** the route the folded path matches */
  viaVariant?: RouteMatch;
  /** why the variant's route was taken, refused or ignored */
  policy?: string;
}

export type MatchResult = RouteMatch | PathRefusal | undefined;

/** What the load-time checks read of a route table (RouteTable implements it). */
export interface RouteTableView {
  readonly routes: readonly TableRoute[];
  readonly unmatched: Unmatched;
  match(req: MatchRequest): MatchResult;
  explain(req: MatchRequest): { result: MatchResult; trace: MatchTrace };
}
