// Challenges are short-lived (a capped ttl) and single use (the ledger the caller consults after the
// pure verifiers accepted a request, before acting on it).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { buildCredentialRequest, buildEnrollmentRequest, generateSigner, jwkThumbprint } from '../../../sdk/app/signing.js';
import { jwsVerdictVerifier, JWS_VERDICT_FORMAT } from './attestation.js';
import { MAX_CHALLENGE_TTL_SECONDS, issueChallenge, verifyChallenge, type ChallengeSecrets } from './challenge.js';
import { LEDGER_CLOCK_SKEW_SECONDS, MemoryChallengeLedger, type ChallengeLedger } from './challenge-ledger.js';
import { type SigningFailure } from './codes.js';
import { issueCredential } from './credential.js';
import { verifyEnrollment } from './enrollment.js';
import { APP_ID, ATTESTATION_ISSUER, CREDENTIAL_ISSUER, createAttestationService, createWorld } from './test-support.js';

const codeOf = (r: { ok: true } | SigningFailure): string => (r.ok ? 'ok' : r.code);
const now = 1_764_000_000;
const secrets: ChallengeSecrets = [new Uint8Array(32).fill(3)];

describe('challenge lifetime', () => {
  test(`ttlSeconds is capped at ${MAX_CHALLENGE_TTL_SECONDS} s: beyond it, or not a whole positive number, is a configuration error naming the field`, () => {
    assert.equal(issueChallenge({ secrets, purpose: 'enroll', now, ttlSeconds: MAX_CHALLENGE_TTL_SECONDS }).expiresAt, now + MAX_CHALLENGE_TTL_SECONDS);
    assert.equal(issueChallenge({ secrets, purpose: 'enroll', now }).expiresAt, now + 120);
    for (const ttlSeconds of [MAX_CHALLENGE_TTL_SECONDS + 1, 3600, 0, -5, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.throws(() => issueChallenge({ secrets, purpose: 'enroll', now, ttlSeconds }), { name: 'RangeError', message: /ttlSeconds must be .* 1\.\.300, got / }, String(ttlSeconds));
    }
  });
});

describe('MemoryChallengeLedger', () => {
  test('the first use of an id is ok, a second one before its expiry is challenge_used', () => {
    const ledger = new MemoryChallengeLedger();
    assert.equal(codeOf(ledger.consume('id-1', now + 120, now)), 'ok');
    assert.equal(codeOf(ledger.consume('id-1', now + 120, now + 119)), 'challenge_used');
    assert.equal(codeOf(ledger.consume('id-2', now + 120, now + 1)), 'ok');
    assert.equal(ledger.size, 2);
  });

  test('refuses expiries that are past, NaN, or further ahead than a challenge can live (its memory bound)', () => {
    const ledger = new MemoryChallengeLedger();
    assert.equal(codeOf(ledger.consume('a', now, now)), 'challenge_expired');
    assert.equal(codeOf(ledger.consume('a', Number.NaN, now)), 'challenge_expired');
    assert.equal(codeOf(ledger.consume('a', now + 10, Number.NaN)), 'challenge_expired');
    assert.equal(codeOf(ledger.consume('a', now + MAX_CHALLENGE_TTL_SECONDS + LEDGER_CLOCK_SKEW_SECONDS + 1, now)), 'challenge_invalid');
    assert.equal(ledger.size, 0);
    // a challenge issued with the full TTL by a replica whose clock runs ahead is still consumed
    assert.equal(codeOf(ledger.consume('b', now + MAX_CHALLENGE_TTL_SECONDS + 2, now)), 'ok');
  });

  test('forgets ids once they expire: memory holds only the ids of the last 300 s', () => {
    const ledger = new MemoryChallengeLedger();
    // One challenge consumed per second for an hour, each living 120 s.
    for (let t = 0; t < 3600; t++) {
      assert.equal(codeOf(ledger.consume(`id-${t}`, now + t + 120, now + t)), 'ok');
      assert.ok(ledger.size <= 120, `size ${ledger.size} at t=${t}`);
    }
    ledger.prune(now + 3600 + 120);
    assert.equal(ledger.size, 0);
  });

  test('agrees with a model that never forgets (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom('a', 'b', 'c', 'd'), fc.integer({ min: 1, max: MAX_CHALLENGE_TTL_SECONDS }), fc.nat({ max: 90 })), { maxLength: 60 }), (steps) => {
        const ledger = new MemoryChallengeLedger();
        const accepted: { id: string; expiresAt: number }[] = [];
        let t = now;
        for (const [id, ttl, advance] of steps) {
          t += advance;
          const expected = accepted.some((a) => a.id === id && t < a.expiresAt) ? 'challenge_used' : 'ok';
          assert.equal(codeOf(ledger.consume(id, t + ttl, t)), expected);
          if (expected === 'ok') accepted.push({ id, expiresAt: t + ttl });
          assert.ok(ledger.size <= accepted.filter((a) => t < a.expiresAt).length);
        }
      }),
    );
  });
});

