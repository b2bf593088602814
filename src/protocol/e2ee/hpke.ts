// RFC 9180 HPKE on synchronous node:crypto: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, and the
// AEADs AES-128-GCM and ChaCha20-Poly1305; modes base (0x00) and auth (0x02).
// Synchronous on purpose: WebCrypto-based HPKE costs ~1 ms a request in promise plumbing, the same
// steps here cost ~0.1 ms. Proven byte for byte against RFC 9180 Appendix A (hpke.test.ts).
import * as nodeCrypto from 'node:crypto';
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  type KeyObject,
} from 'node:crypto';
import { asBuffer, u16, utf8 } from './bytes.js';
import { AEAD_AES_128_GCM, AEAD_CHACHA20_POLY1305, KDF_HKDF_SHA256, KEM_DHKEM_X25519_HKDF_SHA256 } from './wire.js';

export { AEAD_AES_128_GCM, AEAD_CHACHA20_POLY1305, KDF_HKDF_SHA256, KEM_DHKEM_X25519_HKDF_SHA256 };

export const MODE_BASE = 0x00;
export const MODE_AUTH = 0x02;
export type HpkeMode = typeof MODE_BASE | typeof MODE_AUTH;

/** X25519: Nsecret = Nenc = Npk = Nsk = 32. */
export const X25519_KEY_LENGTH = 32;
const HASH_LENGTH = 32; // Nh of HKDF-SHA256
const TAG_LENGTH = 16; // Nt of both AEADs

export interface AeadAlgorithm {
  readonly id: number;
  readonly name: string;
  readonly nodeCipher: 'aes-128-gcm' | 'chacha20-poly1305';
  /** key length */
  readonly Nk: number;
  /** nonce length */
  readonly Nn: number;
  /** tag length */
  readonly Nt: number;
}

export const AEADS: ReadonlyMap<number, AeadAlgorithm> = new Map<number, AeadAlgorithm>([
  [AEAD_AES_128_GCM, { id: AEAD_AES_128_GCM, name: 'AES-128-GCM', nodeCipher: 'aes-128-gcm', Nk: 16, Nn: 12, Nt: TAG_LENGTH }],
  [AEAD_CHACHA20_POLY1305, { id: AEAD_CHACHA20_POLY1305, name: 'ChaCha20-Poly1305', nodeCipher: 'chacha20-poly1305', Nk: 32, Nn: 12, Nt: TAG_LENGTH }],
]);

/** The KEM and KDF are fixed; a suite differs only in its AEAD. */
export interface HpkeSuite {
  readonly kemId: number;
  readonly kdfId: number;
  readonly aead: AeadAlgorithm;
  /** "HPKE" ‖ I2OSP(kem_id, 2) ‖ I2OSP(kdf_id, 2) ‖ I2OSP(aead_id, 2) */
  readonly suiteId: Buffer;
  /** LabeledExtract("", "psk_id_hash", "") — constant for modes without a PSK, so computed once. */
  readonly emptyPskIdHash: Buffer;
  /** the labelled prefixes the key schedule hashes on every request, built once (see labeledPrefix) */
  readonly schedulePrefixes: { readonly secret: Buffer; readonly key: Buffer; readonly baseNonce: Buffer; readonly exp: Buffer };
}

const HPKE_V1 = utf8('HPKE-v1');
const KEM_SUITE_ID = Buffer.concat([utf8('KEM'), u16(KEM_DHKEM_X25519_HKDF_SHA256)]);
const EMPTY = Buffer.alloc(0);

const suites = new Map<number, HpkeSuite>();

/** The suite for an AEAD id, or undefined when we do not offer it. */
export function suiteFor(aeadId: number): HpkeSuite | undefined {
  const cached = suites.get(aeadId);
  if (cached !== undefined) return cached;
  const aead = AEADS.get(aeadId);
  if (aead === undefined) return undefined;
  const suiteId = Buffer.concat([utf8('HPKE'), u16(KEM_DHKEM_X25519_HKDF_SHA256), u16(KDF_HKDF_SHA256), u16(aeadId)]);
  const suite: HpkeSuite = {
    kemId: KEM_DHKEM_X25519_HKDF_SHA256,
    kdfId: KDF_HKDF_SHA256,
    aead,
    suiteId,
    emptyPskIdHash: Buffer.from(labeledExtract(suiteId, EMPTY, 'psk_id_hash', EMPTY), 'latin1'),
    schedulePrefixes: {
      secret: labeledPrefix(suiteId, 'secret'),
      key: labeledPrefix(suiteId, 'key', aead.Nk),
      baseNonce: labeledPrefix(suiteId, 'base_nonce', aead.Nn),
      exp: labeledPrefix(suiteId, 'exp', HASH_LENGTH),
    },
  };
  suites.set(aeadId, suite);
  return suite;
}

