// The three protocol cores as `npm run demo` shows them: request signing, end-to-end encryption and
// the passport. They are pure libraries, not yet gateway filters, so these scenarios call them the way
// the filters will (gatehouse's side) and the way the SDKs do (the app's and the upstream's side), with
// in-memory dev keys and no network. Each prints its inputs and the verdict with its stable code.
import { generateKeyPairSync, KeyObject } from 'node:crypto';
import {
  createE2eeClient,
  E2EE_REQUEST_MEDIA_TYPE,
} from '../sdk/app/e2ee.js';
import {
  buildCredentialRequest,
  buildEnrollmentRequest,
  generateE2eeKeyPair,
  generateSigner,
  jwkThumbprint,
  signRequest,
  type RequestToSign,
} from '../sdk/app/signing.js';
import { SecurityLevel } from '@peculiar/asn1-android';
import { createPassportVerifier } from '../sdk/upstream/index.js';
import { androidKeyAttestationVerifier, encodeAndroidKeyAttestationEvidence } from '../src/protocol/signing/android-key-attestation.js';
import { ANDROID_PACKAGE, ANDROID_SIGNING_DIGEST, attestationChain, testAttestationCa } from '../src/protocol/signing/android-test-support.js';
import { AAGUID_DEVELOPMENT, appleAppAttestVerifier, encodeAppleAppAttestEvidence } from '../src/protocol/signing/apple-app-attest.js';
import { APPLE_APP, attestationObject } from '../src/protocol/signing/apple-test-support.js';
import type { AttestationVerifier } from '../src/protocol/signing/attestation.js';
import { normalizePublicJwk } from '../src/protocol/signing/profile.js';
import { decryptRequest, deviceKeyFromRaw, E2EE_FAILURES, generateX25519KeyPair, type E2eeFailureCode } from '../src/protocol/e2ee/index.js';
import { fixtureDevice, fixtureKeyring } from '../src/protocol/e2ee/fixtures.js';
import {
  createPassportIssuer,
  generateDevKeyring,
  PASSPORT_FAILURES,
  type PassportFailureCode,
  type PassportSubject,
  type PassportVerdict,
} from '../src/protocol/passport/index.js';
import {
  CredentialCache,
  CredentialTrust,
  createRequestVerifier,
  DEFAULT_FRESHNESS,
  issueChallenge,
  issueCredential,
  JWS_VERDICT_FORMAT,
  jwsVerdictVerifier,
  SIGNING_FAILURES,
  verifyEnrollment,
  type ChallengeSecrets,
  type RequestVerdict,
  type SigningFailureCode,
} from '../src/protocol/signing/index.js';
import { APP_ID, ATTESTATION_ISSUER, CREDENTIAL_ISSUER, createAttestationService, requestInput } from '../src/protocol/signing/test-support.js';

const tty = process.stdout.isTTY;
const bold = (s: string) => (tty ? `\x1b[1m${s}\x1b[0m` : s);
const green = (s: string) => (tty ? `\x1b[32m${s}\x1b[0m` : s);
const red = (s: string) => (tty ? `\x1b[31m${s}\x1b[0m` : s);
const dim = (s: string) => (tty ? `\x1b[2m${s}\x1b[0m` : s);

/** A long value cut to its first `n` characters and "…". */
const short = (s: string, n = 16): string => (s.length > n ? `${s.slice(0, n)}…` : s);
/** Long string parameters (nonce, keyid) and byte sequences inside a structured field, shortened. */
const shortField = (s: string): string => s.replace(/="([^"]{20,})"/g, (_, v: string) => `="${short(v)}"`).replace(/:([A-Za-z0-9+/=]{17,}):/g, (_, v: string) => `:${short(v)}:`);
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const decodeJson = (part: string | undefined): unknown => JSON.parse(Buffer.from(part ?? '', 'base64url').toString('utf8'));

type Print = (line: string) => void;

function accepted(print: Print, who: string, what: string): void {
  print(`   ${who} ${green('✓ accepted')}  ${what}`);
}

