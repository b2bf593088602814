// The gatehouse e2ee envelope: RFC 9458 §4.3–4.4 encapsulation of HTTP bodies, HPKE mode auth so
// that opening the request authenticates the device, and the request line bound into `info`.
// docs/protocol/e2ee.md is the normative description; this file follows it section by section.
// Nothing here does I/O: bytes and headers in, a verdict with plaintext (or a stable code) out.
import { randomFillSync, type KeyObject } from 'node:crypto';
import { asBuffer, u16, utf8 } from './bytes.js';
import { e2eeClientFailure, e2eeFailure, type E2eeClientFailure, type E2eeFailure } from './codes.js';
import {
  aeadOpen,
  aeadSealParts,
  hkdfExpandLatin1,
  hkdfExtractLatin1,
  HpkeError,
  KDF_HKDF_SHA256,
  KEM_DHKEM_X25519_HKDF_SHA256,
  setupRecipient,
  setupSender,
  X25519_KEY_LENGTH,
  x25519PublicKeyFromRaw,
  type HpkeContext,
  type HpkeSuite,
} from './hpke.js';
import type { E2eeKeyring, GatewayKey, KeyConfig } from './keys.js';
import {
  bindingProblem,
  boundedField,
  DEFAULT_SIZE_LIMITS,
  E2EE_FIELD_LIMITS,
  E2EE_REQUEST_MEDIA_TYPE,
  E2EE_RESPONSE_MEDIA_TYPE,
  isMediaType,
  isVisibleAscii,
  type E2eeSizeLimits,
  type RequestBinding,
} from './wire.js';

export { DEFAULT_SIZE_LIMITS, E2EE_FIELD_LIMITS, E2EE_REQUEST_MEDIA_TYPE, E2EE_RESPONSE_MEDIA_TYPE, isMediaType, type E2eeSizeLimits, type RequestBinding };

// Our own labels (the media types) where RFC 9458 uses "message/bhttp request"/"… response":
// the content is not Binary HTTP, and a distinct label keeps the two protocols' keys apart.
const REQUEST_LABEL = utf8(E2EE_REQUEST_MEDIA_TYPE);
const RESPONSE_LABEL = utf8(E2EE_RESPONSE_MEDIA_TYPE);
const EMPTY = Buffer.alloc(0);
const KEY_LABEL = utf8('key');
const NONCE_LABEL = utf8('nonce');

/** I2OSP(len,2) ‖ method ‖ I2OSP(len,2) ‖ path ‖ I2OSP(len,2) ‖ audience, or why it cannot be bound. */
export function encodeBinding(binding: RequestBinding): Buffer | string {
  const problem = bindingProblem(binding);
  if (problem !== undefined) return problem;
  const out = Buffer.allocUnsafe(bindingLength(binding));
  writeBinding(out, 0, binding);
  return out;
}

// After bindingProblem the three fields are visible ASCII, one byte a character, so their UTF-8
// is their latin1: written straight into the destination, no intermediate buffers.
const bindingLength = (binding: RequestBinding): number => 6 + binding.method.length + binding.path.length + binding.audience.length;

function writeBinding(out: Buffer, offset: number, binding: RequestBinding): void {
  writeAscii(out, writeAscii(out, writeAscii(out, offset, binding.method), binding.path), binding.audience);
}

/** I2OSP(len, 2) ‖ text, by char code: a loop beats a native write call for fields this short. */
function writeAscii(out: Buffer, offset: number, text: string): number {
  const length = text.length;
  out[offset] = length >>> 8;
  out[offset + 1] = length & 0xff;
  for (let index = 0; index < length; index++) out[offset + 2 + index] = text.charCodeAt(index);
  return offset + 2 + length;
}

/** gatehouseRequestInfo(header, encodeBinding(binding)) in one allocation, or why it cannot be bound. */
function gatehouseRequestInfoFor(header: Uint8Array, binding: RequestBinding): Buffer | string {
  const problem = bindingProblem(binding);
  if (problem !== undefined) return problem;
  const out = Buffer.allocUnsafe(REQUEST_LABEL.length + 1 + header.length + bindingLength(binding));
  out.set(REQUEST_LABEL, 0);
  out[REQUEST_LABEL.length] = 0;
  out.set(header, REQUEST_LABEL.length + 1);
  writeBinding(out, REQUEST_LABEL.length + 1 + header.length, binding);
  return out;
}

