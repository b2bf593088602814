// Builds the RequestContext the filters see, from what either adapter read off Envoy's message.
import { HEADER, HeaderEdits, type HeaderMap } from './headers.js';
import { RequestState } from './state.js';
import type { FilterAction, PeerInfo, RequestContext, ShadowDenial } from './types.js';
import { randomUUID } from 'node:crypto';

export interface RequestLine {
  readonly method: string;
  readonly authority: string;
  readonly scheme: string;
  readonly path: string;
  /** a request body follows the headers (ext_proc: headers without end_of_stream; ext_authz: a body was sent) */
  readonly bodyFollows?: boolean;
}

/** `:path` split at its first `?`. */
export interface RequestTarget {
  readonly pathname: string;
  readonly query: string;
}

/** Splits `:path` into path and query; never throws. The lifecycle does it once per request. */
export function splitPath(path: string): RequestTarget {
  const q = path.indexOf('?');
  return q < 0 ? { pathname: path, query: '' } : { pathname: path.slice(0, q), query: path.slice(q + 1) };
}

/**
 * A class rather than an object literal: a literal with a getter is built on V8's slow path and,
 * measured here, kept everything a request referenced alive through young-generation GCs (multi-ms
 * scavenges under load). The lazy `signal` getter lives on the prototype instead.
 */
class Context implements RequestContext {
  readonly requestId: string;
  readonly decisionId: string;
  readonly pathname: string;
  readonly query: string;
  readonly requestEdits = new HeaderEdits();
  readonly responseEdits = new HeaderEdits();
  private stateMap: RequestState | undefined;
  actions: FilterAction[] | undefined;
  shadowDenials: ShadowDenial[] | undefined;
  responseStatus?: number;
  responseHeaders?: HeaderMap;
  readonly method: string;
  readonly authority: string;
  readonly scheme: string;
  readonly path: string;
  readonly routeId: string;
  readonly pathTemplate: string;
  readonly params: Readonly<Record<string, string>>;
  readonly requestBodyFollows: boolean;

  constructor(
    line: RequestLine,
    readonly requestHeaders: HeaderMap,
    readonly peer: PeerInfo,
    route: { routeId: string; pathTemplate: string; params: Readonly<Record<string, string>> },
    private readonly makeSignal: () => AbortSignal,
    decisionId: string,
    { pathname, query }: RequestTarget,
  ) {
    // Envoy's HCM sets x-request-id before filters run; a missing one still gets a decision id.
    this.requestId = requestHeaders.get(HEADER.requestId) ?? decisionId;
    this.decisionId = decisionId;
    this.method = line.method;
    this.authority = line.authority;
    this.scheme = line.scheme;
    this.path = line.path;
    this.pathname = pathname;
    this.query = query;
    this.requestBodyFollows = line.bodyFollows === true;
    this.routeId = route.routeId;
    this.pathTemplate = route.pathTemplate;
    this.params = route.params;
  }

  get signal(): AbortSignal {
    return this.makeSignal();
  }

  /** made on first use: most requests have nothing to record */
  recordAction(action: FilterAction): void {
    (this.actions ??= []).push(action);
  }

  recordShadowDenial(denial: ShadowDenial): void {
    (this.shadowDenials ??= []).push(denial);
  }

  /** made on first use, like the signal: most chains never hand anything on */
  get state(): RequestState {
    return (this.stateMap ??= new RequestState());
  }
}

export function createRequestContext(
  line: RequestLine,
  headers: HeaderMap,
  peer: PeerInfo,
  route: { routeId: string; pathTemplate: string; params: Readonly<Record<string, string>> },
  /** made on first use: most requests finish without any filter asking for it */
  signal: () => AbortSignal,
  /** gatehouse's own id for this decision (never the client's x-request-id) */
  decisionId: string = randomUUID(),
  /** `line.path` split, when the caller already split it to match the route */
  target: RequestTarget = splitPath(line.path),
): RequestContext {
  return new Context(line, headers, peer, route, signal, decisionId, target);
}