function refused(print: Print, who: string, code: string, status: number, detail?: string): void {
  print(`   ${who} ${red(`✗ refused ${code} (${status})`)}${detail === undefined ? '' : dim(`  ${detail}`)}`);
}

function title(print: Print, text: string, why: string): void {
  print(bold(text));
  print(dim(`   ${why}`));
}

// ——— 1. Request signing ————————————————————————————————————————————————————————————————

async function signingScenario(print: Print): Promise<{ subject: string; deviceId: string }> {
  print(bold('Protocol A. Dynamic security: request signing (src/protocol/signing, sdk/app/signing.ts)'));
  print(dim('   a device proves it is the genuine app once, then signs every request with a short-lived key'));
  print('');
  const now = Math.floor(Date.now() / 1000);
  const secrets: ChallengeSecrets = [new Uint8Array(32).fill(7)];
  const attestation = await createAttestationService();

  title(print, 'A1. The device enrolls with a (dev) attestation verdict and gets a credential', 'device key (+ its X25519 e2ee key, signed by it) → attested enrollment; ephemeral key → 5-minute credential bound to it');
  const deviceSigner = await generateSigner('ecdsa-p256-sha256');
  const e2eeKey = await generateE2eeKeyPair();
  const ephemeralSigner = await generateSigner('ecdsa-p256-sha256');
  const enrollChallenge = issueChallenge({ secrets, purpose: 'enroll', now });
  const deviceThumbprint = await jwkThumbprint(deviceSigner.publicJwk);
  const evidence = await attestation.verdict({ challenge: enrollChallenge.challenge, deviceKeyThumbprint: deviceThumbprint, integrity: 'strong', now });
  const enrollment = await verifyEnrollment(
    await buildEnrollmentRequest({ challenge: enrollChallenge.challenge, deviceSigner, loginToken: 'the-login-token-of-user-42', attestation: { format: JWS_VERDICT_FORMAT, evidence }, e2eeKey: e2eeKey.publicKey }),
    {
      challengeSecrets: secrets,
      verifiers: [jwsVerdictVerifier({ issuer: ATTESTATION_ISSUER, audience: APP_ID, jwks: attestation.jwks })],
      minIntegrity: 'basic',
      subject: 'user-42',
      loginToken: 'the-login-token-of-user-42',
      now,
    },
  );
  if (!enrollment.ok) throw new Error(`demo enrollment failed: ${enrollment.code} ${enrollment.detail}`);
  const e2eeRaw = enrollment.device.e2eePublicKey;
  if (e2eeRaw === undefined) throw new Error('demo enrollment lost the e2ee key');
  print(`   device  → enroll  challenge ${short(enrollChallenge.challenge)}  device key P-256 ${short(deviceThumbprint)}  e2ee key X25519  verdict ${JWS_VERDICT_FORMAT} from ${ATTESTATION_ISSUER}`);
  accepted(print, 'gatehouse', `enrolled device ${short(enrollment.device.deviceId)} with e2ee key ${short(Buffer.from(e2eeRaw).toString('hex'))} for ${enrollment.device.subject}, integrity ${enrollment.device.integrityLevel}`);

  const issuerKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const credentialChallenge = issueChallenge({ secrets, purpose: 'credential', now });
  const issued = await issueCredential(await buildCredentialRequest({ challenge: credentialChallenge.challenge, deviceSigner, ephemeralSigner }), {
    device: enrollment.device,
    challengeSecrets: secrets,
    issuer: { issuer: CREDENTIAL_ISSUER, kid: 'gh-dev-1', privateKey: issuerKey.privateKey, lifetimeSeconds: 300 },
    now,
  });
  if (!issued.ok) throw new Error(`demo credential failed: ${issued.code} ${issued.detail}`);
  print(`   device  → credential request signed by the device key, for ephemeral key ${short(issued.keyThumbprint)}`);
  accepted(print, 'gatehouse', `credential ${short(issued.credential, 24)} (expires in ${issued.expiresAt - now} s)`);
  print('');

  const verify = createRequestVerifier({ trust: new CredentialTrust(CREDENTIAL_ISSUER, [{ kid: 'gh-dev-1', publicKey: issuerKey.publicKey }]), cache: new CredentialCache(100) });
  const body = '{"amount":1000,"to":"110-222-333"}';
  const request: RequestToSign = { method: 'POST', authority: 'api.example.com', path: '/api/transfers', body: utf8(body) };
  const sign = (at: number, signer = ephemeralSigner, signed: RequestToSign = request) => signRequest(signed, { credential: issued.credential, signer, now: at });
  const show = (verdict: RequestVerdict, refusedWhy?: string): void => {
    if (verdict.ok) accepted(print, 'gatehouse', `identity ${verdict.subject}, device ${short(verdict.deviceId)}, key id ${short(verdict.keyId)}, nonce ${short(verdict.nonce)} → replay store`);
    else refused(print, 'gatehouse', verdict.code, SIGNING_FAILURES[verdict.code].status, refusedWhy);
  };

  title(print, 'A2. The app signs POST /api/transfers', 'RFC 9421 signature over method, authority, path, query, Content-Digest and the credential');
  const headers = await sign(now);
  print(`   app     → ${request.method} ${request.path}  body ${body}`);
  print(`              content-digest: ${shortField(headers['content-digest'] ?? '')}`);
  print(`              signature-input: ${shortField(headers['signature-input'] ?? '')}`);
  print(`              signature: ${shortField(headers.signature ?? '')}`);
  print(`              device-credential: ${short(issued.credential, 24)}`);
  const ok = verify(requestInput(request, headers, now));
  show(ok);
  print('');

  const refusals: { title: string; why: string; input: () => Promise<RequestVerdict>; expect: SigningFailureCode; app: string }[] = [
    {
      title: 'A3. The body is changed after signing',
      why: 'Content-Digest no longer matches the bytes that arrived',
      app: `same headers, body now {"amount":9000,"to":"999-999-999"}`,
      expect: 'digest_mismatch',
      input: () => Promise.resolve(verify(requestInput({ ...request, body: utf8('{"amount":9000,"to":"999-999-999"}') }, headers, now))),
    },
    {
      title: 'A4. A request signed 2 minutes ago arrives now',
      why: `signatures are fresh for ${DEFAULT_FRESHNESS.maxAgeSeconds} s (created too old, expires passed), whatever the nonce store remembers`,
      app: `created ${now - 120} (now ${now})`,
      expect: 'signature_stale',
      input: async () => verify(requestInput(request, await sign(now - 120), now)),
    },
    {
      title: 'A5. Someone else signs with the stolen credential',
      why: 'the credential binds one ephemeral key (cnf.jkt); a signature by another key is not the device',
      app: 'signed by a freshly generated P-256 key, credential copied from the device',
      expect: 'credential_wrong_device',
      input: async () => verify(requestInput(request, await sign(now, await generateSigner('ecdsa-p256-sha256')), now)),
    },
    {
      title: "A6. Signature bytes from another key, under the device's key id",
      why: 'the keyid and credential are the genuine ones, but the signature does not verify with the bound key',
      app: "Signature-Input as the device sent it, Signature computed by another P-256 key",
      expect: 'signature_invalid',
      input: async () => {
        const forged = await signRequest(request, { credential: issued.credential, signer: await generateSigner('ecdsa-p256-sha256'), now });
        return verify(requestInput(request, { ...headers, ...(forged.signature === undefined ? {} : { signature: forged.signature }) }, now));
      },
    },
  ];
  for (const r of refusals) {
    title(print, r.title, r.why);
    print(`   app     → ${r.app}`);
    const verdict = await r.input();
    show(verdict, verdict.ok ? undefined : verdict.code === r.expect ? undefined : `expected ${r.expect}`);
    print('');
  }
  if (!ok.ok) throw new Error(`demo signing refused: ${ok.code} ${ok.detail}`);

  // The e2ee key enrolled in A1, used: sealed under the device id, opened with the key from the enrollment.
  const keyring = fixtureKeyring();
  const e2eeKeys = new Map([[enrollment.device.deviceId, deviceKeyFromRaw(e2eeRaw)]]);
  const seal = (privateKey: KeyObject) => {
    const made = createE2eeClient({ keyConfigs: keyring.encodedKeyConfigs(), deviceKeyId: enrollment.device.deviceId, devicePrivateKey: privateKey, audience: request.authority });
    const sealed = made.ok ? made.client.encryptRequest({ method: request.method, path: request.path, body: utf8(body), contentType: 'application/json' }) : made;
    if (!sealed.ok) throw new Error(`demo e2ee seal: ${sealed.code}`);
    return sealed.body;
  };
  const openSigned = async (sealedBody: Uint8Array) => {
    const sealedRequest: RequestToSign = { ...request, body: sealedBody };
    const verdict = verify(requestInput(sealedRequest, await sign(now, ephemeralSigner, sealedRequest), now));
    if (!verdict.ok) return { verdict };
    const opened = decryptRequest({ body: sealedBody, contentType: E2EE_REQUEST_MEDIA_TYPE, method: request.method, path: request.path, audience: request.authority }, { keyring, deviceKey: (id) => e2eeKeys.get(id) });
    return { verdict, opened };
  };

  title(print, 'A7. The app seals the body with its enrolled e2ee key and signs the sealed bytes', "e2ee device key id = signing device id; gatehouse opens it with the key from A1's enrollment result");
  const mine = await openSigned(seal(KeyObject.from(e2eeKey.privateKey)));
  print(`   app     → ${request.method} ${request.path}  content-type ${E2EE_REQUEST_MEDIA_TYPE}, device key id ${short(enrollment.device.deviceId)} (= device id)`);
  show(mine.verdict);
  if (mine.opened?.ok === true && mine.verdict.ok) {
    // The e2ee + signing filter's rule (signing.md §11, e2ee.md §9): the sealing device is the credential's device.
    if (mine.opened.deviceKeyId === mine.verdict.deviceId) accepted(print, 'gatehouse', `opened, authenticated device ${short(mine.opened.deviceKeyId)} = the credential's device; upstream gets ${mine.opened.plaintext.toString('utf8')}`);
    else refused(print, 'gatehouse', 'credential_wrong_device', SIGNING_FAILURES.credential_wrong_device.status, `sealed by ${mine.opened.deviceKeyId}`);
  } else if (mine.opened !== undefined && !mine.opened.ok) {
    refused(print, 'gatehouse', mine.opened.code, E2EE_FAILURES[mine.opened.code].status, mine.opened.detail);
  }
  print('');

  title(print, 'A8. Another X25519 key seals a body under the same device id', 'the envelope names the device, but only the key enrolled for it authenticates (HPKE mode_auth)');
  const theirs = await openSigned(seal(generateX25519KeyPair().privateKey));
  print('   app     → the same request, sealed with a freshly generated X25519 key');
  if (theirs.opened === undefined) show(theirs.verdict);
  else if (theirs.opened.ok) accepted(print, 'gatehouse', '(unexpected) opened');
  else refused(print, 'gatehouse', theirs.opened.code, E2EE_FAILURES[theirs.opened.code].status, theirs.opened.code === 'e2ee_decrypt_failed' ? undefined : 'expected e2ee_decrypt_failed');
  print('');
  return { subject: ok.subject, deviceId: ok.deviceId };
}