/** RFC 9458 §4.3 `info` = label ‖ 0x00 ‖ hdr, extended here with the encoded request binding. */
export function requestInfo(label: Uint8Array, header: Uint8Array, binding: Uint8Array = Buffer.alloc(0)): Buffer {
  return Buffer.concat([label, Uint8Array.of(0), header, binding]);
}

export const gatehouseRequestInfo = (header: Uint8Array, binding: Uint8Array): Buffer => requestInfo(REQUEST_LABEL, header, binding);

/** RFC 9458 §4.4: response_nonce is max(Nn, Nk) bytes. */
export const responseNonceLength = (suite: HpkeSuite): number => Math.max(suite.aead.Nn, suite.aead.Nk);

export interface ResponseKeyMaterial {
  readonly secret: Buffer;
  readonly salt: Buffer;
  readonly prk: Buffer;
  readonly key: Buffer;
  readonly nonce: Buffer;
}

/**
 * RFC 9458 §4.4, with the export label as a parameter (ours, or "message/bhttp response" for the
 * RFC's vectors). Plain HKDF here, not HPKE's labelled forms.
 */
export function responseKeyMaterial(context: HpkeContext, exportLabel: Uint8Array, enc: Uint8Array, responseNonce: Uint8Array): ResponseKeyMaterial {
  const salt = Buffer.concat([enc, responseNonce]);
  const keys = responseKeys(context, exportLabel, salt);
  return { secret: Buffer.from(keys.secret, 'latin1'), salt, prk: Buffer.from(keys.prk, 'latin1'), key: keys.key, nonce: keys.nonce };
}

/** The steps of responseKeyMaterial on salt = enc ‖ response_nonce; secret and prk stay latin1. */
function responseKeys(context: HpkeContext, exportLabel: Uint8Array, salt: Uint8Array): { secret: string; prk: string; key: Buffer; nonce: Buffer } {
  const { aead } = context.suite;
  const secret = context.exportLatin1(exportLabel, Math.max(aead.Nn, aead.Nk));
  const prk = hkdfExtractLatin1(salt, secret);
  return {
    secret,
    prk,
    key: Buffer.from(hkdfExpandLatin1(prk, KEY_LABEL, aead.Nk), 'latin1'),
    nonce: Buffer.from(hkdfExpandLatin1(prk, NONCE_LABEL, aead.Nn), 'latin1'),
  };
}

export const gatehouseResponseKeyMaterial = (context: HpkeContext, enc: Uint8Array, responseNonce: Uint8Array): ResponseKeyMaterial =>
  responseKeyMaterial(context, RESPONSE_LABEL, enc, responseNonce);

// Response nonces come from a pooled CSPRNG buffer: one randomBytes(16) call costs ~2 µs, a
// sizeable part of the protocol overhead per request; refilling 4 KiB at a time amortises it.
// Each nonce's bytes are copied out of the pool before the pool can be refilled.
const RANDOM_POOL = Buffer.allocUnsafe(4096);
let randomPoolOffset = RANDOM_POOL.length;
function copyRandom(target: Buffer, offset: number, length: number): void {
  if (randomPoolOffset + length > RANDOM_POOL.length) {
    randomFillSync(RANDOM_POOL);
    randomPoolOffset = 0;
  }
  RANDOM_POOL.copy(target, offset, randomPoolOffset, randomPoolOffset + length);
  randomPoolOffset += length;
}

/** Inner framing of both plaintexts: content_type_length(1) ‖ content_type ‖ content, as parts to seal. */
function frameParts(contentType: string | null, content: Uint8Array): Uint8Array[] {
  const type = contentType ?? '';
  // Both callers have checked the content type is visible ASCII (≤ 255), so latin1 is its UTF-8.
  const frame = Buffer.allocUnsafe(1 + type.length);
  frame[0] = type.length;
  for (let index = 0; index < type.length; index++) frame[1 + index] = type.charCodeAt(index);
  return [frame, content];
}

function unframe(plaintext: Buffer): { contentType: string | null; content: Buffer } | string {
  const length = plaintext[0];
  if (length === undefined) return 'empty plaintext';
  if (plaintext.length < 1 + length) return 'content-type length runs past the end';
  const contentType = plaintext.toString('latin1', 1, 1 + length);
  if (!isVisibleAscii(contentType, true)) return 'content type has bytes outside visible ASCII';
  return { contentType: length === 0 ? null : contentType, content: plaintext.subarray(1 + length) };
}

