// The `issuance` filter end to end: an app (the SDK, test/support/device-app.ts) asks for challenges,
// enrolls with its login token and an attestation verdict, obtains a credential, and signs a request
// the `signed` filter on another route accepts (trusting the same key manifest the issuer signs
// with) — all through the Envoy stand-in, gatehouse answering the endpoints itself. Then every
// refusal, each with its status and code, and what it leaves behind in the stores.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create } from '@bufbuild/protobuf';
import { SecurityLevel } from '@peculiar/asn1-android';
import { exportJWK } from 'jose';
import { buildEnrollmentRequest, generateSigner, jwkThumbprint, signRequest, type EnrollmentRequestBody, type RequestSigner } from '../../sdk/app/signing.js';
import { createE2eeClient, generateDeviceKey } from '../../sdk/app/e2ee.js';
import { fixtureGatewayKey } from '../../src/protocol/e2ee/fixtures.js';
import { x25519RawPrivateKey } from '../../src/protocol/e2ee/index.js';
import { BufferSettingsSchema } from '../../src/gen/envoy/extensions/filters/http/ext_authz/v3/ext_authz_pb.js';
import { DENY_REASONS, type DenyReasonCode } from '../../src/pipeline/deny.js';
import { ANDROID_KEY_ATTESTATION_FORMAT, encodeAndroidKeyAttestationEvidence } from '../../src/protocol/signing/android-key-attestation.js';
import { ANDROID_PACKAGE, ANDROID_SIGNING_DIGEST, attestationChain, testAttestationCa } from '../../src/protocol/signing/android-test-support.js';
import { AAGUID_DEVELOPMENT, APPLE_APP_ATTEST_FORMAT, encodeAppleAppAttestEvidence } from '../../src/protocol/signing/apple-app-attest.js';
import { APPLE_APP, attestationObject, type AttestationObjectSpec } from '../../src/protocol/signing/apple-test-support.js';
import { verifyCredential, CredentialTrust } from '../../src/protocol/signing/credential.js';
import { storeFailure } from '../../src/stores/types.js';
import type { IntegrityLevel } from '../../src/protocol/signing/profile.js';
import { ExtAuthzStandIn } from '../harness/ext-authz.js';
import { get } from '../harness/helpers.js';
import { deviceApp, json, loginToken, post, verdict, type DeviceApp, type Gateway, type GatewayAnswer } from '../support/device-app.js';
import { endToEnd, type EndToEnd } from '../support/gatehouse.js';
import { shippedExtAuthzConfig } from '../support/manifests.js';
import { freePort, skipWithoutRedis, TestRedisServer } from '../support/redis.js';

const AUTHORITY = 'api.example.com';
const ISSUER = 'https://gatehouse.test.invalid';
const LOGIN = { issuer: 'https://login.test.invalid', audience: 'superapp' };
const ATTEST = { issuer: 'https://attest.test.invalid', audience: 'com.example.superapp' };
const BASE = '/gatehouse/v1/device';
const BODY = '{"amount":"10.00","currency":"KRW","to":"acct-7"}';
const MAX_BODY = 4096;
const E2EE_KEYS_PATH = '/.well-known/gatehouse-e2ee-keys';
const nowSeconds = (): number => Math.floor(Date.now() / 1000);

interface Actors {
  readonly idp: { privateKey: KeyObject; kid: string; alg: 'ES256' };
  readonly attestation: { privateKey: KeyObject; kid: string; alg: 'EdDSA' };
  readonly issuerPublicKey: KeyObject;
  readonly config: string;
}

/** The identity provider, the attestation service and gatehouse's issuer key as files, and the routes naming them. */
async function actors(extra = '', login: { unboundProofs?: 'accept' | 'refuse' } = {}): Promise<Actors> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-issuance-'));
  const idp = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const attestation = generateKeyPairSync('ed25519');
  const issuer = generateKeyPairSync('ed25519');
  writeFileSync(join(dir, 'login.jwks.json'), JSON.stringify({ keys: [{ ...(await exportJWK(idp.publicKey)), kid: 'idp-1', alg: 'ES256' }] }));
  writeFileSync(join(dir, 'attest.jwks.json'), JSON.stringify({ keys: [{ ...(await exportJWK(attestation.publicKey)), kid: 'attest-1' }] }));
  writeFileSync(join(dir, 'issuer.pem'), issuer.privateKey.export({ format: 'pem', type: 'pkcs8' }));
  writeFileSync(join(dir, 'credential-keys.json'), JSON.stringify({ keys: [{ kid: 'gh-test-1', status: 'active', file: 'issuer.pem' }] }));
  writeFileSync(join(dir, 'challenge.hex'), `# test\n${'ab'.repeat(32)}\n`);
  writeFileSync(join(dir, 'gateway-7.key'), `${x25519RawPrivateKey(fixtureGatewayKey(7).privateKey).toString('hex')}\n`);
  writeFileSync(join(dir, 'passport.pem'), generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }));
  writeFileSync(join(dir, 'passport-keys.json'), JSON.stringify({ keys: [{ kid: 'passport-1', status: 'active', file: 'passport.pem' }] }));
  const config = `${extra}
routes:
  - id: device
    match: { path: { prefix: ${BASE}/ } }
    filters:
      - issuance:
          basePath: ${BASE}
          challengeSecretsFile: ${join(dir, 'challenge.hex')}
          issuer: ${ISSUER}
          credentialKeysFile: &credential-keys ${join(dir, 'credential-keys.json')}
          maxRequestBytes: ${MAX_BODY}
          login: { issuer: "${LOGIN.issuer}", audience: ${LOGIN.audience}, jwksFile: ${join(dir, 'login.jwks.json')}, algorithms: [ES256]${login.unboundProofs === undefined ? '' : `, unboundProofs: ${login.unboundProofs}`} }
          attestation: { issuer: "${ATTEST.issuer}", audience: ${ATTEST.audience}, jwksFile: ${join(dir, 'attest.jwks.json')} }
  - id: pay
    match: { path: { prefix: /pay/ } }
    filters:
      - signed: { issuer: ${ISSUER}, credentialKeysFile: *credential-keys }
  - id: e2ee-keys
    match: { path: { exact: ${E2EE_KEYS_PATH} }, methods: [GET] }
    filters:
      - e2eeKeys: { keys: &gateway-keys [{ keyId: 7, privateKeyFile: ${join(dir, 'gateway-7.key')} }] }
  - id: sealed
    match: { path: { prefix: /sealed/ } }
    filters:
      - signed: { issuer: ${ISSUER}, credentialKeysFile: *credential-keys }
      - e2ee: { keys: *gateway-keys, audience: ${AUTHORITY} }
      - passport: { audience: payments, issuer: ${ISSUER}/passport, keysFile: ${join(dir, 'passport-keys.json')} }
`;
  return {
    idp: { privateKey: idp.privateKey, kid: 'idp-1', alg: 'ES256' },
    attestation: { privateKey: attestation.privateKey, kid: 'attest-1', alg: 'EdDSA' },
    issuerPublicKey: issuer.publicKey,
    config,
  };
}

interface Setup {
  readonly e2e: EndToEnd;
  readonly app: DeviceApp;
  readonly actors: Actors;
  login(subject?: string, claims?: Partial<{ audience: string; expiresIn: number }>): Promise<string>;
  attest(integrity?: IntegrityLevel): (challenge: string, thumbprint: string) => Promise<string>;
}

