// `issuance`: gatehouse answers the dynamic-security endpoints itself (docs/protocol/signing.md §11),
// on a route of the gateway, so no backend is involved:
//  - POST <basePath>/challenge  {"purpose": "enroll" | "credential"} → 200 {challenge, purpose, expiresAt}
//  - POST <basePath>/enroll     the enrollment JSON, with the app's login token (Authorization:
//    Bearer) → 201 {deviceId, integrity, e2ee}
//  - POST <basePath>/credential the credential request JWS (application/jwt) → 200 {credential, keyid, expiresAt}
// Cheapest first, and no side effect before every check passed:
//  - headers: endpoint (404), method (405 + Allow), Content-Type (415), declared length (413), the
//    login token (enroll: 401 before the body is buffered), a body at all;
//  - body: the protocol's pure checks (verifyEnrollment / inspectCredentialRequest + issueCredential),
//    then the stores: account disabled and device revoked are read, then the challenge is burnt
//    (ledger consume: after the pure checks, so a forged request cannot burn a genuine challenge),
//    then the side effect (store the device / hand out the credential). A refusal at any step stores
//    nothing; a store that cannot answer is 503 dependency_unavailable (failureMode is closed only).
import { createLocalJWKSet, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { androidKeyAttestationVerifier } from '../../protocol/signing/android-key-attestation.js';
import { appleAppAttestVerifier } from '../../protocol/signing/apple-app-attest.js';
import { jwsVerdictVerifier } from '../../protocol/signing/attestation.js';
import { issueChallenge, type ChallengePurpose } from '../../protocol/signing/challenge.js';
import type { SigningFailure } from '../../protocol/signing/codes.js';
import { inspectCredentialRequest, issueCredential } from '../../protocol/signing/credential.js';
import { verifyEnrollment } from '../../protocol/signing/enrollment.js';
import type { DenyReasonCode } from '../../pipeline/deny.js';
import { recordClaimant } from '../../pipeline/state.js';
import { HEADER, type HeaderMap } from '../../pipeline/headers.js';
import { FILTER_ORDER } from '../../pipeline/order.js';
import { CONTINUE, type FilterDefinition, type FilterDeps, type Outcome, type RequestContext } from '../../pipeline/types.js';
import type { ChallengeStore, StoreFailure } from '../../stores/types.js';
import { checkStanding } from '../standing.js';
import { issuanceConfig, issuanceConfigIn, type IssuanceConfig } from './config.js';

export const ISSUANCE_FILTER = 'issuance';

export type IssuanceEndpoint = 'challenge' | 'enroll' | 'credential';

/** The media type each endpoint takes (parameters such as charset are ignored). */
export const ENDPOINT_MEDIA_TYPE: Readonly<Record<IssuanceEndpoint, string>> = {
  challenge: 'application/json',
  enroll: 'application/json',
  credential: 'application/jwt',
};

/** What the body of a refusal to read an empty or unparsable body says, per endpoint. */
const MALFORMED: Readonly<Record<IssuanceEndpoint, DenyReasonCode>> = {
  challenge: 'challenge_request_malformed',
  enroll: 'enrollment_malformed',
  credential: 'credential_request_malformed',
};

/** `action` of the FilterActions this filter records (gatehouse_filter_actions_total, the access log's actions). */
export const ISSUANCE_ACTIONS = {
  enrollChallenge: 'enroll_challenge_issued',
  credentialChallenge: 'credential_challenge_issued',
  enrolled: 'device_enrolled',
  /** enrolled with a proof not bound to its login token (login.unboundProofs: accept, a transition) */
  enrolledUnbound: 'device_enrolled_unbound',
  credential: 'credential_issued',
} as const;

/** Subjects longer than this are refused: the credential and the passport carry the subject. */
const MAX_SUBJECT_LENGTH = 256;

type Denial = Extract<Outcome, { kind: 'deny' }>;

/** an authenticated login token: the subject it names and the token itself (the enrollment proof binds its hash) */
interface Login {
  readonly subject: string;
  readonly token: string;
}

const ANSWER_HEADERS = Object.freeze({ [HEADER.contentType]: 'application/json', [HEADER.cacheControl]: 'no-store' });

function answer(status: number, value: object): Outcome {
  return { kind: 'respond', status, headers: ANSWER_HEADERS, body: Buffer.from(JSON.stringify(value)) };
}

/** The media type of the one Content-Type header, lower-cased without parameters; undefined when absent or repeated. */
function mediaTypeOf(headers: HeaderMap): string | undefined {
  const values = headers.getAll(HEADER.contentType);
  if (values.length !== 1) return undefined;
  return values[0]!.split(';', 1)[0]!.trim().toLowerCase();
}

/** A bearer token as RFC 6750 §2.1 spells it. */
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*)$/i;

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function compileIssuance(config: IssuanceConfig, deps: FilterDeps) {
  const endpoints = new Map<string, IssuanceEndpoint>([
    [`${config.basePath}/challenge`, 'challenge'],
    [`${config.basePath}/enroll`, 'enroll'],
    [`${config.basePath}/credential`, 'credential'],
  ]);
  const secrets = config.challengeSecretsFile.value;
  const keyring = config.credentialKeysFile.value;
  const issuer = { issuer: config.issuer, kid: keyring.active.kid, privateKey: keyring.active.privateKey, lifetimeSeconds: config.credentialLifetimeSeconds };
  const loginKeys: JWTVerifyGetKey = createLocalJWKSet(config.login.jwksFile.value);
  const verifiers = [
    jwsVerdictVerifier({
      issuer: config.attestation.issuer,
      audience: config.attestation.audience,
      jwks: config.attestation.jwksFile.value,
      maxAgeSeconds: config.attestation.maxAgeSeconds,
    }),
    ...(config.androidKeyAttestation === undefined
      ? []
      : [androidKeyAttestationVerifier({ roots: config.androidKeyAttestation.rootsFile.value, apps: config.androidKeyAttestation.apps })]),
    ...(config.appleAppAttest === undefined
      ? []
      : [appleAppAttestVerifier({ roots: config.appleAppAttest.rootsFile.value, apps: config.appleAppAttest.apps, allowDevelopment: config.appleAppAttest.allowDevelopment })]),
  ];
  const ledger: ChallengeStore = deps.stores.challenges;
  /** the login token and the subject it named, for the body phase of an enrollment; gone with the request */
  const logins = new WeakMap<RequestContext, Login>();

  const refuse = (reason: DenyReasonCode, detail: string, headers: Record<string, string> = {}): Denial => ({
    kind: 'deny',
    reason,
    detail: `issuance: ${detail}`,
    // the client's clock matters to challenges, tokens and verdicts: it can correct it by this one
    headers: { ...headers, [HEADER.date]: new Date(deps.now()).toUTCString() },
  });
  const refuseSigning = (failure: SigningFailure): Denial => refuse(failure.code, failure.detail);
  const unavailable = (store: string, failure: StoreFailure): Denial => ({
    kind: 'deny',
    reason: 'dependency_unavailable',
    detail: `issuance: ${store}: ${failure.reason} (${failure.detail})`,
  });
  const nowSeconds = (): number => Math.floor(deps.now() / 1000);

  /** Burns the challenge: ok, or the refusal to answer (challenge_used, a ledger outage). */
  async function burn(challengeId: string, expiresAt: number): Promise<Denial | undefined> {
    const consumed = await ledger.consume(challengeId, expiresAt, nowSeconds());
    if ('reason' in consumed) return unavailable('challenges', consumed);
    return consumed.ok ? undefined : refuseSigning(consumed);
  }

  /** RFC 6750: the app's login token → its subject, or 401. */
  async function authenticate(ctx: RequestContext): Promise<Login | Denial> {
    const values = ctx.requestHeaders.getAll(HEADER.authorization);
    const bearer = values.length === 1 ? BEARER.exec(values[0]!) : null;
    if (values.length === 0 || (bearer === null && !/^bearer(?: |$)/i.test(values[0]!))) {
      return refuse('login_token_missing', 'no bearer token', { [HEADER.wwwAuthenticate]: 'Bearer realm="gatehouse"' });
    }
    const invalid = (detail: string): Denial => refuse('login_token_invalid', detail, { [HEADER.wwwAuthenticate]: 'Bearer realm="gatehouse", error="invalid_token"' });
    if (bearer === null) return invalid(values.length > 1 ? 'more than one Authorization header' : 'Authorization is not a well-formed bearer token');
    let subject: unknown;
    try {
      const { payload } = await jwtVerify(bearer[1]!, loginKeys, {
        issuer: config.login.issuer,
        audience: config.login.audience,
        algorithms: [...config.login.algorithms],
        clockTolerance: config.login.clockToleranceSeconds,
        currentDate: new Date(deps.now()),
        requiredClaims: ['sub', 'exp'],
      });
      subject = payload.sub;
    } catch (error) {
      return invalid(`login token refused: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (typeof subject !== 'string' || subject.length === 0 || subject.length > MAX_SUBJECT_LENGTH) return invalid(`sub must be a string of 1-${MAX_SUBJECT_LENGTH} characters`);
    return { subject, token: bearer[1]! };
  }

  function challenge(ctx: RequestContext, body: Buffer): Outcome {
    let request: unknown;
    try {
      request = JSON.parse(body.toString('utf8'));
    } catch {
      return refuse('challenge_request_malformed', 'body is not JSON');
    }
    const purpose = isRecord(request) ? request['purpose'] : undefined;
    if (purpose !== 'enroll' && purpose !== 'credential') return refuse('challenge_request_malformed', 'purpose must be "enroll" or "credential"');
    const issued = issueChallenge({ secrets, purpose: purpose satisfies ChallengePurpose, now: nowSeconds(), ttlSeconds: config.challengeTtlSeconds });
    ctx.recordAction({ filter: ISSUANCE_FILTER, action: purpose === 'enroll' ? ISSUANCE_ACTIONS.enrollChallenge : ISSUANCE_ACTIONS.credentialChallenge });
    return answer(200, { challenge: issued.challenge, purpose, expiresAt: issued.expiresAt });
  }

  async function enroll(ctx: RequestContext, body: Buffer): Promise<Outcome> {
    const login = logins.get(ctx);
    logins.delete(ctx);
    // only a request authenticated at its headers reaches here (a refusal ends the chain)
    if (login === undefined) return { kind: 'deny', reason: 'internal_error', detail: 'issuance: an enrollment body came without an authenticated subject' };
    const { subject } = login;
    // for a security event: the account its login token authenticated. A bearer token is replayable,
    // so this is `credential` trust: reported, never enough for a disable rule.
    recordClaimant(ctx, { subject, trust: 'credential' });
    let request: unknown;
    try {
      request = JSON.parse(body.toString('utf8'));
    } catch {
      return refuse('enrollment_malformed', 'body is not JSON');
    }
    const verified = await verifyEnrollment(request, {
      challengeSecrets: secrets,
      verifiers,
      minIntegrity: config.minIntegrity,
      allowedAlgorithms: config.allowedAlgorithms,
      subject,
      loginToken: login.token,
      unboundProofs: config.login.unboundProofs,
      now: nowSeconds(),
    });
    if (!verified.ok) return refuseSigning(verified);
    const { device } = verified;
    // the enrolling account, and the key if it was enrolled before (revocation belongs to the key:
    // enrolling a revoked key again never revives it)
    const standing = await checkStanding(deps.stores, { deviceId: device.deviceId, subject, unknownDevice: 'allow' });
    if (standing.kind === 'refused') return refuse(standing.reason, standing.detail);
    if (standing.kind === 'unavailable') return unavailable(standing.failures[0]!.store, standing.failures[0]!.failure);
    const burnt = await burn(verified.challengeId, verified.challengeExpiresAt);
    if (burnt !== undefined) return burnt;
    const stored = await deps.stores.devices.put(device);
    // the challenge is gone: the app asks for a new one, as on any challenge_* answer
    if (!stored.ok) return unavailable('devices', stored);
    ctx.recordAction({ filter: ISSUANCE_FILTER, action: verified.boundToLogin ? ISSUANCE_ACTIONS.enrolled : ISSUANCE_ACTIONS.enrolledUnbound });
    return answer(201, { deviceId: device.deviceId, integrity: device.integrityLevel, e2ee: device.e2eePublicKey !== undefined });
  }

  async function credential(ctx: RequestContext, body: Buffer): Promise<Outcome> {
    // the compact JWS, as sent; a trailing newline (curl --data @file) is not part of it
    const request = body.toString('utf8').trim();
    const named = inspectCredentialRequest(request);
    if (!named.ok) return refuseSigning(named);
    // for a security event: the device the request names (and its account), a claim until the device proof verifies
    recordClaimant(ctx, { device: named.deviceId, trust: 'claimed' });
    const lookup = await deps.stores.devices.get(named.deviceId);
    if (!lookup.ok) return unavailable('devices', lookup);
    const stored = lookup.device;
    if (stored !== undefined) recordClaimant(ctx, { subject: stored.device.subject, device: named.deviceId, trust: 'claimed' });
    const standing = await checkStanding(deps.stores, { deviceId: named.deviceId, read: { device: stored } });
    if (standing.kind === 'refused') return refuse(standing.reason, standing.detail);
    if (standing.kind === 'unavailable') return unavailable(standing.failures[0]!.store, standing.failures[0]!.failure);
    if (stored === undefined) return { kind: 'deny', reason: 'internal_error', detail: 'issuance: the standing of an unknown device was good' };
    const issued = await issueCredential(request, { device: stored.device, challengeSecrets: secrets, issuer, allowedAlgorithms: config.allowedAlgorithms, now: nowSeconds() });
    if (!issued.ok) return refuseSigning(issued);
    // never handed out unless the challenge was burnt
    const burnt = await burn(issued.challengeId, issued.challengeExpiresAt);
    if (burnt !== undefined) return burnt;
    ctx.recordAction({ filter: ISSUANCE_FILTER, action: ISSUANCE_ACTIONS.credential });
    return answer(200, { credential: issued.credential, keyid: issued.keyThumbprint, expiresAt: issued.expiresAt });
  }

  return {
    onRequestHeaders(ctx: RequestContext): Outcome | Promise<Outcome> {
      const endpoint = endpoints.get(ctx.pathname);
      if (endpoint === undefined) return refuse('route_not_found', `no issuance endpoint at ${ctx.pathname}`);
      if (ctx.method !== 'POST') return refuse('method_not_allowed', `${ctx.method} ${endpoint}`, { [HEADER.allow]: 'POST' });
      const mediaType = mediaTypeOf(ctx.requestHeaders);
      if (mediaType !== ENDPOINT_MEDIA_TYPE[endpoint]) return refuse('content_type_unsupported', `${endpoint} takes ${ENDPOINT_MEDIA_TYPE[endpoint]}, got ${JSON.stringify(mediaType ?? null)}`);
      const declared = Number(ctx.requestHeaders.get(HEADER.contentLength) ?? 0);
      if (declared > config.maxRequestBytes) return refuse('body_too_large', `content-length ${declared} > ${config.maxRequestBytes}`);
      // ext_authz cut the body at its max_request_bytes (allow_partial_message)
      if (ctx.requestHeaders.get(HEADER.authzPartialBody) === 'true') return refuse('body_too_large', 'Envoy sent a partial body');
      if (!ctx.requestBodyFollows) {
        // a body was sent (its length says so) but Envoy did not pass it on: ext_authz without with_request_body
        if (declared > 0 || ctx.requestHeaders.has(HEADER.transferEncoding)) return refuse('request_body_not_forwarded', `${endpoint}: content-length ${declared}, no body from Envoy`);
        return refuse(MALFORMED[endpoint], `${endpoint}: the request has no body`);
      }
      if (endpoint !== 'enroll') return CONTINUE;
      return authenticate(ctx).then((authenticated): Outcome => {
        if ('kind' in authenticated) return authenticated;
        logins.set(ctx, authenticated);
        return CONTINUE;
      });
    },
    onRequestBody(ctx: RequestContext, body: Buffer): Outcome | Promise<Outcome> {
      if (body.length > config.maxRequestBytes) return refuse('body_too_large', `body of ${body.length} bytes > ${config.maxRequestBytes}`);
      const endpoint = endpoints.get(ctx.pathname);
      if (body.length === 0 && endpoint !== undefined) return refuse(MALFORMED[endpoint], `${endpoint}: the request body is empty`);
      switch (endpoint) {
        case 'challenge':
          return challenge(ctx, body);
        case 'enroll':
          return enroll(ctx, body);
        case 'credential':
          return credential(ctx, body);
        case undefined:
          // refused at the headers; a body phase never runs for it
          return { kind: 'deny', reason: 'internal_error', detail: 'issuance: a request body for no endpoint' };
      }
    },
  };
}

export const issuanceFilter: FilterDefinition<typeof issuanceConfig> = {
  name: ISSUANCE_FILTER,
  order: FILTER_ORDER.issuance,
  configSchema: issuanceConfig,
  configSchemaIn: issuanceConfigIn,
  // every endpoint reads its body; Envoy sends one only when the request has one
  needs: () => ({ requestBody: true }),
  create: (config, deps) => compileIssuance(config, deps),
};
