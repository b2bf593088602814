// Interop: an independent Python implementation (python3-cryptography, written from
// docs/protocol/signing.md) enrolls — with its X25519 e2ee key —, obtains a credential and signs
// requests that gatehouse's verifier must accept, seals an e2ee body with the enrolled key that
// gatehouse opens as that device, and re-derives the spec's worked example byte for byte.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { decryptRequest, deviceKeyFromRaw, E2EE_REQUEST_MEDIA_TYPE } from '../../src/protocol/e2ee/index.js';
import { fixtureKeyring } from '../../src/protocol/e2ee/fixtures.js';
import { jwsVerdictVerifier } from '../../src/protocol/signing/attestation.js';
import { issueChallenge } from '../../src/protocol/signing/challenge.js';
import { CredentialCache, CredentialTrust, issueCredential } from '../../src/protocol/signing/credential.js';
import { verifyEnrollment } from '../../src/protocol/signing/enrollment.js';
import { jwkThumbprint } from '../../src/protocol/signing/keys.js';
import { normalizePublicJwk } from '../../src/protocol/signing/profile.js';
import { APP_ID, ATTESTATION_ISSUER, CREDENTIAL_ISSUER, createAttestationService } from '../../src/protocol/signing/test-support.js';
import { createRequestVerifier, type SignedRequest } from '../../src/protocol/signing/verifier.js';
import { DOC_PATH } from '../../src/protocol/signing/worked-example.js';
import { skipUnlessCi } from '../support/requires.js';

const PYTHON = '/usr/bin/python3';
const CLIENT = resolve(import.meta.dirname, 'python/signing_client.py');
const pythonReady = existsSync(PYTHON) && spawnSync(PYTHON, ['-c', 'import cryptography'], { encoding: 'utf8' }).status === 0;

function python(state: string, step: string, input: object): Record<string, unknown> {
  const run = spawnSync(PYTHON, [CLIENT, state, step], { input: JSON.stringify(input), encoding: 'utf8', timeout: 30_000 });
  assert.equal(run.status, 0, `python ${step} failed: ${run.stderr}`);
  return JSON.parse(run.stdout) as Record<string, unknown>;
}

const requests = [
  { method: 'POST', authority: 'api.example.com', path: '/v1/transfers', query: 'dry_run=1', body: '{"amount":"10.00","to":"acct-7"}' },
  { method: 'GET', authority: 'API.Example.com:8443', path: '/v1/accounts/%E2%82%AC/balance', query: 'currency=KRW&from=2026-01-01' },
  { method: 'DELETE', authority: 'api.example.com', path: '/v1/payees/7', query: '' },
  { method: 'PUT', authority: 'api.example.com', path: '/v1/profile', query: '', body: 'é ✓ binary \u0000 bytes' },
];

