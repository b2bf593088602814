import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { SignJWT } from 'jose';
import { generateSigner, signRequest } from '../../../sdk/app/signing.js';
import { base64Decode, base64Encode, utf8 } from '../common/base64.js';
import { SIGNING_FAILURES, type SigningFailureCode } from './codes.js';
import { checkContentDigest } from './content-digest.js';
import { CredentialCache, CredentialTrust } from './credential.js';
import { CREDENTIAL_TYPE } from './profile.js';
import { CREDENTIAL_ISSUER, createWorld, derFromRaw, requestInput, type World } from './test-support.js';
import { createRequestVerifier, type RequestVerdict, type SignedRequest } from './verifier.js';

const EMPTY_DIGEST = 'sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:';
const OTHER_DIGEST = 'sha-256=:RK/0qy18MlBSVnWgjwz6lZEWjP/lF5HF9bvEF8FabDg=:';
const transfer = { method: 'POST', authority: 'api.example.com', path: '/v1/transfers', query: 'dry_run=1', body: utf8('{"amount":"10.00","to":"acct-7"}') };

function codeOf(verdict: RequestVerdict): SigningFailureCode | 'ok' {
  return verdict.ok ? 'ok' : verdict.code;
}

/** The same request with one header replaced (or removed with undefined). */
function withHeader(request: SignedRequest, name: string, value: string | undefined): SignedRequest {
  return { ...request, header: (n) => (n === name ? value : request.header(n)) };
}


describe('a signed request', async () => {
  const world = await createWorld();

  test('verifies, and the verdict carries identity, key id and nonce for the replay store', async () => {
    const request = await world.sign(transfer, { nonce: 'nonce-0123456789abcdef' });
    const first = world.verify(request);
    assert.ok(first.ok, codeOf(first));
    assert.equal(first.subject, 'user-42');
    assert.equal(first.deviceId, world.device.deviceId);
    assert.equal(first.integrityLevel, 'strong');
    assert.equal(first.nonce, 'nonce-0123456789abcdef');
    assert.equal(first.keyId.length, 43);
    assert.equal(first.expires, world.now + 30);
    assert.equal(first.digest, 'verified');
    assert.equal(first.credentialCached, false);
    const second = world.verify(request);
    assert.ok(second.ok);
    assert.equal(second.credentialCached, true);
    assert.equal(world.cache.size, 1);
  });

  test('with an ed25519 request key and an ed25519 device key verifies too', async () => {
    const edWorld = await createWorld({ deviceAlgorithm: 'ed25519', requestAlgorithm: 'ed25519' });
    const verdict = edWorld.verify(await edWorld.sign(transfer));
    assert.ok(verdict.ok, codeOf(verdict));
    assert.equal(verdict.algorithm, 'ed25519');
  });

  test('without a body carries the digest of empty content; a deferred body is left to the caller', async () => {
    const get = { method: 'GET', authority: 'api.example.com', path: '/v1/balance' };
    const signed = await world.sign(get);
    assert.ok(world.verify(signed).ok);
    assert.equal(codeOf(world.verify({ ...signed, body: utf8('smuggled') })), 'digest_mismatch');
    const deferred = world.verify({ ...(await world.sign(transfer)), body: 'deferred' });
    assert.ok(deferred.ok);
    assert.equal(deferred.digest, 'deferred');
    assert.deepEqual(checkContentDigest(deferred.contentDigest, transfer.body), { ok: true });
  });
});

