import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync, sign } from 'node:crypto';
import { describe, test } from 'node:test';
import * as fc from 'fast-check';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { PASSPORT_TYP, type PassportAlgorithm } from './claims.js';
import { PASSPORT_FAILURE_CODES, PASSPORT_FAILURES, type PassportFailureCode } from './codes.js';
import { base64urlEncode } from './jws.js';
import { generateDevKeyring, jwksDocument, keyringFromKeys, parseJwks, publicJwk, type PassportKeyring } from './keys.js';
import { compilePassportPolicy, MAX_PASSPORT_LENGTH, verifyPassportWithKeys, type PassportVerdict } from './verify.js';
import {
  craftToken, craftTokenRaw, FIXED_NOW_SECONDS, fixedIssuer, SAMPLE_ISSUER, SAMPLE_SUBJECT, samplePayload, signingKeyOf, verificationKeys,
} from './testing.js';

const es256 = generateDevKeyring('ES256');
const eddsa = generateDevKeyring('EdDSA');
// one verifier trusting both keyrings' keys, as an upstream does during an algorithm migration
const keys = new Map([...verificationKeys(es256), ...verificationKeys(eddsa)]);
const policy = compilePassportPolicy({ audience: 'payments', issuer: SAMPLE_ISSUER, clockSkewSeconds: 5 });
const verifyAt = (token: unknown, now = FIXED_NOW_SECONDS): PassportVerdict => verifyPassportWithKeys(token, keys, policy, now);

function expectCode(verdict: PassportVerdict, code: PassportFailureCode): void {
  assert.ok(!verdict.ok, `expected ${code}, the token was accepted`);
  assert.equal(verdict.code, code, `expected ${code}, got ${verdict.code} (${verdict.detail})`);
}

const header = (ring: PassportKeyring): Record<string, unknown> => ({ typ: PASSPORT_TYP, kid: ring.active.kid });
const craft = (ring: PassportKeyring, payload: Record<string, unknown> | string, extraHeader: Record<string, unknown> = {}): Promise<string> =>
  craftToken({ ...header(ring), ...extraHeader }, payload, signingKeyOf(ring.active), ring.active.alg);

