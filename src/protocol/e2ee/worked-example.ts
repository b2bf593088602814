// Generates the worked example and the failure table of docs/protocol/e2ee.md from deterministic
// keys. Every intermediate value is recomputed from the building blocks and the final bytes are
// checked against what encryptRequest / decryptRequest / ResponseEncrypter produce, so the spec
// cannot drift from the code (worked-example.test.ts compares the doc with this output).
//   npx tsx src/protocol/e2ee/worked-example.ts          print the generated sections
//   npx tsx src/protocol/e2ee/worked-example.ts --write  rewrite them in docs/protocol/e2ee.md
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { toHex, utf8 } from './bytes.js';
import { E2EE_CLIENT_FAILURES, E2EE_FAILURES } from './codes.js';
import {
  decryptRequest,
  E2EE_REQUEST_MEDIA_TYPE,
  encodeBinding,
  encryptRequest,
  gatehouseRequestInfo,
  gatehouseResponseKeyMaterial,
  responseNonceLength,
} from './envelope.js';
import { fixtureDevice, fixtureGatewayKey, fixtureIkm } from './fixtures.js';
import { AEAD_AES_128_GCM, aeadSeal, deriveX25519KeyPair, setupRecipient, suiteFor, x25519RawPrivateKey } from './hpke.js';
import { E2eeKeyring, chooseKeyConfig, decodeKeyConfigList } from './keys.js';

export const DOC_PATH = fileURLToPath(new URL('../../../docs/protocol/e2ee.md', import.meta.url));

const EXAMPLE = {
  gatewayKeyId: 7,
  deviceKeyId: 'dev-01HZX3',
  ephemeralSeed: 'gatehouse e2ee example ephemeral',
  responseNonceSeed: 'gatehouse e2ee example response nonce',
  method: 'POST',
  path: '/v1/transfers',
  audience: 'api.superapp.example',
  requestContentType: 'application/json',
  requestBody: '{"amount":"12.34","currency":"EUR","to":"acct-9"}',
  responseContentType: 'application/json',
  responseBody: '{"status":"accepted","id":"tr_123"}',
} as const;

function fail(message: string): never {
  throw new Error(`worked example: ${message}`);
}