// ---------------------------------------------------------------------------------------------
// HKDF-SHA256 (RFC 5869) and the labelled forms of RFC 9180 §4.

const COUNTER_ONE = Uint8Array.of(1);

// HMAC-SHA256 (RFC 2104) as two one-shot SHA-256 calls, H(K^opad ‖ H(K^ipad ‖ m)), where node has
// crypto.hash (20.12+; createHmac otherwise). Not for the arithmetic but for the objects: each
// createHmac leaves a native Hmac handle and a fresh externally backed digest Buffer, which
// scavenges must process, and a request makes ten; crypto.hash with a latin1 result makes a V8
// string only. The pads live in two module scratch buffers (synchronous, so never shared between
// calls) that stay filled with 0x36 / 0x5c: a call writes its key's bytes and restores only those
// the previous, longer key left. Same bytes: hpke.test.ts checks it against createHmac, RFC 4231
// and hkdfSync.
//
// HKDF's intermediate values (PRKs, secrets) stay the latin1 strings crypto.hash returns (one code
// unit a byte) and are written into the pads by charCode: a Buffer is made only where node needs
// one (the AEAD key and nonce) or a caller asks for one. Measured here: ~0.6 µs an HMAC, against
// ~0.7 with a Buffer per digest and ~1.6 through createHmac.
/** Octets as bytes or as a latin1 string of the same length. */
export type Octets = Uint8Array | string;

// typed here: the optional member (absent before 20.12), and the latin1 output the types leave out.
const oneShotHash = (nodeCrypto as unknown as { hash?: OneShotHash }).hash;
type OneShotHash = (algorithm: string, data: Uint8Array, outputEncoding: 'latin1') => string;
const SHA256_BLOCK = 64;
const HMAC_SCRATCH = 1024;
const HMAC_INNER = Buffer.from(new ArrayBuffer(SHA256_BLOCK + HMAC_SCRATCH)).fill(0x36);
const HMAC_OUTER = Buffer.from(new ArrayBuffer(SHA256_BLOCK + HASH_LENGTH)).fill(0x5c);
// Word views of the same bytes (offset 0 of their own ArrayBuffers, so aligned): a string key or
// digest goes in four bytes a store. Little-endian hosts only (every node platform in practice);
// elsewhere the byte loops run.
const LITTLE_ENDIAN = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;
const HMAC_INNER_WORDS = new Uint32Array(HMAC_INNER.buffer, 0, SHA256_BLOCK / 4);
const HMAC_OUTER_WORDS = new Uint32Array(HMAC_OUTER.buffer, 0, (SHA256_BLOCK + HASH_LENGTH) / 4);
const word = (text: string, at: number): number =>
  (text.charCodeAt(at) | (text.charCodeAt(at + 1) << 8) | (text.charCodeAt(at + 2) << 16) | (text.charCodeAt(at + 3) << 24)) >>> 0;
/** HMAC_INNER.subarray(0, n) by n: the hashed view of each message length, made once. */
const HMAC_INNER_VIEWS: Buffer[] = [];
/** how many leading pad bytes hold the previous key's bytes */
let padKeyLength = 0;
/** the previous key when it was a string, whose bytes the pads still hold */
let padKey: string | undefined;

const bytesOf = (octets: Octets): Uint8Array => (typeof octets === 'string' ? Buffer.from(octets, 'latin1') : octets);
const latin1Of = (octets: Octets): string => (typeof octets === 'string' ? octets : asBuffer(octets).toString('latin1'));

/** SHA-256 as latin1 through crypto.hash, as the HMAC here calls it; undefined before node 20.12. */
export const sha256OneShotLatin1: ((data: Uint8Array) => string) | undefined = oneShotHash === undefined ? undefined : (data) => oneShotHash('sha256', data, 'latin1');

/** Writes `part` into HMAC_INNER at `offset`; answers the offset after it. */
function putInner(part: Octets, offset: number): number {
  const length = part.length;
  if (typeof part === 'string') for (let index = 0; index < length; index++) HMAC_INNER[offset + index] = part.charCodeAt(index);
  else HMAC_INNER.set(part, offset);
  return offset + length;
}

