// The android-key-attestation verifier against chains built here (test root → intermediate → leaf with
// a KeyDescription): what it accepts, and each refusal with its code — never a throw.
import assert from 'node:assert/strict';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { test } from 'node:test';
import { SecurityLevel, VerifiedBootState } from '@peculiar/asn1-android';
import { OctetString } from '@peculiar/asn1-schema';
import { Extension } from '@peculiar/asn1-x509';
import {
  androidAttestationChallenge,
  androidKeyAttestationVerifier,
  encodeAndroidKeyAttestationEvidence,
  MAX_CHAIN_LENGTH,
  normalizeSha256Hex,
} from './android-key-attestation.js';
import { ANDROID_PACKAGE, ANDROID_SIGNING_DIGEST, attestationChain, buildCertificate, testAttestationCa, type CertSpec, type KeyDescriptionSpec } from './android-test-support.js';
import { expectationFor, keyThumbprint, TEST_CHALLENGE } from './attestation-test-support.js';

const CHALLENGE = TEST_CHALLENGE;
const ca = testAttestationCa();
const device = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const thumbprintOf = keyThumbprint;
const expected = expectationFor(device.publicKey);
const verifier = androidKeyAttestationVerifier({ roots: [ca.root], apps: [{ packageName: ANDROID_PACKAGE, signingCertSha256: [ANDROID_SIGNING_DIGEST.toUpperCase().replace(/(..)(?!$)/g, '$1:')] }] });
const evidenceFor = (spec: Partial<KeyDescriptionSpec> = {}, leaf: Partial<CertSpec> = {}, challenge = CHALLENGE): string =>
  encodeAndroidKeyAttestationEvidence(attestationChain(ca, device.publicKey, challenge, spec, leaf));

async function refused(evidence: string, detail: RegExp, expectation = expected()): Promise<void> {
  const outcome = await verifier.verify(evidence, expectation);
  assert.equal(outcome.ok, false, `accepted: ${detail}`);
  if (outcome.ok) return;
  assert.equal(outcome.code, 'attestation_invalid');
  assert.match(outcome.detail, detail);
}

test('a TrustedEnvironment key on a locked, verified device → device; StrongBox → strong; the appId is the package', async () => {
  assert.deepEqual(await verifier.verify(evidenceFor(), expected()), { ok: true, verdict: { integrityLevel: 'device', appId: ANDROID_PACKAGE } });
  assert.deepEqual(await verifier.verify(evidenceFor({ securityLevel: SecurityLevel.strongBox }), expected()), { ok: true, verdict: { integrityLevel: 'strong', appId: ANDROID_PACKAGE } });
  // StrongBox KeyMint under a TEE attestation key is only as strong as the weaker of the two
  const mixed = await verifier.verify(evidenceFor({ securityLevel: SecurityLevel.trustedEnvironment, keymasterSecurityLevel: SecurityLevel.strongBox }), expected());
  assert.deepEqual(mixed.ok && mixed.verdict.integrityLevel, 'device');
  // an Ed25519 device key (KeyMint 2+) is the device key just the same
  const ed = generateKeyPairSync('ed25519');
  const edEvidence = encodeAndroidKeyAttestationEvidence(attestationChain(ca, ed.publicKey, CHALLENGE));
  assert.deepEqual(await verifier.verify(edEvidence, expected({ deviceKeyThumbprint: thumbprintOf(ed.publicKey) })), { ok: true, verdict: { integrityLevel: 'device', appId: ANDROID_PACKAGE } });
  // a chain that stops below the root, the root being configured, is anchored too
  const [leaf, intermediate] = attestationChain(ca, device.publicKey, CHALLENGE);
  assert.equal((await verifier.verify(encodeAndroidKeyAttestationEvidence([leaf!, intermediate!]), expected())).ok, true);
});

test('an unlocked bootloader or unverified boot: the key is in hardware but the OS that names the app is not trusted → basic', async () => {
  for (const spec of [{ deviceLocked: false }, { verifiedBootState: VerifiedBootState.unverified }, { verifiedBootState: VerifiedBootState.selfSigned }, { rootOfTrust: false }, { deviceLocked: false, securityLevel: SecurityLevel.strongBox }]) {
    const outcome = await verifier.verify(evidenceFor(spec), expected());
    assert.deepEqual(outcome.ok && outcome.verdict.integrityLevel, 'basic', JSON.stringify(spec));
  }
});