describe('the intended call order: verify (pure) → consume the challenge id → act', async () => {
  const attestation = await createAttestationService();
  const verifier = jwsVerdictVerifier({ issuer: ATTESTATION_ISSUER, audience: APP_ID, jwks: attestation.jwks });

  /** What the enrollment endpoint will do; the device store is a Map here. */
  async function enrollEndpoint(body: unknown, ledger: ChallengeLedger, devices: Map<string, unknown>, at: number): Promise<string> {
    const verified = await verifyEnrollment(body, { challengeSecrets: secrets, verifiers: [verifier], minIntegrity: 'basic', subject: 'user-1', loginToken: 'login-token-of-user-1', now: at });
    if (!verified.ok) return verified.code;
    const consumed = await ledger.consume(verified.challengeId, verified.challengeExpiresAt, at);
    if (!consumed.ok) return consumed.code;
    devices.set(verified.device.deviceId, verified.device);
    return 'ok';
  }

  test('the same enrollment request replayed is refused the second time with challenge_used, and stores nothing', async () => {
    const deviceSigner = await generateSigner();
    const challenge = issueChallenge({ secrets, purpose: 'enroll', now });
    const evidence = await attestation.verdict({ challenge: challenge.challenge, deviceKeyThumbprint: await jwkThumbprint(deviceSigner.publicJwk), integrity: 'device', now });
    const body = await buildEnrollmentRequest({ challenge: challenge.challenge, deviceSigner, loginToken: 'login-token-of-user-1', attestation: { format: JWS_VERDICT_FORMAT, evidence } });
    const ledger = new MemoryChallengeLedger();
    const devices = new Map<string, unknown>();
    assert.equal(await enrollEndpoint(body, ledger, devices, now), 'ok');
    devices.clear();
    assert.equal(await enrollEndpoint(body, ledger, devices, now + 5), 'challenge_used');
    assert.equal(devices.size, 0);
    // After the challenge expires the replay is refused by the challenge itself, and the ledger has forgotten it.
    assert.equal(await enrollEndpoint(body, ledger, devices, challenge.expiresAt), 'challenge_expired');
    ledger.prune(challenge.expiresAt);
    assert.equal(ledger.size, 0);
  });

  test('the same credential request replayed is refused the second time with challenge_used, and gets no credential', async () => {
    const world = await createWorld({ now });
    const ledger: ChallengeLedger = new MemoryChallengeLedger();
    const request = await buildCredentialRequest({
      challenge: issueChallenge({ secrets: world.secrets, purpose: 'credential', now }).challenge,
      deviceSigner: world.deviceSigner,
      ephemeralSigner: await generateSigner(),
    });
    const credentialEndpoint = async (at: number): Promise<string> => {
      const issued = await issueCredential(request, {
        device: world.device,
        challengeSecrets: world.secrets,
        issuer: { issuer: CREDENTIAL_ISSUER, kid: world.issuerKey.kid, privateKey: world.issuerKey.privateKey },
        now: at,
      });
      if (!issued.ok) return issued.code;
      const consumed = await ledger.consume(issued.challengeId, issued.challengeExpiresAt, at);
      return consumed.ok ? 'ok' : consumed.code;
    };
    assert.equal(await credentialEndpoint(now), 'ok');
    assert.equal(await credentialEndpoint(now + 1), 'challenge_used');
  });

  test('a challenge verifies until it expires; only the ledger makes it single use', () => {
    const issued = issueChallenge({ secrets, purpose: 'credential', now });
    const first = verifyChallenge(issued.challenge, { secrets, purpose: 'credential', now });
    const again = verifyChallenge(issued.challenge, { secrets, purpose: 'credential', now: now + 1 });
    assert.ok(first.ok && again.ok);
    const ledger = new MemoryChallengeLedger();
    assert.equal(codeOf(ledger.consume(first.id, first.expiresAt, now)), 'ok');
    assert.equal(codeOf(ledger.consume(again.id, again.expiresAt, now + 1)), 'challenge_used');
  });
});