async function setUp(t: { after: (fn: () => unknown) => void }, extra = ''): Promise<Setup> {
  const made = await actors(extra);
  const e2e = await endToEnd(t, made.config);
  return {
    e2e,
    app: deviceApp(e2e.envoy, BASE),
    actors: made,
    login: (subject = 'user-42', claims = {}) => loginToken(made.idp, { ...LOGIN, subject, ...claims }),
    attest: (integrity = 'strong') => (challenge, thumbprint) => verdict(made.attestation, { ...ATTEST, challenge, deviceKeyThumbprint: thumbprint, integrity }),
  };
}

function assertRefused(answer: GatewayAnswer, code: DenyReasonCode, what: string): void {
  assert.equal(get(answer.headers, 'x-gatehouse-reason'), code, `${what}: ${answer.status} ${answer.body.toString()}`);
  assert.equal(answer.status, DENY_REASONS[code].status, `${what}: the documented status`);
  const body = json(answer);
  assert.equal(body['error'], code, `${what}: the code in the body`);
  assert.equal(typeof body['decision_id'], 'string', `${what}: a decision id`);
  assert.equal(get(answer.headers, 'x-gatehouse-decision-id'), body['decision_id']);
  assert.equal(answer.upstreamRequest, undefined, `${what}: gatehouse answers, no upstream`);
}

/** Enrolls a fresh device key for `subject`; returns its signer and id. */
async function enrolled(s: Setup, subject = 'user-42'): Promise<{ device: RequestSigner; deviceId: string }> {
  const device = await generateSigner('ecdsa-p256-sha256');
  const { challenge } = await s.app.challenge('enroll');
  const answer = await s.app.enrollAs(await s.login(subject), challenge, device, s.attest());
  assert.equal(answer.status, 201, answer.body.toString());
  return { device, deviceId: await jwkThumbprint(device.publicJwk) };
}

test('the whole flow through the gateway: challenge → enroll → challenge → credential → a signed request accepted on another route', async (t) => {
  const s = await setUp(t);
  const device = await generateSigner('ecdsa-p256-sha256');
  const ephemeral = await generateSigner('ed25519');

  const enrollChallenge = await s.app.challenge('enroll');
  assert.equal(enrollChallenge.answer.status, 200);
  assert.equal(get(enrollChallenge.answer.headers, 'content-type'), 'application/json');
  assert.equal(get(enrollChallenge.answer.headers, 'cache-control'), 'no-store');
  assert.equal(enrollChallenge.answer.upstreamRequest, undefined, 'gatehouse answers the endpoints itself');
  const issued = json(enrollChallenge.answer);
  assert.equal(issued['purpose'], 'enroll');
  assert.match(enrollChallenge.challenge, /^enroll\./);
  assert.ok(typeof issued['expiresAt'] === 'number' && issued['expiresAt'] - nowSeconds() <= 120 && issued['expiresAt'] > nowSeconds());

  const e2ee = generateDeviceKey();
  const e2eeKey = e2ee.publicKey;
  const login = await s.login('user-42');
  const enrolledAnswer = await s.e2e.envoy.request({
    ...post(`${BASE}/enroll`, 'application/json', JSON.stringify(await s.app.enrollmentBody(enrollChallenge.challenge, device, s.attest('strong'), login, new Uint8Array(e2eeKey))), [
      ['authorization', `Bearer ${login}`],
      ['x-request-id', 'enroll-ok'],
    ]),
    authority: AUTHORITY,
  });
  assert.equal(enrolledAnswer.status, 201, enrolledAnswer.body.toString());
  const deviceId = await jwkThumbprint(device.publicJwk);
  assert.deepEqual(json(enrolledAnswer), { deviceId, integrity: 'strong', e2ee: true });
  const stored = await s.e2e.gatehouse.deps.stores.devices.get(deviceId);
  assert.ok(stored.ok && stored.device !== undefined, 'the device is stored');
  assert.equal(stored.device.device.subject, 'user-42', 'for the account the login token named');
  assert.equal(stored.device.device.appId, ATTEST.audience);
  assert.equal(stored.device.device.integrityLevel, 'strong');
  assert.deepEqual(Buffer.from(stored.device.device.e2eePublicKey ?? []), e2eeKey, 'with its e2ee key');
  const enrollLine = await s.e2e.accessLine('enroll-ok');
  assert.equal(enrollLine['decision'], 'respond');
  assert.equal(enrollLine['status'], 201);
  assert.deepEqual(enrollLine['actions'], [{ filter: 'issuance', action: 'device_enrolled' }]);
  assert.doesNotMatch(JSON.stringify(enrollLine), /eyJ/, 'no token in the log');

  const credentialChallenge = await s.app.challenge('credential');
  const credentialAnswer = await s.app.credential(credentialChallenge.challenge, device, ephemeral);
  assert.equal(credentialAnswer.status, 200, credentialAnswer.body.toString());
  assert.equal(get(credentialAnswer.headers, 'cache-control'), 'no-store');
  const { credential, keyid, expiresAt } = json(credentialAnswer) as { credential: string; keyid: string; expiresAt: number };
  assert.equal(keyid, await jwkThumbprint(ephemeral.publicJwk), 'keyid is the ephemeral key thumbprint');
  const verified = verifyCredential(credential, new CredentialTrust(ISSUER, [{ kid: 'gh-test-1', publicKey: s.actors.issuerPublicKey }]), nowSeconds());
  assert.ok(verified.ok, 'signed by the manifest key');
  assert.equal(verified.credential.subject, 'user-42');
  assert.equal(verified.credential.deviceId, deviceId);
  assert.equal(verified.credential.expiresAt, expiresAt);
  assert.equal(expiresAt - verified.credential.issuedAt, 300);

  const headers = await signRequest({ method: 'POST', authority: AUTHORITY, path: '/pay/transfers', body: Buffer.from(BODY) }, { credential, signer: ephemeral, now: nowSeconds() });
  const paid = await s.e2e.envoy.request({ method: 'POST', path: '/pay/transfers', authority: AUTHORITY, headers: [...Object.entries(headers), ['content-type', 'application/json']], body: BODY });
  assert.equal(paid.status, 200, `the signed route accepts the credential: ${paid.body.toString()}`);
  assert.equal(paid.upstreamRequest?.body.toString(), BODY);

  // the e2ee key enrolled with the device opens a sealed body on a route that also checks the
  // signature and hands the upstream a passport of the enrolled account and device
  const keyConfigs = (await s.e2e.envoy.request({ method: 'GET', path: E2EE_KEYS_PATH, authority: AUTHORITY })).body;
  const client = createE2eeClient({ keyConfigs, deviceKeyId: deviceId, devicePrivateKey: e2ee.privateKey, audience: AUTHORITY });
  assert.ok(client.ok);
  const sealed = client.client.encryptRequest({ method: 'POST', path: '/sealed/transfers', body: Buffer.from(BODY), contentType: 'application/json' });
  assert.ok(sealed.ok);
  const sealedHeaders = await signRequest({ method: 'POST', authority: AUTHORITY, path: '/sealed/transfers', body: sealed.body }, { credential, signer: ephemeral, now: nowSeconds() });
  const opened = await s.e2e.envoy.request({
    method: 'POST',
    path: '/sealed/transfers',
    authority: AUTHORITY,
    headers: [...Object.entries(sealedHeaders), ['content-type', sealed.headers['content-type']], ['content-length', String(sealed.body.length)]],
    body: sealed.body,
  });
  assert.equal(opened.status, 200, `${get(opened.headers, 'x-gatehouse-reason') ?? ''} ${opened.body.toString()}`);
  assert.equal(opened.upstreamRequest?.body.toString(), BODY, 'the upstream reads the plaintext');
  const passport = get(opened.upstreamRequest.headers, 'x-passport') ?? '';
  const claims = JSON.parse(Buffer.from(passport.split('.')[1] ?? '', 'base64url').toString()) as { sub: string; dev: { id: string }; itl: number };
  assert.deepEqual([claims.sub, claims.dev.id, claims.itl], ['user-42', deviceId, 3], 'the passport names the enrolled account and device, integrity strong');
  assert.ok(sealed.decryptResponse({ contentType: get(opened.headers, 'content-type'), body: opened.body }).ok, 'the app opens the sealed answer');

  const metrics = await (await fetch(`http://127.0.0.1:${s.e2e.gatehouse.adminPort}/metrics`)).text();
  for (const action of ['enroll_challenge_issued', 'credential_challenge_issued', 'device_enrolled', 'credential_issued']) {
    assert.match(metrics, new RegExp(`^gatehouse_filter_actions_total\\{route="device",filter="issuance",action="${action}"\\} 1$`, 'm'), action);
  }
});