test('the attestation is bound to this challenge: another challenge, or the raw challenge unhashed, is refused', async () => {
  await refused(evidenceFor({}, {}, 'enroll.BBBBBBBBBBBBBBBBBBBBBB.1900000000.another'), /attestationChallenge is not SHA-256 of this enrollment challenge/);
  await refused(evidenceFor({ challenge: Buffer.from(CHALLENGE) }), /attestationChallenge/);
  assert.equal(androidAttestationChallenge(CHALLENGE).length, 32);
});

test('the leaf key must be the enrolled device key', async () => {
  const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  await refused(evidenceFor(), /leaf certificate key is not the enrolled device key/, expected({ deviceKeyThumbprint: thumbprintOf(other.publicKey) }));
  // an RSA leaf key is never a device key
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  await refused(encodeAndroidKeyAttestationEvidence(attestationChain(ca, rsa.publicKey, CHALLENGE)), /not the enrolled device key/);
});

test('the chain: configured root, every link signed by the next, issuers are CAs, every certificate valid now', async () => {
  const stranger = testAttestationCa('Stranger Root');
  await refused(encodeAndroidKeyAttestationEvidence(attestationChain(stranger, device.publicKey, CHALLENGE)), /does not end at, or under, a configured root/);
  // same names as the configured CA, other keys: the names match, the signatures do not
  const impostor = testAttestationCa('Test Attestation Root');
  await refused(encodeAndroidKeyAttestationEvidence(attestationChain(impostor, device.publicKey, CHALLENGE)), /does not end at, or under, a configured root/);
  // a leaf signed by another key than the intermediate's
  await refused(evidenceFor({}, { signingKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey }), /chain\[0\]: its signature does not verify/);
  // the leaf's issuer name is not the intermediate
  await refused(evidenceFor({}, { issuer: 'Somebody Else' }), /chain\[0\]: its issuer name/);
  // a leaf (cA false) cannot issue: a "leaf" under another leaf
  const [leaf, intermediate, root] = attestationChain(ca, device.publicKey, CHALLENGE);
  const inner = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const under = buildCertificate({ subject: 'Under', issuer: 'Android Keystore Key', publicKey: inner.publicKey, signingKey: device.privateKey, ca: false });
  await refused(encodeAndroidKeyAttestationEvidence([under, leaf!, intermediate!, root!]), /leaf certificate key is not the enrolled device key/);
  await refused(encodeAndroidKeyAttestationEvidence([under, leaf!, intermediate!, root!]), /chain\[0\]: its issuer is not a CA/, expected({ deviceKeyThumbprint: thumbprintOf(inner.publicKey) }));
  // expired, and not yet valid
  const past = new Date(Date.now() - 10 * 86_400_000);
  await refused(evidenceFor({}, { notBefore: new Date(past.getTime() - 86_400_000), notAfter: past }), /chain\[0\] \(CN=Android Keystore Key\) is not valid at/);
  await refused(evidenceFor(), /chain\[0\].*is not valid at/, expected({ now: Math.floor(Date.now() / 1000) + 400 * 86_400 }));
});

test('the leaf must carry a KeyDescription that parses', async () => {
  await refused(evidenceFor({}, { extensions: [] }), /leaf has no KeyDescription extension \(1\.3\.6\.1\.4\.1\.11129\.2\.1\.17\)/);
});

test('Software attestation is refused: software attestation keys are extractable, so nothing it says is evidence', async () => {
  await refused(evidenceFor({ securityLevel: SecurityLevel.software }), /security level is not hardware: attestation Software, KeyMint Software/);
  await refused(evidenceFor({ securityLevel: SecurityLevel.trustedEnvironment, keymasterSecurityLevel: SecurityLevel.software }), /KeyMint Software/);
  await refused(evidenceFor({ origin: 2 }), /not generated in the secure hardware/);
});

test('the app: an allowed package, signed only by allowed certificates', async () => {
  await refused(evidenceFor({ packages: ['com.evil.clone'] }), /package "com\.evil\.clone" is not allowed/);
  await refused(evidenceFor({ signingDigests: ['ab'.repeat(32)] }), /signing certificate abab.* is not allowed/);
  await refused(evidenceFor({ signingDigests: [ANDROID_SIGNING_DIGEST, 'cd'.repeat(32)] }), /signing certificate cdcd.* is not allowed/);
  await refused(evidenceFor({ signingDigests: [] }), /signing certificate \(none\) is not allowed/);
  await refused(evidenceFor({ packages: [ANDROID_PACKAGE, 'com.example.shared'] }), /names 2 packages: exactly one/);
  await refused(evidenceFor({ packages: [] }), /names 0 packages/);
});

