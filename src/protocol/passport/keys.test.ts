import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { PassportIssueError, createPassportIssuer } from './issue.js';
import {
  DEV_KID_PREFIX, generateDevKeyring, jwksDocument, loadKeyring, parseJwks, PassportKeyError, publicJwk,
} from './keys.js';
import { compilePassportPolicy, verifyPassportWithKeys } from './verify.js';
import { FIXED_NOW_SECONDS, fixedIssuer, SAMPLE_ISSUER, SAMPLE_SUBJECT } from './testing.js';

const pkcs8 = (pair: { privateKey: { export(o: { format: 'pem'; type: 'pkcs8' }): string | Buffer } }): string => String(pair.privateKey.export({ format: 'pem', type: 'pkcs8' }));
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const ed = generateKeyPairSync('ed25519');
const previous = generateKeyPairSync('ed25519');

function keyDir(t: { after(fn: () => void): void }, files: Record<string, string>, manifest: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), 'passport-keys-'));
  t.after(() => { rmSync(dir, { recursive: true, force: true }); });
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  writeFileSync(join(dir, 'keys.json'), typeof manifest === 'string' ? manifest : JSON.stringify(manifest));
  return join(dir, 'keys.json');
}

function throwsKeyError(load: () => unknown, file: RegExp, field: string | undefined, message: RegExp): void {
  assert.throws(load, (error: unknown) => {
    assert.ok(error instanceof PassportKeyError, String(error));
    assert.match(error.file, file);
    assert.equal(error.field, field);
    assert.match(error.message, message);
    return true;
  });
}

