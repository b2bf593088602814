// `signed`: the dynamic-security per-request check (docs/protocol/signing.md §6 and §11). Cheapest
// first: the pure verifier (parse → credential, cached → freshness → signature), then the stores:
// the nonce is claimed only once the signature verified, so a forged request cannot burn a genuine
// nonce; then the device and the account; then, for a request with a body, its Content-Digest.
//  - every store check runs at the headers, before anything is released upstream: should Envoy
//    not send the body (mode_override ignored), a replay, a revoked device or a disabled account is
//    still refused, and the missing body is refused by the request lifecycle (src/envoy/lifecycle.ts).
//    The price: a request whose signed headers are genuine but whose body was altered burns its
//    nonce before the digest refuses it (whoever can alter it in flight can also drop it);
//  - a request without a body (a GET) is decided at its headers and never waits for a body;
//  - a refusal answers its code from src/protocol/signing/codes.ts with that status, a Date header
//    (so a client can correct its clock) and, on 401, WWW-Authenticate;
//  - a store that cannot answer: failureMode closed → 503 dependency_unavailable, open → the request
//    passes and the action `failed_open` names the stores;
//  - accepted: the identity goes to later filters in ctx.state (STATE.signedIdentity, pipeline/state.ts).
import { checkContentDigest } from '../../protocol/signing/content-digest.js';
import { CredentialTrust } from '../../protocol/signing/credential.js';
import { decodeCompactJws } from '../../protocol/signing/jws.js';
import { suspicionOf } from '../../pipeline/deny.js';
import { recordClaimant, STATE, type Claimant, type SignedIdentity } from '../../pipeline/state.js';
import { SIGNING_FAILURES, type SigningFailureCode } from '../../protocol/signing/codes.js';
import { CREDENTIAL_HEADER, SIGNATURE_HEADER, SIGNATURE_INPUT_HEADER } from '../../protocol/signing/profile.js';
import { HEADER } from '../../pipeline/headers.js';
import { createRequestVerifier, type SignedRequest, type VerifiedRequest } from '../../protocol/signing/verifier.js';
import { FILTER_ORDER } from '../../pipeline/order.js';
import { CONTINUE, type FilterDefinition, type FilterDeps, type Outcome, type RequestContext } from '../../pipeline/types.js';
import type { StoreFailure } from '../../stores/types.js';
import { checkStanding } from '../standing.js';
import { issuerKeysOf, signedConfig, signedConfigIn, type SignedConfig } from './config.js';

export const SIGNED_FILTER = 'signed';

/** ctx.state key under which later filters find the verified signer */
export const SIGNED_IDENTITY_STATE = STATE.signedIdentity;

export type { SignedIdentity };

/** `action` of the FilterAction recorded when a store could not answer and failureMode is open */
export const SIGNED_FAILED_OPEN = 'failed_open';

/** Request headers only the signature check needs; removed before the upstream unless forwardSignatureHeaders. */
export const SIGNING_HEADERS = [SIGNATURE_HEADER, SIGNATURE_INPUT_HEADER, CREDENTIAL_HEADER] as const;

/** RFC 9110 §11.6.1 challenge for a 401: the scheme this route wants and, like RFC 6750, the error code. */
export function signatureChallenge(code: SigningFailureCode): string {
  return `Signature realm="gatehouse", error="${code}"`;
}

type Denial = Extract<Outcome, { kind: 'deny' }>;

function refuse(code: SigningFailureCode, detail: string, nowMs: number): Denial {
  const headers: Record<string, string> = { [HEADER.date]: new Date(nowMs).toUTCString() };
  if (SIGNING_FAILURES[code].status === 401) headers[HEADER.wwwAuthenticate] = signatureChallenge(code);
  return { kind: 'deny', reason: code, detail, headers };
}

function headerReader(ctx: RequestContext): (name: string) => string | undefined {
  return (name) => {
    const values = ctx.requestHeaders.getAll(name);
    return values.length === 0 ? undefined : values.join(', ');
  };
}

