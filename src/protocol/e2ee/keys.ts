// Gateway keys and their RFC 9458 §3 key configurations. A keyring holds several key ids at once so
// keys rotate with overlap: publish the new key first, keep accepting the old one until every app
// has refetched the configuration, then drop it.
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { ByteReader, u16 } from './bytes.js';
import { e2eeClientFailure, type E2eeClientFailure } from './codes.js';
import {
  AEAD_AES_128_GCM,
  AEAD_CHACHA20_POLY1305,
  generateX25519KeyPair,
  KDF_HKDF_SHA256,
  KEM_DHKEM_X25519_HKDF_SHA256,
  suiteFor,
  X25519_KEY_LENGTH,
  x25519PrivateKeyFromRaw,
  x25519RawPublicKey,
  type HpkeSuite,
} from './hpke.js';

export const E2EE_KEYS_MEDIA_TYPE = 'application/ohttp-keys';

/** The AEADs a gateway key offers when none are named: AES-128-GCM first (hardware AES), then ChaCha20-Poly1305. */
export const DEFAULT_AEAD_IDS: readonly number[] = [AEAD_AES_128_GCM, AEAD_CHACHA20_POLY1305];

/** One key configuration as RFC 9458 §3.1 encodes it. */
export interface KeyConfig {
  readonly keyId: number;
  readonly kemId: number;
  readonly publicKey: Buffer;
  readonly symmetric: readonly { readonly kdfId: number; readonly aeadId: number }[];
}

export interface GatewayKey {
  readonly keyId: number;
  readonly privateKey: KeyObject;
  /** raw pkR, computed once: every request's KEM context needs it */
  readonly publicKey: Buffer;
  readonly suites: readonly HpkeSuite[];
}

function suitesFor(aeadIds: readonly number[]): HpkeSuite[] {
  if (aeadIds.length === 0) throw new RangeError('a gateway key must offer at least one AEAD');
  return aeadIds.map((aeadId) => {
    const suite = suiteFor(aeadId);
    if (suite === undefined) throw new RangeError(`AEAD 0x${aeadId.toString(16)} is not supported`);
    return suite;
  });
}

function checkKeyId(keyId: number): void {
  if (!Number.isInteger(keyId) || keyId < 0 || keyId > 255) throw new RangeError(`key id must be 0..255, got ${keyId}`);
}

export function generateGatewayKey(keyId: number, aeadIds: readonly number[] = DEFAULT_AEAD_IDS): GatewayKey {
  checkKeyId(keyId);
  const { privateKey, publicKey } = generateX25519KeyPair();
  return { keyId, privateKey, publicKey, suites: suitesFor(aeadIds) };
}

/**
 * Loads a gateway private key from configuration: a PKCS#8 PEM, 64 hex digits (the raw RFC 7748
 * scalar, as RFC 9458's example prints it), 32 raw bytes, or a KeyObject. Throws on bad input:
 * this runs at config load, never per request.
 */
export function loadGatewayKey(input: { keyId: number; privateKey: string | Uint8Array | KeyObject; aeadIds?: readonly number[] }): GatewayKey {
  checkKeyId(input.keyId);
  const { privateKey: source } = input;
  let privateKey: KeyObject;
  if (typeof source === 'string') {
    const text = source.trim();
    if (text.startsWith('-----BEGIN')) privateKey = createPrivateKey({ key: text, format: 'pem' });
    else if (/^[0-9a-fA-F]{64}$/.test(text)) privateKey = x25519PrivateKeyFromRaw(Buffer.from(text, 'hex'));
    else throw new RangeError('gateway private key must be PKCS#8 PEM or 64 hex digits');
  } else if (source instanceof Uint8Array) {
    privateKey = x25519PrivateKeyFromRaw(source);
  } else {
    privateKey = source;
  }
  if (privateKey.type !== 'private' || privateKey.asymmetricKeyType !== 'x25519') throw new RangeError('gateway private key must be an X25519 private key');
  return { keyId: input.keyId, privateKey, publicKey: x25519RawPublicKey(privateKey), suites: suitesFor(input.aeadIds ?? DEFAULT_AEAD_IDS) };
}

export function keyConfigOf(key: GatewayKey): KeyConfig {
  return {
    keyId: key.keyId,
    kemId: KEM_DHKEM_X25519_HKDF_SHA256,
    publicKey: key.publicKey,
    symmetric: key.suites.map((suite) => ({ kdfId: suite.kdfId, aeadId: suite.aead.id })),
  };
}

/** RFC 9458 §3.1: key_id(8) ‖ kem_id(16) ‖ public_key(Npk) ‖ length(16) ‖ (kdf_id(16) ‖ aead_id(16))… */
export function encodeKeyConfig(config: KeyConfig): Buffer {
  const symmetric = config.symmetric.flatMap(({ kdfId, aeadId }) => [u16(kdfId), u16(aeadId)]);
  return Buffer.concat([Uint8Array.of(config.keyId), u16(config.kemId), config.publicKey, u16(config.symmetric.length * 4), ...symmetric]);
}