test('enroll: no login token, a token that does not verify, another audience, expired, no sub → 401, nothing stored, challenge not burnt', async (t) => {
  const s = await setUp(t);
  const device = await generateSigner('ed25519');
  const { challenge } = await s.app.challenge('enroll');
  const login = await s.login();
  const body = await s.app.enrollmentBody(challenge, device, s.attest(), login);
  const deviceId = await jwkThumbprint(device.publicJwk);

  const missing = await s.app.enroll(body, undefined);
  assertRefused(missing, 'login_token_missing', 'no Authorization');
  assert.equal(get(missing.headers, 'www-authenticate'), 'Bearer realm="gatehouse"');
  const stranger = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const bad: [string, string][] = [
    ['garbage', 'not-a-jwt'],
    ['signed by another key', await loginToken({ privateKey: stranger, kid: 'idp-1', alg: 'ES256' }, { ...LOGIN, subject: 'user-42' })],
    ['another audience', await s.login('user-42', { audience: 'other-app' })],
    ['expired', await s.login('user-42', { expiresIn: -120 })],
    ['no sub', await loginToken(s.actors.idp, { ...LOGIN })],
  ];
  for (const [what, token] of bad) {
    const answer = await s.app.enroll(body, token);
    assertRefused(answer, 'login_token_invalid', what);
    assert.equal(get(answer.headers, 'www-authenticate'), 'Bearer realm="gatehouse", error="invalid_token"');
  }
  const basic = await s.e2e.envoy.request(post(`${BASE}/enroll`, 'application/json', JSON.stringify(body), [['authorization', 'Basic dXNlcjpwYXNz']]));
  assertRefused(basic, 'login_token_missing', 'another scheme');
  const none = await s.e2e.gatehouse.deps.stores.devices.get(deviceId);
  assert.ok(none.ok && none.device === undefined, 'nothing stored');
  assert.equal((await s.app.enroll(body, login)).status, 201, 'the challenge was not burnt: the genuine enrollment still goes through');
});

test('enroll (attack): a victim\'s enrollment body re-posted under another account\'s login token is 403 enrollment_login_mismatch over ext_proc and ext_authz; nothing enrolls, the victim\'s own post still does', async (t) => {
  const s = await setUp(t);
  const filter = shippedExtAuthzConfig();
  filter.withRequestBody = create(BufferSettingsSchema, { maxRequestBytes: 8192, allowPartialMessage: false, packAsBytes: true });
  const authz = new ExtAuthzStandIn({ authzAddress: `127.0.0.1:${s.e2e.gatehouse.grpcPort}`, filter, upstream: { host: '127.0.0.1', port: s.e2e.upstream.port } });
  t.after(() => {
    authz.close();
  });
  for (const [adapter, app] of [['ext_proc', s.app], ['ext_authz', deviceApp(authz, BASE)]] as const) {
    const device = await generateSigner('ecdsa-p256-sha256');
    const deviceId = await jwkThumbprint(device.publicJwk);
    const { challenge } = await app.challenge('enroll');
    const victimsToken = await s.login('victim');
    const victimsBody = await app.enrollmentBody(challenge, device, s.attest(), victimsToken);
    // the attacker saw the body in transit and posts it first, with a valid token of their own
    const reposted = await app.enroll(victimsBody, await s.login('mallory'));
    assertRefused(reposted, 'enrollment_login_mismatch', `${adapter}: re-posted body`);
    const none = await s.e2e.gatehouse.deps.stores.devices.get(deviceId);
    assert.ok(none.ok && none.device === undefined, `${adapter}: the victim's device key is not enrolled to anyone`);
    const own = await app.enroll(victimsBody, victimsToken);
    assert.equal(own.status, 201, `${adapter}: the challenge was not burnt: ${own.body.toString()}`);
    const stored = await s.e2e.gatehouse.deps.stores.devices.get(deviceId);
    assert.equal(stored.ok && stored.device?.device.subject, 'victim', `${adapter}: enrolled to the victim`);
  }
  // reported for fraud detection against the account that tried, never enough to disable it (a bearer token is replayable)
  const events = s.e2e.logs.filter((l) => l['msg'] === 'security_event' && l['code'] === 'enrollment_login_mismatch').map((l) => [l['subject'], l['trust']]);
  assert.deepEqual(events, [['mallory', 'credential'], ['mallory', 'credential']]);
});

test('enroll: an app that does not bind its proof (profile v1.0) is 400 enrollment_unbound, or enrolls with login.unboundProofs: accept and is counted', async (t) => {
  const s = await setUp(t);
  const device = await generateSigner('ed25519');
  const unboundBody = async (app: DeviceApp, attest: (challenge: string, thumbprint: string) => Promise<string>): Promise<EnrollmentRequestBody> => {
    const { challenge } = await app.challenge('enroll');
    const body = await app.enrollmentBody(challenge, device, attest, 'unused');
    const header = Buffer.from(JSON.stringify({ alg: 'EdDSA', typ: 'gh-enrollment+jwt' })).toString('base64url');
    const payload = Buffer.from(JSON.stringify({ chl: challenge })).toString('base64url');
    return { ...body, proof: `${header}.${payload}.${Buffer.from(await device.sign(new TextEncoder().encode(`${header}.${payload}`))).toString('base64url')}` };
  };
  assertRefused(await s.app.enroll(await unboundBody(s.app, s.attest()), await s.login()), 'enrollment_unbound', 'default: refuse');

  const made = await actors('', { unboundProofs: 'accept' });
  const e2e = await endToEnd(t, made.config);
  const app = deviceApp(e2e.envoy, BASE);
  const token = await loginToken(made.idp, { ...LOGIN, subject: 'user-42' });
  const attest = (challenge: string, thumbprint: string): Promise<string> => verdict(made.attestation, { ...ATTEST, challenge, deviceKeyThumbprint: thumbprint, integrity: 'strong' });
  const accepted = await app.enroll(await unboundBody(app, attest), token);
  assert.equal(accepted.status, 201, accepted.body.toString());
  const metrics = await (await fetch(`http://127.0.0.1:${e2e.gatehouse.adminPort}/metrics`)).text();
  assert.match(metrics, /^gatehouse_filter_actions_total\{route="device",filter="issuance",action="device_enrolled_unbound"\} 1$/m);
});

