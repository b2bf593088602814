import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import * as fc from 'fast-check';
import { generateDevKeyring, jwksDocument, keyringFromKeys, PASSPORT_FAILURES, publicJwk, type PassportKeyring, type PassportVerdict } from '../../src/protocol/passport/index.js';
import { FIXED_NOW_SECONDS, fixedIssuer, SAMPLE_ISSUER, SAMPLE_SUBJECT } from '../../src/protocol/passport/testing.js';
import { httpJwksFetcher } from './jwks.js';
import { createPassportVerifier } from './verifier.js';

const current = generateDevKeyring('EdDSA');
const next = generateDevKeyring('ES256');
const both = keyringFromKeys([current.active, { ...next.active, status: 'published' }]);

/** A JWKS endpoint stand-in whose document the test changes, counting fetches. */
function jwksEndpoint(initial: unknown) {
  const endpoint = {
    document: initial,
    fetchJwks: async (): Promise<unknown> => {
      await Promise.resolve();
      if (endpoint.document === 'down') throw new Error('connect ECONNREFUSED');
      const doc = endpoint.document;
      return typeof doc === 'object' && doc !== null && 'active' in doc ? structuredClone(jwksDocument(doc as PassportKeyring)) : doc;
    },
  };
  return endpoint;
}

function clock(startSeconds = FIXED_NOW_SECONDS) {
  const c = { ms: startSeconds * 1000, now: () => c.ms };
  return c;
}

function refused(verdict: PassportVerdict, code: keyof typeof PASSPORT_FAILURES): void {
  assert.ok(!verdict.ok, `expected ${code}, accepted`);
  assert.equal(verdict.code, code, verdict.detail);
}

const tokenFor = (ring: PassportKeyring): string => fixedIssuer(ring).issuePassport(SAMPLE_SUBJECT);