/** RFC 9458 §3.2 application/ohttp-keys: each configuration prefixed by its 2-byte length. */
export function encodeKeyConfigList(configs: readonly KeyConfig[]): Buffer {
  return Buffer.concat(
    configs.flatMap((config) => {
      const encoded = encodeKeyConfig(config);
      return [u16(encoded.length), encoded];
    }),
  );
}

function readKeyConfig(reader: ByteReader): KeyConfig | string {
  const keyId = reader.u8();
  const kemId = reader.u16();
  if (keyId === undefined || kemId === undefined) return 'truncated before the public key';
  // Only X25519 has a known Npk here; any other KEM cannot be parsed past its id.
  if (kemId !== KEM_DHKEM_X25519_HKDF_SHA256) return `unsupported KEM 0x${kemId.toString(16)}`;
  const publicKey = reader.take(X25519_KEY_LENGTH);
  const symmetricLength = reader.u16();
  if (publicKey === undefined || symmetricLength === undefined) return 'truncated in the public key';
  if (symmetricLength < 4 || symmetricLength % 4 !== 0) return `symmetric algorithms length ${symmetricLength} is not a positive multiple of 4`;
  const symmetric: { kdfId: number; aeadId: number }[] = [];
  for (let index = 0; index < symmetricLength / 4; index++) {
    const kdfId = reader.u16();
    const aeadId = reader.u16();
    if (kdfId === undefined || aeadId === undefined) return 'truncated in the symmetric algorithms';
    symmetric.push({ kdfId, aeadId });
  }
  return { keyId, kemId, publicKey: Buffer.from(publicKey), symmetric };
}

/** One bare key configuration (RFC 9458 §3.1), with nothing after it. */
export function decodeKeyConfig(bytes: Uint8Array): { ok: true; config: KeyConfig } | E2eeClientFailure {
  const reader = new ByteReader(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  const config = readKeyConfig(reader);
  if (typeof config === 'string') return e2eeClientFailure('e2ee_key_config_malformed', config);
  if (reader.remaining !== 0) return e2eeClientFailure('e2ee_key_config_malformed', `${reader.remaining} bytes after the configuration`);
  return { ok: true, config };
}

/**
 * application/ohttp-keys. Configurations for KEMs we do not implement are skipped, as §3.2 allows
 * (the length prefix makes that possible); a malformed X25519 configuration fails the whole list.
 */
export function decodeKeyConfigList(bytes: Uint8Array): { ok: true; configs: KeyConfig[] } | E2eeClientFailure {
  const reader = new ByteReader(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  const configs: KeyConfig[] = [];
  while (reader.remaining > 0) {
    const length = reader.u16();
    const body = length === undefined ? undefined : reader.take(length);
    if (body === undefined) return e2eeClientFailure('e2ee_key_config_malformed', 'length prefix runs past the end');
    if (body.length >= 3 && body.readUInt16BE(1) !== KEM_DHKEM_X25519_HKDF_SHA256) continue;
    const decoded = decodeKeyConfig(body);
    if (!decoded.ok) return decoded;
    configs.push(decoded.config);
  }
  if (configs.length === 0) return e2eeClientFailure('e2ee_key_config_malformed', 'no X25519 key configuration in the list');
  return { ok: true, configs };
}

/** The gateway's keys by id. Built at config load; per request it only answers find(). */
export class E2eeKeyring {
  private readonly byId = new Map<number, GatewayKey>();

  /** keys in publication order, preferred first; throws on a repeated key id (a config error). */
  constructor(readonly keys: readonly GatewayKey[]) {
    if (keys.length === 0) throw new RangeError('an e2ee keyring needs at least one key');
    for (const key of keys) {
      if (this.byId.has(key.keyId)) throw new RangeError(`key id ${key.keyId} appears twice`);
      this.byId.set(key.keyId, key);
    }
  }

  find(keyId: number): GatewayKey | undefined {
    return this.byId.get(keyId);
  }

  /** What GET /.well-known/… serves as application/ohttp-keys. */
  encodedKeyConfigs(): Buffer {
    return encodeKeyConfigList(this.keys.map(keyConfigOf));
  }
}

/** Picks the first configuration (publication order) that offers HKDF-SHA256 with an AEAD we implement. */
export function chooseKeyConfig(
  configs: readonly KeyConfig[],
  preferredAeadIds: readonly number[] = DEFAULT_AEAD_IDS,
): { ok: true; config: KeyConfig; suite: HpkeSuite } | E2eeClientFailure {
  for (const config of configs) {
    if (config.kemId !== KEM_DHKEM_X25519_HKDF_SHA256) continue;
    for (const aeadId of preferredAeadIds) {
      const suite = suiteFor(aeadId);
      if (suite !== undefined && config.symmetric.some((s) => s.kdfId === KDF_HKDF_SHA256 && s.aeadId === aeadId)) return { ok: true, config, suite };
    }
  }
  return e2eeClientFailure('e2ee_no_usable_key', `none of ${configs.length} key configurations offers a supported suite`);
}