for (const ring of [es256, eddsa]) {
  const alg: PassportAlgorithm = ring.active.alg;
  describe(`issue → verify round trip (${alg})`, () => {
    test('a fresh passport verifies and carries exactly the subject, iss, iat and exp', () => {
      const token = fixedIssuer(ring).issuePassport(SAMPLE_SUBJECT);
      const verdict = verifyAt(token);
      assert.ok(verdict.ok, verdict.ok ? '' : verdict.detail);
      assert.equal(verdict.kid, ring.active.kid);
      assert.deepEqual(verdict.claims, { ...SAMPLE_SUBJECT, iss: SAMPLE_ISSUER, iat: FIXED_NOW_SECONDS, exp: FIXED_NOW_SECONDS + 30 });
    });

    test('jose verifies our passport against our JWKS with typ, alg and audience pinned', async () => {
      const token = fixedIssuer(ring, Math.floor(Date.now() / 1000)).issuePassport(SAMPLE_SUBJECT);
      const jwks = createLocalJWKSet(structuredClone(jwksDocument(ring)) as Parameters<typeof createLocalJWKSet>[0]);
      const { payload, protectedHeader } = await jwtVerify(token, jwks, { typ: PASSPORT_TYP, algorithms: [alg], audience: 'payments', issuer: SAMPLE_ISSUER });
      assert.equal(protectedHeader.kid, ring.active.kid);
      assert.equal(payload.txn, SAMPLE_SUBJECT.txn);
    });

    test('a passport signed by jose with the same header and claims verifies with ours', async () => {
      assert.ok(verifyAt(await craft(ring, samplePayload())).ok);
    });

    test('the issuer drops members the claim set does not define', () => {
      const noisy = { ...SAMPLE_SUBJECT, password: 'x', dev: { ...SAMPLE_SUBJECT.dev, imei: '35' } } as typeof SAMPLE_SUBJECT;
      const verdict = verifyAt(fixedIssuer(ring).issuePassport(noisy));
      assert.ok(verdict.ok);
      const payload = JSON.parse(Buffer.from(fixedIssuer(ring).issuePassport(noisy).split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
      assert.equal('password' in payload, false);
      assert.equal('imei' in (payload.dev as object), false);
    });
  });
}

// Every failure code produced by a real crafted token. The table is checked for coverage below.
interface Case { name: string; code: PassportFailureCode; token: () => unknown; now?: number }
const good = (): string => fixedIssuer(eddsa).issuePassport(SAMPLE_SUBJECT);
const [goodHeader, goodPayload, goodSignature] = good().split('.') as [string, string, string];
const hmacToken = (): string => {
  // the classic confusion: HS256 keyed with the verifier's public key bytes
  const input = `${base64urlEncode(JSON.stringify({ alg: 'HS256', typ: PASSPORT_TYP, kid: es256.active.kid }))}.${goodPayload}`;
  const secret = es256.active.publicKey.export({ format: 'pem', type: 'spki' });
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
};
// 64 bytes are 86 base64url characters; the last carries 2 bits and 4 unused ones. Flipping the
// lowest unused bit gives a string Node's lenient decoder maps to the same signature bytes.
const BASE64URL_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const flipUnusedBit = (ch: string): string => BASE64URL_ALPHABET[BASE64URL_ALPHABET.indexOf(ch) ^ 1]!;
const otherKey = generateKeyPairSync('ed25519');

const cases: Case[] = [
  { name: 'no token at all', code: 'missing_passport', token: () => undefined },
  { name: 'an empty token', code: 'missing_passport', token: () => '' },
  { name: 'a number instead of a string', code: 'malformed', token: () => 42 },
  { name: 'two parts', code: 'malformed', token: () => `${goodHeader}.${goodPayload}` },
  { name: 'four parts', code: 'malformed', token: () => `${good()}.x` },
  { name: 'a padded base64url part', code: 'malformed', token: () => `${goodHeader}=.${goodPayload}.${goodSignature}` },
  { name: 'a non-canonical last signature character', code: 'malformed', token: () => `${goodHeader}.${goodPayload}.${goodSignature.slice(0, -1)}${flipUnusedBit(goodSignature.at(-1)!)}` },
  { name: 'a header that is not JSON', code: 'malformed', token: () => `${base64urlEncode('{"alg":')}.${goodPayload}.${goodSignature}` },
  { name: 'a header that is a JSON array', code: 'malformed', token: () => `${base64urlEncode('["EdDSA"]')}.${goodPayload}.${goodSignature}` },
  { name: 'a token over the size limit', code: 'malformed', token: () => `${goodHeader}.${'A'.repeat(MAX_PASSPORT_LENGTH)}.${goodSignature}` },
  { name: 'a header without kid', code: 'malformed', token: () => craftToken({ typ: PASSPORT_TYP }, samplePayload(), signingKeyOf(eddsa.active), 'EdDSA') },
  { name: 'a signed payload that is not JSON', code: 'malformed', token: () => craft(eddsa, 'not json') },
  { name: 'typ JWT', code: 'bad_typ', token: () => craft(eddsa, samplePayload(), { typ: 'JWT' }) },
  { name: 'typ absent', code: 'bad_typ', token: () => craftToken({ kid: eddsa.active.kid }, samplePayload(), signingKeyOf(eddsa.active), 'EdDSA') },
  { name: 'typ in another case', code: 'bad_typ', token: () => craft(eddsa, samplePayload(), { typ: 'Passport+JWT' }) },
  {
    name: 'alg none with an empty signature', code: 'alg_not_allowed',
    token: () => `${base64urlEncode(JSON.stringify({ alg: 'none', typ: PASSPORT_TYP, kid: eddsa.active.kid }))}.${goodPayload}.`,
  },
  { name: 'HS256 keyed with the public key', code: 'alg_not_allowed', token: hmacToken },
  {
    name: 'an ES256 header naming an Ed25519 key', code: 'alg_not_allowed',
    token: () => craftToken({ typ: PASSPORT_TYP, kid: eddsa.active.kid }, samplePayload(), signingKeyOf(es256.active), 'ES256'),
  },
  { name: 'a crit header', code: 'crit_unsupported', token: () => craftTokenRaw({ ...header(eddsa), crit: ['exp'], exp: 1 }, samplePayload(), signingKeyOf(eddsa.active), 'EdDSA') },
  { name: 'a kid nobody published', code: 'unknown_kid', token: () => craft(eddsa, samplePayload(), { kid: 'rotated-away' }) },
  {
    name: 'a tampered payload (sub changed, old signature)', code: 'signature_invalid',
    token: () => `${goodHeader}.${base64urlEncode(JSON.stringify({ ...samplePayload(), sub: 'u-admin' }))}.${goodSignature}`,
  },
  { name: 'a tampered signature (bytes swapped)', code: 'signature_invalid', token: () => `${goodHeader}.${goodPayload}.${Buffer.from(goodSignature, 'base64url').reverse().toString('base64url')}` },
  { name: 'a signature of the wrong length', code: 'signature_invalid', token: () => `${goodHeader}.${goodPayload}.${base64urlEncode(new Uint8Array(65))}` },
  {
    name: 'an ES256 signature in DER instead of r‖s', code: 'signature_invalid',
    token: () => {
      const input = fixedIssuer(es256).issuePassport(SAMPLE_SUBJECT).split('.').slice(0, 2).join('.');
      return `${input}.${sign('sha256', Buffer.from(input), { key: signingKeyOf(es256.active), dsaEncoding: 'der' }).toString('base64url')}`;
    },
  },
  { name: 'a right kid signed by another key', code: 'signature_invalid', token: () => craftToken(header(eddsa), samplePayload(), otherKey.privateKey, 'EdDSA') },
  { name: 'no txn', code: 'missing_claim', token: () => { const { txn: _txn, ...rest } = samplePayload(); return craft(eddsa, rest); } },
  { name: 'no dev', code: 'missing_claim', token: () => { const { dev: _dev, ...rest } = samplePayload(); return craft(eddsa, rest); } },
  { name: 'aal out of range', code: 'invalid_claim', token: () => craft(eddsa, { ...samplePayload(), aal: 7 }) },
  { name: 'exp as a string', code: 'invalid_claim', token: () => craft(eddsa, { ...samplePayload(), exp: String(FIXED_NOW_SECONDS + 30) }) },
  { name: 'aud as an array', code: 'invalid_claim', token: () => craft(eddsa, { ...samplePayload(), aud: ['payments'] }) },
  { name: 'another issuer', code: 'wrong_issuer', token: () => craft(eddsa, { ...samplePayload(), iss: 'https://evil.example' }) },
  { name: 'another audience', code: 'wrong_audience', token: () => craft(eddsa, { ...samplePayload(), aud: 'lending' }) },
  { name: 'exp − iat = 61 s', code: 'lifetime_too_long', token: () => craft(eddsa, { ...samplePayload(), exp: FIXED_NOW_SECONDS + 61 }) },
  { name: 'exp = iat', code: 'lifetime_too_long', token: () => craft(eddsa, { ...samplePayload(), exp: FIXED_NOW_SECONDS }) },
  { name: 'expired beyond the skew', code: 'expired', token: good, now: FIXED_NOW_SECONDS + 30 + 5 },
  { name: 'iat in the future beyond the skew', code: 'not_yet_valid', token: good, now: FIXED_NOW_SECONDS - 6 },
  { name: 'a clock that reads NaN (fails closed)', code: 'expired', token: good, now: Number.NaN },
  { name: 'a clock that reads +∞', code: 'expired', token: good, now: Number.POSITIVE_INFINITY },
  { name: 'a clock that reads −∞', code: 'not_yet_valid', token: good, now: Number.NEGATIVE_INFINITY },
];

describe('every refusal answers its stable code', () => {
  for (const c of cases) {
    test(`${c.name} → ${c.code} (${PASSPORT_FAILURES[c.code].status})`, async () => {
      expectCode(verifyAt(await c.token(), c.now), c.code);
    });
  }

  test('every code in the table except jwks_unavailable (the SDK test covers it) is produced above', () => {
    const produced = new Set<string>(cases.map((c) => c.code));
    assert.deepEqual(PASSPORT_FAILURE_CODES.filter((code) => !produced.has(code)), ['jwks_unavailable']);
  });

  test('the skew is tolerated on both edges', () => {
    assert.ok(verifyAt(good(), FIXED_NOW_SECONDS + 30 + 4).ok, 'expired 4 s ago, skew 5');
    assert.ok(verifyAt(good(), FIXED_NOW_SECONDS - 5).ok, 'issued 5 s in the future, skew 5');
  });

  test('a policy pinned to EdDSA refuses an ES256 passport', () => {
    const edOnly = compilePassportPolicy({ audience: 'payments', algorithms: ['EdDSA'] });
    expectCode(verifyPassportWithKeys(fixedIssuer(es256).issuePassport(SAMPLE_SUBJECT), keys, edOnly, FIXED_NOW_SECONDS), 'alg_not_allowed');
  });

  test('a policy accepting several audiences accepts each of them', () => {
    const both = compilePassportPolicy({ audience: ['payments', 'lending'] });
    const ring = keyringFromKeys([{ ...eddsa.active }]);
    const lending = fixedIssuer(ring).issuePassport({ ...SAMPLE_SUBJECT, aud: 'lending' });
    assert.ok(verifyPassportWithKeys(lending, verificationKeys(ring), both, FIXED_NOW_SECONDS).ok);
  });

  test('a key removed from the JWKS stops verifying once the new document is read', () => {
    const token = good();
    const before = parseJwks(jwksDocument(eddsa));
    assert.ok(before.ok);
    assert.ok(verifyPassportWithKeys(token, before.keys, policy, FIXED_NOW_SECONDS).ok);
    const after = parseJwks({ keys: [publicJwk(es256.active)] });
    assert.ok(after.ok);
    expectCode(verifyPassportWithKeys(token, after.keys, policy, FIXED_NOW_SECONDS), 'unknown_kid');
  });
});

describe('properties', () => {
  const printable = fc.string({ minLength: 1, maxLength: 40, unit: 'grapheme' });
  const subjects = fc.record({
    sub: printable, aud: fc.constant('payments'), txn: printable,
    dev: fc.record({ id: printable, os: printable, model: printable, app: printable }, { requiredKeys: ['id'] }),
    amr: fc.array(fc.string({ minLength: 1, maxLength: 32 }), { maxLength: 8 }),
    aal: fc.constantFrom(0 as const, 1 as const, 2 as const, 3 as const),
    itl: fc.constantFrom(0 as const, 1 as const, 2 as const, 3 as const),
  });

  test('random claim sets round-trip through issue and verify, for both algorithms', () => {
    fc.assert(fc.property(subjects, fc.constantFrom(es256, eddsa), (subject, ring) => {
      const verdict = verifyAt(fixedIssuer(ring).issuePassport(subject));
      assert.ok(verdict.ok, verdict.ok ? '' : verdict.detail);
      // fast-check builds null-prototype records; compare plain data
      const expected: unknown = JSON.parse(JSON.stringify({ ...subject, iss: SAMPLE_ISSUER, iat: FIXED_NOW_SECONDS, exp: FIXED_NOW_SECONDS + 30 }));
      assert.deepEqual(verdict.claims, expected);
    }), { numRuns: 300 });
  });

  /**
   * The codes a one-character change may earn, by where it lands: in the payload or the signature it
   * can only break the signature (or, as a non-alphabet byte, a dot or a non-canonical last
   * character, the syntax); in the header it may also change typ, alg, crit or kid.
   */
  const HEADER_CHANGE_CODES: readonly string[] = ['malformed', 'bad_typ', 'alg_not_allowed', 'crit_unsupported', 'unknown_kid', 'signature_invalid'];
  function expectedCodesForChange(original: string, changed: string, index: number): readonly string[] {
    const inHeader = index < original.indexOf('.');
    if (inHeader) return HEADER_CHANGE_CODES;
    const parts = changed.split('.');
    const strictBase64url = (part: string): boolean => /^[A-Za-z0-9_-]*$/.test(part) && Buffer.from(part, 'base64url').toString('base64url') === part;
    return parts.length === 3 && parts.every(strictBase64url) ? ['signature_invalid'] : ['malformed'];
  }
  const codeOf = (verdict: PassportVerdict): string => (verdict.ok ? 'ok' : verdict.code);

  test('any single-byte change of a token is refused with the code for where it landed', () => {
    const tokens = [fixedIssuer(es256).issuePassport(SAMPLE_SUBJECT), fixedIssuer(eddsa).issuePassport(SAMPLE_SUBJECT)];
    fc.assert(fc.property(fc.constantFrom(...tokens), fc.nat(), fc.integer({ min: 0, max: 255 }), (token, at, byte) => {
      const bytes = Buffer.from(token, 'latin1');
      const index = at % bytes.length;
      fc.pre(bytes[index] !== byte);
      bytes[index] = byte;
      const changed = bytes.toString('latin1');
      assert.ok(expectedCodesForChange(token, changed, index).includes(codeOf(verifyAt(changed))), `byte ${index} → ${byte}: ${codeOf(verifyAt(changed))}`);
    }), { numRuns: 3000 });
  });

  test('every single-character change at every position is refused with the code for where it landed (exhaustive over the base64url alphabet)', () => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.';
    const token = fixedIssuer(eddsa).issuePassport(SAMPLE_SUBJECT);
    for (let i = 0; i < token.length; i++) {
      for (const ch of alphabet) {
        if (ch === token[i]) continue;
        const changed = token.slice(0, i) + ch + token.slice(i + 1);
        const code = codeOf(verifyAt(changed));
        assert.ok(expectedCodesForChange(token, changed, i).includes(code), `position ${i} → ${ch}: ${code}`);
      }
    }
  });

  test('no input makes the verifier throw', () => {
    const part = fc.oneof(fc.base64String().map((s) => s.replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_')), fc.string());
    const jsonPart = fc.jsonValue().map((value) => base64urlEncode(JSON.stringify(value)));
    const headerPart = fc.record({ alg: fc.oneof(fc.constantFrom('EdDSA', 'ES256', 'none', 'HS256'), fc.jsonValue()), typ: fc.oneof(fc.constant(PASSPORT_TYP), fc.jsonValue()), kid: fc.oneof(fc.constantFrom(es256.active.kid, eddsa.active.kid), fc.jsonValue()) }, { requiredKeys: [] })
      .map((h) => base64urlEncode(JSON.stringify(h)));
    const tokenish = fc.oneof(
      fc.anything(),
      fc.string(),
      fc.tuple(fc.oneof(headerPart, part), fc.oneof(jsonPart, part), part).map(([h, p, s]) => `${h}.${p}.${s}`),
      fc.tuple(headerPart, jsonPart).map(([h, p]) => `${h}.${p}.${goodSignature}`),
      // validly signed, so the claim checks face arbitrary JSON: a sample payload with members
      // replaced by anything, or any JSON value at all
      fc.oneof(
        fc.dictionary(fc.constantFrom(...Object.keys(samplePayload()), 'extra'), fc.jsonValue()).map((changes) => ({ ...samplePayload(), ...changes })),
        fc.jsonValue(),
      ).map((payload) => craftTokenRaw(header(eddsa), payload, signingKeyOf(eddsa.active), 'EdDSA')),
    );
    fc.assert(fc.property(tokenish, fc.double(), (token, now) => {
      const verdict = verifyPassportWithKeys(token, keys, policy, now);
      assert.ok(verdict.ok || PASSPORT_FAILURE_CODES.includes(verdict.code));
    }), { numRuns: 5000 });
  });
});