/** HMAC-SHA256(key, a ‖ b ‖ c ‖ d) as latin1: fixed arity, so the per-request calls build no argument arrays. */
function hmacLatin1(key: Octets, a: Octets, b?: Octets, c?: Octets, d?: Octets): string {
  const length = SHA256_BLOCK + a.length + (b?.length ?? 0) + (c?.length ?? 0) + (d?.length ?? 0);
  if (oneShotHash === undefined || key.length > SHA256_BLOCK || length > HMAC_INNER.length) {
    const hmac = createHmac('sha256', bytesOf(key)).update(bytesOf(a));
    for (const part of [b, c, d]) if (part !== undefined) hmac.update(bytesOf(part));
    return hmac.digest().toString('latin1');
  }
  const keyLength = key.length;
  if (key === padKey) {
    // the pads already hold this key: HKDF-Expand calls repeat a PRK (secret thrice, the response prk twice)
  } else if (typeof key === 'string' && LITTLE_ENDIAN && keyLength % 4 === 0) {
    for (let index = 0; index < keyLength; index += 4) {
      const bytes = word(key, index);
      HMAC_INNER_WORDS[index >> 2] = (bytes ^ 0x36363636) >>> 0;
      HMAC_OUTER_WORDS[index >> 2] = (bytes ^ 0x5c5c5c5c) >>> 0;
    }
  } else if (typeof key === 'string') {
    for (let index = 0; index < keyLength; index++) {
      const byte = key.charCodeAt(index);
      HMAC_INNER[index] = byte ^ 0x36;
      HMAC_OUTER[index] = byte ^ 0x5c;
    }
  } else {
    for (let index = 0; index < keyLength; index++) {
      const byte = key[index]!;
      HMAC_INNER[index] = byte ^ 0x36;
      HMAC_OUTER[index] = byte ^ 0x5c;
    }
  }
  for (let index = keyLength; index < padKeyLength; index++) {
    HMAC_INNER[index] = 0x36;
    HMAC_OUTER[index] = 0x5c;
  }
  padKeyLength = keyLength;
  // Only a string is remembered: it cannot change, where a caller's Buffer could between calls.
  padKey = typeof key === 'string' ? key : undefined;
  let offset = putInner(a, SHA256_BLOCK);
  if (b !== undefined) offset = putInner(b, offset);
  if (c !== undefined) offset = putInner(c, offset);
  if (d !== undefined) putInner(d, offset);
  const innerDigest = oneShotHash('sha256', (HMAC_INNER_VIEWS[length] ??= HMAC_INNER.subarray(0, length)), 'latin1');
  if (LITTLE_ENDIAN) for (let index = 0; index < HASH_LENGTH; index += 4) HMAC_OUTER_WORDS[(SHA256_BLOCK + index) >> 2] = word(innerDigest, index);
  else for (let index = 0; index < HASH_LENGTH; index++) HMAC_OUTER[SHA256_BLOCK + index] = innerDigest.charCodeAt(index);
  return oneShotHash('sha256', HMAC_OUTER, 'latin1');
}

/** HMAC-SHA256(key, concatenation of the message parts). */
export function hmacSha256(key: Uint8Array, ...message: Uint8Array[]): Buffer {
  const digest = message.length <= 4 ? hmacLatin1(key, message[0] ?? EMPTY, message[1], message[2], message[3]) : hmacLatin1(key, Buffer.concat(message));
  return Buffer.from(digest, 'latin1');
}

/** HKDF-Extract. An empty salt equals HashLen zero bytes: HMAC zero-pads its key either way. */
export const hkdfExtractLatin1 = (salt: Octets, ikm: Octets): string => hmacLatin1(salt, ikm);
export const hkdfExtract = (salt: Uint8Array, ikm: Uint8Array): Buffer => Buffer.from(hkdfExtractLatin1(salt, ikm), 'latin1');

/** HKDF-Expand (RFC 5869 §2.3), as latin1. */
export function hkdfExpandLatin1(prk: Octets, info: Octets, length: number): string {
  if (length <= HASH_LENGTH) {
    const block = hmacLatin1(prk, info, COUNTER_ONE);
    return length === HASH_LENGTH ? block : block.slice(0, length);
  }
  let okm = '';
  let previous = '';
  for (let counter = 1; okm.length < length; counter++) {
    previous = hmacLatin1(prk, previous, info, Uint8Array.of(counter));
    okm += previous;
  }
  return okm.slice(0, length);
}
export const hkdfExpand = (prk: Uint8Array, info: Uint8Array, length: number): Buffer => Buffer.from(hkdfExpandLatin1(prk, info, length), 'latin1');

