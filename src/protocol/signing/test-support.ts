// A complete, in-memory dynamic-security setup for tests, interop and the bench: an attestation
// service, gatehouse's issuer key, an enrolled device and a credential, built through the same public
// API (and the app SDK) that production uses. Not imported by production code.
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { SignJWT, exportJWK, type JSONWebKeySet } from 'jose';
import {
  buildCredentialRequest,
  buildEnrollmentRequest,
  generateSigner,
  jwkThumbprint,
  signRequest,
  type RequestSigner,
  type RequestToSign,
} from '../../../sdk/app/signing.js';
import { JWS_VERDICT_FORMAT, JWS_VERDICT_TYPE, jwsVerdictVerifier } from './attestation.js';
import { issueChallenge, type ChallengeSecrets } from './challenge.js';
import { CredentialCache, CredentialTrust, issueCredential } from './credential.js';
import { verifyEnrollment, type EnrolledDevice } from './enrollment.js';
import { type IntegrityLevel, type SignatureAlgorithm } from './profile.js';
import { createRequestVerifier, type RequestVerifierConfig, type SignedRequest } from './verifier.js';

export const ATTESTATION_ISSUER = 'https://attest.example';
export const APP_ID = 'com.example.superapp';
export const CREDENTIAL_ISSUER = 'https://gatehouse.example';

export interface AttestationService {
  readonly jwks: JSONWebKeySet;
  verdict(claims: { challenge: string; deviceKeyThumbprint: string; integrity: IntegrityLevel; now: number; audience?: string }): Promise<string>;
}

export async function createAttestationService(): Promise<AttestationService> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = { ...(await exportJWK(publicKey)), kid: 'attest-1', alg: 'ES256' };
  return {
    jwks: { keys: [jwk] },
    verdict: ({ challenge, deviceKeyThumbprint, integrity, now, audience }) =>
      new SignJWT({ nonce: challenge, jkt: deviceKeyThumbprint, integrity })
        .setProtectedHeader({ alg: 'ES256', typ: JWS_VERDICT_TYPE, kid: 'attest-1' })
        .setIssuer(ATTESTATION_ISSUER)
        .setAudience(audience ?? APP_ID)
        .setIssuedAt(now)
        .setExpirationTime(now + 120)
        .sign(privateKey),
  };
}

export interface World {
  readonly now: number;
  readonly secrets: ChallengeSecrets;
  readonly attestation: AttestationService;
  readonly issuerKey: { kid: string; privateKey: KeyObject; publicKey: KeyObject };
  readonly trust: CredentialTrust;
  readonly cache: CredentialCache;
  readonly verify: (request: SignedRequest) => ReturnType<ReturnType<typeof createRequestVerifier>>;
  readonly deviceSigner: RequestSigner;
  readonly ephemeralSigner: RequestSigner;
  readonly device: EnrolledDevice;
  readonly credential: string;
  /** Signs with the SDK and returns the verifier's input for that request. */
  sign(request: RequestToSign, options?: { now?: number; nonce?: string }): Promise<SignedRequest>;
}

export function requestInput(request: RequestToSign, headers: Readonly<Record<string, string>>, now: number): SignedRequest {
  return {
    method: request.method,
    authority: request.authority,
    path: request.path,
    query: request.query ?? '',
    header: (name) => headers[name],
    ...(request.body === undefined ? {} : { body: request.body }),
    now,
  };
}

export async function createWorld(
  options: {
    now?: number;
    deviceAlgorithm?: SignatureAlgorithm;
    requestAlgorithm?: SignatureAlgorithm;
    integrity?: IntegrityLevel;
    verifier?: Partial<RequestVerifierConfig>;
  } = {},
): Promise<World> {
  const now = options.now ?? 1_764_000_000;
  const secrets: ChallengeSecrets = [new Uint8Array(32).fill(7)];
  const attestation = await createAttestationService();
  const deviceSigner = await generateSigner(options.deviceAlgorithm ?? 'ecdsa-p256-sha256');
  const ephemeralSigner = await generateSigner(options.requestAlgorithm ?? 'ecdsa-p256-sha256');

  const enrollChallenge = issueChallenge({ secrets, purpose: 'enroll', now });
  const evidence = await attestation.verdict({
    challenge: enrollChallenge.challenge,
    deviceKeyThumbprint: await jwkThumbprint(deviceSigner.publicJwk),
    integrity: options.integrity ?? 'strong',
    now,
  });
  const enrollment = await verifyEnrollment(
    await buildEnrollmentRequest({ challenge: enrollChallenge.challenge, deviceSigner, loginToken: 'login-token-of-user-42', attestation: { format: JWS_VERDICT_FORMAT, evidence } }),
    {
      challengeSecrets: secrets,
      verifiers: [jwsVerdictVerifier({ issuer: ATTESTATION_ISSUER, audience: APP_ID, jwks: attestation.jwks })],
      minIntegrity: 'basic',
      subject: 'user-42',
      loginToken: 'login-token-of-user-42',
      now,
    },
  );
  if (!enrollment.ok) throw new Error(`enrollment failed: ${enrollment.code} ${enrollment.detail}`);

  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const issuerKey = { kid: 'gh-2026-11', privateKey, publicKey };
  const credentialChallenge = issueChallenge({ secrets, purpose: 'credential', now });
  const issued = await issueCredential(
    await buildCredentialRequest({ challenge: credentialChallenge.challenge, deviceSigner, ephemeralSigner }),
    { device: enrollment.device, challengeSecrets: secrets, issuer: { issuer: CREDENTIAL_ISSUER, kid: issuerKey.kid, privateKey, lifetimeSeconds: 300 }, now },
  );
  if (!issued.ok) throw new Error(`credential failed: ${issued.code} ${issued.detail}`);

  const trust = new CredentialTrust(CREDENTIAL_ISSUER, [{ kid: issuerKey.kid, publicKey }]);
  const cache = new CredentialCache(1000);
  const verify = createRequestVerifier({ trust, cache, ...options.verifier });
  return {
    now,
    secrets,
    attestation,
    issuerKey,
    trust,
    cache,
    verify,
    deviceSigner,
    ephemeralSigner,
    device: enrollment.device,
    credential: issued.credential,
    async sign(request, signOptions = {}) {
      const at = signOptions.now ?? now;
      const headers = await signRequest(request, {
        credential: issued.credential,
        signer: ephemeralSigner,
        now: at,
        ...(signOptions.nonce === undefined ? {} : { nonce: signOptions.nonce }),
      });
      return requestInput(request, headers, now);
    },
  };
}

