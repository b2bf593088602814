import { E2EE_FAILURES } from '../protocol/e2ee/codes.js';
import { SIGNING_FAILURES } from '../protocol/signing/codes.js';
import { HEADER } from './headers.js';

// The one table of deny reasons: stable code → HTTP status → what it means. Clients see the status
// and the code (body and `x-gatehouse-reason`), the log and metrics see the code; nothing else in
// the code base spells a status for a denial. Protocol libraries keep their own tables (code,
// status, meaning) and this table takes their entries as they are wired in as filters.

export interface DenyReason {
  readonly status: number;
  /** one line for operators and for the client-facing body */
  readonly message: string;
}

const GATEWAY_REASONS = {
  route_not_found: { status: 404, message: 'no route matches this request' },
  bad_request_headers: { status: 400, message: 'the request headers are malformed' },
  path_variant: { status: 400, message: 'the path is a variant (case, trailing slash, trailing dot or suffix) of a protected route\'s path that the route does not accept; send the route\'s own path' },
  request_headers_too_large: { status: 431, message: 'the request has too many headers, or a header or all of them are too long' },
  uri_too_long: { status: 414, message: 'the request path is longer than the route allows' },
  client_certificate_required: { status: 401, message: 'this route requires a client certificate' },
  client_unknown: { status: 403, message: 'the client certificate belongs to no registered client' },
  client_certificate_revoked: { status: 403, message: 'the client certificate has been revoked' },
  client_fingerprint_missing: { status: 403, message: 'the client certificate came without a readable SHA-256 fingerprint, so its revocation cannot be checked' },
  client_not_allowed: { status: 403, message: 'the client may not call this route, with this method or without the scopes it requires' },
  processing_timeout: { status: 504, message: 'gatehouse did not decide within the route budget' },
  internal_error: { status: 500, message: 'gatehouse failed while processing the request' },
  body_too_large: { status: 413, message: 'the request body is larger than the route allows' },
  method_not_allowed: { status: 405, message: 'this endpoint does not take this method; the Allow header lists the ones it takes' },
  content_type_unsupported: { status: 415, message: 'this endpoint does not take a body of this Content-Type (challenge and enroll: application/json; credential: application/jwt)' },
  request_body_not_forwarded: { status: 500, message: 'this route checks the request body and Envoy did not send it: serve the route over ext_proc with allow_mode_override, or over ext_authz with with_request_body (pack_as_bytes)' },
  request_body_incomplete: { status: 413, message: 'this route checks the whole request body and Envoy sent only part of it (ext_authz max_request_bytes with allow_partial_message, or a streamed chunk): send a smaller body, or serve the route with whole bodies' },
  response_body_not_forwarded: { status: 502, message: 'this route must process the response body and Envoy did not send it (its ext_proc filter ignores mode_override)' },
  response_body_incomplete: { status: 502, message: 'this route must process the whole response body and Envoy sent only part of it' },
  login_token_missing: { status: 401, message: 'enrolling a device needs the app login token: Authorization: Bearer <token from the identity provider>' },
  login_token_invalid: { status: 401, message: 'the login token is not valid (signature, issuer, audience, algorithm, expiry or subject); log in again' },
  challenge_request_malformed: { status: 400, message: 'a challenge request is the JSON object {"purpose": "enroll"} or {"purpose": "credential"}' },
  passport_identity_missing: { status: 401, message: 'the route hands upstream a passport, but no verified identity came with the request' },
  user_unknown: { status: 403, message: 'the user API does not know the account the verified identity names' },
  dependency_unavailable: { status: 503, message: 'a service gatehouse depends on is unavailable' },
  circuit_open: { status: 503, message: 'the route is shedding load; retry later' },
  shutting_down: { status: 503, message: 'gatehouse is shutting down' },
  nonce_store_reset: { status: 401, message: 'the replay store lost its memory after this request may have been signed, so it cannot tell a replay from a first use: sign the request again' },
} as const satisfies Record<string, DenyReason>;

