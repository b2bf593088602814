import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { calculateJwkThumbprint, exportJWK, jwtVerify } from 'jose';
import { buildCredentialRequest, buildEnrollmentRequest, generateSigner, jwkThumbprint as sdkThumbprint, loginTokenHash as sdkLoginTokenHash } from '../../../sdk/app/signing.js';
import { base64urlDecode, fromUtf8 } from '../common/base64.js';
import { JWS_VERDICT_FORMAT, jwsVerdictVerifier, type AttestationVerifier } from './attestation.js';
import { issueChallenge, verifyChallenge, type ChallengeSecrets } from './challenge.js';
import { SIGNING_FAILURES, type SigningFailure } from './codes.js';
import { inspectCredentialRequest, issueCredential } from './credential.js';
import { loginTokenHash, verifyEnrollment, type EnrollmentOptions } from './enrollment.js';
import { signCompactJws } from './jws.js';
import { jwkThumbprint } from './keys.js';
import { CREDENTIAL_REQUEST_TYPE, CREDENTIAL_TYPE, ENROLLMENT_PROOF_TYPE, type PublicJwk } from './profile.js';
import { APP_ID, ATTESTATION_ISSUER, CREDENTIAL_ISSUER, createAttestationService, createWorld } from './test-support.js';

const codeOf = (r: { ok: true } | SigningFailure): string => (r.ok ? 'ok' : r.code);
const now = 1_764_000_000;
const secrets: ChallengeSecrets = [new Uint8Array(32).fill(1), new Uint8Array(32).fill(2)];

describe('challenges', () => {
  test('verify for their purpose until they expire, under any of the configured secrets', () => {
    const issued = issueChallenge({ secrets, purpose: 'enroll', now, ttlSeconds: 60 });
    const ok = verifyChallenge(issued.challenge, { secrets, purpose: 'enroll', now: now + 59 });
    assert.ok(ok.ok);
    assert.equal(ok.id, issued.id);
    assert.equal(ok.expiresAt, now + 60);
    assert.equal(codeOf(verifyChallenge(issued.challenge, { secrets, purpose: 'enroll', now: now + 60 })), 'challenge_expired');
    assert.equal(codeOf(verifyChallenge(issued.challenge, { secrets, purpose: 'credential', now })), 'challenge_invalid');
    assert.equal(codeOf(verifyChallenge(issued.challenge, { secrets, purpose: 'enroll', now: Number.NaN })), 'challenge_expired');
    // Rotation: issued under the old secret (now second in the list) still verifies; a stranger's does not.
    const old = issueChallenge({ secrets: [secrets[1]!], purpose: 'enroll', now });
    assert.ok(verifyChallenge(old.challenge, { secrets, purpose: 'enroll', now }).ok);
    assert.equal(codeOf(verifyChallenge(old.challenge, { secrets: [new Uint8Array(32)], purpose: 'enroll', now })), 'challenge_invalid');
  });

  test('any change to a challenge, or any other input, is challenge_invalid without throwing', () => {
    const issued = issueChallenge({ secrets, purpose: 'credential', now });
    const extended = issued.challenge.replace(`.${issued.expiresAt}.`, `.${issued.expiresAt + 1000}.`);
    assert.equal(codeOf(verifyChallenge(extended, { secrets, purpose: 'credential', now })), 'challenge_invalid');
    fc.assert(
      fc.property(fc.oneof(fc.anything(), fc.nat({ max: issued.challenge.length - 1 }).map((i) => issued.challenge.slice(0, i) + (issued.challenge[i] === 'A' ? 'B' : 'A') + issued.challenge.slice(i + 1))), (input) => {
        assert.equal(codeOf(verifyChallenge(input, { secrets, purpose: 'credential', now })), 'challenge_invalid');
      }),
    );
  });
});