// ---------------------------------------------------------------------------------------------
// Gateway side.

const FIXED_HEADER_LENGTH = 8;

export interface ParsedEnvelope {
  readonly keyId: number;
  readonly kemId: number;
  readonly kdfId: number;
  readonly aeadId: number;
  readonly deviceKeyId: string;
  /** hdr: every byte before enc, bound into info */
  readonly header: Buffer;
  readonly enc: Buffer;
  readonly ciphertext: Buffer;
}

/** Structure only, no keys: key_id ‖ kem_id ‖ kdf_id ‖ aead_id ‖ len ‖ device_key_id ‖ enc ‖ ct. */
export function parseEnvelope(body: Uint8Array): { ok: true; envelope: ParsedEnvelope } | E2eeFailure {
  const bytes = asBuffer(body);
  // fixed header: key_id(1) kem_id(2) kdf_id(2) aead_id(2) device_key_id length(1)
  if (bytes.length < FIXED_HEADER_LENGTH) {
    return e2eeFailure('e2ee_envelope_malformed', `truncated: ${bytes.length} bytes is shorter than the fixed header`);
  }
  const deviceKeyIdLength = bytes[FIXED_HEADER_LENGTH - 1]!;
  if (deviceKeyIdLength === 0 || deviceKeyIdLength > E2EE_FIELD_LIMITS.deviceKeyId) {
    return e2eeFailure('e2ee_envelope_malformed', `device key id length ${deviceKeyIdLength} is outside 1..${E2EE_FIELD_LIMITS.deviceKeyId}`);
  }
  const headerLength = FIXED_HEADER_LENGTH + deviceKeyIdLength;
  if (bytes.length < headerLength) return e2eeFailure('e2ee_envelope_malformed', 'truncated in the device key id');
  const deviceKeyId = bytes.toString('latin1', FIXED_HEADER_LENGTH, headerLength);
  if (!isVisibleAscii(deviceKeyId, false)) return e2eeFailure('e2ee_envelope_malformed', 'device key id has bytes outside visible ASCII');
  const encEnd = headerLength + X25519_KEY_LENGTH;
  if (bytes.length < encEnd) return e2eeFailure('e2ee_envelope_malformed', 'truncated in enc');
  // The smallest plaintext is the framing byte; every AEAD here has a 16-byte tag.
  const ciphertextLength = bytes.length - encEnd;
  if (ciphertextLength < 1 + 16) return e2eeFailure('e2ee_envelope_malformed', `ciphertext of ${ciphertextLength} bytes is shorter than tag + framing`);
  return {
    ok: true,
    envelope: {
      keyId: bytes[0]!,
      kemId: bytes.readUInt16BE(1),
      kdfId: bytes.readUInt16BE(3),
      aeadId: bytes.readUInt16BE(5),
      deviceKeyId,
      header: bytes.subarray(0, headerLength),
      enc: bytes.subarray(headerLength, encEnd),
      ciphertext: bytes.subarray(encEnd),
    },
  };
}

/**
 * The device key id alone, so the filter can fetch the device's key (an async store call) before
 * the synchronous decryptRequest. Untrusted until decryptRequest succeeds.
 */
export function readDeviceKeyId(body: Uint8Array): { ok: true; deviceKeyId: string } | E2eeFailure {
  const parsed = parseEnvelope(body);
  return parsed.ok ? { ok: true, deviceKeyId: parsed.envelope.deviceKeyId } : parsed;
}

/** A device's enrolled X25519 public key; build once with deviceKeyFromRaw and cache it. */
export interface DeviceKey {
  readonly publicKey: Buffer;
  readonly keyObject: KeyObject;
}

/** Throws on a wrong length: device keys are validated at enrollment, not per request. */
export function deviceKeyFromRaw(publicKey: Uint8Array): DeviceKey {
  return { publicKey: Buffer.from(publicKey), keyObject: x25519PublicKeyFromRaw(publicKey) };
}

export interface DecryptRequestInput extends RequestBinding {
  readonly body: Uint8Array;
  /** the request's Content-Type header */
  readonly contentType: string | undefined;
}

export interface DecryptRequestDeps {
  readonly keyring: E2eeKeyring;
  /** synchronous: the filter resolves it from the store beforehand (see readDeviceKeyId) */
  readonly deviceKey: (deviceKeyId: string) => DeviceKey | undefined;
  readonly limits?: E2eeSizeLimits;
}

