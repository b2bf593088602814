/**
 * gatehouse app SDK — dynamic security (request signing). Implements docs/protocol/signing.md:
 * enroll a device key (and the device's X25519 e2ee key with it), obtain a short-lived credential for
 * an ephemeral key, sign each request (RFC 9421 with RFC 9530 Content-Digest).
 *
 * Runtimes. Everything here uses only WebCrypto (`crypto.subtle`, `crypto.getRandomValues`) and
 * TextEncoder, injected or taken from `globalThis.crypto`:
 * - Node.js ≥ 20: supported and tested (its built-in WebCrypto; ECDSA P-256 and Ed25519).
 * - Browsers: ECDSA P-256 in every current browser; Ed25519 where WebCrypto has it (Chrome 137+,
 *   Firefox 129+, Safari 17+). Keys are generated non-extractable.
 * - React Native / native apps: the device key should live in the platform keystore (Secure Enclave,
 *   Android Keystore / StrongBox). Implement {@link RequestSigner} over the native module (return raw
 *   r‖s for ECDSA, not DER — Android and iOS return DER and must be converted) and pass a WebCrypto-
 *   compatible `subtle` (e.g. react-native-quick-crypto) for SHA-256 and the ephemeral key.
 */
// Type-only: erased at build time, so bundles for browsers carry no node:crypto import.
import type { webcrypto } from 'node:crypto';
import { base64urlDecode, base64urlEncode, fromUtf8, utf8 } from '../../src/protocol/common/base64.js';
import { serializeDictionary, serializeInnerList, sf } from '../../src/protocol/common/sfv.js';
import {
  CREDENTIAL_HEADER,
  CREDENTIAL_REQUEST_TYPE,
  E2EE_KEY_MEMBER,
  ENROLLMENT_PROOF_TYPE,
  LOGIN_TOKEN_HASH_CLAIM,
  CONTENT_DIGEST_HEADER,
  JOSE_ALGORITHM,
  REQUIRED_COMPONENTS,
  SIGNATURE_HEADER,
  SIGNATURE_INPUT_HEADER,
  SIGNATURE_TAG,
  normalizePublicJwk,
  normalizeX25519Jwk,
  thumbprintInput,
  androidAttestationChallengeInput,
  appleClientDataInput,
  type PublicJwk,
  type SignatureAlgorithm,
  type X25519PublicJwk,
} from '../../src/protocol/signing/profile.js';
import { buildSignatureBase } from '../../src/protocol/signing/signature-base.js';

export type { PublicJwk, SignatureAlgorithm, X25519PublicJwk } from '../../src/protocol/signing/profile.js';

/** A key that signs raw: Ed25519's 64 bytes, or ECDSA P-256 as 64-byte r‖s (never DER). */
export interface RequestSigner {
  readonly algorithm: SignatureAlgorithm;
  readonly publicJwk: PublicJwk;
  sign(data: Uint8Array): Promise<Uint8Array>;
}

/** The subset of WebCrypto the SDK uses. */
export interface CryptoProvider {
  readonly subtle: webcrypto.SubtleCrypto;
  getRandomValues<T extends Uint8Array>(array: T): T;
}

function defaultCrypto(): CryptoProvider {
  const provider = (globalThis as { crypto?: CryptoProvider }).crypto;
  if (provider === undefined) throw new Error('no WebCrypto in this runtime: pass a CryptoProvider');
  return provider;
}

const WEBCRYPTO_PARAMS: Readonly<Record<SignatureAlgorithm, { generate: webcrypto.EcKeyGenParams | webcrypto.Algorithm; sign: webcrypto.EcdsaParams | webcrypto.Algorithm }>> = {
  'ecdsa-p256-sha256': { generate: { name: 'ECDSA', namedCurve: 'P-256' }, sign: { name: 'ECDSA', hash: 'SHA-256' } },
  ed25519: { generate: { name: 'Ed25519' }, sign: { name: 'Ed25519' } },
};

