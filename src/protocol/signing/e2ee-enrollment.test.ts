// The device's X25519 e2ee key is enrolled with the signing device key: validated, signed by the
// device-key proof (so the attested device key vouches for it), returned raw, and then it is the key
// e2ee authenticates envelopes with, under the signing device id.
import assert from 'node:assert/strict';
import { KeyObject } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { createE2eeClient } from '../../../sdk/app/e2ee.js';
import { buildEnrollmentRequest, generateE2eeKeyPair, generateSigner, jwkThumbprint, x25519PublicJwk, type RequestSigner } from '../../../sdk/app/signing.js';
import { base64urlEncode, utf8 } from '../common/base64.js';
import { decryptRequest, deviceKeyFromRaw, E2EE_FIELD_LIMITS, E2EE_REQUEST_MEDIA_TYPE, generateX25519KeyPair } from '../e2ee/index.js';
import { fixtureKeyring } from '../e2ee/fixtures.js';
import { jwsVerdictVerifier, JWS_VERDICT_FORMAT } from './attestation.js';
import { issueChallenge, type ChallengeSecrets } from './challenge.js';
import { SIGNING_FAILURES, type SigningFailure } from './codes.js';
import { loginTokenHash, verifyEnrollment, type EnrollmentOptions } from './enrollment.js';
import { importX25519PublicJwk } from './keys.js';
import { ENROLLMENT_PROOF_TYPE, JOSE_ALGORITHM } from './profile.js';
import { APP_ID, ATTESTATION_ISSUER, createAttestationService } from './test-support.js';

const codeOf = (r: { ok: true } | SigningFailure): string => (r.ok ? 'ok' : r.code);
const now = 1_764_000_000;
const secrets: ChallengeSecrets = [new Uint8Array(32).fill(5)];
const hex = (h: string): Uint8Array => Uint8Array.from(Buffer.from(h, 'hex'));
const x25519Jwk = (raw: Uint8Array) => ({ kty: 'OKP', crv: 'X25519', x: base64urlEncode(raw) });

/** RFC 7748 u-coordinates of small order, canonically encoded (the list libsodium blocks, below p). */
const SMALL_ORDER = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
  '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
].map(hex);

