// Interop with Debian's PyJWT (python3-jwt + python3-cryptography at /usr/bin/python3): a Python
// upstream verifies gatehouse passports against the published JWKS, and tokens PyJWT issues are
// judged by our verifier. Skips (with the reason) only when that interpreter or module is missing.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { generateDevKeyring, jwksDocument, type PassportFailureCode, type PassportKeyring } from '../../src/protocol/passport/index.js';
import { fixedIssuer, SAMPLE_ISSUER, SAMPLE_SUBJECT } from '../../src/protocol/passport/testing.js';
import { createPassportVerifier } from '../../sdk/upstream/index.js';
import { skipUnlessCi } from '../support/requires.js';

const PYTHON = '/usr/bin/python3';
const scripts = join(import.meta.dirname, 'python');
const probe = spawnSync(PYTHON, ['-c', 'import jwt, cryptography'], { encoding: 'utf8' });
const skip = skipUnlessCi(probe.status === 0, `${PYTHON} with PyJWT and cryptography is not available: ${probe.stderr || String(probe.error)}`);

function runPython(script: string, input: unknown): string {
  const result = spawnSync(PYTHON, [join(scripts, script)], { input: JSON.stringify(input), encoding: 'utf8', timeout: 20_000 });
  assert.equal(result.status, 0, result.stderr);
  return result.stdout;
}

interface PythonVerdict { ok: boolean; error?: string; header?: Record<string, unknown>; claims?: Record<string, unknown> }
const pyVerify = (token: string, ring: PassportKeyring, audience = 'payments'): PythonVerdict =>
  JSON.parse(runPython('passport_verify.py', { token, jwks: jwksDocument(ring), audience, issuer: SAMPLE_ISSUER })) as PythonVerdict;

const nowSeconds = (): number => Math.floor(Date.now() / 1000);

for (const alg of ['ES256', 'EdDSA'] as const) {
  describe(`PyJWT interop (${alg})`, { skip }, () => {
    const ring = generateDevKeyring(alg);
    const verifier = createPassportVerifier({ audience: 'payments', issuer: SAMPLE_ISSUER, fetchJwks: () => Promise.resolve(structuredClone(jwksDocument(ring))) });

    test('PyJWT verifies a gatehouse passport against the JWKS with typ, aud and alg pinned', () => {
      const verdict = pyVerify(fixedIssuer(ring, nowSeconds()).issuePassport(SAMPLE_SUBJECT), ring);
      assert.ok(verdict.ok, verdict.error);
      assert.deepEqual(verdict.header, { alg, typ: 'passport+jwt', kid: ring.active.kid });
      assert.deepEqual(verdict.claims?.dev, SAMPLE_SUBJECT.dev);
      assert.equal(verdict.claims?.txn, SAMPLE_SUBJECT.txn);
    });

    test('PyJWT refuses the same passport for another audience, and a tampered one', () => {
      const token = fixedIssuer(ring, nowSeconds()).issuePassport(SAMPLE_SUBJECT);
      assert.match(pyVerify(token, ring, 'lending').error ?? '', /InvalidAudience/);
      const [h, p, s] = token.split('.') as [string, string, string];
      const forged = `${h}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p, 'base64url').toString()) as object, sub: 'admin' })).toString('base64url')}.${s}`;
      assert.match(pyVerify(forged, ring).error ?? '', /InvalidSignature/);
    });

    const pyIssue = (typ: string, claims: Record<string, unknown>): string => runPython('passport_issue.py', {
      pem: ring.active.privateKey.export({ format: 'pem', type: 'pkcs8' }), alg, kid: ring.active.kid, typ, claims,
    });
    const claims = (): Record<string, unknown> => ({ iss: SAMPLE_ISSUER, ...SAMPLE_SUBJECT, iat: nowSeconds(), exp: nowSeconds() + 30 });

    test('a PyJWT-issued token with the passport typ and claims verifies with verifyPassport', async () => {
      const verdict = await verifier.verifyPassport(pyIssue('passport+jwt', claims()));
      assert.ok(verdict.ok, verdict.ok ? '' : verdict.detail);
      assert.equal(verdict.claims.sub, SAMPLE_SUBJECT.sub);
    });

    const refusals: [string, string, () => Record<string, unknown>, PassportFailureCode][] = [
      ['typ JWT', 'JWT', claims, 'bad_typ'],
      ['a 300 s lifetime', 'passport+jwt', () => ({ ...claims(), exp: nowSeconds() + 300 }), 'lifetime_too_long'],
    ];
    for (const [what, typ, makeClaims, code] of refusals) {
      test(`a PyJWT-issued token with ${what} is refused by verifyPassport as ${code}`, async () => {
        const verdict = await verifier.verifyPassport(pyIssue(typ, makeClaims()));
        assert.ok(!verdict.ok);
        assert.equal(verdict.code, code);
      });
    }
  });
}