// ——— 2. End-to-end encryption ——————————————————————————————————————————————————————————

function e2eeScenario(print: Print): void {
  print(bold('Protocol B. End-to-end encryption (src/protocol/e2ee, sdk/app/e2ee.ts)'));
  print(dim('   HPKE from the app to gatehouse, bound to method, path and audience; the answer is sealed to the same request'));
  print('');
  const keyring = fixtureKeyring();
  const device = fixtureDevice('dev-01HZX3');
  const audience = 'api.example.com';
  const deviceKey = (id: string) => (id === device.deviceKeyId ? device.key : undefined);
  const created = createE2eeClient({ keyConfigs: keyring.encodedKeyConfigs(), deviceKeyId: device.deviceKeyId, devicePrivateKey: device.pair.privateKey, audience });
  if (!created.ok) throw new Error(`demo e2ee client: ${created.code} ${created.detail}`);
  const client = created.client;

  title(print, 'B1. The app encrypts a transfer; gatehouse opens it and seals the answer', 'only the enrolled device could have sealed it; the upstream sees plain JSON');
  const body = '{"amount":"12.34","currency":"EUR","to":"acct-9"}';
  const sealed = client.encryptRequest({ method: 'POST', path: '/api/transfers', body: utf8(body), contentType: 'application/json' });
  if (!sealed.ok) throw new Error(`demo e2ee encrypt: ${sealed.code} ${sealed.detail}`);
  print(`   app     → POST /api/transfers  content-type ${sealed.headers['content-type']}`);
  print(`              gateway key id ${sealed.keyId}, device key id ${device.deviceKeyId}, envelope ${sealed.body.length} bytes (plaintext ${body.length})`);
  const open = (path: string, bytes: Uint8Array) => decryptRequest({ body: bytes, contentType: E2EE_REQUEST_MEDIA_TYPE, method: 'POST', path, audience }, { keyring, deviceKey });
  const opened = open('/api/transfers', sealed.body);
  if (opened.ok) {
    accepted(print, 'gatehouse', `device ${opened.deviceKeyId} (authenticated), gateway key ${opened.keyId}`);
    print(`              plaintext (${opened.contentType ?? 'no type'}) for the upstream: ${opened.plaintext.toString('utf8')}`);
    const answer = '{"status":"accepted","id":"tr_123"}';
    const encrypted = opened.response.encrypt(utf8(answer), 'application/json');
    if (encrypted.ok) {
      print(`   upstream ← ${answer}`);
      print(`   gatehouse → app  content-type ${encrypted.contentType}, ${encrypted.body.length} bytes`);
      const back = sealed.decryptResponse({ contentType: encrypted.contentType, body: encrypted.body });
      if (back.ok) accepted(print, 'app', `decrypted response (${back.contentType ?? 'no type'}): ${back.plaintext.toString('utf8')}`);
      else print(`   app ${red(`✗ refused ${back.code}`)}`);
    } else {
      refused(print, 'gatehouse', encrypted.code, E2EE_FAILURES[encrypted.code].status);
    }
  } else {
    refused(print, 'gatehouse', opened.code, E2EE_FAILURES[opened.code].status, opened.detail);
  }
  print('');

  const flipped = Buffer.from(sealed.body);
  const last = flipped.length - 1;
  flipped[last] = (flipped[last] ?? 0) ^ 0x01;
  const refusals: { title: string; why: string; app: string; path: string; bytes: Uint8Array; expect: E2eeFailureCode }[] = [
    {
      title: 'B2. The same ciphertext replayed against another path',
      why: 'method, path and audience are in the HPKE info: a captured body opens only where it was sent',
      app: `POST /api/accounts/42/close  with the ${sealed.body.length}-byte envelope sealed for /api/transfers`,
      path: '/api/accounts/42/close',
      bytes: sealed.body,
      expect: 'e2ee_decrypt_failed',
    },
    {
      title: 'B3. One byte of the ciphertext flipped in transit',
      why: 'the AEAD tag no longer verifies',
      app: `POST /api/transfers  byte ${last} xor 0x01`,
      path: '/api/transfers',
      bytes: flipped,
      expect: 'e2ee_decrypt_failed',
    },
  ];
  for (const r of refusals) {
    title(print, r.title, r.why);
    print(`   app     → ${r.app}`);
    const verdict = open(r.path, r.bytes);
    if (verdict.ok) accepted(print, 'gatehouse', `(unexpected) ${verdict.plaintext.toString('utf8')}`);
    else refused(print, 'gatehouse', verdict.code, E2EE_FAILURES[verdict.code].status, verdict.code === r.expect ? undefined : `expected ${r.expect}`);
    print('');
  }
}

