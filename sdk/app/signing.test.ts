import assert from 'node:assert/strict';
import { createHash, createPublicKey, generateKeyPairSync, sign as nodeSign, verify as nodeVerify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseDictionary } from '../../src/protocol/common/sfv.js';
import { decodeCompactJws, verifyDecodedJws } from '../../src/protocol/signing/jws.js';
import { importPublicJwk, verifyRaw } from '../../src/protocol/signing/keys.js';
import { ENROLLMENT_PROOF_TYPE, REQUIRED_COMPONENTS, normalizePublicJwk } from '../../src/protocol/signing/profile.js';
import { createWorld, requestInput } from '../../src/protocol/signing/test-support.js';
import { buildEnrollmentRequest, contentDigest, credentialExpiresAt, ecdsaDerToRaw, generateSigner, jwkThumbprint, signRequest, type RequestSigner } from './signing.js';

const here = dirname(fileURLToPath(import.meta.url));

test('contentDigest reproduces RFC 9530 Appendix D for {"hello": "world"}', async () => {
  assert.equal(await contentDigest(new TextEncoder().encode('{"hello": "world"}')), 'sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:');
});

test('signRequest adds exactly the four profile headers, covering the required components with the profile parameters in order', async () => {
  const world = await createWorld();
  const body = new TextEncoder().encode('{"amount":"1.00"}');
  const headers = await signRequest(
    { method: 'POST', authority: 'api.example.com', path: '/v1/pay', query: 'a=1', body },
    { credential: world.credential, signer: world.ephemeralSigner, now: world.now, nonce: 'AAAAAAAAAAAAAAAAAAAAAA', expiresInSeconds: 20 },
  );
  assert.deepEqual(Object.keys(headers).sort(), ['content-digest', 'device-credential', 'signature', 'signature-input']);
  const input = parseDictionary(headers['signature-input']!)?.get('sig');
  assert.ok(input?.kind === 'inner-list');
  assert.deepEqual(input.items.map((i) => i.value.value), [...REQUIRED_COMPONENTS]);
  assert.deepEqual([...input.params.keys()], ['created', 'expires', 'nonce', 'keyid', 'alg', 'tag']);
  assert.equal(input.params.get('expires')?.value, world.now + 20);
  assert.equal(input.params.get('keyid')?.value, await jwkThumbprint(world.ephemeralSigner.publicJwk));
  const signature = parseDictionary(headers.signature!)?.get('sig');
  assert.ok(signature?.kind === 'item' && signature.value.type === 'bytes');
  assert.equal(signature.value.value.length, 64, 'ECDSA signatures are raw r‖s');
  const verdict = world.verify(requestInput({ method: 'POST', authority: 'api.example.com', path: '/v1/pay', query: 'a=1', body }, headers, world.now));
  assert.ok(verdict.ok, verdict.ok ? '' : verdict.code);
  assert.equal(verdict.nonce, 'AAAAAAAAAAAAAAAAAAAAAA');
  assert.equal(credentialExpiresAt(world.credential), verdict.credentialExpiresAt);
  assert.equal(credentialExpiresAt('not.a-credential'), undefined);
});

test('a keystore-backed device key plugs in through RequestSigner, its DER output converted by ecdsaDerToRaw', async () => {
  // node:crypto stands in for the Secure Enclave / Android Keystore: it signs and returns DER, as they do.
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const publicJwk = normalizePublicJwk(publicKey.export({ format: 'jwk' }));
  assert.ok(publicJwk);
  const keystoreSigner: RequestSigner = {
    algorithm: 'ecdsa-p256-sha256',
    publicJwk,
    sign: (data) => Promise.resolve(ecdsaDerToRaw(nodeSign('sha256', data, privateKey))),
  };
  const request = await buildEnrollmentRequest({ challenge: 'enroll.x', deviceSigner: keystoreSigner, loginToken: 'login.token', attestation: { format: 'gh-jws-verdict', evidence: 'e' } });
  const proof = decodeCompactJws(request.proof);
  const deviceKey = importPublicJwk(request.deviceKey);
  assert.ok(proof && deviceKey);
  assert.deepEqual(proof.header, { alg: 'ES256', typ: ENROLLMENT_PROOF_TYPE });
  // ath: base64url SHA-256 of the login token, as RFC 9449 hashes an access token
  assert.deepEqual(proof.payload, { chl: 'enroll.x', ath: createHash('sha256').update('login.token').digest('base64url') });
  assert.ok(verifyDecodedJws(proof, 'ecdsa-p256-sha256', ENROLLMENT_PROOF_TYPE, deviceKey.key));
});