describe('each failure answers its own code', async () => {
  const world = await createWorld();
  const signed = await world.sign(transfer);
  const input = signed.header('signature-input')!;

  const cases: [string, () => Promise<SignedRequest> | SignedRequest, SigningFailureCode][] = [
    ['no signature headers', () => withHeader(withHeader(signed, 'signature', undefined), 'signature-input', undefined), 'signature_missing'],
    ['a signature without the gatehouse tag', () => withHeader(signed, 'signature-input', input.replace('tag="gatehouse-v1"', 'tag="other"')), 'signature_missing'],
    ['Signature-Input that is not a dictionary', () => withHeader(signed, 'signature-input', 'sig=("@method"'), 'signature_malformed'],
    ['two gatehouse signatures', () => withHeader(signed, 'signature-input', `${input}, ${input.replace(/^sig=/, 'sig2=')}`), 'signature_malformed'],
    ['a missing nonce parameter', () => withHeader(signed, 'signature-input', input.replace(/;nonce="[^"]*"/, '')), 'signature_malformed'],
    ['an extra parameter', () => withHeader(signed, 'signature-input', `${input};foo=1`), 'signature_malformed'],
    ['a Signature that is not a byte sequence', () => withHeader(signed, 'signature', 'sig="abc"'), 'signature_malformed'],
    ['@query not covered', () => withHeader(signed, 'signature-input', input.replace(' "@query"', '')), 'component_missing'],
    ['content-digest not covered', () => withHeader(signed, 'signature-input', input.replace(' "content-digest"', '')), 'component_missing'],
    ['a covered derived component the profile does not know', () => withHeader(signed, 'signature-input', input.replace('"@method"', '"@method" "@target-uri"')), 'component_missing'],
    ['a covered header that is absent', () => withHeader(signed, 'signature-input', input.replace('"@method"', '"@method" "x-absent"')), 'component_missing'],
    ['no credential header', () => withHeader(signed, 'device-credential', undefined), 'credential_missing'],
    ['a credential with a flipped character', () => withHeader(signed, 'device-credential', flip(world.credential, world.credential.length - 5)), 'credential_invalid'],
    ['alg that does not match the key', () => withHeader(signed, 'signature-input', input.replace('alg="ecdsa-p256-sha256"', 'alg="ed25519"')), 'algorithm_not_allowed'],
    ['an unknown alg', () => withHeader(signed, 'signature-input', input.replace('alg="ecdsa-p256-sha256"', 'alg="hmac-sha256"')), 'algorithm_not_allowed'],
    ['created 31 s ago', () => world.sign(transfer, { now: world.now - 31 }), 'signature_stale'],
    ['created 6 s ahead', () => world.sign(transfer, { now: world.now + 6 }), 'signature_future_dated'],
    ['a flipped signature bit', () => withHeader(signed, 'signature', flipSignature(signed.header('signature')!)), 'signature_invalid'],
    ['the same ECDSA signature in DER', () => withHeader(signed, 'signature', `sig=:${base64Encode(derFromRaw(signatureBytes(signed)))}:`), 'signature_invalid'],
    ['a different body', () => ({ ...signed, body: utf8('{"amount":"99999.00","to":"acct-7"}') }), 'digest_mismatch'],
  ];
  for (const [name, make, code] of cases) {
    test(`${name} → ${code}`, async () => {
      assert.equal(codeOf(world.verify(await make())), code);
    });
  }

  test('an expired signature (expires passed while created is in the window) → signature_stale', async () => {
    const headers = await signRequest(transfer, { credential: world.credential, signer: world.ephemeralSigner, now: world.now - 20, expiresInSeconds: 10 });
    assert.equal(codeOf(world.verify(requestInput(transfer, headers, world.now))), 'signature_stale');
  });

  test('expires more than 60 s after created → signature_malformed', async () => {
    const headers = await signRequest(transfer, { credential: world.credential, signer: world.ephemeralSigner, now: world.now, expiresInSeconds: 61 });
    assert.equal(codeOf(world.verify(requestInput(transfer, headers, world.now))), 'signature_malformed');
  });

  test('a key other than the credential\'s cnf key → credential_wrong_device', async () => {
    const otherKey = await generateSigner();
    const headers = await signRequest(transfer, { credential: world.credential, signer: otherKey, now: world.now });
    assert.equal(codeOf(world.verify(requestInput(transfer, headers, world.now))), 'credential_wrong_device');
  });

  test('a credential past its exp → credential_expired, also when it was cached', async () => {
    assert.ok(world.verify(signed).ok);
    const later = world.now + 301;
    const headers = await signRequest(transfer, { credential: world.credential, signer: world.ephemeralSigner, now: later });
    assert.equal(codeOf(world.verify(requestInput(transfer, headers, later))), 'credential_expired');
  });

  test('an algorithm the deployment disallows → algorithm_not_allowed', () => {
    const strict = createRequestVerifier({ trust: world.trust, cache: new CredentialCache(), allowedAlgorithms: ['ed25519'] });
    assert.equal(codeOf(strict(signed)), 'algorithm_not_allowed');
  });

  test('a device below the route\'s integrity minimum → attestation_insufficient', async () => {
    const basic = await createWorld({ integrity: 'basic', verifier: { minIntegrity: 'device' } });
    assert.equal(codeOf(basic.verify(await basic.sign(transfer))), 'attestation_insufficient');
  });

  test('a credential signed by a key outside the trust set, or with the wrong typ, → credential_invalid', async () => {
    const rogue = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const claims = { dev: world.device.deviceId, lvl: 'strong', cnf: { jkt: 'x', jwk: world.ephemeralSigner.publicJwk } };
    const forged = await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: CREDENTIAL_TYPE, kid: world.issuerKey.kid }).setIssuer(CREDENTIAL_ISSUER).setSubject('user-1').setIssuedAt(world.now).setExpirationTime(world.now + 60).sign(rogue.privateKey);
    const headers = await signRequest(transfer, { credential: forged, signer: world.ephemeralSigner, now: world.now });
    assert.equal(codeOf(world.verify(requestInput(transfer, headers, world.now))), 'credential_invalid');
    const wrongTyp = await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: 'JWT', kid: world.issuerKey.kid }).setIssuer(CREDENTIAL_ISSUER).setSubject('user-1').setIssuedAt(world.now).setExpirationTime(world.now + 60).sign(world.issuerKey.privateKey);
    const headers2 = await signRequest(transfer, { credential: wrongTyp, signer: world.ephemeralSigner, now: world.now });
    assert.equal(codeOf(world.verify(requestInput(transfer, headers2, world.now))), 'credential_invalid');
  });

  test('rotating the issuer key set invalidates cached credentials (same kid, new key)', () => {
    const cache = new CredentialCache();
    assert.ok(createRequestVerifier({ trust: world.trust, cache })(signed).ok);
    assert.equal(cache.size, 1);
    const rotated = new CredentialTrust(CREDENTIAL_ISSUER, [{ kid: world.issuerKey.kid, publicKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey }]);
    assert.equal(codeOf(createRequestVerifier({ trust: rotated, cache })(signed)), 'credential_invalid');
  });

  test('a clock that is not a number fails closed', () => {
    for (const now of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      const verdict = createRequestVerifier({ trust: world.trust, cache: new CredentialCache() })({ ...signed, now });
      assert.equal(verdict.ok, false, String(now));
      assert.equal(world.verify({ ...signed, now }).ok, false, `cached, ${now}`);
    }
  });

  test('the cache stays within its bound', async () => {
    const cache = new CredentialCache(2);
    const verify = createRequestVerifier({ trust: world.trust, cache });
    for (let i = 0; i < 4; i++) {
      const w = await createWorld();
      const trusted = createRequestVerifier({ trust: w.trust, cache });
      assert.ok(trusted(await w.sign(transfer)).ok);
      assert.ok(cache.size <= 2);
    }
    assert.ok(verify(signed).ok);
    assert.equal(cache.size, 2);
  });
});