// ——— 3. Passport ————————————————————————————————————————————————————————————————————

async function passportScenario(print: Print, who: { subject: string; deviceId: string }): Promise<void> {
  print(bold('Protocol C. The passport (src/protocol/passport, sdk/upstream)'));
  print(dim('   gatehouse tells the upstream who is calling in one short-lived signed token; the upstream checks it against the JWKS'));
  print('');
  const issuerName = 'https://gatehouse.superapp.internal';
  const nowMs = Date.now();
  const keyring = generateDevKeyring('EdDSA');
  const retired = generateDevKeyring('EdDSA');
  const issuer = createPassportIssuer({ keyring, issuer: issuerName, lifetimeSeconds: 30, now: () => nowMs });
  // the upstream fetches gatehouse's JWKS (in a deployment from the admin endpoint; here from memory)
  const verifier = createPassportVerifier({ audience: 'payments', issuer: issuerName, fetchJwks: () => Promise.resolve(issuer.jwks), now: () => nowMs });
  const requestId = 'req-01JDX6T2K9';
  const subject: PassportSubject = {
    sub: who.subject,
    aud: 'payments',
    txn: requestId,
    dev: { id: who.deviceId, os: 'ios 18.1', app: 'superapp/7.3' },
    amr: ['pwd', 'otp'],
    aal: 2,
    itl: 3,
  };

  title(print, `C1. gatehouse issues a passport for ${who.subject} on device ${short(who.deviceId)}, request ${requestId}`, `signed with ${issuer.alg} key ${issuer.kid}; the JWKS publishes ${issuer.jwks.keys.map((k) => k.kid).join(', ')}`);
  const token = issuer.issuePassport(subject);
  const [h, p] = token.split('.');
  print(`   x-passport: ${short(token, 40)}  (${token.length} chars)`);
  print(`              header ${JSON.stringify(decodeJson(h))}`);
  print(`              claims ${JSON.stringify(decodeJson(p), (k, v: unknown) => (k === 'id' && typeof v === 'string' ? short(v) : v))}`);
  const show = (verdict: PassportVerdict, expect?: PassportFailureCode): void => {
    if (verdict.ok) {
      const c = verdict.claims;
      accepted(print, 'upstream', `verifyPassport(): sub ${c.sub}, aud ${c.aud}, txn ${c.txn}, device ${short(c.dev.id)}, amr ${c.amr.join('+')}, aal ${c.aal}, expires in ${c.exp - Math.floor(nowMs / 1000)} s`);
    } else {
      refused(print, 'upstream', verdict.code, PASSPORT_FAILURES[verdict.code].status, expect === undefined || verdict.code === expect ? undefined : `expected ${expect}`);
    }
  };
  show(await verifier.verifyPassport(token));
  print('');

  const at = (ms: number, keys = keyring) => createPassportIssuer({ keyring: keys, issuer: issuerName, lifetimeSeconds: 30, now: () => ms });
  const refusals: { title: string; why: string; shown: string; token: string; expect: PassportFailureCode }[] = [
    {
      title: 'C2. A passport issued 2 minutes ago',
      why: 'passports live 30 s; a copied one goes stale quickly (5 s clock skew allowed)',
      shown: `iat ${Math.floor(nowMs / 1000) - 120}, exp ${Math.floor(nowMs / 1000) - 90} (now ${Math.floor(nowMs / 1000)})`,
      token: at(nowMs - 120_000).issuePassport(subject),
      expect: 'expired',
    },
    {
      title: 'C3. A passport minted for another service',
      why: 'aud names the one upstream the request was routed to; the payments service accepts only its own',
      shown: 'aud "ledger", presented to the payments service',
      token: issuer.issuePassport({ ...subject, aud: 'ledger' }),
      expect: 'wrong_audience',
    },
    {
      title: 'C4. A passport signed by a key that was rotated out',
      why: 'after rotation the old key leaves the JWKS; the upstream refreshes once and still does not find it',
      shown: `kid ${retired.active.kid}, JWKS now has ${issuer.jwks.keys.map((k) => k.kid).join(', ')}`,
      token: at(nowMs, retired).issuePassport(subject),
      expect: 'unknown_kid',
    },
  ];
  for (const r of refusals) {
    title(print, r.title, r.why);
    print(`   x-passport: ${short(r.token, 40)}  ${dim(r.shown)}`);
    show(await verifier.verifyPassport(r.token), r.expect);
    print('');
  }
}

