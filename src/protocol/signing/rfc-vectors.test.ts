// Known-answer tests from the RFCs' own text: RFC 9421 Appendix B.2.6 (reproduced byte for byte) and
// B.2.4 (verified), RFC 9530's plain examples. Values copied from the RFCs, never from our output.
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, sign } from 'node:crypto';
import { test } from 'node:test';
import { base64Decode, base64Encode, utf8 } from '../common/base64.js';
import { parseDictionary, type InnerList } from '../common/sfv.js';
import { checkContentDigest, computeContentDigest } from './content-digest.js';
import { signRaw, verifyRaw } from './keys.js';
import { buildSignatureBase, type MessageView } from './signature-base.js';
import { derFromRaw } from './test-support.js';

// RFC 9421 B.1.4 test-key-ed25519 and B.1.3 test-key-ecc-p256 (public half).
const ED25519_PRIVATE = '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF\n-----END PRIVATE KEY-----\n';
const ED25519_PUBLIC = '-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAJrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=\n-----END PUBLIC KEY-----\n';
const P256_PUBLIC = '-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqIVYZVLCrPZHGHjP17CTW0/+D9Lf\nw0EkjqF7xB4FivAxzic30tMM4GF+hR6Dxh71Z50VGGdldkkDXZCnTNnoXQ==\n-----END PUBLIC KEY-----\n';
const P256_PRIVATE = '-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIFKbhfNZfpDsW43+0+JjUr9K+bTeuxopu653+hBaXGA7oAoGCCqGSM49\nAwEHoUQDQgAEqIVYZVLCrPZHGHjP17CTW0/+D9Lfw0EkjqF7xB4FivAxzic30tMM\n4GF+hR6Dxh71Z50VGGdldkkDXZCnTNnoXQ==\n-----END EC PRIVATE KEY-----\n';

// RFC 9421 B.2 test-request: POST /foo?param=Value&Pet=dog, Host example.com.
const testRequest: MessageView = {
  method: 'POST',
  authority: 'example.com',
  path: '/foo',
  query: 'param=Value&Pet=dog',
  header: (name) =>
    ({
      date: 'Tue, 20 Apr 2021 02:07:55 GMT',
      'content-type': 'application/json',
      'content-digest': 'sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:',
      'content-length': '18',
    })[name],
};

// B.2 test-response, with the Content-Digest B.2.4's signature base actually uses (the message listing
// misprints it as sha-512=:JlEy2bfU…:, which does not match the body).
const testResponse: MessageView = {
  status: 200,
  header: (name) =>
    ({
      'content-type': 'application/json',
      'content-digest': 'sha-512=:mEWXIS7MaLRuGgxOBdODa3xqM1XdEvxoYhvlCFJ41QJgJc4GTsPp29l5oGX69wWdXymyU0rjJuahq4l5aGgfLQ==:',
      'content-length': '23',
    })[name],
};

function innerListOf(signatureInput: string, label: string): InnerList {
  const member = parseDictionary(signatureInput)?.get(label);
  assert.ok(member?.kind === 'inner-list', `${label} parses to an inner list`);
  return member;
}

function signatureOf(signature: string, label: string): Uint8Array {
  const member = parseDictionary(signature)?.get(label);
  assert.ok(member?.kind === 'item' && member.value.type === 'bytes');
  return member.value.value;
}

test('RFC 9421 B.2.6: the ed25519 signature base and signature are reproduced byte for byte', () => {
  const signatureInput = 'sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"';
  const expectedBase = [
    '"date": Tue, 20 Apr 2021 02:07:55 GMT',
    '"@method": POST',
    '"@path": /foo',
    '"@authority": example.com',
    '"content-type": application/json',
    '"content-length": 18',
    '"@signature-params": ("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"',
  ].join('\n');
  const expectedSignature = 'wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==';

  const result = buildSignatureBase(innerListOf(signatureInput, 'sig-b26'), testRequest);
  assert.ok(result.ok);
  assert.equal(result.base, expectedBase);
  const signature = signRaw('ed25519', createPrivateKey(ED25519_PRIVATE), utf8(result.base));
  assert.equal(base64Encode(signature), expectedSignature);
  assert.ok(verifyRaw('ed25519', createPublicKey(ED25519_PUBLIC), utf8(result.base), signatureOf(`sig-b26=:${expectedSignature}:`, 'sig-b26')));
});

