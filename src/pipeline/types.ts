// The filter model: what a filter sees (RequestContext), what it answers (Outcome), and how it is
// declared (FilterDefinition). Filters never see protobuf; the Envoy adapters translate.
import type { z } from 'zod';
import type { DenyReasonCode } from './deny.js';
import type { SchemaIn } from './filter-config.js';
import type { Stores } from '../stores/types.js';
import type { HeaderMap, HeaderEdits } from './headers.js';
import type { PeerInfo } from './peer.js';
import type { CircuitBreakers, MtlsDeps, UserApiCallObserver } from './services.js';
import type { RequestState } from './state.js';
import type { CredentialCache } from '../protocol/signing/credential.js';

export type { PeerCertificate, PeerInfo } from './peer.js';

export type Phase = 'requestHeaders' | 'requestBody' | 'responseHeaders' | 'responseBody';

/** What a filter may answer in any phase. The first `deny` or `respond` ends the chain. */
export type Outcome =
  | { readonly kind: 'continue' }
  | {
      readonly kind: 'deny';
      readonly reason: DenyReasonCode;
      /** for the log only; never sent to the client */
      readonly detail?: string;
      /** extra response headers, e.g. `www-authenticate` */
      readonly headers?: Readonly<Record<string, string>>;
    }
  | {
      /** gatehouse answers the client itself, e.g. a challenge endpoint */
      readonly kind: 'respond';
      readonly status: number;
      readonly headers?: Readonly<Record<string, string>>;
      readonly body?: Buffer;
    };

export const CONTINUE: Outcome = Object.freeze({ kind: 'continue' });

/** Which messages a filter needs from Envoy beyond request headers. */
export interface FilterNeeds {
  /** decides the processing mode: BUFFERED request bodies for this route (ext_proc mode_override) */
  readonly requestBody?: boolean;
  /**
   * the filter acts on the upstream's answer. Changes no processing mode: ext_proc asks for every
   * route's response headers (the status for the log; x-gatehouse-* stripped from every answer).
   * It marks the route ext_proc only: ext_authz counts and logs a request it lets through on it.
   */
  readonly responseHeaders?: boolean;
  /** decides the processing mode: BUFFERED response bodies for this route */
  readonly responseBody?: boolean;
}

/**
 * Something a filter changed or refused to pass on, for the access log (`actions`) and the
 * `gatehouse_filter_actions_total` metric. `action` is a constant of the filter's code (a metric
 * label); `items` name what was touched (header names, parameter names), never a value.
 */
export interface FilterAction {
  readonly filter: string;
  readonly action: string;
  readonly items?: readonly string[];
}

/** One per HTTP request (= one ext_proc stream, or one ext_authz Check). */
export interface RequestContext {
  /** x-request-id as Envoy sent it (log correlation only: a client may choose it when Envoy preserves external ids) */
  readonly requestId: string;
  /**
   * gatehouse's own id for this decision: x-gatehouse-decision-id, the log's decision_id, the
   * passport's txn, a security event's decision id. Never taken from the request.
   */
  readonly decisionId: string;
  readonly method: string;
  readonly authority: string;
  readonly scheme: string;
  /** `:path` as Envoy sent it, query included */
  readonly path: string;
  /** the path without the query */
  readonly pathname: string;
  /** the raw query without `?`, '' when absent */
  readonly query: string;
  readonly requestHeaders: HeaderMap;
  /**
   * true when a request body comes after the headers: a route that asked for the body then gets a
   * requestBody phase; false (a GET, an empty POST) means no body phase will run for this request.
   */
  readonly requestBodyFollows: boolean;
  /** set once response headers have been seen */
  responseStatus?: number;
  responseHeaders?: HeaderMap;
  readonly peer: PeerInfo;
  /** route id (or `unmatched`) and the path template used as a metric label */
  readonly routeId: string;
  readonly pathTemplate: string;
  /** path params captured by the route's template */
  readonly params: Readonly<Record<string, string>>;
  /** header edits the chain asks Envoy to make; the adapter turns them into Envoy mutations */
  readonly requestEdits: HeaderEdits;
  readonly responseEdits: HeaderEdits;
  /** what filters hand to later filters (e.g. the verified identity), by the typed keys of STATE (state.ts) */
  readonly state: RequestState;
  /** cancelled when the stream ends early (client gone, budget exceeded): pass it to I/O */
  readonly signal: AbortSignal;
  /** record what this filter changed (see FilterAction) */
  recordAction(action: FilterAction): void;
  /** the actions recorded so far, undefined when none */
  readonly actions: readonly FilterAction[] | undefined;
  /** a denial a shadowed filter made (the chain records it and continues) */
  recordShadowDenial(denial: ShadowDenial): void;
  /** the shadowed denials so far, undefined when none */
  readonly shadowDenials: readonly ShadowDenial[] | undefined;
}

