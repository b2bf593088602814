// Android Key Attestation (docs/protocol/signing.md §3, format "android-key-attestation"): the device
// key's own attestation certificate chain, as KeyStore.getCertificateChain returns it. Pure: the caller
// reads the trusted roots; nothing here does I/O, so certificate revocation (Google's attestation status
// list, fetched over the network) is the caller's concern, not checked here.
import { createHash, X509Certificate } from 'node:crypto';
import { AttestationApplicationId, id_ce_keyDescription, NonStandardKeyDescription, SecurityLevel, VerifiedBootState } from '@peculiar/asn1-android';
import { AsnConvert } from '@peculiar/asn1-schema';
import { base64Decode, base64urlDecode, fromUtf8, utf8 } from '../common/base64.js';
import type { AttestationVerifier } from './attestation.js';
import { fail, type SigningFailure } from './codes.js';
import { androidAttestationChallengeInput, type IntegrityLevel } from './profile.js';
import { chainError, singleExtensionValue, thumbprintOf } from './x509-chain.js';

export const ANDROID_KEY_ATTESTATION_FORMAT = 'android-key-attestation';

/** Real chains are 3–5 certificates (leaf, one or two intermediates, root); anything longer is refused unparsed. */
export const MAX_CHAIN_LENGTH = 10;

/** KeyMint/Keymaster `origin` tag value for a key generated inside the secure hardware (not imported). */
const ORIGIN_GENERATED = 0;

export interface AndroidApp {
  /** The package name (applicationId); it becomes the device record's appId. */
  readonly packageName: string;
  /** SHA-256 digests of the app's signing certificates, lower-case hex (keytool / apksigner print them). */
  readonly signingCertSha256: readonly string[];
}

export interface AndroidKeyAttestationConfig {
  /** Trust anchors, DER-parsed by the caller (production: Google's hardware attestation roots). */
  readonly roots: readonly X509Certificate[];
  /** The apps whose keys may enroll. */
  readonly apps: readonly AndroidApp[];
}

/** What attestationChallenge must hold for an enrollment challenge: SHA-256 over its UTF-8 (32 bytes). */
export function androidAttestationChallenge(challenge: string): Uint8Array {
  return new Uint8Array(createHash('sha256').update(utf8(androidAttestationChallengeInput(challenge))).digest());
}

/** The chain as the evidence carries it: base64url (unpadded) of the UTF-8 JSON array of base64 DER certificates, leaf first. */
export function encodeAndroidKeyAttestationEvidence(chainDer: readonly Uint8Array[]): string {
  return Buffer.from(JSON.stringify(chainDer.map((der) => Buffer.from(der).toString('base64'))), 'utf8').toString('base64url');
}

/**
 * The bytes of an OCTET STRING as the schema hands it back: an OctetString, or (for
 * AttestationApplicationId's members, whatever the typings say) a bare ArrayBuffer.
 */
function bytesOf(value: unknown): Buffer | undefined {
  if (value instanceof ArrayBuffer) return Buffer.from(value);
  if (ArrayBuffer.isView(value)) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (typeof value === 'object' && value !== null && 'buffer' in value && value.buffer instanceof ArrayBuffer) return Buffer.from(value.buffer);
  return undefined;
}

type Step<T> = { ok: true; value: T } | SigningFailure;

const invalid = (detail: string): SigningFailure => fail('attestation_invalid', `android-key-attestation: ${detail}`);

function parseEvidence(evidence: string): Step<X509Certificate[]> {
  const bytes = base64urlDecode(evidence);
  if (bytes === undefined) return invalid('evidence is not base64url (unpadded)');
  const text = fromUtf8(bytes);
  let array: unknown;
  try {
    array = text === undefined ? undefined : JSON.parse(text);
  } catch {
    array = undefined;
  }
  if (!Array.isArray(array)) return invalid('evidence is not a JSON array of base64 certificates');
  if (array.length < 2) return invalid(`chain has ${array.length} certificate(s): a leaf and at least its issuer are needed`);
  if (array.length > MAX_CHAIN_LENGTH) return invalid(`chain has ${array.length} certificates, more than ${MAX_CHAIN_LENGTH}`);
  const chain: X509Certificate[] = [];
  for (const [index, item] of array.entries()) {
    const der = typeof item === 'string' ? base64Decode(item) : undefined;
    if (der === undefined || der.length === 0) return invalid(`chain[${index}] is not a base64 (standard, padded, no line breaks) string`);
    // X509Certificate also takes PEM: only DER (a SEQUENCE) is the evidence format.
    if (der[0] !== 0x30) return invalid(`chain[${index}] is not a DER X.509 certificate`);
    try {
      chain.push(new X509Certificate(der));
    } catch (error) {
      return invalid(`chain[${index}] is not a DER X.509 certificate: ${error instanceof Error ? error.message : 'unparsable'}`);
    }
  }
  return { ok: true, value: chain };
}

function parseKeyDescription(leaf: X509Certificate): Step<NonStandardKeyDescription> {
  const extension = singleExtensionValue(leaf, id_ce_keyDescription, 'leaf', 'KeyDescription');
  if (!extension.ok) return invalid(extension.detail);
  try {
    // NonStandard: real devices emit AuthorizationList tags out of order; this schema reads them anyway.
    return { ok: true, value: AsnConvert.parse(extension.value, NonStandardKeyDescription) };
  } catch (error) {
    return invalid(`KeyDescription does not parse: ${error instanceof Error ? error.message : 'unparsable'}`);
  }
}