test('RFC 9421 B.2.4: the ecdsa-p256-sha256 response signature verifies over the rebuilt base, and its DER form is refused', () => {
  const signatureInput = 'sig-b24=("@status" "content-type" "content-digest" "content-length");created=1618884473;keyid="test-key-ecc-p256"';
  const expectedBase = [
    '"@status": 200',
    '"content-type": application/json',
    '"content-digest": sha-512=:mEWXIS7MaLRuGgxOBdODa3xqM1XdEvxoYhvlCFJ41QJgJc4GTsPp29l5oGX69wWdXymyU0rjJuahq4l5aGgfLQ==:',
    '"content-length": 23',
    '"@signature-params": ("@status" "content-type" "content-digest" "content-length");created=1618884473;keyid="test-key-ecc-p256"',
  ].join('\n');
  const signature = signatureOf('sig-b24=:wNmSUAhwb5LxtOtOpNa6W5xj067m5hFrj0XQ4fvpaCLx0NKocgPquLgyahnzDnDAUy5eCdlYUEkLIj+32oiasw==:', 'sig-b24');

  const result = buildSignatureBase(innerListOf(signatureInput, 'sig-b24'), testResponse);
  assert.ok(result.ok);
  assert.equal(result.base, expectedBase);
  const publicKey = createPublicKey(P256_PUBLIC);
  assert.equal(signature.length, 64);
  assert.ok(verifyRaw('ecdsa-p256-sha256', publicKey, utf8(result.base), signature));

  // The same (r, s) in DER must not verify: the profile accepts only raw r‖s.
  const der = derFromRaw(signature);
  assert.ok(der.length > 64);
  assert.equal(verifyRaw('ecdsa-p256-sha256', publicKey, utf8(result.base), der), false);
  // One flipped bit in the base fails.
  assert.equal(verifyRaw('ecdsa-p256-sha256', publicKey, utf8(result.base.replace('200', '201')), signature), false);
  // A fresh signature by the RFC's private key verifies too (ECDSA is randomised, so only verification is exact).
  const fresh = sign('sha256', utf8(result.base), { key: createPrivateKey(P256_PRIVATE), dsaEncoding: 'ieee-p1363' });
  assert.ok(verifyRaw('ecdsa-p256-sha256', publicKey, utf8(result.base), fresh));
});

test('RFC 9421 B.2: the test-request Content-Digest is the sha-512 of {"hello": "world"} without a trailing newline', () => {
  const body = utf8('{"hello": "world"}');
  assert.deepEqual(checkContentDigest(testRequest.header('content-digest')!, body), { ok: true });
  assert.equal(checkContentDigest(testRequest.header('content-digest')!, utf8('{"hello": "world"}\n')).ok, false);
  // B.2's printed test-response digest (JlEy2bfU…) is the misprint: it does not match its own body.
  const misprint = 'sha-512=:JlEy2bfUz7WrWIjc1qV6KVLpdr/7L5/L4h7Sxvh6sNHpDQWDCL+GauFQWcZBvVDhiyOnAQsxzZFYwi0wDH+1pw==:';
  const response = utf8('{"message": "good dog"}');
  assert.equal(checkContentDigest(misprint, response).ok, false);
  assert.deepEqual(checkContentDigest(testResponse.header('content-digest')!, response), { ok: true });
});

test('RFC 9530 examples: Appendix B (body with LF), the empty body, the partial content, and Appendix D (no LF)', () => {
  const withLf = utf8('{"hello": "world"}\n');
  assert.equal(computeContentDigest(withLf), 'sha-256=:RK/0qy18MlBSVnWgjwz6lZEWjP/lF5HF9bvEF8FabDg=:');
  assert.equal(
    computeContentDigest(withLf, ['sha-512']),
    'sha-512=:YMAam51Jz/jOATT6/zvHrLVgOYTGFy1d6GJiOHTohq4yP+pgk4vf2aCsyRZOtw8MjkM7iw7yZ/WkppmM44T3qg==:',
  );
  assert.equal(computeContentDigest(new Uint8Array(0)), 'sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:');
  assert.equal(computeContentDigest(utf8('"world"}\n')), 'sha-256=:jjcgBDWNAtbYUXI37CVG3gRuGOAjaaDRGpIUFsdyepQ=:');
  const noLf = utf8('{"hello": "world"}');
  assert.equal(
    computeContentDigest(noLf, ['sha-256', 'sha-512']),
    'sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:, sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:',
  );
  // A field with both digests passes only when both match.
  const both = 'sha-256=:RK/0qy18MlBSVnWgjwz6lZEWjP/lF5HF9bvEF8FabDg=:, sha-512=:YMAam51Jz/jOATT6/zvHrLVgOYTGFy1d6GJiOHTohq4yP+pgk4vf2aCsyRZOtw8MjkM7iw7yZ/WkppmM44T3qg==:';
  assert.deepEqual(checkContentDigest(both, withLf), { ok: true });
  assert.equal(checkContentDigest(both.replace('YMAa', 'WMAa'), withLf).ok, false);
  // Unknown algorithms are ignored but cannot stand alone.
  const unknownOnly = checkContentDigest('unixsum=:GQU=:', withLf);
  assert.equal(unknownOnly.ok ? 'ok' : unknownOnly.code, 'digest_malformed');
  assert.equal(base64Decode('RK/0qy18MlBSVnWgjwz6lZEWjP/lF5HF9bvEF8FabDg=')?.length, 32);
});