test('ecdsaDerToRaw turns keystore DER signatures into the r‖s node produces, and refuses malformed DER', () => {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const publicKey = createPublicKey(privateKey);
  for (let i = 0; i < 200; i++) {
    const data = new TextEncoder().encode(`message ${i}`);
    const der = nodeSign('sha256', data, privateKey); // DER, as a phone keystore returns
    const raw = ecdsaDerToRaw(der);
    assert.equal(raw.length, 64);
    assert.ok(nodeVerify('sha256', data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, raw));
  }
  for (const bad of [[], [0x31, 0x00], [0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01], [0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0x00]]) {
    assert.throws(() => ecdsaDerToRaw(Uint8Array.from(bad)), TypeError);
  }
});

test('generateSigner makes ed25519 and P-256 keys whose signatures node verifies', async () => {
  for (const algorithm of ['ed25519', 'ecdsa-p256-sha256'] as const) {
    const signer = await generateSigner(algorithm);
    const imported = importPublicJwk(signer.publicJwk);
    assert.ok(imported);
    assert.equal(imported.algorithm, algorithm);
    const data = new TextEncoder().encode('hello');
    assert.ok(verifyRaw(algorithm, imported.key, data, await signer.sign(data)));
  }
});

test('the SDK and every module it loads use no Node built-in at run time, so it bundles for browsers and React Native', () => {
  const seen = new Set<string>();
  const visit = (file: string): void => {
    if (seen.has(file)) return;
    seen.add(file);
    const source = readFileSync(file, 'utf8');
    for (const match of source.matchAll(/^import\s+(type\s+)?[^'"]*from\s+'([^']+)'/gm)) {
      const [, typeOnly, specifier] = match as unknown as [string, string | undefined, string];
      if (typeOnly !== undefined) continue;
      assert.ok(!specifier.startsWith('node:') && specifier !== 'jose', `${file} imports ${specifier} at run time`);
      if (specifier.startsWith('.')) visit(resolve(dirname(file), specifier.replace(/\.js$/, '.ts')));
    }
  };
  visit(resolve(here, 'signing.ts'));
  assert.ok(seen.size >= 5, [...seen].join(', '));
});

test('the platform attestation helpers hash and encode what the gateway verifiers check (Android Key Attestation, Apple App Attest)', async () => {
  const { androidAttestationChallenge: sdkAndroidChallenge, androidKeyAttestationEvidence, appleClientDataHash: sdkClientDataHash, appleAppAttestEvidence } = await import('./signing.js');
  const gatewayAndroid = await import('../../src/protocol/signing/android-key-attestation.js');
  const gatewayApple = await import('../../src/protocol/signing/apple-app-attest.js');
  const { attestationChain, testAttestationCa, ANDROID_PACKAGE, ANDROID_SIGNING_DIGEST } = await import('../../src/protocol/signing/android-test-support.js');
  const { attestationObject, APPLE_APP } = await import('../../src/protocol/signing/apple-test-support.js');
  const challenge = 'enroll.AAAAAAAAAAAAAAAAAAAAAA.1900000000.mac';
  const device = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const thumbprint = await jwkThumbprint(normalizePublicJwk(device.publicKey.export({ format: 'jwk' }))!);
  const expected = { challenge, deviceKeyThumbprint: thumbprint, now: Math.floor(Date.now() / 1000) };

  assert.deepEqual(await sdkAndroidChallenge(challenge), gatewayAndroid.androidAttestationChallenge(challenge));
  const ca = testAttestationCa();
  const chain = attestationChain(ca, device.publicKey, challenge);
  assert.equal(androidKeyAttestationEvidence(chain), gatewayAndroid.encodeAndroidKeyAttestationEvidence(chain));
  const odd = [Uint8Array.of(0xfb), Uint8Array.of(0xfb, 0xff), Uint8Array.of(0xfb, 0xff, 0xfe)]; // every base64 padding case, and + and /
  assert.equal(androidKeyAttestationEvidence(odd), gatewayAndroid.encodeAndroidKeyAttestationEvidence(odd));
  const android = gatewayAndroid.androidKeyAttestationVerifier({ roots: [ca.root], apps: [{ packageName: ANDROID_PACKAGE, signingCertSha256: [ANDROID_SIGNING_DIGEST] }] });
  assert.equal((await android.verify(androidKeyAttestationEvidence(chain), expected)).ok, true);

  assert.deepEqual(await sdkClientDataHash(challenge, thumbprint), gatewayApple.appleClientDataHash(challenge, thumbprint));
  assert.notDeepEqual(await sdkClientDataHash(challenge, `${thumbprint}x`), gatewayApple.appleClientDataHash(challenge, thumbprint), 'the device key is committed');
  const object = attestationObject(ca, { challenge, deviceKeyThumbprint: thumbprint });
  const apple = gatewayApple.appleAppAttestVerifier({ roots: [ca.root], apps: [APPLE_APP] });
  assert.equal((await apple.verify(appleAppAttestEvidence(object), expected)).ok, true);
});
