// The app side of the issuance endpoints, as an app would call them through the gateway: the SDK
// (sdk/app/signing.ts) builds the bodies, this posts them through an Envoy stand-in. Shared by the
// integration tests and `npm run demo`.
import type { KeyObject } from 'node:crypto';
import { SignJWT } from 'jose';
import { buildCredentialRequest, buildEnrollmentRequest, jwkThumbprint, type EnrollmentRequestBody, type RequestSigner } from '../../sdk/app/signing.js';
import { JWS_VERDICT_FORMAT, JWS_VERDICT_TYPE } from '../../src/protocol/signing/attestation.js';
import type { IntegrityLevel } from '../../src/protocol/signing/profile.js';
import type { ClientRequest } from '../harness/filter-manager.js';

/** What the stand-ins (ext_proc and ext_authz) answer, as far as the app cares. */
export interface GatewayAnswer {
  readonly status: number;
  readonly headers: [string, string][];
  readonly body: Buffer;
  readonly upstreamRequest?: unknown;
}

export interface Gateway {
  request(request: ClientRequest): Promise<GatewayAnswer>;
}

/** A POST with its Content-Type and Content-Length, as an HTTP client sends it. */
export function post(path: string, contentType: string, body: string, headers: [string, string][] = [], authority = 'api.example.com'): ClientRequest {
  return { method: 'POST', path, authority, headers: [['content-type', contentType], ['content-length', String(Buffer.byteLength(body))], ...headers], body };
}

export const json = (answer: GatewayAnswer): Record<string, unknown> => JSON.parse(answer.body.toString('utf8')) as Record<string, unknown>;

/** A JWT like an identity provider's login token. */
export function loginToken(key: { privateKey: KeyObject; kid: string; alg: 'ES256' | 'EdDSA' }, claims: { issuer: string; audience: string; subject?: string; expiresIn?: number; now?: number }): Promise<string> {
  const now = claims.now ?? Math.floor(Date.now() / 1000);
  const jwt = new SignJWT({})
    .setProtectedHeader({ alg: key.alg, typ: 'JWT', kid: key.kid })
    .setIssuer(claims.issuer)
    .setAudience(claims.audience)
    .setIssuedAt(now)
    .setExpirationTime(now + (claims.expiresIn ?? 600));
  return (claims.subject === undefined ? jwt : jwt.setSubject(claims.subject)).sign(key.privateKey);
}

/** A verdict like an attestation service's (format gh-jws-verdict) for this challenge and device key. */
export function verdict(
  key: { privateKey: KeyObject; kid: string; alg: 'ES256' | 'EdDSA' },
  claims: { issuer: string; audience: string; challenge: string; deviceKeyThumbprint: string; integrity: IntegrityLevel; now?: number },
): Promise<string> {
  const now = claims.now ?? Math.floor(Date.now() / 1000);
  return new SignJWT({ nonce: claims.challenge, jkt: claims.deviceKeyThumbprint, integrity: claims.integrity })
    .setProtectedHeader({ alg: key.alg, typ: JWS_VERDICT_TYPE, kid: key.kid })
    .setIssuer(claims.issuer)
    .setAudience(claims.audience)
    .setIssuedAt(now)
    .setExpirationTime(now + 120)
    .sign(key.privateKey);
}

export interface DeviceApp {
  readonly basePath: string;
  /** POST <basePath>/challenge; the answer, and the challenge when it was issued */
  challenge(purpose: 'enroll' | 'credential'): Promise<{ answer: GatewayAnswer; challenge: string }>;
  /** the enrollment body for this challenge, attested by `attest` (the attestation service's verdict), its proof bound to `loginToken` */
  enrollmentBody(challenge: string, deviceSigner: RequestSigner, attest: (challenge: string, thumbprint: string) => Promise<string>, loginToken: string, e2eeKey?: Uint8Array): Promise<EnrollmentRequestBody>;
  /** POST <basePath>/enroll with the login token */
  enroll(body: EnrollmentRequestBody | string, loginToken: string | undefined): Promise<GatewayAnswer>;
  /** builds the enrollment body for `loginToken` and posts it with that token, as an app does */
  enrollAs(loginToken: string, challenge: string, deviceSigner: RequestSigner, attest: (challenge: string, thumbprint: string) => Promise<string>): Promise<GatewayAnswer>;
  /** POST <basePath>/credential with the credential request the device key signs */
  credential(challenge: string, deviceSigner: RequestSigner, ephemeralSigner: RequestSigner): Promise<GatewayAnswer>;
}

export function deviceApp(gateway: Gateway, basePath = '/gatehouse/v1/device'): DeviceApp {
  return {
    basePath,
    async challenge(purpose) {
      const answer = await gateway.request(post(`${basePath}/challenge`, 'application/json', JSON.stringify({ purpose })));
      const challenge = answer.status === 200 ? json(answer)['challenge'] : undefined;
      return { answer, challenge: typeof challenge === 'string' ? challenge : '' };
    },
    async enrollmentBody(challenge, deviceSigner, attest, loginToken, e2eeKey) {
      const evidence = await attest(challenge, await jwkThumbprint(deviceSigner.publicJwk));
      return buildEnrollmentRequest({ challenge, deviceSigner, loginToken, attestation: { format: JWS_VERDICT_FORMAT, evidence }, ...(e2eeKey === undefined ? {} : { e2eeKey }) });
    },
    async enrollAs(loginToken, challenge, deviceSigner, attest) {
      return this.enroll(await this.enrollmentBody(challenge, deviceSigner, attest, loginToken), loginToken);
    },
    enroll(body, token) {
      const text = typeof body === 'string' ? body : JSON.stringify(body);
      return gateway.request(post(`${basePath}/enroll`, 'application/json', text, token === undefined ? [] : [['authorization', `Bearer ${token}`]]));
    },
    async credential(challenge, deviceSigner, ephemeralSigner) {
      const request = await buildCredentialRequest({ challenge, deviceSigner, ephemeralSigner });
      return gateway.request(post(`${basePath}/credential`, 'application/jwt', request));
    },
  };
}
