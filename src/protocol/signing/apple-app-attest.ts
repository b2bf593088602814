// Apple App Attest (docs/protocol/signing.md §3.2, format "apple-app-attest"): the attestation object
// DCAppAttestService.attestKey returns, for an App Attest key whose clientDataHash commits to the
// enrollment challenge and the device key's thumbprint. Pure: the caller reads the trusted roots;
// nothing here does I/O, so the receipt (and the fraud metric Apple's server derives from it) is not
// checked here.
import { createHash, X509Certificate } from 'node:crypto';
import { AsnConvert, AsnProp, AsnType, AsnTypeTypes, OctetString } from '@peculiar/asn1-schema';
import { decode } from 'cbor2';
import { base64urlDecode, utf8 } from '../common/base64.js';
import type { AttestationVerifier } from './attestation.js';
import { fail, type SigningFailure } from './codes.js';
import { appleClientDataInput, type IntegrityLevel } from './profile.js';
import { chainError, singleExtensionValue } from './x509-chain.js';

export const APPLE_APP_ATTEST_FORMAT = 'apple-app-attest';

/** The attestation object's own `fmt`. */
export const APPLE_APPATTEST_FMT = 'apple-appattest';

/** The credential certificate extension holding the nonce. */
export const APPLE_NONCE_OID = '1.2.840.113635.100.8.2';

/** Real evidence is 5–8 KiB (two certificates and a ~4 KiB receipt); anything longer is refused undecoded. */
export const MAX_EVIDENCE_LENGTH = 32 * 1024;

/** x5c is [credCert, intermediate]; up to this many are accepted (a chain that includes the root, or a longer one). */
export const MAX_X5C_LENGTH = 4;

/** authenticatorData's aaguid: the App Attest environment the key was created in. */
export const AAGUID_PRODUCTION = Buffer.concat([Buffer.from('appattest', 'ascii'), Buffer.alloc(7)]);
export const AAGUID_DEVELOPMENT = Buffer.from('appattestdevelop', 'ascii');

/** The authenticatorData flag "attested credential data included". */
const FLAG_AT = 0x40;

/**
 * The nonce extension's value, as Apple's credential certificates carry it:
 * `SEQUENCE { [1] EXPLICIT OCTET STRING (32 bytes) }`, DER `30 24 a1 22 04 20 <nonce>`.
 * (Declared without decorator syntax: the project does not enable experimentalDecorators.)
 */
export class AppleAttestationNonce {
  public nonce = new OctetString();
  public constructor(params: Partial<AppleAttestationNonce> = {}) {
    Object.assign(this, params);
  }
}
AsnType({ type: AsnTypeTypes.Sequence })(AppleAttestationNonce);
AsnProp({ type: OctetString, context: 1 })(AppleAttestationNonce.prototype, 'nonce');

export interface AppleApp {
  /** The Apple Developer Team ID (10 characters). */
  readonly teamId: string;
  /** The bundle identifier. The App ID `<teamId>.<bundleId>` becomes the device record's appId. */
  readonly bundleId: string;
}

export interface AppleAppAttestConfig {
  /** Trust anchors, DER-parsed by the caller (production: Apple App Attestation Root CA). */
  readonly roots: readonly X509Certificate[];
  /** The apps whose App Attest keys may vouch for an enrollment. */
  readonly apps: readonly AppleApp[];
  /** Accept keys from the development App Attest environment (aaguid "appattestdevelop"), as `device`. Default false. */
  readonly allowDevelopment?: boolean;
}

const sha256 = (...parts: Uint8Array[]): Buffer => {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return hash.digest();
};

/**
 * The clientDataHash the app passes to attestKey: SHA-256 over the UTF-8 of
 * `<challenge>.<device key thumbprint>` (32 bytes). The thumbprint is base64url, so the last dot
 * separates the two unambiguously.
 */
export function appleClientDataHash(challenge: string, deviceKeyThumbprint: string): Uint8Array {
  return new Uint8Array(sha256(utf8(appleClientDataInput(challenge, deviceKeyThumbprint))));
}

/** The App ID's rpIdHash: SHA-256 of `<teamId>.<bundleId>`. */
export function appleRpIdHash(app: AppleApp): Uint8Array {
  return new Uint8Array(sha256(utf8(appleAppId(app))));
}

export const appleAppId = (app: AppleApp): string => `${app.teamId}.${app.bundleId}`;