export interface Filter {
  onRequestHeaders?(ctx: RequestContext): Outcome | Promise<Outcome>;
  /** returns the outcome and optionally a replacement body */
  onRequestBody?(ctx: RequestContext, body: Buffer): BodyOutcome | Promise<BodyOutcome>;
  onResponseHeaders?(ctx: RequestContext): Outcome | Promise<Outcome>;
  onResponseBody?(ctx: RequestContext, body: Buffer): BodyOutcome | Promise<BodyOutcome>;
  /**
   * Once per request, when its stream ends however it ends (answered, denied by any filter,
   * cancelled, failed): for a filter that must close what it opened (a breaker's pending call).
   * Synchronous; a throw is logged and counted, never passed on.
   */
  onComplete?(ctx: RequestContext, completion: RequestCompletion): void;
  /**
   * Once, when a reload has replaced the route table this instance belongs to (and when gatehouse
   * stops): let go of what the instance holds (timers, caches, watchers). Streams that started on the
   * old table may still run this instance's phases afterwards, so release stops background work and
   * frees memory but must leave the phases working. Only what the instance made itself: the
   * process-wide FilterDeps are kept across reloads. Synchronous; a throw is logged, never passed on.
   */
  release?(): void;
}

/** How a request ended, as the adapters log it. */
export interface RequestCompletion {
  readonly decision: 'allow' | 'deny' | 'respond' | 'error' | 'cancelled' | 'shadow_deny';
  /** the status the client got or will get, when there is one */
  readonly status?: number;
}

export type BodyOutcome = Outcome | { readonly kind: 'replaceBody'; readonly body: Buffer };

/** Shared services a filter may use; one set per process (createFilterDeps): reloads keep them. */
export interface FilterDeps {
  readonly now: () => number;
  /** nonces, challenges, devices, disabled accounts (memory or Redis, from the `stores:` config) */
  readonly stores: Stores;
  /** the breakers of every route, kept across reloads */
  readonly breakers: CircuitBreakers;
  /** verified dynamic-security credentials, kept across reloads (keyed by issuer-key set, so a key change misses) */
  readonly credentials: CredentialCache;
  /** the client registry and audit sink; set when the config has `mtls.clientsFile` */
  readonly mtls?: MtlsDeps;
  /** counts the user API's calls by outcome and times them (the passport filter's userApi) */
  readonly userApiCalls: UserApiCallObserver;
}

export interface FilterDefinition<S extends z.ZodType = z.ZodType> {
  /** the key in a route's `filters:` list, and the metric label */
  readonly name: string;
  /** position in the chain, from FILTER_ORDER: never from config */
  readonly order: number;
  /** validated at load; unknown keys are an error. A relative file path in it is read as written */
  readonly configSchema: S;
  /**
   * The same schema for a config file in `scope.configDir`, when the config names files it reads
   * (`fileReadAtLoad`): the loader parses with it, so a relative path is the config file's neighbour.
   */
  readonly configSchemaIn?: SchemaIn<S>;
  /** may depend on the filter's config (e.g. only when it rewrites the body) */
  needs(config: z.infer<S>): FilterNeeds;
  create(config: z.infer<S>, deps: FilterDeps): Filter;
  /**
   * true: every route runs this filter, with its config from the route's own entry, else from
   * `defaults.filters`, else the empty config: protections no route can forget (sanitize).
   */
  readonly alwaysOn?: boolean;
  /**
   * A check against the other filters the same route runs (their parsed configs by name), for
   * settings that only make sense together; returns what is wrong, reported at this filter's entry.
   */
  checkRoute?(config: z.infer<S>, others: ReadonlyMap<string, unknown>): string | undefined;
}

/** A filter of a compiled route: its definition's name and order, and its live instance. */
export interface RouteFilter {
  readonly name: string;
  readonly order: number;
  readonly filter: Filter;
}

/** What a phase of a route's chain ended with. */
export interface PhaseResult {
  readonly outcome: Outcome;
  /** set when a filter replaced the body in a body phase */
  readonly body?: Buffer;
}

/** A route's filters compiled into the steps each phase runs (CompiledChain, pipeline/chain.ts). */
export interface RouteChain {
  run(phase: Phase, ctx: RequestContext, body?: Buffer): PhaseResult | Promise<PhaseResult>;
  /** every filter's onComplete, last filter first; returns what they threw, never throws */
  complete(ctx: RequestContext, completion: RequestCompletion): Error[];
}

/** A route after validation and compilation: what the hot path uses. */
export interface CompiledRoute {
  readonly id: string;
  readonly filters: readonly RouteFilter[];
  /** its filters compiled once, with the route (`new CompiledChain(filters, shadow)`) */
  readonly chain: RouteChain;
  /** the union of the filters' needs: decides what gatehouse asks Envoy to send */
  readonly needs: Required<FilterNeeds>;
  /** gatehouse must answer each message within this many ms (below Envoy's message_timeout) */
  readonly budgetMs: number;
  /** largest request/response body the route's filters accept, bytes */
  readonly maxBodyBytes: number;
  /** filters whose denials are shadowed: logged and counted, and the request continues */
  readonly shadow?: ReadonlySet<string>;
}

/** A denial a filter made in shadow mode: recorded, not enforced. */
export interface ShadowDenial {
  readonly filter: string;
  readonly reason: DenyReasonCode;
  readonly detail?: string;
}