test('garbage evidence is refused with attestation_invalid, never a throw', async () => {
  const chain = attestationChain(ca, device.publicKey, CHALLENGE);
  const b64url = (text: string): string => Buffer.from(text).toString('base64url');
  const cases: [string, RegExp][] = [
    ['', /not a JSON array/],
    ['not base64url!', /not base64url/],
    [b64url('{"certs": []}'), /not a JSON array/],
    [b64url('not json'), /not a JSON array/],
    [Buffer.from([0xff, 0xfe]).toString('base64url'), /not a JSON array/],
    [b64url('[]'), /chain has 0 certificate\(s\)/],
    [b64url(JSON.stringify([Buffer.from(chain[0]!).toString('base64')])), /chain has 1 certificate/],
    [b64url(JSON.stringify(['not base64!', 'AAAA'])), /chain\[0\] is not a base64/],
    [b64url(JSON.stringify([1, 2])), /chain\[0\] is not a base64/],
    // Android's Base64.DEFAULT wraps lines (NO_WRAP is the format); the URL-safe alphabet is not it either
    [b64url(JSON.stringify([Buffer.from(chain[0]!).toString('base64').replace(/(.{76})/g, '$1\n'), 'AAAA'])), /chain\[0\] is not a base64/],
    [b64url(JSON.stringify(['MIIB-_8A', 'AAAA'])), /chain\[0\] is not a base64/],
    // base64 of a PEM: X509Certificate would take it, the evidence format does not
    [b64url(JSON.stringify([Buffer.from(new X509Certificate(chain[0]!).toString()).toString('base64'), 'AAAA'])), /chain\[0\] is not a DER X\.509 certificate$/],
    [b64url(JSON.stringify(['AAAA', 'AAAA'])), /chain\[0\] is not a DER X\.509 certificate/],
    [b64url(JSON.stringify(Array.from({ length: 50 }, () => Buffer.from(chain[1]!).toString('base64')))), new RegExp(`chain has 50 certificates, more than ${MAX_CHAIN_LENGTH}`)],
    // the JSON itself, not base64url of it
    [JSON.stringify(chain.map((c) => Buffer.from(c).toString('base64'))), /not base64url/],
  ];
  for (const [evidence, detail] of cases) await refused(evidence, detail);
  // a certificate whose KeyDescription is not one: the extension is there, its content is garbage
  const garbled = buildCertificate({
    subject: 'Android Keystore Key',
    issuer: 'Test Attestation Root Intermediate',
    publicKey: device.publicKey,
    signingKey: ca.intermediateKey,
    ca: false,
    extensions: [new Extension({ extnID: '1.3.6.1.4.1.11129.2.1.17', extnValue: new OctetString(Buffer.from('garbage')) })],
  });
  await refused(encodeAndroidKeyAttestationEvidence([garbled, chain[1]!, chain[2]!]), /KeyDescription does not parse/);
});

test('the configured root list may hold several roots; digests are compared as hex, keytool spelling accepted', async () => {
  const other = testAttestationCa('Other Root');
  const both = androidKeyAttestationVerifier({ roots: [other.root, ca.root], apps: [{ packageName: ANDROID_PACKAGE, signingCertSha256: [ANDROID_SIGNING_DIGEST] }] });
  assert.equal((await both.verify(evidenceFor(), expected())).ok, true);
  assert.equal((await both.verify(encodeAndroidKeyAttestationEvidence(attestationChain(other, device.publicKey, CHALLENGE)), expected())).ok, true);
  const none = androidKeyAttestationVerifier({ roots: [], apps: [] });
  assert.equal((await none.verify(evidenceFor(), expected())).ok, false);
  assert.equal(normalizeSha256Hex('AB:'.repeat(31) + 'AB'), 'ab'.repeat(32));
  assert.equal(normalizeSha256Hex('ab'), undefined);
  assert.ok(new X509Certificate(ca.rootPem).raw.equals(ca.root.raw));
});
