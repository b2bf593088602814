/**
 * gatehouse app SDK — end-to-end encryption of request and response bodies. Implements
 * docs/protocol/e2ee.md: HPKE mode_auth (DHKEM X25519, HKDF-SHA256, AES-128-GCM or
 * ChaCha20-Poly1305) with RFC 9458's encapsulation, the request line bound into `info`.
 *
 * ```ts
 * const made = createE2eeClient({ keyConfigs, deviceKeyId, devicePrivateKey, audience: 'api.superapp.example' });
 * if (!made.ok) throw new Error(made.code);
 * const sealed = made.client.encryptRequest({ method: 'POST', path: '/v1/transfers', body, contentType: 'application/json' });
 * if (!sealed.ok) throw new Error(sealed.code);
 * const res = await fetch(url, { method: 'POST', headers: sealed.headers, body: sealed.body });
 * const opened = sealed.decryptResponse({ contentType: res.headers.get('content-type') ?? undefined, body: new Uint8Array(await res.arrayBuffer()) });
 * ```
 *
 * Runtimes:
 * - Node.js ≥ 20: supported and tested, on synchronous node:crypto (this module).
 * - Browsers: not this module (it imports node:crypto) but createWebCryptoE2eeClient from
 *   src/protocol/e2ee/webcrypto-client.ts, which uses only `crypto.subtle` (X25519 deriveBits,
 *   HMAC-SHA256, AES-GCM), Uint8Array and TextEncoder — no node: imports, no Buffer. It needs
 *   WebCrypto X25519 (current Safari, Firefox and Chromium; check the app's browser matrix) and
 *   offers AES-128-GCM only (WebCrypto has no ChaCha20-Poly1305). It is async, and tested on
 *   Node's WebCrypto: the spec's worked example byte for byte, and round trips with the gateway.
 *   The device key can be a non-extractable CryptoKey.
 * - React Native: no WebCrypto; use a native module exposing X25519, HMAC-SHA256 and AES-GCM (e.g.
 *   react-native-quick-crypto, whose node:crypto-compatible API runs this module's algorithms), and
 *   keep the device key in the platform keystore where it supports X25519.
 *
 * Errors: nothing here throws on bad input or a bad response; every failure is a stable code from
 * E2EE_CLIENT_FAILURES (src/protocol/e2ee/codes.ts). Gateway refusals arrive as plain (unencrypted)
 * responses with an HTTP status and a code from E2EE_FAILURES; `e2ee_unknown_key_id` means: fetch
 * the key configuration again, call updateKeyConfigs, retry once.
 */
import type { KeyObject } from 'node:crypto';
import {
  AEAD_AES_128_GCM,
  AEAD_CHACHA20_POLY1305,
  chooseKeyConfig,
  decodeKeyConfigList,
  DEFAULT_SIZE_LIMITS,
  E2EE_REQUEST_MEDIA_TYPE,
  e2eeClientFailure,
  encryptRequest as sealRequest,
  generateX25519KeyPair,
  x25519PrivateKeyFromRaw,
  type DecryptedResponse,
  type E2eeClientFailure,
  type KeyConfig,
} from '../../src/protocol/e2ee/index.js';
import { suiteFor, type HpkeSuite } from '../../src/protocol/e2ee/hpke.js';

export { E2EE_CLIENT_FAILURES, E2EE_FAILURES, E2EE_KEYS_MEDIA_TYPE, E2EE_REQUEST_MEDIA_TYPE, E2EE_RESPONSE_MEDIA_TYPE } from '../../src/protocol/e2ee/index.js';
export type { DecryptedResponse, E2eeClientFailure, E2eeClientFailureCode } from '../../src/protocol/e2ee/index.js';

export type E2eeAead = 'aes-128-gcm' | 'chacha20-poly1305';

const AEAD_IDS: Readonly<Record<E2eeAead, number>> = { 'aes-128-gcm': AEAD_AES_128_GCM, 'chacha20-poly1305': AEAD_CHACHA20_POLY1305 };

export interface E2eeClientOptions {
  /** the gateway's key configurations, as served (`application/ohttp-keys`) */
  readonly keyConfigs: Uint8Array;
  /** the id under which this device's X25519 public key is enrolled (1–64 visible ASCII bytes) */
  readonly deviceKeyId: string;
  /** this device's X25519 private key: a KeyObject, or the raw 32 bytes */
  readonly devicePrivateKey: KeyObject | Uint8Array;
  /** the API's audience the gateway binds, e.g. "api.superapp.example" */
  readonly audience: string;
  /** AEADs in order of preference; default AES-128-GCM, then ChaCha20-Poly1305 */
  readonly aeads?: readonly E2eeAead[];
  readonly maxRequestBytes?: number;
  readonly maxResponseBytes?: number;
}