/** [label, value] rows, in the order an implementer computes them. */
export function workedExampleRows(): [string, string][] {
  const suite = suiteFor(AEAD_AES_128_GCM) ?? fail('no AES-128-GCM suite');
  const gateway = fixtureGatewayKey(EXAMPLE.gatewayKeyId, [AEAD_AES_128_GCM]);
  const keyring = new E2eeKeyring([gateway]);
  const device = fixtureDevice(EXAMPLE.deviceKeyId);
  const ephemeralIkm = fixtureIkm(EXAMPLE.ephemeralSeed);
  const ephemeral = deriveX25519KeyPair(ephemeralIkm);
  const responseNonce = fixtureIkm(EXAMPLE.responseNonceSeed).subarray(0, responseNonceLength(suite));

  const keyConfigs = keyring.encodedKeyConfigs();
  const decoded = decodeKeyConfigList(keyConfigs);
  if (!decoded.ok) fail(decoded.detail);
  const chosen = chooseKeyConfig(decoded.configs);
  if (!chosen.ok) fail(chosen.detail);

  // The request, through the public API.
  const sealed = encryptRequest({
    keyConfig: chosen.config,
    suite: chosen.suite,
    deviceKeyId: EXAMPLE.deviceKeyId,
    devicePrivateKey: device.pair.privateKey,
    method: EXAMPLE.method,
    path: EXAMPLE.path,
    audience: EXAMPLE.audience,
    body: utf8(EXAMPLE.requestBody),
    contentType: EXAMPLE.requestContentType,
    ephemeralPrivateKey: ephemeral.privateKey,
  });
  if (!sealed.ok) fail(sealed.detail);

  // The same request, step by step.
  const header = Buffer.concat([Uint8Array.of(EXAMPLE.gatewayKeyId, 0x00, 0x20, 0x00, 0x01, 0x00, 0x01, EXAMPLE.deviceKeyId.length), utf8(EXAMPLE.deviceKeyId)]);
  const binding = encodeBinding(EXAMPLE);
  if (typeof binding === 'string') fail(binding);
  const info = gatehouseRequestInfo(header, binding);
  const recipient = setupRecipient({
    suite,
    recipientPrivateKey: gateway.privateKey,
    recipientPublicKey: gateway.publicKey,
    enc: ephemeral.publicKey,
    info,
    sender: { publicKey: device.key.publicKey, keyObject: device.key.keyObject },
  });
  const schedule = recipient.context.schedule;
  const framedRequest = Buffer.concat([Uint8Array.of(EXAMPLE.requestContentType.length), utf8(EXAMPLE.requestContentType), utf8(EXAMPLE.requestBody)]);
  const ciphertext = recipient.context.sealAt(0, Buffer.alloc(0), framedRequest);
  const envelope = Buffer.concat([header, ephemeral.publicKey, ciphertext]);
  if (!envelope.equals(sealed.body)) fail('step-by-step envelope differs from encryptRequest');

  // The gateway opens it and answers.
  const opened = decryptRequest(
    { body: envelope, contentType: E2EE_REQUEST_MEDIA_TYPE, method: EXAMPLE.method, path: EXAMPLE.path, audience: EXAMPLE.audience },
    { keyring, deviceKey: (id) => (id === EXAMPLE.deviceKeyId ? device.key : undefined) },
  );
  if (!opened.ok) fail(`decryptRequest: ${opened.code} ${opened.detail}`);
  if (opened.plaintext.toString() !== EXAMPLE.requestBody) fail('decrypted body differs');
  const response = opened.response.encrypt(utf8(EXAMPLE.responseBody), EXAMPLE.responseContentType, { responseNonce });
  if (!response.ok) fail(response.detail);
  const material = gatehouseResponseKeyMaterial(recipient.context, ephemeral.publicKey, responseNonce);
  const framedResponse = Buffer.concat([Uint8Array.of(EXAMPLE.responseContentType.length), utf8(EXAMPLE.responseContentType), utf8(EXAMPLE.responseBody)]);
  // The response has its own key and nonce; it never reuses the request's.
  const responseCiphertext = Buffer.concat([responseNonce, aeadSeal(suite.aead, material.key, material.nonce, Buffer.alloc(0), framedResponse)]);
  if (!responseCiphertext.equals(response.body)) fail('step-by-step response differs from ResponseEncrypter');
  const back = sealed.response.decrypt(response.body, response.contentType);
  if (!back.ok || back.plaintext.toString() !== EXAMPLE.responseBody) fail('the app could not open the response');

  return [
    ['gateway ikmR = SHA-256("gatehouse e2ee example gateway key 7")', toHex(fixtureIkm('gatehouse e2ee example gateway key 7'))],
    ['gateway skR (DeriveKeyPair(ikmR))', toHex(x25519RawPrivateKey(gateway.privateKey))],
    ['gateway pkR', toHex(gateway.publicKey)],
    ['key configuration list (application/ohttp-keys)', toHex(keyConfigs)],
    ['device ikmS = SHA-256("gatehouse e2ee example device dev-01HZX3")', toHex(fixtureIkm(`gatehouse e2ee example device ${EXAMPLE.deviceKeyId}`))],
    ['device skS', toHex(x25519RawPrivateKey(device.pair.privateKey))],
    ['device pkS (enrolled for device key id "dev-01HZX3")', toHex(device.pair.publicKey)],
    [`ephemeral ikmE = SHA-256("${EXAMPLE.ephemeralSeed}")`, toHex(ephemeralIkm)],
    ['ephemeral skE', toHex(x25519RawPrivateKey(ephemeral.privateKey))],
    ['hdr', toHex(header)],
    ['binding', toHex(binding)],
    ['info', toHex(info)],
    ['enc (pkE)', toHex(ephemeral.publicKey)],
    ['shared_secret', toHex(recipient.sharedSecret)],
    ['key_schedule_context', toHex(schedule.keyScheduleContext)],
    ['secret', toHex(schedule.secret)],
    ['key', toHex(schedule.key)],
    ['base_nonce', toHex(schedule.baseNonce)],
    ['exporter_secret', toHex(schedule.exporterSecret)],
    ['request plaintext (framed)', toHex(framedRequest)],
    ['request ciphertext ct', toHex(ciphertext)],
    ['encrypted request body (hdr ‖ enc ‖ ct)', toHex(envelope)],
    ['response plaintext (framed)', toHex(framedResponse)],
    ['response secret = Export("application/vnd.gatehouse.e2ee-response", 16)', toHex(material.secret)],
    [`response_nonce = first 16 bytes of SHA-256("${EXAMPLE.responseNonceSeed}")`, toHex(responseNonce)],
    ['salt (enc ‖ response_nonce)', toHex(material.salt)],
    ['prk', toHex(material.prk)],
    ['response key', toHex(material.key)],
    ['response nonce (AEAD)', toHex(material.nonce)],
    ['encrypted response body (response_nonce ‖ ct)', toHex(response.body)],
  ];
}