export interface DecryptedRequest {
  readonly ok: true;
  readonly plaintext: Buffer;
  /** the inner Content-Type to forward upstream; null when the app sent none */
  readonly contentType: string | null;
  /** authenticated: only the holder of this device's X25519 private key could have produced the envelope */
  readonly deviceKeyId: string;
  readonly keyId: number;
  readonly aeadId: number;
  /** enc, hex: unique per request, for a replay cache if the route wants one */
  readonly replayKey: string;
  /** encrypts the response body for this request, and only for it */
  readonly response: ResponseEncrypter;
}

export function decryptRequest(input: DecryptRequestInput, deps: DecryptRequestDeps): DecryptedRequest | E2eeFailure {
  const checked = checkRequestEnvelope(input, deps);
  return checked.ok ? openCheckedEnvelope(checked, deps.deviceKey(checked.deviceKeyId)) : checked;
}

/**
 * An envelope that passed every check needing no device key (§9's order: content type, size,
 * structure, key id, suite, binding): the filter looks the device up by `deviceKeyId`, then
 * openCheckedEnvelope finishes. Untrusted until then: nothing here is authenticated yet.
 */
export interface CheckedEnvelope {
  readonly ok: true;
  readonly deviceKeyId: string;
  readonly envelope: ParsedEnvelope;
  readonly key: GatewayKey;
  readonly suite: HpkeSuite;
  /** the HPKE info: label, hdr and the request binding */
  readonly info: Buffer;
  readonly maxResponseBytes: number;
}

/** The first half of decryptRequest. Never throws: every failure is a code. */
export function checkRequestEnvelope(input: DecryptRequestInput, deps: Pick<DecryptRequestDeps, 'keyring' | 'limits'>): CheckedEnvelope | E2eeFailure {
  try {
    return checkUnguarded(input, deps);
  } catch (error) {
    return unexpected(error);
  }
}

/** The second half: decrypt with the device's enrolled key (undefined: e2ee_unknown_device). Never throws. */
export function openCheckedEnvelope(checked: CheckedEnvelope, device: DeviceKey | undefined): DecryptedRequest | E2eeFailure {
  try {
    return openUnguarded(checked, device);
  } catch (error) {
    return unexpected(error);
  }
}

// Every input has a code in the functions below; reaching here is a bug, still answered and not thrown.
const unexpected = (error: unknown): E2eeFailure => e2eeFailure('e2ee_internal_error', `unexpected: ${error instanceof Error ? error.message : String(error)}`);

function checkUnguarded(input: DecryptRequestInput, deps: Pick<DecryptRequestDeps, 'keyring' | 'limits'>): CheckedEnvelope | E2eeFailure {
  const limits = deps.limits ?? DEFAULT_SIZE_LIMITS;
  if (!isMediaType(input.contentType, E2EE_REQUEST_MEDIA_TYPE)) {
    return e2eeFailure('e2ee_content_type_invalid', `content-type ${JSON.stringify(input.contentType ?? null)}`);
  }
  if (input.body.length > limits.maxRequestBytes) {
    return e2eeFailure('e2ee_too_large', `${input.body.length} bytes > ${limits.maxRequestBytes}`);
  }
  const parsed = parseEnvelope(input.body);
  if (!parsed.ok) return parsed;
  const { envelope } = parsed;
  const key = deps.keyring.find(envelope.keyId);
  if (key === undefined) return e2eeFailure('e2ee_unknown_key_id', `key id ${envelope.keyId}`);
  const suite = key.suites.find((s) => s.kemId === envelope.kemId && s.kdfId === envelope.kdfId && s.aead.id === envelope.aeadId);
  if (suite === undefined) {
    return e2eeFailure('e2ee_suite_unsupported', `kem 0x${envelope.kemId.toString(16)} kdf 0x${envelope.kdfId.toString(16)} aead 0x${envelope.aeadId.toString(16)} for key id ${envelope.keyId}`);
  }
  const info = gatehouseRequestInfoFor(envelope.header, input);
  if (typeof info === 'string') return e2eeFailure('e2ee_binding_invalid', info);
  return { ok: true, deviceKeyId: envelope.deviceKeyId, envelope, key, suite, info, maxResponseBytes: limits.maxResponseBytes };
}