test('enroll: a reused challenge is challenge_used and stores nothing; a credential challenge cannot enroll', async (t) => {
  const s = await setUp(t);
  const first = await generateSigner('ecdsa-p256-sha256');
  const { challenge } = await s.app.challenge('enroll');
  assert.equal((await s.app.enrollAs(await s.login(), challenge, first, s.attest())).status, 201);

  const second = await generateSigner('ecdsa-p256-sha256');
  const reused = await s.app.enrollAs(await s.login(), challenge, second, s.attest());
  assertRefused(reused, 'challenge_used', 'second enrollment with the same challenge');
  const lookup = await s.e2e.gatehouse.deps.stores.devices.get(await jwkThumbprint(second.publicJwk));
  assert.ok(lookup.ok && lookup.device === undefined, 'the second device is not stored');

  const credentialChallenge = await s.app.challenge('credential');
  const wrongPurpose = await s.app.enrollAs(await s.login(), credentialChallenge.challenge, second, s.attest());
  assertRefused(wrongPurpose, 'challenge_invalid', 'a credential challenge for enrollment');
});

test('enroll: a forged proof is refused, stores nothing and does not burn the challenge; weak integrity and forged verdicts are refused', async (t) => {
  const s = await setUp(t);
  const device = await generateSigner('ecdsa-p256-sha256');
  const { challenge } = await s.app.challenge('enroll');
  const login = await s.login();
  const genuine = await s.app.enrollmentBody(challenge, device, s.attest(), login);
  const impostor = await generateSigner('ecdsa-p256-sha256');
  const forgedProof = (await s.app.enrollmentBody(challenge, impostor, s.attest(), login)).proof;
  const forged = await s.app.enroll({ ...genuine, proof: forgedProof }, login);
  assertRefused(forged, 'device_proof_invalid', 'proof signed by another key');
  const deviceId = await jwkThumbprint(device.publicJwk);
  const lookup = await s.e2e.gatehouse.deps.stores.devices.get(deviceId);
  assert.ok(lookup.ok && lookup.device === undefined, 'not stored');

  const weak = await s.app.enrollAs(await s.login(), challenge, device, s.attest('basic'));
  assertRefused(weak, 'attestation_insufficient', 'basic integrity where device is the minimum');
  const stranger = { privateKey: generateKeyPairSync('ed25519').privateKey, kid: 'attest-1', alg: 'EdDSA' as const };
  const forgedVerdict = await s.app.enrollmentBody(challenge, device, (chl, jkt) => verdict(stranger, { ...ATTEST, challenge: chl, deviceKeyThumbprint: jkt, integrity: 'strong' }), login);
  assertRefused(await s.app.enroll(forgedVerdict, login), 'attestation_invalid', 'verdict not from the attestation service');
  assertRefused(await s.app.enroll('{"challenge": 1', await s.login()), 'enrollment_malformed', 'not JSON');

  assert.equal((await s.app.enroll(genuine, login)).status, 201, 'the genuine request with the same challenge still enrolls');
  // security events: the account the login token authenticated (malformed input is none), at trust
  // `credential`: a bearer token is replayable, so these are reported and never disable the account
  const events = s.e2e.logs.filter((l) => l['msg'] === 'security_event').map((l) => [l['code'], l['subject'], l['trust']]);
  assert.deepEqual(events, [
    ['device_proof_invalid', 'user-42', 'credential'],
    ['attestation_insufficient', 'user-42', 'credential'],
    ['attestation_invalid', 'user-42', 'credential'],
  ]);
});

test('credential: unknown and revoked devices get 403 device_revoked, a disabled account 403 account_disabled; a forged request does not burn the challenge', async (t) => {
  const s = await setUp(t);
  const { stores } = s.e2e.gatehouse.deps;
  const ephemeral = await generateSigner('ecdsa-p256-sha256');

  const unknown = await generateSigner('ecdsa-p256-sha256');
  assertRefused(await s.app.credential((await s.app.challenge('credential')).challenge, unknown, ephemeral), 'device_revoked', 'never enrolled');

  const { device, deviceId } = await enrolled(s, 'user-7');
  const { challenge } = await s.app.challenge('credential');
  const impostor = await generateSigner('ecdsa-p256-sha256');
  // the impostor names the enrolled device but signs with its own key
  const forgedJws = await (async () => {
    const signed = await s.e2e.envoy.request(post(`${BASE}/credential`, 'application/jwt', await forgeCredentialRequest(challenge, deviceId, impostor, ephemeral)));
    return signed;
  })();
  assertRefused(forgedJws, 'device_proof_invalid', 'credential request signed by another key');
  // a security event naming the device and its account, as a claim: the proof did not verify
  const forgedEvent = s.e2e.logs.find((l) => l['msg'] === 'security_event' && l['code'] === 'device_proof_invalid');
  assert.deepEqual([forgedEvent?.['device'], forgedEvent?.['subject'], forgedEvent?.['trust']], [deviceId, 'user-7', 'claimed']);

  await stores.accounts.disable('user-7', 'fraud suspected', 'fds', Date.now());
  assertRefused(await s.app.credential(challenge, device, ephemeral), 'account_disabled', 'disabled account');
  const stillNoDevice = await s.app.enrollAs(await s.login('user-7'), (await s.app.challenge('enroll')).challenge, await generateSigner(), s.attest());
  assertRefused(stillNoDevice, 'account_disabled', 'a disabled account cannot enroll another device');
  await stores.accounts.enable('user-7');
  assert.equal((await s.app.credential(challenge, device, ephemeral)).status, 200, 'the challenge survived the refusals');
  assertRefused(await s.app.credential(challenge, device, ephemeral), 'challenge_used', 'and is single use');

  await stores.devices.revoke(deviceId, Date.now());
  assertRefused(await s.app.credential((await s.app.challenge('credential')).challenge, device, ephemeral), 'device_revoked', 'revoked device');
  const again = await s.app.enrollAs(await s.login('user-7'), (await s.app.challenge('enroll')).challenge, device, s.attest());
  assertRefused(again, 'device_revoked', 'a revoked key cannot enroll again');
  assertRefused(await s.e2e.envoy.request(post(`${BASE}/credential`, 'application/jwt', 'not.a.jws')), 'credential_request_malformed', 'not a JWS');
});

/** A credential request naming `deviceId` but signed by `signer` (the SDK derives dev from the signer, so it is built by hand). */
async function forgeCredentialRequest(challenge: string, deviceId: string, signer: RequestSigner, ephemeral: RequestSigner): Promise<string> {
  const enc = (value: object): string => Buffer.from(JSON.stringify(value)).toString('base64url');
  const input = `${enc({ alg: 'ES256', typ: 'gh-credential-request+jwt' })}.${enc({ chl: challenge, dev: deviceId, jwk: ephemeral.publicJwk })}`;
  return `${input}.${Buffer.from(await signer.sign(new TextEncoder().encode(input))).toString('base64url')}`;
}