describe('enrolling the e2ee key', async () => {
  const attestation = await createAttestationService();
  const verifier = jwsVerdictVerifier({ issuer: ATTESTATION_ISSUER, audience: APP_ID, jwks: attestation.jwks });
  const options: EnrollmentOptions = { challengeSecrets: secrets, verifiers: [verifier], minIntegrity: 'device', subject: 'user-1', loginToken: 'login-token-of-user-1', now };
  const deviceSigner = await generateSigner('ed25519');
  const deviceId = await jwkThumbprint(deviceSigner.publicJwk);
  const challenge = issueChallenge({ secrets, purpose: 'enroll', now }).challenge;
  const evidence = await attestation.verdict({ challenge, deviceKeyThumbprint: deviceId, integrity: 'strong', now });
  const e2ee = await generateE2eeKeyPair();
  const e2eeRaw = new Uint8Array(await crypto.subtle.exportKey('raw', e2ee.publicKey));

  /** An enrollment body whose proof signs `claim` (what the device meant) and whose body carries `carried` (what arrived). */
  async function enrollment(carried: unknown, ...signed: [claim?: unknown]): Promise<Record<string, unknown>> {
    const claim = signed.length > 0 ? signed[0] : carried;
    const signer: RequestSigner = deviceSigner;
    const header = base64urlEncode(utf8(JSON.stringify({ alg: JOSE_ALGORITHM[signer.algorithm], typ: ENROLLMENT_PROOF_TYPE })));
    const payload = base64urlEncode(utf8(JSON.stringify(claim === undefined ? { chl: challenge, ath: loginTokenHash('login-token-of-user-1') } : { chl: challenge, ath: loginTokenHash('login-token-of-user-1'), e2eeKey: claim })));
    const proof = `${header}.${payload}.${base64urlEncode(await signer.sign(utf8(`${header}.${payload}`)))}`;
    return { challenge, deviceKey: signer.publicJwk, ...(carried === undefined ? {} : { e2eeKey: carried }), attestation: { format: JWS_VERDICT_FORMAT, evidence }, proof };
  }

  test('round trip: the SDK enrolls the key, gatehouse returns it raw, and e2ee then authenticates that device under its device id', async () => {
    const body = await buildEnrollmentRequest({ challenge, deviceSigner, loginToken: 'login-token-of-user-1', attestation: { format: JWS_VERDICT_FORMAT, evidence }, e2eeKey: e2ee.publicKey });
    assert.deepEqual(body.e2eeKey, x25519Jwk(e2eeRaw));
    const enrolled = await verifyEnrollment(body, options);
    assert.ok(enrolled.ok, codeOf(enrolled));
    const { device } = enrolled;
    assert.deepEqual(device.e2eePublicKey, e2eeRaw);
    // The signing device id is the e2ee device key id, and fits its 1–64 visible-ASCII rule.
    assert.equal(device.deviceId, deviceId);
    assert.ok(device.deviceId.length <= E2EE_FIELD_LIMITS.deviceKeyId && /^[\x21-\x7e]+$/.test(device.deviceId));

    const keyring = fixtureKeyring();
    const store = new Map([[device.deviceId, deviceKeyFromRaw(device.e2eePublicKey!)]]);
    const deps = { keyring, deviceKey: (id: string) => store.get(id) };
    const binding = { method: 'POST', path: '/v1/transfers', audience: 'api.example.com' };
    const seal = (privateKey: KeyObject) => {
      const made = createE2eeClient({ keyConfigs: keyring.encodedKeyConfigs(), deviceKeyId: device.deviceId, devicePrivateKey: privateKey, audience: binding.audience });
      assert.ok(made.ok);
      const sealed = made.client.encryptRequest({ method: binding.method, path: binding.path, body: utf8('{"amount":"1.00"}'), contentType: 'application/json' });
      assert.ok(sealed.ok);
      return sealed.body;
    };
    // The device's (non-extractable WebCrypto) private key, as node:crypto sees it.
    const opened = decryptRequest({ ...binding, body: seal(KeyObject.from(e2ee.privateKey)), contentType: E2EE_REQUEST_MEDIA_TYPE }, deps);
    assert.ok(opened.ok, opened.ok ? '' : opened.code);
    assert.equal(opened.deviceKeyId, device.deviceId);
    assert.equal(opened.plaintext.toString('utf8'), '{"amount":"1.00"}');
    // Another X25519 key claiming the same device id does not authenticate.
    const impostor = decryptRequest({ ...binding, body: seal(generateX25519KeyPair().privateKey), contentType: E2EE_REQUEST_MEDIA_TYPE }, deps);
    assert.equal(impostor.ok ? 'ok' : impostor.code, 'e2ee_decrypt_failed');
  });

  test('the key is optional: without one the device enrolls and has no e2ee key', async () => {
    const enrolled = await verifyEnrollment(await buildEnrollmentRequest({ challenge, deviceSigner, loginToken: 'login-token-of-user-1', attestation: { format: JWS_VERDICT_FORMAT, evidence } }), options);
    assert.ok(enrolled.ok, codeOf(enrolled));
    assert.equal(enrolled.device.e2eePublicKey, undefined);
    assert.ok(!('e2eePublicKey' in enrolled.device));
  });

  test('the proof covers the key: swapped, stripped or added after signing is device_proof_invalid', async () => {
    const mine = x25519Jwk(e2eeRaw);
    const other = x25519Jwk(generateX25519KeyPair().publicKey);
    assert.equal(codeOf(await verifyEnrollment(await enrollment(mine), options)), 'ok');
    const cases: [string, unknown, unknown][] = [
      ['swapped for another key', other, mine],
      ['one bit of x changed', x25519Jwk(Uint8Array.from(e2eeRaw, (b, i) => (i === 0 ? b ^ 0x02 : b))), mine],
      ['stripped from the body', undefined, mine],
      ['added to the body', mine, undefined],
      ['signed with a private member', mine, { ...mine, d: base64urlEncode(new Uint8Array(32)) }],
      ['signed as something else', mine, mine.x],
    ];
    for (const [name, carried, claim] of cases) assert.equal(codeOf(await verifyEnrollment(await enrollment(carried, claim), options)), 'device_proof_invalid', name);
  });

  test('a key that is not a canonical, non-small-order X25519 public JWK is x25519_key_invalid, even when the proof signs it', async () => {
    const good = x25519Jwk(e2eeRaw);
    const cases: [string, unknown, RegExp?][] = [
      ['31 bytes', x25519Jwk(e2eeRaw.subarray(1)), /32 bytes/],
      ['33 bytes', x25519Jwk(Uint8Array.of(...e2eeRaw, 0))],
      ['x not base64url', { ...good, x: `${good.x.slice(0, 42)}=` }],
      ['x missing', { kty: 'OKP', crv: 'X25519' }],
      ['a private member d', { ...good, d: good.x }, /private member/],
      ['crv Ed25519', { ...good, crv: 'Ed25519' }, /not an X25519 key/],
      ['crv X448', { ...good, crv: 'X448' }, /not an X25519 key/],
      ['kty EC', { ...good, kty: 'EC' }, /not an X25519 key/],
      ['top bit set', x25519Jwk(Uint8Array.from(e2eeRaw, (b, i) => (i === 31 ? b | 0x80 : b))), /canonical/],
      ['u = p + 2 (non-canonical 2)', x25519Jwk(hex('efffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f')), /canonical/],
      ['not an object', 'BnEfrvntu_tc27JkIW83PZeXYMhTB1r_Z9yK20GOE2o'],
      ['null', null],
      ...SMALL_ORDER.map((raw, i): [string, unknown, RegExp] => [`small-order point #${i}`, x25519Jwk(raw), /small-order/]),
    ];
    for (const [name, key, detail] of cases) {
      const result = await verifyEnrollment(await enrollment(key), options);
      assert.equal(codeOf(result), 'x25519_key_invalid', name);
      if (detail !== undefined && !result.ok) assert.match(result.detail, detail, name);
    }
  });

  test('importX25519PublicJwk accepts exactly the canonical, non-small-order 32-byte keys, and never throws (property)', () => {
    const P_MINUS_1 = 2n ** 255n - 20n;
    const u = (raw: Uint8Array): bigint => raw.reduceRight((acc, b) => (acc << 8n) | BigInt(b), 0n);
    const smallOrder = new Set(SMALL_ORDER.map((raw) => Buffer.from(raw).toString('hex')));
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.constantFrom(...SMALL_ORDER)), (raw) => {
        const result = importX25519PublicJwk(x25519Jwk(raw));
        const valid = u(raw) <= P_MINUS_1 && !smallOrder.has(Buffer.from(raw).toString('hex'));
        assert.equal(result.ok, valid);
        if (result.ok) assert.deepEqual(result.raw, raw);
      }),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.anything(), (value) => {
        assert.equal(importX25519PublicJwk(value).ok, false);
      }),
    );
  });

  test('no e2eeKey value makes enrollment throw', async () => {
    const good = await enrollment(x25519Jwk(e2eeRaw));
    await fc.assert(
      fc.asyncProperty(fc.anything(), async (e2eeKey) => {
        const result = await verifyEnrollment({ ...good, e2eeKey }, options);
        assert.ok(!result.ok && result.code in SIGNING_FAILURES);
      }),
      { numRuns: 200 },
    );
  });

  test('the SDK takes the key as a CryptoKey or raw bytes, and refuses anything that is not 32 bytes', async () => {
    assert.deepEqual(await x25519PublicJwk(e2ee.publicKey), x25519Jwk(e2eeRaw));
    assert.deepEqual(await x25519PublicJwk(e2eeRaw), x25519Jwk(e2eeRaw));
    await assert.rejects(x25519PublicJwk(e2eeRaw.subarray(1)), TypeError);
    const fromRaw = await buildEnrollmentRequest({ challenge, deviceSigner, loginToken: 'login-token-of-user-1', attestation: { format: JWS_VERDICT_FORMAT, evidence }, e2eeKey: e2eeRaw });
    assert.ok((await verifyEnrollment(fromRaw, options)).ok);
  });
});