describe('key manifest', () => {
  test('loads an active ES256 key, a published Ed25519 key and a public-only published key, active first in the JWKS', (t) => {
    const manifest = keyDir(t, {
      'next.pem': pkcs8(ed), 'current.pem': pkcs8(ec),
      'old.pub.pem': String(previous.publicKey.export({ format: 'pem', type: 'spki' })),
    }, { keys: [
      { kid: 'next', status: 'published', file: 'next.pem' },
      { kid: 'current', status: 'active', file: 'current.pem' },
      { kid: 'old', status: 'published', file: 'old.pub.pem' },
    ] });
    const ring = loadKeyring(manifest);
    assert.equal(ring.dev, false);
    assert.equal(ring.active.kid, 'current');
    assert.equal(ring.active.alg, 'ES256');
    assert.deepEqual(ring.keys.map((k) => [k.kid, k.alg, k.status]), [['current', 'ES256', 'active'], ['next', 'EdDSA', 'published'], ['old', 'EdDSA', 'published']]);
    const jwks = jwksDocument(ring);
    assert.deepEqual(jwks.keys.map((k) => k.kid), ['current', 'next', 'old']);
    assert.deepEqual(Object.keys(jwks.keys[0]!).sort(), ['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y']);
    assert.equal(JSON.stringify(jwks).includes('"d"'), false, 'no private member is published');
    // and the loaded active key signs passports its JWKS verifies
    const parsed = parseJwks(JSON.parse(JSON.stringify(jwks)));
    assert.ok(parsed.ok);
    const verdict = verifyPassportWithKeys(fixedIssuer(ring).issuePassport(SAMPLE_SUBJECT), parsed.keys, compilePassportPolicy({ audience: 'payments' }), FIXED_NOW_SECONDS);
    assert.ok(verdict.ok);
  });

  test('a missing PEM file is named, with the manifest field that points at it', (t) => {
    const manifest = keyDir(t, {}, { keys: [{ kid: 'a', status: 'active', file: 'gone.pem' }] });
    throwsKeyError(() => loadKeyring(manifest), /gone\.pem$/, undefined, /cannot read \(from keys\[0\]\.file\)/);
  });

  test('an unknown status names keys[i].status', (t) => {
    const manifest = keyDir(t, { 'a.pem': pkcs8(ed) }, { keys: [{ kid: 'a', status: 'active', file: 'a.pem' }, { kid: 'b', status: 'retired', file: 'a.pem' }] });
    throwsKeyError(() => loadKeyring(manifest), /keys\.json$/, 'keys[1].status', /must be "active" or "published", got "retired"/);
  });

  test('two active keys, or none, are refused', (t) => {
    const two = keyDir(t, { 'a.pem': pkcs8(ed), 'b.pem': pkcs8(ec) }, { keys: [{ kid: 'a', status: 'active', file: 'a.pem' }, { kid: 'b', status: 'active', file: 'b.pem' }] });
    throwsKeyError(() => loadKeyring(two), /keys\.json$/, 'status', /exactly one key must be "active", found 2/);
    const none = keyDir(t, { 'a.pem': pkcs8(ed) }, { keys: [{ kid: 'a', status: 'published', file: 'a.pem' }] });
    throwsKeyError(() => loadKeyring(none), /keys\.json$/, 'status', /found 0/);
  });

  test('an RSA key is refused naming the file and the type', (t) => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const manifest = keyDir(t, { 'rsa.pem': pkcs8(rsa) }, { keys: [{ kid: 'r', status: 'active', file: 'rsa.pem' }] });
    throwsKeyError(() => loadKeyring(manifest), /rsa\.pem$/, undefined, /key type rsa is not supported/);
  });

  test('a P-384 key is refused: ES256 means P-256', (t) => {
    const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    const manifest = keyDir(t, { 'p384.pem': pkcs8(p384) }, { keys: [{ kid: 'p', status: 'active', file: 'p384.pem' }] });
    throwsKeyError(() => loadKeyring(manifest), /p384\.pem$/, undefined, /ec secp384r1 is not supported/);
  });

  test('a SEC1 "EC PRIVATE KEY" file is refused: the format is PKCS#8', (t) => {
    const sec1 = String(ec.privateKey.export({ format: 'pem', type: 'sec1' }));
    const manifest = keyDir(t, { 'sec1.pem': sec1 }, { keys: [{ kid: 's', status: 'active', file: 'sec1.pem' }] });
    throwsKeyError(() => loadKeyring(manifest), /sec1\.pem$/, undefined, /not a PEM "PRIVATE KEY" \(PKCS#8\)/);
  });

  test('a corrupted PEM body is refused naming the file', (t) => {
    const manifest = keyDir(t, { 'bad.pem': '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n' }, { keys: [{ kid: 'b', status: 'active', file: 'bad.pem' }] });
    throwsKeyError(() => loadKeyring(manifest), /bad\.pem$/, undefined, /unreadable PEM/);
  });

  test('an active key given as a public key is refused', (t) => {
    const manifest = keyDir(t, { 'pub.pem': String(ed.publicKey.export({ format: 'pem', type: 'spki' })) }, { keys: [{ kid: 'p', status: 'active', file: 'pub.pem' }] });
    throwsKeyError(() => loadKeyring(manifest), /pub\.pem$/, undefined, /must hold its PKCS#8 private key/);
  });

  test('a repeated kid, a bad kid and a manifest that is not JSON are refused', (t) => {
    const dup = keyDir(t, { 'a.pem': pkcs8(ed) }, { keys: [{ kid: 'a', status: 'active', file: 'a.pem' }, { kid: 'a', status: 'published', file: 'a.pem' }] });
    throwsKeyError(() => loadKeyring(dup), /keys\.json$/, 'keys[1].kid', /a appears twice/);
    const badKid = keyDir(t, { 'a.pem': pkcs8(ed) }, { keys: [{ kid: 'a b', status: 'active', file: 'a.pem' }] });
    throwsKeyError(() => loadKeyring(badKid), /keys\.json$/, 'keys[0].kid', /must match .*, got "a b"/);
    const notJson = keyDir(t, {}, '{ keys: ');
    throwsKeyError(() => loadKeyring(notJson), /keys\.json$/, undefined, /not JSON/);
    const noKeys = keyDir(t, {}, { signers: [] });
    throwsKeyError(() => loadKeyring(noKeys), /keys\.json$/, 'keys', /must be an array/);
  });
});

describe('dev keyring', () => {
  test('is marked dev, and its kid says DEV-ONLY', () => {
    for (const alg of ['ES256', 'EdDSA'] as const) {
      const ring = generateDevKeyring(alg);
      assert.equal(ring.dev, true);
      assert.ok(ring.active.kid.startsWith(DEV_KID_PREFIX));
      assert.equal(ring.active.alg, alg);
    }
    assert.notEqual(generateDevKeyring().active.kid, generateDevKeyring().active.kid);
  });
});

describe('JWKS parsing (the upstream side)', () => {
  const ring = generateDevKeyring('EdDSA');
  const jwk = publicJwk(ring.active);
  test('skips keys that are not passport signing keys', () => {
    const parsed = parseJwks({ keys: [{ kty: 'RSA', kid: 'r', n: 'AQAB', e: 'AQAB' }, { ...jwk, kid: 'enc', use: 'enc' }, jwk] });
    assert.ok(parsed.ok);
    assert.deepEqual([...parsed.keys.keys()], [ring.active.kid]);
  });
  test('refuses a document with a repeated kid, a key without kid, a wrong alg, or no keys array', () => {
    for (const bad of [{ keys: [jwk, jwk] }, { keys: [{ ...jwk, kid: undefined }] }, { keys: [{ ...jwk, alg: 'ES256' }] }, { keys: [{ ...jwk, x: 'AAAA' }] }, { key: [] }, null, 'x']) {
      assert.equal(parseJwks(bad).ok, false, JSON.stringify(bad));
    }
  });
});

describe('issuer', () => {
  const ring = generateDevKeyring();
  test('refuses a lifetime over 60 s, or under 1 s, at construction', () => {
    assert.throws(() => createPassportIssuer({ keyring: ring, issuer: SAMPLE_ISSUER, lifetimeSeconds: 61 }), RangeError);
    assert.throws(() => createPassportIssuer({ keyring: ring, issuer: SAMPLE_ISSUER, lifetimeSeconds: 0 }), RangeError);
  });
  test('refuses to sign when its clock does not read a time (NaN, ∞, negative), instead of minting iat: null', () => {
    for (const reading of [Number.NaN, Number.POSITIVE_INFINITY, -5000]) {
      const issuer = createPassportIssuer({ keyring: ring, issuer: SAMPLE_ISSUER, now: () => reading });
      assert.throws(() => issuer.issuePassport(SAMPLE_SUBJECT), RangeError, String(reading));
    }
  });
  test('refuses a subject the verifier would refuse, with the stable code', () => {
    const issuer = fixedIssuer(ring);
    assert.throws(() => issuer.issuePassport({ ...SAMPLE_SUBJECT, sub: '' }), (e: unknown) => e instanceof PassportIssueError && e.code === 'invalid_claim');
    const { txn: _txn, ...noTxn } = SAMPLE_SUBJECT;
    assert.throws(() => issuer.issuePassport(noTxn as typeof SAMPLE_SUBJECT), (e: unknown) => e instanceof PassportIssueError && e.code === 'missing_claim');
  });
  test('the header is exactly alg, typ, kid and exp − iat is the configured lifetime', () => {
    const token = fixedIssuer(ring, FIXED_NOW_SECONDS, 60).issuePassport(SAMPLE_SUBJECT);
    const [h, p] = token.split('.') as [string, string];
    assert.deepEqual(JSON.parse(Buffer.from(h, 'base64url').toString()), { alg: 'EdDSA', typ: 'passport+jwt', kid: ring.active.kid });
    const payload = JSON.parse(Buffer.from(p, 'base64url').toString()) as { iat: number; exp: number };
    assert.equal(payload.exp - payload.iat, 60);
  });
});
