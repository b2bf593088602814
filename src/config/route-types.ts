// The shapes of a compiled route table: what routes.ts builds and route-table.ts matches, and what
// shadowing.ts (the load-time check of path variants) reads. Apart from both so neither imports the
// other. The match types themselves (RouteMatch, RouteMatchInput, RouteRefusal) are pipeline/routing.ts's.
import type { PathVariant } from '../pipeline/path.js';
import type { RouteMatch, RouteMatchInput, RouteRefusal } from '../pipeline/routing.js';
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

/** How a request was matched, step by step: what `npm run check -- --explain` prints. */
export interface MatchTrace {
  canonicalPath?: string;
  /** the route the canonical path itself matches */
  direct?: RouteMatch<TableRoute>;
  variant?: PathVariant;
  /** the route the folded path matches */
  viaVariant?: RouteMatch<TableRoute>;
  /** why the variant's route was taken, refused or ignored */
  policy?: string;
}

export type MatchResult = RouteMatch<TableRoute> | RouteRefusal | undefined;

/** What the load-time checks read of a route table (RouteTable implements it). */
export interface RouteTableView {
  readonly routes: readonly TableRoute[];
  readonly unmatched: Unmatched;
  match(req: RouteMatchInput): MatchResult;
  explain(req: RouteMatchInput): { result: MatchResult; trace: MatchTrace };
}
