// Middleware for node:http, Express and Fastify. None of them is imported: the parameters are the
// structural slices of each framework's request/response that we touch, so express and fastify
// stay dev dependencies. A refused request gets the status from PASSPORT_FAILURES and a JSON body
// { "error": "passport_refused", "code": "<code>" }; the handler is not called.
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { PASSPORT_FAILURES, PASSPORT_HEADER, type PassportClaims, type PassportFailureCode, type PassportVerdict } from '../../src/protocol/passport/index.js';
import type { PassportVerifier } from './verifier.js';

export interface PassportMiddlewareOptions {
  /** lower-case header name; default x-passport */
  readonly header?: string;
  /** called for each refusal, e.g. to log verdict.detail (which the client never sees) */
  readonly onRefused?: (verdict: Extract<PassportVerdict, { ok: false }>) => void;
}

/** A request after the middleware: the verified claims. */
export interface WithPassport {
  passport?: PassportClaims;
}

export interface PassportRefusal {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** The one place the refusal response is spelled, for every framework. */
export function refusalFor(code: PassportFailureCode): PassportRefusal {
  const { status } = PASSPORT_FAILURES[code];
  const headers: Record<string, string> = { 'content-type': 'application/json', 'cache-control': 'no-store' };
  if (status === 503) headers['retry-after'] = '1';
  return { status, headers, body: JSON.stringify({ error: 'passport_refused', code }) };
}

/** Reads the header (node joins a repeated custom header with ", ", which then fails as malformed) and verifies it. */
export async function verifyRequestPassport(verifier: PassportVerifier, headers: IncomingHttpHeaders, options: PassportMiddlewareOptions = {}): Promise<PassportVerdict> {
  const verdict = await verifier.verifyPassport(headers[options.header ?? PASSPORT_HEADER]);
  if (!verdict.ok) options.onRefused?.(verdict);
  return verdict;
}

function writeRefusal(res: ServerResponse, code: PassportFailureCode): void {
  const refusal = refusalFor(code);
  res.writeHead(refusal.status, refusal.headers).end(refusal.body);
}

/**
 * node:http: wraps a request listener; the handler runs only with a verified passport, which it
 * gets both on req.passport and as its third argument (typed as present).
 */
export function passportRequestListener<Req extends IncomingMessage & WithPassport, Res extends ServerResponse>(
  verifier: PassportVerifier,
  handler: (req: Req, res: Res, passport: PassportClaims) => unknown,
  options: PassportMiddlewareOptions = {},
): (req: Req, res: Res) => void {
  return (req, res) => {
    void verifyRequestPassport(verifier, req.headers, options).then((verdict) => {
      if (!verdict.ok) {
        writeRefusal(res, verdict.code);
        return;
      }
      req.passport = verdict.claims;
      return handler(req, res, verdict.claims);
    }).catch((error: unknown) => {
      // the handler failed: answer 500 if nothing was sent, rather than leave an unhandled rejection
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":"internal_error"}');
      else res.destroy(error instanceof Error ? error : new Error(String(error)));
    });
  };
}

/** Express (4 and 5): app.use(passportExpress(verifier)); handlers read req.passport. */
export function passportExpress(
  verifier: PassportVerifier,
  options: PassportMiddlewareOptions = {},
): (req: IncomingMessage & WithPassport, res: ServerResponse, next: (error?: unknown) => void) => void {
  return (req, res, next) => {
    void verifyRequestPassport(verifier, req.headers, options).then((verdict) => {
      if (!verdict.ok) {
        writeRefusal(res, verdict.code);
        return;
      }
      req.passport = verdict.claims;
      next();
    }, next);
  };
}

/** The slice of a FastifyReply the hook uses. */
export interface FastifyReplyLike {
  code(statusCode: number): FastifyReplyLike;
  headers(values: Record<string, string>): FastifyReplyLike;
  send(payload: string): FastifyReplyLike;
}

/**
 * Fastify: app.decorateRequest('passport', null); app.addHook('onRequest', passportFastify(verifier)).
 * An async hook that sends a reply returns it, which ends the chain before the handler.
 */
export function passportFastify(
  verifier: PassportVerifier,
  options: PassportMiddlewareOptions = {},
): (request: { headers: IncomingHttpHeaders; passport?: PassportClaims | null }, reply: FastifyReplyLike) => Promise<FastifyReplyLike | undefined> {
  return async (request, reply) => {
    const verdict = await verifyRequestPassport(verifier, request.headers, options);
    if (verdict.ok) {
      request.passport = verdict.claims;
      return undefined;
    }
    const refusal = refusalFor(verdict.code);
    return reply.code(refusal.status).headers(refusal.headers).send(refusal.body);
  };
}
