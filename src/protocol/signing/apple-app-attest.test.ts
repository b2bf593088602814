// The apple-app-attest verifier against attestation objects built here (test root → intermediate →
// credential certificate with the nonce extension, CBOR like attestKey's): what it accepts, and each
// refusal with its code — never a throw.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { test } from 'node:test';
import { OctetString } from '@peculiar/asn1-schema';
import { Extension } from '@peculiar/asn1-x509';
import { encode } from 'cbor2';
import { testAttestationCa, type CertSpec } from './android-test-support.js';
import {
  AAGUID_DEVELOPMENT,
  APPLE_NONCE_OID,
  appleAppAttestVerifier,
  appleClientDataHash,
  encodeAppleAppAttestEvidence,
  MAX_EVIDENCE_LENGTH,
  MAX_X5C_LENGTH,
} from './apple-app-attest.js';
import { APPLE_APP, attestationObject, nonceExtension, type AttestationObjectSpec } from './apple-test-support.js';
import { expectationFor, keyThumbprint, TEST_CHALLENGE } from './attestation-test-support.js';

const CHALLENGE = TEST_CHALLENGE;
const APP_ID = 'A1B2C3D4E5.com.example.superapp';
const ca = testAttestationCa();
const device = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const thumbprintOf = keyThumbprint;
const expected = expectationFor(device.publicKey);
const verifier = appleAppAttestVerifier({ roots: [ca.root], apps: [{ teamId: 'ZZZZZZZZZZ', bundleId: 'com.example.other' }, APPLE_APP] });
const evidenceFor = (spec: Partial<AttestationObjectSpec> = {}, credCert: Partial<CertSpec> = {}, ofCa = ca): string =>
  encodeAppleAppAttestEvidence(attestationObject(ofCa, { challenge: CHALLENGE, deviceKeyThumbprint: thumbprintOf(device.publicKey), ...spec }, credCert));

async function refused(evidence: string, detail: RegExp, expectation = expected(), by = verifier): Promise<void> {
  const outcome = await by.verify(evidence, expectation);
  assert.equal(outcome.ok, false, `accepted: ${detail}`);
  if (outcome.ok) return;
  assert.equal(outcome.code, 'attestation_invalid');
  assert.match(outcome.detail, /^apple-app-attest: /);
  assert.match(outcome.detail, detail);
}

test('a production App Attest key vouching for this challenge and device key → strong; the appId is <teamId>.<bundleId>', async () => {
  assert.deepEqual(await verifier.verify(evidenceFor(), expected()), { ok: true, verdict: { integrityLevel: 'strong', appId: APP_ID } });
  // x5c with the root appended is anchored too
  const withRoot = evidenceFor({ x5c: (chain) => [...chain, ca.rootDer] });
  assert.equal((await verifier.verify(withRoot, expected())).ok, true);
  assert.equal(appleClientDataHash(CHALLENGE, 'x').length, 32);
});

test('the development environment is refused unless allowed, and then is only device', async () => {
  await refused(evidenceFor({ aaguid: AAGUID_DEVELOPMENT }), /development App Attest environment \(aaguid "appattestdevelop"\), which is not allowed/);
  const development = appleAppAttestVerifier({ roots: [ca.root], apps: [APPLE_APP], allowDevelopment: true });
  assert.deepEqual(await development.verify(evidenceFor({ aaguid: AAGUID_DEVELOPMENT }), expected()), { ok: true, verdict: { integrityLevel: 'device', appId: APP_ID } });
  assert.deepEqual(await development.verify(evidenceFor(), expected()), { ok: true, verdict: { integrityLevel: 'strong', appId: APP_ID } });
  await refused(evidenceFor({ aaguid: Buffer.alloc(16) }), /aaguid 0{32} is neither App Attest environment/);
});

test('clientDataHash commits to the challenge: another challenge is refused', async () => {
  await refused(evidenceFor(), /nonce is not SHA-256\(authData ‖ clientDataHash\) for this enrollment challenge and device key/, expected({ challenge: 'enroll.BBBBBBBBBBBBBBBBBBBBBB.1900000000.another' }));
  // the challenge alone (no thumbprint) is not the commitment
  await refused(evidenceFor({ deviceKeyThumbprint: '' }), /nonce is not SHA-256/);
});