/** Wraps a WebCrypto key pair (ECDSA P-256 or Ed25519) as a RequestSigner. WebCrypto ECDSA already returns raw r‖s. */
export async function signerFromCryptoKeyPair(pair: webcrypto.CryptoKeyPair, crypto: CryptoProvider = defaultCrypto()): Promise<RequestSigner> {
  const exported = await crypto.subtle.exportKey('jwk', pair.publicKey);
  const publicJwk = normalizePublicJwk({ kty: exported.kty, crv: exported.crv, x: exported.x, y: exported.y });
  if (publicJwk === undefined) throw new TypeError('key pair is neither ECDSA P-256 nor Ed25519');
  const algorithm: SignatureAlgorithm = publicJwk.kty === 'EC' ? 'ecdsa-p256-sha256' : 'ed25519';
  return {
    algorithm,
    publicJwk,
    sign: async (data) => new Uint8Array(await crypto.subtle.sign(WEBCRYPTO_PARAMS[algorithm].sign, pair.privateKey, data)),
  };
}

/**
 * Converts a DER ECDSA P-256 signature (what iOS SecKeyCreateSignature and Android's Signature return)
 * to the raw 64-byte r‖s the protocol uses. Throws on anything that is not a well-formed DER
 * SEQUENCE of two positive INTEGERs of at most 32 significant bytes.
 */
export function ecdsaDerToRaw(der: Uint8Array): Uint8Array {
  let at = 0;
  const byte = (): number => {
    const b = der[at++];
    if (b === undefined) throw new TypeError('truncated DER signature');
    return b;
  };
  if (byte() !== 0x30) throw new TypeError('DER signature is not a SEQUENCE');
  const length = byte();
  if (length & 0x80 || length !== der.length - 2) throw new TypeError('DER signature length is wrong');
  const raw = new Uint8Array(64);
  for (const offset of [0, 32]) {
    if (byte() !== 0x02) throw new TypeError('DER signature part is not an INTEGER');
    let size = byte();
    if (size === 0 || size > 33) throw new TypeError('DER INTEGER has a bad length');
    if (der[at] === 0 && size > 1) {
      at++; // sign padding
      size--;
    }
    if (size > 32) throw new TypeError('DER INTEGER is too large for P-256');
    raw.set(der.subarray(at, at + size), offset + 32 - size);
    at += size;
  }
  if (at !== der.length) throw new TypeError('trailing bytes after DER signature');
  return raw;
}

/** A fresh non-extractable key pair: the ephemeral request key (every few minutes), or a device key where no keystore exists. */
export async function generateSigner(algorithm: SignatureAlgorithm = 'ecdsa-p256-sha256', crypto: CryptoProvider = defaultCrypto()): Promise<RequestSigner> {
  const pair = (await crypto.subtle.generateKey(WEBCRYPTO_PARAMS[algorithm].generate, false, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  return signerFromCryptoKeyPair(pair, crypto);
}

/** RFC 7638 JWK SHA-256 thumbprint, base64url: the device id of a device key, the keyid of an ephemeral key. */
export async function jwkThumbprint(jwk: PublicJwk, crypto: CryptoProvider = defaultCrypto()): Promise<string> {
  return base64urlEncode(new Uint8Array(await crypto.subtle.digest('SHA-256', utf8(thumbprintInput(jwk)))));
}

/**
 * Android Key Attestation (signing.md §3.1): the 32 bytes to set as the attestation challenge
 * (`KeyGenParameterSpec.Builder.setAttestationChallenge`) when the app creates its device key, after
 * it got the enrollment challenge.
 */
export async function androidAttestationChallenge(challenge: string, crypto: CryptoProvider = defaultCrypto()): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', utf8(androidAttestationChallengeInput(challenge))));
}

/** Android: the enrollment's `attestation.evidence` for the key's certificate chain (DER, leaf first, as `KeyStore.getCertificateChain` returns it). */
export function androidKeyAttestationEvidence(chainDer: readonly Uint8Array[]): string {
  return base64urlEncode(utf8(JSON.stringify(chainDer.map((der) => standardBase64(der)))));
}

/**
 * Apple App Attest (signing.md §3.2): the clientDataHash to pass to `DCAppAttestService.attestKey`,
 * committing the App Attest attestation to this enrollment challenge and this device key.
 */
export async function appleClientDataHash(challenge: string, deviceKeyThumbprint: string, crypto: CryptoProvider = defaultCrypto()): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', utf8(appleClientDataInput(challenge, deviceKeyThumbprint))));
}

/** Apple: the enrollment's `attestation.evidence` for the attestation object `attestKey` returned (CBOR bytes). */
export function appleAppAttestEvidence(attestationObject: Uint8Array): string {
  return base64urlEncode(attestationObject);
}