function parseApplicationId(description: NonStandardKeyDescription): Step<AttestationApplicationId> {
  const raw = description.softwareEnforced.findProperty('attestationApplicationId');
  if (raw === undefined) return invalid('KeyDescription has no attestationApplicationId in softwareEnforced');
  try {
    return { ok: true, value: AsnConvert.parse(bytesOf(raw) ?? new Uint8Array(0), AttestationApplicationId) };
  } catch (error) {
    return invalid(`attestationApplicationId does not parse: ${error instanceof Error ? error.message : 'unparsable'}`);
  }
}

const SECURITY_LEVEL_NAME: Readonly<Record<number, string>> = { [SecurityLevel.software]: 'Software', [SecurityLevel.trustedEnvironment]: 'TrustedEnvironment', [SecurityLevel.strongBox]: 'StrongBox' };
const levelName = (level: number): string => SECURITY_LEVEL_NAME[level] ?? `unknown (${level})`;

/**
 * Refuses a Software or unknown security level; otherwise: StrongBox (both the attestation and the
 * KeyMint level) → strong, TrustedEnvironment → device, and either only when the hardware-enforced
 * rootOfTrust says the bootloader is locked and verified boot is Verified; with an unlocked or
 * unverified OS the key is still in hardware but the app identity (which the OS asserts) is not: basic.
 */
function integrityOf(description: NonStandardKeyDescription): Step<IntegrityLevel> {
  const levels = [description.attestationSecurityLevel, description.keymasterSecurityLevel];
  const hardware = [SecurityLevel.trustedEnvironment, SecurityLevel.strongBox] as number[];
  if (!levels.every((level) => hardware.includes(level))) {
    return invalid(`security level is not hardware: attestation ${levelName(levels[0]!)}, KeyMint ${levelName(levels[1]!)}`);
  }
  const rootOfTrust = description.teeEnforced.findProperty('rootOfTrust');
  if (rootOfTrust === undefined || !rootOfTrust.deviceLocked || rootOfTrust.verifiedBootState !== VerifiedBootState.verified) {
    return { ok: true, value: 'basic' };
  }
  return { ok: true, value: levels.every((level) => level === SecurityLevel.strongBox) ? 'strong' : 'device' };
}

/** Hex as keytool prints it (colons, either case) or plain → lower-case hex, or undefined. */
export function normalizeSha256Hex(text: string): string | undefined {
  const hex = text.replaceAll(':', '').toLowerCase();
  return /^[0-9a-f]{64}$/.test(hex) ? hex : undefined;
}

/**
 * Accepts the device key's attestation chain: it chains to a configured root; its leaf's key is the
 * enrolled device key, generated in hardware for this challenge; the app is an allowed package signed
 * by an allowed certificate. Never throws.
 */
export function androidKeyAttestationVerifier(config: AndroidKeyAttestationConfig): AttestationVerifier {
  const apps = new Map(config.apps.map((app) => [app.packageName, new Set(app.signingCertSha256.map((d) => normalizeSha256Hex(d) ?? d))]));
  return {
    format: ANDROID_KEY_ATTESTATION_FORMAT,
    // eslint-disable-next-line @typescript-eslint/require-await -- the interface is async; this check is CPU only
    async verify(evidence, expected) {
      try {
        const chain = parseEvidence(evidence);
        if (!chain.ok) return chain;
        const leaf = chain.value[0]!;
        // The key first: cheap, and a chain for another key is not worth verifying.
        if (thumbprintOf(leaf.publicKey) !== expected.deviceKeyThumbprint) return invalid('leaf certificate key is not the enrolled device key');
        const broken = chainError(chain.value, config.roots, expected.now);
        if (broken !== undefined) return invalid(broken);
        const description = parseKeyDescription(leaf);
        if (!description.ok) return description;
        const kd = description.value;
        if (!bytesOf(kd.attestationChallenge)?.equals(androidAttestationChallenge(expected.challenge))) {
          return invalid('attestationChallenge is not SHA-256 of this enrollment challenge');
        }
        const integrity = integrityOf(kd);
        if (!integrity.ok) return integrity;
        if (kd.teeEnforced.findProperty('origin') !== ORIGIN_GENERATED) return invalid('device key was not generated in the secure hardware (hardware-enforced origin is not GENERATED)');
        const appId = parseApplicationId(kd);
        if (!appId.ok) return appId;
        // An empty SET parses as undefined, whatever the typings say.
        const infos = (appId.value.packageInfos as AttestationApplicationId['packageInfos'] | undefined) ?? [];
        const packages = infos.map((info) => bytesOf(info.packageName)?.toString('utf8') ?? '');
        if (packages.length !== 1) return invalid(`attestationApplicationId names ${packages.length} packages: exactly one is accepted`);
        const packageName = packages[0]!;
        const allowedDigests = apps.get(packageName);
        if (allowedDigests === undefined) return invalid(`package ${JSON.stringify(packageName)} is not allowed`);
        const digests = ((appId.value.signatureDigests as unknown[] | undefined) ?? []).map((d) => bytesOf(d)?.toString('hex') ?? '');
        const foreign = digests.find((d) => !allowedDigests.has(d));
        if (digests.length === 0 || foreign !== undefined) {
          return invalid(`package ${packageName} signing certificate ${foreign ?? '(none)'} is not allowed`);
        }
        return { ok: true, verdict: { integrityLevel: integrity.value, appId: packageName } };
      } catch (error) {
        // Nothing above should throw; a parser surprise is still a refusal, never an exception.
        return invalid(`unexpected: ${error instanceof Error ? error.message : 'unknown error'}`);
      }
    },
  };
}