const wrap = (hex: string): string => (hex.match(/.{1,64}/g) ?? ['']).join('\n');

export function renderWorkedExample(): string {
  const inputs = [
    `request:  ${EXAMPLE.method} ${EXAMPLE.path}  audience ${EXAMPLE.audience}`,
    `          inner Content-Type ${EXAMPLE.requestContentType}, body ${EXAMPLE.requestBody}`,
    `response: inner Content-Type ${EXAMPLE.responseContentType}, body ${EXAMPLE.responseBody}`,
    `suite:    DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM, mode_auth; key id ${EXAMPLE.gatewayKeyId}; device key id "${EXAMPLE.deviceKeyId}"`,
  ];
  const rows = workedExampleRows().map(([label, value]) => `${label}:\n${wrap(value)}`);
  return ['```text', ...inputs, '', rows.join('\n\n'), '```'].join('\n');
}

export function renderFailureTable(): string {
  const gateway = Object.entries(E2EE_FAILURES).map(([code, { status, meaning }]) => `| \`${code}\` | ${status} | ${meaning} |`);
  const client = Object.entries(E2EE_CLIENT_FAILURES).map(([code, meaning]) => `| \`${code}\` | ${meaning} |`);
  return [
    '| code | HTTP status | meaning |',
    '|---|---|---|',
    ...gateway,
    '',
    'On the app side the SDK answers these (they never travel as statuses):',
    '',
    '| code | meaning |',
    '|---|---|',
    ...client,
  ].join('\n');
}

/** Replaces the text between `<!-- name:begin -->` and `<!-- name:end -->`. */
export function replaceSection(doc: string, name: string, content: string): string {
  const begin = `<!-- ${name}:begin -->`;
  const end = `<!-- ${name}:end -->`;
  const from = doc.indexOf(begin);
  const to = doc.indexOf(end);
  if (from === -1 || to < from) throw new Error(`section ${name} not found`);
  return `${doc.slice(0, from + begin.length)}\n${content}\n${doc.slice(to)}`;
}

export function generatedDoc(doc: string): string {
  return replaceSection(replaceSection(doc, 'worked-example', renderWorkedExample()), 'failure-table', renderFailureTable());
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  if (process.argv.includes('--write')) writeFileSync(DOC_PATH, generatedDoc(readFileSync(DOC_PATH, 'utf8')));
  else process.stdout.write(`${renderWorkedExample()}\n\n${renderFailureTable()}\n`);
}