test('the HTTP contract: 404 off the endpoints, 405 with Allow, 415, 413, an empty body, an unknown purpose', async (t) => {
  const s = await setUp(t);
  const send = (request: Parameters<typeof s.e2e.envoy.request>[0]) => s.e2e.envoy.request(request);
  assertRefused(await send(post(`${BASE}/other`, 'application/json', '{}')), 'route_not_found', 'another path under the prefix');
  const getChallenge = await send({ method: 'GET', path: `${BASE}/challenge`, authority: AUTHORITY });
  assertRefused(getChallenge, 'method_not_allowed', 'GET');
  assert.equal(get(getChallenge.headers, 'allow'), 'POST');
  assertRefused(await send(post(`${BASE}/challenge`, 'text/plain', '{"purpose":"enroll"}')), 'content_type_unsupported', 'text/plain');
  assertRefused(await send(post(`${BASE}/credential`, 'application/json', '{}')), 'content_type_unsupported', 'JSON to the credential endpoint');
  assert.equal((await send(post(`${BASE}/challenge`, 'application/json; charset=utf-8', '{"purpose":"credential"}'))).status, 200, 'parameters are fine');
  assertRefused(await send(post(`${BASE}/challenge`, 'application/json', `{"purpose":"enroll","pad":"${'x'.repeat(MAX_BODY)}"}`)), 'body_too_large', 'larger than maxRequestBytes');
  const undeclared = await send({ method: 'POST', path: `${BASE}/challenge`, authority: AUTHORITY, headers: [['content-type', 'application/json']], body: `{"purpose":"enroll","pad":"${'x'.repeat(MAX_BODY)}"}` });
  assertRefused(undeclared, 'body_too_large', 'larger, without Content-Length');
  assertRefused(await send({ method: 'POST', path: `${BASE}/challenge`, authority: AUTHORITY, headers: [['content-type', 'application/json']] }), 'challenge_request_malformed', 'no body');
  assertRefused(await send(post(`${BASE}/credential`, 'application/jwt', '')), 'credential_request_malformed', 'an empty credential request');
  for (const body of ['{"purpose":"admin"}', '[]', 'null', '{', '{"purpose":["enroll"]}']) {
    assertRefused(await send(post(`${BASE}/challenge`, 'application/json', body)), 'challenge_request_malformed', body);
  }

  // malformed enrollments: a precise code each, never a crash or a pass
  const token = await s.login();
  const device = await generateSigner('ed25519');
  const { challenge } = await s.app.challenge('enroll');
  const genuine = await s.app.enrollmentBody(challenge, device, s.attest(), token);
  const privateJwk = { ...genuine.deviceKey, d: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' };
  const malformed: [string, string, DenyReasonCode][] = [
    ['deeply nested JSON', '['.repeat(3000), 'enrollment_malformed'],
    ['an array', '[]', 'enrollment_malformed'],
    ['no attestation', JSON.stringify({ ...genuine, attestation: undefined }), 'enrollment_malformed'],
    ['a challenge that is not a string', JSON.stringify({ ...genuine, challenge: { id: 1 } }), 'challenge_invalid'],
    ['a forged challenge MAC', JSON.stringify({ ...genuine, challenge: `${challenge.slice(0, -4)}AAAA` }), 'challenge_invalid'],
    ['a private device key', JSON.stringify({ ...genuine, deviceKey: privateJwk }), 'key_not_allowed'],
    ['an RSA device key', JSON.stringify({ ...genuine, deviceKey: { kty: 'RSA', n: 'AQAB', e: 'AQAB' } }), 'key_not_allowed'],
    ['a bad e2ee key', JSON.stringify({ ...genuine, e2eeKey: { kty: 'OKP', crv: 'X25519', x: 'AAAA' } }), 'x25519_key_invalid'],
    ['an unknown attestation format', JSON.stringify({ ...genuine, attestation: { format: 'apple-app-attest', evidence: 'x' } }), 'attestation_invalid'],
    ['a proof that is not a JWS', JSON.stringify({ ...genuine, proof: 'nope' }), 'enrollment_malformed'],
  ];
  for (const [what, body, code] of malformed) assertRefused(await s.app.enroll(body, token), code, what);
  const latin1 = await s.e2e.envoy.request({ ...post(`${BASE}/enroll`, 'application/json', '', [['authorization', `Bearer ${token}`]]), headers: [['content-type', 'application/json'], ['content-length', '4'], ['authorization', `Bearer ${token}`]], body: Buffer.from([0xff, 0xfe, 0x7b, 0x7d]) });
  assertRefused(latin1, 'enrollment_malformed', 'bytes that are not UTF-8 JSON');
  assert.equal((await s.app.enroll(genuine, token)).status, 201, 'none of them burnt the challenge');
  for (const body of ['a.b.c', `${'x'.repeat(100)}.${'y'.repeat(100)}.z`, 'eyJhbGciOiJFUzI1NiJ9.e30.AAAA']) {
    assertRefused(await send(post(`${BASE}/credential`, 'application/jwt', body)), 'credential_request_malformed', body);
  }
});

test('a store outage: enroll and credential answer 503 dependency_unavailable and never issue; challenges need no store', async (t) => {
  const deadRedis = await freePort();
  const s = await setUp(t, `stores: { kind: redis, redis: { url: "redis://127.0.0.1:${deadRedis}", connectTimeoutMs: 100 } }\n`);
  const device = await generateSigner('ecdsa-p256-sha256');
  const { answer, challenge } = await s.app.challenge('enroll');
  assert.equal(answer.status, 200, 'a challenge is MAC’d, not stored');
  assertRefused(await s.app.enrollAs(await s.login(), challenge, device, s.attest()), 'dependency_unavailable', 'enroll, stores down');
  const credentialChallenge = await s.app.challenge('credential');
  assertRefused(await s.app.credential(credentialChallenge.challenge, device, await generateSigner()), 'dependency_unavailable', 'credential, stores down');
});

test('the challenge ledger down (devices and accounts up): no enrollment stored, no credential handed out', async (t) => {
  const s = await setUp(t);
  const { device, deviceId } = await enrolled(s);
  const ledger = s.e2e.gatehouse.deps.stores.challenges as { consume: unknown };
  ledger.consume = () => Promise.resolve(storeFailure('unavailable', 'test: ledger down'));
  const refused = await s.app.credential((await s.app.challenge('credential')).challenge, device, await generateSigner());
  assertRefused(refused, 'dependency_unavailable', 'credential with the ledger down');
  assert.doesNotMatch(refused.body.toString(), /eyJ/, 'no credential in the answer');
  const other = await generateSigner();
  assertRefused(await s.app.enrollAs(await s.login(), (await s.app.challenge('enroll')).challenge, other, s.attest()), 'dependency_unavailable', 'enroll with the ledger down');
  const lookup = await s.e2e.gatehouse.deps.stores.devices.get(await jwkThumbprint(other.publicJwk));
  assert.ok(lookup.ok && lookup.device === undefined, 'not stored');
  assert.ok(deviceId.length > 0);
});

test('over ext_authz: without with_request_body the endpoints say so (500 request_body_not_forwarded); with it the flow works', async (t) => {
  const s = await setUp(t);
  assertRefused(await s.e2e.authz.request(post(`${BASE}/challenge`, 'application/json', '{"purpose":"enroll"}')), 'request_body_not_forwarded', 'shipped ext_authz config');

  const filter = shippedExtAuthzConfig();
  filter.withRequestBody = create(BufferSettingsSchema, { maxRequestBytes: 8192, allowPartialMessage: false, packAsBytes: true });
  const authz = new ExtAuthzStandIn({ authzAddress: `127.0.0.1:${s.e2e.gatehouse.grpcPort}`, filter, upstream: { host: '127.0.0.1', port: s.e2e.upstream.port } });
  t.after(() => { authz.close(); });
  const app = deviceApp(authz, BASE);
  const device = await generateSigner('ecdsa-p256-sha256');
  const { answer, challenge } = await app.challenge('enroll');
  assert.equal(answer.status, 200, answer.body.toString());
  const enrolledAnswer = await app.enrollAs(await s.login(), challenge, device, s.attest());
  assert.equal(enrolledAnswer.status, 201, enrolledAnswer.body.toString());
  const credential = await app.credential((await app.challenge('credential')).challenge, device, await generateSigner());
  assert.equal(credential.status, 200, credential.body.toString());
  assert.equal(typeof json(credential)['credential'], 'string');

  const partial = shippedExtAuthzConfig();
  partial.withRequestBody = create(BufferSettingsSchema, { maxRequestBytes: 64, allowPartialMessage: true, packAsBytes: true });
  const cut = new ExtAuthzStandIn({ authzAddress: `127.0.0.1:${s.e2e.gatehouse.grpcPort}`, filter: partial, upstream: { host: '127.0.0.1', port: s.e2e.upstream.port } });
  t.after(() => { cut.close(); });
  const cutLogin = await s.login();
  const enrollBody = JSON.stringify(await app.enrollmentBody((await app.challenge('enroll')).challenge, device, s.attest(), cutLogin));
  assertRefused(await cut.request(post(`${BASE}/enroll`, 'application/json', enrollBody, [['authorization', `Bearer ${cutLogin}`]])), 'body_too_large', 'a body Envoy cut at max_request_bytes');
});

test('two gatehouse instances sharing one Redis: of concurrent enrollments and credential requests with one challenge, exactly one succeeds', { skip: skipWithoutRedis() }, async (t) => {
  const redis = await TestRedisServer.start();
  t.after(() => redis.close());
  const s = await setUp(t, `stores: { kind: redis, keyPrefix: "iss:", redis: { url: "${redis.url}" } }\n`);
  const second = await endToEnd(t, s.actors.config);
  const apps = [s.app, deviceApp(second.envoy, BASE)];
  const device = await generateSigner('ecdsa-p256-sha256');
  const { challenge } = await apps[1]!.challenge('enroll');
  const token = await s.login();
  const body = await s.app.enrollmentBody(challenge, device, s.attest(), token);
  const enrollments = await Promise.all(Array.from({ length: 6 }, (_, i) => apps[i % 2]!.enroll(body, token)));
  assert.deepEqual(enrollments.map((r) => r.status).sort(), [201, 400, 400, 400, 400, 400]);
  for (const r of enrollments.filter((x) => x.status === 400)) assert.equal(get(r.headers, 'x-gatehouse-reason'), 'challenge_used');

  const ephemeral = await generateSigner('ed25519');
  const credentialChallenge = await apps[0]!.challenge('credential');
  const requests = await Promise.all(Array.from({ length: 6 }, (_, i) => apps[i % 2]!.credential(credentialChallenge.challenge, device, ephemeral)));
  assert.deepEqual(requests.map((r) => r.status).sort(), [200, 400, 400, 400, 400, 400], 'the device enrolled through one replica is known to the other');
});

// ---- revocation through the admin API ------------------------------------------------------------

const ADMIN_TOKEN = 'issuance-admin-token-0123456789';

function adminTokenConfig(): string {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-issuance-admin-'));
  writeFileSync(join(dir, 'admin.token'), `${ADMIN_TOKEN}\n`);
  return `admin: { tokenFile: ${join(dir, 'admin.token')} }\n`;
}

async function adminCall(e2e: EndToEnd, path: string, options: { body?: unknown; token?: string; raw?: string } = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const payload = options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
  const response = await fetch(`http://127.0.0.1:${e2e.gatehouse.adminPort}${path}`, {
    method: payload === undefined ? 'GET' : 'POST',
    headers: { authorization: `Bearer ${options.token ?? ADMIN_TOKEN}`, 'content-type': 'application/json' },
    ...(payload === undefined ? {} : { body: payload }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** An enrolled device with a credential, and a signed POST of it to `path` (with `id` as x-request-id). */
async function deviceWithCredential(s: Setup, subject: string): Promise<{ device: RequestSigner; deviceId: string; ephemeral: RequestSigner; pay(id: string, via?: Gateway): Promise<GatewayAnswer> }> {
  const { device, deviceId } = await enrolled(s, subject);
  const ephemeral = await generateSigner('ed25519');
  const issued = await s.app.credential((await s.app.challenge('credential')).challenge, device, ephemeral);
  assert.equal(issued.status, 200, issued.body.toString());
  const { credential } = json(issued) as { credential: string };
  return {
    device,
    deviceId,
    ephemeral,
    async pay(id, via = s.e2e.envoy) {
      const headers = await signRequest({ method: 'POST', authority: AUTHORITY, path: '/pay/transfers', body: Buffer.from(BODY) }, { credential, signer: ephemeral, now: nowSeconds() });
      const request = { method: 'POST', path: '/pay/transfers', authority: AUTHORITY, headers: [...Object.entries(headers), ['content-type', 'application/json'], ['x-request-id', id]] as [string, string][], body: BODY };
      return via.request(request);
    },
  };
}

test('admin API revoke: the device\'s next signed request and credential request are 403 device_revoked; idempotent, audited, bad input refused', async (t) => {
  const s = await setUp(t, adminTokenConfig());
  const phone = await deviceWithCredential(s, 'user-8');
  assert.equal((await phone.pay('before-revoke')).status, 200, 'accepted before');

  const looked = await adminCall(s.e2e, `/admin/devices?id=${phone.deviceId}`);
  assert.deepEqual([looked.status, looked.body['subject'], looked.body['revoked'], looked.body['revokedAt'], looked.body['e2ee']], [200, 'user-8', false, null, false]);
  // refused calls change nothing
  assert.equal((await adminCall(s.e2e, '/admin/devices/revoke', { body: { deviceId: phone.deviceId, reason: 'stolen' }, token: 'not-the-token-0123456789' })).status, 401);
  assert.deepEqual(await adminCall(s.e2e, '/admin/devices/revoke', { raw: '{"deviceId":' }).then((a) => [a.status, a.body['error']]), [400, 'bad_request']);
  assert.deepEqual(await adminCall(s.e2e, '/admin/devices/revoke', { body: { deviceId: phone.deviceId } }).then((a) => [a.status, a.body['error']]), [400, 'bad_request'], 'no reason');
  assert.deepEqual(await adminCall(s.e2e, '/admin/devices/revoke', { body: { deviceId: 'neverEnrolled', reason: 'stolen' } }).then((a) => [a.status, a.body['error']]), [404, 'device_not_found']);
  assert.equal((await phone.pay('after-refused-calls')).status, 200, 'still accepted');

  const revoked = await adminCall(s.e2e, '/admin/devices/revoke', { body: { deviceId: phone.deviceId, reason: 'phone reported stolen' } });
  assert.deepEqual([revoked.status, revoked.body['deviceId'], revoked.body['revoked']], [200, phone.deviceId, true]);
  assert.ok(!Number.isNaN(Date.parse(String(revoked.body['revokedAt']))));

  assertRefused(await phone.pay('after-revoke'), 'device_revoked', 'a signed request with the credential it already holds');
  assertRefused(await s.app.credential((await s.app.challenge('credential')).challenge, phone.device, phone.ephemeral), 'device_revoked', 'a new credential');
  const line = await s.e2e.accessLine('after-revoke');
  assert.match(String(line['detail']), /was revoked/);
  const event = s.e2e.logs.find((l) => l['msg'] === 'security_event' && l['request_id'] === 'after-revoke');
  assert.deepEqual([event?.['code'], event?.['device'], event?.['subject'], event?.['trust']], ['device_revoked', phone.deviceId, 'user-8', 'verified'], 'the attempt is an event for the FDS');

  const again = await adminCall(s.e2e, '/admin/devices/revoke', { body: { deviceId: phone.deviceId, reason: 'phone reported stolen' } });
  assert.deepEqual([again.status, again.body], [200, revoked.body], 'idempotent: the same answer, the first revokedAt');
  const shown = await adminCall(s.e2e, `/admin/devices?id=${phone.deviceId}`);
  assert.deepEqual([shown.body['revoked'], shown.body['revokedAt']], [true, revoked.body['revokedAt']]);

  const audits = s.e2e.logs.filter((l) => l['msg'] === 'admin_audit' && String(l['action']).startsWith('devices.'));
  assert.deepEqual(audits.map((a) => `${String(a['action'])} ${String(a['status'])} ${String(a['result'])}`), [
    'devices.get 200 ok',
    'devices.revoke 401 unauthorized',
    'devices.revoke 400 bad_request',
    'devices.revoke 400 bad_request',
    'devices.revoke 404 device_not_found',
    'devices.revoke 200 ok',
    'devices.revoke 200 ok',
    'devices.get 200 ok',
  ]);
  const ok = audits.find((a) => a['action'] === 'devices.revoke' && a['result'] === 'ok')!;
  assert.deepEqual([ok['device'], ok['subject'], ok['reason']], [phone.deviceId, 'user-8', 'phone reported stolen']);
  assert.doesNotMatch(JSON.stringify(audits), new RegExp(ADMIN_TOKEN), 'the token is never logged');
});

test('two gatehouses on one redis-server: a device revoked through one replica\'s admin API is refused there at once and by the other within deviceCache.ttlMs', { skip: skipWithoutRedis() }, async (t) => {
  const redis = await TestRedisServer.start();
  t.after(() => redis.close());
  // deviceCache.ttlMs: how long a replica may keep answering from its cached, not yet revoked, record;
  // long enough that the first request after the revocation lands inside it on a busy machine
  const CACHE_TTL_MS = 3_000;
  /** what a busy machine may add to the ttl before the refusal is seen */
  const SLACK_MS = 5_000;
  const s = await setUp(t, `stores: { kind: redis, keyPrefix: "rev:", redis: { url: "${redis.url}" }, deviceCache: { ttlMs: ${CACHE_TTL_MS} } }\n${adminTokenConfig()}`);
  const other = await endToEnd(t, s.actors.config);
  const phone = await deviceWithCredential(s, 'user-8');
  assert.equal((await phone.pay('other-before', other.envoy)).status, 200, 'the other replica serves the device: its cache holds the record');

  assert.equal((await adminCall(s.e2e, '/admin/devices/revoke', { body: { deviceId: phone.deviceId, reason: 'phone reported stolen' } })).status, 200);
  const revokedAt = performance.now();
  assertRefused(await phone.pay('here-after'), 'device_revoked', 'the replica that served the call, at once');
  assertRefused(await s.app.credential((await s.app.challenge('credential')).challenge, phone.device, phone.ephemeral), 'device_revoked', 'a new credential');
  let tries = 0;
  for (;;) {
    const answer = await phone.pay(`other-after-${tries++}`, other.envoy);
    if (answer.status === 403) {
      assertRefused(answer, 'device_revoked', 'the other replica');
      break;
    }
    assert.equal(answer.status, 200, answer.body.toString());
    assert.ok(performance.now() - revokedAt < CACHE_TTL_MS + SLACK_MS, 'the other replica never refused');
    await new Promise((r) => setTimeout(r, 25));
  }
  const took = performance.now() - revokedAt;
  assert.ok(took < CACHE_TTL_MS + SLACK_MS, `within the cache ttl (${Math.round(took)} ms)`);
  assert.ok(tries > 1, 'the other replica had the record cached: it accepted at least once after the revocation');
});

test('the admin API reads devices past the local cache: a replica that cached the record still shows the revocation at once', { skip: skipWithoutRedis() }, async (t) => {
  const redis = await TestRedisServer.start();
  t.after(() => redis.close());
  const s = await setUp(t, `stores: { kind: redis, keyPrefix: "rev:", redis: { url: "${redis.url}" }, deviceCache: { ttlMs: 60000 } }\n${adminTokenConfig()}`);
  const other = await endToEnd(t, s.actors.config);
  const phone = await deviceWithCredential(s, 'user-8');
  assert.equal((await phone.pay('other-cached', other.envoy)).status, 200);
  assert.equal((await adminCall(s.e2e, '/admin/devices/revoke', { body: { deviceId: phone.deviceId, reason: 'stolen' } })).status, 200);
  const shown = await adminCall(other, `/admin/devices?id=${phone.deviceId}`);
  assert.deepEqual([shown.status, shown.body['revoked']], [200, true], 'what every replica will see, not the cached copy');
});

test('enroll with android-key-attestation (opt-in): the device key\'s attestation chain enrolls it, a credential follows; a foreign root, another app or no config → 403 attestation_invalid', async (t) => {
  const made = await actors();
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-issuance-android-'));
  const ca = testAttestationCa();
  writeFileSync(join(dir, 'android-roots.pem'), ca.rootPem);
  const android = `          androidKeyAttestation: { rootsFile: ${join(dir, 'android-roots.pem')}, apps: [{ packageName: ${ANDROID_PACKAGE}, signingCertSha256: ["${ANDROID_SIGNING_DIGEST}"] }] }\n`;
  // real chains (RSA roots, 3–5 certificates) are several KiB: the default maxRequestBytes (64 KiB) takes them
  const config = made.config.replace(/( +attestation: .*\n)/, `$1${android}`).replace(`maxRequestBytes: ${MAX_BODY}`, 'maxRequestBytes: 65536');
  assert.notEqual(config, made.config);
  const e2e = await endToEnd(t, config);
  const app = deviceApp(e2e.envoy, BASE);
  const login = (): Promise<string> => loginToken(made.idp, { ...LOGIN, subject: 'user-android' });
  const enrollWith = async (device: RequestSigner, chain: (challenge: string, key: KeyObject) => Uint8Array[]): Promise<GatewayAnswer> => {
    const { challenge } = await app.challenge('enroll');
    const evidence = encodeAndroidKeyAttestationEvidence(chain(challenge, createPublicKey({ key: { ...device.publicJwk }, format: 'jwk' })));
    const token = await login();
    return app.enroll(await buildEnrollmentRequest({ challenge, deviceSigner: device, loginToken: token, attestation: { format: ANDROID_KEY_ATTESTATION_FORMAT, evidence } }), token);
  };

  const device = await generateSigner('ecdsa-p256-sha256');
  const enrolledAnswer = await enrollWith(device, (challenge, key) => attestationChain(ca, key, challenge));
  assert.equal(enrolledAnswer.status, 201, enrolledAnswer.body.toString());
  const deviceId = await jwkThumbprint(device.publicJwk);
  assert.deepEqual(json(enrolledAnswer), { deviceId, integrity: 'device', e2ee: false });
  const stored = await e2e.gatehouse.deps.stores.devices.get(deviceId);
  assert.ok(stored.ok && stored.device !== undefined);
  assert.equal(stored.device.device.appId, ANDROID_PACKAGE, 'the app id is the attested package');
  assert.equal(stored.device.device.subject, 'user-android');
  const { challenge } = await app.challenge('credential');
  assert.equal((await app.credential(challenge, device, await generateSigner('ed25519'))).status, 200, 'the attested device gets credentials');

  const strong = await enrollWith(await generateSigner('ecdsa-p256-sha256'), (chl, key) => attestationChain(ca, key, chl, { securityLevel: SecurityLevel.strongBox }));
  assert.equal(json(strong)['integrity'], 'strong', strong.body.toString());
  assertRefused(await enrollWith(await generateSigner('ecdsa-p256-sha256'), (chl, key) => attestationChain(testAttestationCa('Elsewhere'), key, chl)), 'attestation_invalid', 'a chain to a root not configured');
  assertRefused(await enrollWith(await generateSigner('ecdsa-p256-sha256'), (chl, key) => attestationChain(ca, key, chl, { packages: ['com.example.clone'] })), 'attestation_invalid', 'a package not allowed');
  assertRefused(await enrollWith(await generateSigner('ecdsa-p256-sha256'), (chl, key) => attestationChain(ca, key, chl, { deviceLocked: false })), 'attestation_insufficient', 'an unlocked bootloader is basic, below the minimum device');
  const events = e2e.logs.filter((l) => l['msg'] === 'security_event').map((l) => [l['code'], l['subject']]);
  assert.deepEqual(events, [
    ['attestation_invalid', 'user-android'],
    ['attestation_invalid', 'user-android'],
    ['attestation_insufficient', 'user-android'],
  ]);

  // without the section the format has no verifier
  const plain = await setUp(t);
  const other = await generateSigner('ecdsa-p256-sha256');
  const { challenge: chl } = await plain.app.challenge('enroll');
  const evidence = encodeAndroidKeyAttestationEvidence(attestationChain(ca, createPublicKey({ key: { ...other.publicJwk }, format: 'jwk' }), chl));
  const plainLogin = await plain.login();
  const body = await buildEnrollmentRequest({ challenge: chl, deviceSigner: other, loginToken: plainLogin, attestation: { format: ANDROID_KEY_ATTESTATION_FORMAT, evidence } });
  assertRefused(await plain.app.enroll({ ...body }, plainLogin), 'attestation_invalid', 'android-key-attestation not configured');
});

test('enroll with apple-app-attest (opt-in): an App Attest object vouching for the device key enrolls it, a credential follows; another app, another device key, development or no config → 403', async (t) => {
  const made = await actors();
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-issuance-apple-'));
  const ca = testAttestationCa('Test App Attestation Root');
  writeFileSync(join(dir, 'apple-roots.pem'), ca.rootPem);
  const apple = `          appleAppAttest: { rootsFile: ${join(dir, 'apple-roots.pem')}, apps: [{ teamId: ${APPLE_APP.teamId}, bundleId: ${APPLE_APP.bundleId} }] }\n`;
  const config = made.config.replace(/( +attestation: .*\n)/, `$1${apple}`).replace(`maxRequestBytes: ${MAX_BODY}`, 'maxRequestBytes: 65536');
  assert.notEqual(config, made.config);
  const e2e = await endToEnd(t, config);
  const app = deviceApp(e2e.envoy, BASE);
  const login = (): Promise<string> => loginToken(made.idp, { ...LOGIN, subject: 'user-ios' });
  const enrollWith = async (device: RequestSigner, spec: Partial<AttestationObjectSpec> = {}): Promise<GatewayAnswer> => {
    const { challenge } = await app.challenge('enroll');
    const deviceKeyThumbprint = await jwkThumbprint(device.publicJwk);
    const evidence = encodeAppleAppAttestEvidence(attestationObject(ca, { challenge, deviceKeyThumbprint, ...spec }));
    const token = await login();
    return app.enroll(await buildEnrollmentRequest({ challenge, deviceSigner: device, loginToken: token, attestation: { format: APPLE_APP_ATTEST_FORMAT, evidence } }), token);
  };

  // the device key is a (Secure Enclave) P-256 key of its own; the App Attest key only vouches for it
  const device = await generateSigner('ecdsa-p256-sha256');
  const enrolledAnswer = await enrollWith(device);
  assert.equal(enrolledAnswer.status, 201, enrolledAnswer.body.toString());
  const deviceId = await jwkThumbprint(device.publicJwk);
  assert.deepEqual(json(enrolledAnswer), { deviceId, integrity: 'strong', e2ee: false });
  const stored = await e2e.gatehouse.deps.stores.devices.get(deviceId);
  assert.ok(stored.ok && stored.device !== undefined);
  assert.equal(stored.device.device.appId, `${APPLE_APP.teamId}.${APPLE_APP.bundleId}`, 'the app id is the App ID');
  assert.equal(stored.device.device.subject, 'user-ios');
  const { challenge } = await app.challenge('credential');
  assert.equal((await app.credential(challenge, device, await generateSigner('ed25519'))).status, 200, 'the attested device gets credentials');

  const other = await generateSigner('ecdsa-p256-sha256');
  assertRefused(await enrollWith(await generateSigner('ecdsa-p256-sha256'), { deviceKeyThumbprint: await jwkThumbprint(other.publicJwk) }), 'attestation_invalid', 'vouching for another device key');
  assertRefused(await enrollWith(await generateSigner('ecdsa-p256-sha256'), { app: { teamId: APPLE_APP.teamId, bundleId: 'com.example.clone' } }), 'attestation_invalid', 'an app not allowed');
  assertRefused(await enrollWith(await generateSigner('ecdsa-p256-sha256'), { aaguid: AAGUID_DEVELOPMENT }), 'attestation_invalid', 'development not allowed');
  const events = e2e.logs.filter((l) => l['msg'] === 'security_event').map((l) => [l['code'], l['subject']]);
  assert.deepEqual(events, [
    ['attestation_invalid', 'user-ios'],
    ['attestation_invalid', 'user-ios'],
    ['attestation_invalid', 'user-ios'],
  ]);

  // without the section the format has no verifier
  const plain = await setUp(t);
  const { challenge: chl } = await plain.app.challenge('enroll');
  const evidence = encodeAppleAppAttestEvidence(attestationObject(ca, { challenge: chl, deviceKeyThumbprint: await jwkThumbprint(other.publicJwk) }));
  const plainLogin = await plain.login();
  const body = await buildEnrollmentRequest({ challenge: chl, deviceSigner: other, loginToken: plainLogin, attestation: { format: APPLE_APP_ATTEST_FORMAT, evidence } });
  assertRefused(await plain.app.enroll({ ...body }, plainLogin), 'attestation_invalid', 'apple-app-attest not configured');
});
