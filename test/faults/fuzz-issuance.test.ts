// Fuzzing (fast-check) the credential endpoint gatehouse answers itself (`issuance`), through the
// Envoy stand-in: one genuine credential request of an enrolled device, for one credential
// challenge, and many that are not — its bytes changed inside a decoded part, forged by another key
// (ES256, EdDSA, alg none, HS256 keyed with the device's public key), odd headers and claims, broken
// encodings. The properties: no credential is issued for any of them (always a documented denial),
// and none burns the challenge: the genuine request, sent last with the same challenge, still gets
// its credential, once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { exportJWK } from 'jose';
import { buildCredentialRequest, generateSigner, jwkThumbprint } from '../../sdk/app/signing.js';
import { base64urlDecode, base64urlEncode } from '../../src/protocol/common/base64.js';
import { get } from '../harness/helpers.js';
import { deviceApp, loginToken, post, verdict } from '../support/device-app.js';
import { endToEnd } from '../support/gatehouse.js';
import { AUTHORITY, documentedDenial, fuzzParameters, Tally, watchProcessFaults } from '../support/fuzz.js';
import { tempDir } from '../support/temp-dir.js';

const RUNS = 150;
const BASE = '/gatehouse/v1/device';
const ISSUER = 'https://gatehouse.test.invalid';
const LOGIN = { issuer: 'https://login.test.invalid', audience: 'superapp' };
const ATTEST = { issuer: 'https://attest.test.invalid', audience: 'com.example.superapp' };
const CREDENTIAL_REQUEST_TYPE = 'gh-credential-request+jwt';
const json = (value: unknown): string => base64urlEncode(Buffer.from(JSON.stringify(value)));

function compact(header: unknown, payload: unknown, signWith: (input: Buffer) => Uint8Array): string {
  const input = `${json(header)}.${json(payload)}`;
  return `${input}.${base64urlEncode(signWith(Buffer.from(input)))}`;
}