test('clientDataHash commits to the device key: an attestation for another key is refused', async () => {
  const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  await refused(evidenceFor(), /nonce is not SHA-256\(authData ‖ clientDataHash\)/, expected({ deviceKeyThumbprint: thumbprintOf(other.publicKey) }));
  await refused(evidenceFor({ deviceKeyThumbprint: thumbprintOf(other.publicKey) }), /nonce is not SHA-256/);
  // a nonce over other authData (e.g. the certificate of one attestation, the authData of another)
  await refused(evidenceFor({ nonce: new Uint8Array(32).fill(1) }), /nonce is not SHA-256/);
});

test('authData: rpIdHash of an allowed app, counter 0, attested credential data, credentialId = the key id', async () => {
  await refused(evidenceFor({ app: { teamId: 'A1B2C3D4E5', bundleId: 'com.evil.clone' } }), /rpIdHash [0-9a-f]{64} is not SHA-256 of an allowed App ID/);
  await refused(evidenceFor({ app: { teamId: 'EVILTEAM00', bundleId: APPLE_APP.bundleId } }), /rpIdHash .* is not SHA-256 of an allowed App ID/);
  await refused(evidenceFor({ counter: 1 }), /counter is 1, not 0/);
  await refused(evidenceFor({ flags: 0x01 }), /flag AT is not set/);
  await refused(evidenceFor({ credentialId: new Uint8Array(32).fill(3) }), /credentialId is not the key id/);
  await refused(evidenceFor({ credentialId: new Uint8Array(16) }), /credentialId is not the key id/);
  // the credential certificate key of another App Attest key than authData names
  const authKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
  await refused(evidenceFor({ appAttestKey: authKey }, { publicKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey }), /credentialId is not the key id/);
  // an Ed25519 credential certificate key is not App Attest's
  await refused(evidenceFor({}, { publicKey: generateKeyPairSync('ed25519').publicKey }), /credential certificate key is not a P-256 key/);
});

test('the chain: configured root, every link signed by the next, issuers are CAs, every certificate valid now', async () => {
  await refused(evidenceFor({}, {}, testAttestationCa('Stranger Root')), /x5c does not end at, or under, a configured root/);
  // same names as the configured CA, other keys
  await refused(evidenceFor({}, {}, testAttestationCa('Test Attestation Root')), /x5c does not end at, or under, a configured root/);
  await refused(evidenceFor({}, { signingKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey }), /x5c\[0\]: its signature does not verify/);
  await refused(evidenceFor({}, { issuer: 'Somebody Else' }), /x5c\[0\]: its issuer name/);
  // the credential certificate "issued" by a non-CA
  await refused(evidenceFor({ x5c: ([credCert]) => [credCert, credCert] }), /x5c\[0\]: its issuer is not a CA/);
  const past = new Date(Date.now() - 10 * 86_400_000);
  await refused(evidenceFor({}, { notBefore: new Date(past.getTime() - 86_400_000), notAfter: past }), /x5c\[0\] \(CN=App Attest Credential\) is not valid at/);
  await refused(evidenceFor(), /x5c\[0\].*is not valid at/, expected({ now: Math.floor(Date.now() / 1000) + 400 * 86_400 }));
  const none = appleAppAttestVerifier({ roots: [], apps: [APPLE_APP] });
  await refused(evidenceFor(), /configured root/, expected(), none);
});

test('the credential certificate must carry one nonce extension that parses', async () => {
  await refused(evidenceFor({}, { extensions: [] }), /no nonce extension \(1\.2\.840\.113635\.100\.8\.2\)/);
  await refused(evidenceFor({}, { extensions: [new Extension({ extnID: APPLE_NONCE_OID, extnValue: new OctetString(Buffer.from('garbage')) })] }), /nonce extension does not parse/);
  // the nonce as a bare OCTET STRING, without the SEQUENCE and [1]
  await refused(evidenceFor({}, { extensions: [new Extension({ extnID: APPLE_NONCE_OID, extnValue: new OctetString(Buffer.concat([Buffer.from([4, 32]), Buffer.alloc(32)])) })] }), /nonce extension does not parse/);
  await refused(evidenceFor({}, { extensions: [nonceExtension(new Uint8Array(16))] }), /nonce extension holds 16 bytes, not 32/);
  await refused(evidenceFor({}, { extensions: [nonceExtension(new Uint8Array(32)), nonceExtension(new Uint8Array(32))] }), /nonce extension more than once/);
});