/** Standard base64 with padding (what the Android evidence carries per certificate). */
function standardBase64(bytes: Uint8Array): string {
  const padded = base64urlEncode(bytes).replaceAll('-', '+').replaceAll('_', '/');
  return padded + '='.repeat((4 - (padded.length % 4)) % 4);
}

async function compactJws(signer: RequestSigner, typ: string, payload: object): Promise<string> {
  const header = base64urlEncode(utf8(JSON.stringify({ alg: JOSE_ALGORITHM[signer.algorithm], typ })));
  const body = base64urlEncode(utf8(JSON.stringify(payload)));
  const signature = await signer.sign(utf8(`${header}.${body}`));
  return `${header}.${body}.${base64urlEncode(signature)}`;
}

/**
 * A fresh X25519 key pair for e2ee (WebCrypto; Node ≥ 20 and current browsers), its private key
 * non-extractable by default: enroll its public key with buildEnrollmentRequest, then seal requests
 * with it under the device id (createWebCryptoE2eeClient takes the CryptoKey; on Node,
 * KeyObject.from(privateKey) feeds sdk/app/e2ee.ts). Where the platform keystore holds X25519 keys,
 * enroll that key's public half instead.
 */
export async function generateE2eeKeyPair(options: { readonly extractable?: boolean } = {}, crypto: CryptoProvider = defaultCrypto()): Promise<webcrypto.CryptoKeyPair> {
  return (await crypto.subtle.generateKey({ name: 'X25519' }, options.extractable ?? false, ['deriveBits'])) as webcrypto.CryptoKeyPair;
}

/** The X25519 public key to enroll, as the JWK the enrollment carries: from a WebCrypto public CryptoKey or the raw 32 bytes. Throws on anything else. */
export async function x25519PublicJwk(key: webcrypto.CryptoKey | Uint8Array, crypto: CryptoProvider = defaultCrypto()): Promise<X25519PublicJwk> {
  const raw = key instanceof Uint8Array ? key : new Uint8Array(await crypto.subtle.exportKey('raw', key));
  const checked = normalizeX25519Jwk({ kty: 'OKP', crv: 'X25519', x: base64urlEncode(raw) });
  if (!checked.ok) throw new TypeError(`not an X25519 public key: ${checked.reason}`);
  return checked.jwk;
}

export interface EnrollmentRequestBody {
  challenge: string;
  deviceKey: PublicJwk;
  e2eeKey?: X25519PublicJwk;
  attestation: { format: string; evidence: string };
  proof: string;
}

/** The proof's `ath`: base64url SHA-256 of the login token's ASCII bytes (RFC 9449 §4.2). */
export async function loginTokenHash(loginToken: string, crypto: CryptoProvider = defaultCrypto()): Promise<string> {
  if (!/^[\x21-\x7e]+$/.test(loginToken)) throw new TypeError('a login token is visible ASCII (RFC 6750 b64token)');
  return base64urlEncode(new Uint8Array(await crypto.subtle.digest('SHA-256', utf8(loginToken))));
}

/**
 * The JSON body for POST enrollment. `evidence` is what the platform attestation produced for this
 * challenge and device key thumbprint. `loginToken` is the token the body will be posted with
 * (Authorization: Bearer): the proof commits to it, so the body enrolls the device to that login only.
 * `e2eeKey` (optional; leave it out if the app never uses e2ee) is the device's X25519 public key: the
 * proof signs it, and its e2ee device key id is the device id.
 */
export async function buildEnrollmentRequest(
  options: {
    readonly challenge: string;
    readonly deviceSigner: RequestSigner;
    readonly loginToken: string;
    readonly attestation: { readonly format: string; readonly evidence: string };
    readonly e2eeKey?: webcrypto.CryptoKey | Uint8Array;
  },
  crypto: CryptoProvider = defaultCrypto(),
): Promise<EnrollmentRequestBody> {
  const e2eeKey = options.e2eeKey === undefined ? undefined : await x25519PublicJwk(options.e2eeKey, crypto);
  const e2ee = e2eeKey === undefined ? {} : { [E2EE_KEY_MEMBER]: e2eeKey };
  return {
    challenge: options.challenge,
    deviceKey: options.deviceSigner.publicJwk,
    ...e2ee,
    attestation: { format: options.attestation.format, evidence: options.attestation.evidence },
    proof: await compactJws(options.deviceSigner, ENROLLMENT_PROOF_TYPE, { chl: options.challenge, [LOGIN_TOKEN_HASH_CLAIM]: await loginTokenHash(options.loginToken, crypto), ...e2ee }),
  };
}

