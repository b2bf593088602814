// The app side of docs/protocol/e2ee.md on WebCrypto alone (crypto.subtle: X25519, HMAC-SHA256,
// AES-GCM) for browsers and other runtimes without node:crypto. No node: value imports and no
// Buffer: only Uint8Array, TextEncoder and an injected or global SubtleCrypto. AES-128-GCM only —
// WebCrypto has no ChaCha20-Poly1305. The node:crypto client (sdk/app/e2ee.ts) is the reference;
// webcrypto-client.test.ts holds this one to the spec's worked example byte for byte.
import type { webcrypto } from 'node:crypto'; // types only, erased at build time
import { e2eeClientFailure, type E2eeClientFailure } from './codes.js';
import {
  AEAD_AES_128_GCM,
  bindingProblem,
  boundedField,
  DEFAULT_SIZE_LIMITS,
  E2EE_FIELD_LIMITS,
  E2EE_REQUEST_MEDIA_TYPE,
  E2EE_RESPONSE_MEDIA_TYPE,
  isMediaType,
  isVisibleAscii,
  KDF_HKDF_SHA256,
  KEM_DHKEM_X25519_HKDF_SHA256,
} from './wire.js';

type Subtle = webcrypto.SubtleCrypto;
type Key = webcrypto.CryptoKey;

const MODE_AUTH = 0x02;
const NK = 16; // AES-128-GCM
const NN = 12;
const NT = 16;
const RESPONSE_NONCE_LENGTH = Math.max(NN, NK);
const text = new TextEncoder();
const HPKE_V1 = text.encode('HPKE-v1');
const KEM_SUITE_ID = concat(text.encode('KEM'), i2osp2(KEM_DHKEM_X25519_HKDF_SHA256));
const SUITE_ID = concat(text.encode('HPKE'), i2osp2(KEM_DHKEM_X25519_HKDF_SHA256), i2osp2(KDF_HKDF_SHA256), i2osp2(AEAD_AES_128_GCM));
// WebCrypto refuses empty HMAC keys; HKDF's default salt is 32 zero bytes, the same HMAC key.
const ZERO_SALT = new Uint8Array(32);
const EMPTY = new Uint8Array(0);

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

function i2osp2(value: number): Uint8Array {
  return Uint8Array.of(value >> 8, value & 0xff);
}

const lengthPrefixed16 = (value: string): Uint8Array => {
  const bytes = text.encode(value);
  return concat(i2osp2(bytes.length), bytes);
};