/** sub and dev as written in a credential nothing verified */
function claimedBy(token: string | undefined): Claimant | undefined {
  const payload = decodeCompactJws(token)?.payload;
  if (payload === undefined) return undefined;
  const { sub, dev } = payload;
  return { ...(typeof sub === 'string' ? { subject: sub } : {}), ...(typeof dev === 'string' ? { device: dev } : {}), trust: 'claimed' };
}

export function compileSigned(config: SignedConfig, deps: FilterDeps) {
  const trust = new CredentialTrust(config.issuer, issuerKeysOf(config));

  /**
   * For a security event (only suspicious refusals pay for it): who the refused request named. The
   * verifier checks the credential before freshness and signature, so a refusal after that step finds
   * it in the credential cache (trust `credential`); a credential that does not verify is a claim.
   */
  function noteClaimant(ctx: RequestContext, code: SigningFailureCode, nowMs: number): void {
    if (suspicionOf(code) === undefined) return;
    const token = headerReader(ctx)(CREDENTIAL_HEADER);
    if (token === undefined) return;
    if (code !== 'credential_invalid') {
      const found = deps.credentials.lookup(token, trust, nowMs / 1000);
      if (found.ok) {
        recordClaimant(ctx, { subject: found.credential.subject, device: found.credential.deviceId, trust: 'credential' });
        return;
      }
    }
    const claimed = claimedBy(token);
    if (claimed !== undefined) recordClaimant(ctx, claimed);
  }
  const verify = createRequestVerifier({
    trust,
    cache: deps.credentials,
    allowedAlgorithms: config.allowedAlgorithms,
    freshness: { maxAgeSeconds: config.maxAgeSeconds, maxLifetimeSeconds: config.maxLifetimeSeconds, maxSkewSeconds: config.clockSkewSeconds },
    ...(config.minIntegrity === undefined ? {} : { minIntegrity: config.minIntegrity }),
  });
  // verdicts of requests whose body is still to come; gone with the request context
  const awaitingBody = new WeakMap<RequestContext, VerifiedRequest>();

  const input = (ctx: RequestContext, body: SignedRequest['body'], nowMs: number): SignedRequest => ({
    method: ctx.method,
    authority: ctx.authority,
    path: ctx.pathname,
    query: ctx.query,
    header: headerReader(ctx),
    ...(body === undefined ? {} : { body }),
    now: nowMs / 1000,
  });

  /** the store steps, then hand the identity on */
  async function admit(ctx: RequestContext, verdict: VerifiedRequest): Promise<Outcome> {
    const unavailable: string[] = [];
    const details: string[] = [];
    const storeFailed = (store: string, failure: StoreFailure): void => {
      unavailable.push(store);
      details.push(`${store}: ${failure.reason} (${failure.detail})`);
    };
    // The nonce lives until the signature expires, plus the replicas' clock differences.
    const ttlMs = Math.max(1000, (verdict.expires + config.clockSkewSeconds) * 1000 - deps.now());
    // The signature and the body verified, but a copy verifies as well as the original: until the
    // nonce proves this is the request's first arrival, a refusal is only the credential's (a replay
    // is anyone's who saw the request, and must never count against the account).
    recordClaimant(ctx, { subject: verdict.subject, device: verdict.deviceId, trust: 'credential' });
    // the earliest the client may have signed: created, less the clock skew allowed its clock
    const signedNotBeforeMs = (verdict.created - config.clockSkewSeconds) * 1000;
    const claim = await deps.stores.nonces.claim(verdict.keyId, verdict.nonce, ttlMs, signedNotBeforeMs);
    // never failed open: the nonce may have been used before the store forgot it
    if (!claim.ok && claim.reason === 'forgotten') return { kind: 'deny', reason: 'nonce_store_reset', detail: `nonce under key ${verdict.keyId}: ${claim.detail}`, headers: { [HEADER.date]: new Date(deps.now()).toUTCString(), [HEADER.wwwAuthenticate]: 'Signature realm="gatehouse", error="nonce_store_reset"' } };
    if (!claim.ok) storeFailed('nonces', claim);
    else if (!claim.firstUse) return refuse('signature_replayed', `nonce already used under key ${verdict.keyId}`, deps.now());
    // every refusal from here on is of a request the key's holder made, arriving for the first time
    // (or, failing open on the nonce store, as good as gatehouse can tell)
    recordClaimant(ctx, { subject: verdict.subject, device: verdict.deviceId, trust: 'verified' });
    const standing = await checkStanding(deps.stores, { deviceId: verdict.deviceId, subject: verdict.subject });
    if (standing.kind === 'refused') return refuse(standing.reason, standing.detail, deps.now());
    if (standing.kind === 'unavailable') for (const { store, failure } of standing.failures) storeFailed(store, failure);
    if (unavailable.length > 0) {
      if (config.failureMode === 'closed') return { kind: 'deny', reason: 'dependency_unavailable', detail: `signed: ${details.join('; ')}` };
      ctx.recordAction({ filter: SIGNED_FILTER, action: SIGNED_FAILED_OPEN, items: unavailable });
    }
    ctx.state.set(SIGNED_IDENTITY_STATE, {
      subject: verdict.subject,
      deviceId: verdict.deviceId,
      integrityLevel: verdict.integrityLevel,
      keyId: verdict.keyId,
    } satisfies SignedIdentity);
    return CONTINUE;
  }

  return {
    onRequestHeaders(ctx: RequestContext): Outcome | Promise<Outcome> {
      const nowMs = deps.now();
      const verdict = verify(input(ctx, ctx.requestBodyFollows ? 'deferred' : undefined, nowMs));
      if (!verdict.ok) {
        noteClaimant(ctx, verdict.code, nowMs);
        return refuse(verdict.code, verdict.detail, nowMs);
      }
      // In the headers answer: Envoy applies request-header edits there, and a later refusal replaces the request anyway.
      if (!config.forwardSignatureHeaders) for (const name of SIGNING_HEADERS) ctx.requestEdits.remove(name);
      // The stores (nonce claimed, device, account) are consulted here, even when the body is still
      // to come: if Envoy never sends the body (mode_override ignored), the request reaches the
      // upstream after this answer, and a replayed nonce, a revoked device or a disabled account must
      // already have been refused. The body's digest is checked in its phase; a body that never
      // arrives is refused by the request lifecycle before the response is released.
      if (verdict.digest === 'deferred') awaitingBody.set(ctx, verdict);
      return admit(ctx, verdict);
    },
    onRequestBody(ctx: RequestContext, body: Buffer): Outcome | Promise<Outcome> {
      const verdict = awaitingBody.get(ctx);
      awaitingBody.delete(ctx);
      // Only a request verified at its headers reaches here (a refusal ends the chain).
      if (verdict === undefined) return { kind: 'deny', reason: 'internal_error', detail: 'signed: a request body came without a verified signature' };
      const digest = checkContentDigest(verdict.contentDigest, body);
      if (!digest.ok) {
        // The signature (over Content-Digest) verified, the body did not: changed in transit, cut by
        // Envoy's own limits (ext_authz max_request_bytes), or signed headers sent with another body by
        // whoever saw them. None of that is the holder's doing: the credential's trust only.
        recordClaimant(ctx, { subject: verdict.subject, device: verdict.deviceId, trust: 'credential' });
        return refuse(digest.code, digest.detail, deps.now());
      }
      return CONTINUE;
    },
  };
}

export const signedFilter: FilterDefinition<typeof signedConfig> = {
  name: SIGNED_FILTER,
  order: FILTER_ORDER.signed,
  configSchema: signedConfig,
  configSchemaIn: signedConfigIn,
  // Envoy sends a body only when the request has one; a GET is decided at its headers.
  needs: () => ({ requestBody: true }),
  create: (config, deps) => compileSigned(config, deps),
};