/** The credential request: the device key signs the server challenge and the new ephemeral public key. */
export async function buildCredentialRequest(
  options: { readonly challenge: string; readonly deviceSigner: RequestSigner; readonly ephemeralSigner: RequestSigner },
  crypto: CryptoProvider = defaultCrypto(),
): Promise<string> {
  return compactJws(options.deviceSigner, CREDENTIAL_REQUEST_TYPE, {
    chl: options.challenge,
    dev: await jwkThumbprint(options.deviceSigner.publicJwk, crypto),
    jwk: options.ephemeralSigner.publicJwk,
  });
}

/** RFC 9530 Content-Digest (sha-256) of the exact content bytes sent; empty content when there is no body. */
export async function contentDigest(body: Uint8Array, crypto: CryptoProvider = defaultCrypto()): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', body));
  return serializeDictionary(new Map([['sha-256', sf.item(sf.bytes(digest))]]));
}

/**
 * The credential's `exp` (Unix seconds), read without verifying it (the app has no reason to): renew the
 * ephemeral key and credential a little before this, e.g. when fewer than 30 s remain.
 */
export function credentialExpiresAt(credential: string): number | undefined {
  const payload = credential.split('.')[1];
  const bytes = payload === undefined ? undefined : base64urlDecode(payload);
  const text = bytes === undefined ? undefined : fromUtf8(bytes);
  if (text === undefined) return undefined;
  try {
    const exp: unknown = (JSON.parse(text) as { exp?: unknown }).exp;
    return typeof exp === 'number' ? exp : undefined;
  } catch {
    return undefined;
  }
}

export interface RequestToSign {
  readonly method: string;
  /** Host[:port] exactly as the request's :authority / Host will carry it. */
  readonly authority: string;
  /** Path without the query, percent-encoded exactly as sent. */
  readonly path: string;
  /** Query without '?', exactly as sent; '' when there is none. */
  readonly query?: string;
  /** The exact content bytes; omit for requests without a body. */
  readonly body?: Uint8Array | undefined;
}

export interface SigningOptions {
  readonly credential: string;
  /** The ephemeral key the credential binds. */
  readonly signer: RequestSigner;
  /** Unix seconds; defaults to the clock. */
  readonly now?: number;
  /** ≤ 60 (the verifier's default maximum); default 30. */
  readonly expiresInSeconds?: number;
  /** Test seam; 16 random bytes base64url by default. */
  readonly nonce?: string;
  readonly crypto?: CryptoProvider;
}

/** The four header fields to add to the request: content-digest, device-credential, signature-input, signature. */
export async function signRequest(request: RequestToSign, options: SigningOptions): Promise<Record<string, string>> {
  const crypto = options.crypto ?? defaultCrypto();
  const created = Math.floor(options.now ?? Date.now() / 1000);
  const keyid = await jwkThumbprint(options.signer.publicJwk, crypto);
  const nonce = options.nonce ?? base64urlEncode(crypto.getRandomValues(new Uint8Array(16)));
  const headers: Record<string, string> = {
    [CONTENT_DIGEST_HEADER]: await contentDigest(request.body ?? new Uint8Array(0), crypto),
    [CREDENTIAL_HEADER]: options.credential,
  };
  const params = new Map([
    ['created', sf.integer(created)],
    ['expires', sf.integer(created + (options.expiresInSeconds ?? 30))],
    ['nonce', sf.string(nonce)],
    ['keyid', sf.string(keyid)],
    ['alg', sf.string(options.signer.algorithm)],
    ['tag', sf.string(SIGNATURE_TAG)],
  ]);
  const covered = sf.innerList(REQUIRED_COMPONENTS.map((id) => sf.item(sf.string(id))), params);
  const base = buildSignatureBase(covered, {
    method: request.method,
    authority: request.authority,
    path: request.path,
    query: request.query ?? '',
    header: (name) => headers[name],
  });
  if (!base.ok) throw new TypeError(`cannot sign: ${base.component} is ${base.reason}`);
  const signature = await options.signer.sign(utf8(base.base));
  headers[SIGNATURE_INPUT_HEADER] = `sig=${serializeInnerList(covered)}`;
  headers[SIGNATURE_HEADER] = serializeDictionary(new Map([['sig', sf.item(sf.bytes(signature))]]));
  return headers;
}