test('thumbprints: RFC 8037 A.3 Ed25519 example, and node, SDK and jose agree for P-256', async () => {
  const rfc8037: PublicJwk = { kty: 'OKP', crv: 'Ed25519', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo' };
  assert.equal(jwkThumbprint(rfc8037), 'kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k');
  assert.equal(await sdkThumbprint(rfc8037), 'kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k');
  const signer = await generateSigner('ecdsa-p256-sha256');
  const expected = await calculateJwkThumbprint({ ...signer.publicJwk });
  assert.equal(jwkThumbprint(signer.publicJwk), expected);
  assert.equal(await sdkThumbprint(signer.publicJwk), expected);
});

describe('enrollment', async () => {
  const attestation = await createAttestationService();
  const verifier = jwsVerdictVerifier({ issuer: ATTESTATION_ISSUER, audience: APP_ID, jwks: attestation.jwks });
  const options = (over: Partial<EnrollmentOptions> = {}): EnrollmentOptions => ({ challengeSecrets: secrets, verifiers: [verifier], minIntegrity: 'device', subject: 'user-1', loginToken: 'login-token-of-user-1', now, ...over });
  const deviceSigner = await generateSigner();
  const deviceId = await sdkThumbprint(deviceSigner.publicJwk);
  const challenge = issueChallenge({ secrets, purpose: 'enroll', now }).challenge;
  const verdict = (over: { challenge?: string; jkt?: string; integrity?: 'basic' | 'device' | 'strong'; audience?: string } = {}) =>
    attestation.verdict({ challenge: over.challenge ?? challenge, deviceKeyThumbprint: over.jkt ?? deviceId, integrity: over.integrity ?? 'strong', now, ...(over.audience === undefined ? {} : { audience: over.audience }) });
  const request = async (over: { evidence?: string; signer?: typeof deviceSigner; format?: string; loginToken?: string } = {}) =>
    buildEnrollmentRequest({ challenge, deviceSigner: over.signer ?? deviceSigner, loginToken: over.loginToken ?? 'login-token-of-user-1', attestation: { format: over.format ?? JWS_VERDICT_FORMAT, evidence: over.evidence ?? (await verdict()) } });

  test('accepts an attested device key and returns the record to store and the challenge id to burn', async () => {
    const result = await verifyEnrollment(await request(), options());
    assert.ok(result.ok, codeOf(result));
    assert.equal(result.device.deviceId, deviceId);
    assert.equal(result.device.integrityLevel, 'strong');
    assert.equal(result.device.subject, 'user-1');
    assert.equal(result.challengeId, challenge.split('.')[1]);
  });

  test('refuses each broken part with its code', async () => {
    const good = await request();
    const other = await generateSigner();
    const cases: [string, unknown, string, Partial<EnrollmentOptions>?][] = [
      ['not an object', 'x', 'enrollment_malformed'],
      ['no attestation', { ...good, attestation: undefined }, 'enrollment_malformed'],
      ['a credential challenge', { ...good, challenge: issueChallenge({ secrets, purpose: 'credential', now }).challenge }, 'challenge_invalid'],
      ['an expired challenge', good, 'challenge_expired', { now: now + 121 }],
      ['a private device key', { ...good, deviceKey: { ...good.deviceKey, d: 'AAAA' } }, 'key_not_allowed'],
      ['an RSA device key', { ...good, deviceKey: { kty: 'RSA', n: 'AQAB', e: 'AQAB' } }, 'key_not_allowed'],
      ['a proof by another key', { ...good, proof: (await request({ signer: other })).proof }, 'device_proof_invalid'],
      ['a verdict for another challenge', await request({ evidence: await verdict({ challenge: issueChallenge({ secrets, purpose: 'enroll', now }).challenge }) }), 'attestation_invalid'],
      ['a verdict for another key', await request({ evidence: await verdict({ jkt: await sdkThumbprint(other.publicJwk) }) }), 'attestation_invalid'],
      ['a verdict for another app', await request({ evidence: await verdict({ audience: 'com.evil.app' }) }), 'attestation_invalid'],
      ['an unknown attestation format', await request({ format: 'apple-app-attest' }), 'attestation_invalid'],
      ['a basic-integrity verdict', await request({ evidence: await verdict({ integrity: 'basic' }) }), 'attestation_insufficient'],
    ];
    for (const [name, body, code, over] of cases) assert.equal(codeOf(await verifyEnrollment(body, options(over))), code, name);
  });

  test('no input makes enrollment throw: random values and mutated fields of a good request all get codes', async () => {
    const good = await request();
    const field = fc.constantFrom('challenge', 'deviceKey', 'attestation', 'proof');
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.anything(), fc.tuple(field, fc.anything()).map(([k, v]) => ({ ...good, [k]: v }))), async (input) => {
        const result = await verifyEnrollment(input, options());
        assert.ok(!result.ok && result.code in SIGNING_FAILURES);
      }),
      { numRuns: 300 },
    );
  });

  test('the proof binds the login token: a body re-posted under another token is enrollment_login_mismatch, a proof without ath enrollment_unbound', async () => {
    // what the victim's app built for its own token, then posted by someone holding another token
    const victims = await request({ loginToken: 'login-token-of-the-victim' });
    assert.equal(codeOf(await verifyEnrollment(victims, options({ subject: 'attacker', loginToken: 'login-token-of-the-attacker' }))), 'enrollment_login_mismatch');
    assert.equal(codeOf(await verifyEnrollment(victims, options({ subject: 'attacker', loginToken: 'login-token-of-the-attacker', unboundProofs: 'accept' }))), 'enrollment_login_mismatch');
    const own = await verifyEnrollment(victims, options({ subject: 'victim', loginToken: 'login-token-of-the-victim' }));
    assert.ok(own.ok && own.boundToLogin && own.device.subject === 'victim');
    // an app built before the binding: its proof signs only chl
    const header64 = Buffer.from(JSON.stringify({ alg: 'ES256', typ: ENROLLMENT_PROOF_TYPE })).toString('base64url');
    const payload64 = Buffer.from(JSON.stringify({ chl: challenge })).toString('base64url');
    const unboundProof = `${header64}.${payload64}.${Buffer.from(await deviceSigner.sign(new TextEncoder().encode(`${header64}.${payload64}`))).toString('base64url')}`;
    const unbound = { ...victims, proof: unboundProof };
    assert.equal(codeOf(await verifyEnrollment(unbound, options())), 'enrollment_unbound');
    const accepted = await verifyEnrollment(unbound, options({ unboundProofs: 'accept' }));
    assert.ok(accepted.ok && !accepted.boundToLogin, 'accepted in a transition, and said so');
    // the claim is checked only once the device key's signature is: a changed ath breaks the proof
    const [header, , signature] = victims.proof.split('.');
    const rebound = `${header}.${Buffer.from(JSON.stringify({ chl: challenge, ath: loginTokenHash('login-token-of-the-attacker') })).toString('base64url')}.${signature}`;
    assert.equal(codeOf(await verifyEnrollment({ ...victims, proof: rebound }, options({ loginToken: 'login-token-of-the-attacker' }))), 'device_proof_invalid');
  });

  test('the SDK and gatehouse hash a login token alike (RFC 9449 ath: base64url SHA-256 of its ASCII)', async () => {
    const token = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEifQ.c2ln';
    assert.equal(await sdkLoginTokenHash(token), loginTokenHash(token));
    // RFC 9449 §7.1's example access token and its ath
    assert.equal(loginTokenHash('Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU'), 'fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo');
    await assert.rejects(sdkLoginTokenHash('has space'), TypeError);
  });

  test('a platform verifier that throws still yields a code', async () => {
    const broken: AttestationVerifier = { format: JWS_VERDICT_FORMAT, verify: () => Promise.reject(new Error('boom')) };
    assert.equal(codeOf(await verifyEnrollment(await request(), options({ verifiers: [broken] }))), 'attestation_invalid');
  });
});