// The labelled prefixes depend only on (suite, label[, L]): built once, so each labelled call
// hashes one prefix and its input instead of assembling four pieces per request. Looked up by
// suite, label and L in nested maps: no key string is built per call.
interface LabelPrefixes {
  plain?: Buffer;
  readonly byLength: Map<number, Buffer>;
}
const prefixCache = new WeakMap<Buffer, Map<string, LabelPrefixes>>();
function labeledPrefix(suiteId: Buffer, label: string, length?: number): Buffer {
  let bySuite = prefixCache.get(suiteId);
  if (bySuite === undefined) {
    bySuite = new Map();
    prefixCache.set(suiteId, bySuite);
  }
  let byLabel = bySuite.get(label);
  if (byLabel === undefined) {
    byLabel = { byLength: new Map() };
    bySuite.set(label, byLabel);
  }
  if (length === undefined) return (byLabel.plain ??= Buffer.concat([HPKE_V1, suiteId, utf8(label)]));
  let prefix = byLabel.byLength.get(length);
  if (prefix === undefined) {
    prefix = Buffer.concat([u16(length), HPKE_V1, suiteId, utf8(label)]);
    byLabel.byLength.set(length, prefix);
  }
  return prefix;
}

/** LabeledExtract(salt, label, ikm ‖ ikmTail) = Extract(salt, "HPKE-v1" ‖ suite_id ‖ label ‖ ikm ‖ ikmTail), as latin1 */
function labeledExtract(suiteId: Buffer, salt: Octets, label: string, ikm: Octets, ikmTail?: Octets): string {
  return hmacLatin1(salt, labeledPrefix(suiteId, label), ikm, ikmTail);
}

/**
 * LabeledExpand(prk, label, info ‖ infoTail, L) = Expand(prk, I2OSP(L, 2) ‖ "HPKE-v1" ‖ suite_id ‖ label ‖ info ‖ infoTail, L),
 * as latin1. infoTail lets a caller pass info in two pieces instead of concatenating them first.
 */
function labeledExpand(suiteId: Buffer, prk: Octets, label: string, info: Octets, length: number, infoTail?: Octets): string {
  return labeledExpandWith(labeledPrefix(suiteId, label, length), prk, info, length, infoTail);
}

/** labeledExpand with its prefix (I2OSP(L, 2) ‖ "HPKE-v1" ‖ suite_id ‖ label) already looked up. */
function labeledExpandWith(prefix: Buffer, prk: Octets, info: Octets, length: number, infoTail?: Octets): string {
  if (length <= HASH_LENGTH) {
    const block = infoTail === undefined ? hmacLatin1(prk, prefix, info, COUNTER_ONE) : hmacLatin1(prk, prefix, info, infoTail, COUNTER_ONE);
    return length === HASH_LENGTH ? block : block.slice(0, length);
  }
  const whole = Buffer.concat([prefix, bytesOf(info), ...(infoTail === undefined ? [] : [bytesOf(infoTail)])]);
  return hkdfExpandLatin1(prk, whole, length);
}

// ---------------------------------------------------------------------------------------------
// X25519 keys as node KeyObjects. Raw private keys are wrapped in their fixed PKCS#8 DER prefix
// (RFC 8410); they load at startup only, so the slower DER import does not matter there.

const PKCS8_X25519_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI_X25519_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');

/** Throws on a wrong length; callers on untrusted input check the length first. */
export function x25519PrivateKeyFromRaw(raw: Uint8Array): KeyObject {
  if (raw.length !== X25519_KEY_LENGTH) throw new RangeError(`X25519 private key must be 32 bytes, got ${raw.length}`);
  return createPrivateKey({ key: Buffer.concat([PKCS8_X25519_PREFIX, raw]), format: 'der', type: 'pkcs8' });
}

/** Via JWK, not SPKI DER: measured here, node imports an X25519 JWK ~20× faster (6 µs vs 120 µs). */
export function x25519PublicKeyFromRaw(raw: Uint8Array): KeyObject {
  if (raw.length !== X25519_KEY_LENGTH) throw new RangeError(`X25519 public key must be 32 bytes, got ${raw.length}`);
  const x = (Buffer.isBuffer(raw) ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength)).toString('base64url');
  return createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x }, format: 'jwk' });
}

/** SerializePublicKey: the raw 32 bytes, from a public or a private KeyObject. */
export function x25519RawPublicKey(key: KeyObject): Buffer {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key;
  return publicKey.export({ format: 'der', type: 'spki' }).subarray(SPKI_X25519_PREFIX.length);
}