describe('Python client (independent implementation from the spec)', { skip: skipUnlessCi(pythonReady, 'no /usr/bin/python3 with cryptography') }, () => {
  for (const [deviceAlg, requestAlg, e2ee] of [['P-256', 'P-256', true], ['Ed25519', 'Ed25519', true], ['P-256', 'Ed25519', false]] as const) {
    test(`device ${deviceAlg}, request key ${requestAlg}, ${e2ee ? 'with' : 'without'} an e2ee key: enroll, get a credential, sign requests gatehouse accepts`, async (t) => {
      const state = mkdtempSync(join(tmpdir(), 'gh-signing-interop-'));
      t.after(() => {
        rmSync(state, { recursive: true, force: true });
      });
      const now = Math.floor(Date.now() / 1000);
      const secrets = [new Uint8Array(32).fill(9)] as const;
      const attestation = await createAttestationService();

      const device = python(state, 'device', { alg: deviceAlg, e2ee });
      const jwk = normalizePublicJwk(device.jwk);
      assert.ok(jwk, 'python device key is a valid public JWK');
      assert.equal(device.thumbprint, jwkThumbprint(jwk), 'RFC 7638 thumbprints agree');

      const enrollChallenge = issueChallenge({ secrets, purpose: 'enroll', now });
      const evidence = await attestation.verdict({ challenge: enrollChallenge.challenge, deviceKeyThumbprint: device.thumbprint as string, integrity: 'device', now });
      const loginToken = `py-login.${deviceAlg}.${requestAlg}`;
      const body = python(state, 'enroll', { challenge: enrollChallenge.challenge, evidence, login_token: loginToken });
      // the proof Python signed is bound to its login token: posted under another one, it enrolls nothing
      const reposted = await verifyEnrollment(body, { challengeSecrets: secrets, verifiers: [jwsVerdictVerifier({ issuer: ATTESTATION_ISSUER, audience: APP_ID, jwks: attestation.jwks })], minIntegrity: 'device', subject: 'someone-else', loginToken: 'another-login', now });
      assert.equal(reposted.ok ? 'ok' : reposted.code, 'enrollment_login_mismatch');
      const enrollment = await verifyEnrollment(body, {
        challengeSecrets: secrets,
        verifiers: [jwsVerdictVerifier({ issuer: ATTESTATION_ISSUER, audience: APP_ID, jwks: attestation.jwks })],
        minIntegrity: 'device',
        subject: 'py-user',
        loginToken,
        now,
      });
      assert.ok(enrollment.ok, enrollment.ok ? '' : `${enrollment.code}: ${enrollment.detail}`);
      assert.equal(enrollment.device.integrityLevel, 'device');
      if (e2ee) assert.deepEqual(enrollment.device.e2eePublicKey, new Uint8Array(Buffer.from((device.e2ee_jwk as { x: string }).x, 'base64url')), 'the enrolled e2ee key is the one Python sent');
      else assert.equal(enrollment.device.e2eePublicKey, undefined);

      const issuerKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const credentialChallenge = issueChallenge({ secrets, purpose: 'credential', now });
      const { request } = python(state, 'credential-request', { challenge: credentialChallenge.challenge, alg: requestAlg });
      const issued = await issueCredential(request, { device: enrollment.device, challengeSecrets: secrets, issuer: { issuer: CREDENTIAL_ISSUER, kid: 'k1', privateKey: issuerKey.privateKey }, now });
      assert.ok(issued.ok, issued.ok ? '' : `${issued.code}: ${issued.detail}`);

      const signed = python(state, 'sign', {
        credential: issued.credential,
        now,
        requests: requests.map((r) => ({ ...r, body_b64: r.body === undefined ? null : Buffer.from(r.body).toString('base64') })),
      });
      const verify = createRequestVerifier({ trust: new CredentialTrust(CREDENTIAL_ISSUER, [{ kid: 'k1', publicKey: issuerKey.publicKey }]), cache: new CredentialCache() });
      const headerSets = signed.headers as Record<string, string>[];
      assert.equal(headerSets.length, requests.length);
      requests.forEach((r, i) => {
        const headers = headerSets[i]!;
        const input: SignedRequest = { method: r.method, authority: r.authority, path: r.path, query: r.query, header: (n) => headers[n], ...(r.body === undefined ? {} : { body: Buffer.from(r.body) }), now };
        const verdict = verify(input);
        assert.ok(verdict.ok, verdict.ok ? '' : `${r.method} ${r.path}: ${verdict.code} ${verdict.detail}`);
        assert.equal(verdict.subject, 'py-user');
        assert.equal(verdict.deviceId, device.thumbprint);
        // And a tampered copy of the same Python-signed request is refused.
        assert.equal((verify({ ...input, path: `${r.path}x` }) as { code?: string }).code, 'signature_invalid');
        assert.equal((verify({ ...input, body: Buffer.from(`${r.body ?? ''}!`) }) as { code?: string }).code, 'digest_mismatch');
      });
      if (!e2ee) return;

      // e2ee end to end, as an e2ee + signing route will run it: Python seals a body with its enrolled
      // X25519 key under its device id and signs the request carrying the sealed bytes; gatehouse
      // verifies the signature (Content-Digest over the sealed bytes), opens the body with the key from
      // the enrollment result, and the authenticated device is the credential's device.
      const keyring = fixtureKeyring();
      const target = { method: 'POST', authority: 'api.example.com', path: '/v1/transfers', audience: 'api.example.com' };
      const sealed = python(state, 'e2ee-encrypt', {
        key_configs: keyring.encodedKeyConfigs().toString('hex'),
        method: target.method,
        path: target.path,
        audience: target.audience,
        content_type: 'application/json',
        body: Buffer.from('{"amount":"10.00","to":"acct-7"}').toString('hex'),
      });
      const envelope = Buffer.from(sealed.request as string, 'hex');
      const [headers] = python(state, 'sign', {
        credential: issued.credential,
        now,
        requests: [{ method: target.method, authority: target.authority, path: target.path, query: '', body_b64: envelope.toString('base64') }],
      }).headers as [Record<string, string>];
      const verdict = verify({ method: target.method, authority: target.authority, path: target.path, query: '', header: (n) => headers[n], body: envelope, now });
      assert.ok(verdict.ok, verdict.ok ? '' : `${verdict.code} ${verdict.detail}`);
      const keys = new Map([[enrollment.device.deviceId, deviceKeyFromRaw(enrollment.device.e2eePublicKey!)]]);
      const opened = decryptRequest({ ...target, body: envelope, contentType: sealed.content_type as string }, { keyring, deviceKey: (id) => keys.get(id) });
      assert.ok(opened.ok, opened.ok ? '' : `${opened.code}: ${opened.detail}`);
      assert.equal(sealed.content_type, E2EE_REQUEST_MEDIA_TYPE);
      assert.equal(opened.plaintext.toString('utf8'), '{"amount":"10.00","to":"acct-7"}');
      assert.equal(opened.contentType, 'application/json');
      assert.equal(opened.deviceKeyId, verdict.deviceId, "the e2ee-authenticated device is the credential's device");
      // Enrolled under another device id, the same envelope finds no key.
      const elsewhere = decryptRequest({ ...target, body: envelope, contentType: E2EE_REQUEST_MEDIA_TYPE }, { keyring, deviceKey: (id) => (id === 'another-device' ? keys.get(enrollment.device.deviceId) : undefined) });
      assert.equal(elsewhere.ok ? 'ok' : elsewhere.code, 'e2ee_unknown_device');
    });
  }

  test('re-derives the spec worked example (Ed25519 request) byte for byte from the document alone', (t) => {
    const state = mkdtempSync(join(tmpdir(), 'gh-signing-doc-'));
    t.after(() => {
      rmSync(state, { recursive: true, force: true });
    });
    const result = python(state, 'worked-example', { doc: DOC_PATH });
    const ours = result.ours as Record<string, string>;
    const documented = result.documented as Record<string, string>;
    assert.equal(ours['content-digest'], documented['content-digest']);
    assert.equal(ours['signature-input'], documented['signature-input']);
    assert.equal(ours.signature, documented.signature);
  });
});