/**
 * A fresh credential for the world's device and request key, from the same issuer (a credential
 * lives 300 s): what the app does before its credential expires. `now`: the issue time.
 */
export async function renewCredential(world: World, now: number): Promise<string> {
  const challenge = issueChallenge({ secrets: world.secrets, purpose: 'credential', now });
  const issued = await issueCredential(await buildCredentialRequest({ challenge: challenge.challenge, deviceSigner: world.deviceSigner, ephemeralSigner: world.ephemeralSigner }), {
    device: world.device,
    challengeSecrets: world.secrets,
    issuer: { issuer: CREDENTIAL_ISSUER, kid: world.issuerKey.kid, privateKey: world.issuerKey.privateKey, lifetimeSeconds: 300 },
    now,
  });
  if (!issued.ok) throw new Error(`credential failed: ${issued.code} ${issued.detail}`);
  return issued.credential;
}

/** A second device of the world's account (`user-42`), enrolled and holding its own credential from the same issuer. */
export async function anotherDevice(world: World, algorithm: SignatureAlgorithm = 'ecdsa-p256-sha256'): Promise<{ device: EnrolledDevice; credential: string; ephemeralSigner: RequestSigner; deviceSigner: RequestSigner }> {
  const deviceSigner = await generateSigner(algorithm);
  const ephemeralSigner = await generateSigner(algorithm);
  const enrollChallenge = issueChallenge({ secrets: world.secrets, purpose: 'enroll', now: world.now });
  const evidence = await world.attestation.verdict({ challenge: enrollChallenge.challenge, deviceKeyThumbprint: await jwkThumbprint(deviceSigner.publicJwk), integrity: 'strong', now: world.now });
  const enrollment = await verifyEnrollment(
    await buildEnrollmentRequest({ challenge: enrollChallenge.challenge, deviceSigner, loginToken: 'login-token-of-user-42', attestation: { format: JWS_VERDICT_FORMAT, evidence } }),
    { challengeSecrets: world.secrets, verifiers: [jwsVerdictVerifier({ issuer: ATTESTATION_ISSUER, audience: APP_ID, jwks: world.attestation.jwks })], minIntegrity: 'basic', subject: world.device.subject, loginToken: 'login-token-of-user-42', now: world.now },
  );
  if (!enrollment.ok) throw new Error(`enrollment failed: ${enrollment.code} ${enrollment.detail}`);
  const challenge = issueChallenge({ secrets: world.secrets, purpose: 'credential', now: world.now });
  const issued = await issueCredential(await buildCredentialRequest({ challenge: challenge.challenge, deviceSigner, ephemeralSigner }), {
    device: enrollment.device,
    challengeSecrets: world.secrets,
    issuer: { issuer: CREDENTIAL_ISSUER, kid: world.issuerKey.kid, privateKey: world.issuerKey.privateKey, lifetimeSeconds: 300 },
    now: world.now,
  });
  if (!issued.ok) throw new Error(`credential failed: ${issued.code} ${issued.detail}`);
  return { device: enrollment.device, credential: issued.credential, ephemeralSigner, deviceSigner };
}

/** The DER (ASN.1 SEQUENCE of two INTEGERs) form of a raw r‖s P-256 signature: what verifiers must refuse. */
export function derFromRaw(raw: Uint8Array): Uint8Array {
  const integer = (bytes: Uint8Array): number[] => {
    let i = 0;
    while (i < bytes.length - 1 && bytes[i] === 0) i++;
    const body = [...bytes.subarray(i)];
    if (body[0]! & 0x80) body.unshift(0);
    return [0x02, body.length, ...body];
  };
  const seq = [...integer(raw.subarray(0, 32)), ...integer(raw.subarray(32))];
  return Uint8Array.from([0x30, seq.length, ...seq]);
}