describe('properties', async () => {
  const world: World = await createWorld();
  const methods = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];
  const segment = fc.stringMatching(/^[A-Za-z0-9._~%-]{1,12}$/);
  const requestArb = fc.record({
    method: fc.constantFrom(...methods),
    authority: fc.stringMatching(/^[a-z0-9-]{1,20}\.example(:[0-9]{2,5})?$/),
    path: fc.array(segment, { minLength: 1, maxLength: 4 }).map((s) => `/${s.join('/')}`),
    query: fc.oneof(fc.constant(''), fc.array(fc.tuple(segment, segment), { minLength: 1, maxLength: 3 }).map((kv) => kv.map(([k, v]) => `${k}=${v}`).join('&'))),
    body: fc.option(fc.uint8Array({ maxLength: 256 }), { nil: undefined }),
  });

  test('sign → verify round-trips for random requests', async () => {
    await fc.assert(
      fc.asyncProperty(requestArb, async (request) => {
        const verdict = world.verify(await world.sign(request));
        assert.ok(verdict.ok, codeOf(verdict));
      }),
      { numRuns: 150 },
    );
  });

  test('changing a covered component, the body or any signed header is refused with the right code', async () => {
    type Mutation = { name: string; code: SigningFailureCode; apply: (r: SignedRequest) => SignedRequest };
    const mutations: Mutation[] = [
      { name: 'method', code: 'signature_invalid', apply: (r) => ({ ...r, method: r.method === 'POST' ? 'PUT' : 'POST' }) },
      { name: 'authority', code: 'signature_invalid', apply: (r) => ({ ...r, authority: `evil.${r.authority}` }) },
      { name: 'path', code: 'signature_invalid', apply: (r) => ({ ...r, path: `${r.path}/x` }) },
      { name: 'query', code: 'signature_invalid', apply: (r) => ({ ...r, query: r.query === '' ? 'a=1' : `${r.query}&a=1` }) },
      { name: 'body', code: 'digest_mismatch', apply: (r) => ({ ...r, body: Uint8Array.from([...(r.body instanceof Uint8Array ? r.body : []), 0x20]) }) },
      { name: 'content-digest header', code: 'signature_invalid', apply: (r) => withHeader(r, 'content-digest', r.header('content-digest') === EMPTY_DIGEST ? OTHER_DIGEST : EMPTY_DIGEST) },
      { name: 'credential header', code: 'credential_invalid', apply: (r) => withHeader(r, 'device-credential', flip(r.header('device-credential')!, 30)) },
      { name: 'signature header', code: 'signature_invalid', apply: (r) => withHeader(r, 'signature', flipSignature(r.header('signature')!)) },
      { name: 'nonce parameter', code: 'signature_invalid', apply: (r) => withHeader(r, 'signature-input', r.header('signature-input')!.replace(/nonce="(.)/, (_m, first: string) => `nonce="${first === 'Z' ? 'Y' : 'Z'}`)) },
      { name: 'created parameter', code: 'signature_invalid', apply: (r) => withHeader(r, 'signature-input', r.header('signature-input')!.replace(/created=(\d+)/, (_m, d: string) => `created=${Number(d) - 1}`)) },
    ];
    await fc.assert(
      fc.asyncProperty(requestArb, fc.constantFrom(...mutations), async (request, mutation) => {
        const signed = await world.sign(request);
        const nonceBefore = /nonce="([^"]*)"/.exec(signed.header('signature-input')!)?.[1];
        const mutated = mutation.apply(signed);
        if (mutation.name === 'nonce parameter') assert.notEqual(/nonce="([^"]*)"/.exec(mutated.header('signature-input')!)?.[1], nonceBefore);
        if (mutation.name === 'content-digest header') assert.notEqual(mutated.header('content-digest'), signed.header('content-digest'));
        assert.equal(codeOf(world.verify(mutated)), mutation.code, mutation.name);
      }),
      { numRuns: 300 },
    );
  });

  test('no input makes the verifier throw: every answer is ok or a code from the table', async () => {
    const base = await world.sign(transfer);
    const fields = ['signature', 'signature-input', 'device-credential', 'content-digest'] as const;
    const mutatedText = (original: string) =>
      fc.oneof(
        fc.string({ maxLength: 200 }),
        fc.string({ unit: 'binary', maxLength: 100 }),
        fc.tuple(fc.nat({ max: original.length }), fc.nat({ max: 8 }), fc.string({ maxLength: 6 })).map(([at, cut, insert]) => original.slice(0, at) + insert + original.slice(at + cut)),
      );
    const headerArb = fc.record(Object.fromEntries(fields.map((f) => [f, fc.option(mutatedText(base.header(f)!), { nil: undefined, freq: 4 })])) as Record<(typeof fields)[number], fc.Arbitrary<string | undefined>>);
    fc.assert(
      fc.property(headerArb, fc.string(), fc.string(), fc.string(), fc.option(fc.uint8Array({ maxLength: 64 }), { nil: undefined }), fc.integer({ min: -1e12, max: 1e12 }), (headers, method, path, query, body, skew) => {
        const request: SignedRequest = {
          method,
          authority: 'api.example.com',
          path,
          query,
          header: (n) => (n in headers ? headers[n as (typeof fields)[number]] : undefined),
          ...(body === undefined ? {} : { body }),
          now: world.now + skew,
        };
        const verdict = world.verify(request);
        // The verifier's last-resort catch answers "verifier error": reaching it is a bug, so it fails here.
        assert.ok(verdict.ok || (verdict.code in SIGNING_FAILURES && !verdict.detail.startsWith('verifier error')), verdict.ok ? '' : verdict.detail);
      }),
      { numRuns: 3000 },
    );
  });
});

function flip(text: string, at: number): string {
  const c = text[at] === 'A' ? 'B' : 'A';
  return text.slice(0, at) + c + text.slice(at + 1);
}

function signatureBytes(request: SignedRequest): Uint8Array {
  const match = /^sig=:([^:]*):$/.exec(request.header('signature')!);
  return base64Decode(match![1]!)!;
}

function flipSignature(field: string): string {
  const bytes = base64Decode(/^sig=:([^:]*):$/.exec(field)![1]!)!;
  bytes[10]! ^= 1;
  return `sig=:${base64Encode(bytes)}:`;
}
