import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { CompactSign, compactVerify, createLocalJWKSet, jwtVerify } from 'jose';
import { PASSPORT_FAILURES } from './codes.js';
import { PASSPORT_DOC } from './gen-doc.js';
import { parseJwks } from './keys.js';
import { compilePassportPolicy, verifyPassportWithKeys } from './verify.js';
import { buildWorkedExample, EXAMPLE_AUDIENCE, regenerate } from './worked-example.js';
import { FIXED_NOW_SECONDS, SAMPLE_ISSUER } from './testing.js';

const doc = readFileSync(PASSPORT_DOC, 'utf8');
const example = buildWorkedExample();

describe('docs/protocol/passport.md', () => {
  test('the generated sections are what the code produces now (run src/protocol/passport/gen-doc.ts if not)', () => {
    assert.equal(doc, regenerate(doc));
  });

  test('the document prints every failure code with its status', () => {
    for (const [code, { status }] of Object.entries(PASSPORT_FAILURES)) assert.ok(doc.includes(`| \`${code}\` | ${status} |`), code);
  });

  test('the example key is RFC 8037 A.1: its d derives its x', () => {
    const { d, x } = example.activePrivateJwk;
    const derived = createPublicKey(createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), Buffer.from(d!, 'base64url')]), format: 'der', type: 'pkcs8' }));
    assert.equal(derived.export({ format: 'jwk' }).x, x);
    assert.equal(x, '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo');
  });

  test('jose, signing the documented header and payload with the documented key, produces the documented token byte for byte', async () => {
    const key = createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d: example.activePrivateJwk.d!, x: example.activePrivateJwk.x! }, format: 'jwk' });
    const header = JSON.parse(example.headerJson) as { alg: string; typ: string; kid: string };
    const token = await new CompactSign(new TextEncoder().encode(example.payloadJson)).setProtectedHeader(header).sign(key);
    assert.equal(token, example.token);
    assert.equal(example.signingInput, example.token.slice(0, example.token.lastIndexOf('.')));
    assert.equal(Buffer.from(example.signatureHex, 'hex').toString('base64url'), example.encodedSignature);
  });

  test('jose verifies the documented token against the documented JWKS; ours accepts it at iat and refuses it 35 s later', async () => {
    const jwks = JSON.parse(example.jwksJson) as Parameters<typeof createLocalJWKSet>[0];
    const { payload } = await compactVerify(example.token, createLocalJWKSet(jwks));
    assert.equal(new TextDecoder().decode(payload), example.payloadJson);
    await jwtVerify(example.token, createLocalJWKSet(jwks), { typ: 'passport+jwt', algorithms: ['EdDSA'], audience: EXAMPLE_AUDIENCE, currentDate: new Date(FIXED_NOW_SECONDS * 1000) });
    const parsed = parseJwks(jwks);
    assert.ok(parsed.ok);
    const policy = compilePassportPolicy({ audience: EXAMPLE_AUDIENCE, issuer: SAMPLE_ISSUER });
    assert.ok(verifyPassportWithKeys(example.token, parsed.keys, policy, FIXED_NOW_SECONDS).ok);
    const later = verifyPassportWithKeys(example.token, parsed.keys, policy, FIXED_NOW_SECONDS + 35);
    assert.ok(!later.ok);
    assert.equal(later.code, 'expired');
  });
});