/** SerializePrivateKey: the raw 32 bytes. */
export function x25519RawPrivateKey(key: KeyObject): Buffer {
  return key.export({ format: 'der', type: 'pkcs8' }).subarray(PKCS8_X25519_PREFIX.length);
}

export function generateX25519KeyPair(): { privateKey: KeyObject; publicKey: Buffer } {
  const { privateKey } = generateKeyPairSync('x25519');
  return { privateKey, publicKey: x25519RawPublicKey(privateKey) };
}

/** RFC 9180 §7.1.3 DeriveKeyPair for X25519: deterministic keys for test vectors and examples. */
export function deriveX25519KeyPair(ikm: Uint8Array): { privateKey: KeyObject; publicKey: Buffer } {
  const dkpPrk = labeledExtract(KEM_SUITE_ID, EMPTY, 'dkp_prk', ikm);
  const privateKey = x25519PrivateKeyFromRaw(Buffer.from(labeledExpand(KEM_SUITE_ID, dkpPrk, 'sk', EMPTY, X25519_KEY_LENGTH), 'latin1'));
  return { privateKey, publicKey: x25519RawPublicKey(privateKey) };
}

/** Signals a failed DH (small-order peer point); carried up as a stable code, never as a throw. */
export class HpkeError extends Error {
  constructor(readonly reason: 'dh_failed' | 'open_failed', message: string) {
    super(message);
  }
}

function dh(privateKey: KeyObject, publicKey: KeyObject): Buffer {
  let shared: Buffer;
  try {
    shared = diffieHellman({ privateKey, publicKey });
  } catch (error) {
    throw new HpkeError('dh_failed', `X25519 failed: ${(error as Error).message}`);
  }
  // RFC 9180 §7.1.4: an all-zero X25519 output means a small-order point and MUST be rejected.
  // OR over every byte, no early exit: the time does not depend on where the first non-zero is.
  let any = 0;
  for (let index = 0; index < shared.length; index++) any |= shared[index]!;
  if (any === 0) throw new HpkeError('dh_failed', 'X25519 output is all zero');
  return shared;
}

const EAE_PRK_PREFIX = labeledPrefix(KEM_SUITE_ID, 'eae_prk');
const SHARED_SECRET_PREFIX = labeledPrefix(KEM_SUITE_ID, 'shared_secret', X25519_KEY_LENGTH);

/** ExtractAndExpand(dh, kem_context) as latin1, each taken in up to two pieces that are never concatenated. */
function extractAndExpand(dhValue: Buffer, kemContext: Uint8Array, dhTail?: Buffer, kemContextTail?: Buffer): string {
  const eaePrk = hmacLatin1(EMPTY, EAE_PRK_PREFIX, dhValue, dhTail);
  return labeledExpandWith(SHARED_SECRET_PREFIX, eaePrk, kemContext, X25519_KEY_LENGTH, kemContextTail);
}

// ---------------------------------------------------------------------------------------------
// Key schedule and context (RFC 9180 §5.1–5.3).

/**
 * The key schedule's outputs. secret and exporter_secret are kept as latin1 and made Buffers only
 * when read (the known-answer tests and the worked example read them; a request does not).
 */
export class KeySchedule {
  constructor(
    readonly keyScheduleContext: Buffer,
    private readonly secretLatin1: string,
    readonly key: Buffer,
    readonly baseNonce: Buffer,
    /** exporter_secret, latin1 */
    readonly exporterSecretLatin1: string,
  ) {}

  get secret(): Buffer {
    return Buffer.from(this.secretLatin1, 'latin1');
  }

  get exporterSecret(): Buffer {
    return Buffer.from(this.exporterSecretLatin1, 'latin1');
  }
}

// key_schedule_context = mode ‖ psk_id_hash ‖ info_hash depends on the suite, the mode and info
// only, and a device calling the same endpoint sends the same info each time (hdr and the request
// line; enc is not part of it): one HMAC and an allocation a request saved by remembering recent
// ones. Bounded: at most KEY_SCHEDULE_CONTEXT_CACHE_SIZE entries per suite and mode, oldest evicted
// first, and long infos are not kept. Keyed by the info bytes as latin1, which maps each byte to
// one code unit, so equal keys mean equal inputs. info is public (it travels in clear or is the
// request line), so a hit reveals nothing. The cached buffers are never handed out to be written.
const KEY_SCHEDULE_CONTEXT_CACHE_SIZE = 1024;
const KEY_SCHEDULE_CONTEXT_CACHE_MAX_INFO = 512;
// by suite_id (weak: a hand-built suite does not pin memory), then by mode, then by info
const keyScheduleContextCache = new WeakMap<Buffer, Map<HpkeMode, Map<string, Buffer>>>();