describe('credential issuance', async () => {
  const world = await createWorld();
  const issuer = { issuer: CREDENTIAL_ISSUER, kid: world.issuerKey.kid, privateKey: world.issuerKey.privateKey, lifetimeSeconds: 3600 };
  const challenge = () => issueChallenge({ secrets: world.secrets, purpose: 'credential', now: world.now }).challenge;
  const issue = (request: unknown) => issueCredential(request, { device: world.device, challengeSecrets: world.secrets, issuer, now: world.now, jti: 'fixed' });

  test('issues a JWS that jose verifies with alg and typ pinned, binding the ephemeral key by cnf.jkt, capped at 10 minutes', async () => {
    const ephemeral = await generateSigner('ed25519');
    const request = await buildCredentialRequest({ challenge: challenge(), deviceSigner: world.deviceSigner, ephemeralSigner: ephemeral });
    const inspected = inspectCredentialRequest(request);
    assert.ok(inspected.ok);
    assert.equal(inspected.deviceId, world.device.deviceId);
    const issued = await issue(request);
    assert.ok(issued.ok, codeOf(issued));
    const { payload, protectedHeader } = await jwtVerify(issued.credential, world.issuerKey.publicKey, { algorithms: ['ES256'], typ: CREDENTIAL_TYPE, issuer: CREDENTIAL_ISSUER, currentDate: new Date(world.now * 1000) });
    assert.equal(protectedHeader.kid, world.issuerKey.kid);
    assert.equal(payload.sub, 'user-42');
    assert.equal(payload.dev, world.device.deviceId);
    assert.equal(payload.lvl, 'strong');
    assert.deepEqual(payload.cnf, { jkt: await sdkThumbprint(ephemeral.publicJwk), jwk: ephemeral.publicJwk });
    assert.equal(payload.exp! - payload.iat!, 600);
    assert.equal(issued.keyThumbprint, await sdkThumbprint(ephemeral.publicJwk));
  });

  test('refuses each broken request with its code', async () => {
    const ephemeral = await generateSigner();
    const otherDevice = await generateSigner();
    const good = await buildCredentialRequest({ challenge: challenge(), deviceSigner: world.deviceSigner, ephemeralSigner: ephemeral });
    const [h, p] = good.split('.') as [string, string];
    const payload = JSON.parse(fromUtf8(base64urlDecode(p)!)!) as Record<string, unknown>;
    const edDevice = generateKeyPairSync('ed25519');
    const privateJwk = { ...(await exportJWK(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey)) };
    const cases: [string, unknown, string][] = [
      ['not a JWS', 'a.b', 'credential_request_malformed'],
      ['no jwk claim', `${h}.${Buffer.from(JSON.stringify({ chl: payload.chl, dev: payload.dev })).toString('base64url')}.AAAA`, 'credential_request_malformed'],
      ['another device', await buildCredentialRequest({ challenge: challenge(), deviceSigner: otherDevice, ephemeralSigner: ephemeral }), 'credential_wrong_device'],
      ['an EdDSA header for a P-256 device', signCompactJws('ed25519', edDevice.privateKey, CREDENTIAL_REQUEST_TYPE, payload), 'algorithm_not_allowed'],
      ['a tampered payload', `${h}.${Buffer.from(JSON.stringify({ ...payload, jwk: otherDevice.publicJwk })).toString('base64url')}.${good.split('.')[2]!}`, 'device_proof_invalid'],
      ['an enrollment challenge', await buildCredentialRequest({ challenge: issueChallenge({ secrets: world.secrets, purpose: 'enroll', now: world.now }).challenge, deviceSigner: world.deviceSigner, ephemeralSigner: ephemeral }), 'challenge_invalid'],
      ['a private ephemeral key', await deviceSigned({ ...payload, jwk: privateJwk }), 'key_not_allowed'],
    ];
    for (const [name, request, code] of cases) assert.equal(codeOf(await issue(request)), code, name);

    async function deviceSigned(claims: object): Promise<string> {
      const header = Buffer.from(JSON.stringify({ alg: 'ES256', typ: CREDENTIAL_REQUEST_TYPE })).toString('base64url');
      const body = Buffer.from(JSON.stringify(claims)).toString('base64url');
      const signature = await world.deviceSigner.sign(new TextEncoder().encode(`${header}.${body}`));
      return `${header}.${body}.${Buffer.from(signature).toString('base64url')}`;
    }
  });

  test('no input makes issuance throw', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.anything(), fc.string(), fc.tuple(fc.string(), fc.string(), fc.string()).map((parts) => parts.join('.'))), async (input) => {
        const result = await issue(input);
        assert.ok(!result.ok && result.code in SIGNING_FAILURES);
      }),
      { numRuns: 500 },
    );
  });
});