/** The evidence: base64url (unpadded) of the attestation object's CBOR, as attestKey returns it. */
export function encodeAppleAppAttestEvidence(attestationObject: Uint8Array): string {
  return Buffer.from(attestationObject).toString('base64url');
}

type Step<T> = { ok: true; value: T } | SigningFailure;

const invalid = (detail: string): SigningFailure => fail('attestation_invalid', `apple-app-attest: ${detail}`);

interface AuthenticatorData {
  readonly raw: Buffer;
  readonly rpIdHash: Buffer;
  readonly flags: number;
  readonly signCount: number;
  readonly aaguid: Buffer;
  readonly credentialId: Buffer;
}

interface AttestationObject {
  readonly chain: X509Certificate[];
  readonly authData: AuthenticatorData;
}

/** WebAuthn authenticatorData with attested credential data: rpIdHash(32) flags(1) signCount(4) aaguid(16) L(2) credentialId(L) key… */
function parseAuthData(raw: Buffer): Step<AuthenticatorData> {
  if (raw.length < 55) return invalid(`authData is ${raw.length} bytes: too short for attested credential data (55 at least)`);
  const length = raw.readUInt16BE(53);
  if (raw.length < 55 + length) return invalid(`authData credentialId length ${length} runs past its end`);
  return {
    ok: true,
    value: {
      raw,
      rpIdHash: raw.subarray(0, 32),
      flags: raw[32]!,
      signCount: raw.readUInt32BE(33),
      aaguid: raw.subarray(37, 53),
      credentialId: raw.subarray(55, 55 + length),
    },
  };
}

function parseEvidence(evidence: string): Step<AttestationObject> {
  if (evidence.length > MAX_EVIDENCE_LENGTH) return invalid(`evidence is ${evidence.length} characters, more than ${MAX_EVIDENCE_LENGTH}`);
  const bytes = base64urlDecode(evidence);
  if (bytes === undefined) return invalid('evidence is not base64url (unpadded)');
  let object: unknown;
  try {
    // Maps stay Maps (no prototype keys); no tag decoders; duplicate keys are an error.
    object = decode(bytes, { preferMap: true, rejectDuplicateKeys: true, ignoreGlobalTags: true, maxDepth: 8 });
  } catch (error) {
    return invalid(`evidence is not one CBOR item: ${error instanceof Error ? error.message : 'undecodable'}`);
  }
  if (!(object instanceof Map)) return invalid('attestation object is not a CBOR map');
  const fmt: unknown = object.get('fmt');
  if (fmt !== APPLE_APPATTEST_FMT) return invalid(`attestation object fmt is ${JSON.stringify(fmt ?? null)}, not "${APPLE_APPATTEST_FMT}"`);
  const attStmt: unknown = object.get('attStmt');
  if (!(attStmt instanceof Map)) return invalid('attestation object has no attStmt map');
  const authData: unknown = object.get('authData');
  if (!(authData instanceof Uint8Array)) return invalid('attestation object has no authData byte string');
  if (!(attStmt.get('receipt') instanceof Uint8Array)) return invalid('attStmt has no receipt byte string');
  const x5c: unknown = attStmt.get('x5c');
  if (!Array.isArray(x5c)) return invalid('attStmt has no x5c array');
  if (x5c.length < 2) return invalid(`x5c has ${x5c.length} certificate(s): the credential certificate and its issuer are needed`);
  if (x5c.length > MAX_X5C_LENGTH) return invalid(`x5c has ${x5c.length} certificates, more than ${MAX_X5C_LENGTH}`);
  const chain: X509Certificate[] = [];
  for (const [index, der] of x5c.entries()) {
    if (!(der instanceof Uint8Array) || der[0] !== 0x30) return invalid(`x5c[${index}] is not a DER X.509 certificate (byte string)`);
    try {
      chain.push(new X509Certificate(der));
    } catch (error) {
      return invalid(`x5c[${index}] is not a DER X.509 certificate: ${error instanceof Error ? error.message : 'unparsable'}`);
    }
  }
  const parsed = parseAuthData(Buffer.from(authData));
  if (!parsed.ok) return parsed;
  return { ok: true, value: { chain, authData: parsed.value } };
}