function buildKeyScheduleContext(suite: HpkeSuite, mode: HpkeMode, info: Uint8Array): Buffer {
  // Modes base and auth carry no PSK: psk = psk_id = "" (§5.1), so psk_id_hash is the suite constant.
  const infoHash = labeledExtract(suite.suiteId, EMPTY, 'info_hash', info);
  const context = Buffer.allocUnsafe(1 + suite.emptyPskIdHash.length + infoHash.length);
  context[0] = mode;
  suite.emptyPskIdHash.copy(context, 1);
  context.write(infoHash, 1 + suite.emptyPskIdHash.length, 'latin1');
  return context;
}

function keyScheduleContextOf(suite: HpkeSuite, mode: HpkeMode, info: Uint8Array): Buffer {
  if (info.length > KEY_SCHEDULE_CONTEXT_CACHE_MAX_INFO) return buildKeyScheduleContext(suite, mode, info);
  let bySuite = keyScheduleContextCache.get(suite.suiteId);
  if (bySuite === undefined) {
    bySuite = new Map();
    keyScheduleContextCache.set(suite.suiteId, bySuite);
  }
  let byInfo = bySuite.get(mode);
  if (byInfo === undefined) {
    byInfo = new Map();
    bySuite.set(mode, byInfo);
  }
  const key = latin1Of(info);
  let context = byInfo.get(key);
  if (context === undefined) {
    context = buildKeyScheduleContext(suite, mode, info);
    if (byInfo.size >= KEY_SCHEDULE_CONTEXT_CACHE_SIZE) byInfo.delete(byInfo.keys().next().value!);
    byInfo.set(key, context);
  }
  return context;
}

export function keySchedule(suite: HpkeSuite, mode: HpkeMode, sharedSecret: Octets, info: Uint8Array): KeySchedule {
  const keyScheduleContext = keyScheduleContextOf(suite, mode, info);
  const prefixes = suite.schedulePrefixes;
  const secret = hmacLatin1(sharedSecret, prefixes.secret, EMPTY); // LabeledExtract(shared_secret, "secret", psk = "")
  const { Nk, Nn } = suite.aead;
  return new KeySchedule(
    keyScheduleContext,
    secret,
    Buffer.from(labeledExpandWith(prefixes.key, secret, keyScheduleContext, Nk), 'latin1'),
    Buffer.from(labeledExpandWith(prefixes.baseNonce, secret, keyScheduleContext, Nn), 'latin1'),
    labeledExpandWith(prefixes.exp, secret, keyScheduleContext, HASH_LENGTH),
  );
}

/** An HPKE encryption context. One request uses sequence number 0 only; the KATs walk several. */
export class HpkeContext {
  private sequence = 0;

  constructor(
    readonly suite: HpkeSuite,
    readonly schedule: KeySchedule,
  ) {}

  /** base_nonce XOR I2OSP(seq, Nn) */
  nonceFor(sequence: number): Buffer {
    if (sequence === 0) return this.schedule.baseNonce; // the only one a gatehouse request uses
    const nonce = Buffer.from(this.schedule.baseNonce);
    let value = sequence;
    for (let index = nonce.length - 1; value > 0 && index >= 0; index--) {
      nonce[index]! ^= value & 0xff;
      value = Math.floor(value / 256);
    }
    return nonce;
  }

  seal(aad: Uint8Array, plaintext: Uint8Array): Buffer {
    return this.sealAt(this.sequence++, aad, plaintext);
  }

  /** Answers undefined on authentication failure. */
  open(aad: Uint8Array, ciphertext: Uint8Array): Buffer | undefined {
    const plaintext = this.openAt(this.sequence, aad, ciphertext);
    if (plaintext !== undefined) this.sequence++;
    return plaintext;
  }

  sealAt(sequence: number, aad: Uint8Array, plaintext: Uint8Array): Buffer {
    return aeadSeal(this.suite.aead, this.schedule.key, this.nonceFor(sequence), aad, plaintext);
  }

  openAt(sequence: number, aad: Uint8Array, ciphertext: Uint8Array): Buffer | undefined {
    return aeadOpen(this.suite.aead, this.schedule.key, this.nonceFor(sequence), aad, ciphertext);
  }

  /** Secret export (§5.3): LabeledExpand(exporter_secret, "sec", exporter_context, L). */
  export(exporterContext: Uint8Array, length: number): Buffer {
    return Buffer.from(this.exportLatin1(exporterContext, length), 'latin1');
  }