export interface PlainRequest {
  /** as sent, e.g. "POST" */
  readonly method: string;
  /** exactly the :path the gateway will see, query string included, e.g. "/v1/transfers?x=1" */
  readonly path: string;
  readonly body: Uint8Array;
  /** the body's media type, e.g. "application/json"; null for none */
  readonly contentType: string | null;
}

export interface SealedRequest {
  readonly ok: true;
  /** send as the request body */
  readonly body: Buffer;
  /** set on the request (Content-Type: application/vnd.gatehouse.e2ee-request) */
  readonly headers: { readonly 'content-type': string };
  /** the gateway key id used; on e2ee_unknown_key_id refresh the configuration and retry */
  readonly keyId: number;
  /** opens the response to this request, and only to this request */
  decryptResponse(response: { readonly contentType: string | undefined; readonly body: Uint8Array }): DecryptedResponse | E2eeClientFailure;
}

export interface E2eeClient {
  encryptRequest(request: PlainRequest): SealedRequest | E2eeClientFailure;
  /** after fetching the key configuration again (rotation) */
  updateKeyConfigs(keyConfigs: Uint8Array): { ok: true } | E2eeClientFailure;
}

function chooseFrom(keyConfigs: Uint8Array, aeadIds: readonly number[]): { ok: true; config: KeyConfig; suite: HpkeSuite } | E2eeClientFailure {
  const decoded = decodeKeyConfigList(keyConfigs);
  if (!decoded.ok) return decoded;
  return chooseKeyConfig(decoded.configs, aeadIds);
}

/** Validates the configuration and the device key once; answers a code rather than throwing. */
export function createE2eeClient(options: E2eeClientOptions): { ok: true; client: E2eeClient } | E2eeClientFailure {
  const aeadIds = (options.aeads ?? ['aes-128-gcm', 'chacha20-poly1305']).map((name) => AEAD_IDS[name]).filter((id) => suiteFor(id) !== undefined);
  let devicePrivateKey: KeyObject;
  if (options.devicePrivateKey instanceof Uint8Array) {
    if (options.devicePrivateKey.length !== 32) return e2eeClientFailure('e2ee_request_invalid', 'device private key must be 32 bytes');
    devicePrivateKey = x25519PrivateKeyFromRaw(options.devicePrivateKey);
  } else {
    devicePrivateKey = options.devicePrivateKey;
  }
  if (devicePrivateKey.type !== 'private' || devicePrivateKey.asymmetricKeyType !== 'x25519') {
    return e2eeClientFailure('e2ee_request_invalid', 'device private key must be an X25519 private key');
  }
  let chosen = chooseFrom(options.keyConfigs, aeadIds);
  if (!chosen.ok) return chosen;
  const maxResponseBytes = options.maxResponseBytes ?? DEFAULT_SIZE_LIMITS.maxResponseBytes;

  const client: E2eeClient = {
    encryptRequest(request) {
      if (!chosen.ok) return chosen;
      const sealed = sealRequest({
        keyConfig: chosen.config,
        suite: chosen.suite,
        deviceKeyId: options.deviceKeyId,
        devicePrivateKey,
        method: request.method,
        path: request.path,
        audience: options.audience,
        body: request.body,
        contentType: request.contentType,
        ...(options.maxRequestBytes === undefined ? {} : { maxRequestBytes: options.maxRequestBytes }),
      });
      if (!sealed.ok) return sealed;
      return {
        ok: true,
        body: sealed.body,
        headers: { 'content-type': E2EE_REQUEST_MEDIA_TYPE },
        keyId: chosen.config.keyId,
        decryptResponse: (response) => sealed.response.decrypt(response.body, response.contentType, maxResponseBytes),
      };
    },
    updateKeyConfigs(keyConfigs) {
      const next = chooseFrom(keyConfigs, aeadIds);
      if (!next.ok) return next; // keep the previous configuration
      chosen = next;
      return { ok: true };
    },
  };
  return { ok: true, client };
}

/**
 * A new device key pair for enrollment: register `publicKey` (32 raw bytes) under the device key
 * id through the signing layer's enrollment; keep `privateKey` on the device.
 */
export function generateDeviceKey(): { privateKey: KeyObject; publicKey: Buffer } {
  return generateX25519KeyPair();
}