/** The nonce the credential certificate carries (exactly one extension, a 32-byte OCTET STRING in [1]). */
function nonceOf(credCert: X509Certificate): Step<Buffer> {
  const extension = singleExtensionValue(credCert, APPLE_NONCE_OID, 'credential certificate', 'nonce');
  if (!extension.ok) return invalid(extension.detail);
  let nonce: Buffer;
  try {
    nonce = Buffer.from(AsnConvert.parse(extension.value, AppleAttestationNonce).nonce.buffer);
  } catch (error) {
    return invalid(`nonce extension does not parse as SEQUENCE { [1] OCTET STRING }: ${error instanceof Error ? error.message : 'unparsable'}`);
  }
  if (nonce.length !== 32) return invalid(`nonce extension holds ${nonce.length} bytes, not 32`);
  return { ok: true, value: nonce };
}

/** The App Attest key id: SHA-256 of the credential certificate's P-256 key as an uncompressed point (04 ‖ x ‖ y). */
function keyIdOf(credCert: X509Certificate): Buffer | undefined {
  try {
    const jwk = credCert.publicKey.export({ format: 'jwk' });
    if (jwk.kty !== 'EC' || jwk.crv !== 'P-256' || jwk.x === undefined || jwk.y === undefined) return undefined;
    return sha256(Buffer.from([0x04]), Buffer.from(jwk.x, 'base64url'), Buffer.from(jwk.y, 'base64url'));
  } catch {
    return undefined;
  }
}

/**
 * Accepts an App Attest attestation object: its x5c chains to a configured root; the credential
 * certificate's nonce is SHA-256(authData ‖ clientDataHash) with clientDataHash committing to this
 * challenge and the enrolled device key's thumbprint; authData names an allowed app (rpIdHash), a
 * fresh key (counter 0) whose id is the certificate key's, in the production environment (or the
 * development one, if allowed). Never throws.
 */
export function appleAppAttestVerifier(config: AppleAppAttestConfig): AttestationVerifier {
  const apps = new Map(config.apps.map((app) => [Buffer.from(appleRpIdHash(app)).toString('hex'), appleAppId(app)]));
  return {
    format: APPLE_APP_ATTEST_FORMAT,
    // eslint-disable-next-line @typescript-eslint/require-await -- the interface is async; this check is CPU only
    async verify(evidence, expected) {
      try {
        const parsed = parseEvidence(evidence);
        if (!parsed.ok) return parsed;
        const { chain, authData } = parsed.value;
        const credCert = chain[0]!;
        // authData first: cheap, and an object for another app or environment is not worth verifying.
        const appId = apps.get(authData.rpIdHash.toString('hex'));
        if (appId === undefined) return invalid(`authData rpIdHash ${authData.rpIdHash.toString('hex')} is not SHA-256 of an allowed App ID (<teamId>.<bundleId>)`);
        if (authData.signCount !== 0) return invalid(`authData counter is ${authData.signCount}, not 0: not a fresh attestation`);
        if ((authData.flags & FLAG_AT) === 0) return invalid('authData has no attested credential data (flag AT is not set)');
        let integrity: IntegrityLevel;
        if (authData.aaguid.equals(AAGUID_PRODUCTION)) integrity = 'strong';
        else if (authData.aaguid.equals(AAGUID_DEVELOPMENT)) {
          if (config.allowDevelopment !== true) return invalid('key is from the development App Attest environment (aaguid "appattestdevelop"), which is not allowed');
          integrity = 'device';
        } else return invalid(`authData aaguid ${authData.aaguid.toString('hex')} is neither App Attest environment`);
        const keyId = keyIdOf(credCert);
        if (keyId === undefined) return invalid('credential certificate key is not a P-256 key');
        if (!authData.credentialId.equals(keyId)) return invalid("authData credentialId is not the key id (SHA-256 of the credential certificate's key)");
        const broken = chainError(chain, config.roots, expected.now);
        if (broken !== undefined) return invalid(broken.replace(/^chain/, 'x5c'));
        const nonce = nonceOf(credCert);
        if (!nonce.ok) return nonce;
        const clientDataHash = appleClientDataHash(expected.challenge, expected.deviceKeyThumbprint);
        if (!nonce.value.equals(sha256(authData.raw, clientDataHash))) {
          return invalid('nonce is not SHA-256(authData ‖ clientDataHash) for this enrollment challenge and device key');
        }
        return { ok: true, verdict: { integrityLevel: integrity, appId } };
      } catch (error) {
        // Nothing above should throw; a parser surprise is still a refusal, never an exception.
        return invalid(`unexpected: ${error instanceof Error ? error.message : 'unknown error'}`);
      }
    },
  };
}
