// Builds the RequestContext the filters see, from what either adapter read off Envoy's message.
import { HEADER, HeaderEdits, type HeaderMap } from './headers.js';
import type { PeerInfo, RequestContext } from './types.js';
import { randomUUID } from 'node:crypto';

export interface RequestLine {
  readonly method: string;
  readonly authority: string;
  readonly scheme: string;
  readonly path: string;
}

/** Splits `:path` into path and query; never throws. */
export function splitPath(path: string): { pathname: string; query: string } {
  const q = path.indexOf('?');
  return q < 0 ? { pathname: path, query: '' } : { pathname: path.slice(0, q), query: path.slice(q + 1) };
}

export function createRequestContext(
  line: RequestLine,
  headers: HeaderMap,
  peer: PeerInfo,
  route: { routeId: string; pathTemplate: string; params: Readonly<Record<string, string>> },
  /** made on first use: most requests finish without any filter asking for it */
  signal: () => AbortSignal,
): RequestContext {
  const { pathname, query } = splitPath(line.path);
  return {
    // Envoy's HCM sets x-request-id before filters run; a missing one still gets a decision id.
    requestId: headers.get(HEADER.requestId) ?? randomUUID(),
    method: line.method,
    authority: line.authority,
    scheme: line.scheme,
    path: line.path,
    pathname,
    query,
    requestHeaders: headers,
    peer,
    routeId: route.routeId,
    pathTemplate: route.pathTemplate,
    params: route.params,
    requestEdits: new HeaderEdits(),
    responseEdits: new HeaderEdits(),
    state: new Map(),
    get signal() {
      return signal();
    },
  };
}