test('the nonce extension is SEQUENCE { [1] EXPLICIT OCTET STRING }: DER 30 24 a1 22 04 20 <nonce>', () => {
  const der = Buffer.from(nonceExtension(new Uint8Array(32).fill(0xab)).extnValue.buffer);
  assert.equal(der.toString('hex'), `3024a1220420${'ab'.repeat(32)}`);
});

test('garbage evidence is refused with attestation_invalid, never a throw', async () => {
  const b64url = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64url');
  const valid = attestationObject(ca, { challenge: CHALLENGE, deviceKeyThumbprint: thumbprintOf(device.publicKey) });
  const cases: [string, RegExp][] = [
    ['', /not one CBOR item/],
    ['not base64url!', /not base64url/],
    [Buffer.from(valid).toString('base64'), /not base64url/],
    [b64url(Buffer.from('{"fmt": "apple-appattest"}')), /not one CBOR item|not a CBOR map/],
    [b64url(Buffer.concat([valid, Buffer.from([0])])), /not one CBOR item: Extra data/],
    [b64url(valid.subarray(0, valid.length - 10)), /not one CBOR item/],
    [b64url(encode([1, 2, 3])), /not a CBOR map/],
    [b64url(encode(new Map([['fmt', 'packed']]))), /fmt is "packed", not "apple-appattest"/],
    [evidenceFor({ object: { fmt: undefined } }), /fmt is null/],
    [evidenceFor({ object: { attStmt: undefined } }), /no attStmt map/],
    [evidenceFor({ object: { attStmt: [] } }), /no attStmt map/],
    [evidenceFor({ object: { authData: undefined } }), /no authData byte string/],
    [evidenceFor({ object: { authData: 'text' } }), /no authData byte string/],
    [evidenceFor({ object: { authData: new Uint8Array(40) } }), /authData is 40 bytes: too short/],
    [evidenceFor({ object: { authData: new Uint8Array(Buffer.concat([Buffer.alloc(53), Buffer.from([0x01, 0x00])])) } }), /credentialId length 256 runs past its end/],
    [evidenceFor({ receipt: 'receipt' }), /no receipt byte string/],
    [evidenceFor({ x5c: () => [] }), /x5c has 0 certificate\(s\)/],
    [evidenceFor({ x5c: ([credCert]) => [credCert] }), /x5c has 1 certificate/],
    [evidenceFor({ x5c: (chain) => Array.from({ length: MAX_X5C_LENGTH + 1 }, () => chain[1]) }), new RegExp(`x5c has ${MAX_X5C_LENGTH + 1} certificates, more than ${MAX_X5C_LENGTH}`)],
    [evidenceFor({ x5c: () => 'MIIB' }), /no x5c array/],
    [evidenceFor({ x5c: ([, intermediate]) => ['MIIB', intermediate] }), /x5c\[0\] is not a DER X\.509 certificate \(byte string\)/],
    [evidenceFor({ x5c: ([, intermediate]) => [new Uint8Array([0x30, 0x03, 1, 2, 3]), intermediate] }), /x5c\[0\] is not a DER X\.509 certificate:/],
    // duplicate keys, deep nesting and tags are refused by the decoder
    [b64url(Buffer.concat([Buffer.from([0xa2]), encode('fmt'), encode('x'), encode('fmt'), encode('y')])), /not one CBOR item/],
    [b64url(Buffer.from('81'.repeat(20) + '00', 'hex')), /not one CBOR item/],
    [b64url(encode(new Map<string, unknown>([['fmt', 'apple-appattest'], ['attStmt', new Map()], ['authData', new Uint8Array(60)]]))), /no receipt byte string/],
    ['A'.repeat(MAX_EVIDENCE_LENGTH + 1), new RegExp(`evidence is ${MAX_EVIDENCE_LENGTH + 1} characters, more than ${MAX_EVIDENCE_LENGTH}`)],
    // a CBOR byte string that claims 2 GiB
    [b64url(Buffer.from('5a7fffffff', 'hex')), /not one CBOR item/],
  ];
  for (const [evidence, detail] of cases) await refused(evidence, detail);
});
