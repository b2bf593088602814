// RFC 9458 Appendix A: the key configuration, the encapsulated request and the encapsulated
// response, reproduced byte for byte with the same functions the gatehouse envelope uses (only the
// labels differ: RFC 9458's "message/bhttp request"/"message/bhttp response" instead of ours).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fromHex, toHex, utf8 } from './bytes.js';
import { aeadOpen, aeadSeal, setupRecipient, setupSender, suiteFor, x25519PrivateKeyFromRaw } from './hpke.js';
import { requestInfo, responseKeyMaterial, responseNonceLength } from './envelope.js';
import { decodeKeyConfig, decodeKeyConfigList, encodeKeyConfig, encodeKeyConfigList, loadGatewayKey, keyConfigOf } from './keys.js';
import { parseHexDumps, vectorFile } from './vectors/parse-rfc-text.js';

const rfc = parseHexDumps(vectorFile('rfc9458-appendix-a.txt'));
const hex = (name: string): Buffer => {
  const value = rfc.get(name);
  if (value === undefined || value === '') throw new Error(`RFC 9458 vector ${name} missing`);
  return fromHex(value);
};

test('the key configuration decodes to key id 1, X25519, (HKDF-SHA256, AES-128-GCM) and (HKDF-SHA256, ChaCha20-Poly1305)', () => {
  const decoded = decodeKeyConfig(hex('key_config'));
  assert.ok(decoded.ok);
  assert.equal(decoded.config.keyId, 1);
  assert.equal(decoded.config.kemId, 0x0020);
  assert.deepEqual(decoded.config.symmetric, [{ kdfId: 1, aeadId: 1 }, { kdfId: 1, aeadId: 3 }]);
  assert.equal(toHex(encodeKeyConfig(decoded.config)), toHex(hex('key_config')));
});

test('loading the RFC server key reproduces its key configuration byte for byte', () => {
  const key = loadGatewayKey({ keyId: 1, privateKey: rfc.get('server_private_key')!, aeadIds: [1, 3] });
  assert.equal(toHex(encodeKeyConfig(keyConfigOf(key))), toHex(hex('key_config')));
  const list = encodeKeyConfigList([keyConfigOf(key)]);
  assert.equal(toHex(list), '002d' + toHex(hex('key_config')));
  const decoded = decodeKeyConfigList(list);
  assert.ok(decoded.ok);
  assert.equal(decoded.configs.length, 1);
});

test('the encapsulated request: info, enc and hdr ‖ enc ‖ ct byte for byte, and the gateway opens it', () => {
  const suite = suiteFor(1)!;
  const server = loadGatewayKey({ keyId: 1, privateKey: rfc.get('server_private_key')!, aeadIds: [1, 3] });
  const header = fromHex('01' + '0020' + '0001' + '0001');
  const info = requestInfo(utf8('message/bhttp request'), header);
  assert.equal(toHex(info), toHex(hex('info')));
  const sender = setupSender({ suite, recipientPublicKey: server.publicKey, info, ephemeralPrivateKey: x25519PrivateKeyFromRaw(hex('ephemeral_private_key')) });
  assert.equal(toHex(sender.enc), toHex(hex('ephemeral_public_key')));
  const encapsulated = Buffer.concat([header, sender.enc, sender.context.seal(Buffer.alloc(0), hex('request'))]);
  assert.equal(toHex(encapsulated), toHex(hex('encapsulated_request')));

  const recipient = setupRecipient({ suite, recipientPrivateKey: server.privateKey, recipientPublicKey: server.publicKey, enc: encapsulated.subarray(7, 39), info });
  assert.equal(toHex(recipient.context.open(Buffer.alloc(0), encapsulated.subarray(39)) ?? Buffer.alloc(0)), toHex(hex('request')));
});

test('the encapsulated response: secret, salt, prk, key, nonce and response_nonce ‖ ct byte for byte', () => {
  const suite = suiteFor(1)!;
  const server = loadGatewayKey({ keyId: 1, privateKey: rfc.get('server_private_key')!, aeadIds: [1, 3] });
  const enc = hex('ephemeral_public_key');
  const info = hex('info');
  const { context } = setupRecipient({ suite, recipientPrivateKey: server.privateKey, recipientPublicKey: server.publicKey, enc, info });
  const encapsulatedResponse = hex('encapsulated_response');
  const responseNonce = encapsulatedResponse.subarray(0, responseNonceLength(suite));
  assert.equal(responseNonce.length, 16, 'max(Nn, Nk) for AES-128-GCM');
  const material = responseKeyMaterial(context, utf8('message/bhttp response'), enc, responseNonce);
  assert.equal(toHex(material.secret), toHex(hex('response_secret')));
  assert.equal(toHex(material.salt), toHex(hex('salt')));
  assert.equal(toHex(material.prk), toHex(hex('prk')));
  assert.equal(toHex(material.key), toHex(hex('aead_key')));
  assert.equal(toHex(material.nonce), toHex(hex('aead_nonce')));
  const sealed = Buffer.concat([responseNonce, aeadSeal(suite.aead, material.key, material.nonce, Buffer.alloc(0), hex('response'))]);
  assert.equal(toHex(sealed), toHex(encapsulatedResponse));

  // and the client side, from its own sending context, opens it
  const client = setupSender({ suite, recipientPublicKey: server.publicKey, info, ephemeralPrivateKey: x25519PrivateKeyFromRaw(hex('ephemeral_private_key')) });
  const clientMaterial = responseKeyMaterial(client.context, utf8('message/bhttp response'), client.enc, responseNonce);
  const opened = aeadOpen(suite.aead, clientMaterial.key, clientMaterial.nonce, Buffer.alloc(0), encapsulatedResponse.subarray(16));
  assert.equal(toHex(opened ?? Buffer.alloc(0)), toHex(hex('response')));
});