function openUnguarded(checked: CheckedEnvelope, device: DeviceKey | undefined): DecryptedRequest | E2eeFailure {
  const { envelope, key } = checked;
  if (device === undefined) return e2eeFailure('e2ee_unknown_device', `device key id ${JSON.stringify(envelope.deviceKeyId)}`);
  let context: HpkeContext;
  try {
    context = setupRecipient({
      suite: checked.suite,
      recipientPrivateKey: key.privateKey,
      recipientPublicKey: key.publicKey,
      enc: envelope.enc,
      info: checked.info,
      sender: device,
    }).context;
  } catch (error) {
    if (error instanceof HpkeError) return e2eeFailure('e2ee_decrypt_failed', error.message);
    throw error;
  }
  const plaintext = context.open(EMPTY, envelope.ciphertext);
  if (plaintext === undefined) return e2eeFailure('e2ee_decrypt_failed', 'AEAD open failed');
  const inner = unframe(plaintext);
  if (typeof inner === 'string') return e2eeFailure('e2ee_inner_malformed', inner);
  return {
    ok: true,
    plaintext: inner.content,
    contentType: inner.contentType,
    deviceKeyId: envelope.deviceKeyId,
    keyId: envelope.keyId,
    aeadId: envelope.aeadId,
    replayKey: envelope.enc.toString('hex'),
    response: new ResponseEncrypter(context, envelope.enc, checked.maxResponseBytes),
  };
}

export interface EncryptedBody {
  readonly ok: true;
  readonly body: Buffer;
  readonly contentType: string;
}

/** The response-encryption context the filter keeps from request to response. */
export class ResponseEncrypter {
  constructor(
    private readonly context: HpkeContext,
    private readonly enc: Buffer,
    private readonly maxResponseBytes: number,
  ) {}