  /** export(), as latin1: the response key derivation keeps it a string. */
  exportLatin1(exporterContext: Uint8Array, length: number): string {
    return labeledExpand(this.suite.suiteId, this.schedule.exporterSecretLatin1, 'sec', exporterContext, length);
  }
}

/** Buffer.concat below half of Buffer.poolSize takes node's pool, not a fresh ArrayBuffer. */
const SEAL_JOIN_LIMIT = 4096;

export function aeadSeal(aead: AeadAlgorithm, key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Buffer {
  return aeadSealParts(aead, key, nonce, aad, [plaintext]);
}

/**
 * Seal(plaintext parts concatenated), returned after `outputPrefix`: lets the envelope frame a
 * body and prepend the response nonce with one copy of the body instead of three.
 */
export function aeadSealParts(
  aead: AeadAlgorithm,
  key: Uint8Array,
  nonce: Uint8Array,
  aad: Uint8Array,
  plaintextParts: readonly Uint8Array[],
  outputPrefix?: Uint8Array,
): Buffer {
  // GCM's tag is 16 bytes unless told otherwise, so AES-GCM passes no options object (node
  // validates one on every call); ChaCha20-Poly1305 requires authTagLength.
  const cipher =
    aead.nodeCipher === 'chacha20-poly1305'
      ? createCipheriv(aead.nodeCipher, key, nonce, { authTagLength: aead.Nt })
      : createCipheriv(aead.nodeCipher, key, nonce);
  let plaintextLength = 0;
  for (const part of plaintextParts) plaintextLength += part.length;
  if (aad.length > 0) cipher.setAAD(aad, { plaintextLength });
  const out: Uint8Array[] = outputPrefix === undefined ? [] : [outputPrefix];
  // Small plaintexts are joined first: each update() is a native call returning a fresh externally
  // backed Buffer, which costs more than copying a few KiB into node's pooled allocation.
  if (plaintextParts.length > 1 && plaintextLength <= SEAL_JOIN_LIMIT) out.push(cipher.update(Buffer.concat(plaintextParts, plaintextLength)));
  else for (const part of plaintextParts) out.push(cipher.update(part));
  out.push(cipher.final(), cipher.getAuthTag());
  return Buffer.concat(out);
}

/** Answers undefined when the tag does not verify or the ciphertext is shorter than a tag. */
export function aeadOpen(aead: AeadAlgorithm, key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, ciphertext: Uint8Array): Buffer | undefined {
  if (ciphertext.length < aead.Nt) return undefined;
  const bodyLength = ciphertext.length - aead.Nt;
  // No options for GCM, as in aeadSealParts: the tag handed to setAuthTag is always Nt bytes here.
  const decipher =
    aead.nodeCipher === 'chacha20-poly1305'
      ? createDecipheriv(aead.nodeCipher, key, nonce, { authTagLength: aead.Nt })
      : createDecipheriv(aead.nodeCipher, key, nonce);
  decipher.setAuthTag(ciphertext.subarray(bodyLength));
  if (aad.length > 0) decipher.setAAD(aad, { plaintextLength: bodyLength });
  const body = decipher.update(ciphertext.subarray(0, bodyLength));
  try {
    const final = decipher.final();
    return final.length === 0 ? body : Buffer.concat([body, final]);
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Setup (RFC 9180 §5.1.1 base, §5.1.3 auth).

export interface SenderSetup {
  readonly enc: Buffer;
  readonly sharedSecret: Buffer;
  readonly context: HpkeContext;
}

export interface SetupSenderInput {
  readonly suite: HpkeSuite;
  readonly recipientPublicKey: Uint8Array;
  readonly info: Uint8Array;
  /** present: mode auth with this static sender key; absent: mode base. */
  readonly senderPrivateKey?: KeyObject;
  /** a fixed ephemeral key, for known-answer tests and the worked example only. */
  readonly ephemeralPrivateKey?: KeyObject;
}

/** Throws HpkeError('dh_failed') for a small-order recipient key. */
export function setupSender(input: SetupSenderInput): SenderSetup {
  const ephemeral = input.ephemeralPrivateKey ?? generateKeyPairSync('x25519').privateKey;
  const enc = x25519RawPublicKey(ephemeral);
  const recipient = x25519PublicKeyFromRaw(input.recipientPublicKey);
  const dhEphemeral = dh(ephemeral, recipient);
  let sharedSecret: string;
  let mode: HpkeMode;
  if (input.senderPrivateKey === undefined) {
    mode = MODE_BASE;
    sharedSecret = extractAndExpand(dhEphemeral, Buffer.concat([enc, input.recipientPublicKey]));
  } else {
    mode = MODE_AUTH;
    const dhStatic = dh(input.senderPrivateKey, recipient);
    const senderPublic = x25519RawPublicKey(input.senderPrivateKey);
    sharedSecret = extractAndExpand(Buffer.concat([dhEphemeral, dhStatic]), Buffer.concat([enc, input.recipientPublicKey, senderPublic]));
  }
  return { enc, sharedSecret: Buffer.from(sharedSecret, 'latin1'), context: new HpkeContext(input.suite, keySchedule(input.suite, mode, sharedSecret, input.info)) };
}

/**
 * DH(skR, pkS) of mode_auth depends only on the two static keys, so the recipient computes it once
 * per (gateway key, device key) pair and keeps it, as WireGuard precomputes its static-static DH
 * per peer. Both levels are WeakMaps keyed by the KeyObjects themselves: a secret lives exactly as
 * long as the gateway key (dropped from the keyring on rotation) and the device key object (held by
 * the key store's cache; gone when the device is revoked or evicted). It gives nothing that skR,
 * held in the same process, does not already give. A small-order pkS throws here and is not kept.
 */
interface StaticPair {
  /** DH(skR, pkS) */
  readonly dh: Buffer;
  /** pkRm ‖ pkSm: the static tail of kem_context, also fixed by the two keys */
  readonly publicKeys: Buffer;
}
const STATIC_STATIC_DH = new WeakMap<KeyObject, WeakMap<KeyObject, StaticPair>>();

function staticPair(recipientPrivateKey: KeyObject, recipientPublicKey: Uint8Array, sender: { readonly publicKey: Uint8Array; readonly keyObject: KeyObject }): StaticPair {
  let byDevice = STATIC_STATIC_DH.get(recipientPrivateKey);
  if (byDevice === undefined) {
    byDevice = new WeakMap();
    STATIC_STATIC_DH.set(recipientPrivateKey, byDevice);
  }
  let pair = byDevice.get(sender.keyObject);
  if (pair === undefined) {
    pair = { dh: dh(recipientPrivateKey, sender.keyObject), publicKeys: Buffer.concat([recipientPublicKey, sender.publicKey]) };
    byDevice.set(sender.keyObject, pair);
  }
  return pair;
}

export interface SetupRecipientInput {
  readonly suite: HpkeSuite;
  readonly recipientPrivateKey: KeyObject;
  /** pkRm, kept beside the private key so it is not re-derived per request. */
  readonly recipientPublicKey: Uint8Array;
  /** exactly 32 bytes; the caller has checked the length. */
  readonly enc: Uint8Array;
  readonly info: Uint8Array;
  /** present: mode auth, authenticating the holder of this static key (raw pkSm and its KeyObject). */
  readonly sender?: { readonly publicKey: Uint8Array; readonly keyObject: KeyObject };
}

/** The recipient's context; shared_secret is made a Buffer only when read (tests and examples do). */
export class RecipientSetup {
  constructor(
    private readonly sharedSecretLatin1: string,
    readonly context: HpkeContext,
  ) {}

  get sharedSecret(): Buffer {
    return Buffer.from(this.sharedSecretLatin1, 'latin1');
  }
}

/** Throws HpkeError('dh_failed') for a small-order enc or sender key. */
export function setupRecipient(input: SetupRecipientInput): RecipientSetup {
  const ephemeral = x25519PublicKeyFromRaw(input.enc);
  const dhEphemeral = dh(input.recipientPrivateKey, ephemeral);
  let sharedSecret: string;
  let mode: HpkeMode;
  if (input.sender === undefined) {
    mode = MODE_BASE;
    sharedSecret = extractAndExpand(dhEphemeral, Buffer.concat([input.enc, input.recipientPublicKey]));
  } else {
    mode = MODE_AUTH;
    // dh = DH(skR, pkE) ‖ DH(skR, pkS), kem_context = enc ‖ pkRm ‖ pkSm; the static halves are kept.
    const pair = staticPair(input.recipientPrivateKey, input.recipientPublicKey, input.sender);
    sharedSecret = extractAndExpand(dhEphemeral, input.enc, pair.dh, pair.publicKeys);
  }
  return new RecipientSetup(sharedSecret, new HpkeContext(input.suite, keySchedule(input.suite, mode, sharedSecret, input.info)));
}