/** A protocol's failure table (code → status, meaning) as deny reasons: its statuses, its meanings. */
type ReasonsOf<T extends Readonly<Record<string, { readonly status: number; readonly meaning: string }>>> = {
  readonly [C in keyof T]: { readonly status: T[C]['status']; readonly message: string };
};

function reasonsOf<T extends Readonly<Record<string, { readonly status: number; readonly meaning: string }>>>(table: T): ReasonsOf<T> {
  return Object.fromEntries(Object.entries(table).map(([code, { status, meaning }]) => [code, { status, message: meaning }])) as ReasonsOf<T>;
}

/** dynamic security (src/protocol/signing/codes.ts) and e2ee (src/protocol/e2ee/codes.ts), taken as they are */
const SIGNING_REASONS = reasonsOf(SIGNING_FAILURES);
const E2EE_REASONS = reasonsOf(E2EE_FAILURES);

export const DENY_REASONS: typeof GATEWAY_REASONS & typeof SIGNING_REASONS & typeof E2EE_REASONS = { ...GATEWAY_REASONS, ...SIGNING_REASONS, ...E2EE_REASONS };

export type DenyReasonCode = keyof typeof DENY_REASONS;

export function denyReason(code: DenyReasonCode): DenyReason {
  return DENY_REASONS[code];
}

/** What the client receives for a denial: the status, the stable code and the decision id. */
export interface RenderedDenial {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
}

export function renderDenial(
  code: DenyReasonCode,
  decisionId: string,
  extraHeaders: Readonly<Record<string, string>> = {},
): RenderedDenial {
  const reason = DENY_REASONS[code];
  const body = Buffer.from(JSON.stringify({ error: code, message: reason.message, decision_id: decisionId }));
  return {
    status: reason.status,
    headers: {
      ...extraHeaders,
      [HEADER.contentType]: 'application/json',
      [HEADER.reason]: code,
      [HEADER.decisionId]: decisionId,
    },
    body,
  };
}

// ---- suspicious denials ---------------------------------------------------------------------------
// The one place that decides which denials are security events (src/security/: reported to fraud
// detection, counted by the disable rules). A code is here when a genuine app following the protocol
// does not produce it in normal use: forged or tampered signatures, replays, requests held back or
// dated ahead, a credential used with another key or device, a revoked device, a disabled account
// trying again, an attestation below the bar, an e2ee body the named device did not seal. Left out:
// missing or malformed input (a client bug or a scanner, not an identity to act on), an expired
// credential (every app meets it; it refreshes), and availability (timeouts, stores down).

/** why a code is suspicious, as the event's `category` */
export type SuspicionCategory = 'forgery' | 'replay' | 'timing' | 'device' | 'account' | 'attestation';

export const SUSPICIOUS_REASONS: Readonly<Partial<Record<DenyReasonCode, SuspicionCategory>>> = {
  signature_invalid: 'forgery',
  digest_mismatch: 'forgery',
  credential_invalid: 'forgery',
  credential_wrong_device: 'forgery',
  algorithm_not_allowed: 'forgery',
  device_proof_invalid: 'forgery',
  e2ee_decrypt_failed: 'forgery',
  signature_replayed: 'replay',
  challenge_used: 'replay',
  enrollment_login_mismatch: 'replay',
  signature_stale: 'timing',
  signature_future_dated: 'timing',
  device_revoked: 'device',
  e2ee_unknown_device: 'device',
  client_certificate_revoked: 'device',
  account_disabled: 'account',
  attestation_invalid: 'attestation',
  attestation_insufficient: 'attestation',
};

/** the category when `code` is a security event, else undefined */
export function suspicionOf(code: string): SuspicionCategory | undefined {
  return Object.hasOwn(SUSPICIOUS_REASONS, code) ? SUSPICIOUS_REASONS[code as DenyReasonCode] : undefined;
}