test('forged, mutated and mis-encoded credential requests never get a credential and never burn the challenge (fast-check)', async (t) => {
  const faults = watchProcessFaults(t);
  const dir = tempDir(t, 'gatehouse-fuzz-issuance-');
  const idp = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const attestation = generateKeyPairSync('ed25519');
  writeFileSync(join(dir, 'login.jwks.json'), JSON.stringify({ keys: [{ ...(await exportJWK(idp.publicKey)), kid: 'idp-1', alg: 'ES256' }] }));
  writeFileSync(join(dir, 'attest.jwks.json'), JSON.stringify({ keys: [{ ...(await exportJWK(attestation.publicKey)), kid: 'attest-1' }] }));
  writeFileSync(join(dir, 'issuer.pem'), generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }));
  writeFileSync(join(dir, 'credential-keys.json'), JSON.stringify({ keys: [{ kid: 'gh-test-1', status: 'active', file: 'issuer.pem' }] }));
  writeFileSync(join(dir, 'challenge.hex'), `${'cd'.repeat(32)}\n`);
  // the longest challenge lifetime, so the genuine request at the end is on time however slow the machine
  const e2e = await endToEnd(t, `
routes:
  - id: device
    match: { path: { prefix: ${BASE}/ } }
    filters:
      - issuance:
          basePath: ${BASE}
          challengeSecretsFile: ${join(dir, 'challenge.hex')}
          challengeTtlSeconds: 300
          issuer: ${ISSUER}
          credentialKeysFile: ${join(dir, 'credential-keys.json')}
          login: { issuer: "${LOGIN.issuer}", audience: ${LOGIN.audience}, jwksFile: ${join(dir, 'login.jwks.json')}, algorithms: [ES256] }
          attestation: { issuer: "${ATTEST.issuer}", audience: ${ATTEST.audience}, jwksFile: ${join(dir, 'attest.jwks.json')} }
`);
  const app = deviceApp(e2e.envoy, BASE);
  const device = await generateSigner('ecdsa-p256-sha256');
  const deviceId = await jwkThumbprint(device.publicJwk);
  const login = await loginToken({ privateKey: idp.privateKey, kid: 'idp-1', alg: 'ES256' }, { ...LOGIN, subject: 'user-42' });
  const enrolled = await app.enrollAs(login, (await app.challenge('enroll')).challenge, device, (challenge, thumbprint) => verdict({ privateKey: attestation.privateKey, kid: 'attest-1', alg: 'EdDSA' }, { ...ATTEST, challenge, deviceKeyThumbprint: thumbprint, integrity: 'strong' }));
  assert.equal(enrolled.status, 201, enrolled.body.toString());

  const { challenge } = await app.challenge('credential');
  const ephemeral = await generateSigner('ed25519');
  const genuine = await buildCredentialRequest({ challenge, deviceSigner: device, ephemeralSigner: ephemeral });
  const [genuineHeader, genuinePayload, genuineSignature] = genuine.split('.') as [string, string, string];
  const payload = { chl: challenge, dev: deviceId, jwk: ephemeral.publicJwk };
  const attacker = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const attackerEd = generateKeyPairSync('ed25519');
  const devicePublicJwk = JSON.stringify(device.publicJwk);

  const es256 = (key: KeyObject) => (input: Buffer): Uint8Array => sign('sha256', input, { key, dsaEncoding: 'ieee-p1363' });
  const odd = fc.oneof(fc.jsonValue({ maxDepth: 1 }), fc.constantFrom('', 'enroll.x', '__proto__', 0, null, [], {}));
  const forged = fc
    .tuple(
      fc.record({ alg: fc.constantFrom('ES256', 'EdDSA', 'none', 'HS256', ''), typ: fc.oneof(fc.constant(CREDENTIAL_REQUEST_TYPE), fc.constantFrom('JWT', 'gh-credential+jwt')) }, { requiredKeys: [] }),
      fc.array(fc.tuple(fc.constantFrom('chl', 'dev', 'jwk'), odd), { maxLength: 2 }),
      fc.constantFrom<[string, (input: Buffer) => Uint8Array]>(
        ['attacker ES256', es256(attacker.privateKey)],
        ['attacker EdDSA', (input) => sign(null, input, attackerEd.privateKey)],
        ['HS256 keyed with the device public JWK', (input) => createHmac('sha256', devicePublicJwk).update(input).digest()],
        ['no signature', () => new Uint8Array(0)],
        ['the genuine signature', () => base64urlDecode(genuineSignature)!],
      ),
    )
    .map(([header, changes, [how, signWith]]) => ({ how: `forged (${how})`, request: compact(header, { ...payload, ...Object.fromEntries(changes) }, signWith) }));
  // the genuine request with bytes changed inside one decoded part, re-encoded canonically
  const mutated = fc.tuple(fc.constantFrom(0, 1, 2), fc.nat(), fc.integer({ min: 1, max: 255 }), fc.constantFrom('flip', 'cut', 'append')).map(([part, at, value, how]) => {
    const parts = [genuineHeader, genuinePayload, genuineSignature];
    const bytes = Buffer.from(base64urlDecode(parts[part]!)!);
    const i = at % bytes.length;
    const changed = how === 'flip' ? Buffer.from(bytes).fill(bytes[i]! ^ value, i, i + 1) : how === 'cut' ? bytes.subarray(0, i) : Buffer.concat([bytes, Buffer.from([value])]);
    parts[part] = base64urlEncode(changed);
    return { how: `the genuine request, part ${part} ${how} at ${i}`, request: parts.join('.') };
  });
  const encodings = fc.constantFrom(
    ['padded', `${genuineHeader}==.${genuinePayload}.${genuineSignature}`],
    ['four parts', `${genuine}.`],
    ['two parts', `${genuineHeader}.${genuinePayload}`],
    ['as JSON', JSON.stringify({ request: genuine })],
    ['twice', `${genuine}${genuine}`],
    ['empty', ''],
  ).map(([what, request]) => ({ how: `encoding: ${what}`, request }));
  // a forgery that rebuilds the genuine request byte for byte (its header, its claims, its signature) is no forgery
  const input = fc.oneof({ weight: 4, arbitrary: forged.filter((f) => f.request !== genuine) }, { weight: 4, arbitrary: mutated.filter((m) => m.request !== genuine) }, { weight: 1, arbitrary: encodings });

  const reasons = new Tally();
  let sent = 0;
  await fc.assert(
    fc.asyncProperty(input, async ({ how, request }) => {
      sent++;
      const answer = await e2e.envoy.request(post(`${BASE}/credential`, 'application/jwt', request, [], AUTHORITY));
      assert.ok(answer.status >= 400, `${how}: ${answer.status} ${answer.body.toString().slice(0, 200)}`);
      const denial = documentedDenial(answer.status, get(answer.headers, 'x-gatehouse-reason'));
      assert.ok(denial.ok, `${how}: ${denial.ok ? '' : denial.why}`);
      reasons.add(denial.reason);
    }),
    fuzzParameters(RUNS),
  );
  faults.assertNone();

  const issued = await e2e.envoy.request(post(`${BASE}/credential`, 'application/jwt', genuine, [], AUTHORITY));
  assert.equal(issued.status, 200, `the challenge survived ${sent} refused requests: ${issued.body.toString()}`);
  const again = await e2e.envoy.request(post(`${BASE}/credential`, 'application/jwt', genuine, [], AUTHORITY));
  assert.equal(get(again.headers, 'x-gatehouse-reason'), 'challenge_used', 'and is single use');
  t.diagnostic(`fuzz credential requests: ${sent} requests, 0 credentials issued, the challenge not burnt; denials: ${reasons.toString()}`);
});