// ——— 1b. Platform attestation ————————————————————————————————————————————————————————————

/**
 * The platform verifiers of enrollment (signing.md §3.1, §3.2) on evidence built with a test PKI
 * standing in for Google's and Apple's roots: what each accepts, at which integrity level, and why
 * it refuses.
 */
async function platformAttestationScenario(print: Print): Promise<void> {
  title(print, 'A9. App integrity on the platforms: Android Key Attestation and Apple App Attest', 'a test root stands in for Google\'s and Apple\'s (production configs name the real roots); the device key is made after the challenge');
  const challenge = issueChallenge({ secrets: [new Uint8Array(32).fill(9)], purpose: 'enroll', now: Math.floor(Date.now() / 1000) }).challenge;
  const now = Math.floor(Date.now() / 1000);
  const device = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const thumbprint = await jwkThumbprint(normalizePublicJwk(device.publicKey.export({ format: 'jwk' }))!);
  const expectation = { challenge, deviceKeyThumbprint: thumbprint, now };
  const show = async (verifier: AttestationVerifier, what: string, evidence: string, expected = expectation): Promise<void> => {
    const outcome = await verifier.verify(evidence, expected);
    if (outcome.ok) accepted(print, what.padEnd(68), `integrity ${outcome.verdict.integrityLevel}, app ${outcome.verdict.appId}`);
    else refused(print, what.padEnd(68), outcome.code, SIGNING_FAILURES[outcome.code].status, short(outcome.detail, 90));
  };

  const google = testAttestationCa('Test Google Attestation Root');
  const android = androidKeyAttestationVerifier({ roots: [google.root], apps: [{ packageName: ANDROID_PACKAGE, signingCertSha256: [ANDROID_SIGNING_DIGEST] }] });
  const chain = (spec: Parameters<typeof attestationChain>[3] = {}, forChallenge = challenge): string =>
    encodeAndroidKeyAttestationEvidence(attestationChain(google, device.publicKey, forChallenge, spec));
  await show(android, 'android: key in the TEE, locked bootloader, verified boot', chain());
  await show(android, 'android: key in StrongBox', chain({ securityLevel: SecurityLevel.strongBox, keymasterSecurityLevel: SecurityLevel.strongBox }));
  await show(android, 'android: bootloader unlocked (the OS naming the app is not trusted)', chain({ deviceLocked: false }));
  await show(android, 'android: the chain of another enrollment\'s challenge', chain({}, `${challenge}x`));
  await show(android, 'android: a repackaged app', chain({ packages: ['com.example.superapp.mod'] }));
  await show(android, 'android: a chain for another key than the enrolled one', chain(), { ...expectation, deviceKeyThumbprint: 'x'.repeat(43) });

  const apple = testAttestationCa('Test Apple App Attestation Root');
  const ios = appleAppAttestVerifier({ roots: [apple.root], apps: [APPLE_APP] });
  const attested = (spec: Partial<Parameters<typeof attestationObject>[1]> = {}): string =>
    encodeAppleAppAttestEvidence(attestationObject(apple, { challenge, deviceKeyThumbprint: thumbprint, ...spec }));
  await show(ios, 'ios: App Attest (production), clientDataHash = H(challenge.thumbprint)', attested());
  await show(ios, 'ios: the development App Attest environment', attested({ aaguid: AAGUID_DEVELOPMENT }));
  await show(ios, 'ios: attested for another app', attested({ app: { teamId: 'ZZZZZZZZZZ', bundleId: 'com.example.clone' } }));
  await show(ios, 'ios: committed to another device key', attested({ deviceKeyThumbprint: 'y'.repeat(43) }));
  print('');
}

/** Prints the protocol scenarios; bounded, in memory, no network. */
export async function protocolScenarios(print: (line: string) => void): Promise<void> {
  print(bold('Protocol cores'));
  print(dim('   the pure libraries the filters and SDKs call, step by step (signing, e2ee and passport run through the gateway above)\n'));
  const who = await signingScenario(print);
  await platformAttestationScenario(print);
  e2eeScenario(print);
  await passportScenario(print, who);
}