async function hmac(subtle: Subtle, key: Uint8Array, data: Uint8Array): Promise<Uint8Array> {
  const imported = await subtle.importKey('raw', key.length === 0 ? ZERO_SALT : key, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return new Uint8Array(await subtle.sign('HMAC', imported, data));
}

/** HKDF-Expand for L ≤ 32 (all this protocol needs): T(1) truncated. */
const expand = async (subtle: Subtle, prk: Uint8Array, info: Uint8Array, length: number): Promise<Uint8Array> =>
  (await hmac(subtle, prk, concat(info, Uint8Array.of(1)))).subarray(0, length);

const labeledExtract = (subtle: Subtle, suiteId: Uint8Array, salt: Uint8Array, label: string, ikm: Uint8Array): Promise<Uint8Array> =>
  hmac(subtle, salt, concat(HPKE_V1, suiteId, text.encode(label), ikm));

const labeledExpand = (subtle: Subtle, suiteId: Uint8Array, prk: Uint8Array, label: string, info: Uint8Array, length: number): Promise<Uint8Array> =>
  expand(subtle, prk, concat(i2osp2(length), HPKE_V1, suiteId, text.encode(label), info), length);

interface GatewayKeyConfig {
  readonly keyId: number;
  readonly publicKey: Uint8Array;
}

/** application/ohttp-keys → the first X25519 configuration offering (HKDF-SHA256, AES-128-GCM). */
export function chooseWebCryptoKeyConfig(list: Uint8Array): GatewayKeyConfig | E2eeClientFailure {
  let offset = 0;
  while (offset < list.length) {
    if (offset + 2 > list.length) return e2eeClientFailure('e2ee_key_config_malformed', 'length prefix runs past the end');
    const length = (list[offset]! << 8) | list[offset + 1]!;
    const config = list.subarray(offset + 2, offset + 2 + length);
    if (config.length !== length) return e2eeClientFailure('e2ee_key_config_malformed', 'configuration runs past the end');
    offset += 2 + length;
    if (length < 3 || ((config[1]! << 8) | config[2]!) !== KEM_DHKEM_X25519_HKDF_SHA256) continue;
    if (length < 37) return e2eeClientFailure('e2ee_key_config_malformed', 'truncated X25519 configuration');
    const symmetricLength = (config[35]! << 8) | config[36]!;
    if (symmetricLength < 4 || symmetricLength % 4 !== 0 || 37 + symmetricLength !== length) {
      return e2eeClientFailure('e2ee_key_config_malformed', 'bad symmetric algorithms length');
    }
    for (let at = 37; at < length; at += 4) {
      const kdfId = (config[at]! << 8) | config[at + 1]!;
      const aeadId = (config[at + 2]! << 8) | config[at + 3]!;
      if (kdfId === KDF_HKDF_SHA256 && aeadId === AEAD_AES_128_GCM) return { keyId: config[0]!, publicKey: config.slice(3, 35) };
    }
  }
  return e2eeClientFailure('e2ee_no_usable_key', 'no X25519 configuration offers HKDF-SHA256 with AES-128-GCM');
}

export interface WebCryptoE2eeClientOptions {
  readonly keyConfigs: Uint8Array;
  readonly deviceKeyId: string;
  /** the device's X25519 private key (usage deriveBits; may be non-extractable) */
  readonly devicePrivateKey: Key;
  /** its raw 32-byte public key, as enrolled (part of the KEM context) */
  readonly devicePublicKey: Uint8Array;
  readonly audience: string;
  /** defaults to globalThis.crypto.subtle */
  readonly subtle?: Subtle;
  readonly maxRequestBytes?: number;
  readonly maxResponseBytes?: number;
}

export interface WebCryptoSealedRequest {
  readonly ok: true;
  readonly body: Uint8Array;
  readonly headers: { readonly 'content-type': string };
  readonly keyId: number;
  decryptResponse(response: { readonly contentType: string | undefined; readonly body: Uint8Array }): Promise<
    { readonly ok: true; readonly plaintext: Uint8Array; readonly contentType: string | null } | E2eeClientFailure
  >;
}

export interface WebCryptoE2eeClient {
  /** `ephemeral` is for known-answer tests only; production calls leave it out. */
  encryptRequest(
    request: { readonly method: string; readonly path: string; readonly body: Uint8Array; readonly contentType: string | null },
    testing?: { readonly ephemeral: { readonly privateKey: Key; readonly publicKey: Key } },
  ): Promise<WebCryptoSealedRequest | E2eeClientFailure>;
}

export function createWebCryptoE2eeClient(options: WebCryptoE2eeClientOptions): { ok: true; client: WebCryptoE2eeClient } | E2eeClientFailure {
  const subtle = options.subtle ?? (globalThis as { crypto?: { subtle?: Subtle } }).crypto?.subtle;
  if (subtle === undefined) return e2eeClientFailure('e2ee_request_invalid', 'no WebCrypto subtle in this runtime');
  const config = chooseWebCryptoKeyConfig(options.keyConfigs);
  if ('ok' in config) return config;
  const problem = boundedField('deviceKeyId', options.deviceKeyId, false, false);
  if (problem !== undefined) return e2eeClientFailure('e2ee_request_invalid', problem);
  if (options.devicePublicKey.length !== 32) return e2eeClientFailure('e2ee_request_invalid', 'device public key must be 32 bytes');
  const maxRequestBytes = options.maxRequestBytes ?? DEFAULT_SIZE_LIMITS.maxRequestBytes;
  const maxResponseBytes = options.maxResponseBytes ?? DEFAULT_SIZE_LIMITS.maxResponseBytes;
  const gateway: GatewayKeyConfig = config;
  const crypto: Subtle = subtle;

  async function encryptRequest(
    request: { readonly method: string; readonly path: string; readonly body: Uint8Array; readonly contentType: string | null },
    testing?: { readonly ephemeral: { readonly privateKey: Key; readonly publicKey: Key } },
  ): Promise<WebCryptoSealedRequest | E2eeClientFailure> {
    const fieldProblem =
      bindingProblem({ ...request, audience: options.audience }) ??
      (request.contentType === null ? undefined : boundedField('contentType', request.contentType, true, true));
    if (fieldProblem !== undefined) return e2eeClientFailure('e2ee_request_invalid', fieldProblem);

    // §4: hdr, binding, info
    const deviceKeyId = text.encode(options.deviceKeyId);
    const header = concat(Uint8Array.of(gateway.keyId), i2osp2(KEM_DHKEM_X25519_HKDF_SHA256), i2osp2(KDF_HKDF_SHA256), i2osp2(AEAD_AES_128_GCM), Uint8Array.of(deviceKeyId.length), deviceKeyId);
    const binding = concat(lengthPrefixed16(request.method), lengthPrefixed16(request.path), lengthPrefixed16(options.audience));
    const info = concat(text.encode(E2EE_REQUEST_MEDIA_TYPE), Uint8Array.of(0), header, binding);

    // RFC 9180 §4.1 AuthEncap(pkR, skS)
    const ephemeral = testing?.ephemeral ?? ((await crypto.generateKey({ name: 'X25519' }, true, ['deriveBits'])) as webcrypto.CryptoKeyPair);
    const enc = new Uint8Array(await crypto.exportKey('raw', ephemeral.publicKey));
    const recipient = await crypto.importKey('raw', gateway.publicKey, { name: 'X25519' }, false, []);
    const dhEphemeral = new Uint8Array(await crypto.deriveBits({ name: 'X25519', public: recipient }, ephemeral.privateKey, 256));
    const dhStatic = new Uint8Array(await crypto.deriveBits({ name: 'X25519', public: recipient }, options.devicePrivateKey, 256));
    const eaePrk = await labeledExtract(crypto, KEM_SUITE_ID, EMPTY, 'eae_prk', concat(dhEphemeral, dhStatic));
    const sharedSecret = await labeledExpand(crypto, KEM_SUITE_ID, eaePrk, 'shared_secret', concat(enc, gateway.publicKey, options.devicePublicKey), 32);

    // RFC 9180 §5.1 key schedule, mode_auth, no PSK
    const pskIdHash = await labeledExtract(crypto, SUITE_ID, EMPTY, 'psk_id_hash', EMPTY);
    const infoHash = await labeledExtract(crypto, SUITE_ID, EMPTY, 'info_hash', info);
    const context = concat(Uint8Array.of(MODE_AUTH), pskIdHash, infoHash);
    const secret = await labeledExtract(crypto, SUITE_ID, sharedSecret, 'secret', EMPTY);
    const key = await labeledExpand(crypto, SUITE_ID, secret, 'key', context, NK);
    const baseNonce = await labeledExpand(crypto, SUITE_ID, secret, 'base_nonce', context, NN);
    const exporterSecret = await labeledExpand(crypto, SUITE_ID, secret, 'exp', context, 32);

    const contentType = text.encode(request.contentType ?? '');
    const plaintext = concat(Uint8Array.of(contentType.length), contentType, request.body);
    const aesKey = await crypto.importKey('raw', key, 'AES-GCM', false, ['encrypt']);
    const ciphertext = new Uint8Array(await crypto.encrypt({ name: 'AES-GCM', iv: baseNonce }, aesKey, plaintext));
    const body = concat(header, enc, ciphertext);
    if (body.length > maxRequestBytes) return e2eeClientFailure('e2ee_request_invalid', `encrypted body of ${body.length} bytes > ${maxRequestBytes}`);

    // §5: the response key comes from this context's exporter
    const responseSecret = await labeledExpand(crypto, SUITE_ID, exporterSecret, 'sec', text.encode(E2EE_RESPONSE_MEDIA_TYPE), RESPONSE_NONCE_LENGTH);
    const decryptResponse: WebCryptoSealedRequest['decryptResponse'] = async (response) => {
      if (!isMediaType(response.contentType, E2EE_RESPONSE_MEDIA_TYPE)) {
        return e2eeClientFailure('e2ee_response_content_type_invalid', `content-type ${JSON.stringify(response.contentType ?? null)}`);
      }
      if (response.body.length > maxResponseBytes + RESPONSE_NONCE_LENGTH + NT + 1 + E2EE_FIELD_LIMITS.contentType) {
        return e2eeClientFailure('e2ee_response_too_large', `${response.body.length} bytes`);
      }
      if (response.body.length < RESPONSE_NONCE_LENGTH + NT + 1) return e2eeClientFailure('e2ee_response_malformed', 'shorter than nonce + tag + framing');
      const responseNonce = response.body.subarray(0, RESPONSE_NONCE_LENGTH);
      const prk = await hmac(crypto, concat(enc, responseNonce), responseSecret);
      const responseKey = await crypto.importKey('raw', await expand(crypto, prk, text.encode('key'), NK), 'AES-GCM', false, ['decrypt']);
      const responseAeadNonce = await expand(crypto, prk, text.encode('nonce'), NN);
      let opened: Uint8Array;
      try {
        opened = new Uint8Array(await crypto.decrypt({ name: 'AES-GCM', iv: responseAeadNonce }, responseKey, response.body.subarray(RESPONSE_NONCE_LENGTH)));
      } catch {
        return e2eeClientFailure('e2ee_response_decrypt_failed', 'AEAD open failed');
      }
      const typeLength = opened[0] ?? 0;
      if (opened.length < 1 + typeLength) return e2eeClientFailure('e2ee_response_malformed', 'content-type length runs past the end');
      const type = String.fromCharCode(...opened.subarray(1, 1 + typeLength));
      if (!isVisibleAscii(type, true)) return e2eeClientFailure('e2ee_response_malformed', 'content type outside visible ASCII');
      return { ok: true, plaintext: opened.subarray(1 + typeLength), contentType: typeLength === 0 ? null : type };
    };
    return { ok: true, body, headers: { 'content-type': E2EE_REQUEST_MEDIA_TYPE }, keyId: gateway.keyId, decryptResponse };
  }

  return { ok: true, client: { encryptRequest } };
}