describe('verifyPassport with a JWKS cache', () => {
  test('verifies, and the second verify is served from the cache', async () => {
    const endpoint = jwksEndpoint(current);
    const c = clock();
    const verifier = createPassportVerifier({ audience: 'payments', issuer: SAMPLE_ISSUER, fetchJwks: endpoint.fetchJwks, now: c.now });
    const first = await verifier.verifyPassport(tokenFor(current));
    assert.ok(first.ok);
    assert.deepEqual(first.claims.dev, SAMPLE_SUBJECT.dev);
    assert.ok((await verifier.verifyPassport(tokenFor(current))).ok);
    assert.equal(verifier.jwks.fetchCount, 1);
  });

  test('an unknown kid triggers a refresh that finds the newly published key', async () => {
    const endpoint = jwksEndpoint(current);
    const c = clock();
    const verifier = createPassportVerifier({ audience: 'payments', fetchJwks: endpoint.fetchJwks, now: c.now, minRefreshIntervalMs: 10_000 });
    assert.ok((await verifier.verifyPassport(tokenFor(current))).ok);
    endpoint.document = both; // the gateway published its next key and switched to it
    c.ms += 10_000;
    const verdict = await verifier.verifyPassport(tokenFor(next));
    assert.ok(verdict.ok, verdict.ok ? '' : verdict.detail);
    assert.equal(verifier.jwks.fetchCount, 2);
  });

  test('a kid still unknown after the refresh answers unknown_kid', async () => {
    const endpoint = jwksEndpoint(current);
    const verifier = createPassportVerifier({ audience: 'payments', fetchJwks: endpoint.fetchJwks, now: clock().now });
    refused(await verifier.verifyPassport(tokenFor(next)), 'unknown_kid');
  });

  test('a key rotated out of the JWKS stops verifying after the age-based refresh', async () => {
    const endpoint = jwksEndpoint(both);
    const c = clock();
    const verifier = createPassportVerifier({ audience: 'payments', fetchJwks: endpoint.fetchJwks, now: c.now, maxAgeMs: 60_000, clockSkewSeconds: 60 });
    const oldToken = tokenFor(current);
    assert.ok((await verifier.verifyPassport(oldToken)).ok);
    endpoint.document = { keys: [publicJwk(next.active)] };
    c.ms += 59_000;
    assert.ok((await verifier.verifyPassport(oldToken)).ok, 'still within maxAge: the cached set is used');
    c.ms += 1_000;
    refused(await verifier.verifyPassport(oldToken), 'unknown_kid');
  });

  test('a refresh caused by another kid also drops the rotated-out key at once', async () => {
    const endpoint = jwksEndpoint(current);
    const c = clock();
    const verifier = createPassportVerifier({ audience: 'payments', fetchJwks: endpoint.fetchJwks, now: c.now, minRefreshIntervalMs: 1_000, clockSkewSeconds: 60 });
    const oldToken = tokenFor(current);
    assert.ok((await verifier.verifyPassport(oldToken)).ok);
    endpoint.document = { keys: [publicJwk(next.active)] };
    c.ms += 1_000;
    assert.ok((await verifier.verifyPassport(tokenFor(next))).ok);
    refused(await verifier.verifyPassport(oldToken), 'unknown_kid');
  });

  test('a flood of tokens with invented kids costs at most one fetch per interval', async () => {
    const endpoint = jwksEndpoint(current);
    const c = clock();
    const verifier = createPassportVerifier({ audience: 'payments', fetchJwks: endpoint.fetchJwks, now: c.now, minRefreshIntervalMs: 10_000 });
    assert.ok((await verifier.verifyPassport(tokenFor(current))).ok);
    const header = (kid: string): string => Buffer.from(JSON.stringify({ alg: 'EdDSA', typ: 'passport+jwt', kid })).toString('base64url');
    const [, payload, signature] = tokenFor(current).split('.') as [string, string, string];
    c.ms += 10_000; // the first load's interval has passed: the flood may cause one refresh
    const flood = Array.from({ length: 2000 }, (_, i) => verifier.verifyPassport(`${header(`invented-${i}`)}.${payload}.${signature}`));
    c.ms += 5_000;
    const more = Array.from({ length: 2000 }, (_, i) => verifier.verifyPassport(`${header(`later-${i}`)}.${payload}.${signature}`));
    for (const verdict of await Promise.all([...flood, ...more])) refused(verdict, 'unknown_kid');
    assert.equal(verifier.jwks.fetchCount, 2, 'the first load and one refresh');
    c.ms += 10_000;
    refused(await verifier.verifyPassport(`${header('after-interval')}.${payload}.${signature}`), 'unknown_kid');
    assert.equal(verifier.jwks.fetchCount, 3);
  });

  test('an unreachable JWKS answers jwks_unavailable (503), rate-limited, and recovers', async () => {
    const endpoint = jwksEndpoint('down');
    const c = clock();
    const verifier = createPassportVerifier({ audience: 'payments', fetchJwks: endpoint.fetchJwks, now: c.now, minRefreshIntervalMs: 10_000 });
    for (let i = 0; i < 50; i++) refused(await verifier.verifyPassport(tokenFor(current)), 'jwks_unavailable');
    assert.equal(PASSPORT_FAILURES.jwks_unavailable.status, 503);
    assert.equal(verifier.jwks.fetchCount, 1);
    endpoint.document = current;
    c.ms += 10_000;
    assert.ok((await verifier.verifyPassport(tokenFor(current))).ok);
  });

  test('a document that is not a JWKS counts as unavailable; a fetcher that throws synchronously too', async () => {
    for (const doc of [null, 'x', { keys: 'none' }, { keys: [publicJwk(current.active), publicJwk(current.active)] }]) {
      const verifier = createPassportVerifier({ audience: 'payments', fetchJwks: jwksEndpoint(doc).fetchJwks, now: clock().now });
      refused(await verifier.verifyPassport(tokenFor(current)), 'jwks_unavailable');
    }
    const throwing = createPassportVerifier({ audience: 'payments', fetchJwks: () => { throw new Error('sync'); }, now: clock().now });
    refused(await throwing.verifyPassport(tokenFor(current)), 'jwks_unavailable');
  });

  test('a failed refresh keeps the previous key set (fail soft)', async () => {
    const endpoint = jwksEndpoint(current);
    const c = clock();
    const verifier = createPassportVerifier({ audience: 'payments', fetchJwks: endpoint.fetchJwks, now: c.now, maxAgeMs: 60_000, clockSkewSeconds: 60 });
    assert.ok((await verifier.verifyPassport(tokenFor(current))).ok);
    endpoint.document = 'down';
    c.ms += 61_000;
    assert.ok((await verifier.verifyPassport(tokenFor(current))).ok);
    assert.equal(verifier.jwks.fetchCount, 2);
  });

  test('fail soft has a limit: past maxStaleMs without a successful refresh, jwks_unavailable, and recovery after', async () => {
    const endpoint = jwksEndpoint(current);
    const c = clock();
    const tokenNow = (): string => fixedIssuer(current, Math.floor(c.ms / 1000)).issuePassport(SAMPLE_SUBJECT);
    const verifier = createPassportVerifier({
      audience: 'payments', fetchJwks: endpoint.fetchJwks, now: c.now, maxAgeMs: 60_000, maxStaleMs: 600_000, minRefreshIntervalMs: 1_000,
    });
    assert.ok((await verifier.verifyPassport(tokenNow())).ok);
    endpoint.document = 'down';
    c.ms += 599_000;
    assert.ok((await verifier.verifyPassport(tokenNow())).ok, 'still inside maxStaleMs');
    c.ms += 2_000;
    refused(await verifier.verifyPassport(tokenNow()), 'jwks_unavailable');
    assert.equal(verifier.jwks.cachedKey(current.active.kid), undefined);
    endpoint.document = current;
    c.ms += 1_000;
    assert.ok((await verifier.verifyPassport(tokenNow())).ok, 'recovers once the JWKS answers');
  });

  test('a maxStaleMs shorter than maxAgeMs is a configuration error', () => {
    assert.throws(() => createPassportVerifier({ audience: 'payments', fetchJwks: jwksEndpoint(current).fetchJwks, maxAgeMs: 60_000, maxStaleMs: 1_000 }), RangeError);
  });

  test('the default fetcher reads the JWKS over HTTP from a real server', async (t) => {
    let served = 0;
    const server = createServer((req, res) => {
      served++;
      if (req.url !== '/.well-known/jwks.json') { res.writeHead(404).end(); return; }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(jwksDocument(current)));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => { server.close(); });
    const { port } = server.address() as AddressInfo;
    const verifier = createPassportVerifier({ audience: 'payments', jwksUrl: `http://127.0.0.1:${port}/.well-known/jwks.json`, now: clock().now });
    assert.ok((await verifier.verifyPassport(tokenFor(current))).ok);
    await assert.rejects(httpJwksFetcher(`http://127.0.0.1:${port}/missing`)(), /answered 404/);
    assert.equal(served, 2);
  });

  test('no input makes verifyPassport reject', async () => {
    const verifier = createPassportVerifier({ audience: 'payments', fetchJwks: jwksEndpoint(current).fetchJwks, now: clock().now });
    await fc.assert(fc.asyncProperty(fc.oneof(fc.anything(), fc.string(), fc.string().map((s) => `${s}.${s}.${s}`)), async (token) => {
      const verdict = await verifier.verifyPassport(token);
      assert.ok(verdict.ok || verdict.code in PASSPORT_FAILURES);
    }), { numRuns: 1000 });
  });
});