  /**
   * response_nonce ‖ Seal(key, nonce, "", framed body). `responseNonce` is for known-answer tests
   * and the worked example only; production calls leave it out and get a fresh random one.
   */
  encrypt(body: Uint8Array, contentType: string | null, options: { responseNonce?: Uint8Array } = {}): EncryptedBody | E2eeFailure {
    try {
      if (body.length > this.maxResponseBytes) return e2eeFailure('e2ee_upstream_too_large', `${body.length} bytes > ${this.maxResponseBytes}`);
      if (contentType !== null) {
        const problem = boundedField('contentType', contentType, true, true);
        if (problem !== undefined) return e2eeFailure('e2ee_upstream_content_type_invalid', problem);
      }
      // salt = enc ‖ response_nonce, built in one buffer; the nonce is its tail.
      const nonceLength = responseNonceLength(this.context.suite);
      const salt = Buffer.allocUnsafe(this.enc.length + nonceLength);
      salt.set(this.enc, 0);
      if (options.responseNonce === undefined) copyRandom(salt, this.enc.length, nonceLength);
      else if (options.responseNonce.length === nonceLength) salt.set(options.responseNonce, this.enc.length);
      else return e2eeFailure('e2ee_internal_error', `response nonce of ${options.responseNonce.length} bytes, not ${nonceLength}`);
      const { key, nonce } = responseKeys(this.context, RESPONSE_LABEL, salt);
      const sealed = aeadSealParts(this.context.suite.aead, key, nonce, EMPTY, frameParts(contentType, body), salt.subarray(this.enc.length));
      return { ok: true, body: sealed, contentType: E2EE_RESPONSE_MEDIA_TYPE };
    } catch (error) {
      return e2eeFailure('e2ee_internal_error', `unexpected: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// App side (wrapped by sdk/app/e2ee.ts).

export interface EncryptRequestInput extends RequestBinding {
  /** from chooseKeyConfig: the gateway key and the suite to use with it */
  readonly keyConfig: KeyConfig;
  readonly suite: HpkeSuite;
  readonly deviceKeyId: string;
  /** the device's enrolled X25519 private key */
  readonly devicePrivateKey: KeyObject;
  readonly body: Uint8Array;
  /** the inner Content-Type (e.g. "application/json"); null for none */
  readonly contentType: string | null;
  readonly maxRequestBytes?: number;
  /** a fixed ephemeral key, for known-answer tests and the worked example only */
  readonly ephemeralPrivateKey?: KeyObject;
}

export interface EncryptedRequest extends EncryptedBody {
  /** keep it until the response arrives: only it can open the response */
  readonly response: ResponseDecrypter;
}

export function encryptRequest(input: EncryptRequestInput): EncryptedRequest | E2eeClientFailure {
  const problem =
    boundedField('deviceKeyId', input.deviceKeyId, false, false) ?? (input.contentType === null ? undefined : boundedField('contentType', input.contentType, true, true));
  if (problem !== undefined) return e2eeClientFailure('e2ee_request_invalid', problem);
  const binding = encodeBinding(input);
  if (typeof binding === 'string') return e2eeClientFailure('e2ee_request_invalid', binding);
  const header = Buffer.concat([
    Uint8Array.of(input.keyConfig.keyId),
    u16(KEM_DHKEM_X25519_HKDF_SHA256),
    u16(KDF_HKDF_SHA256),
    u16(input.suite.aead.id),
    Uint8Array.of(input.deviceKeyId.length),
    utf8(input.deviceKeyId),
  ]);
  let sender: ReturnType<typeof setupSender>;
  try {
    sender = setupSender({
      suite: input.suite,
      recipientPublicKey: input.keyConfig.publicKey,
      info: gatehouseRequestInfo(header, binding),
      senderPrivateKey: input.devicePrivateKey,
      ...(input.ephemeralPrivateKey === undefined ? {} : { ephemeralPrivateKey: input.ephemeralPrivateKey }),
    });
  } catch (error) {
    if (error instanceof HpkeError) return e2eeClientFailure('e2ee_no_usable_key', error.message);
    throw error;
  }
  const { suite } = sender.context;
  const schedule = sender.context.schedule;
  // sequence number 0, so the nonce is base_nonce; sealing after hdr ‖ enc copies the body once
  const body = aeadSealParts(suite.aead, schedule.key, schedule.baseNonce, EMPTY, frameParts(input.contentType, input.body), Buffer.concat([header, sender.enc]));
  const maxRequestBytes = input.maxRequestBytes ?? DEFAULT_SIZE_LIMITS.maxRequestBytes;
  if (body.length > maxRequestBytes) return e2eeClientFailure('e2ee_request_invalid', `encrypted body of ${body.length} bytes > ${maxRequestBytes}`);
  return { ok: true, body, contentType: E2EE_REQUEST_MEDIA_TYPE, response: new ResponseDecrypter(sender.context, sender.enc) };
}

export interface DecryptedResponse {
  readonly ok: true;
  readonly plaintext: Buffer;
  readonly contentType: string | null;
}

export class ResponseDecrypter {
  constructor(
    private readonly context: HpkeContext,
    readonly enc: Buffer,
  ) {}

  /** Never throws: every failure is a client code. */
  decrypt(body: Uint8Array, contentType: string | undefined, maxResponseBytes: number = DEFAULT_SIZE_LIMITS.maxResponseBytes): DecryptedResponse | E2eeClientFailure {
    try {
      if (!isMediaType(contentType, E2EE_RESPONSE_MEDIA_TYPE)) {
        return e2eeClientFailure('e2ee_response_content_type_invalid', `content-type ${JSON.stringify(contentType ?? null)}`);
      }
      const { aead } = this.context.suite;
      const nonceLength = responseNonceLength(this.context.suite);
      if (body.length > maxResponseBytes + nonceLength + aead.Nt + 1 + E2EE_FIELD_LIMITS.contentType) {
        return e2eeClientFailure('e2ee_response_too_large', `${body.length} bytes`);
      }
      if (body.length < nonceLength + aead.Nt + 1) return e2eeClientFailure('e2ee_response_malformed', `${body.length} bytes is shorter than nonce + tag + framing`);
      const bytes = asBuffer(body);
      const { key, nonce } = responseKeys(this.context, RESPONSE_LABEL, Buffer.concat([this.enc, bytes.subarray(0, nonceLength)]));
      const plaintext = aeadOpen(aead, key, nonce, EMPTY, bytes.subarray(nonceLength));
      if (plaintext === undefined) return e2eeClientFailure('e2ee_response_decrypt_failed', 'AEAD open failed');
      const inner = unframe(plaintext);
      if (typeof inner === 'string') return e2eeClientFailure('e2ee_response_malformed', inner);
      return { ok: true, plaintext: inner.content, contentType: inner.contentType };
    } catch (error) {
      return e2eeClientFailure('e2ee_response_malformed', `unexpected: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
}
